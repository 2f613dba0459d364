"""The node config's validation layer: typed keys, ranges, names, files and data, every
problem one line naming the file, the section and key, and the fix."""

from __future__ import annotations

import json
import socket

import pytest

from swarmtoken.config import ConfigError, SwarmConfig
from swarmtoken.node.checks import check_node, check_node_file
from swarmtoken.node.config import (ChainSection, ConfigProblems, DataSection, ModelSection, NodeConfig, NodeSection,
                                    StoreSection, parse)
from swarmtoken.node.localdata import load_local_data
from swarmtoken.node.lock import KeystoreLock


def problems_of(text: str, tmp_path) -> list[str]:
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(ConfigProblems) as raised:
        NodeConfig.from_toml(path)
    return raised.value.problems


# ---------------------------------------------------------------------- types
@pytest.mark.parametrize("text, line", [
    ('[data]\nshard = "0"\n', '[data] shard: expected an integer, got "0" (a string); write shard = 0 (no quotes)'),
    ('[data]\nshards = true\n', "[data] shards: expected an integer, got true (a boolean)"),
    ('[data]\nseed = 1.5\n', "[data] seed: expected an integer, got 1.5 (a number)"),
    ('[node]\nfetch_retries = 2.0\n', "[node] fetch_retries: expected an integer, got 2.0 (a number); "
                                      "write fetch_retries = 2"),
    ('[node]\nelect_grace = "20"\n', '[node] elect_grace: expected a number, got "20" (a string); '
                                     "write elect_grace = 20 (no quotes)"),
    ('[node]\npoll_interval = "fast"\n', '[node] poll_interval: expected a number, got "fast" (a string); '
                                         "write e.g. poll_interval = 0.2"),
    ('[node]\nelect_early = "yes"\n', '[node] elect_early: expected true or false, got "yes" (a string)'),
    ('[node]\nelect_early = 1\n', "[node] elect_early: expected true or false, got 1 (an integer)"),
    ('[store]\nport = "abc"\n', '[store] port: expected an integer, got "abc" (a string); write e.g. port = 0'),
    ("[chain]\nkeystore = 5\n", '[chain] keystore: expected a string in quotes, got 5 (an integer); '
                                'write keystore = "5" (in quotes)'),
    ("[model]\nname = [1, 2]\n", "[model] name: expected a string in quotes, got [1, 2] (a list)"),
    ('[train]\nlr = "fast"\n', '[train] lr: expected a number, got "fast" (a string); write e.g. lr = 0.05'),
    ('[train]\nbatch_size = 3.5\n', "[train] batch_size: expected an integer, got 3.5 (a number)"),
    ('[train]\nsteps = "5"\n', '[train] steps: expected an integer, got "5" (a string); write steps = 5'),
])
def test_a_wrong_type_names_file_section_key_value_and_fix(tmp_path, text, line):
    (problem,) = problems_of(text, tmp_path)
    assert problem.startswith(f"{tmp_path / 'node.toml'}: {line}"), problem


def test_an_integer_is_a_number_and_reads_back_as_a_float(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text("[node]\nelect_grace = 20\npoll_interval = 1\n[data]\nalpha = 2\n")
    config = NodeConfig.from_toml(path)
    assert config.node.elect_grace == 20.0 and isinstance(config.node.elect_grace, float)
    assert isinstance(config.data.alpha, float) and isinstance(config.node.poll_interval, float)


# ---------------------------------------------------------------------- ranges
@pytest.mark.parametrize("text, line", [
    ("[store]\nport = 70000\n", "[store] port: must be in [0, 65535] (0: the system picks a free port), got 70000"),
    ("[chain]\nrpc_port = 0\n", "[chain] rpc_port: must be in [1, 65535], got 0"),
    ("[data]\nshards = 0\n", "[data] shards: must be >= 1, got 0"),
    ("[data]\nshard = -1\nshards = 3\n", "[data] shard: must be >= 0, got -1"),
    ("[data]\nshard = 3\nshards = 3\n", "[data] shard: 3 is out of range; shard must be in [0, shards) with shards = 3"),
    ("[data]\nalpha = 0\n", "[data] alpha: must be > 0, got 0 (an integer); write e.g. alpha = 0.5"),
    ("[data]\nalpha = nan\n", "[data] alpha: must be > 0, got nan"),
    ("[data]\nn_classes = 1\n", "[data] n_classes: must be 0 (the largest label + 1) or >= 2, got 1"),
    ("[data]\nseed = -1\n", "[data] seed: must be in [0, 4294967295], got -1"),
    ("[node]\npoll_interval = 0\n", "[node] poll_interval: must be > 0 seconds, got 0"),
    ("[node]\nfetch_timeout = -1.0\n", "[node] fetch_timeout: must be > 0 seconds, got -1.0"),
    ("[node]\nelect_grace = inf\n", "[node] elect_grace: must be >= 0 seconds, got inf"),
    ("[node]\nfetch_retries = -1\n", "[node] fetch_retries: must be >= 0, got -1"),
    ("[node]\nclaim_every = -1\n", "[node] claim_every: must be >= 0 epochs, got -1"),
    ('[store]\npublic_url = "node1.example.org"\n', "[store] public_url: must be empty or an http(s) URL"),
    ('[chain]\nnetwork = ""\n', "[chain] network: must not be empty"),
    ('[data]\ndataset = ""\n', "[data] dataset: empty, and no file either"),
    ('[data]\nfile = "x.csv"\nlabel_column = ""\n', "[data] label_column: empty"),
    ("[train]\nmomentum = 1.5\n", "[train] momentum: must be in [0, 1), got 1.5; write e.g. momentum = 0.9"),
    ('[train]\noptimizer = "adagrad"\n', "[train] optimizer: must be one of ['adam', 'sgd'], got 'adagrad'"),
    ("[train]\nsteps = 0\n", "[train] steps: must be >= 1 or None, got 0; write a value in range, or remove the key"),
])
def test_a_value_out_of_range_is_named_with_the_range(tmp_path, text, line):
    (problem,) = problems_of(text, tmp_path)
    assert problem.startswith(f"{tmp_path / 'node.toml'}: {line}"), problem


# ---------------------------------------------------------------------- keys and sections
def test_unknown_keys_and_sections_suggest_the_known_name(tmp_path):
    problems = problems_of("[chian]\nx = 1\n[train]\nlrate = 0.1\n[node]\npoll_intervall = 1.0\n", tmp_path)
    text = "\n".join(problems)
    assert "unknown section [chian] (did you mean chain?)" in text
    assert "unknown key(s) in [train]: lrate (did you mean lr?)" in text
    assert "unknown key(s) in [node]: poll_intervall (did you mean poll_interval?)" in text


def test_a_section_that_is_not_a_table_is_named(tmp_path):
    (problem,) = problems_of("data = 5\n", tmp_path)
    assert "data = 5 (an integer): expected a [data] section (a table)" in problem


def test_every_problem_is_reported_at_once_one_line_each(tmp_path):
    problems = problems_of('[data]\nshard = "0"\nalpha = -1\n[node]\npoll_interval = "fast"\n'
                           '[train]\nlrate = 1\nlr = "x"\n[store]\nport = "abc"\n', tmp_path)
    assert len(problems) == 6
    assert all(p.startswith(str(tmp_path / "node.toml")) and "\n" not in p for p in problems)


def test_problems_are_a_config_error():
    with pytest.raises(ConfigError, match="shard"):
        NodeConfig.from_mapping({"data": {"shard": "0"}})


def test_demo_configs_read_back_identically(tmp_path):
    config = NodeConfig(store=StoreSection(port=40123), data=DataSection(shard=2, shards=5, alpha=0.3),
                        node=NodeSection(attack="sign_flip", elect_grace=5.0, serve_after_finish=True),
                        train={"lr": 0.1, "steps": 5, "optimizer": "adam"}, base_dir=tmp_path)
    path = tmp_path / "node.toml"
    path.write_text(config.to_toml())
    assert NodeConfig.from_toml(path) == config


def test_a_bad_key_is_reported_once_and_its_dependents_are_skipped(tmp_path):
    parsed = parse({"data": {"shards": "3", "shard": 1}}, base_dir=tmp_path, source="node.toml")
    assert parsed.problems == ['node.toml: [data] shards: expected an integer, got "3" (a string); '
                               "write shards = 3 (no quotes)"]
    assert "data.shards" in parsed.bad


# ---------------------------------------------------------------------- local checks
def good_node(tmp_path, *, n_classes: int = 3, n_features: int = 2, merge_rule: str = "fltrust_median",
              rows: list[str] | None = None) -> NodeConfig:
    """A node folder that passes every check: record, keystore, CSV, store."""
    from eth_account import Account

    swarm = SwarmConfig(n_features=n_features, n_classes=n_classes).as_dict() | {"merge_rule": merge_rule}
    (tmp_path / "deployment.json").write_text(json.dumps({"network": "development", "chain_id": 1337,
                                                          "token": "0x" + "1" * 40, "swarm": "0x" + "2" * 40,
                                                          "block": 1, "config": swarm}))
    key = Account.create()
    (tmp_path / "keystore.json").write_text(json.dumps(Account.encrypt(key.key, "pw", kdf="pbkdf2", iterations=2)))
    lines = rows if rows is not None else ["a,b,label"] + [f"{i},{i % 5},{i % 3}" for i in range(30)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    return NodeConfig(chain=ChainSection(deployment="deployment.json", keystore="keystore.json"),
                      data=DataSection(file="data.csv"), base_dir=tmp_path)


def local_problems(config: NodeConfig) -> list[str]:
    with pytest.raises(ConfigProblems) as raised:
        check_node(config, source="node.toml")
    return raised.value.problems


def test_a_good_node_passes_and_the_node_gets_the_checked_data(tmp_path):
    config = good_node(tmp_path)
    checked = check_node(config)
    assert checked.local.n_features == 2 and checked.local.n_classes == 3
    assert load_local_data(config) is checked.local  # loaded once: the node reuses it
    (tmp_path / "data.csv").write_text("a,b,label\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(9)))
    assert load_local_data(config) is not checked.local  # a changed file is read again


@pytest.mark.parametrize("rows, expected", [
    (["a,b,label", "1,2,0", "nan,1,1", "3,4,2"], "data.csv, line 3, column 'a': expected a finite number, found 'nan'"),
    (["a,b,label", "1,2,0", "1,two,1"], "data.csv, line 3, column 'b': expected a number, found 'two'"),
    (["a,b,y", "1,2,0", "2,1,1"], "data.csv, line 1: label column 'label' not in header ['a', 'b', 'y']; "
                                  "set [data] label_column"),
    (["a,b,label", "1,2,0", "2,1,1.5"], "line 3, column 'label': expected a non-negative integer label"),
    (["a,b,label", "1,2,0", "2,1,0"], "every label is 0: a classifier needs at least 2 classes"),
    (["a,b,label", "1,2,0", "2,1"], "line 3: expected 3 cells, found 2"),
    (["a,b,label"], "no data rows after the header"),
])
def test_bad_data_is_named_by_file_line_and_column(tmp_path, rows, expected):
    (problem,) = local_problems(good_node(tmp_path, rows=rows))
    assert problem.startswith("node.toml: [data] file: ") and expected in problem, problem


def test_labels_beyond_n_classes_are_named_with_their_line(tmp_path):
    config = good_node(tmp_path, rows=["a,b,label", "1,2,0", "2,1,5", "3,3,1"])
    (problem,) = local_problems(NodeConfig(data=DataSection(file="data.csv", n_classes=3), chain=config.chain,
                                           base_dir=tmp_path))
    assert "data.csv, line 3, column 'label': label 5 is outside [0, n_classes) with [data] n_classes = 3" in problem


def test_data_that_does_not_fit_the_swarm_is_refused_before_the_chain(tmp_path):
    (problem,) = local_problems(good_node(tmp_path, n_classes=10))
    assert problem.startswith("node.toml: [data] file: this node cannot join the swarm of deployment.json: "
                              "this node's data has 3 classes, the swarm's model has 10")


def test_unknown_names_are_listed_with_the_known_ones(tmp_path):
    from dataclasses import replace

    config = good_node(tmp_path)
    config = replace(config, data=DataSection(dataset="mnist", partition="random"),
                     model=ModelSection(name="resnet"), node=NodeSection(attack="teleport"))
    text = "\n".join(local_problems(config))
    assert "node.toml: [data] dataset: unknown 'mnist'; known: breast_cancer, digits" in text
    assert "node.toml: [data] partition: unknown 'random'; known: dirichlet, iid, quantity" in text
    assert "node.toml: [model] name: unknown 'resnet'; known: cnn, mlp" in text
    assert "node.toml: [node] attack: unknown 'teleport'; known: " in text and "copycat" in text


def test_a_model_that_cannot_take_the_data_is_named(tmp_path):
    from dataclasses import replace

    config = replace(good_node(tmp_path), model=ModelSection(name="cnn"))
    (problem,) = local_problems(config)
    assert problem.startswith("node.toml: [model] name: cnn: needs a square image")


def test_a_merge_rule_this_node_cannot_run_is_named(tmp_path):
    (problem,) = local_problems(good_node(tmp_path, merge_rule="krum9000"))
    assert "[chain] deployment: " in problem and "the swarm's merge rule: unknown 'krum9000'" in problem


@pytest.mark.parametrize("make, expected", [
    (lambda p: (p / "deployment.json").unlink(), "[chain] deployment: "),
    (lambda p: (p / "deployment.json").write_text("{not json"), "not a deployment record"),
    (lambda p: (p / "deployment.json").write_text("[1, 2]"), "[chain] deployment: "),
    (lambda p: (p / "keystore.json").unlink(), "[chain] keystore: "),
    (lambda p: (p / "keystore.json").write_text('{"address": "00"}'), "is not a keystore"),
    (lambda p: ((p / "keystore.json").unlink(), (p / "keystore.json").mkdir()), "is a folder, not a keystore"),
    (lambda p: (p / "data.csv").unlink(), "data.csv: file does not exist"),
    (lambda p: (p / "store").write_text("a file"), "[store] dir: "),
    (lambda p: (p / "checkpoint.json").mkdir(), "[node] checkpoint: "),
])
def test_files_are_checked(tmp_path, make, expected):
    config = good_node(tmp_path)
    make(tmp_path)
    (problem,) = local_problems(config)
    assert expected in problem, problem


def test_a_keystore_another_process_holds_is_named(tmp_path):
    config = good_node(tmp_path)
    lock = KeystoreLock(tmp_path / "keystore.json").acquire()
    try:
        (problem,) = local_problems(config)
    finally:
        lock.release()
    assert "[chain] keystore: keystore" in problem and "already in use" in problem
    check_node(config)  # and free again once released


def test_a_store_port_in_use_is_named(tmp_path):
    from dataclasses import replace

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (problem,) = local_problems(replace(good_node(tmp_path), store=StoreSection(port=port)))
    assert problem.startswith(f"node.toml: [store] port: {port} is already in use on 127.0.0.1")


def test_a_store_host_that_does_not_resolve_is_named(tmp_path):
    from dataclasses import replace

    (problem,) = local_problems(replace(good_node(tmp_path), store=StoreSection(host="no-such-host.invalid")))
    assert problem.startswith("node.toml: [store] host: cannot resolve 'no-such-host.invalid'")


def test_check_node_file_reports_key_and_local_problems_together(tmp_path):
    good_node(tmp_path)
    (tmp_path / "node.toml").write_text('[chain]\nkeystore = "keystore.json"\nnetwork = "nowhere"\n'
                                        '[data]\nfile = "data.csv"\nn_classes = "3"\n[model]\nname = "resnet"\n')
    with pytest.raises(ConfigProblems) as raised:
        check_node_file(tmp_path / "node.toml")
    text = "\n".join(raised.value.problems)
    assert len(raised.value.problems) == 3, text
    assert '[data] n_classes: expected an integer, got "3"' in text
    assert "[chain] network: unknown network 'nowhere'" in text and "[model] name: unknown 'resnet'" in text
