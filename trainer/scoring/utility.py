"""The coalition utility that every contribution scorer values.

For an epoch with previous global parameters ``theta_prev``, committed updates
``theta_1 .. theta_n`` with sample counts ``w_1 .. w_n`` and a validator's
validation rows ``(x_r, y_r), r = 1 .. m``:

    d_i        = theta_i - theta_prev                      (delta of update i)
    theta(S)   = theta_prev + sum_{i in S} w_i d_i / sum_{j in N} w_j
    theta({})  = theta_prev
    u(S)       = (1/m) sum_r g(f(x_r; theta(S)), y_r)

with ``g = -cross_entropy`` (metric "loss", the default: smooth, so rankings
are stable) or ``g = 1[argmax = y]`` (metric "accuracy"). ``theta(N)`` is the
sample-weighted mean merge; ``theta(S)`` takes only the members' share of that step
(reconstructed without retraining), so an update that moves nothing adds nothing: a
free rider's Shapley value is exactly 0.

Speed: ``theta(S)`` is linear in the coefficient vector ``c(S)`` with
``c_i(S) = w_i 1[i in S] / sum_{j in N} w_j``, so a batch of B coalitions is one
``(B, n) @ (n, P)`` product per parameter tensor, and the B models run in one
``torch.func.vmap`` over ``functional_call``. When the model is a ``Sequential``
starting with ``nn.Linear`` (the MLP), that layer's output is affine in its own
parameters, so it is precomputed once per update and mixed with the same
coefficients: the widest matrix product then costs ``n`` instead of the input
width per row.

Linearity (what the swarm relies on): ``u`` is a mean over validation rows, so
for validators v with ``m_v`` rows and the union of their sets (M rows),

    u_union(S) = sum_v (m_v / M) u_v(S)           for every coalition S.

Every scorer here is a linear map of the vector of utilities it reads
(Shapley, leave-one-out, and the sampled estimators for a fixed seed), hence

    phi_union = sum_v (m_v / M) phi_v,

i.e. each validator scores on its own private rows, and the sample-weighted
mean of those scores *is* the score on the pooled rows, which nobody holds.
(A median across validators trades this exactness for robustness to a lying
validator.) Accuracy is a row mean too, so the property holds for both metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from trainer.params import StateDict, validate_updates
from trainer.scoring.errors import ScoringInputError
from trainer.scoring.game import CachedGame, merge_coefficients

#: Per-row performance ``g(logits, y)``; higher is better.
RowMetric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _neg_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Minus the per-row cross-entropy: smooth, so small updates move it."""
    return -nn.functional.cross_entropy(logits, y, reduction="none")


def _correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 for a correct arg-max prediction, 0 otherwise (metric "accuracy")."""
    return (logits.argmax(dim=-1) == y).to(logits.dtype)


METRICS: dict[str, RowMetric] = {
    "loss": _neg_cross_entropy,
    "accuracy": _correct,
}


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
        metric: str = "loss",
        batch_size: int = 64,
    ) -> None:
        """Validate the inputs and precompute the per-tensor delta stacks."""
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
        X = X.to(self._dtype)
        _check_fit(model.eval(), previous, X, self._y)
        self._row_metric = METRICS[metric]
        self._batch_size = batch_size
        self._fixed = {k: v for k, v in previous.items() if not torch.is_floating_point(v)}
        self._previous = {k: previous[k].detach() for k in floating}
        self._deltas = {
            k: torch.stack([u[k].detach() for u in updates]) - self._previous[k] for k in floating
        }
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

    @torch.no_grad()
    def _evaluate(self, coalitions: Sequence[frozenset[int]]) -> list[float]:
        """Evaluate in chunks of ``batch_size`` merged models, one vmapped forward pass each."""
        values: list[float] = []
        for start in range(0, len(coalitions), self._batch_size):
            chunk = coalitions[start : start + self._batch_size]
            membership = np.zeros((len(chunk), self.n), dtype=bool)
            for row, s in enumerate(chunk):
                membership[row, list(s)] = True
            coef = torch.from_numpy(merge_coefficients(membership, self.weights)).to(self._dtype)
            params = {
                k: self._previous[k] + torch.tensordot(coef, d, dims=1) for k, d in self._deltas.items()
            }
            if self._input_deltas is None:
                inputs, in_dims = self._inputs, (0, None)
            else:
                inputs, in_dims = self._inputs + torch.tensordot(coef, self._input_deltas, dims=1), (0, 0)
            logits = vmap(self._forward, in_dims=in_dims)(params, inputs)
            rows = self._row_metric(logits.flatten(0, 1), self._y.repeat(len(chunk)))
            values += rows.double().view(len(chunk), -1).mean(dim=1).tolist()
        return values

    def _forward(self, params: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """Logits of the model body with ``params`` (one coalition inside ``vmap``)."""
        return functional_call(self._body, {**params, **self._fixed}, (inputs,))


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
    metric: str = "loss",
) -> Utility:
    """Build the cached utility ``u(S)`` of the module docstring.

    ``model`` only provides the architecture (its own parameters are ignored; it
    is put in eval mode); ``weights`` are sample counts (``None``: equal);
    ``metric`` is "loss" (minus mean cross-entropy) or "accuracy". Raises
    ``ScoringInputError`` on an empty update list, bad weights or validation
    rows, or a ``previous`` that does not fit ``model``, and the typed errors of
    ``trainer.params.validate_updates`` (naming the update index) on malformed
    updates.
    """
    return Utility(model, previous, updates, weights, X_val, y_val, metric)
