"""Shared tiny fixtures for the trainer tests: small enough that the suite stays fast."""

from __future__ import annotations

import pytest
import torch

from trainer.data import Dataset, SwarmSplit, load_dataset, split_swarm
from trainer.models import build_model
from trainer.training import TrainConfig

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def wine() -> Dataset:
    """178 samples, 13 features, 3 classes: the smallest bundled dataset."""
    return load_dataset("wine")


@pytest.fixture(scope="session")
def wine_split(wine: Dataset) -> SwarmSplit:
    """Wine dealt IID to 4 nodes (about 28 train / 7 val samples each)."""
    return split_swarm(wine, 4, partition="iid", seed=0)


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    """One short local round: a few SGD steps."""
    return TrainConfig(lr=0.05, batch_size=16, steps=5)


@pytest.fixture
def tiny_model(wine: Dataset) -> torch.nn.Module:
    """A narrow seeded MLP sized for wine."""
    return build_model("mlp", wine.n_features, wine.n_classes, seed=0, hidden=(8,))


@pytest.fixture
def make_state():
    """Factory: ``make_state(seed)`` gives the state dict of a fresh tiny wine MLP."""

    def make(seed: int = 0) -> dict[str, torch.Tensor]:
        return build_model("mlp", 13, 3, seed=seed, hidden=(8,)).state_dict()

    return make
