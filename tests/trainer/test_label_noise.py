"""A validator whose own labels are noisy still credits the update trained on clean labels.

Digits: a model warmed up on 100 rows, then two updates from it, one trained on 300 clean
rows and one on 300 rows with half the labels moved to another class. A validator values
both on 300 rows of its own, half of whose labels are wrong too (its rows are as noisy as
its training rows would be)."""

import pytest
import torch

from trainer.data import load_dataset, with_label_noise
from trainer.models import build_model
from trainer.scoring import DEFAULT_METRIC, make_utility, score
from trainer.training import TrainConfig, train_local


@pytest.fixture(scope="module")
def noisy_epoch():
    data = load_dataset("digits")
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(0))
    X, y = data.X[order], data.y[order]
    model = build_model("mlp", data.n_features, data.n_classes, seed=0)
    train_local(model, X[:100], y[:100], TrainConfig(), seed=0)
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    updates = []
    for rows, noise in ((slice(100, 400), 0.0), (slice(400, 700), 0.5)):
        model.load_state_dict(previous)
        train_local(model, X[rows], with_label_noise(y[rows], noise, data.n_classes, seed=1), TrainConfig(), seed=2)
        updates.append({k: v.clone() for k, v in model.state_dict().items()})
    validation = X[700:1000], y[700:1000]
    return model, previous, updates, validation, data.n_classes


def shapley(epoch, metric: str, noise: float):
    model, previous, updates, (X, y), n_classes = epoch
    u = make_utility(model, previous, updates, [300, 300], X, with_label_noise(y, noise, n_classes, seed=3), metric)
    return score("exact_shapley", u, len(updates), seed=0)


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_clean_training_earns_most_of_the_validators_positive_score(noisy_epoch, noise):
    clean, noisy = shapley(noisy_epoch, DEFAULT_METRIC, noise)
    assert clean > 0
    assert max(noisy, 0.0) < 0.25 * clean


def test_with_the_cross_entropy_a_noisy_validator_credits_the_noisy_update(noisy_epoch):
    """The control: on noisy rows, minus the cross-entropy rewards the model that spreads its
    probability over wrong classes, as training on noisy labels does."""
    clean, noisy = shapley(noisy_epoch, "loss", 0.5)
    assert noisy > 0 > clean
    clean_rows = shapley(noisy_epoch, "loss", 0.0)
    assert clean_rows[0] > clean_rows[1]
