"""The coalition utility that every contribution scorer values: the model the swarm merged.

For an epoch with previous global parameters ``theta_prev``, committed updates
``theta_1 .. theta_n`` with (allowance-capped) sample counts ``w_1 .. w_n``, the swarm's
merge ``rule`` with its ``options`` and ``anchor`` (the leader), and a validator's
validation rows ``(x_r, y_r), r = 1 .. m``:

    d_i        = theta_i - theta_prev                       (delta of update i)
    theta(S)   = theta_prev + g(S),   g(S) = the rule's step for coalition S
    theta({})  = theta_prev
    u(S)       = sum_r omega_r h(f(x_r; theta(S)), y_r),   omega_r = 1 / (K_v * m_{y_r})

with ``h = -(1 - p_y^q) / q``, ``p_y`` the probability the model gives the row's label and
``q = GCE_Q = 1/2`` (metric "gce", the default: minus the generalized cross-entropy, smooth
and tolerant of label noise, see "Label noise" below), ``h = -cross_entropy`` (metric
"loss") or ``h = 1[argmax = y]`` (metric "accuracy"), and ``omega`` the class-balanced row weights
(:func:`class_balanced`: ``K_v`` classes present among the validator's rows, ``m_c`` rows of
class ``c``), so each class the validator holds counts equally. On non-IID data this is what
separates a specialist from a label flipper: an update that only raises one class's logit
gains on that class what it loses on the validator's others, while a real improvement of a
class counts in full (measured in ``benchmarks/fairness.py``: with plain row means a label
flipper's flipped labels landing on a validator dominated by that class earned it up to 0.58
of the honest mean on Dirichlet 0.5; balanced, at most 0.074; one lying validator's reach
fell from 3.3 % to 1.9 % of all tokens). ``g(S)`` is
:mod:`trainer.scoring.coalition_merge`'s: with ``absent="previous"`` (the default) it is
``trainer.merges.merge(rule, ...)`` over all n slots in which every node outside ``S``
sent the previous model back (a zero delta), with the epoch's weights, anchor and
options, so ``theta(N)`` is exactly the leader's merge (design principle 1, "pay for the
model you merged"); with ``absent="dropped"`` it merges the members of ``S`` alone; with
``absent="share"`` (the simulator's default) ``g(S) = sum_{i in S} c_i(N) d_i`` is the part
of the leader's merged step that came from ``S``, each member keeping the coefficient the
merge gave it (rules whose step combines the updates: the linear rules, ``fltrust``,
``fltrust_median``).

*Public steps* (``public=``, with ``absent="share"``; the swarm passes the previous epoch's
merged updates carried onto ``theta_prev``): each step splits as ``d_i = pi_i + r_i``,
``pi_i`` its least-squares projection on the span of the public steps
(:func:`public_parts`), and a member absent from ``S`` still moves the model by
``c_i pi_i``::

    theta(S) = theta_prev + sum_{i in S} c_i d_i + sum_{i not in S} c_i pi_i

So ``theta(N)`` is still the leader's merge, but the empty coalition is ``theta_prev`` moved
by the public part of the merged step, and a node is valued for what its step adds to what
everyone knew. Why: the previous merged step and the previous epoch's updates point where
the swarm is going, so a copy of them (or of any mix of them) has real merged value with
no data behind it; noise added to pass a direction check (:func:`trainer.attacks.disguise`)
lies almost wholly outside the span and is all such a copy is valued for.

Measured with ``benchmarks/fairness.py --public-steps`` (10 seeds): the previous merged step
disguised to cosine 0.9 fell from 0.91-1.62 times the honest mean to 0.014-0.023 (IID) and
a mean of 0.051 (Dirichlet). The swarm does not use it (yet): what is left of an honest
step's value is near noise level late in a run, and the validators' votes, which share
each report's positive scores whatever their size, turn noise into credit, so on
Dirichlet data rogues with no value (sign flip, noise, label flip) were paid 0.46-0.67 of
the honest mean in 1-2 seeds of 10 (0.001-0.074 without).

What that buys: what the rule rescales earns nothing for its scale. Under
``fltrust_median`` a node that scales its update by 10 is rescaled to the median norm of
the trusted updates in every coalition, so it is paid about what its honest update earns
or less (wine epoch of the tests: 0.99 0.74 -2.73 1.05 -11.87 1.00 times per node; valued
as a weighted-mean share it got -8.5x to +5.8x). A free rider (an update equal to
``theta_prev``) changes no coalition's merge under any rule, so its Shapley value is
exactly 0. An update the rule does not trust (a reversed step, noise) no longer counts in
the step's length: ``fltrust_median`` takes the weighted median norm over the trusted
updates only, and weights each trusted update by samples x trust, so splitting one
node's data over two identities does not change the merge's weights.
``simulate`` and the swarm value their own merge rule (``rule="fltrust_median"``, the
default here); ``rule="weighted_mean"`` gives each member's share of the full weighted
step, ``g(S) = sum_{i in S} w_i d_i / sum_{j in N} w_j``, the values this module produced
before it valued the merge.

What "previous" does not buy: the coordinate-wise median reference makes ``u`` close to
a *majority game*. An absent node's zero delta votes in the median, so a coalition
holding fewer than half of the updates has a reference that is 0 in most coordinates and
moves the model little; the value is created where a coalition crosses the majority, and
whoever completes it is paid for the step it unlocks, and per identity rather than per
sample. Any present update, even a reversed or random one (trust 0), pushes an absent
zero out of the median's middle order statistics, so it is paid for that: on digits
(Dirichlet 0.5, 8 nodes, seed 0) a sign-flipping rogue's first-epoch score was
0.80-0.95x what the same node earned honestly, and ``benchmarks/fairness.py`` paid 2
rogues of 8 under sign flip, noise, label flip and stale copies 0.2-0.8 of the honest
mean. ``absent="dropped"`` avoids the threshold (a coalition merges its own members) but
pays a lone non-IID member for its whole biased step, which on digits gave most honest
specialists negative scores; it cannot value Krum either.

Why "share" pays for the model merged: ``u(N)`` is the leader's merge and every node is
valued by what the merge actually took from it, so what the rule neutralises is worth
exactly what the rule kept of it: an update with trust 0 (reversed, noise, a stale copy
of the global model plus noise, a label-flipped update pointing away from the others)
has coefficient 0 and is a dummy player, paid 0 by every scorer; a scaled update is
rescaled to the trusted median norm and is paid like the honest update it is; weights
are samples x trust, so a node's part follows its data, not its identities. There is no
majority threshold (a coalition moves the model by its members' part), so the sampled
estimators fit the game as well as the weighted-mean share. What it does not charge: a
rogue's effect on the *other* updates' coefficients (on the median reference and the
trusted norm) is not the rogue's; it is bounded by the rule's robustness, not priced.

Speed: when ``g(S)`` is a combination ``sum_i c_i(S) d_i`` of the deltas (the linear
rules in closed form; ``fltrust`` and ``fltrust_median`` from batched norms and cosines),
a batch of B coalitions is one ``(B, n) @ (n, P)`` product per parameter tensor, and the
B models run in one ``torch.func.vmap`` over ``functional_call``. When the model is a
``Sequential`` starting with ``nn.Linear`` (the MLP), that layer's output is affine in its
own parameters, so it is precomputed once per update and mixed with the same
coefficients: the widest matrix product then costs ``n`` instead of the input width per
row. Other rules give each coalition's full step (``median`` and ``trimmed_mean`` batched
by sorting, any other rule by calling it coalition by coalition), added to
``theta_prev`` and run through the same vmapped forward pass. Measured (digits MLP, 9,610
parameters, one node's 14 validation rows, 1 thread): ``exact_shapley`` at n = 8 takes
0.23 s with ``fltrust_median``, 0.008 s with ``weighted_mean``. Every validator's own
utility for the same epoch costs one pooled evaluation (:class:`ValidatorUtilities`): the
merged models are the same, only the rows differ. Large models (from :data:`LOOP_PARAMETERS`, 1 M floating parameters) run
their coalitions' models one at a time in memory-bounded chunks instead (see there), and
``fltrust_median``'s share is found in one streamed pass
(:func:`trainer.scoring.coalition_merge._streamed_fltrust_median_share`): ResNet-18 class,
11.2 M parameters, n = 4 on ~26 validation rows of 3x32x32, exact Shapley scores in about
5.3 s where local training (2 epochs over ~102 rows) takes 6.5-7.5 s on a lone core; it
took 12-16 s before (``benchmarks/large_model.py``). ``device`` runs the forward passes on
a GPU; the merge coefficients stay on the CPU.

Linearity (what the swarm relies on): ``u`` is a weighted mean over validation rows, and
``theta(S)`` does not depend on the validation rows for *any* merge rule (the merge sees
only the updates, weights, anchor and options), so for validators v and any mixing
weights ``lambda_v`` summing to 1, the utility ``u_mix(S) = sum_v lambda_v u_v(S)`` is
again a weighted row mean, over the union of their rows. Every scorer here is a linear
map of the vector of utilities it reads (Shapley, leave-one-out, and the sampled
estimators for a fixed seed), hence

    phi_mix = sum_v lambda_v phi_v,

i.e. each validator scores on its own private rows, and any weighted mean of those scores
*is* the score of a utility on the pooled rows, which nobody holds. With plain row means
and ``lambda_v = m_v / M`` that is the pooled rows' mean; with the class-balanced weights
it is the size-weighted mix of the validators' balanced means (what the simulator's
``validation="union"`` view reports). Settlement does not average scores but votes (each
validator splits its positive scores among the others, see ``swarmtoken.rewards``),
which trades this exactness for robustness to a lying validator. Every metric is a row
mean, so the property holds for all of them.

Label noise (why "gce"): a validator scores on its own rows, whose labels are as noisy as
its training rows. If a fraction ``eta`` of them is moved to another class uniformly (of
``K``), the expected value of a row's ``p_y`` under the noisy label is
``eta / (K - 1) + (1 - eta K / (K - 1)) p_y``: affine in the clean ``p_y`` with a
positive slope for ``eta < (K - 1) / K``. Shapley values are linear in ``u`` and blind to
its constants, and a validator's vote shares its positive scores whatever their scale
(``swarmtoken.rewards``), so with ``h = p_y`` a noisy validator's vote is in expectation
the one it would give with clean labels, up to the class-balanced weights, which follow the
noisy labels (the noise tolerance of the absolute error, Ghosh,
Kumar and Sastry, AAAI 2017). The cross-entropy has no such property: ``-log`` of a
noisy label rewards a model for spreading probability over the wrong classes, which is
what training on noisy labels does, so noisy validators credited noisy updates.
``p_y`` itself is flat where the model is confident, so late in a run its scores are
small and noisy; ``(p_y^q - 1) / q`` (Zhang and Sabuncu, NeurIPS 2018) lies between the
two (the cross-entropy as ``q -> 0``). Measured with ``benchmarks/fairness.py`` (digits, 8
nodes, 10 epochs, 10 seeds; quality probe: label noise {0, 0, .1, .1, .3, .3, .5, .5}):

==========================  =========================  ============  ==============
metric                      Spearman payout / value    noise factor  targets passed
==========================  =========================  ============  ==============
"loss"                      0.902 mean, 0.786 worst    0.96          59 of 77
"gce", q = 0.3              0.960 mean, 0.881 worst    0.20          60 of 77
"gce", q = 1/2 (default)    0.965 mean, 0.905 worst    0.13          60 of 77
"gce", q = 0.7              0.972 mean, 0.905 worst    0.11          60 of 77
``p_y`` (q = 1)             0.970 mean, 0.905 worst    0.09          58 of 77
==========================  =========================  ============  ==============

(*noise factor*: what noise 0.5 multiplies a node's epoch credit by at equal data, mean over
the seeds; the other exponents measured by changing :data:`GCE_Q`.) ``p_y`` alone paid a
Gaussian-noise rogue of 3 nodes 0.39 of the honest mean in one seed and let one boosting
liar of 8 move 2.1 % over 20 epochs; with q = 1/2 two targets now pass and one fails on average
(pooling two nodes on Dirichlet data: 1.058 times their pay apart, against 1.043; 1.032 since
the vote cap of ``swarmtoken.rewards`` went from two equal shares to one and a half), and the
worst honest node on Dirichlet data fell from 0.785 to 0.696 of its data share (target 0.5). Nodes with noise 0.5 were suspended (6 nodes in 5 seeds, no other
noise level); scored on the clean test rows (the same game on ``split.test``), each was
worth -0.030 to -0.001 over its run, among the three least of its swarm, so the verdict is
right. The cross-entropy paid them on. ``tests/trainer/test_label_noise.py`` shows the
mechanism on one epoch: with the cross-entropy, a validator with half its labels wrong
scores an update trained on clean labels below 0 and one trained on noisy labels above.

What a non-linear rule changes: ``theta(S)`` is no longer ``theta_prev + sum_i c_i d_i``
with ``c_i = w_i / W`` fixed per player. The Shapley axioms, the estimators and the
linearity above do not care (they read ``u`` only). What no longer holds is the premise of
``shapley_quadratic``'s surrogate, a quadratic in those fixed ``c(S)``: for a non-linear
rule it is just a regressor. The estimator stays consistent (its stratified residual
term corrects the surrogate, and with every coalition evaluated it equals exact
Shapley), only the variance reduction depends on how well the surrogate fits; and the
closer ``u`` is to a majority game (see "What it does not buy"), the worse it fits.
Measured with ``benchmarks/shapley.py --rule fltrust_median --sizes 8 12`` (12 epochs x 3
repeats, 1 thread): at n = 12 and 480 evaluations Spearman 0.956 (p10 0.909), Pearson
0.990, relative L2 error 0.066 (p90 0.085) against exact Shapley (KernelSHAP 0.811 /
0.238, permutation sampling 0.775 / 0.280; with the unweighted, all-norm rule before the
trusted-norm change: 0.986 / 0.039; with the weighted mean: 1.000 / 0.001); exact scoring
at n = 8 over all 8 validators' 288 rows costs 0.35-0.50 s CPU per epoch. With
``absent="share"`` the game is additive in fixed coefficients, the quadratic surrogate's
own premise: at n = 12 and 480 evaluations Spearman 1.000, relative L2 0.001 (KernelSHAP
and permutation sampling 1.000 / 0.001 too), and exact scoring at n = 8 costs 0.10 s CPU
per epoch (the linear path: one coefficient vector, no per-coalition merge).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from trainer.merges import DEFAULT_MERGE
from trainer.params import StateDict, validate_updates
from trainer.scoring.coalition_merge import CoalitionMerge
from trainer.scoring.errors import ScoringInputError
from trainer.scoring.game import CachedGame

#: Floating parameters from which a model is "large": its coalitions' models run one at a
#: time (a loop of plain forward passes) instead of in one ``vmap``, and a chunk holds at
#: most :data:`CHUNK_BYTES` of merged parameters. Why: for a large model the forward pass
#: itself dominates, and ``vmap`` over convolutions with batched weights becomes a grouped
#: convolution, which the CPU runs far slower (ResNet-18 class, 11.2 M parameters, 16
#: coalitions on 33 rows of 3x16x16, 1 thread: 12.3 s vmapped, 1.8 s looped) while holding
#: all B models at once (4.6 GB peak). Smaller models (the MLP, the small CNN) keep the
#: vmapped path and bit-identical values.
LOOP_PARAMETERS = 1_000_000
CHUNK_BYTES = 256 * 2**20

#: Per-row performance ``g(logits, y)``; higher is better.
RowMetric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _neg_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Minus the per-row cross-entropy: smooth, so small updates move it."""
    return -nn.functional.cross_entropy(logits, y, reduction="none")


def _correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 for a correct arg-max prediction, 0 otherwise (metric "accuracy")."""
    return (logits.argmax(dim=-1) == y).to(logits.dtype)


#: The exponent of the "gce" metric: toward 0 it is the cross-entropy, at 1 the probability of the label.
GCE_Q = 0.5


def _true_probability(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The probability the model gives the row's label."""
    return torch.softmax(logits, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)


def _neg_generalized_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Minus the generalized cross-entropy ``(1 - p_y^q) / q`` (metric "gce", the default): see
    the module docstring, "Label noise"."""
    return (_true_probability(logits, y) ** GCE_Q - 1) / GCE_Q


METRICS: dict[str, RowMetric] = {
    "gce": _neg_generalized_cross_entropy,
    "loss": _neg_cross_entropy,
    "accuracy": _correct,
}
#: The metric the swarm's validators score with.
DEFAULT_METRIC = "gce"


class Utility(CachedGame):
    """Cached coalition utility ``u(S)`` over one epoch's updates (see module doc).

    Call it with a ``frozenset`` of update indices; ``evaluate_many`` scores a
    batch of coalitions in vectorised forward passes, which is how the scorers
    use it. ``evaluations`` counts distinct coalitions evaluated so far.
    """

    def __init__(
        self,
        model: nn.Module,
        previous: StateDict,
        updates: Sequence[StateDict],
        weights: Sequence[float] | None,
        X_val: torch.Tensor,
        y_val: torch.Tensor,
        metric: str = DEFAULT_METRIC,
        batch_size: int = 64,
        *,
        rule: str = DEFAULT_MERGE,
        anchor: int | None = None,
        options: Mapping[str, object] | None = None,
        absent: str = "previous",
        device: str | torch.device | None = None,
        public: Sequence[StateDict] | None = None,
    ) -> None:
        """Validate the inputs and precompute the per-tensor delta stacks.

        ``public`` (only with ``absent="share"``) are models whose steps from ``previous``
        everyone knew before the epoch (the previous epoch's merged updates carried onto
        ``previous``, :func:`trainer.attacks.rebase`): the part of each update that lies in
        their span is credited to nobody (see :func:`public_parts`).

        ``device`` (``None``: the device of ``model``'s parameters) is where the coalitions'
        models run; the merge coefficients are computed on the CPU as the swarm's merge is,
        and the row values come back to the CPU as float64. On the CPU nothing moves."""
        if len(updates) == 0:
            raise ScoringInputError("updates is empty: a utility needs at least one update")
        if metric not in METRICS:
            raise ScoringInputError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
        if batch_size < 1:
            raise ScoringInputError(f"batch_size must be >= 1, got {batch_size}")
        validate_updates(updates, previous)
        super().__init__(len(updates), weights)
        floating = [k for k, v in previous.items() if torch.is_floating_point(v)]
        # Merged models are built and run in the model's own precision.
        self._dtype = previous[floating[0]].dtype if floating else torch.float32
        X, self._y = _check_validation(X_val, y_val)
        self._row_weights = class_balanced(self._y)
        X = X.to(self._dtype)
        _check_fit(model.eval(), previous, X, self._y)
        self._row_metric = METRICS[metric]
        self._batch_size = batch_size
        self._merge = CoalitionMerge(rule, previous, updates, self.weights, anchor, options, absent)
        self._device = _device_of(model) if device is None else _resolve(device)
        n_parameters = sum(previous[k].numel() for k in floating)
        self._loop = n_parameters >= LOOP_PARAMETERS
        if self._loop:
            model_bytes = n_parameters * max(previous[k].element_size() for k in floating)
            self._batch_size = max(1, min(batch_size, CHUNK_BYTES // model_bytes))
        X, self._y = X.to(self._device), self._y.to(self._device)
        self._model, self._X = model, X
        self._fixed = {k: v.to(self._device) for k, v in previous.items() if not torch.is_floating_point(v)}
        self._previous = {k: previous[k].detach().to(self._device) for k in floating}
        self._deltas = {
            k: torch.stack([u[k].detach().to(self._device) for u in updates]) - self._previous[k] for k in floating
        }
        self._public: torch.Tensor | None = None
        if public:
            if absent != "share":
                raise ScoringInputError(f"public steps need absent='share', got absent={absent!r}")
            validate_updates(public, previous)
            share = self._merge.steps(np.ones((1, self.n), dtype=bool)).coefficients
            if share is None:
                raise ScoringInputError(f"public steps need a rule whose step combines the updates, not {rule!r}")
            self._share = share[0]
            self._public = public_parts(previous, updates, public)
            for k in floating:
                self._deltas[k] = torch.cat([self._deltas[k], torch.stack(
                    [u[k].detach().to(self._device) for u in public]) - self._previous[k]])
        self._body, self._inputs, self._input_deltas = model, X, None
        head = _leading_linear(model)
        if head is not None:
            # A leading Linear layer is affine in its parameters, so its output for theta(S)
            # is the same combination of per-update outputs: z(S) = z_prev + sum_i c_i dz_i.
            weight, bias = (self._previous.pop(f"{head}.{p}", None) for p in ("weight", "bias"))
            d_weight, d_bias = (self._deltas.pop(f"{head}.{p}", None) for p in ("weight", "bias"))
            self._inputs = nn.functional.linear(X, weight, bias)
            self._input_deltas = torch.einsum("mi,nhi->nmh", X, d_weight)
            if d_bias is not None:
                self._input_deltas += d_bias[:, None, :]
            self._body = model[1:]

    def _evaluate(self, coalitions: Sequence[frozenset[int]]) -> list[float]:
        """The class-balanced mean of :meth:`row_values` over the validation rows."""
        return (self.row_values(coalitions) @ self._row_weights).tolist()

    @torch.no_grad()
    def row_values(self, coalitions: Sequence[frozenset[int]]) -> torch.Tensor:
        """``(len(coalitions), m)`` float64: the row metric of every validation row under each
        coalition's merged model, in chunks of ``batch_size`` models, one vmapped forward pass
        each. Not cached (:class:`ValidatorUtilities` caches the row means it needs)."""
        values: list[torch.Tensor] = []
        for start in range(0, len(coalitions), self._batch_size):
            chunk = coalitions[start : start + self._batch_size]
            membership = np.zeros((len(chunk), self.n), dtype=bool)
            for row, s in enumerate(chunk):
                membership[row, list(s)] = True
            steps = self._merge.steps(membership)
            if steps.coefficients is None:
                # A step that is no combination of the deltas (median, ...): whole models, whole forward.
                params = {k: v.to(self._device) for k, v in self._merge.parameters(steps.deltas).items()}
                if self._loop:
                    logits = torch.stack([self._forward_full({k: v[b] for k, v in params.items()}, self._X)
                                          for b in range(len(chunk))])
                else:
                    logits = vmap(self._forward_full, in_dims=(0, None))(params, self._X)
            else:
                coefficients = steps.coefficients
                if self._public is not None:
                    # An absent member still moves the model by the public part of its step.
                    absent = torch.from_numpy(~membership).to(torch.float64) * self._share
                    coefficients = torch.cat([coefficients, absent @ self._public], dim=1)
                logits = self._mixed_logits(coefficients.to(self._dtype).to(self._device))
            rows = self._row_metric(logits.flatten(0, 1), self._y.repeat(len(chunk)))
            values.append(rows.double().view(len(chunk), -1).cpu())
        return torch.cat(values) if values else torch.zeros((0, len(self._y)), dtype=torch.float64)

    def _mixed_logits(self, coef: torch.Tensor) -> torch.Tensor:
        """Logits of the B models ``theta_prev + sum_i coef[b, i] d_i``, mixing the precomputed
        per-update deltas (and leading-Linear outputs) with the ``(B, n)`` coefficients."""
        if self._loop and self._input_deltas is None:
            # Large model: the chunk's B models mixed in one (B, n) @ (n, P) product per tensor
            # (the deltas are read once per chunk), then one plain forward pass per model.
            params = {k: torch.addmm(self._previous[k].reshape(1, -1), coef, d.reshape(len(d), -1))
                      .view(len(coef), *d.shape[1:]) for k, d in self._deltas.items()}
            return torch.stack([self._forward({k: v[b] for k, v in params.items()}, self._inputs)
                                for b in range(len(coef))])
        params = {k: self._previous[k] + torch.tensordot(coef, d, dims=1) for k, d in self._deltas.items()}
        if self._input_deltas is None:
            inputs, in_dims = self._inputs, (0, None)
        else:
            inputs, in_dims = self._inputs + torch.tensordot(coef, self._input_deltas, dims=1), (0, 0)
        return vmap(self._forward, in_dims=in_dims)(params, inputs)

    def _forward(self, params: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """Logits of the model body with ``params`` (one coalition inside ``vmap``)."""
        return functional_call(self._body, {**params, **self._fixed}, (inputs,))

    def _forward_full(self, params: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """Logits of the whole model with every floating parameter in ``params``."""
        return functional_call(self._model, {**params, **self._fixed}, (inputs,))


class ValidatorUtilities:
    """Every validator's own utility ``u_v(S)`` (the balanced mean over *its* rows) for one epoch, at
    the cost of one: each coalition's merged model runs once on all validators' rows, and
    the row metrics are averaged per validator. ``games[v]`` is validator ``v``'s game, to
    hand to a scorer; a coalition any of them asks for is evaluated for all of them."""

    def __init__(self, model: nn.Module, previous: StateDict, updates: Sequence[StateDict],
                 weights: Sequence[float] | None, validators: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 metric: str = DEFAULT_METRIC, *, rule: str = DEFAULT_MERGE, anchor: int | None = None,
                 options: Mapping[str, object] | None = None, absent: str = "previous",
                 device: str | torch.device | None = None, public: Sequence[StateDict] | None = None) -> None:
        """Check each validator's rows and build the pooled :class:`Utility` over them
        (``device`` and ``public`` as for :class:`Utility`)."""
        if len(validators) == 0:
            raise ScoringInputError("validators is empty: at least one validator's rows are needed")
        checked = [_check_validation(X, y) for X, y in validators]
        self._pooled = Utility(model, previous, updates, weights, torch.cat([X for X, _ in checked]),
                               torch.cat([y for _, y in checked]), metric, rule=rule, anchor=anchor,
                               options=options, absent=absent, device=device, public=public)
        self._sizes = [len(y) for _, y in checked]
        self._row_weights = [class_balanced(y) for _, y in checked]
        self._cache: dict[frozenset[int], np.ndarray] = {}
        self.games = [_ValidatorGame(self, v) for v in range(len(checked))]

    @property
    def evaluations(self) -> int:
        """Distinct coalitions evaluated (each once for every validator)."""
        return len(self._cache)

    def values(self, coalitions: Sequence[frozenset[int]]) -> np.ndarray:
        """``(len(coalitions), validators)``: each validator's utility of each coalition."""
        missing = list(dict.fromkeys(s for s in coalitions if s not in self._cache))
        if missing:
            rows = self._pooled.row_values(missing)
            means = torch.stack([chunk @ weights for chunk, weights in
                                 zip(torch.split(rows, self._sizes, dim=1), self._row_weights, strict=True)], dim=1)
            self._cache.update(zip(missing, means.numpy(), strict=True))
        return np.array([self._cache[s] for s in coalitions]).reshape(len(coalitions), len(self._sizes))


class _ValidatorGame(CachedGame):
    """Validator ``v``'s game, read from the shared :class:`ValidatorUtilities`."""

    def __init__(self, shared: ValidatorUtilities, v: int) -> None:
        super().__init__(shared._pooled.n, shared._pooled.weights)
        self._shared, self._v = shared, v

    def _evaluate(self, coalitions: Sequence[frozenset[int]]) -> list[float]:
        return self._shared.values(coalitions)[:, self._v].tolist()


@torch.no_grad()
def _check_fit(model: nn.Module, previous: StateDict, X: torch.Tensor, y: torch.Tensor) -> None:
    """``previous`` must be a state of ``model`` (same keys and shapes), the model must take
    the validation rows, and every label must be one of its classes: a mismatch fails here
    with a named cause rather than deep inside a batched forward pass."""
    expected = model.state_dict()
    if set(expected) != set(previous):
        diff = sorted(set(expected) ^ set(previous))
        raise ScoringInputError(f"previous does not fit the model: keys {diff} are in one but not the other")
    for key in sorted(expected):
        if expected[key].shape != previous[key].shape:
            raise ScoringInputError(f"previous does not fit the model: key {key!r} has shape "
                                    f"{tuple(previous[key].shape)}, the model {tuple(expected[key].shape)}")
    try:
        n_classes = functional_call(model, previous, (X[:1],)).shape[-1]
    except RuntimeError as error:
        raise ScoringInputError(
            f"X_val rows of shape {tuple(X.shape[1:])} do not fit the model: {error}"
        ) from error
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ScoringInputError(f"y_val labels span {int(y.min())}..{int(y.max())} but the model "
                                f"has {n_classes} classes")


def _leading_linear(model: nn.Module) -> str | None:
    """Name of the first layer when ``model`` is a ``Sequential`` starting with ``nn.Linear``."""
    if isinstance(model, nn.Sequential) and len(model) > 0 and isinstance(model[0], nn.Linear):
        return next(iter(model._modules))
    return None


def class_balanced(y: torch.Tensor) -> torch.Tensor:
    """Row weights (float64, summing to 1) that give every class present in ``y`` the same
    total weight. Why: on non-IID data a validator whose rows are mostly one class would
    otherwise value any update that merely raises that class's logit (a label flipper whose
    flipped labels land on it) as a real improvement; balanced, that bias costs as much on
    the validator's other classes as it gains, while a real improvement of one class still
    counts in full for that class."""
    counts = torch.bincount(y).double()
    return 1.0 / (int((counts > 0).sum()) * counts[y])


def _check_validation(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validation rows as a feature batch and int64 labels of matching length."""
    if X.ndim < 2 or X.shape[0] == 0:
        raise ScoringInputError(
            f"X_val must be a non-empty batch of rows, got shape {tuple(X.shape)}"
        )
    if y.shape != (X.shape[0],):
        raise ScoringInputError(
            f"y_val has shape {tuple(y.shape)} but X_val has {X.shape[0]} rows"
        )
    return X.detach(), y.detach().to(torch.int64)


def make_utility(
    model: nn.Module,
    previous: StateDict,
    updates: Sequence[StateDict],
    weights: Sequence[float] | None,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    metric: str = DEFAULT_METRIC,
    *,
    rule: str = DEFAULT_MERGE,
    anchor: int | None = None,
    options: Mapping[str, object] | None = None,
    absent: str = "previous",
    device: str | torch.device | None = None,
    public: Sequence[StateDict] | None = None,
) -> Utility:
    """Build the cached utility ``u(S)`` of the module docstring.

    ``model`` only provides the architecture (its own parameters are ignored; it
    is put in eval mode); ``weights`` are sample counts (``None``: equal);
    ``metric`` is a key of :data:`METRICS` ("gce", the default; "loss", minus the
    cross-entropy; "accuracy"). ``rule``,
    ``anchor`` (the leader's index in ``updates``, ``None`` for none) and
    ``options`` are the swarm's merge, exactly as passed to
    ``trainer.merges.merge``; ``absent`` ("previous" or "dropped") is what a node
    outside a coalition is in that coalition's merge (see
    :mod:`trainer.scoring.coalition_merge`). The default rule is the swarm's,
    ``fltrust_median``; pass the swarm's own rule when it uses another.

    Raises ``ScoringInputError`` on an empty update list, bad weights or validation
    rows, a ``previous`` that does not fit ``model``, an unknown rule, an anchor
    outside ``0 .. n-1``, or a merge the rule refuses (an unknown or out-of-range
    option, a missing anchor, too few updates for Krum), and the typed errors of
    ``trainer.params.validate_updates`` (naming the update index) on malformed
    updates. With ``absent="dropped"``, evaluating a coalition the rule cannot
    merge (Krum on fewer than 2f + 3 members) raises ``ScoringInputError`` too.

    ``device`` ("cpu", "cuda", "auto" or a ``torch.device``; ``None``: where ``model``'s
    parameters are) is where the coalitions' models run (a node passes its ``[train]
    device``); the merge coefficients stay on the CPU and the values come back to it.
    ``public`` are the public steps of :class:`Utility` (``absent="share"`` only).
    """
    return Utility(model, previous, updates, weights, X_val, y_val, metric,
                   rule=rule, anchor=anchor, options=options, absent=absent, device=device, public=public)


def public_parts(previous: StateDict, updates: Sequence[StateDict], public: Sequence[StateDict]) -> torch.Tensor:
    """``(n, k)``: the coordinates of each update's step in the span of the ``k`` public steps
    (least squares, so the public part ``sum_j a_ij p_j`` is the step's projection on that
    span; linearly dependent public steps are fine).

    Why: a step everyone could have committed without data (the previous merged step, a
    peer's previous update, any mix of them) is no contribution, however it is disguised.
    Noise added to lower its cosine with what it copies lies almost wholly outside the
    span, so it is all that such a forgery is valued for, and noise is worth nothing. An
    honest step is valued for what it adds to what was known. Dot products are taken per
    tensor in float64, so no flattened copy of the models is made.
    """
    keys = [k for k in sorted(previous) if torch.is_floating_point(previous[k])]
    k = len(public)
    gram = torch.zeros((k, k), dtype=torch.float64)
    cross = torch.zeros((k, len(updates)), dtype=torch.float64)
    for key in keys:
        base = previous[key].detach().double().reshape(-1)
        p = torch.stack([u[key].detach().double().reshape(-1) for u in public]) - base
        x = torch.stack([u[key].detach().double().reshape(-1) for u in updates]) - base
        gram += p @ p.T
        cross += p @ x.T
    return torch.linalg.lstsq(gram, cross, driver="gelsd").solution.T


def _device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters are (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _resolve(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``; "cuda" where CUDA is unavailable is a one-line
    :class:`ScoringInputError`."""
    from trainer.training import TrainConfigError, resolve_device

    try:
        return resolve_device(device)
    except TrainConfigError as error:
        raise ScoringInputError(str(error)) from None
