"""A node's configuration file (TOML): where its chain, keys, data and store are.

Relative paths are resolved against the config file's folder, so a node folder can be
moved as a whole. Every key is typed and range-checked when the file is read, and unknown
sections and keys are refused (with the closest known name), so a typo or a quoted number
never silently falls back to a default or fails later in the run. Every problem is
reported, one line each, naming the file, the section and key, and the fix. Integers are
accepted where a number is expected; a quoted "20" is not a number, and true/false are not
integers. What needs the disk or the registries (names of datasets, models, partitions and
attacks, the data file's contents, the deployment record, the keystore, the store folder
and port) is checked next, still before the chain, by `swarmtoken.node.checks`.

    [chain]
    network = "development"     # any network id brownie knows (default: the deployment record's)
    rpc_port = 8545             # 1-65535; development network only (default: the record's port, else 8545)
    deployment = "deployment.json"  # the record `swarm deploy` wrote (JSON)
    keystore = "keys/node-1.json"   # a keystore file; password from SWARM_KEYSTORE_PASSWORD or a prompt

    [store]
    dir = "store"               # created if missing; must be writable
    host = "127.0.0.1"          # the address the parameter store binds (IPv4 or a host name)
    port = 0                    # 0-65535, 0: the system picks a free port; fix it for a node
                                # that must survive restarts (it must then be free)
    public_url = ""             # e.g. https://node1.example.org behind a TLS proxy (http or https)

    [data]
    dataset = "digits"          # a bundled dataset (`trainer.data.DATASETS`), or:
    file = ""                   # the node's own .csv (header row, numeric cells) or .npz; wins over dataset
    label_column = "label"      # the file's label column (labels 0 .. n_classes - 1)
    n_classes = 0               # the file's class count: 0 (the largest label + 1) or >= 2
    shard = 0                   # dataset only: this node's share, 0 <= shard < shards
    shards = 5                  # dataset only: how many shares the dataset is dealt into (>= 1)
    partition = "dirichlet"     # dataset only: iid, dirichlet or quantity (`trainer.partition`)
    alpha = 0.5                 # dataset only: the Dirichlet concentration (> 0)
    seed = 0                    # 0 <= seed < 2**32: the split, the validation cut, the initial model
    loader = ""                 # your own data instead: "package.module:function" (`plugins`); the
                                # section's other keys are its options

    [model]
    name = "mlp"                # a registered model (`trainer.models.MODELS`)
    factory = ""                # your own model instead: "package.module:function" (`plugins`); the
                                # section's other keys are its options

    [train]                     # trainer.TrainConfig fields, with its types and ranges
    lr = 0.05                   # also batch_size, local_epochs, steps, optimizer, momentum, weight_decay

    [node]
    checkpoint = "checkpoint"   # the last adopted model is recorded in <checkpoint>.json
    poll_interval = 0.2         # seconds (> 0): longest wait between passes of the loop (a new block ends it sooner)
    elect_grace = 20.0          # seconds (>= 0): after the commit window, wait this long for absent members
    elect_early = true          # close the commits as soon as every active member committed
    fetch_timeout = 5.0         # seconds (> 0) per download of a peer's file
    fetch_retries = 4           # retries (>= 0) of a failed download
    fetch_backoff = 0.3         # seconds (>= 0) before the first retry, doubling after each
    serve_after_finish = false  # keep serving the store after the swarm finished
    claim_at_finish = true      # claim the earned tokens when the swarm finished
    claim_every = 5             # epochs (>= 0): claim unlocked tokens mid-run at most this often (0: only at the finish)
    attack = ""                 # demos and tests only: make this node a rogue
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlparse

from ..config import ConfigError, read_toml

#: A range check of one key: the value (already of the right type) to a message saying
#: what is expected, or None when it is fine.
Check = Callable[[Any], "str | None"]


class ConfigProblems(ConfigError):
    """Everything wrong with a config file, one problem a line (``problems``), each naming
    the file, the section and key (or the data file's row and column) and the fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _key(default: Any, check: Check | None = None) -> Any:
    return field(default=default, metadata={"check": check} if check else {})


def _at_least(low: float, unit: str = "") -> Check:
    return lambda v: None if _finite(v) and v >= low else f"must be >= {low}{unit}"


def _above(low: float, unit: str = "") -> Check:
    return lambda v: None if _finite(v) and v > low else f"must be > {low}{unit}"


def _between(low: int, high: int, note: str = "") -> Check:
    return lambda v: None if low <= v <= high else f"must be in [{low}, {high}]{note}"


def _non_empty(what: str) -> Check:
    return lambda v: None if v.strip() else f"must not be empty: it names {what}"


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _n_classes(value: int) -> str | None:
    return None if value == 0 or value >= 2 else "must be 0 (the largest label + 1) or >= 2"


def _url(value: str) -> str | None:
    if not value:
        return None
    parts = urlparse(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be empty or an http(s) URL such as https://node1.example.org"
    return None


def _plugin(value: str) -> str | None:
    from .plugins import FORM, is_spec

    return None if not value or is_spec(value) else f"must be empty or name a function as {FORM!r}"


@dataclass(frozen=True)
class ChainSection:
    network: str = _key("development", _non_empty("a brownie network"))
    rpc_port: int = _key(8545, _between(1, 65535))
    deployment: str = _key("deployment.json", _non_empty("the deployment record"))
    keystore: str = _key("keystore.json", _non_empty("the node's keystore file"))


@dataclass(frozen=True)
class StoreSection:
    dir: str = _key("store", _non_empty("the store folder"))
    host: str = _key("127.0.0.1", _non_empty("the address the store binds"))
    port: int = _key(0, _between(0, 65535, " (0: the system picks a free port)"))
    public_url: str = _key("", _url)


@dataclass(frozen=True)
class DataSection:
    dataset: str = "digits"
    file: str = ""
    label_column: str = "label"
    n_classes: int = _key(0, _n_classes)
    shard: int = _key(0, _at_least(0))
    shards: int = _key(1, _at_least(1))
    partition: str = "dirichlet"
    alpha: float = _key(0.5, _above(0))
    seed: int = _key(0, _between(0, 2**32 - 1))
    loader: str = _key("", _plugin)  # your own data: see `plugins`; then dataset and file are not used
    options: dict[str, Any] = field(default_factory=dict, hash=False)  # the loader's keyword arguments


@dataclass(frozen=True)
class ModelSection:
    name: str = _key("mlp", _non_empty("a registered model"))
    factory: str = _key("", _plugin)  # your own model: see `plugins`; then `name` is not used
    options: dict[str, Any] = field(default_factory=dict, hash=False)  # the factory's keyword arguments


@dataclass(frozen=True)
class NodeSection:
    checkpoint: str = _key("checkpoint", _non_empty("the checkpoint file"))
    poll_interval: float = _key(0.2, _above(0, " seconds"))
    attack: str = ""
    elect_grace: float = _key(20.0, _at_least(0, " seconds"))
    elect_early: bool = True
    fetch_timeout: float = _key(5.0, _above(0, " seconds"))
    # Peers release their file on their first poll after the election, so the leader's
    # first requests can meet 403: 4 retries at 0.3 s doubling wait up to 4.5 s for them.
    fetch_retries: int = _key(4, _at_least(0))
    fetch_backoff: float = _key(0.3, _at_least(0, " seconds"))
    serve_after_finish: bool = False
    claim_at_finish: bool = True
    # A suspension forfeits what a node has not claimed: claiming now and then keeps what
    # its clean epochs unlocked (about 43,000 gas a claim, so not every epoch).
    claim_every: int = _key(5, _at_least(0, " epochs"))


SECTIONS: dict[str, type] = {"chain": ChainSection, "store": StoreSection, "data": DataSection,
                             "model": ModelSection, "node": NodeSection}


@dataclass(frozen=True)
class NodeConfig:
    chain: ChainSection = field(default_factory=ChainSection)
    store: StoreSection = field(default_factory=StoreSection)
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: dict[str, Any] = field(default_factory=dict)
    node: NodeSection = field(default_factory=NodeSection)
    base_dir: Path = Path(".")

    def path(self, relative: str) -> Path:
        """A path from the config, resolved against the config file's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @classmethod
    def from_toml(cls, path: str | Path) -> NodeConfig:
        return cls.from_mapping(read_toml(path), base_dir=Path(path).resolve().parent, source=str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, base_dir: Path = Path("."), source: str = "node config") -> NodeConfig:
        """The config, or :class:`ConfigProblems` listing every unknown, mistyped or
        out-of-range key."""
        parsed = parse(data, base_dir=base_dir, source=source)
        if parsed.problems:
            raise ConfigProblems(parsed.problems)
        return parsed.config

    def to_toml(self) -> str:
        """Serialise (for the demo, which writes one config per node)."""
        lines: list[str] = []
        for name in ("chain", "store", "data", "model", "train", "node"):
            section = getattr(self, name)
            values = section if isinstance(section, dict) else {f.name: getattr(section, f.name) for f in fields(section)}
            lines.append(f"[{name}]")
            for key, value in values.items():
                if isinstance(value, dict):  # a plug-in's options: its section's other keys
                    lines.extend(f"{option} = {toml_value(v)}" for option, v in value.items())
                else:
                    lines.append(f"{key} = {toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


@dataclass(frozen=True)
class Parsed:
    """A config read leniently: ``config`` holds the default wherever a key was wrong,
    ``problems`` says what was wrong, and ``bad`` names those keys (``"data.shard"``) so
    later checks can skip what depends on them."""

    config: NodeConfig
    problems: list[str]
    bad: frozenset[str]


def parse(data: dict[str, Any], *, base_dir: Path = Path("."), source: str = "node config") -> Parsed:
    """Check every section and key of a node config's contents (names, types, ranges and
    the keys that depend on each other) and collect every problem."""
    problems: list[str] = []
    bad: set[str] = set()
    allowed = [*SECTIONS, "train"]
    for name in sorted(set(data) - set(allowed)):
        problems.append(f"{source}: unknown section [{name}]{_did_you_mean(name, allowed)}; "
                        f"known: {', '.join(f'[{s}]' for s in allowed)}; rename or remove it")
    built: dict[str, Any] = {"base_dir": base_dir}
    for name in allowed:
        values = data.get(name, {})
        if not isinstance(values, dict):
            problems.append(f"{source}: {name} = {_describe(values)}: expected a [{name}] section (a table); "
                            f"write the keys under a line [{name}]")
            bad.add(name)
            values = {}
        if name == "train":
            built[name] = _parse_train(values, source, problems, bad)
            continue
        section = SECTIONS[name]
        values = _plugin_options(name, section, values)
        kwargs = _parse_section(name, section, values, source, problems, bad)
        built[name] = section(**kwargs)
    config = NodeConfig(**built)
    config = _cross_checks(config, source, problems, bad)
    return Parsed(config, problems, frozenset(bad))


PLUGIN_KEYS = {"model": "factory", "data": "loader"}


def _plugin_options(name: str, section: type, values: dict[str, Any]) -> dict[str, Any]:
    """With a plug-in named ([model] factory, [data] loader), the section's keys that are
    not its own fields are the plug-in's options."""
    plugin = PLUGIN_KEYS.get(name)
    if plugin is None or not values.get(plugin) or "options" in values:
        return values
    known = {f.name for f in fields(section)}
    return {**{k: v for k, v in values.items() if k in known},
            "options": {k: v for k, v in values.items() if k not in known}}


def _parse_section(name: str, section: type, values: dict[str, Any], source: str, problems: list[str],
                   bad: set[str]) -> dict[str, Any]:
    known = {f.name: f for f in fields(section)}
    hints = get_type_hints(section)
    unknown = sorted(set(values) - set(known))
    if unknown:
        problems.append(f"{source}: unknown key(s) in [{name}]: {_unknown_keys(unknown, known)}; "
                        f"known: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            continue
        spec = known[key]
        message = _type_problem(key, value, hints[key], spec.default)
        if message is None:
            check = spec.metadata.get("check")
            range_problem = check(value) if check else None
            if range_problem is not None:
                message = f"{range_problem}, got {_describe(value)}; write e.g. {key} = {toml_value(spec.default)}"
            value = _coerce(value, hints[key])
        if message is not None:
            problems.append(f"{source}: [{name}] {key}: {message}")
            bad.add(f"{name}.{key}")
            continue
        kwargs[key] = value
    return kwargs


def _parse_train(values: dict[str, Any], source: str, problems: list[str], bad: set[str]) -> dict[str, Any]:
    """``[train]`` is passed to ``trainer.training.TrainConfig(**train)``: its keys are that
    class's fields, with their types, and each value must pass the class's own checks."""
    if not values:
        return {}
    from trainer.training import TrainConfig, TrainConfigError

    known = {f.name: f for f in fields(TrainConfig)}
    hints = get_type_hints(TrainConfig)
    unknown = sorted(set(values) - set(known))
    if unknown:
        problems.append(f"{source}: unknown key(s) in [train]: {_unknown_keys(unknown, known)}; "
                        f"known (trainer.TrainConfig): {', '.join(sorted(known))}")
        bad.update(f"train.{key}" for key in unknown)
    train: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            continue
        default = known[key].default
        message = _type_problem(key, value, hints[key], default)
        if message is None:
            value = _coerce(value, hints[key])
            try:
                TrainConfig(**{key: value})  # the class's own range check of this one key
            except TrainConfigError as exc:
                text = str(exc).removeprefix(f"{key} ")
                message = (f"{text}; write e.g. {key} = {toml_value(default)}" if default is not None
                           else f"{text}; write a value in range, or remove the key for the default")
        if message is not None:
            problems.append(f"{source}: [train] {key}: {message}")
            bad.add(f"train.{key}")
            continue
        train[key] = value
    return train


def _cross_checks(config: NodeConfig, source: str, problems: list[str], bad: set[str]) -> NodeConfig:
    """Checks that involve two keys; a failing key is reset to its default."""
    data = config.data
    if not {"data.shard", "data.shards"} & bad and not 0 <= data.shard < data.shards:
        problems.append(f"{source}: [data] shard: {data.shard} is out of range; shard must be in [0, shards) with "
                        f"shards = {data.shards}: write a shard from 0 to {data.shards - 1}, or raise shards")
        bad.add("data.shard")
        data = replace(data, shard=0)
    if not data.file.strip() and not data.dataset.strip():
        problems.append(f'{source}: [data] dataset: empty, and no file either; write e.g. dataset = "digits", or '
                        f'file = "my.csv" with its label_column')
        bad.add("data.dataset")
    if data.file.strip() and not data.label_column.strip():
        problems.append(f'{source}: [data] label_column: empty; name the label column of {data.file}, e.g. '
                        f'label_column = "label"')
        bad.add("data.label_column")
    return replace(config, data=data)


def _type_problem(key: str, value: Any, hint: Any, default: Any) -> str | None:
    """What is wrong with ``value``'s type for a key annotated ``hint`` (None: nothing), with
    the line to write instead."""
    if get_origin(hint) is Union or type(hint).__name__ == "UnionType":
        hint = next(arg for arg in get_args(hint) if arg is not type(None))  # TOML has no null
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str)
    elif get_origin(hint) is dict:
        ok = isinstance(value, dict)
        hint = dict
    else:  # pragma: no cover - a field type this module does not know
        raise TypeError(f"{key}: unsupported config field type {hint!r}")
    if ok:
        return None
    return f"expected {_EXPECTED[hint]}, got {_describe(value)}; {_suggest(key, value, hint, default)}"


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string in quotes",
             dict: "a table of the plug-in's options"}


def _coerce(value: Any, hint: Any) -> Any:
    """An integer given for a float key, as a float (so a config reads back identically)."""
    return float(value) if hint is float and isinstance(value, int) else value


def _suggest(key: str, value: Any, hint: Any, default: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if hint is int:
            try:
                return f"write {key} = {int(text)} (no quotes)"
            except ValueError:
                pass
        if hint is float:
            try:
                number = float(text)
                if math.isfinite(number):
                    return f"write {key} = {text} (no quotes)"
            except ValueError:
                pass
        if hint is bool and text.lower() in ("true", "false"):
            return f"write {key} = {text.lower()} (no quotes)"
    if hint is int and isinstance(value, float) and math.isfinite(value) and value == int(value):
        return f"write {key} = {int(value)}"
    if hint is str and isinstance(value, (bool, int, float)):
        return f"write {key} = {toml_value(toml_value(value))} (in quotes)"
    if default is None or default is MISSING:
        return f"write {key} = <{_EXPECTED[hint]}>"
    return f"write e.g. {key} = {toml_value(default)}"


def _describe(value: Any) -> str:
    """A TOML value as the user wrote it, with its kind."""
    if isinstance(value, bool):
        return f"{toml_value(value)} (a boolean)"
    if isinstance(value, str):
        return f"{json.dumps(value)} (a string)"
    if isinstance(value, int):
        return f"{value} (an integer)"
    if isinstance(value, float):
        return f"{value!r} (a number)"
    if isinstance(value, list):
        return f"{json.dumps(value, default=str)} (a list)"
    if isinstance(value, dict):
        return "a table"
    return f"{value} (a date/time)"


def _unknown_keys(unknown: list[str], known: Any) -> str:
    return ", ".join(f"{key}{_did_you_mean(key, known)}" for key in unknown)


def _did_you_mean(name: str, known: Any) -> str:
    close = get_close_matches(name, list(known), n=1, cutoff=0.6)
    close = close or [k for k in known if len(k) > 1 and (name.startswith(k) or k.startswith(name))][:1]
    return f" (did you mean {close[0]}?)" if close else ""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
