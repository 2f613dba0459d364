"""Model registry and seeded construction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.models import MODELS, ModelConfigError, UnknownModelError, build_model, register_model


@pytest.mark.parametrize("name, n_features", [("mlp", 13), ("cnn", 64)])
def test_models_map_flat_features_to_logits(name, n_features):
    model = build_model(name, n_features, 5, seed=0)
    assert model(torch.zeros(7, n_features)).shape == (7, 5)


@pytest.mark.parametrize("name, n_features", [("mlp", 13), ("cnn", 64)])
def test_same_seed_same_weights_other_seed_other_weights(name, n_features):
    one, two = build_model(name, n_features, 3, seed=1), build_model(name, n_features, 3, seed=1)
    other = build_model(name, n_features, 3, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), other.state_dict().values()))


def test_building_does_not_disturb_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model("mlp", 4, 2, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_mlp_hidden_widths_are_configurable():
    model = build_model("mlp", 4, 2, seed=0, hidden=(6, 5))
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(6, 4), (6,), (5, 6), (5,), (2, 5), (2,)]


def test_users_register_their_own_factory():
    @register_model("logreg-test")
    def logreg(n_features: int, n_classes: int) -> nn.Module:
        return nn.Linear(n_features, n_classes)

    try:
        model = build_model("logreg-test", 4, 3, seed=0)
        assert isinstance(model, nn.Linear) and model.weight.shape == (3, 4)
    finally:
        del MODELS["logreg-test"]


def test_bad_model_requests_get_precise_errors():
    with pytest.raises(UnknownModelError, match="unknown model 'resnet'; known models: cnn, mlp"):
        build_model("resnet", 4, 2, seed=0)
    with pytest.raises(ModelConfigError, match="cnn: needs a square image"):
        build_model("cnn", 13, 3, seed=0)
    with pytest.raises(ModelConfigError, match="n_classes >= 2"):
        build_model("mlp", 4, 1, seed=0)
    with pytest.raises(ModelConfigError, match="hidden widths"):
        build_model("mlp", 4, 2, seed=0, hidden=())
