"""The swarm's deployment configuration: read from TOML, checked with messages that say
what to fix, and turned into the `SwarmLearning.Config` constructor tuple.

The contract checks the same bounds (custom error `InvalidConfig`); checking here first
turns a revert into a line that names the file and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .rewards import BPS, DEFAULT_BETA_BPS, DEFAULT_SMOOTHING_BPS, DEFAULT_STANDING_BPS, Rule
from .units import METRIC_SCALE, tokens_to_wei


MAX_PEERS = 112
"""The contract's bound on maxPeers: a full epoch's settlement must fit in one transaction
(131,072 bytes, the clients' limit) and one block (measured in contracts/SwarmLearning.sol)."""


MAX_REWARD_WEI = 10**30
"""The contract's bound on rewardPerEpoch (10^12 tokens): with it, no arithmetic on the
budget and its carry can overflow."""


class ConfigError(ValueError):
    """A configuration file is missing, malformed or out of range."""


def check_registered(option: str, name: str, registry: Mapping[str, object]) -> None:
    """Refuse a name the user gave for a registered component (attack, merge rule, scorer,
    dataset, ...) before anything starts, with the names that would work."""
    if name not in registry:
        raise ConfigError(f"{option}: unknown {name!r}; known: {', '.join(sorted(registry))}")


@dataclass(frozen=True)
class SwarmConfig:
    """Everything fixed at deployment. Durations in seconds, metrics as fractions,
    token amounts in tokens (converted to wei for the chain)."""

    min_peers: int = 3
    max_peers: int = 16
    commit_window: int = 30
    merge_window: int = 60
    report_window: int = 60
    reward_per_epoch: str = "1000"
    beta: float = DEFAULT_BETA_BPS / BPS
    smoothing: float = DEFAULT_SMOOTHING_BPS / BPS
    standing: float = DEFAULT_STANDING_BPS / BPS
    suspend_after: int = 3
    merge_rule: str = "fltrust_median"
    scorer: str = "auto"
    # The swarm's model, recorded in the deployment record (not on chain) so a node can
    # refuse to enrol with a model that does not fit; n_classes = 0: not recorded.
    model: str = "mlp"  # a registered model, or your own factory "package.module:function"
    model_options: dict[str, Any] = field(default_factory=dict, hash=False)  # the factory's keyword arguments
    n_features: int = 0
    n_classes: int = 0
    target_metric: float = 0.0
    max_epochs: int = 20
    patience: int = 0
    min_delta: float = 0.0
    token_name: str = "Swarm Token"
    token_symbol: str = "SWARM"
    token_cap: str = "0"
    keep_token_admin: bool = False
    admin_delay: int = 0

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.max_peers <= MAX_PEERS, f"max_peers must be between 1 and {MAX_PEERS}"),
            (1 <= self.min_peers <= self.max_peers, "min_peers must be between 1 and max_peers"),
            (self.commit_window > 0, "commit_window must be > 0 seconds"),
            (self.merge_window > 0, "merge_window must be > 0 seconds"),
            (self.report_window > 0, "report_window must be > 0 seconds"),
            (0.0 <= self.beta <= 1.0, "beta must be in [0, 1] (the share of the budget split by data volume)"),
            (1 <= _bps(self.smoothing) <= BPS, f"smoothing must be in [{1 / BPS}, 1] (the weight of an epoch's credit "
                                               "in the smoothed credit; 1 = no smoothing)"),
            (0.0 <= self.standing <= 1.0, "standing must be in [0, 1] (the fraction of the average smoothed credit "
                                          "per sample that full data weight needs)"),
            (0 <= self.suspend_after <= 255, "suspend_after must be in [0, 255] (0 = off)"),
            (self.max_epochs > 0, "max_epochs must be > 0"),
            (self.patience >= 0, "patience must be >= 0 (0 = off)"),
            (0 <= self.min_delta <= 1, "min_delta must be in [0, 1] (a metric gain)"),
            (bool(self.merge_rule) and len(self.merge_rule) <= 32, "merge_rule must be 1-32 characters"),
            (bool(self.scorer) and len(self.scorer) <= 32, "scorer must be 1-32 characters"),
            (bool(self.model), "model must name a model (see `trainer.models.MODELS`)"),
            (self.n_features >= 0 and (self.n_classes == 0 or (self.n_classes >= 2 and (self.n_features >= 1
                                                                                      or ":" in self.model))),
             "n_classes must be 0 (not recorded) or >= 2, with n_features >= 1 (0 with a model factory)"),
            (0 <= self.admin_delay < 2**48, "admin_delay must be >= 0 seconds"),
            (self.admin_delay == 0 or self.keep_token_admin,
             "admin_delay only applies with keep_token_admin = true (by default nobody keeps the token admin)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if not 0 < tokens_to_wei(self.reward_per_epoch) <= MAX_REWARD_WEI:
            raise ConfigError(f"reward_per_epoch must be > 0 and at most {MAX_REWARD_WEI // 10**18} tokens")
        if not 0 <= self.target_metric <= 1:
            raise ConfigError("target_metric must be in [0, 1] (0 = off)")
        tokens_to_wei(self.token_cap)

    @classmethod
    def from_toml(cls, path: str | Path) -> SwarmConfig:
        """Read a config file: top-level keys named like the fields (unknown keys refused,
        so a typo cannot silently fall back to a default)."""
        return cls.from_mapping(read_toml(path), source=str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "config") -> SwarmConfig:
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rule(self) -> Rule:
        """The settlement parameters in basis points, as the contract and `rewards` take them."""
        return Rule(beta_bps=_bps(self.beta), smoothing_bps=_bps(self.smoothing),
                    standing_bps=_bps(self.standing))

    def contract_fields(self) -> dict[str, Any]:
        """`SwarmLearning.Config`'s fields by their Solidity names, in struct order."""
        rule = self.rule()
        return {
            "minPeers": self.min_peers,
            "maxPeers": self.max_peers,
            "commitWindow": self.commit_window,
            "mergeWindow": self.merge_window,
            "reportWindow": self.report_window,
            "betaBps": rule.beta_bps,
            "smoothingBps": rule.smoothing_bps,
            "standingBps": rule.standing_bps,
            "suspendAfter": self.suspend_after,
            "maxEpochs": self.max_epochs,
            "patience": self.patience,
            "targetMetric": round(self.target_metric * METRIC_SCALE),
            "minDelta": round(self.min_delta * METRIC_SCALE),
            "rewardPerEpoch": tokens_to_wei(self.reward_per_epoch),
            "mergeRule": _bytes32(self.merge_rule),
            "scorer": _bytes32(self.scorer),
        }

    def contract_tuple(self) -> tuple:
        """Arguments for `SwarmLearning.Config`, in struct order."""
        return tuple(self.contract_fields().values())


def chain_rule(config: Mapping[str, Any]) -> Rule:
    """The settlement rule a deployed swarm applies, from its on-chain ``config()``: what
    the audit recomputes with."""
    return Rule(beta_bps=int(config["betaBps"]),
                smoothing_bps=int(config["smoothingBps"]), standing_bps=int(config["standingBps"]))


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's contents, or a ConfigError naming the file and what is wrong."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _bps(fraction: float) -> int:
    """A fraction in basis points, rounded to the nearest (what the contract stores)."""
    return round(fraction * BPS)


def _bytes32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")
