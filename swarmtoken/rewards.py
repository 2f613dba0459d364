"""The reference reward rule, in integers, exactly as `SwarmLearning.sol` computes it.

For an epoch with budget ``R`` and participants ``i`` with capped samples
``d_i = min(n_i, cap)`` and median score ``s_i`` (the lower median of the scores the
reporters gave ``i``), the paid set is ``P = {i : s_i > 0}``. With ``D = sum_P d_j`` and
``S = sum_P s_j`` and ``beta = beta_bps / 10_000``::

    payout_i = floor(R * (beta_bps * d_i * S + (10_000 - beta_bps) * s_i * D)
                     / (10_000 * D * S))          for i in P, else 0

which is ``floor(R * (beta * d_i / D + (1 - beta) * s_i / S))``. A participant in ``P``
that did not report, was skipped as leader or was removed *forfeits*: its payout is not
credited and stays in the carry, so nobody profits from skipping validation. Everything
not credited (rounding dust and forfeits) is carried to the next epoch's budget:
``carried = R - sum(credited)``, never negative because the shares sum to one and each
payout is floored.

The audit and the tests hold the contract to this module to the wei.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BPS = 10_000


@dataclass(frozen=True)
class Participant:
    """One participant's inputs to settlement, in commit-index order."""

    samples: int
    reported: bool = True
    skipped_leader: bool = False
    removed: bool = False

    @property
    def forfeits(self) -> bool:
        return not self.reported or self.skipped_leader or self.removed


@dataclass(frozen=True)
class Settlement:
    """What settlement decides: per-participant median score, payout (0 when forfeited or
    unpaid), forfeited flags, the total credited, what is carried, and the median metric
    (None when nobody reported)."""

    medians: tuple[int, ...]
    payouts: tuple[int, ...]
    forfeited: tuple[bool, ...]
    credited: int
    carried: int
    median_metric: int | None


def lower_median(values: Sequence[int]) -> int:
    """Element ``(k - 1) // 2`` of the sorted values: robust to fewer than half liars and,
    unlike the mean of the two middle values, needs no rounding rule."""
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


Reports = tuple[list[str], list[int], bytes]
"""``SwarmLearning.Reports``: reporters, metrics, and every score vector packed."""


def settle_arguments(reports: Sequence[tuple[str, int, Sequence[int]]], n: int) -> tuple[Reports, list[int], int]:
    """``settle(epoch, reports, medians, metric)``'s arguments after the epoch number, from
    the epoch's ``(reporter, metric, scores)`` reports in emission order: the reports in
    the contract's packed form (each score 8 bytes, big-endian two's complement, report
    after report) and the lower medians the contract verifies instead of sorting."""
    vectors = [list(scores) for _, _, scores in reports]
    medians = median_scores(vectors, n)
    packed = b"".join(score.to_bytes(8, "big", signed=True) for vector in vectors for score in vector)
    metrics = [metric for _, metric, _ in reports]
    packed_reports = ([reporter for reporter, _, _ in reports], metrics, packed)
    return packed_reports, medians, lower_median(metrics) if metrics else 0


def payout(budget: int, samples: int, score: int, total_data: int, total_score: int, beta_bps: int) -> int:
    """One paid participant's payout (see module docstring); integer floor like mulDiv."""
    numerator = beta_bps * samples * total_score + (BPS - beta_bps) * score * total_data
    return budget * numerator // (BPS * total_data * total_score)


def settle(
    budget: int,
    participants: Sequence[Participant],
    reports: Sequence[tuple[int, Sequence[int]]],
    *,
    beta_bps: int,
    sample_cap: int,
) -> Settlement:
    """Settle one epoch. ``reports`` are ``(metric, scores)`` pairs, one per reporter, with
    one score per participant in commit-index order."""
    if not 0 <= beta_bps <= BPS:
        raise ValueError(f"beta_bps must be in [0, {BPS}], got {beta_bps}")
    n = len(participants)
    medians = median_scores([scores for _, scores in reports], n)
    capped = [min(p.samples, sample_cap) for p in participants]
    paid = [j for j in range(n) if medians[j] > 0]
    total_data = sum(capped[j] for j in paid)
    total_score = sum(medians[j] for j in paid)
    payouts = [0] * n
    forfeited = [False] * n
    for j in paid:
        amount = payout(budget, capped[j], medians[j], total_data, total_score, beta_bps)
        if amount and participants[j].forfeits:
            forfeited[j] = True
        else:
            payouts[j] = amount
    credited = sum(payouts)
    metric = lower_median([m for m, _ in reports]) if reports else None
    return Settlement(tuple(medians), tuple(payouts), tuple(forfeited), credited, budget - credited, metric)
