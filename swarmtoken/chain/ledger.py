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

from ..rewards import Forfeit, Report, Reports, settle_arguments


@dataclass
class CommitRecord:
    index: int
    node: str
    commitment: str  # hex, no 0x: keccak256(abi.encode(node, epoch, sha256 of the file))
    declared: int  # samples the node declared
    samples: int  # what counts: the declared count capped by the node's allowance


@dataclass
class ReportRecord:
    reporter: str
    metric: int
    scores: list[int]
    merged_hash: str  # hex, no 0x: the merge the reporter recomputed
    valid: int  # bitmap over commit indices of the updates it found valid

    def as_report(self) -> Report:
        """The report as `rewards` reads it, reporter included (its score for itself is ignored)."""
        return Report(self.metric, self.scores, self.merged_hash, self.valid, self.reporter)


@dataclass
class OutcomeRecord:
    """One participant's settlement as ``ParticipantSettled`` tells it: the epoch's credit
    (the mean of the other reporters' votes), the smoothed credit after the epoch, and
    whether it stood well (full data weight)."""

    node: str
    samples: int
    score: int
    smoothed: int
    standing: bool
    payout: int
    forfeit: Forfeit

    @property
    def forfeited(self) -> bool:
        return self.forfeit is not Forfeit.NONE


@dataclass
class EpochRecord:
    """One epoch as the events tell it. ``participants`` are commit indices."""

    epoch: int
    commits: list[CommitRecord] = field(default_factory=list)
    leader: str | None = None
    skipped: list[str] = field(default_factory=list)
    merged_hash: str | None = None  # the leader's
    participants: list[int] = field(default_factory=list)
    disputes: list[str] = field(default_factory=list)  # what settlement found against the leader
    rejected: list[str] = field(default_factory=list)  # committers whose update was rejected (UpdateRejected)
    forfeits: list[tuple[str, int]] = field(default_factory=list)  # (account, amount) its suspensions forfeited
    # per account suspended in this epoch: its unclaimed credits from earlier epochs when the
    # suspension came (its own payout of the epoch, settled after, is added by the audit)
    owed_at_suspension: dict[str, int] = field(default_factory=dict)
    reports: list[ReportRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    budget: int | None = None
    credited: int | None = None
    carried: int | None = None
    median_metric: int | None = None
    quorate: bool | None = None
    model_hash: str | None = None  # the epoch's global model, fixed at settlement
    settled_at: tuple[int, int] | None = None  # (block, log index)
    abandoned: bool = False

    def participant_nodes(self) -> list[str]:
        by_index = {c.index: c.node for c in self.commits}
        return [by_index[i] for i in self.participants]

    def settlement_args(self) -> tuple[Reports, int]:
        """``settle(epoch, reports, metric)``'s arguments after the epoch number."""
        return settle_arguments([(r.reporter, r.as_report()) for r in self.reports], len(self.participants))


@dataclass
class MembershipEvent:
    kind: str  # authorized | enrolled | left | expired | removed | suspended
    account: str
    at: tuple[int, int]
    epoch: int | None = None  # suspended: the epoch whose settlement gave the last strike
    strikes: int | None = None  # suspended: the consecutive strikes it had then
    allowance: int | None = None  # authorized: the attested sample allowance
    expiry: int | None = None  # authorized: unix time the authorisation ends (0 = never)


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
    owed: dict[str, int] = {}  # every account's credits - claims - forfeits so far, in chain order
    membership: list[MembershipEvent] = []

    def epoch_of(args: Any) -> EpochRecord:
        number = int(args["epoch"])
        return epochs.setdefault(number, EpochRecord(number))

    membership_kinds = {
        "AccountAuthorized": "authorized",
        "NodeEnrolled": "enrolled",
        "NodeLeft": "left",
        "NodeExpired": "expired",
        "NodeRemoved": "removed",
        "NodeSuspended": "suspended",
    }
    for name, log in entries:
        args = log.args
        at = (log.blockNumber, log.logIndex)
        if name in membership_kinds:
            event = MembershipEvent(membership_kinds[name], args["account"], at)
            if name == "NodeSuspended":
                event.epoch, event.strikes = int(args["epoch"]), int(args["strikes"])
                epoch_of(args).owed_at_suspension[args["account"]] = owed.get(args["account"], 0)
            elif name == "AccountAuthorized":
                event.allowance, event.expiry = int(args["allowance"]), int(args["expiry"])
            membership.append(event)
        elif name == "EpochOpened":
            epoch_of(args)
        elif name == "UpdateSubmitted":
            epoch_of(args).commits.append(
                CommitRecord(int(args["index"]), args["node"], _hex(args["commitment"]),
                             int(args["declaredSamples"]), int(args["samples"]))
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
            record.participants = _bits(int(args["participants"]))
        elif name == "ValidationReported":
            epoch_of(args).reports.append(ReportRecord(args["reporter"], int(args["metric"]), [int(s) for s in args["scores"]],
                                                       _hex(args["mergedHash"]), int(args["valid"])))
        elif name == "MergeDisputed":
            epoch_of(args).disputes.append(f"leader {args['leader']} published {_hex(args['publishedHash'])[:12]}, "
                                           f"a strict majority recomputed {_hex(args['majorityHash'])[:12]}")
        elif name == "UpdateCensored":
            epoch_of(args).disputes.append(f"leader {args['leader']} left out {args['node']}, "
                                           "whose update a strict majority found valid")
        elif name == "UpdateRejected":
            epoch_of(args).rejected.append(args["node"])
        elif name == "BalanceForfeited":
            epoch_of(args).forfeits.append((args["account"], int(args["amount"])))
            owed[args["account"]] = owed.get(args["account"], 0) - int(args["amount"])
        elif name == "ParticipantSettled":
            epoch_of(args).outcomes.append(
                OutcomeRecord(args["node"], int(args["samples"]), int(args["score"]), int(args["smoothedScore"]),
                              bool(args["standing"]), int(args["payout"]), Forfeit(int(args["forfeit"])))
            )
            owed[args["node"]] = owed.get(args["node"], 0) + int(args["payout"])
        elif name == "EpochSettled":
            record = epoch_of(args)
            record.budget = int(args["budget"])
            record.credited = int(args["credited"])
            record.carried = int(args["carried"])
            record.median_metric = int(args["medianMetric"]) if int(args["reporters"]) else None
            record.quorate = bool(args["quorate"])
            record.model_hash = _hex(args["modelHash"])
            record.settled_at = at
        elif name == "RewardClaimed":
            claims.append((args["account"], int(args["amount"])))
            owed[args["account"]] = owed.get(args["account"], 0) - int(args["amount"])
    return Ledger(epochs=epochs, claims=claims, membership=membership)
