"""The contribution ledger, rebuilt from the swarm contract's events alone.

Every state change that moves money or membership emits an event; reading them back in
(block, log index) order reproduces each epoch: who committed what, who led, who was
skipped, what was merged, every validation report, and how settlement split the budget.
Settlement itself needs the reports back (they are hash-chained on chain, not stored), so
the node runtime and anyone who settles read them from here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .rewards import Reports, settle_arguments


@dataclass
class CommitRecord:
    index: int
    node: str
    param_hash: str  # hex, no 0x
    uri: str
    samples: int


@dataclass
class ReportRecord:
    reporter: str
    metric: int
    scores: list[int]


@dataclass
class OutcomeRecord:
    node: str
    samples: int
    median_score: int
    payout: int
    forfeited: bool


@dataclass
class EpochRecord:
    """One epoch as the events tell it. ``participants`` are commit indices."""

    epoch: int
    commits: list[CommitRecord] = field(default_factory=list)
    leader: str | None = None
    skipped: list[str] = field(default_factory=list)
    merged_hash: str | None = None
    merged_uri: str | None = None
    participants: list[int] = field(default_factory=list)
    reports: list[ReportRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    budget: int | None = None
    credited: int | None = None
    carried: int | None = None
    median_metric: int | None = None
    settled_at: tuple[int, int] | None = None  # (block, log index)
    abandoned: bool = False

    def participant_nodes(self) -> list[str]:
        by_index = {c.index: c.node for c in self.commits}
        return [by_index[i] for i in self.participants]

    def settlement_args(self) -> tuple[Reports, list[int], int]:
        """``settle(epoch, reports, medians, metric)``'s arguments after the epoch number."""
        return settle_arguments([(r.reporter, r.metric, r.scores) for r in self.reports], len(self.participants))


@dataclass
class MembershipEvent:
    kind: str  # authorized | enrolled | left | removed | suspended
    account: str
    at: tuple[int, int]


@dataclass
class Ledger:
    epochs: dict[int, EpochRecord]
    claims: list[tuple[str, int]]
    membership: list[MembershipEvent]

    def removed_at(self, account: str, at: tuple[int, int]) -> bool:
        """Whether ``account`` stood removed at position ``at`` (removal not yet lifted by a
        later authorisation)."""
        status = False
        for event in self.membership:
            if event.at >= at or event.account != account:
                continue
            if event.kind == "removed":
                status = True
            elif event.kind == "authorized":
                status = False
        return status


def _hex(value: Any) -> str:
    return bytes(value).hex() if not isinstance(value, str) else value.removeprefix("0x")


def _bits(bitmap: int) -> list[int]:
    return [i for i in range(bitmap.bit_length()) if bitmap >> i & 1]


def read_ledger(swarm: Any, from_block: int = 0, to_block: int | None = None) -> Ledger:
    """Read every event of ``swarm`` (a brownie contract) and assemble the ledger."""
    logbook = swarm.events.get_sequence(from_block, to_block)
    entries = [(name, event) for name, events in logbook.items() for event in events]
    entries.sort(key=lambda item: (item[1].blockNumber, item[1].logIndex))
    return assemble(entries)


def assemble(entries: Iterable[tuple[str, Any]]) -> Ledger:
    """Fold (event name, decoded log) pairs, already in chain order, into a Ledger."""
    epochs: dict[int, EpochRecord] = {}
    claims: list[tuple[str, int]] = []
    membership: list[MembershipEvent] = []

    def epoch_of(args: Any) -> EpochRecord:
        number = int(args["epoch"])
        return epochs.setdefault(number, EpochRecord(number))

    membership_kinds = {
        "AccountAuthorized": "authorized",
        "NodeEnrolled": "enrolled",
        "NodeLeft": "left",
        "NodeRemoved": "removed",
        "NodeSuspended": "suspended",
    }
    for name, log in entries:
        args = log.args
        at = (log.blockNumber, log.logIndex)
        if name in membership_kinds:
            membership.append(MembershipEvent(membership_kinds[name], args["account"], at))
        elif name == "EpochOpened":
            epoch_of(args)
        elif name == "UpdateSubmitted":
            epoch_of(args).commits.append(
                CommitRecord(int(args["index"]), args["node"], _hex(args["paramHash"]), args["uri"], int(args["numSamples"]))
            )
        elif name == "LeaderElected":
            epoch_of(args).leader = args["leader"]
        elif name == "LeaderSkipped":
            record = epoch_of(args)
            record.skipped.append(args["skipped"])
            record.leader = None if int(args["next"], 16) == 0 else args["next"]
        elif name == "EpochAbandoned":
            record = epoch_of(args)
            record.abandoned = True
            record.carried = int(args["carried"])
        elif name == "MergePublished":
            record = epoch_of(args)
            record.merged_hash = _hex(args["mergedHash"])
            record.merged_uri = args["uri"]
            record.participants = _bits(int(args["participants"]))
        elif name == "ValidationReported":
            epoch_of(args).reports.append(ReportRecord(args["reporter"], int(args["metric"]), [int(s) for s in args["scores"]]))
        elif name == "ParticipantSettled":
            epoch_of(args).outcomes.append(
                OutcomeRecord(
                    args["node"], int(args["samples"]), int(args["medianScore"]), int(args["payout"]), bool(args["forfeited"])
                )
            )
        elif name == "EpochSettled":
            record = epoch_of(args)
            record.budget = int(args["budget"])
            record.credited = int(args["credited"])
            record.carried = int(args["carried"])
            record.median_metric = int(args["medianMetric"]) if int(args["reporters"]) else None
            record.settled_at = at
        elif name == "RewardClaimed":
            claims.append((args["account"], int(args["amount"])))
    return Ledger(epochs=epochs, claims=claims, membership=membership)
