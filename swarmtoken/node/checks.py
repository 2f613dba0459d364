"""Everything about a node that can be checked on this machine, checked before the node
touches the chain or asks for the keystore password.

`check_node_file` reads the node's config (`config.parse`: sections, keys, types, ranges)
and then checks, with the registries and loaders the node itself uses:

- names: ``[data] dataset`` and ``partition``, ``[model] name``, ``[node] attack``, and
  the merge rule and scorer the deployment record names;
- files: the deployment record (a file, JSON, with the fields `swarm deploy` writes), the
  keystore (a file holding an encrypted key, not already in use by another node process),
  the store folder and the checkpoint's folder (writable, or creatable), the store's
  host and fixed port (bound once and released, as the store will bind them);
- data: the data file or the dataset's split, loaded with `localdata.load_local_data`
  (numbers, finite values, the label column, labels in ``[0, n_classes)``), the model
  built from it, and the data and model against the swarm's as the deployment record
  states them (`compat.incompatibility`).

Every problem is collected and raised at once as :class:`~.config.ConfigProblems`, one
line each, naming the config file, the section and key (a data file's line and column)
and the fix. A check that depends on a key that is already wrong is skipped, so one
mistake is reported once.
"""

from __future__ import annotations

import errno
import json
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, check_registered, read_toml
from .config import ChainSection, ConfigProblems, NodeConfig, Parsed, parse
from .localdata import LocalData


@dataclass(frozen=True)
class CheckedNode:
    """A node config that passed every local check, with what the checks loaded."""

    config: NodeConfig
    local: LocalData
    record: dict[str, Any]


def check_node_file(path: str | Path) -> CheckedNode:
    """Read and check the node config at ``path`` and everything it names on this machine;
    :class:`ConfigProblems` lists every problem found. The chain's ``network`` and
    ``rpc_port``, where the config does not set them, are the deployment record's."""
    data = read_toml(path)
    parsed = parse(data, base_dir=Path(path).resolve().parent, source=str(path))
    checked = check_node(parsed, source=str(path))
    chain = data.get("chain")
    return with_recorded_endpoint(checked, set(chain) if isinstance(chain, dict) else set())


def with_recorded_endpoint(checked: CheckedNode, given: set[str]) -> CheckedNode:
    """``checked`` with the record's endpoint in place of the ``[chain] network`` and
    ``rpc_port`` the config left out (see `recorded_chain`)."""
    from dataclasses import replace

    chain = recorded_chain(checked.config.chain, checked.record, given)
    if chain == checked.config.chain:
        return checked
    return replace(checked, config=replace(checked.config, chain=chain))


def recorded_chain(chain: ChainSection, record: dict[str, Any], given: set[str]) -> ChainSection:
    """``chain`` with the deployment record's endpoint in place of the ``network`` and
    ``rpc_port`` the config left out (``given``: the keys its [chain] section sets): a node
    reaches the chain its swarm was deployed on, not whatever listens on the default port.
    A record written before endpoints were recorded changes nothing."""
    from dataclasses import replace

    from ..chain.deployment import record_endpoint

    if not isinstance(record.get("endpoint"), dict):
        return chain
    network, port = record_endpoint(record)
    if "network" not in given:
        chain = replace(chain, network=network)
    if "rpc_port" not in given and port is not None and chain.network == network:
        chain = replace(chain, rpc_port=port)
    return chain


def check_node(parsed: Parsed | NodeConfig, source: str = "node config") -> CheckedNode:
    """The local checks of a parsed config (``parse``'s problems are reported with them)."""
    if isinstance(parsed, NodeConfig):
        parsed = Parsed(parsed, [], frozenset())
    checks = _Checks(parsed, source)
    checks.run()
    if checks.problems:
        raise ConfigProblems(checks.problems)
    assert checks.local is not None and checks.record is not None
    return CheckedNode(parsed.config, checks.local, checks.record)


class _Checks:
    def __init__(self, parsed: Parsed, source: str) -> None:
        self.config = parsed.config
        self.source = source
        self.problems = list(parsed.problems)
        self.bad = set(parsed.bad)
        self.local: LocalData | None = None
        self.record: dict[str, Any] | None = None

    def problem(self, where: str, message: str, key: str | None = None) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")
        if key:
            self.bad.add(key)

    def ok(self, *keys: str) -> bool:
        """None of ``keys`` (``"data.file"``) is already wrong, nor its whole section."""
        return not any(k in self.bad or k.split(".")[0] in self.bad for k in keys)

    def run(self) -> None:
        self.network()
        self.names()
        self.deployment()
        self.keystore()
        self.store()
        self.checkpoint()
        self.data()
        self.model()

    # ------------------------------------------------------------------ names
    def network(self) -> None:
        network = self.config.chain.network
        if not self.ok("chain.network"):
            return
        from brownie._config import CONFIG

        if network not in CONFIG.networks:
            self.problem("[chain] network", f"unknown network {network!r}; `brownie networks list` shows the known "
                         'ones (write e.g. network = "development")', "chain.network")

    def names(self) -> None:
        from trainer.attacks import ATTACKS
        from trainer.data import DATASETS
        from trainer.models import MODELS
        from trainer.partition import PARTITIONS

        from .protocol_attacks import PROTOCOL_ATTACKS

        data, node = self.config.data, self.config.node
        named = [] if self.config.model.factory else [("model.name", "[model] name", self.config.model.name, MODELS)]
        if not data.file and not data.loader:
            named += [("data.dataset", "[data] dataset", data.dataset, DATASETS),
                      ("data.partition", "[data] partition", data.partition, PARTITIONS)]
        if node.attack:
            named.append(("node.attack", "[node] attack", node.attack, {**ATTACKS, **PROTOCOL_ATTACKS}))
        for key, where, name, registry in named:
            if not self.ok(key):
                continue
            try:
                check_registered(where, name, registry)
            except ConfigError as exc:
                self.problems.append(f"{self.source}: {exc}")
                self.bad.add(key)

    # ------------------------------------------------------------------ files
    def deployment(self) -> None:
        from ..chain.deployment import DeploymentRecordError, read_record

        if not self.ok("chain.deployment"):
            return
        path = self.config.path(self.config.chain.deployment)
        where = "[chain] deployment"
        if not path.exists():
            self.problem(where, f"{path}: no such file; run `swarm deploy` (it writes the record) or point "
                         "deployment at the record it wrote", "chain.deployment")
            return
        if not path.is_file():
            self.problem(where, f"{path} is a folder, not a deployment record; point deployment at the JSON file "
                         "`swarm deploy` wrote", "chain.deployment")
            return
        try:
            record = read_record(path)
        except DeploymentRecordError as exc:
            self.problem(where, f"{exc}; point deployment at the JSON file `swarm deploy` wrote", "chain.deployment")
            return
        except (OSError, TypeError, UnicodeDecodeError) as exc:
            self.problem(where, f"{path}: not a deployment record ({exc}); point deployment at the JSON file "
                         "`swarm deploy` wrote", "chain.deployment")
            return
        if not isinstance(record.get("config", {}), dict):
            self.problem(where, f"{path}: its config is not a table; redeploy or restore the record",
                         "chain.deployment")
            return
        self.record = record
        self.swarm_rules(path, record.get("config", {}))

    def swarm_rules(self, path: Path, swarm: dict[str, Any]) -> None:
        """The swarm's merge rule and scorer, as the record states them, must be ones this
        node's software can run (the chain's are checked again when the node starts)."""
        from trainer.merges import MERGES
        from trainer.scoring import SCORERS

        for key, option, registry in (("merge_rule", "the swarm's merge rule", MERGES),
                                      ("scorer", "the swarm's scorer", SCORERS)):
            if key not in swarm:
                continue
            try:
                check_registered(option, str(swarm[key]), registry)
            except ConfigError as exc:
                self.problem("[chain] deployment", f"{path}: {exc}; this node's software cannot take part: "
                             "update it to a version that knows it", "chain.deployment")

    def keystore(self) -> None:
        from ..chain.connection import ChainError, keystore_address
        from .lock import KeystoreInUseError, KeystoreLock

        if not self.ok("chain.keystore"):
            return
        path = self.config.path(self.config.chain.keystore)
        where = "[chain] keystore"
        if not path.exists():
            self.problem(where, f"{path}: no such file; create one with `swarm account new {path}` or point "
                         "keystore at the node's keystore file", "chain.keystore")
            return
        if not path.is_file():
            self.problem(where, f"{path} is a folder, not a keystore; point keystore at the keystore file "
                         "inside it (e.g. keystore = \"keys/node-1.json\")", "chain.keystore")
            return
        try:
            keystore_address(path)
            encrypted = json.loads(path.read_text())
            if not isinstance(encrypted, dict) or not ({"crypto", "Crypto"} & set(encrypted)):
                raise ChainError("no encrypted key in it")
        except (ChainError, OSError, ValueError) as exc:
            detail = f" ({exc})" if str(exc) and "not a readable keystore" not in str(exc) else ""
            self.problem(where, f"{path} is not a keystore{detail}; point keystore at a file `swarm account new` "
                         "wrote", "chain.keystore")
            return
        try:
            KeystoreLock(path).acquire().release()
        except KeystoreInUseError as exc:
            self.problem(where, str(exc), "chain.keystore")
        except OSError as exc:
            self.problem(where, f"cannot create the lock file next to {path} ({exc.strerror or exc}); make its "
                         "folder writable", "chain.keystore")

    def store(self) -> None:
        store = self.config.store
        if self.ok("store.dir"):
            problem = _writable_folder(self.config.path(store.dir))
            if problem:
                self.problem("[store] dir", f"{problem}; set dir to a folder this node can write", "store.dir")
        if not self.ok("store.host", "store.port"):
            return
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        try:  # what `store.ParameterServer` binds: IPv4, address reuse on
            ThreadingHTTPServer((store.host, store.port), BaseHTTPRequestHandler).server_close()
        except socket.gaierror as exc:
            self.problem("[store] host", f"cannot resolve {store.host!r} ({exc.strerror}); write an IPv4 address "
                         'of this machine or a host name, e.g. host = "127.0.0.1"', "store.host")
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                self.problem("[store] port", f"{store.port} is already in use on {store.host}; stop what uses it, "
                             "choose another port, or write port = 0 to let the system pick one", "store.port")
            elif exc.errno == errno.EACCES:
                self.problem("[store] port", f"binding port {store.port} needs privileges; choose a port above "
                             "1023", "store.port")
            else:
                self.problem("[store] host", f"cannot bind {store.host}:{store.port} ({exc.strerror or exc}); "
                             'write an address of this machine, e.g. host = "127.0.0.1"', "store.host")

    def checkpoint(self) -> None:
        if not self.ok("node.checkpoint"):
            return
        try:
            record = self.config.path(self.config.node.checkpoint).with_suffix(".json")
        except ValueError:
            self.problem("[node] checkpoint", f"{self.config.node.checkpoint!r} is not a file name; write e.g. "
                         'checkpoint = "checkpoint"', "node.checkpoint")
            return
        problem = f"{record} is a folder" if record.is_dir() else _writable_folder(record.parent)
        if problem:
            self.problem("[node] checkpoint", f"{problem}; set checkpoint to a file name in a writable folder",
                         "node.checkpoint")

    # ------------------------------------------------------------------ data
    def data(self) -> None:
        from trainer.data import DataFileError, UnknownDatasetError
        from trainer.partition import PartitionError

        from .localdata import load_local_data

        from .plugins import PluginError

        data = self.config.data
        uses = (["loader", "options", "n_classes"] if data.loader else
                ["file", "label_column", "n_classes", "seed"] if data.file
                else ["dataset", "shard", "shards", "partition", "alpha", "seed"])
        if not self.ok(*(f"data.{key}" for key in uses)):
            return
        try:
            self.local = load_local_data(self.config)
        except PluginError as exc:
            self.problem("[data] loader", str(exc), "data.loader")
        except DataFileError as exc:
            self.problem("[data] file", f"{exc}; {_data_fix(exc, self.config)}", "data.file")
        except UnknownDatasetError as exc:  # a name the registry refused is reported by `names`
            self.problem("[data] dataset", str(exc), "data.dataset")
        except PartitionError as exc:
            fix = "" if ";" in str(exc) else "; lower shards"
            self.problem("[data] shards", f"dataset {data.dataset!r} cannot be dealt into {data.shards} shards "
                         f"({data.partition}, alpha = {data.alpha}): {exc}{fix}", "data.shards")

    def model(self) -> None:
        from trainer.models import ModelConfigError

        from .compat import incompatibility
        from .plugins import PluginError, node_model

        if self.local is None or not self.ok("model.name", "model.factory"):
            return
        section, local = self.config.model, self.local
        name = section.factory or section.name
        data_key = ("[data] loader" if self.config.data.loader else
                    "[data] file" if self.config.data.file else "[data] dataset")
        try:
            model = node_model(section, local.n_features, local.n_classes, self.config.data.seed,
                               self.config.base_dir)
        except PluginError as exc:
            self.problem("[model] factory", str(exc), "model.factory")
            return
        except ModelConfigError as exc:
            self.problem("[model] name", f"{exc} (the data has {local.n_features} features and {local.n_classes} "
                         "classes); choose a model that fits the data", "model.name")
            return
        if self.record is None:
            return
        problem = incompatibility(self.record.get("config", {}), name, local.n_features, local.n_classes, model)
        if problem is not None:
            where = "[model] name" if problem.startswith(("[model]", "the swarm's model", "tensor", "the models")) \
                else data_key
            fix = "" if ";" in problem else ("; give this node data and a model that fit the swarm's, or point "
                                             "[chain] deployment at the swarm it belongs to")
            self.problem(where, f"this node cannot join the swarm of {self.config.chain.deployment}: {problem}{fix}",
                         "model.name")


def _writable_folder(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (created on demand), or None: an existing
    folder gets a probe file, a missing one its nearest existing ancestor."""
    target = folder
    while not target.exists():
        if target.parent == target:
            return f"{folder} cannot be created"
        target = target.parent
    if not target.is_dir():
        return f"{folder} is a file, not a folder" if target == folder else \
            f"{target} is a file, so {folder} cannot be created"
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".partial-probe-"):
            pass
    except OSError as exc:
        return f"{folder} is not writable ({exc.strerror or exc})" if target == folder else \
            f"{folder} cannot be created: {target} is not writable ({exc.strerror or exc})"
    return None


def _data_fix(exc: Exception, config: NodeConfig) -> str:
    """The fix for a data file the loader refused (its message says what is wrong where)."""
    text = str(exc)
    if "does not exist" in text:
        return "point [data] file at the node's .csv or .npz (relative to the config's folder)"
    if "label column" in text or "label array" in text:
        return "set [data] label_column to the name of the label column"
    if "outside [0, n_classes)" in text:
        return "relabel the samples 0 .. n_classes - 1, or set [data] n_classes to the swarm's class count"
    if "at least 2 classes" in text:
        return "set [data] n_classes to the swarm's class count"
    if "unsupported file type" in text:
        return "save the data as .csv (header row, numeric cells) or .npz"
    return "correct the file: a header row, then one sample per line with a finite number in every cell"
