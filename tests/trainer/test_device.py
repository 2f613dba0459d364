"""``[train] device``: "cpu" | "cuda" | "auto". Training and scoring run on the device, what
is hashed and merged stays on the CPU; on a machine without CUDA "cuda" is a one-line error.
These tests run on the CPU (CUDA availability is monkeypatched where a test needs a machine
without it, so they pass on a GPU machine too)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from trainer.models import build_model
from trainer.scoring import ScoringInputError, make_utility, score, swarm_absent
from trainer.training import DEVICES, TrainConfig, TrainConfigError, evaluate, resolve_device, train_local


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_device_defaults_to_cpu_and_is_a_config_field():
    assert TrainConfig().device == "cpu"
    assert TrainConfig().torch_device == torch.device("cpu")
    field = {f.name: f for f in dataclasses.fields(TrainConfig)}["device"]
    assert field.type in (str, "str") and DEVICES == ("cpu", "cuda", "auto")


def test_auto_is_the_cpu_without_cuda(no_cuda):
    assert TrainConfig(device="auto").torch_device == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")


def test_cuda_without_cuda_is_a_one_line_error(no_cuda):
    with pytest.raises(TrainConfigError) as caught:
        TrainConfig(device="cuda")
    message = str(caught.value)
    assert "\n" not in message and message.startswith('device "cuda"') and "not available" in message
    assert 'device = "cpu"' in message


@pytest.mark.parametrize("bad", ["gpu", "CPU ", "", "cuda:x", 0, None])
def test_unknown_devices_are_refused_naming_the_choices(bad):
    with pytest.raises(TrainConfigError, match=r"^device must be one of cpu, cuda, auto, got "):
        TrainConfig(device=bad)


def test_cuda_resolves_where_cuda_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert TrainConfig(device="cuda").torch_device == torch.device("cuda")
    assert resolve_device("auto") == torch.device("cuda")


def _trained(split, config, seed=3):
    node = split.nodes[0]
    model = build_model("mlp", split.n_features, split.n_classes, seed=0)
    train_local(model, node.X_train, node.y_train, config, seed=seed)
    return model


def test_training_on_cpu_is_bit_identical_to_no_device(wine_split, tiny_config, no_cuda):
    plain = _trained(wine_split, tiny_config).state_dict()
    for device in ("cpu", "auto"):
        placed = _trained(wine_split, dataclasses.replace(tiny_config, device=device))
        assert all(p.device.type == "cpu" for p in placed.parameters())
        state = placed.state_dict()
        assert all(torch.equal(plain[k], state[k]) for k in plain)


def test_evaluate_on_a_device_gives_the_same_metrics(wine_split, tiny_config):
    model = _trained(wine_split, tiny_config)
    node = wine_split.nodes[1]
    assert evaluate(model, node.X_val, node.y_val, device="cpu") == evaluate(model, node.X_val, node.y_val)


def _updates(split, config):
    previous = build_model("mlp", split.n_features, split.n_classes, seed=0).state_dict()
    updates = []
    for i, node in enumerate(split.nodes):
        model = build_model("mlp", split.n_features, split.n_classes, seed=0)
        train_local(model, node.X_train, node.y_train, config, seed=i)
        updates.append(model.state_dict())
    return previous, updates


def test_scoring_on_cpu_is_bit_identical_to_no_device(wine_split, tiny_config, no_cuda):
    previous, updates = _updates(wine_split, tiny_config)
    model = build_model("mlp", wine_split.n_features, wine_split.n_classes, seed=0)
    node = wine_split.nodes[0]
    weights = [n.n_train for n in wine_split.nodes]
    values = {}
    for device in (None, "cpu", "auto", torch.device("cpu")):
        utility = make_utility(model, previous, updates, weights, node.X_val, node.y_val, anchor=0,
                               absent=swarm_absent("fltrust_median"), device=device)
        values[str(device)] = score("exact_shapley", utility, len(updates), seed=0)
    reference = values["None"]
    assert all((v == reference).all() for v in values.values())


def test_scoring_on_cuda_without_cuda_is_a_one_line_error(wine_split, tiny_config, no_cuda):
    previous, updates = _updates(wine_split, tiny_config)
    model = build_model("mlp", wine_split.n_features, wine_split.n_classes, seed=0)
    node = wine_split.nodes[0]
    with pytest.raises(ScoringInputError) as caught:
        make_utility(model, previous, updates, None, node.X_val, node.y_val, device="cuda")
    assert "\n" not in str(caught.value) and "CUDA" in str(caught.value)
