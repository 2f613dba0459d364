"""The ResNet-18 class model and the synthetic image set it runs on in a swarm
(``benchmarks/large_model.py`` measures the swarm; here: size, a training step, scoring 4
updates, and that the large-model scoring paths value what the small-model paths value)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainer.data import load_dataset, split_swarm
from trainer.models import ModelConfigError, build_model
from trainer.scoring import coalition_merge, make_utility, score, swarm_absent, utility
from trainer.training import TrainConfig, train_local


@pytest.fixture(scope="module")
def images():
    return load_dataset("synthetic_images")


def test_synthetic_images_are_cifar_shaped_balanced_and_seeded(images):
    assert images.X.shape == (640, 3 * 32 * 32) and images.X.dtype == torch.float32
    assert images.n_classes == 10 and torch.bincount(images.y).tolist() == [64] * 10
    assert torch.equal(load_dataset("synthetic_images").X, images.X)
    assert not torch.equal(load_dataset("synthetic_images", seed=1).X, images.X)


def test_resnet18_has_about_11m_parameters_and_no_buffers(images):
    model = build_model("resnet18", images.n_features, images.n_classes, seed=0)
    count = sum(p.numel() for p in model.parameters())
    assert 11_000_000 < count < 11_500_000
    assert len(list(model.buffers())) == 0
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert set(model.state_dict()) == {name for name, _ in model.named_parameters()}
    again = build_model("resnet18", images.n_features, images.n_classes, seed=0).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in model.state_dict().items())
    assert model(images.X[:2]).shape == (2, 10)
    small = build_model("resnet18", 3 * 16 * 16, 10, seed=0)
    assert sum(p.numel() for p in small.parameters()) == count  # the size does not depend on the side


@pytest.mark.parametrize("features", [3 * 30 * 31, 100, 3 * 2 * 2])
def test_resnet18_refuses_what_is_no_square_colour_image(features):
    with pytest.raises(ModelConfigError, match="resnet18"):
        build_model("resnet18", features, 10, seed=0)


def test_resnet18_trains_a_step_and_scores_four_updates(images):
    split = split_swarm(images, 4, partition="iid", seed=0)
    model = build_model("resnet18", images.n_features, images.n_classes, seed=0)
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(steps=1, batch_size=8)
    updates = []
    for i, node in enumerate(split.nodes):
        model.load_state_dict(previous)
        train_local(model, node.X_train, node.y_train, config, seed=i)
        updates.append({k: v.clone() for k, v in model.state_dict().items()})
    assert all(not torch.equal(u["head.weight"], previous["head.weight"]) for u in updates)
    node = split.nodes[0]
    X_val, y_val = node.X_val[:8], node.y_val[:8]
    game = make_utility(model, previous, updates, [n.n_train for n in split.nodes], X_val, y_val,
                        anchor=0, absent=swarm_absent("fltrust_median"))
    values = score("auto", game, 4, seed=0)
    assert values.shape == (4,) and np.isfinite(values).all()
    assert game.evaluations == 16  # exact Shapley at n = 4
    full, empty = game(frozenset(range(4))), game(frozenset())
    assert values.sum() == pytest.approx(full - empty, abs=1e-9)  # efficiency


def test_the_large_model_paths_value_what_the_small_model_paths_value(wine_split, tiny_config, monkeypatch):
    """Looped forward passes, memory-bounded chunks and the streamed fltrust_median share
    (used from 1 M parameters) against the vmapped, batched paths, on a small model."""
    previous = build_model("mlp", wine_split.n_features, wine_split.n_classes, seed=0).state_dict()
    updates = []
    for i, node in enumerate(wine_split.nodes):
        model = build_model("mlp", wine_split.n_features, wine_split.n_classes, seed=0)
        train_local(model, node.X_train, node.y_train, tiny_config, seed=i)
        updates.append(model.state_dict())
    model = build_model("mlp", wine_split.n_features, wine_split.n_classes, seed=0)
    node = wine_split.nodes[0]
    weights = [n.n_train for n in wine_split.nodes]

    def values(rule, absent):
        game = make_utility(model, previous, updates, weights, node.X_val, node.y_val, rule=rule, anchor=0,
                            absent=absent)
        return score("exact_shapley", game, len(updates), seed=0)

    cases = [("fltrust_median", "share"), ("fltrust_median", "previous"), ("median", "previous"),
             ("weighted_mean", "share")]
    small = {case: values(*case) for case in cases}
    monkeypatch.setattr(utility, "LOOP_PARAMETERS", 1)
    monkeypatch.setattr(utility, "CHUNK_BYTES", 1)  # one coalition per chunk
    monkeypatch.setattr(coalition_merge, "STREAM_PARAMETERS", 1)
    for case in cases:
        np.testing.assert_allclose(values(*case), small[case], rtol=1e-5, atol=1e-7)
