"""Cooperative games ``u: 2^{0..n-1} -> R`` with a coalition cache.

A scorer only ever reads a game through :meth:`CachedGame.evaluate_many`, so a
coalition is evaluated at most once however many estimators or permutations ask
for it, and :attr:`CachedGame.evaluations` is the honest cost of a scorer.
:class:`SetFunctionGame` wraps any Python set function (games with known
Shapley values in the tests, custom utilities); :class:`trainer.scoring.utility.Utility`
is the model-merge utility of the swarm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from trainer.scoring.errors import CoalitionError, ScoringInputError


class CachedGame:
    """Base class: caches ``u(S)`` by coalition and counts distinct evaluations.

    Subclasses implement :meth:`_evaluate` for a batch of uncached coalitions.
    ``weights`` are the players' sample counts (equal when ``None``; a zero-weight
    player moves no merge, so it is a dummy); scorers that exploit the merge
    structure (``shapley_quadratic``) read them.
    """

    def __init__(self, n: int, weights: Sequence[float] | None = None) -> None:
        """Check ``n`` and the weights; start with an empty cache."""
        if n < 1:
            raise ScoringInputError(f"a game needs at least one player, got n={n}")
        self.n = n
        self.weights = _check_weights(weights, n)
        self._cache: dict[frozenset[int], float] = {}

    @property
    def evaluations(self) -> int:
        """Number of distinct coalitions evaluated so far (the cache size)."""
        return len(self._cache)

    def __call__(self, coalition: frozenset[int]) -> float:
        """``u(coalition)``; cached."""
        return float(self.evaluate_many([coalition])[0])

    def evaluate_many(self, coalitions: Iterable[frozenset[int]]) -> np.ndarray:
        """``u`` of each coalition (float64, input order), evaluating only uncached ones in one batch."""
        coalitions = [self._check_coalition(s) for s in coalitions]
        missing = list(dict.fromkeys(s for s in coalitions if s not in self._cache))
        if missing:
            values = self._evaluate(missing)
            self._cache.update(zip(missing, (float(v) for v in values), strict=True))
        return np.array([self._cache[s] for s in coalitions], dtype=np.float64)

    def _evaluate(self, coalitions: Sequence[frozenset[int]]) -> Sequence[float]:
        """Values of ``coalitions`` (none of them cached); implemented by subclasses."""
        raise NotImplementedError

    def _check_coalition(self, coalition: Iterable[int]) -> frozenset[int]:
        """Reject members outside ``0 .. n-1`` so a typo never values a wrong coalition."""
        coalition = frozenset(coalition)
        bad = sorted(
            (i for i in coalition if not (isinstance(i, (int, np.integer)) and 0 <= i < self.n)),
            key=str,
        )
        if bad:
            raise CoalitionError(f"coalition has members {bad} outside 0..{self.n - 1}")
        return coalition


class SetFunctionGame(CachedGame):
    """A game given by a Python function ``fn(frozenset) -> float``.

    >>> glove = SetFunctionGame(3, lambda s: float(0 in s and bool(s & {1, 2})))
    >>> glove(frozenset({0, 1})), glove.evaluations
    (1.0, 1)
    """

    def __init__(self, n: int, fn: Callable[[frozenset[int]], float],
                 weights: Sequence[float] | None = None) -> None:
        """Wrap ``fn``; it is called once per distinct coalition."""
        super().__init__(n, weights)
        self._fn = fn

    def _evaluate(self, coalitions: Sequence[frozenset[int]]) -> list[float]:
        """Call the wrapped function on each coalition."""
        return [float(self._fn(s)) for s in coalitions]


def _check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    """Sample counts as a float64 vector of length ``n``; equal weights when ``None``."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ScoringInputError(f"weights has {w.size} entries but there are {n} players")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ScoringInputError(
            f"weights must be finite and >= 0; player {int(bad[0])} has weight {w[bad[0]]}"
        )
    if w.sum() == 0:
        raise ScoringInputError("all weights are zero: no coalition could move the model")
    return w


def merge_coefficients(membership: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``c(S)`` per row of a boolean ``(B, n)`` membership matrix: each member's share
    ``w_i / sum_j w_j`` of the *whole* epoch's weight, so ``c(N)`` is the weighted-mean
    merge and a smaller coalition takes only its members' part of that step.

    Why not renormalise within the coalition: then a free rider (zero delta) shrinks
    every coalition's step and is often rewarded for it (measured: both rogues ranked
    last in 25 % of seeds); with the epoch's total as denominator a zero delta adds
    exactly nothing, so it scores exactly 0 and is never paid (100 % of seeds)."""
    total = float(weights.sum())
    if total <= 0:
        return np.zeros(membership.shape, dtype=np.float64)
    return membership * (weights / total)

