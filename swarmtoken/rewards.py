"""The reference settlement rule, in integers, exactly as `SwarmLearning.sol` computes it.

**Quorum.** An epoch with ``c`` commitments and ``k`` reports is *quorate* when
``2 k > c``: a strict majority of the committers reported. Only a quorate epoch pays
scores, gives strikes, judges the leader and feeds the stopping rule; otherwise the whole
budget is carried.

**Leader accountability** (quorate epochs). Every report carries the merge hash its
reporter recomputed and the bitmap of committed updates it found valid. A hash held by a
strict majority of reports that differs from the leader's becomes the epoch's global
model, and the leader is at fault (``MERGE_CONTRADICTED``). A committed update left out
of the merge that a strict majority of reports found valid is censored, and the leader is
at fault (``CENSORED``). A leader at fault forfeits its payout and takes a strike.

**Payouts.** For an epoch with budget ``R`` and participants ``i`` with samples ``d_i``
(the declared count capped by the admin-attested allowance, on chain) and median score
``s_i`` (the lower median of the scores the reporters gave ``i``), the paid set of a
quorate epoch is ``P = {i : s_i > 0}``. With ``D = sum_P d_j``, ``S = sum_P s_j`` and
``beta = beta_bps / 10_000``::

    payout_i = floor(R * (beta_bps * d_i * S + (10_000 - beta_bps) * s_i * D)
                     / (10_000 * D * S))          for i in P, else 0

which is ``floor(R * (beta * d_i / D + (1 - beta) * s_i / S))``. A participant that was
removed, timed out as leader, led the epoch at fault, did not report, or declared more
samples than its allowance *forfeits* (that reason, in that precedence, is recorded even
when it would have been paid nothing): its
payout stays in the carry, so nobody profits from skipping validation. Everything not
credited is carried to the next epoch's budget: ``carried = R - sum(credited)``, never
negative because the shares sum to one and each payout is floored.

**Strikes** (quorate epochs). A participant with ``s_i <= 0``, or a leader at fault, takes
a strike; any other participant's strikes reset. At ``suspend_after`` strikes the member
is suspended, whatever its membership status.

The audit and the tests hold the contract to this module to the wei.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

BPS = 10_000
ZERO_HASH = "00" * 32


class Forfeit(IntEnum):
    """``SwarmLearning.Forfeit``: why a participant's payout was not credited."""

    NONE = 0
    NOT_REPORTED = 1
    LEADER_TIMED_OUT = 2
    REMOVED = 3
    MERGE_CONTRADICTED = 4
    CENSORED = 5
    OVER_DECLARED = 6


@dataclass(frozen=True)
class Participant:
    """One participant's inputs to settlement, in commit-index order. ``samples`` is the
    count the contract recorded (already capped by the allowance)."""

    samples: int
    reported: bool = True
    skipped_leader: bool = False
    removed: bool = False
    leader: bool = False
    over_declared: bool = False  # declared more samples than its allowance


@dataclass(frozen=True)
class Report:
    """One validation report: the reporter's metric, the merge hash it recomputed (hex),
    the bitmap over commit indices of the updates it found valid, and one score per
    participant."""

    metric: int
    scores: Sequence[int]
    merged_hash: str = ZERO_HASH
    valid: int = 0


@dataclass(frozen=True)
class Verdict:
    """The leader's accountability in one epoch: the epoch's model hash, the fault (NONE
    when the leader stands), and the commit indices of censored updates."""

    model_hash: str
    fault: Forfeit
    censored: tuple[int, ...]


@dataclass(frozen=True)
class Settlement:
    """What settlement decides: per-participant median score, payout (0 when forfeited or
    unpaid), forfeit reason, the total credited, what is carried, the median metric
    (None when nobody reported), whether the epoch was quorate, and the leader verdict."""

    medians: tuple[int, ...]
    payouts: tuple[int, ...]
    forfeits: tuple[Forfeit, ...]
    credited: int
    carried: int
    median_metric: int | None
    quorate: bool
    verdict: Verdict


def lower_median(values: Sequence[int]) -> int:
    """Element ``(k - 1) // 2`` of the sorted values: unlike the mean of the two middle
    values, needs no rounding rule."""
    if not values:
        raise ValueError("lower_median of an empty sequence")
    return sorted(values)[(len(values) - 1) // 2]


def median_scores(score_vectors: Sequence[Sequence[int]], n: int) -> list[int]:
    """Per-participant lower median across reporters; all zeros when nobody reported."""
    for vector in score_vectors:
        if len(vector) != n:
            raise ValueError(f"score vector has {len(vector)} entries, expected {n}")
    if not score_vectors:
        return [0] * n
    return [lower_median([vector[j] for vector in score_vectors]) for j in range(n)]


def is_quorate(reports: int, commits: int) -> bool:
    """A strict majority of the epoch's committers reported."""
    return 2 * reports > commits


def strict_majority(values: Sequence[str]) -> str | None:
    """The value held by more than half of ``values``, if any."""
    if not values:
        return None
    value, votes = Counter(values).most_common(1)[0]
    return value if 2 * votes > len(values) else None


def judge_leader(published_hash: str, participants: int, commits: int, reports: Sequence[Report]) -> Verdict:
    """The leader's verdict in a quorate epoch (see module docstring). ``participants`` is
    the leader's bitmap over commit indices; ``commits`` the number of commitments."""
    majority = strict_majority([r.merged_hash for r in reports])
    model, fault = published_hash, Forfeit.NONE
    if majority is not None and majority != ZERO_HASH and majority != published_hash:
        model, fault = majority, Forfeit.MERGE_CONTRADICTED
    censored = tuple(
        index for index in range(commits)
        if not participants >> index & 1 and 2 * sum(r.valid >> index & 1 for r in reports) > len(reports)
    )
    if censored and fault is Forfeit.NONE:
        fault = Forfeit.CENSORED
    return Verdict(model, fault, censored)


Reports = tuple[list[str], list[int], list[bytes], list[int], bytes]
"""``SwarmLearning.Reports``: reporters, metrics, merge hashes, valid bitmaps, and every
score vector packed."""


def settle_arguments(reports: Sequence[tuple[str, Report]], n: int) -> tuple[Reports, list[int], int]:
    """``settle(epoch, reports, medians, metric)``'s arguments after the epoch number, from
    the epoch's ``(reporter, report)`` pairs in emission order: the reports in the
    contract's packed form (each score 8 bytes, big-endian two's complement, report after
    report) and the lower medians the contract verifies instead of sorting."""
    vectors = [list(report.scores) for _, report in reports]
    medians = median_scores(vectors, n)
    packed = b"".join(score.to_bytes(8, "big", signed=True) for vector in vectors for score in vector)
    metrics = [report.metric for _, report in reports]
    packed_reports = (
        [reporter for reporter, _ in reports],
        metrics,
        [bytes.fromhex(report.merged_hash) for _, report in reports],
        [report.valid for _, report in reports],
        packed,
    )
    return packed_reports, medians, lower_median(metrics) if metrics else 0


def payout(budget: int, samples: int, score: int, total_data: int, total_score: int, beta_bps: int) -> int:
    """One paid participant's payout (see module docstring); integer floor like mulDiv."""
    numerator = beta_bps * samples * total_score + (BPS - beta_bps) * score * total_data
    return budget * numerator // (BPS * total_data * total_score)


def forfeit_of(participant: Participant, leader_fault: Forfeit) -> Forfeit:
    """Why ``participant`` forfeits, in the contract's order of precedence."""
    if participant.removed:
        return Forfeit.REMOVED
    if participant.skipped_leader:
        return Forfeit.LEADER_TIMED_OUT
    if participant.leader and leader_fault is not Forfeit.NONE:
        return leader_fault
    if not participant.reported:
        return Forfeit.NOT_REPORTED
    if participant.over_declared:
        return Forfeit.OVER_DECLARED
    return Forfeit.NONE


def settle(
    budget: int,
    participants: Sequence[Participant],
    reports: Sequence[Report],
    *,
    beta_bps: int,
    commits: int | None = None,
    participants_bitmap: int | None = None,
    published_hash: str = ZERO_HASH,
) -> Settlement:
    """Settle one epoch. ``reports`` carry one score per participant in commit-index order.
    ``commits`` (default: the participants) and ``participants_bitmap`` (default: the
    first ``len(participants)`` indices) place the participants among the commitments."""
    if not 0 <= beta_bps <= BPS:
        raise ValueError(f"beta_bps must be in [0, {BPS}], got {beta_bps}")
    n = len(participants)
    commits = n if commits is None else commits
    bitmap = (1 << n) - 1 if participants_bitmap is None else participants_bitmap
    medians = median_scores([r.scores for r in reports], n)
    quorate = is_quorate(len(reports), commits)
    verdict = judge_leader(published_hash, bitmap, commits, reports) if quorate else \
        Verdict(published_hash, Forfeit.NONE, ())
    paid = [j for j in range(n) if quorate and medians[j] > 0]
    total_data = sum(participants[j].samples for j in paid)
    total_score = sum(medians[j] for j in paid)
    forfeits = tuple(forfeit_of(p, verdict.fault) for p in participants)
    payouts = [0] * n
    for j in paid:
        if forfeits[j] is Forfeit.NONE:
            payouts[j] = payout(budget, participants[j].samples, medians[j], total_data, total_score, beta_bps)
    credited = sum(payouts)
    metric = lower_median([r.metric for r in reports]) if reports else None
    return Settlement(tuple(medians), tuple(payouts), forfeits, credited, budget - credited, metric, quorate, verdict)


def strikes_after(strikes: int, median: int, leader_fault: bool) -> int:
    """A participant's strike count after a quorate epoch (capped at uint8's maximum)."""
    return min(strikes + 1, 255) if median <= 0 or leader_fault else 0
