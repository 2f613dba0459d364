"""`swarm train` with bad configs and data files: each is refused before the node touches
the chain (its rpc_port points at a closed port, and the config problem is what is
reported, not the connection), with exit status 2, one line naming the file and key (or
the data file's line and column), and no traceback; `swarm --debug` shows the traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from swarmtoken.cli.commands import main
from swarmtoken.cli.demo import free_port
from swarmtoken.config import SwarmConfig

SWARM = str(Path(sys.executable).with_name("swarm"))
N_FEATURES, N_CLASSES = 3, 3


@dataclass
class NodeFolder:
    """A node folder whose config passes every local check: record, keystore, CSV, store."""

    folder: Path
    rpc_port: int
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    keep: list[Any] = field(default_factory=list)  # sockets held open while the node runs
    raw: str | None = None  # config text written as is (malformed TOML)

    @property
    def path(self) -> Path:
        return self.folder / "node.toml"

    def set(self, section: str, **values: Any) -> None:
        self.config.setdefault(section, {}).update(values)

    def csv(self, *lines: str) -> None:
        (self.folder / "data.csv").write_text("\n".join(lines) + "\n")

    def write(self) -> Path:
        self.path.write_text(self.raw if self.raw is not None else to_toml(self.config))
        return self.path


def to_toml(config: dict[str, dict[str, Any]]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v)

    return "".join(f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in keys.items()) + "\n"
                   for name, keys in config.items())


@pytest.fixture
def node(tmp_path):
    from eth_account import Account

    swarm = SwarmConfig(n_features=N_FEATURES, n_classes=N_CLASSES).as_dict()
    (tmp_path / "deployment.json").write_text(json.dumps(
        {"network": "development", "chain_id": 1337, "token": "0x" + "1" * 40, "swarm": "0x" + "2" * 40,
         "block": 1, "config": swarm}))
    key = Account.create()
    (tmp_path / "keystore.json").write_text(json.dumps(Account.encrypt(key.key, "pw", kdf="pbkdf2", iterations=2)))
    folder = NodeFolder(tmp_path, rpc_port=free_port())
    folder.csv("a,b,c,label", *(f"{i},{i % 7},{(i * 3) % 5},{i % N_CLASSES}" for i in range(40)))
    folder.config = {
        "chain": {"network": "development", "rpc_port": folder.rpc_port, "deployment": "deployment.json",
                  "keystore": "keystore.json"},
        "store": {"dir": "store", "port": 0},
        "data": {"file": "data.csv", "label_column": "label"},
        "model": {"name": "mlp"},
        "train": {"lr": 0.05},
        "node": {"poll_interval": 0.2, "elect_grace": 20.0},
    }
    yield folder
    for held in folder.keep:
        held.close()


def no_chain(node: NodeFolder) -> str:
    return f"no chain is running on 127.0.0.1:{node.rpc_port}"


def test_the_good_config_passes_every_check_and_only_then_meets_the_missing_chain(node):
    result = CliRunner().invoke(main, ["train", "--config", str(node.write())])
    assert result.exit_code == 2, result.output
    assert no_chain(node) in result.output and "Traceback" not in result.output


def busy_port(node: NodeFolder) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    node.keep.append(held)
    node.set("store", port=held.getsockname()[1])


def keystore_folder(node: NodeFolder) -> None:
    (node.folder / "keys").mkdir()
    node.set("chain", keystore="keys")


def drop_dataset_file(node: NodeFolder, **data: Any) -> None:
    del node.config["data"]["file"]
    node.set("data", **data)


def malformed(node: NodeFolder) -> None:
    node.raw = "[data]\nshard = 0\n[chain\n"


Case = tuple[str, Callable[[NodeFolder], Any], list[str]]
CASES: list[Case] = [
    # the ones the probe found
    ("typo in [train]", lambda n: n.set("train", lrate=0.1), ["[train]: lrate (did you mean lr?)"]),
    ("shard as a string", lambda n: drop_dataset_file(n, dataset="digits", shard="0", shards=3),
     ['[data] shard: expected an integer, got "0"', "write shard = 0"]),
    ("poll_interval as a word", lambda n: n.set("node", poll_interval="fast"),
     ['[node] poll_interval: expected a number, got "fast"']),
    ("lr as a word", lambda n: n.set("train", lr="fast"), ['[train] lr: expected a number, got "fast"']),
    ("store port as a word", lambda n: n.set("store", port="abc"), ['[store] port: expected an integer, got "abc"']),
    ("elect_grace as a string", lambda n: n.set("node", elect_grace="20"),
     ['[node] elect_grace: expected a number, got "20"', "write elect_grace = 20"]),
    ("unknown dataset", lambda n: drop_dataset_file(n, dataset="mnist"), ["[data] dataset: unknown 'mnist'; known:"]),
    ("unknown model", lambda n: n.set("model", name="resnet"), ["[model] name: unknown 'resnet'; known: cnn, mlp"]),
    ("store port in use", busy_port, ["[store] port: ", "is already in use", "port = 0"]),
    ("keystore is a folder", keystore_folder, ["[chain] keystore: ", "keys is a folder, not a keystore"]),
    ("NaN in the CSV", lambda n: n.csv("a,b,c,label", "1,2,3,0", "4,nan,6,1", "7,8,9,2"),
     ["[data] file: ", "data.csv, line 3, column 'b': expected a finite number, found 'nan'"]),
    ("text in the CSV", lambda n: n.csv("a,b,c,label", "1,2,3,0", "4,5,six,1", "7,8,9,2"),
     ["[data] file: ", "data.csv, line 3, column 'c': expected a number, found 'six'"]),
    ("label column missing", lambda n: n.csv("a,b,c,class", "1,2,3,0", "4,5,6,1"),
     ["[data] file: ", "label column 'label' not in header ['a', 'b', 'c', 'class']", "set [data] label_column"]),
    # more
    ("class count differs from the swarm's", lambda n: n.csv("a,b,c,label", *(f"{i},1,2,{i % 2}" for i in range(20))),
     ["[data] file: this node cannot join the swarm", "2 classes, the swarm's model has 3"]),
    ("label outside n_classes", lambda n: (n.set("data", n_classes=3), n.csv("a,b,c,label", "1,2,3,0", "1,2,3,7")),
     ["data.csv, line 3, column 'label': label 7 is outside [0, n_classes) with [data] n_classes = 3"]),
    ("features differ from the swarm's", lambda n: n.csv("a,b,label", *(f"{i},1,{i % 3}" for i in range(20))),
     ["this node cannot join the swarm", "2 features, the swarm's model takes 3"]),
    ("data file missing", lambda n: n.set("data", file="gone.csv"), ["[data] file: ", "gone.csv: file does not exist"]),
    ("shard beyond shards", lambda n: drop_dataset_file(n, dataset="digits", shard=3, shards=3),
     ["[data] shard: 3 is out of range; shard must be in [0, shards)"]),
    ("unknown partition", lambda n: drop_dataset_file(n, dataset="digits", partition="random"),
     ["[data] partition: unknown 'random'"]),
    ("alpha zero", lambda n: n.set("data", alpha=0), ["[data] alpha: must be > 0, got 0"]),
    ("too many shards", lambda n: drop_dataset_file(n, dataset="wine", shards=60, shard=0, partition="iid"),
     ["[data] shards: dataset 'wine' cannot be dealt into 60 shards"]),
    ("unknown attack", lambda n: n.set("node", attack="teleport"), ["[node] attack: unknown 'teleport'"]),
    ("store port out of range", lambda n: n.set("store", port=70000), ["[store] port: must be in [0, 65535]"]),
    ("bool as an int", lambda n: n.set("node", fetch_retries=True), ["[node] fetch_retries: expected an integer, got true"]),
    ("string for a bool", lambda n: n.set("node", elect_early="yes"), ['[node] elect_early: expected true or false']),
    ("typo in [chain]", lambda n: n.set("chain", netwrok="development"),
     ["unknown key(s) in [chain]: netwrok (did you mean network?)"]),
    ("unknown section", lambda n: n.config.update(trian={"lr": 0.1}), ["unknown section [trian] (did you mean train?)"]),
    ("unknown optimizer", lambda n: n.set("train", optimizer="adagrad"), ["[train] optimizer: must be one of"]),
    ("unknown network", lambda n: n.set("chain", network="nowhere"), ["[chain] network: unknown network 'nowhere'"]),
    ("deployment record missing", lambda n: n.set("chain", deployment="none.json"),
     ["[chain] deployment: ", "none.json: no such file; run `swarm deploy`"]),
    ("deployment record not JSON", lambda n: (n.folder / "deployment.json").write_text("{oops"),
     ["[chain] deployment: ", "not a deployment record"]),
    ("keystore missing", lambda n: n.set("chain", keystore="keys/none.json"),
     ["[chain] keystore: ", "none.json: no such file; create one with `swarm account new"]),
    ("store dir is a file", lambda n: (n.folder / "store").write_text("x"), ["[store] dir: ", "store is a file"]),
    ("model cannot take the data", lambda n: n.set("model", name="cnn"), ["[model] name: cnn: needs a square image"]),
    ("not TOML", malformed, ["node.toml: not valid TOML"]),
]


@pytest.mark.parametrize("name, make, expected", CASES, ids=[case[0] for case in CASES])
def test_a_bad_config_or_data_file_is_refused_before_the_chain(node, name, make, expected):
    make(node)
    result = CliRunner().invoke(main, ["train", "--config", str(node.write())])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    assert f"Error: {node.path}" in result.output, result.output  # the config file is named
    for text in expected:
        assert text in result.output, result.output
    assert no_chain(node) not in result.output  # reported before connecting


def run_swarm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SWARM, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_problem_of_the_probe_is_reported_at_once_by_the_real_command(node):
    node.set("train", lrate=0.1, lr="fast")
    node.set("store", port="abc")
    node.set("node", poll_interval="fast", elect_grace="20")
    keystore_folder(node)
    node.csv("a,b,c,label", "1,2,3,0", "4,nan,6,1")
    node.write()
    done = run_swarm("train", "--config", "node.toml", cwd=node.folder)
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert all(line.startswith("Error: node.toml: ") for line in lines), done.stderr
    for text in ["[train]: lrate (did you mean lr?)", '[train] lr: expected a number, got "fast"',
                 '[store] port: expected an integer, got "abc"', '[node] poll_interval: expected a number',
                 '[node] elect_grace: expected a number, got "20"', "[chain] keystore: ",
                 "line 3, column 'b': expected a finite number, found 'nan'"]:
        assert sum(text in line for line in lines) == 1, (text, done.stderr)
    assert len(lines) == 7 and "no chain is running" not in done.stderr


def test_the_real_command_prints_one_line_and_exits_2(node):
    (make, expected), = [(make, expected) for name, make, expected in CASES if name == "label column missing"]
    make(node)
    node.write()
    done = run_swarm("train", "--config", "node.toml", cwd=node.folder)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("Error: node.toml: ") and all(text in line for text in expected), done.stderr


def test_debug_shows_the_traceback(node):
    node.set("node", poll_interval="fast")
    node.write()
    result = CliRunner().invoke(main, ["--debug", "train", "--config", str(node.path)])
    assert not isinstance(result.exception, SystemExit) and "poll_interval" in str(result.exception)
    done = run_swarm("--debug", "train", "--config", "node.toml", cwd=node.folder)
    assert done.returncode != 0 and "Traceback" in done.stderr and "poll_interval" in done.stderr
