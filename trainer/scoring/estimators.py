"""Contribution scorers: the Shapley value of a coalition game and its estimators.

For players ``N = {0 .. n-1}`` and a game ``u`` (see :mod:`trainer.scoring.utility`):

    phi_i    = sum_{S subset of N \\ {i}} |S|! (n-|S|-1)! / n! * (u(S + i) - u(S))  (Shapley)
    v_loo(i) = u(N) - u(N \\ {i})                                            (leave-one-out)

Shapley is the unique value with efficiency (``sum_i phi_i = u(N) - u({})``),
symmetry, dummy and linearity. Grouping coalitions by size ``s`` gives the
stratified form every estimator here can be read against:

    phi_i = (1/n) sum_{s=1..n} mean_{|S|=s, i in S} u(S) - (1/n) sum_{s=0..n-1} mean_{|S|=s, i not in S} u(S)

Registered scorers (``SCORERS``; ``budget`` = distinct utility evaluations,
default ``40 n``, capped at ``2^n``):

- ``exact_shapley``: all ``2^n`` coalitions, each evaluated once (one batch).
- ``loo``: ``n + 1`` evaluations; a baseline, blind to redundant contributors.
- ``shapley_permutation``: antithetic permutation sampling (each permutation
  and its reverse), marginal contributions averaged over prefixes.
- ``shapley_kernel``: paired KernelSHAP, complement pairs drawn from the
  Shapley kernel's size law, kernel-weighted least squares under the
  efficiency constraint.
- ``shapley_quadratic`` (recommended for n > 10): a regression-adjusted
  estimator exploiting that ``u(S) = f(theta_prev + sum_i c_i(S) d_i)`` with
  ``c_i(S) = w_i 1[i in S] / W`` (the weighted-mean merge; for a non-linear merge
  rule ``c(S)`` is merely the regressor, see :mod:`trainer.scoring.utility`). A
  second-order expansion of ``f`` in ``c``:

      g(S) = u({}) + b^T c(S) + c(S)^T Q c(S),  Q symmetric, n + n(n+1)/2 unknowns

  ``b`` and ``Q`` are fitted by least squares on the evaluated coalitions (all of
  sizes 0, 1, n-1, n, then complement pairs with sizes uniform in 2..n-2). Then

      phi = Shapley(g) + stratified estimate of Shapley(u - g) + equal share of the efficiency gap

  ``Shapley(g)`` is closed-form for every n and costs no utility evaluation: with
  ``c_i = w_i / W`` fixed per player, ``g`` has only singleton and pairwise terms,
  and Shapley splits each pair term ``2 Q_ij c_i c_j`` evenly, so
  ``Shapley(g)_i = c_i (b_i + (Q c)_i)``. The residual term makes
  the estimator consistent: with every coalition evaluated it equals exact
  Shapley. Measured at n = 12 with 40 n evaluations on digits
  (``benchmarks/shapley.py``, also under each model-poisoning attack) it is an
  order of magnitude closer to exact than KernelSHAP or permutation sampling.
- ``auto``: ``exact_shapley`` for n <= 10, else ``shapley_quadratic``.

Every scorer is a *linear* map of the utility values it reads, and which
coalitions it reads depends only on ``(n, seed, budget)``, never on values (no
truncation: truncated Monte Carlo would break this). Hence validators that use
the epoch seed evaluate the same coalitions, and by the linearity of
:mod:`trainer.scoring.utility` any weighted mean of their scores is the score of
the same mix of their utilities, a utility on the pooled validation rows.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import numpy as np
from scipy.special import comb

from trainer.scoring.errors import ParticipantCountError, ScoringInputError, UnknownScorerError
from trainer.scoring.game import CachedGame, merge_coefficients

#: ``scorer(game, n, *, seed, **options) -> phi`` (float64, one value per player).
Scorer = Callable[..., np.ndarray]

SCORERS: dict[str, Scorer] = {}

#: Coalitions are int64 bit masks inside the estimators.
MAX_PLAYERS = 62
#: ``exact_shapley`` refuses larger games (2^n evaluations); "auto" switches at AUTO_EXACT_MAX_N.
EXACT_MAX_N = 16
AUTO_EXACT_MAX_N = 10
RECOMMENDED = "shapley_quadratic"
DEFAULT_EVALUATIONS_PER_PLAYER = 40


def register_scorer(name: str) -> Callable[[Scorer], Scorer]:
    """Add a scorer to ``SCORERS`` under ``name`` (one decorator line per scorer)."""

    def decorate(fn: Scorer) -> Scorer:
        if name in SCORERS:
            raise ValueError(f"scorer {name!r} is already registered")
        SCORERS[name] = fn
        return fn

    return decorate


def score(scorer: str, utility: CachedGame, n: int, *, seed: int, **options: object) -> np.ndarray:
    """Score the ``n`` players of ``utility`` with the registered ``scorer``.

    ``seed`` (the epoch seed) fixes every sampled coalition, so all validators
    evaluate the same ones. Returns a float64 array of ``n`` values. Raises
    ``UnknownScorerError`` (listing the known names) and ``ParticipantCountError``
    when ``n`` is not the number of players the utility was built over.
    """
    if scorer not in SCORERS:
        raise UnknownScorerError(f"unknown scorer {scorer!r}; known: {sorted(SCORERS)}")
    if n != utility.n:
        raise ParticipantCountError(f"n={n} but the utility has {utility.n} players")
    if n > MAX_PLAYERS:
        raise ParticipantCountError(f"n={n} exceeds the {MAX_PLAYERS} players a bit mask holds")
    return np.asarray(SCORERS[scorer](utility, n, seed=seed, **options), dtype=np.float64)


# --------------------------------------------------------------------------- helpers


def _coalitions(masks: np.ndarray, n: int) -> list[frozenset[int]]:
    """Bit masks -> frozensets of member indices."""
    return [frozenset(i for i in range(n) if m >> i & 1) for m in masks.tolist()]


def _membership(masks: np.ndarray, n: int) -> np.ndarray:
    """``(len(masks), n)`` boolean membership matrix."""
    return (masks[:, None] >> np.arange(n)) & 1 == 1


def _values(game: CachedGame, masks: np.ndarray) -> np.ndarray:
    """``u`` of each mask, through the game's cache (one batch)."""
    return game.evaluate_many(_coalitions(masks, game.n))


def _all_masks(n: int) -> np.ndarray:
    """Every coalition of ``n`` players as a bit mask, mask ``m`` at index ``m``."""
    return np.arange(2**n, dtype=np.int64)


def _shapley_from_table(values: np.ndarray, n: int) -> np.ndarray:
    """Exact Shapley value from ``values[m] = u(mask m)`` over all ``2^n`` masks."""
    masks = _all_masks(n)
    sizes = _membership(masks, n).sum(axis=1)
    # |S|! (n-|S|-1)! / n! = 1 / (n * C(n-1, |S|))
    weight = 1.0 / (n * comb(n - 1, np.arange(n)))
    phi = np.empty(n)
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = np.sum(weight[sizes[without]] * (values[without | (1 << i)] - values[without]))
    return phi


def _budget(budget: int | None, n: int) -> int:
    """Distinct evaluations a sampled scorer may spend; default ``40 n``, capped at ``2^n``."""
    if budget is None:
        budget = DEFAULT_EVALUATIONS_PER_PLAYER * n
    minimum = min(2 * n + 2, 2**n)
    if budget < minimum:
        raise ScoringInputError(f"budget={budget} is below the minimum {minimum} for n={n} "
                                "(u of the empty and full coalitions, singletons, leave-one-outs)")
    return min(budget, 2**n)


def _base_masks(n: int) -> np.ndarray:
    """Coalitions of sizes 0, 1, n-1 and n: the strata that are cheap to evaluate exactly."""
    full = (1 << n) - 1
    singles = [1 << i for i in range(n)]
    return np.unique(np.array([0, full, *singles, *(full ^ s for s in singles)], dtype=np.int64))


def _sample_pairs(rng: np.random.Generator, n: int, count: int, sizes: np.ndarray,
                  probs: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """Up to ``count`` new masks as complement pairs ``(S, N \\ S)``, ``|S|`` drawn from
    ``sizes`` (symmetric around n/2) with ``probs``; masks in ``exclude`` and repeats are
    redrawn. When ``count`` covers every coalition with those sizes, all are enumerated
    instead, so it always terminates."""
    full = (1 << n) - 1
    taken = set(exclude.tolist())
    allowed = set(sizes.tolist())
    available = sum(comb(n, s, exact=True) for s in allowed) - sum(m.bit_count() in allowed for m in taken)
    if count >= available:
        every = (sum(1 << i for i in c) for s in sorted(allowed) for c in combinations(range(n), s))
        return np.array([m for m in every if m not in taken], dtype=np.int64)
    drawn: list[int] = []
    while len(drawn) + 2 <= count and available >= 2:
        members = rng.choice(n, size=rng.choice(sizes, p=probs), replace=False)
        mask = int(np.sum(np.int64(1) << members.astype(np.int64)))
        if mask in taken:
            continue
        taken.update((mask, full ^ mask))
        drawn += [mask, full ^ mask]
        available -= 2
    return np.array(drawn, dtype=np.int64)


# --------------------------------------------------------------------------- scorers


@register_scorer("exact_shapley")
def exact_shapley(game: CachedGame, n: int, *, seed: int) -> np.ndarray:
    """Exact Shapley value: all ``2^n`` coalitions evaluated once, in one batch.

    ``seed`` is unused (nothing is sampled); it keeps the scorer signature uniform.
    """
    if n > EXACT_MAX_N:
        raise ParticipantCountError(f"exact_shapley needs 2^{n} evaluations; use "
                                    f"{RECOMMENDED!r} for n > {EXACT_MAX_N}")
    return _shapley_from_table(_values(game, _all_masks(n)), n)


@register_scorer("loo")
def loo(game: CachedGame, n: int, *, seed: int) -> np.ndarray:
    """Leave-one-out ``u(N) - u(N \\ {i})`` (n + 1 evaluations; ``seed`` unused)."""
    full = (1 << n) - 1
    values = _values(game, np.array([full, *(full ^ (1 << i) for i in range(n))], dtype=np.int64))
    return values[0] - values[1:]


@register_scorer("shapley_permutation")
def shapley_permutation(game: CachedGame, n: int, *, seed: int, budget: int | None = None) -> np.ndarray:
    """Antithetic permutation sampling: average marginal contributions along permutations.

    Each random permutation is paired with its reverse (a negatively correlated
    pair). Stops before a pair would exceed ``budget`` distinct evaluations, or
    after ``budget`` pairs (small games where every prefix is already cached).
    """
    budget = _budget(budget, n)
    rng = np.random.default_rng(seed)
    seen: set[int] = set()
    total = np.zeros(n)
    pairs = 0
    for _ in range(budget):
        forward = rng.permutation(n)
        perms = np.stack([forward, forward[::-1]])
        prefixes = np.concatenate([np.zeros((2, 1), np.int64),
                                   np.cumsum(np.int64(1) << perms, axis=1)], axis=1)
        new = set(prefixes.ravel().tolist()) - seen
        if len(seen) + len(new) > budget:
            break
        seen |= new
        marginals = np.diff(_values(game, prefixes.ravel()).reshape(2, n + 1), axis=1)
        np.add.at(total, perms, marginals)
        pairs += 1
    if pairs == 0:
        raise ScoringInputError(f"budget={budget} cannot pay for one antithetic permutation pair")
    return total / (2 * pairs)


@register_scorer("shapley_kernel")
def shapley_kernel(game: CachedGame, n: int, *, seed: int, budget: int | None = None) -> np.ndarray:
    """Paired KernelSHAP: ``argmin sum_S k(S) (u(S) - u({}) - sum_{i in S} phi_i)^2``
    subject to efficiency ``sum phi = u(N) - u({})``, with the Shapley kernel
    ``k(S) ~ (n-1) / (C(n,|S|) |S| (n-|S|))``. Complement pairs are drawn with the
    kernel's size law ``p(s) ~ 1 / (s (n - s))`` without repeats, so each size
    stratum gets its kernel mass spread over the coalitions drawn from it."""
    budget = _budget(budget, n)
    full = (1 << n) - 1
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, n)
    mass = 1.0 / (sizes * (n - sizes))
    ends = np.array([0, full], dtype=np.int64)
    masks = np.concatenate([ends, _sample_pairs(rng, n, budget - 2, sizes, mass / mass.sum(), ends)])
    values = _values(game, masks)
    empty, grand = values[0], values[1]
    Z = _membership(masks[2:], n)
    size_of = Z.sum(axis=1)
    drawn = np.bincount(size_of, minlength=n)
    weight = mass[size_of - 1] / drawn[size_of]
    Z = Z.astype(np.float64)
    # KKT system of the equality-constrained weighted least squares.
    kkt = np.block([[Z.T @ (Z * weight[:, None]), np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    rhs = np.concatenate([Z.T @ (weight * (values[2:] - empty)), [grand - empty]])
    return np.linalg.lstsq(kkt, rhs, rcond=None)[0][:n]


def _fit_quadratic(coef: np.ndarray, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``b`` and symmetric ``Q`` of ``g(c) - g(0) = b^T c + c^T Q c``
    (features ``c_i`` and ``c_i c_j``, i <= j)."""
    n = coef.shape[1]
    rows, cols = np.triu_indices(n)
    features = np.concatenate([coef, coef[:, rows] * coef[:, cols]], axis=1)
    beta = np.linalg.lstsq(features, gains, rcond=None)[0]
    Q = np.zeros((n, n))
    Q[rows, cols] = beta[n:]
    return beta[:n], (Q + Q.T) / 2  # off-diagonal beta counts c_i c_j once; c^T Q c counts it twice


def _quadratic(coef: np.ndarray, b: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """``b^T c + c^T Q c`` for each row (batched over any leading axes)."""
    return coef @ b + np.einsum("...i,ij,...j->...", coef, Q, coef)


def _surrogate_shapley(b: np.ndarray, Q: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Shapley value of the surrogate game ``S -> b^T c(S) + c(S)^T Q c(S)``: with each
    player's coefficient fixed at ``c_i = w_i / W``, ``c_i (b_i + (Q c)_i)``."""
    c = merge_coefficients(np.ones((1, len(weights)), dtype=bool), weights)[0]
    return c * (b + Q @ c)


def _stratified_shapley(masks: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Stratified form of the module docstring with each stratum mean taken over the
    evaluated coalitions (a stratum with none contributes 0). Exact when all are evaluated."""
    member = _membership(masks, n)
    sizes = member.sum(axis=1)
    phi = np.zeros(n)
    for s in np.unique(sizes):
        inside, vals = member[sizes == s], values[sizes == s]
        for mask, sign in ((inside, 1.0), (~inside, -1.0)):
            count = mask.sum(axis=0)
            phi += sign * np.divide(vals @ mask, count, out=np.zeros(n), where=count > 0) / n
    return phi


@register_scorer("shapley_quadratic")
def shapley_quadratic(game: CachedGame, n: int, *, seed: int, budget: int | None = None) -> np.ndarray:
    """Quadratic-surrogate, regression-adjusted Shapley estimator (module docstring).

    Spends ``budget`` distinct evaluations: sizes 0, 1, n-1, n exactly, the rest
    as complement pairs with sizes uniform in 2..n-2, chosen by ``seed`` only.
    """
    budget = _budget(budget, n)
    full = (1 << n) - 1
    rng = np.random.default_rng(seed)
    base = _base_masks(n)
    sizes = np.arange(2, n - 1)
    extra = (_sample_pairs(rng, n, budget - len(base), sizes, np.full(len(sizes), 1 / len(sizes)), base)
             if len(sizes) else np.array([], dtype=np.int64))
    masks = np.concatenate([base, extra])
    values = _values(game, masks)
    empty, grand = values[masks == 0][0], values[masks == full][0]
    coef = merge_coefficients(_membership(masks, n), game.weights)
    b, Q = _fit_quadratic(coef, values - empty)
    phi = _surrogate_shapley(b, Q, game.weights)
    phi += _stratified_shapley(masks, values - (empty + _quadratic(coef, b, Q)), n)
    return phi + ((grand - empty) - phi.sum()) / n


@register_scorer("auto")
def auto(game: CachedGame, n: int, *, seed: int, **options: object) -> np.ndarray:
    """``exact_shapley`` for n <= AUTO_EXACT_MAX_N, else the recommended sampled scorer
    (``options`` such as ``budget`` go to the sampled scorer only)."""
    if n <= AUTO_EXACT_MAX_N:
        return exact_shapley(game, n, seed=seed)
    return SCORERS[RECOMMENDED](game, n, seed=seed, **options)
