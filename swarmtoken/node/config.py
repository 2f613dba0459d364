"""A node's configuration file (TOML): where its chain, keys, data and store are.

Relative paths are resolved against the config file's folder, so a node folder can be
moved as a whole. Unknown keys are refused, so a typo never silently falls back to a
default.

    [chain]
    network = "development"     # any network id brownie knows
    rpc_port = 8545             # development network only: where the local chain listens
    deployment = "deployment.json"
    keystore = "keys/node-1.json"   # password from SWARM_KEYSTORE_PASSWORD or a prompt

    [store]
    dir = "store"
    host = "127.0.0.1"
    port = 0                    # fix it for a node that must survive restarts
    public_url = ""             # e.g. https://node1.example.org behind a TLS proxy

    [data]
    dataset = "digits"          # or file = "my.csv" with label_column and n_classes
    shard = 0
    shards = 5
    partition = "dirichlet"
    alpha = 0.5
    seed = 0

    [model]
    name = "mlp"

    [train]                     # trainer.TrainConfig fields
    lr = 0.05

    [node]
    checkpoint = "checkpoint"
    poll_interval = 0.2
    elect_grace = 20.0          # after the commit window, wait this long for absent members
    elect_early = true          # close the commits as soon as every active member committed
    attack = ""                 # demos and tests only: make this node a rogue
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config import ConfigError, read_toml


@dataclass(frozen=True)
class ChainSection:
    network: str = "development"
    rpc_port: int = 8545
    deployment: str = "deployment.json"
    keystore: str = "keystore.json"


@dataclass(frozen=True)
class StoreSection:
    dir: str = "store"
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str = ""


@dataclass(frozen=True)
class DataSection:
    dataset: str = "digits"
    file: str = ""
    label_column: str = "label"
    n_classes: int = 0
    shard: int = 0
    shards: int = 1
    partition: str = "dirichlet"
    alpha: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class ModelSection:
    name: str = "mlp"


@dataclass(frozen=True)
class NodeSection:
    checkpoint: str = "checkpoint"
    poll_interval: float = 0.2
    attack: str = ""
    elect_grace: float = 20.0
    elect_early: bool = True
    fetch_timeout: float = 5.0
    # Peers release their file on their first poll after the election, so the leader's
    # first requests can meet 403: 4 retries at 0.3 s doubling wait up to 4.5 s for them.
    fetch_retries: int = 4
    fetch_backoff: float = 0.3
    serve_after_finish: bool = False
    claim_at_finish: bool = True


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
        sections = {"chain": ChainSection, "store": StoreSection, "data": DataSection,
                    "model": ModelSection, "node": NodeSection}
        unknown = sorted(set(data) - set(sections) - {"train"})
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {', '.join(unknown)}")
        built: dict[str, Any] = {"train": dict(data.get("train", {})), "base_dir": base_dir}
        for name, section in sections.items():
            values = data.get(name, {})
            known = {f.name for f in fields(section)}
            bad = sorted(set(values) - known)
            if bad:
                raise ConfigError(f"{source}: unknown key(s) in [{name}]: {', '.join(bad)}; known: {', '.join(sorted(known))}")
            try:
                built[name] = section(**values)
            except TypeError as exc:
                raise ConfigError(f"{source}: [{name}] {exc}") from None
        config = cls(**built)
        if not 0 <= config.data.shard < config.data.shards:
            raise ConfigError(f"{source}: [data] shard must be in [0, shards), got {config.data.shard} of {config.data.shards}")
        if config.node.poll_interval <= 0:
            raise ConfigError(f"{source}: [node] poll_interval must be > 0")
        return config

    def to_toml(self) -> str:
        """Serialise (for the demo, which writes one config per node)."""
        lines: list[str] = []
        for name in ("chain", "store", "data", "model", "train", "node"):
            section = getattr(self, name)
            values = section if isinstance(section, dict) else {f.name: getattr(section, f.name) for f in fields(section)}
            lines.append(f"[{name}]")
            for key, value in values.items():
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
