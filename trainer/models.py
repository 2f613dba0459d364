"""The model registry: every node of a swarm builds the same architecture from a name.

A factory ``factory(n_features, n_classes, **options) -> nn.Module`` registered with
:func:`register_model` is all a user needs to bring an own model.  :func:`build_model`
draws the initial weights from a private generator seeded with ``seed``, so every node
that builds ``(name, n_features, n_classes, seed)`` holds bit-identical initial
parameters without touching the process-wide torch RNG.

Models take flat ``(batch, n_features)`` float32 input and return logits
``(batch, n_classes)``.  None of them has batch-norm: its running statistics would be
integer/float buffers averaged across nodes with different label mixes, a known source of
drift on non-IID data.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["MODELS", "ModelConfigError", "UnknownModelError", "build_model", "register_model"]

ModelFactory = Callable[..., nn.Module]
MODELS: dict[str, ModelFactory] = {}


class UnknownModelError(ValueError):
    """Raised for a model name that is not in :data:`MODELS`; lists the known names."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")


class ModelConfigError(ValueError):
    """A model cannot be built for the requested input/output shape or options."""


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register ``factory(n_features, n_classes, **options) -> nn.Module`` under ``name``."""

    def decorate(factory: ModelFactory) -> ModelFactory:
        MODELS[name] = factory
        return factory

    return decorate


def build_model(name: str, n_features: int, n_classes: int, seed: int, **options: object) -> nn.Module:
    """Build model ``name`` with initial weights that depend only on the arguments.

    ``options`` go to the factory (e.g. ``hidden=(128,)`` for ``mlp``).  Raises
    :class:`UnknownModelError` for an unregistered name and :class:`ModelConfigError` for
    shapes the architecture cannot take.
    """
    if name not in MODELS:
        raise UnknownModelError(name)
    if n_features < 1 or n_classes < 2:
        raise ModelConfigError(f"{name}: need n_features >= 1 and n_classes >= 2, "
                               f"got {n_features} and {n_classes}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](n_features, n_classes, **options)


@register_model("mlp")
def mlp(n_features: int, n_classes: int, hidden: tuple[int, ...] = (128,)) -> nn.Module:
    """Fully connected ReLU network ``n_features -> hidden... -> n_classes`` for tabular data."""
    if not hidden or min(hidden) < 1:
        raise ModelConfigError(f"mlp: hidden widths must be a non-empty tuple of positive ints, got {hidden}")
    layers: list[nn.Module] = []
    width = n_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Two 3x3 convolutions, one 2x2 max-pool and a linear head, for square grey images."""

    def __init__(self, side: int, n_classes: int, channels: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        self.side = side
        self.features = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels[0], channels[1], 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(channels[1] * (side // 2) ** 2, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape flat pixels to ``(batch, 1, side, side)`` and return class logits."""
        out = self.features(x.reshape(-1, 1, self.side, self.side))
        return self.head(out.flatten(1))


@register_model("cnn")
def cnn(n_features: int, n_classes: int, channels: tuple[int, int] = (16, 32)) -> nn.Module:
    """Small CNN for square images given as flat pixels (8x8 digits: 64 features)."""
    side = math.isqrt(n_features)
    if side * side != n_features or side < 2:
        raise ModelConfigError(f"cnn: needs a square image of at least 2x2 pixels, "
                               f"got {n_features} features")
    return SmallCNN(side, n_classes, channels)
