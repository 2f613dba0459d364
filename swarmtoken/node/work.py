"""What a node's phases share: its per-epoch working state, its error, and the epoch's
seed and text helpers."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from ..chain.ledger import CommitRecord

log = logging.getLogger("swarm.node")
STATUS_NONE, STATUS_ACTIVE = 0, 1
STATUSES = ("none", "active", "suspended", "removed")
#: Seconds between nodes' attempts at the same transaction, by commit index.
STAGGER_S = 0.5


@dataclass
class EpochWork:
    """What this node did or learned in one epoch."""

    own_sha: str | None = None
    updates: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # the valid ones
    # Well-formed updates a validity check rejected: judged again with the valid ones, so the
    # verdicts (which depend on the whole set, through a median) are the same on every pass.
    rejected_steps: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    shas: dict[int, str] = field(default_factory=dict)  # file hash per fetched commit index
    fetched: set[int] = field(default_factory=set)  # commit indices tried (valid or not)
    merged_sha: str | None = None
    merged: dict[str, torch.Tensor] | None = None
    peer_updates: list[dict[str, torch.Tensor]] = field(default_factory=list)  # the others' merged updates
    copied: CommitRecord | None = None  # a copycat's victim
    merge_seen: float | None = None  # when we first saw the Merge phase
    elected: bool = False  # our transaction closed the commits
    published: bool = False
    reported: bool = False
    all_reported_seen: float | None = None
    commits_seen: tuple[int, float] | None = None  # (commit count, when we first saw it)
    claim_checked: bool = False  # the mid-run claim was considered in this epoch
    # Our transactions the chain accepted (method -> arguments): sent again as they were if
    # a reorganisation of recent blocks drops them, so the node resumes where the chain is.
    sent: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def bytes32_text(value: bytes) -> str:
    return bytes(value).rstrip(b"\0").decode()


def epoch_seed(swarm_address: str, epoch: int) -> int:
    """The seed every validator uses for epoch ``epoch``'s sampled coalitions: derived from
    public data only, so all validators sample the same ones."""
    return int.from_bytes(hashlib.sha256(f"{swarm_address.lower()}:{epoch}".encode()).digest()[:4], "big")
