r"""The step each coalition merges: the swarm's merge rule, for a batch of coalitions at once.

For an epoch with deltas ``x_i = flatten(update_i) - flatten(previous)`` (the float64 layout
of :mod:`trainer.merges`), sample counts ``w_i`` and the swarm's ``rule``, ``options`` and
``anchor`` ``a``, the model of a coalition ``S`` is ``theta(S) = theta_prev + g(S)`` with

* ``absent="previous"`` (default): every node outside ``S`` is taken to have sent the
  previous model back (a zero delta), and the rule merges all ``n`` slots::

      g(S) = rule([x_i 1[i in S]]_{i=1..n}, weights = w / sum_N w, anchor = a, **options)

  It is the leader's merge with the same n, weights, anchor and options, so whatever the
  real merge can compute (Krum's n > 2f + 2, a trimmed mean's trim count) every coalition
  can; a node that did send the previous model back (a free rider) changes no coalition's
  merge, so its Shapley value is exactly 0 under every rule. For ``weighted_mean`` this
  is each member's share ``w_i / sum_N w`` of the full step, the utility's original
  definition (see :func:`trainer.scoring.game.merge_coefficients`). When the anchor is
  not in ``S`` its slot is a zero delta: ``fltrust`` then has no reference and keeps
  the previous model.
* ``absent="dropped"``: the rule merges the members only::

      g(S) = rule([x_i]_{i in S}, weights = w_S / sum_S w, anchor = position of a in S, **options)

  When the anchor is not in ``S`` the rule gets ``anchor=None``; a rule that needs one
  (``fltrust``) has no reference, and the coalition keeps the previous model (the
  ``previous`` behaviour). A coalition whose members all weigh 0 cannot be normalised
  (``merge`` refuses it) and keeps the previous model too. A rule that cannot merge a
  small coalition at all (``multi_krum`` needs more than 2f + 2 updates) raises
  ``ScoringInputError``.

* ``absent="share"``: each member keeps the coefficient it has in the epoch's merge of
  all n updates, ``g(S) = sum_{i in S} c_i(N) x_i`` with ``g(N)`` the leader's merge: the
  part of the merged step that came from ``S``. The game is then additive in the merge's
  own coefficients (like the weighted-mean share, which it is for ``weighted_mean``): what
  the rule gives no weight (a reversed or random update, trust 0) or rescales (a scaled
  update) is worth exactly that, and a coalition short of a majority still moves the model
  by its members' part. Only for rules whose step is a combination of the updates (the
  linear rules, ``fltrust``, ``fltrust_median``); others raise ``ScoringInputError``.

``g({}) = 0`` in all three. Integer buffers are not merged: every coalition keeps
``previous``'s (no registered model has any).

Three paths, chosen once per utility, give the same numbers up to float round-off as
calling ``trainer.merges.merge`` coalition by coalition (``tests/trainer/test_merged_utility.py``):

1. ``mean``, ``weighted_mean``: closed-form coefficients ``g(S) = sum_i c_i(S) x_i``.
2. Batched over coalitions (``BATCHED``): ``trimmed_mean`` sorts every coordinate's k row
   values for the whole batch at once; ``median`` (and ``fltrust_median``'s reference)
   sorts the n deltas once per coordinate and finds each coalition's middle values by
   counting present rows per sorted position, one 0/1 matrix product
   (:meth:`Batch.median_rows`); ``fltrust`` and ``fltrust_median`` compute the batch's
   norms, references and cosines at once (norms and dot products from the n deltas, not
   per coalition) and return coefficients (their step lies in the span of the deltas).
3. Any other rule (``geometric_median``, ``multi_krum``, ``centered_clipping``, a newly
   registered one): a loop calling the registered rule function on each coalition's
   member deltas, i.e. the very code the leader runs.

Coefficients let the utility mix per-update quantities it precomputed (a leading
``Linear`` layer's outputs); deltas are added to ``previous`` in float64 and cast to the
model's dtype as ``merge`` does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from trainer.merges import (
    MERGES,
    InvalidAnchorError,
    MergeOptionError,
    PreconditionError,
    RobustnessWarning,
    half_of,
    merge,
)
from trainer.params import StateDict, flatten, float_keys
from trainer.scoring.errors import ScoringInputError
from trainer.scoring.game import merge_coefficients

#: What an absent node is in a coalition's merge (see the module docstring).
ABSENT = ("previous", "dropped", "share")

#: From this many floating parameters, ``fltrust_median`` under ``absent="share"`` (the
#: swarm's default) finds its n coefficients in one streamed pass over blocks of the
#: parameters (:func:`_streamed_fltrust_median_share`) instead of holding the flattened
#: float64 deltas twice (4 x 11.2 M: 2 x 357 MB plus the copies, ~1 s and most of the memory
#: traffic of scoring a ResNet-18 class model). Below it nothing changes, bit for bit.
STREAM_PARAMETERS = 1_000_000


#: ``kernel(batch: Batch, **options)`` -> ``(B, k)`` coefficients over the batch's member
#: rows, or ``(B, d)`` aggregated deltas.
BatchedRule = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Steps:
    """The aggregated deltas of a batch of coalitions, in one of two forms:
    ``coefficients`` ``(B, n)`` with ``g(S) = sum_i c_i x_i``, or ``deltas`` ``(B, d)``."""

    coefficients: torch.Tensor | None = None
    deltas: torch.Tensor | None = None


@dataclass(frozen=True)
class Batch:
    """B coalitions each merged over k rows: row j of coalition b is update ``members[b, j]``'s
    delta if ``present[b, j]``, else a zero delta (an absent node under ``absent="previous"``).
    ``weights`` are normalised per coalition; ``anchors`` are row positions, -1 for none."""

    deltas: torch.Tensor  # (n, d) float64
    deltas_t: torch.Tensor  # (d, n), contiguous
    norms: torch.Tensor  # (n,)
    members: torch.Tensor  # (B, k) int64
    present: torch.Tensor  # (B, k) bool
    weights: torch.Tensor  # (B, k) float64
    anchors: torch.Tensor  # (B,) int64
    all_rows: bool  # every coalition's rows are all n updates, in index order (absent="previous")
    columns: Callable[[], SortedColumns]  # the epoch's deltas sorted per coordinate, built once

    def stack(self, b: int) -> torch.Tensor:
        """Coalition ``b``'s ``(k, d)`` rows: the input of a rule function."""
        rows = self.deltas[self.members[b]]
        return torch.where(self.present[b, :, None], rows, torch.zeros((), dtype=rows.dtype))

    def row_norms(self) -> torch.Tensor:
        """``(B, k)`` Euclidean norm of every row."""
        return self.norms[self.members] * self.present

    def row_dots(self, vectors: torch.Tensor) -> torch.Tensor:
        """``(B, k)`` dot product of every row of coalition b with ``vectors[b]`` ``(B, d)``."""
        return torch.gather(vectors @ self.deltas_t, 1, self.members) * self.present

    def sorted_rows(self) -> torch.Tensor:
        """``(d, B, k)``: each coordinate's k row values in ascending order (built and sorted
        in numpy, which sorts short last axes several times faster than torch)."""
        columns = self.deltas_t.numpy()
        if self.all_rows:
            rows = np.where(self.present.numpy()[None], columns[:, None, :], 0.0)
        else:
            rows = columns[:, self.members.numpy()]
        rows.sort(axis=-1)
        return torch.from_numpy(rows)

    def median_rows(self, columns: SortedColumns) -> torch.Tensor:
        """``(B, d)``: the coordinate-wise median of each coalition's k rows (the values of
        ``trainer.merges._median_rows``, bit for bit), without sorting per coalition. A
        coalition's row is ``x_i`` (present) or 0 (absent; a non-member under
        ``absent="dropped"`` has no row) and the n deltas are sorted once per coordinate
        (``columns``), so how many present rows lie at or below each sorted position is one
        matrix product of 0/1 counts (exact in float32); the absent zeros join at the first
        non-negative position. The r-th smallest value is then a negative present value,
        else 0 if the zeros reach rank r, else a non-negative present value."""
        k = self.members.shape[1]
        n = self.deltas.shape[0]
        B = len(self.members)
        present = torch.zeros((B, n), dtype=torch.float32).scatter(1, self.members, self.present.float())
        absent = k - present.sum(dim=1)
        counts = (present @ columns.at_or_below).view(B, n, -1)  # (B, sorted position, d)
        before_zero = torch.gather(counts, 1, (columns.negatives - 1).clamp(min=0).expand(B, 1, -1))[:, 0]
        before_zero = before_zero * (columns.negatives > 0) + absent[:, None]
        counts.addcmul_(absent[:, None, None], columns.non_negative)  # in place: (B, n, d) is the cost

        def order_statistic(rank: int) -> torch.Tensor:
            """The ``rank``-th smallest (from 1): where the counts first reach ``rank``."""
            first = (counts < rank).view(torch.uint8).sum(dim=1, dtype=torch.uint8).to(torch.int64)
            value = torch.gather(columns.values.expand(B, -1, -1), 1, first.clamp(max=n - 1)[:, None])[:, 0]
            zero = (first == n) | ((first >= columns.negatives) & (before_zero >= rank))
            return torch.where(zero, torch.zeros_like(value), value)

        if k % 2:
            return order_statistic(k // 2 + 1)
        return (order_statistic(k // 2) + order_statistic(k // 2 + 1)) / 2


@dataclass(frozen=True)
class SortedColumns:
    """The epoch's deltas sorted once per coordinate, for :meth:`Batch.median_rows`:
    ``values`` ``(n, d)``, each column ascending (stable); ``at_or_below`` ``(n, n * d)``, 1
    where update i's sorted position in coordinate c is <= k (column ``k * d + c``);
    ``negatives`` ``(1, d)``, how many values are < 0; ``non_negative`` ``(n, d)``, 1 from
    that position on."""

    values: torch.Tensor
    at_or_below: torch.Tensor
    negatives: torch.Tensor
    non_negative: torch.Tensor

    @classmethod
    def of(cls, deltas: torch.Tensor) -> SortedColumns:
        """Sort ``deltas`` ``(n, d)`` per coordinate."""
        n, d = deltas.shape
        ordered = torch.sort(deltas, dim=0, stable=True)
        rank = torch.empty_like(ordered.indices).scatter_(0, ordered.indices, torch.arange(n)[:, None].expand(n, d))
        at_or_below = (rank[:, None, :] <= torch.arange(n)[None, :, None]).to(torch.float32).reshape(n, n * d)
        negatives = (ordered.values < 0).sum(dim=0, keepdim=True)
        non_negative = (torch.arange(n)[:, None] >= negatives).to(torch.float32)
        return cls(ordered.values, at_or_below, negatives, non_negative)


# --------------------------------------------------------------------------- batched rules


def _batched_median(batch: Batch, *, f: int | None = None) -> torch.Tensor:
    return batch.median_rows(batch.columns())


def _batched_trimmed_mean(batch: Batch, *, beta: float = 0.25, f: int | None = None) -> torch.Tensor:
    k = batch.members.shape[1]
    trim = math.floor(beta * k)
    return batch.sorted_rows()[..., trim : k - trim].mean(dim=-1).T


def _trust_coefficients(batch: Batch, reference: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Batched ``trainer.merges._trust_weighted`` as coefficients over the rows:
    ``c_j = w_j t_j / sum w t * target / ||x_j||``, ``t_j = ReLU(cos(x_j, reference))``; a
    zero row has trust 0; a zero reference or no positive trusted weight gives a zero step.
    ``target=None``: the weighted lower median norm of the trusted rows."""
    norms = batch.row_norms()
    ref_norm = torch.linalg.vector_norm(reference, dim=1)
    safe = norms.clamp(min=1e-300)
    cos = batch.row_dots(reference) / (safe * ref_norm.clamp(min=1e-300)[:, None])
    trust = torch.where(norms > 0, cos.clamp(min=0.0), torch.zeros_like(cos))
    influence = batch.weights * trust
    total = influence.sum(dim=1)
    moves = (ref_norm > 0) & (total > 0)
    if target is None:
        ordered = torch.sort(norms, dim=1, stable=True)
        trusted = torch.gather(torch.where(trust > 0, batch.weights, torch.zeros_like(trust)), 1, ordered.indices)
        cumulative = trusted.cumsum(dim=1)
        first = (cumulative < half_of(cumulative[:, -1:])).sum(dim=1, keepdim=True).clamp(max=norms.shape[1] - 1)
        target = torch.gather(ordered.values, 1, first)[:, 0]
    coef = influence / torch.where(moves, total, torch.ones_like(total))[:, None] * (target[:, None] / safe)
    return torch.where(moves[:, None], coef, torch.zeros_like(coef))


def _batched_fltrust(batch: Batch) -> torch.Tensor:
    rows = torch.arange(len(batch.anchors))
    position = batch.anchors.clamp(min=0)
    held = (batch.anchors >= 0) & batch.present[rows, position]  # else: no reference, zero step
    reference = batch.deltas[batch.members[rows, position]] * held[:, None]
    return _trust_coefficients(batch, reference, torch.linalg.vector_norm(reference, dim=1))


def _batched_fltrust_median(batch: Batch) -> torch.Tensor:
    if batch.all_rows and bool(batch.present.all()):
        # Every coalition is the whole epoch (the leader's merge, what absent="share" needs):
        # its median is the plain one, without the per-coalition machinery of median_rows
        # (which holds an (n, n * d) float32 table: 700 MB at 11 M parameters).
        reference = _full_median(batch.deltas).expand(len(batch.present), -1)
        return _trust_coefficients(batch, reference, None)
    return _trust_coefficients(batch, batch.median_rows(batch.columns()), None)


def _full_median(deltas: torch.Tensor) -> torch.Tensor:
    """``(1, d)``: the coordinate-wise median of the n rows of ``deltas`` ``(n, d)``, the value
    of ``trainer.merges._median_rows`` bit for bit (the same two middle order statistics,
    averaged the same way). For n <= 8 an odd-even transposition network of element-wise
    min/max over whole rows finds them (n^2 / 2 passes over contiguous rows: 0.2 s at 4 x
    11 M, where a sort across rows takes 0.8 s); larger n sort."""
    n = deltas.shape[0]
    if n > 8:
        from trainer.merges import _median_rows

        return _median_rows(deltas)[None]
    out = torch.empty((1, deltas.shape[1]), dtype=deltas.dtype)
    step = 1 << 15  # columns per block: the block's n rows stay in cache through the network
    for start in range(0, deltas.shape[1], step):
        rows = list(deltas[:, start:start + step].unbind(0))
        for round_ in range(n):
            for i in range(round_ % 2, n - 1, 2):
                rows[i], rows[i + 1] = torch.minimum(rows[i], rows[i + 1]), torch.maximum(rows[i], rows[i + 1])
        if n % 2:
            out[0, start:start + step] = rows[n // 2]
        else:
            torch.div(rows[n // 2 - 1] + rows[n // 2], 2, out=out[0, start:start + step])
    return out


class _Streamed:
    """What :func:`_trust_coefficients` reads of a one-coalition :class:`Batch` of all n rows,
    from sums accumulated block by block: the rows' norms and dot products with the reference."""

    def __init__(self, norms: torch.Tensor, dots: torch.Tensor, weights: np.ndarray) -> None:
        self._norms, self._dots = norms[None], dots[None]
        self.weights = torch.from_numpy(weights / weights.sum())[None]

    def row_norms(self) -> torch.Tensor:
        return self._norms

    def row_dots(self, vectors: torch.Tensor) -> torch.Tensor:
        return self._dots


def _streamed_fltrust_median_share(previous: StateDict, updates: Sequence[StateDict],
                                   weights: np.ndarray, block: int = 1 << 20) -> torch.Tensor:
    """``(n,)``: the coefficients ``fltrust_median`` gives the n updates in the leader's merge
    (what ``absent="share"`` pays), computed over blocks of ``block`` coordinates in float64:
    each block's deltas, their coordinate-wise median (the reference), and the running sums
    of squares and of products with the reference. Equal to the batched kernel's up to the
    order of the float64 sums (relative differences ~1e-15)."""
    n = len(updates)
    squares = torch.zeros(n, dtype=torch.float64)
    dots = torch.zeros(n, dtype=torch.float64)
    reference_square = torch.zeros((), dtype=torch.float64)
    for key in float_keys(previous):
        base = previous[key].detach().reshape(-1)
        flat = [u[key].detach().reshape(-1) for u in updates]
        for start in range(0, base.numel(), block):
            stop = start + block
            deltas = torch.stack([f[start:stop].to(torch.float64) for f in flat]) - base[start:stop].to(torch.float64)
            median = _full_median(deltas)[0]
            squares += (deltas * deltas).sum(dim=1)
            dots += deltas @ median
            reference_square += median @ median
    reference = reference_square.sqrt().reshape(1, 1)  # only its norm is read
    batch = _Streamed(squares.sqrt(), dots, np.asarray(weights, dtype=np.float64))
    return _trust_coefficients(batch, reference, None)[0]  # type: ignore[arg-type]


#: Batched forms, keyed by the rule *function* so a rule replaced in ``MERGES`` is never
#: served by a stale kernel: name -> (rule, "coefficients" | "deltas", kernel).
BATCHED: dict[str, tuple[Callable[..., torch.Tensor], str, BatchedRule]] = {
    "median": (MERGES["median"], "deltas", _batched_median),
    "trimmed_mean": (MERGES["trimmed_mean"], "deltas", _batched_trimmed_mean),
    "fltrust": (MERGES["fltrust"], "coefficients", _batched_fltrust),
    "fltrust_median": (MERGES["fltrust_median"], "coefficients", _batched_fltrust_median),
}
_LINEAR = {"mean": MERGES["mean"], "weighted_mean": MERGES["weighted_mean"]}


def shares_its_step(rule: str) -> bool:
    """Whether ``rule``'s step is a combination ``sum_i c_i d_i`` of the updates, so that
    ``absent="share"`` can value each node by its part of it."""
    function = MERGES.get(rule)
    batched = BATCHED.get(rule)
    return function is not None and (_LINEAR.get(rule) is function or (
        batched is not None and batched[0] is function and batched[1] == "coefficients"))


def swarm_absent(rule: str) -> str:
    """What an absent node is when the swarm scores ``rule``'s merge, in the simulator and
    in the nodes alike: ``"share"`` (each node valued by its part of the step the merge
    took; benchmarks/fairness.py shows why) where the rule allows it, else ``"previous"``."""
    return "share" if shares_its_step(rule) else "previous"


# --------------------------------------------------------------------------- the coalition merge


class CoalitionMerge:
    """``g(S)`` of the module docstring for one epoch; ``steps(membership)`` batches it."""

    def __init__(self, rule: str, previous: StateDict, updates: Sequence[StateDict], weights: np.ndarray,
                 anchor: int | None, options: Mapping[str, object] | None, absent: str) -> None:
        """Check ``rule``, ``anchor``, ``options`` and ``absent``; non-linear rules are also
        merged once over every update, so an option or precondition the leader's merge
        would refuse fails here. ``weights`` are the game's checked sample counts."""
        if rule not in MERGES:
            raise ScoringInputError(f"unknown merge rule {rule!r}; known: {', '.join(sorted(MERGES))}")
        if absent not in ABSENT:
            raise ScoringInputError(f"absent must be one of {ABSENT}, got {absent!r}")
        n = len(updates)
        if anchor is not None and (isinstance(anchor, bool) or not isinstance(anchor, (int, np.integer))
                                   or not 0 <= anchor < n):
            raise ScoringInputError(f"anchor {anchor!r} is not an update index in [0, {n})")
        self.n, self.rule, self.absent = n, rule, absent
        self.anchor = None if anchor is None else int(anchor)
        self.options = dict(options or {})
        self.weights = np.asarray(weights, dtype=np.float64)
        function = MERGES[rule]
        self._linear = _LINEAR.get(rule) is function
        batched = BATCHED.get(rule)
        self._kind, self._kernel = (batched[1], batched[2]) if batched and batched[0] is function else ("deltas", None)
        if self.options or not self._linear:
            # What the leader's merge could refuse (options, the anchor, n against f) depends
            # on n, the weights and the options, not on the parameters: check it on one
            # coordinate (the whole merge costs seconds at 11 M parameters).
            key = float_keys(previous)[:1]
            probe = {k: previous[k].reshape(-1)[:1] for k in key}
            try:
                merge(rule, [{k: u[k].reshape(-1)[:1] for k in key} for u in updates], previous=probe,
                      weights=list(self.weights), anchor=self.anchor, **self.options)
            except (MergeOptionError, InvalidAnchorError, PreconditionError) as error:
                raise ScoringInputError(f"merge rule {rule!r} cannot merge these updates: {error}") from error
        if absent == "share" and not shares_its_step(rule):
            raise ScoringInputError(f"absent='share' needs a rule whose step is a combination of the updates "
                                    f"(mean, weighted_mean, fltrust, fltrust_median), not {rule!r}")
        if self._linear:
            return
        self._share: torch.Tensor | None = None
        if (absent == "share" and self._kernel is _batched_fltrust_median and not self.options
                and sum(previous[k].numel() for k in float_keys(previous)) >= STREAM_PARAMETERS):
            self._share = _streamed_fltrust_median_share(previous, updates, self.weights)
            return
        self._function = function
        self._base = flatten(previous)
        self._deltas = torch.stack([flatten(u) for u in updates]) - self._base
        self._deltas_t = self._deltas.T.contiguous()
        self._norms = torch.linalg.vector_norm(self._deltas, dim=1)
        self._columns: SortedColumns | None = None
        keys = float_keys(previous)
        self._layout = [(key, previous[key].shape, previous[key].dtype) for key in keys]

    def steps(self, membership: np.ndarray) -> Steps:
        """``g(S)`` for each row of a boolean ``(B, n)`` membership matrix."""
        if self._linear:
            return Steps(coefficients=torch.from_numpy(self._linear_coefficients(membership)))
        if self.absent == "share":
            if self._share is None:
                self._share = self._merged(np.ones((1, self.n), dtype=bool)).coefficients[0]  # type: ignore[index]
            return Steps(coefficients=torch.from_numpy(membership).to(torch.float64) * self._share)
        return self._merged(membership)

    def _merged(self, membership: np.ndarray) -> Steps:
        """The rule's step for each coalition (``absent`` "previous" or "dropped")."""
        width = self.n if self._kind == "coefficients" else self._deltas.shape[1]
        out = torch.zeros((len(membership), width), dtype=torch.float64)
        with warnings.catch_warnings():
            # The leader's merge already warned about its own breakdown; a coalition's is no news.
            warnings.simplefilter("ignore", RobustnessWarning)
            for rows, batch, void in self._batches(membership):
                if self._kernel is not None:
                    result = self._kernel(batch, **self.options)
                else:
                    result = self._loop(batch, void)
                result[torch.from_numpy(void)] = 0.0
                if self._kind == "coefficients":
                    result = torch.zeros((len(rows), self.n), dtype=torch.float64).scatter(1, batch.members, result)
                out[torch.from_numpy(rows)] = result
        return Steps(coefficients=out) if self._kind == "coefficients" else Steps(deltas=out)

    def parameters(self, deltas: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-key ``(B, *shape)`` floating parameters ``previous + g`` in the model's dtype,
        added in float64 and cast once, as ``merge`` does."""
        flat = self._base + deltas
        sizes = [math.prod(shape) for _, shape, _ in self._layout]
        return {key: chunk.reshape(len(deltas), *shape).to(dtype)
                for (key, shape, dtype), chunk in zip(self._layout, torch.split(flat, sizes, dim=1), strict=True)}

    # ----------------------------------------------------------------------- internals

    def _linear_coefficients(self, membership: np.ndarray) -> np.ndarray:
        if self.rule == "weighted_mean":
            if self.absent != "dropped":
                return merge_coefficients(membership, self.weights)
            shares = membership * self.weights
            totals = shares.sum(axis=1, keepdims=True)
            return np.divide(shares, totals, out=np.zeros_like(shares), where=totals > 0)
        counts = np.full((len(membership), 1), float(self.n)) if self.absent != "dropped" \
            else membership.sum(axis=1, keepdims=True).astype(np.float64)
        return np.divide(membership, counts, out=np.zeros(membership.shape), where=counts > 0)

    def _batches(self, membership: np.ndarray) -> Iterator[tuple[np.ndarray, Batch, np.ndarray]]:
        """Per group of non-empty coalitions merged over the same number k of rows: their rows
        in ``membership``, the :class:`Batch`, and which keep the previous model (all members
        weigh 0 under ``absent="dropped"``)."""
        sizes = membership.sum(axis=1)
        if self.absent != "dropped":
            groups = [(np.flatnonzero(sizes > 0), None)]
        else:
            groups = [(np.flatnonzero(sizes == k), k) for k in sorted(set(sizes.tolist()) - {0})]
        for rows, k in groups:
            if len(rows) == 0:
                continue
            if k is None:
                members = np.tile(np.arange(self.n), (len(rows), 1))
                present = membership[rows]
                weights = np.tile(self.weights / self.weights.sum(), (len(rows), 1))
                anchor = np.full(len(rows), -1 if self.anchor is None else self.anchor)
                void = np.zeros(len(rows), dtype=bool)
            else:
                members = np.nonzero(membership[rows])[1].reshape(len(rows), k)
                present = np.ones(members.shape, dtype=bool)
                raw = self.weights[members]
                totals = raw.sum(axis=1, keepdims=True)
                weights = np.divide(raw, totals, out=np.full(raw.shape, 1.0 / k), where=totals > 0)
                hit = members == (-1 if self.anchor is None else self.anchor)
                anchor = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
                void = totals[:, 0] == 0
            batch = Batch(self._deltas, self._deltas_t, self._norms, torch.from_numpy(members),
                          torch.from_numpy(present), torch.from_numpy(weights),
                          torch.from_numpy(anchor.astype(np.int64)), all_rows=k is None,
                          columns=self._sorted_columns)
            yield rows, batch, void

    def _sorted_columns(self) -> SortedColumns:
        """The deltas sorted per coordinate, built on first use and kept for the epoch."""
        if self._columns is None:
            self._columns = SortedColumns.of(self._deltas)
        return self._columns

    def _loop(self, batch: Batch, void: np.ndarray) -> torch.Tensor:
        """The registered rule function on each coalition's rows."""
        out = torch.zeros((len(void), self._deltas.shape[1]), dtype=torch.float64)
        for b in range(len(void)):
            if void[b]:
                continue
            anchor = int(batch.anchors[b]) if batch.anchors[b] >= 0 else None
            try:
                out[b] = self._function(batch.stack(b), batch.weights[b], anchor, **self.options)
            except InvalidAnchorError:
                if anchor is not None or self.anchor is None:
                    raise
                # absent="dropped" without the anchor: no reference, the previous model is kept.
            except (PreconditionError, MergeOptionError) as error:
                members = batch.members[b][batch.present[b]].tolist()
                raise ScoringInputError(
                    f"merge rule {self.rule!r} cannot merge coalition {members} "
                    f"(absent={self.absent!r}): {error}") from error
        return out
