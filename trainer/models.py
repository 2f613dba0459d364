"""The model registry: every node of a swarm builds the same architecture from a name.

A factory ``factory(n_features, n_classes, **options) -> nn.Module`` registered with
:func:`register_model` is all a user needs to bring an own model.  :func:`build_model`
draws the initial weights from a private generator seeded with ``seed``, so every node
that builds ``(name, n_features, n_classes, seed)`` holds bit-identical initial
parameters without touching the process-wide torch RNG.

Models take flat ``(batch, n_features)`` float32 input (image models reshape it to
``(batch, channels, side, side)`` themselves: ``cnn``, ``resnet18``) and return logits
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


class _BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with group norm and an identity (or 1x1) shortcut."""

    def __init__(self, inputs: int, outputs: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(groups, outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups, outputs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False),
                                          nn.GroupNorm(groups, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016: 4 stages of 2 basic blocks, 64-128-256-512 channels) for
    small colour images given as flat pixels, with two changes for a swarm:

    - group norm (``groups`` groups per layer) instead of batch norm: no running statistics,
      every entry of the state dict is a parameter that merges like the others (see the
      module doc); group norm is the usual batch-norm replacement in federated learning;
    - the CIFAR stem (one 3x3 convolution, stride 1, no max-pool), as for 32x32 images.

    Input ``(batch, channels * side * side)`` is reshaped to ``(batch, channels, side, side)``
    (channel-major, as ``torch.Tensor.flatten`` of an NCHW image gives). 11.17 M parameters
    for 10 classes, whatever the image side.
    """

    def __init__(self, channels: int, side: int, n_classes: int, width: int = 64, groups: int = 8) -> None:
        super().__init__()
        self.channels, self.side = channels, side
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, bias=False),
                                  nn.GroupNorm(groups, width), nn.ReLU())
        stages: list[nn.Module] = []
        inputs = width
        for stage, outputs in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if stage == 0 else 2
            stages += [_BasicBlock(inputs, outputs, stride, groups), _BasicBlock(outputs, outputs, 1, groups)]
            inputs = outputs
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(inputs, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape flat pixels to ``(batch, channels, side, side)`` and return class logits."""
        out = self.stages(self.stem(x.reshape(-1, self.channels, self.side, self.side)))
        return self.head(out.mean(dim=(2, 3)))


@register_model("resnet18")
def resnet18(n_features: int, n_classes: int, channels: int = 3, width: int = 64, groups: int = 8) -> nn.Module:
    """ResNet-18 class model (11.2 M parameters at ``width = 64``) for square ``channels``-channel
    images given as flat pixels: ``n_features = channels * side * side`` (3x16x16: 768, 3x32x32:
    3072; the ``synthetic_images`` dataset gives 3x32x32). See :class:`ResNet18`."""
    side = math.isqrt(n_features // channels) if n_features % channels == 0 else 0
    if side * side * channels != n_features or side < 4:
        raise ModelConfigError(f"resnet18: needs a square {channels}-channel image of at least 4x4 pixels "
                               f"(n_features = {channels} * side * side), got {n_features} features")
    if width % groups or width < groups:
        raise ModelConfigError(f"resnet18: width {width} must be a positive multiple of groups {groups}")
    return ResNet18(channels, side, n_classes, width, groups)
