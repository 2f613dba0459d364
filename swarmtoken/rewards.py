"""The reference settlement rule, in integers, exactly as `SwarmLearning.sol` computes it.

**Quorum.** An epoch with ``c`` commitments and ``k`` reports is *quorate* when
``2 k > c``: a strict majority of the committers reported. Only a quorate epoch pays
scores, moves smoothed scores, gives strikes, judges the leader and feeds the stopping
rule; otherwise the whole budget is carried.

**Leader accountability** (quorate epochs). Every report carries the merge hash its
reporter recomputed and the bitmap of committed updates it found valid. A hash held by a
strict majority of reports that differs from the leader's becomes the epoch's global
model, and the leader is at fault (``MERGE_CONTRADICTED``). A committed update left out
of the merge that a strict majority of reports found valid is censored, and the leader is
at fault (``CENSORED``). A leader at fault forfeits its payout and takes a strike.

**The epoch's credit of a participant** ``i`` comes from the *other* reporters' scores
(a node's score for itself is ignored). Each report is at most one vote of ``CREDIT_SCALE``:
reporter ``r`` gives participant ``i`` the fraction of its positive scores for the others
that ``i`` holds, but to no one participant more than ``VOTE_CAP_BPS / BPS`` (1.5) equal shares of it; a
report whose positive scores sum to less than ``VOTE_FLOOR`` (0.2) gives only that
fraction of a vote, and no report gives more of a vote than the epoch's median report
(``M``). ``i``'s credit is the mean of its ``m_i`` other reporters' votes::

    P_r = sum_{j != r} max(0, s_rj),   k_r = the number of participants other than r
    M = upper_median_r(min(P_r, VOTE_FLOOR))   (element k // 2 of the k sorted)
    v_ri = min(floor(max(0, s_ri) * CREDIT_SCALE * min(P_r, M) / (P_r * VOTE_FLOOR)),
               floor(VOTE_CAP_BPS * CREDIT_SCALE / (BPS * k_r)))
    a_i = floor(sum_{r != i} v_ri / m_i)

which is ``s_ri / max(P_r, VOTE_FLOOR)`` of a vote whenever the median report holds a whole
vote or ``P_r <= M`` (a report with ``P_r = 0`` gives nobody anything; ``a_i = 0`` when
``m_i = 0``). Why the floor: once the model has converged, a reporter's scores are noise
of a few thousandths around 0, and a whole vote shared by that noise paid whichever node
drew the positive noise; in honest swarms of 3-5 nodes on Dirichlet data the others then fell below the
standing line and were suspended (``benchmarks/fairness.py``, group ``small``). With the
floor, such an epoch moves credit by what the reporter measured, and the smoothed credit
keeps the evidence of the epochs in which improvements were measurable. Why the median
cap: with the floor alone, honest votes shrank in noise epochs while a liar's stayed whole,
so a liar's weight grew with the length of the run (one boosting liar of 8 moved up to
3.7 % of all tokens over 20 epochs on Dirichlet data, 4.5 % on IID; 1.7 % on both with
the cap: ``benchmarks/fairness.py``, group ``long``); capped by the median report, a
liar's vote is no larger than a typical honest one in every epoch. ``f < k / 2`` liars
cannot raise ``M`` above the honest reports' masses, nor ``f <= k / 2`` lower it below them
(so two deflating liars of four cannot zero an epoch). Why a vote and
not a median or trimmed mean of the raw scores: on non-IID data each validator values the
classes it holds, so a specialist is rated highly by the few validators that hold its classes
and below zero by the rest; any order statistic is set by the rest and zeroes it, while the
mean of votes keeps its supporters. Why the cap: a liar could otherwise put its whole vote
on one accomplice (``benchmarks/fairness.py``, figure ``boosting_1``: 3 % of all tokens moved
by one liar of 8 uncapped); a specialist still gets up to one and a half equal shares from
each validator that values it (what the cap leaves of a vote goes to nobody; payouts share
the budget by smoothed credit, so it moves no tokens by itself). Why one and a half: the cap
is per identity, so it clips two nodes pooled under one identity and spares a node split
over two; tightening it from two shares to one moved the pooled/apart pay ratio from 1.038
to 0.954 (IID, mean) while the Dirichlet split rose from 1.026 to 1.065, and one and a half
keeps both averages inside their targets (README, "The reward rule", step 3). Bound: a reporter can only
give or withhold its own vote and move ``M`` among the other reports' masses, so ``f``
liars among ``m`` reporters move any participant's credit by at most ``f / m`` of
``VOTE_CAP_BPS * CREDIT_SCALE / (BPS * k)`` plus ``CREDIT_SCALE * |M' - M| / VOTE_FLOOR`` (and one unit
per rounding), where ``M'`` lies between the honest reports' masses ``f`` ranks either side
of their median; negative scores cannot zero anyone, which is also why they count as 0 (a
liar rating a victim ``-1`` withholds its vote, no more).

**Evidence accumulates.** Each member carries a smoothed credit ``e`` (on chain, 0 at
first). A quorate epoch in which ``i`` had at least one other reporter moves it::

    e_i' = trunc((alpha_bps * a_i + (10_000 - alpha_bps) * e_i) / 10_000)

**Data weight.** Of the participants with ``e' > 0`` (sums ``D+`` of samples, ``S+`` of
smoothed credits), each is paid for as much of its data as its evidence backs: full weight
when its smoothed credit per sample is at least ``standing_bps / 10_000`` of that average,
and proportionally less below it::

    w_i = min(d_i, floor(e_i' * D+ * 10_000 / (standing_bps * S+)))   (w_i = d_i when standing_bps = 0)

A node is *in good standing* when ``w_i = d_i``. The weight is continuous in the credit, so a
small change of credit (noise, one liar) is a small change of pay, and a node whose update
the validators cannot tell from noise, or a copy the merge ignores, is paid for almost none
of its declared data.

**Payouts.** For budget ``R``, the paid set ``P`` of a quorate epoch is the participants
with ``e' > 0``, with ``W = sum_P w_j``, ``S = sum_P e_j'`` and ``beta = beta_bps / 10_000``
(``W > 0`` whenever ``P`` is not empty: a node with at least the average credit per sample
has full weight)::

    payout_i = floor(R * (beta_bps * w_i * S + (10_000 - beta_bps) * e_i' * W)
                     / (10_000 * W * S))          for i in P, else 0

which is ``floor(R * (beta * w_i / W + (1 - beta) * e_i' / S))``. The samples ``d_i`` are the
declared count capped by the admin-attested allowance, on chain. A participant that was
removed, timed out as leader, led the epoch at fault, did not report, was merged although
no strict majority of the reports found its update valid (``INVALID``: a good smoothed
credit earned before cannot pay for an epoch without a valid update), or declared more
samples than its allowance *forfeits* (that reason, in that precedence, is recorded even
when it would have been paid nothing): its payout stays in the carry, so nobody profits
from skipping validation. Everything not credited is carried to the next epoch's budget:
``carried = R - sum(credited)``, never negative because the shares sum to one and each
payout is floored.

**Strikes** (quorate epochs). A participant whose smoothed credit moved and backs less than
half of its data (``2 w_i < d_i``) while some participant holds credit (``P`` not empty;
when none does, no validator has yet seen the merged model improve, as in the first epochs
on an imbalanced table, low credit singles nobody out, and striking every participant
suspended whole honest swarms: the README's step 8 has the numbers), one merged without a
valid update, a leader at fault,
and a committer whose update was left out of the merge and that no strict majority of the
reports found valid (``rejected``), takes a strike; any other participant's strikes reset.
At ``suspend_after`` strikes the member is suspended, whatever its membership status. Why
strike a rejected update: otherwise a node could commit forgeries every epoch at every
validator's cost and never be suspended (ALIE's updates are rejected but were never struck).

**Claims.** A member counts its *clean epochs*: the consecutive quorate epochs it was
settled in (as participant or rejected committer) without a strike. It can claim once it
has ``CLAIM_AFTER`` (2) of them, once the swarm has finished, or once it has departed (left,
expired or removed) with its last commitment settled without a strike; a suspension forfeits its
whole unclaimed balance to the carry (the contract takes it out of the supply and later budgets mint
them again). Why: a node honest in its first epoch and forging after it (ALIE needs its
peers' updates, so it is honest in epoch 0) was paid for that epoch and could take the money
out before its forgeries were struck; with the lock it is struck first, and suspended before
it could ever claim (``benchmarks/fairness.py``: ALIE z = 1 and 3 earn nothing). With one
clean epoch instead of two it still claims its first epoch's pay.

The audit and the tests hold the contract to this module to the wei.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from swarmtoken.units import SCORE_SCALE

BPS = 10_000
ZERO_HASH = "00" * 32
#: Defaults of the settlement parameters (SwarmConfig and the simulator read them here);
#: benchmarks/fairness.py is the measurement behind them.
DEFAULT_BETA_BPS = 7_000
DEFAULT_SMOOTHING_BPS = 2_000
DEFAULT_STANDING_BPS = 2_000
#: One reporter's vote (``SwarmLearning.CREDIT_SCALE``): the credit of a participant that
#: every other reporter gives all of its positive score.
CREDIT_SCALE = 10**9
#: The most of its vote a report gives one participant, in basis points of an equal share
#: (``SwarmLearning.VOTE_CAP_BPS``).
VOTE_CAP_BPS = 15_000
#: The positive scores a report must hold for a whole vote (``SwarmLearning.VOTE_FLOOR``,
#: 0.2 in score units); below it the report gives that fraction of a vote.
VOTE_FLOOR = SCORE_SCALE // 5
#: Revision of the reward rule (``SwarmLearning.VOTE_RULE_REVISION``): 2 caps every report's
#: vote by the epoch's median report (``vote_mass``); 3 strikes nobody for low credit in an
#: epoch in which no participant holds credit; 4 caps one participant's part of a vote at 1.5
#: equal shares instead of 2.
VOTE_RULE_REVISION = 4
#: Consecutive clean epochs a member needs before it can claim (``SwarmLearning.CLAIM_AFTER``).
CLAIM_AFTER = 2


class Forfeit(IntEnum):
    """``SwarmLearning.Forfeit``: why a participant's payout was not credited."""

    NONE = 0
    NOT_REPORTED = 1
    LEADER_TIMED_OUT = 2
    REMOVED = 3
    MERGE_CONTRADICTED = 4
    CENSORED = 5
    OVER_DECLARED = 6
    INVALID = 7


@dataclass(frozen=True)
class Rule:
    """The settlement parameters fixed at deployment, in basis points: the data share
    ``beta``, the weight of an epoch's credit in the smoothed credit, and the share of the
    average smoothed credit per sample that full data weight needs."""

    beta_bps: int = DEFAULT_BETA_BPS
    smoothing_bps: int = DEFAULT_SMOOTHING_BPS
    standing_bps: int = DEFAULT_STANDING_BPS

    def __post_init__(self) -> None:
        for name, value, low, high in (("beta_bps", self.beta_bps, 0, BPS),
                                       ("smoothing_bps", self.smoothing_bps, 1, BPS),
                                       ("standing_bps", self.standing_bps, 0, BPS)):
            if not low <= value <= high:
                raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


@dataclass(frozen=True)
class Participant:
    """One participant's inputs to settlement, in commit-index order. ``samples`` is the
    count the contract recorded (already capped by the allowance); ``node`` its address (its
    own report's score for it is ignored); ``smoothed`` its smoothed score before the epoch."""

    samples: int
    reported: bool = True
    skipped_leader: bool = False
    removed: bool = False
    leader: bool = False
    over_declared: bool = False  # declared more samples than its allowance
    node: str = ""
    smoothed: int = 0


@dataclass(frozen=True)
class Report:
    """One validation report: the reporter's metric, the merge hash it recomputed (hex),
    the bitmap over commit indices of the updates it found valid, one score per
    participant, and the reporter's address."""

    metric: int
    scores: Sequence[int]
    merged_hash: str = ZERO_HASH
    valid: int = 0
    reporter: str = ""


@dataclass(frozen=True)
class Verdict:
    """The leader's accountability in one epoch: the epoch's model hash, the fault (NONE
    when the leader stands), and the commit indices of censored updates."""

    model_hash: str
    fault: Forfeit
    censored: tuple[int, ...]


@dataclass(frozen=True)
class Settlement:
    """What settlement decides, per participant: the epoch's credit (the mean of the other
    reporters' votes), the smoothed credit after the epoch, whether it had evidence (another
    reporter, in a quorate epoch), its data weight and good standing (full weight), payout (0
    when forfeited or unpaid), forfeit reason and whether it takes a strike; then the total
    credited, what is carried (before any forfeited balance: that is the ledger's), the
    median metric (None when nobody reported), whether the epoch was quorate, the leader
    verdict, and the commit indices of rejected updates (each takes a strike)."""

    scores: tuple[int, ...]
    smoothed: tuple[int, ...]
    evidence: tuple[bool, ...]
    weights: tuple[int, ...]
    standing: tuple[bool, ...]
    payouts: tuple[int, ...]
    forfeits: tuple[Forfeit, ...]
    struck: tuple[bool, ...]
    credited: int
    carried: int
    median_metric: int | None
    quorate: bool
    verdict: Verdict
    rejected: tuple[int, ...] = ()


def lower_median(values: Sequence[int]) -> int:
    """Element ``(k - 1) // 2`` of the sorted values: unlike the mean of the two middle
    values, needs no rounding rule."""
    if not values:
        raise ValueError("lower_median of an empty sequence")
    return sorted(values)[(len(values) - 1) // 2]


def truncated_div(numerator: int, denominator: int) -> int:
    """Integer division rounding toward zero, as Solidity's signed ``/`` does."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def _same(a: str, b: str) -> bool:
    return bool(a) and a.lower() == b.lower()


class _Row(NamedTuple):
    """One report as the vote sees it: its scores, the participants it rates (all but its
    reporter) and the sum of its positive scores for them, ``P_r``."""

    scores: Sequence[int]
    others: list[int]
    positive: int


def _rows(reports: Sequence[tuple[str, Sequence[int]]], nodes: Sequence[str]) -> list[_Row]:
    n = len(nodes)
    rows = []
    for reporter, vector in reports:
        if len(vector) != n:
            raise ValueError(f"score vector has {len(vector)} entries, expected {n}")
        others = [j for j in range(n) if not _same(reporter, nodes[j])]
        rows.append(_Row(vector, others, sum(max(0, vector[j]) for j in others)))
    return rows


def _mass(rows: Sequence[_Row]) -> int:
    masses = sorted(min(row.positive, VOTE_FLOOR) for row in rows)
    return masses[len(masses) // 2] if masses else 0


def vote_mass(reports: Sequence[tuple[str, Sequence[int]]], nodes: Sequence[str]) -> int:
    """``M``, the most any report of the epoch gives (a vote is ``M / VOTE_FLOOR`` at most):
    the upper median of the reports' ``min(P_r, VOTE_FLOOR)``. Upper, not lower: half the
    reports with nothing positive (two deflating liars of four) must not zero the epoch;
    with two reports it is the larger, so a pair is not capped by its quieter half.

    Raises:
        ValueError: a score vector does not have one entry per participant.
    """
    return _mass(_rows(reports, nodes))


def epoch_credits(reports: Sequence[tuple[str, Sequence[int]]], nodes: Sequence[str]) -> tuple[list[int], list[int]]:
    """Per participant (``nodes``, in commit-index order), its credit from the ``(reporter,
    scores)`` reports (see module docstring) and how many other reporters it had, ``m_i``.

    Raises:
        ValueError: a score vector does not have one entry per participant.
    """
    rows = _rows(reports, nodes)
    mass = _mass(rows)
    totals, counts = [0] * len(nodes), [0] * len(nodes)
    for vector, others, positive in rows:
        cap = VOTE_CAP_BPS * CREDIT_SCALE // (BPS * len(others)) if others else 0
        for j in others:
            counts[j] += 1
            if positive:
                totals[j] += min(max(0, vector[j]) * CREDIT_SCALE * min(positive, mass) // (positive * VOTE_FLOOR), cap)
    return [total // count if count else 0 for total, count in zip(totals, counts, strict=True)], counts


def is_quorate(reports: int, commits: int) -> bool:
    """A strict majority of the epoch's committers reported."""
    return 2 * reports > commits


def strict_majority(values: Sequence[str]) -> str | None:
    """The value held by more than half of ``values``, if any."""
    if not values:
        return None
    value, votes = Counter(values).most_common(1)[0]
    return value if 2 * votes > len(values) else None


def valid_by_majority(reports: Sequence[Report], commits: int) -> list[bool]:
    """Per commit index, whether a strict majority of ``reports`` found that update valid."""
    return [2 * sum(r.valid >> index & 1 for r in reports) > len(reports) for index in range(commits)]


def judge_leader(published_hash: str, participants: int, commits: int, reports: Sequence[Report]) -> Verdict:
    """The leader's verdict in a quorate epoch (see module docstring). ``participants`` is
    the leader's bitmap over commit indices; ``commits`` the number of commitments."""
    majority = strict_majority([r.merged_hash for r in reports])
    model, fault = published_hash, Forfeit.NONE
    if majority is not None and majority != ZERO_HASH and majority != published_hash:
        model, fault = majority, Forfeit.MERGE_CONTRADICTED
    censored = tuple(index for index, valid in enumerate(valid_by_majority(reports, commits))
                     if valid and not participants >> index & 1)
    if censored and fault is Forfeit.NONE:
        fault = Forfeit.CENSORED
    return Verdict(model, fault, censored)


Reports = tuple[list[str], list[int], list[bytes], list[int], bytes]
"""``SwarmLearning.Reports``: reporters, metrics, merge hashes, valid bitmaps, and every
score vector packed."""


def settle_arguments(reports: Sequence[tuple[str, Report]], participants: int) -> tuple[Reports, int]:
    """``settle(epoch, reports, metric)``'s arguments after the epoch number, from the
    epoch's ``(reporter, report)`` pairs in emission order and the number of participants:
    the reports in the contract's packed form (each score 8 bytes, big-endian two's
    complement, report after report) and the lower median of the metrics, a hint the
    contract verifies instead of sorting.

    Raises:
        ValueError: a score vector does not have one entry per participant.
    """
    for _, report in reports:
        if len(report.scores) != participants:
            raise ValueError(f"score vector has {len(report.scores)} entries, expected {participants}")
    packed = b"".join(score.to_bytes(8, "big", signed=True) for _, report in reports for score in report.scores)
    metrics = [report.metric for _, report in reports]
    packed_reports = (
        [reporter for reporter, _ in reports],
        metrics,
        [bytes.fromhex(report.merged_hash) for _, report in reports],
        [report.valid for _, report in reports],
        packed,
    )
    return packed_reports, lower_median(metrics) if metrics else 0


def smooth(previous: int, score: int, smoothing_bps: int) -> int:
    """The smoothed score after an epoch with evidence (see module docstring)."""
    return truncated_div(smoothing_bps * score + (BPS - smoothing_bps) * previous, BPS)


def data_weights(smoothed: Sequence[int], samples: Sequence[int], standing_bps: int) -> list[int]:
    """Each participant's data weight ``w_i`` (see module docstring; 0 unless ``e' > 0``)."""
    positive = [j for j, value in enumerate(smoothed) if value > 0]
    total_data = sum(samples[j] for j in positive)
    total_score = sum(smoothed[j] for j in positive)
    weights = [0] * len(smoothed)
    for j in positive:
        weights[j] = samples[j] if standing_bps == 0 else \
            min(samples[j], smoothed[j] * total_data * BPS // (standing_bps * total_score))
    return weights


def payout(budget: int, weight: int, score: int, total_weight: int, total_score: int, beta_bps: int) -> int:
    """One paid participant's payout (see module docstring); integer floor like mulDiv."""
    numerator = beta_bps * weight * total_score + (BPS - beta_bps) * score * total_weight
    return budget * numerator // (BPS * total_weight * total_score)


def forfeit_of(participant: Participant, leader_fault: Forfeit, valid: bool = True) -> Forfeit:
    """Why ``participant`` forfeits, in the contract's order of precedence; ``valid``: a
    strict majority of a quorate epoch's reports found its update valid."""
    if participant.removed:
        return Forfeit.REMOVED
    if participant.skipped_leader:
        return Forfeit.LEADER_TIMED_OUT
    if participant.leader and leader_fault is not Forfeit.NONE:
        return leader_fault
    if not participant.reported:
        return Forfeit.NOT_REPORTED
    if not valid:
        return Forfeit.INVALID
    if participant.over_declared:
        return Forfeit.OVER_DECLARED
    return Forfeit.NONE


def settle(
    budget: int,
    participants: Sequence[Participant],
    reports: Sequence[Report],
    *,
    rule: Rule = Rule(),
    commits: int | None = None,
    participants_bitmap: int | None = None,
    published_hash: str = ZERO_HASH,
) -> Settlement:
    """Settle one epoch. ``reports`` carry one score per participant in commit-index order.
    ``commits`` (default: the participants) and ``participants_bitmap`` (default: the
    first ``len(participants)`` indices) place the participants among the commitments."""
    n = len(participants)
    commits = n if commits is None else commits
    bitmap = (1 << n) - 1 if participants_bitmap is None else participants_bitmap
    scores, others = epoch_credits([(r.reporter, r.scores) for r in reports], [p.node for p in participants])
    quorate = is_quorate(len(reports), commits)
    evidence = [quorate and others[j] > 0 for j in range(n)]
    smoothed = [smooth(p.smoothed, scores[j], rule.smoothing_bps) if evidence[j] else p.smoothed
                for j, p in enumerate(participants)]
    samples = [p.samples for p in participants]
    weights = data_weights(smoothed, samples, rule.standing_bps) if quorate else [0] * n
    standing = [weights[j] > 0 and weights[j] == samples[j] for j in range(n)]
    verdict = judge_leader(published_hash, bitmap, commits, reports) if quorate else \
        Verdict(published_hash, Forfeit.NONE, ())
    paid = [j for j in range(n) if quorate and smoothed[j] > 0]
    total_weight = sum(weights[j] for j in paid)
    total_score = sum(smoothed[j] for j in paid)
    indices = [i for i in range(bitmap.bit_length()) if bitmap >> i & 1]
    majority = valid_by_majority(reports, max(commits, bitmap.bit_length()))
    valid = [not quorate or majority[i] for i in indices]
    rejected = tuple(i for i in range(commits) if quorate and not bitmap >> i & 1 and not majority[i])
    forfeits = tuple(forfeit_of(p, verdict.fault, ok) for p, ok in zip(participants, valid, strict=True))
    faulted = [not ok or (p.leader and verdict.fault is not Forfeit.NONE)
               for p, ok in zip(participants, valid, strict=True)]
    # Low credit strikes only when some participant holds credit (see the module docstring).
    struck = tuple(quorate and ((evidence[j] and bool(paid) and 2 * weights[j] < samples[j]) or faulted[j])
                   for j in range(n))
    payouts = [0] * n
    for j in paid:
        if forfeits[j] is Forfeit.NONE:
            payouts[j] = payout(budget, weights[j], smoothed[j], total_weight, total_score, rule.beta_bps)
    credited = sum(payouts)
    metric = lower_median([r.metric for r in reports]) if reports else None
    return Settlement(tuple(scores), tuple(smoothed), tuple(evidence), tuple(weights), tuple(standing),
                      tuple(payouts), forfeits,
                      struck, credited, budget - credited, metric, quorate, verdict, rejected)


def strikes_after(strikes: int, struck: bool) -> int:
    """A participant's strike count after a quorate epoch (capped at uint8's maximum), given
    whether the epoch struck it (``Settlement.struck``, or a rejected update)."""
    return min(strikes + 1, 255) if struck else 0


def clean_after(clean: int, struck: bool) -> int:
    """A member's clean epochs after a quorate epoch it was settled in (capped at uint8's
    maximum): a strike ends the run."""
    return 0 if struck else min(clean + 1, 255)


def can_claim(clean: int, finished: bool, departed: bool = False) -> bool:
    """Whether a member with ``clean`` clean epochs may claim (``SwarmLearning.claimUnlocked``);
    ``departed``: it is no longer active (left, expired, removed; not suspended), its last
    commitment is settled and that settlement gave it no strike."""
    return finished or clean >= CLAIM_AFTER or departed
