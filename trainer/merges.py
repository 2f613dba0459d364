r"""Merge rules: how the epoch's leader turns n committed models into the next global model.

Every rule is a pure function over the *deltas* ``x_i = flatten(update_i) - flatten(previous)``
(an ``n x d`` float64 matrix) and returns one aggregated delta ``g``; ``merge`` returns
``unflatten(flatten(previous) + g)``. With normalised sample weights ``w_i`` (uniform when
none are given) the rules are:

* ``mean``:              g = (1/n) sum_i x_i
* ``weighted_mean``:     g = sum_i w_i x_i                       (FedAvg)
* ``median``:            g_k = median_i x_ik                      (coordinate-wise)
* ``trimmed_mean``:      g_k = mean of x_ik after dropping the t = floor(beta n) smallest
  and t largest values of coordinate k
* ``geometric_median``:  g = argmin_z sum_i w_i ||x_i - z||, by Weiszfeld's iteration
  z <- sum_i (w_i / ||x_i - z||) x_i / sum_i (w_i / ||x_i - z||)
* ``multi_krum``:        score_i = sum of ||x_i - x_j||^2 over the n - f - 2 nearest j;
  g = weighted mean of the m lowest-scoring deltas (m = n - f by default)
* ``centered_clipping``: v <- v + (1/n) sum_i clip_tau(x_i - v), v_0 = 0, L iterations,
  clip_tau(y) = y min(1, tau / ||y||), tau = median_i ||x_i|| by default
* ``fltrust``:           with the anchor's delta r = x_a (the leader's own update),
  t_i = ReLU(cos(x_i, r)), g = sum_i w_i t_i (||r|| / ||x_i||) x_i / sum_i w_i t_i
* ``fltrust_median``:    the same trust rule with a reference no single node picks:
  r = coordinate-wise median of the deltas, and every delta rescaled to the weighted
  lower median of ||x_i|| over the *trusted* deltas (t_i > 0). RECOMMENDED, see below.

Why ``fltrust_median`` is the recommended rule. In a swarm the anchor of ``fltrust`` is
the elected leader, drawn at random among committed nodes, so with a fraction rho of
rogues a fraction rho of epochs is merged around a *rogue* reference, and every honest
node recomputes (and accepts) that merge. A sign-flipping rogue leader gives trust 0 to
every honest update and trust 1 to its fellow rogues, so the epoch's model moves
against the honest direction; a scaling rogue leader rescales every update to its own
inflated norm. The coordinate-wise median is determined by the committed updates
alone, needs more than half of the nodes to be moved, and so keeps FLTrust's trust
weighting (direction agreement, magnitude normalisation) without trusting the leader.
Measured by ``benchmarks/robustness.py`` (digits, 8 nodes, Dirichlet 0.5, 20 epochs,
2 rogues, seeds 0-2, the validity checks on and a leader whose update they reject
failing over): epochs led by a rogue change ``fltrust``'s test accuracy by -0.22 on
average (+0.075 when an honest node leads), and its final accuracy falls to
0.65 / 0.76 / 0.73 / 0.71 under sign flip / Gaussian noise / label flip / scaling;
``fltrust_median`` ends at 0.925-0.970 under every attack (clean 0.968, honest-only
oracle 0.959). The clean swarm (``benchmarks/accuracy.py``, seeds 0-2, 20 epochs) ends
at 0.9676 (0.9639 / 0.9722 / 0.9667); before the trusted-only norm and the sample
weights it ended at 0.9694. Weighting the median reference too (a Sybil-proof vote) cost
more: 0.9639.

Preconditions (f = assumed number of Byzantine updates, option ``f``): the median,
trimmed mean and geometric median break down at 2f >= n, and the trimmed mean also when
it trims t < f per side (warned with ``RobustnessWarning``, still computed, so a swarm
that lost peers keeps going); Krum cannot even be computed unless n > 2f + 2 (refused
with ``PreconditionError``).

Integer buffers (e.g. BatchNorm's ``num_batches_tracked``) are not averaged: each is the
element-wise lower median over the updates, a value some honest majority can vouch for
and that a single rogue cannot inflate.

Determinism: every sum runs in a fixed order made of element-wise IEEE operations (a
loop over updates, a pairwise halving over coordinates, no fused multiply-add), so the
same inputs give the same bytes regardless of thread count or SIMD width and any node
can recompute the leader's merge and compare hashes.

Adding a rule: one function ``rule(deltas, weights, anchor, **options) -> Tensor`` and
``@register_merge("name")``.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence

import torch

from trainer.params import StateDict, flatten, unflatten, validate_updates

MergeRule = Callable[..., torch.Tensor]
"""``rule(deltas: (n, d) float64, weights: (n,) float64 summing to 1, anchor: int | None,
**options) -> (d,) float64`` aggregated delta."""

MERGES: dict[str, MergeRule] = {}

DEFAULT_MERGE = "fltrust_median"
"""The swarm's merge rule, the default of ``simulate``, ``InProcessSwarm``, ``make_utility``
and ``SwarmConfig`` (see "Why fltrust_median" above)."""


class UnknownRuleError(KeyError, ValueError):
    """The merge rule name is not in ``MERGES``; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


class MergeOptionError(ValueError):
    """A merge option is unknown to the rule or out of its valid range."""


class InvalidWeightsError(ValueError):
    """Sample weights have the wrong length or are negative, non-finite or all zero."""


class InvalidAnchorError(ValueError):
    """The anchor index is missing for a rule that needs it, or out of range."""


class PreconditionError(ValueError):
    """A rule cannot be computed for this number of updates (e.g. Krum with n <= 2f + 2)."""


class RobustnessWarning(UserWarning):
    """A rule is computed but its robustness guarantee does not hold (e.g. 2f >= n)."""


def register_merge(name: str) -> Callable[[MergeRule], MergeRule]:
    """Add a merge rule to ``MERGES`` under ``name`` (refuses to overwrite one)."""

    def decorator(rule: MergeRule) -> MergeRule:
        if name in MERGES:
            raise MergeOptionError(f"merge rule {name!r} is already registered")
        MERGES[name] = rule
        return rule

    return decorator


# --- fixed-order arithmetic -------------------------------------------------------------


def _sum_last(x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dimension by pairwise halving: a fixed order of element-wise adds."""
    while x.shape[-1] > 1:
        if x.shape[-1] % 2:
            x = torch.cat([x, torch.zeros_like(x[..., :1])], dim=-1)
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    if x.shape[-1] == 0:
        return torch.zeros(x.shape[:-1], dtype=x.dtype)
    return x[..., 0]


def _norms(x: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each row."""
    return torch.sqrt(_sum_last(x * x))


def _combine(rows: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """sum_i coef_i rows_i, accumulated in index order (one multiply, then one add)."""
    acc = torch.zeros(rows.shape[1], dtype=torch.float64)
    for i in range(rows.shape[0]):
        acc = acc + coef[i] * rows[i]
    return acc


def _sq_distances(x: torch.Tensor) -> torch.Tensor:
    """(n, n) matrix of squared Euclidean distances between rows."""
    diff = x.unsqueeze(1) - x.unsqueeze(0)
    return _sum_last(diff * diff)


def _median_rows(x: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise median over rows (mean of the two middle values when n is even)."""
    ordered = torch.sort(x, dim=0, stable=True).values
    n = x.shape[0]
    if n % 2:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def _median_scalar(v: torch.Tensor) -> torch.Tensor:
    return _median_rows(v.unsqueeze(1))[0]


def _warn_breakdown(rule: str, n: int, f: int | None) -> None:
    if f is not None and 2 * f >= n:
        warnings.warn(
            f"{rule}: assumed {f} Byzantine updates out of n={n}; the rule only tolerates "
            f"2f < n, so a coordinated minority of {f} can move the result arbitrarily",
            RobustnessWarning,
            stacklevel=4,
        )


def _check_f(rule: str, f: int | None) -> None:
    if f is not None and (not isinstance(f, int) or f < 0):
        raise MergeOptionError(f"{rule}: option f must be a non-negative int, got {f!r}")


# --- rules --------------------------------------------------------------------------------


@register_merge("mean")
def mean(deltas: torch.Tensor, weights: torch.Tensor, anchor: int | None) -> torch.Tensor:
    """Plain average; ignores sample weights. Not robust: one update moves it arbitrarily."""
    return _combine(deltas, torch.ones(deltas.shape[0], dtype=torch.float64)) / deltas.shape[0]


@register_merge("weighted_mean")
def weighted_mean(deltas: torch.Tensor, weights: torch.Tensor, anchor: int | None) -> torch.Tensor:
    """FedAvg: average weighted by sample counts, the unbiased estimate on non-IID data."""
    return _combine(deltas, weights)


@register_merge("median")
def median(
    deltas: torch.Tensor, weights: torch.Tensor, anchor: int | None, *, f: int | None = None
) -> torch.Tensor:
    """Coordinate-wise median; ignores weights. Tolerates f Byzantine updates if 2f < n."""
    _check_f("median", f)
    _warn_breakdown("median", deltas.shape[0], f)
    return _median_rows(deltas)


@register_merge("trimmed_mean")
def trimmed_mean(
    deltas: torch.Tensor,
    weights: torch.Tensor,
    anchor: int | None,
    *,
    beta: float = 0.25,
    f: int | None = None,
) -> torch.Tensor:
    """Coordinate-wise mean after trimming t = floor(beta n) values from each end.

    Why: keeps more information than the median while still bounding the influence of
    up to t outliers per coordinate. ``beta = 0`` is the plain mean. Ignores weights.

    Warns ``RobustnessWarning`` when 2f >= n or when it trims fewer than f per side.

    Raises:
        MergeOptionError: ``beta`` is outside [0, 0.5).
    """
    n = deltas.shape[0]
    if not (isinstance(beta, (int, float)) and 0.0 <= beta < 0.5):
        raise MergeOptionError(f"trimmed_mean: beta must be in [0, 0.5), got {beta!r}")
    _check_f("trimmed_mean", f)
    trim = math.floor(beta * n)  # beta < 0.5 keeps 2 trim < n: something is always left
    _warn_breakdown("trimmed_mean", n, f)
    if f is not None and trim < f and 2 * f < n:
        warnings.warn(
            f"trimmed_mean: trims {trim} per side (beta={beta}, n={n}) but f={f} Byzantine "
            f"updates are assumed; raise beta to at least {f}/{n}",
            RobustnessWarning,
            stacklevel=3,
        )
    kept = torch.sort(deltas, dim=0, stable=True).values[trim : n - trim]
    return _combine(kept, torch.ones(kept.shape[0], dtype=torch.float64)) / kept.shape[0]


@register_merge("geometric_median")
def geometric_median(
    deltas: torch.Tensor,
    weights: torch.Tensor,
    anchor: int | None,
    *,
    max_iter: int = 100,
    tol: float = 1e-7,
    eps: float = 1e-12,
    f: int | None = None,
) -> torch.Tensor:
    """Weighted geometric median by Weiszfeld's iteration (RFA, Pillutla et al. 2022).

    Why: rotation-invariant robust centre with breakdown point 1/2, unlike the
    coordinate-wise median. Starts at the weighted mean; stops when a step moves less
    than ``tol * (1 + ||z||)`` or after ``max_iter`` steps; distances are floored at
    ``eps`` so an iterate landing on an update stays finite.
    """
    if max_iter < 1 or tol < 0 or eps <= 0:
        raise MergeOptionError(
            f"geometric_median: need max_iter >= 1, tol >= 0, eps > 0; "
            f"got max_iter={max_iter}, tol={tol}, eps={eps}"
        )
    _check_f("geometric_median", f)
    _warn_breakdown("geometric_median", deltas.shape[0], f)
    z = _combine(deltas, weights)
    for _ in range(max_iter):
        dist = torch.clamp(_norms(deltas - z), min=eps)
        beta = weights / dist
        new = _combine(deltas, beta / _sum_last(beta))
        step = float(_norms((new - z).unsqueeze(0))[0])
        z = new
        if step <= tol * (1.0 + float(_norms(z.unsqueeze(0))[0])):
            break
    return z


@register_merge("multi_krum")
def multi_krum(
    deltas: torch.Tensor,
    weights: torch.Tensor,
    anchor: int | None,
    *,
    f: int | None = None,
    m: int | None = None,
) -> torch.Tensor:
    """Multi-Krum (Blanchard et al. 2017): average the m updates closest to their peers.

    score_i sums the squared distances to the n - f - 2 nearest other updates; the m
    lowest scores (ties broken by lower index) are averaged with their sample weights.
    Defaults: f = floor((n - 3) / 2), the largest f Krum tolerates, and m = n - f;
    ``m = 1`` is Krum.

    Raises:
        PreconditionError: n <= 2f + 2 (Krum's guarantee needs n > 2f + 2).
        MergeOptionError: f negative or m outside [1, n].
    """
    n = deltas.shape[0]
    _check_f("multi_krum", f)
    f_used = max(0, (n - 3) // 2) if f is None else f
    if n <= 2 * f_used + 2:
        raise PreconditionError(
            f"multi_krum: needs n > 2f + 2, got n={n} updates with f={f_used}"
        )
    m_used = n - f_used if m is None else m
    if not (isinstance(m_used, int) and 1 <= m_used <= n):
        raise MergeOptionError(f"multi_krum: m must be an int in [1, {n}], got {m!r}")
    dist = _sq_distances(deltas)
    neighbours = n - f_used - 2
    scores = torch.empty(n, dtype=torch.float64)
    for i in range(n):
        others = torch.cat([dist[i, :i], dist[i, i + 1 :]])
        scores[i] = _sum_last(torch.sort(others).values[:neighbours])
    chosen = torch.sort(scores, stable=True).indices[:m_used]
    coef = torch.zeros(n, dtype=torch.float64)
    coef[chosen] = weights[chosen]
    if float(_sum_last(coef)) == 0.0:
        coef[chosen] = 1.0
    return _combine(deltas, coef / _sum_last(coef))


@register_merge("centered_clipping")
def centered_clipping(
    deltas: torch.Tensor,
    weights: torch.Tensor,
    anchor: int | None,
    *,
    tau: float | None = None,
    iters: int = 3,
) -> torch.Tensor:
    """Centered clipping (Karimireddy et al. 2021): iteratively average clipped offsets.

    Each round moves the centre v by the mean of the offsets x_i - v clipped to norm
    ``tau``, so one update moves v by at most tau / n per round. v_0 = 0 (the previous
    global model; no state is carried between epochs). tau defaults to the median
    update norm, which makes the rule scale-free. Ignores weights.
    """
    if iters < 1 or (tau is not None and not tau > 0):
        raise MergeOptionError(
            f"centered_clipping: need iters >= 1 and tau > 0, got iters={iters}, tau={tau}"
        )
    n = deltas.shape[0]
    radius = _median_scalar(_norms(deltas)) if tau is None else torch.tensor(float(tau), dtype=torch.float64)
    v = torch.zeros(deltas.shape[1], dtype=torch.float64)
    for _ in range(iters):
        offsets = deltas - v
        norms = _norms(offsets)
        scale = torch.where(norms > radius, radius / torch.clamp(norms, min=1e-300), torch.ones_like(norms))
        v = v + _combine(offsets, scale) / n
    return v


#: Relative slack of "the cumulative weight reaches half the total": a subset of weights
#: that sums to exactly half mathematically reaches it whatever order and precision the
#: additions ran in, so the batched copy in ``trainer.scoring`` (which sums in float32, in
#: another order) picks the same value. Sample counts below 100,000 in total never come
#: this close to half without being exactly half.
HALF_SLACK = 1e-5


def half_of(total: torch.Tensor) -> torch.Tensor:
    """What a cumulative weight must reach, ``total / 2`` less ``HALF_SLACK``."""
    return total * ((1 - HALF_SLACK) / 2)


def _weighted_lower_median(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per column of ``values`` ``(k, d)``, the weighted lower median with row weights ``weights``
    ``(k,)`` or ``(k, d)``: the smallest value at which the cumulative weight of the sorted
    values reaches half of their total weight (:func:`half_of`; equal weights and even
    k give the lower middle value). A column whose weights are all 0 gives its smallest value."""
    ordered = torch.sort(values, dim=0, stable=True)
    w = weights if weights.dim() == values.dim() else weights[:, None].expand_as(values)
    w = torch.gather(w, 0, ordered.indices)
    cumulative = [w[0]]
    for row in range(1, w.shape[0]):
        cumulative.append(cumulative[-1] + w[row])
    reached = torch.stack(cumulative) >= half_of(cumulative[-1])
    first = torch.argmax(reached.to(torch.int8), dim=0, keepdim=True)
    return torch.gather(ordered.values, 0, first)[0]


def _trust_weighted(deltas: torch.Tensor, weights: torch.Tensor, reference: torch.Tensor,
                    target_norm: torch.Tensor | None) -> torch.Tensor:
    """sum_i w_i t_i (target / ||x_i||) x_i / sum_i w_i t_i with t_i = ReLU(cos(x_i, reference)).

    ``target_norm=None`` takes the weighted lower median of the norms of the *trusted*
    deltas (t_i > 0): an update the rule gives no trust (a reversed or random step, a free
    rider) can then change neither the direction nor the length of the step. Weighting by
    sample count makes a node's influence grow with its data, not with its identities:
    splitting one node's data over two (or pooling two) moves neither sum. A zero-norm delta
    (a free rider) gets trust 0; if no delta has positive trust (or every trusted one weighs
    0) the aggregated delta is zero, i.e. the previous global model is kept.
    """
    norms = _norms(deltas)
    ref_norm = _norms(reference.unsqueeze(0))[0]
    if float(ref_norm) == 0.0:
        return torch.zeros(deltas.shape[1], dtype=torch.float64)
    safe = torch.clamp(norms, min=1e-300)
    cos = _sum_last(deltas * reference) / (safe * ref_norm)
    trust = torch.where(norms > 0, torch.clamp(cos, min=0.0), torch.zeros_like(cos))
    influence = weights * trust
    total = _sum_last(influence)
    if float(total) == 0.0:
        return torch.zeros(deltas.shape[1], dtype=torch.float64)
    if target_norm is None:
        target_norm = _weighted_lower_median(norms.unsqueeze(1), torch.where(trust > 0, weights, 0.0))[0]
    return _combine(deltas, (influence / total) * (target_norm / safe))


@register_merge("fltrust")
def fltrust(deltas: torch.Tensor, weights: torch.Tensor, anchor: int | None) -> torch.Tensor:
    """FLTrust (Cao et al. 2021) anchored at the leader's own committed update.

    Every node can recompute it because the anchor's update is committed too. Its
    weakness in a swarm: a rogue leader becomes the anchor (see the module docstring);
    prefer ``fltrust_median``. Trusted updates count by sample weight x trust.

    Raises:
        InvalidAnchorError: no anchor given.
    """
    if anchor is None:
        raise InvalidAnchorError("fltrust: needs anchor= (index of the leader's own update)")
    reference = deltas[anchor]
    return _trust_weighted(deltas, weights, reference, _norms(reference.unsqueeze(0))[0])


@register_merge("fltrust_median")
def fltrust_median(deltas: torch.Tensor, weights: torch.Tensor, anchor: int | None) -> torch.Tensor:
    """FLTrust trust weighting around the coordinate-wise median delta (recommended).

    Why: the reference is fixed by the committed updates, not by whoever was elected,
    so a rogue leader cannot choose it; moving it requires a majority per coordinate.
    Magnitudes are normalised to the weighted median norm of the *trusted* updates, so
    neither a scaled update nor an untrusted one (reversed, noise, a free rider) can change
    the step size; trusted updates count by sample weight x trust, so a node's influence
    follows its data, not its number of identities. (The reference stays unweighted: a
    weighted one cost 0.003-0.008 of accuracy on digits, ``benchmarks/accuracy.py``.)
    Ignores the anchor.
    """
    return _trust_weighted(deltas, weights, _median_rows(deltas), None)


# --- entry point --------------------------------------------------------------------------


def _normalised_weights(weights: Sequence[float] | None, n: int) -> torch.Tensor:
    if weights is None:
        return torch.full((n,), 1.0 / n, dtype=torch.float64)
    if len(weights) != n:
        raise InvalidWeightsError(f"got {len(weights)} weights for {n} updates")
    w = torch.tensor([float(x) for x in weights], dtype=torch.float64)
    for i in range(n):
        if not math.isfinite(float(w[i])) or float(w[i]) < 0:
            raise InvalidWeightsError(f"weight {i} (update {i}) is {weights[i]!r}; need finite >= 0")
    total = _sum_last(w)
    if float(total) == 0.0:
        raise InvalidWeightsError("all weights are zero")
    return w / total


def _check_options(rule: str, options: dict[str, object]) -> None:
    params = list(inspect.signature(MERGES[rule]).parameters.values())[3:]
    accepted = sorted(p.name for p in params)
    for name in sorted(options):
        if name not in accepted:
            raise MergeOptionError(
                f"merge rule {rule!r} has no option {name!r}; accepted: {accepted or 'none'}"
            )


def _merge_integer_buffers(updates: Sequence[StateDict], previous: StateDict, out: StateDict) -> None:
    for key in sorted(previous):
        if previous[key].is_floating_point():
            continue
        stacked = torch.stack([u[key].to(torch.int64) for u in updates])
        lower = torch.sort(stacked, dim=0, stable=True).values[(len(updates) - 1) // 2]
        out[key] = lower.to(previous[key].dtype)


def merge(
    rule: str,
    updates: Sequence[StateDict],
    *,
    previous: StateDict,
    weights: Sequence[float] | None = None,
    anchor: int | None = None,
    **options: object,
) -> StateDict:
    """Merge committed full-parameter updates into the next global model.

    Args:
        rule: a name in ``MERGES``.
        updates: the participants' full state dicts (same layout as ``previous``).
        previous: the global model of the last epoch; deltas are ``update - previous``.
        weights: per-update sample counts (normalised here); ``None`` = uniform.
        anchor: index of the leader's own update, used by anchored rules (``fltrust``).
        **options: rule-specific options (e.g. ``beta`` for ``trimmed_mean``, ``f``).

    Returns:
        A new state dict with ``previous``'s dtypes and shapes; integer buffers are the
        element-wise lower median over the updates. Same inputs -> same bytes.

    Raises:
        UnknownRuleError: ``rule`` is not registered (lists the known names).
        UpdateError (and subclasses): an update is malformed (names index and key).
        InvalidWeightsError, InvalidAnchorError, MergeOptionError, PreconditionError.
    """
    if rule not in MERGES:
        raise UnknownRuleError(f"unknown merge rule {rule!r}; known: {', '.join(sorted(MERGES))}")
    _check_options(rule, options)
    validate_updates(updates, previous)
    n = len(updates)
    w = _normalised_weights(weights, n)
    if anchor is not None and (isinstance(anchor, bool) or not isinstance(anchor, int) or not 0 <= anchor < n):
        raise InvalidAnchorError(f"anchor {anchor!r} is not an update index in [0, {n})")
    base = flatten(previous)
    deltas = torch.stack([flatten(u) - base for u in updates])
    aggregated = MERGES[rule](deltas, w, anchor, **options)
    out = unflatten(base + aggregated, previous)
    _merge_integer_buffers(updates, previous, out)
    return out
