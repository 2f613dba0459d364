"""Local training and evaluation: what every node runs on its private data each epoch.

Training minimises the mean cross-entropy ``L(w) = -1/|B| sum_{(x, y) in B} log softmax(f_w(x))_y``
over shuffled minibatches ``B``.  The shuffle order comes from a ``torch.Generator``
seeded with ``seed`` and any randomness inside the model from a forked, seeded global RNG,
so ``train_local`` on the same model, data, config and seed gives bit-identical weights.
A fresh optimiser is created per call: optimiser state (momentum, Adam moments) is not
part of the committed parameters, so it must not leak across merges.

Evaluation reports accuracy, mean cross-entropy, macro-F1 (mean of per-class F1 over the
classes present in ``y`` or in the predictions) and, for binary tasks, ROC-AUC of the
positive-class probability (``None`` when ``y`` holds a single class, where it is undefined).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DEVICES", "OPTIMIZERS", "Metrics", "TrainConfig", "TrainConfigError", "evaluate", "resolve_device",
           "train_local"]

OptimizerFactory = Callable[[Iterable[nn.Parameter], "TrainConfig"], torch.optim.Optimizer]
OPTIMIZERS: dict[str, OptimizerFactory] = {
    "sgd": lambda params, cfg: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                               weight_decay=cfg.weight_decay),
    "adam": lambda params, cfg: torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
}


class TrainConfigError(ValueError):
    """A :class:`TrainConfig` field is out of range; the message names the field."""


#: What ``[train] device`` accepts: "cpu", "cuda" (refused where CUDA is unavailable) or
#: "auto" (CUDA when available, else the CPU).
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The ``torch.device`` that ``device`` names: ``None`` and "cpu" give the CPU, "auto" CUDA
    when ``torch.cuda.is_available()`` and else the CPU, "cuda" (or "cuda:N") CUDA. Raises
    :class:`TrainConfigError` (one line) for an unknown name or for CUDA on a machine without it."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise TrainConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:") and name[5:].isdigit():
        if not torch.cuda.is_available():
            raise TrainConfigError(f'device "{name}" is not available: this machine has no usable CUDA '
                                   f'(torch.cuda.is_available() is False); use device = "cpu" or "auto"')
        return torch.device(name)
    raise TrainConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")


@dataclass(frozen=True)
class TrainConfig:
    """How a node trains locally in one swarm epoch.

    ``steps`` (minibatch updates), when set, overrides ``local_epochs`` (passes over the
    node's data): fixed steps give every node the same compute whatever its data volume,
    epochs give big nodes more updates.  The defaults are tuned on digits (8 nodes,
    Dirichlet 0.5, see ``benchmarks/accuracy.py``).

    ``device`` ("cpu", "cuda" or "auto", see :func:`resolve_device`) is where the local
    training (and a node's scoring) runs; the trained parameters come back to the device the
    model was on (the CPU for a node), so what is hashed, committed and merged is computed
    on the CPU whatever the training device. "cuda" on a machine without CUDA is refused
    here, in one line.
    """

    lr: float = 0.05
    batch_size: int = 32
    local_epochs: int = 2
    steps: int | None = None
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise TrainConfigError(f"lr must be a positive finite number, got {self.lr}")
        if self.batch_size < 1:
            raise TrainConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.local_epochs < 1:
            raise TrainConfigError(f"local_epochs must be >= 1, got {self.local_epochs}")
        if self.steps is not None and self.steps < 1:
            raise TrainConfigError(f"steps must be >= 1 or None, got {self.steps}")
        if self.optimizer not in OPTIMIZERS:
            raise TrainConfigError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0 <= self.momentum < 1:
            raise TrainConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise TrainConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not isinstance(self.device, str) or self.device not in DEVICES:
            raise TrainConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        resolve_device(self.device)

    @property
    def torch_device(self) -> torch.device:
        """The ``torch.device`` training runs on (``device`` resolved, "auto" decided)."""
        return resolve_device(self.device)

    def steps_for(self, n_samples: int) -> int:
        """Minibatch updates one local round makes on ``n_samples`` samples."""
        if self.steps is not None:
            return self.steps
        return self.local_epochs * math.ceil(n_samples / self.batch_size)


@dataclass(frozen=True)
class Metrics:
    """Evaluation of a model on a labelled set; ``roc_auc`` is ``None`` unless binary with both classes."""

    accuracy: float
    loss: float
    macro_f1: float
    roc_auc: float | None

    def as_dict(self) -> dict[str, float | None]:
        """Plain dict for JSON reports."""
        return asdict(self)


def train_local(model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                seed: int) -> nn.Module:
    """Train ``model`` in place on ``(X, y)`` for one local round and return it.

    Runs ``config.steps_for(len(X))`` minibatch steps; each pass over the data uses a new
    seeded permutation.  The steps run on ``config.device``: the model moves there for the
    round and back to the device it was on afterwards (on the CPU nothing moves, so the
    result is bit-identical to a config without a device).  Raises :class:`ValueError` if
    ``X`` and ``y`` disagree in length or are empty.
    """
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"train_local needs matching non-empty X and y, got {len(X)} and {len(y)} rows")
    device = config.torch_device
    home = next((p.device for p in model.parameters()), device)
    model.to(device)
    shuffle = torch.Generator().manual_seed(seed)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), config)
    model.train()
    X, y = X.to(device), y.to(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        order, position = torch.randperm(len(X), generator=shuffle), 0
        for _ in range(config.steps_for(len(X))):
            if position >= len(X):
                order, position = torch.randperm(len(X), generator=shuffle), 0
            batch = order[position:position + config.batch_size]
            position += config.batch_size
            optimizer.zero_grad()
            batch = batch.to(device)
            F.cross_entropy(model(X[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    model.to(home)
    return model


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor,
             device: str | torch.device | None = None) -> Metrics:
    """Accuracy, mean cross-entropy, macro-F1 and (binary) ROC-AUC of ``model`` on ``(X, y)``.

    ``device`` (a :data:`DEVICES` name or a ``torch.device``; ``None``: where the model is)
    runs the forward pass there; the model is moved back afterwards."""
    from sklearn.metrics import f1_score, roc_auc_score

    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"evaluate needs matching non-empty X and y, got {len(X)} and {len(y)} rows")
    model.eval()
    if device is not None:
        target = resolve_device(device)
        home = next((p.device for p in model.parameters()), target)
        if target != home:
            try:
                return evaluate(model.to(target), X.to(target), y.to(target))
            finally:
                model.to(home)
    y = y.cpu()
    logits = model(X).cpu()
    predictions = logits.argmax(dim=1)
    roc_auc = None
    if logits.shape[1] == 2 and len(torch.unique(y)) == 2:
        roc_auc = float(roc_auc_score(y.numpy(), torch.softmax(logits, dim=1)[:, 1].numpy()))
    return Metrics(accuracy=float((predictions == y).double().mean()),
                   loss=float(F.cross_entropy(logits, y)),
                   macro_f1=float(f1_score(y.numpy(), predictions.numpy(), average="macro", zero_division=0)),
                   roc_auc=roc_auc)
