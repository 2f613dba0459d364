"""Small torch modules and helpers the trainer tests share."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainer.scoring.game import CachedGame


class Wrapped(torch.nn.Module):
    """The same network behind a custom module: code with a shortcut for a ``Sequential``
    that starts with ``nn.Linear`` must take its generic path."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def balanced_weights(y: torch.Tensor) -> torch.Tensor:
    """Class-balanced row weights (float64), written out per class for the tests: each of the
    K classes present in ``y`` gets total weight 1/K, split equally among its rows."""
    classes = torch.unique(y)
    weights = torch.empty(len(y), dtype=torch.float64)
    for c in classes:
        rows = y == c
        weights[rows] = 1.0 / (len(classes) * int(rows.sum()))
    return weights


def balanced_neg_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Minus the class-balanced mean cross-entropy: the utility (metric "loss") of ``logits``."""
    rows = torch.nn.functional.cross_entropy(logits.detach(), y, reduction="none").double()
    return -float(rows @ balanced_weights(y))


def balanced_neg_gce(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Minus the class-balanced mean generalized cross-entropy ``(1 - p_y^(1/2)) / (1/2)``: the
    utility (metric "gce", the default) of ``logits``."""
    label_probability = torch.softmax(logits.detach().double(), dim=-1)[torch.arange(len(y)), y]
    return -float((2 * (1 - label_probability.sqrt())) @ balanced_weights(y))


def balanced_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The mean over the classes present in ``y`` of each class's accuracy (metric "accuracy")."""
    predicted = logits.detach().argmax(dim=-1)
    return float(sum((predicted[y == c] == c).double().mean() for c in torch.unique(y)) / len(torch.unique(y)))


class RowWeightedGame(CachedGame):
    """``u(S) = sum_r lambda_r h_r(S)``: the per-row metrics of a utility over pooled rows
    (``Utility.row_values``), weighted by row weights the test chooses, e.g. the size-weighted
    mix of several validators' class-balanced weights."""

    def __init__(self, pooled, row_weights: torch.Tensor) -> None:
        super().__init__(pooled.n, pooled.weights)
        self._pooled, self._row_weights = pooled, row_weights

    def _evaluate(self, coalitions: Sequence[frozenset[int]]) -> list[float]:
        return (self._pooled.row_values(coalitions) @ self._row_weights).tolist()


def size_weighted_mix(labels: Sequence[torch.Tensor]) -> torch.Tensor:
    """Row weights over the concatenated rows of several validators: validator v's own
    class-balanced weights times ``m_v / M`` (its share of all rows)."""
    total = sum(len(y) for y in labels)
    return torch.cat([len(y) / total * balanced_weights(y) for y in labels])
