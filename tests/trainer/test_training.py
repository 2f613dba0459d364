"""Local training and evaluation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.models import build_model
from trainer.training import Metrics, TrainConfig, TrainConfigError, evaluate, train_local


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [t.clone() for t in model.state_dict().values()]


def test_training_lowers_the_training_loss(wine, tiny_model):
    before = evaluate(tiny_model, wine.X, wine.y)
    train_local(tiny_model, wine.X, wine.y, TrainConfig(lr=0.05, local_epochs=5), seed=0)
    after = evaluate(tiny_model, wine.X, wine.y)
    assert after.loss < before.loss / 2 and after.accuracy > 0.9


def test_training_is_bit_deterministic_per_seed(wine, tiny_config):
    runs = []
    for seed in (7, 7, 8):
        model = build_model("mlp", 13, 3, seed=0, hidden=(8,))
        runs.append(_weights(train_local(model, wine.X, wine.y, tiny_config, seed=seed)))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_steps_override_local_epochs():
    config = TrainConfig(batch_size=10, local_epochs=3)
    assert config.steps_for(25) == 9
    assert TrainConfig(batch_size=10, local_epochs=3, steps=4).steps_for(25) == 4


def test_steps_count_optimizer_updates(wine):
    seen = []
    model = build_model("mlp", 13, 3, seed=0, hidden=(4,))
    model.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    train_local(model, wine.X[:25], wine.y[:25], TrainConfig(batch_size=10, steps=4), seed=0)
    assert seen == [10, 10, 5, 10]


def test_adam_and_weight_decay_train(wine, tiny_model):
    config = TrainConfig(lr=0.01, optimizer="adam", weight_decay=1e-4, steps=30)
    train_local(tiny_model, wine.X, wine.y, config, seed=0)
    assert evaluate(tiny_model, wine.X, wine.y).accuracy > 0.9


@pytest.mark.parametrize("field, value", [
    ("lr", 0.0), ("lr", float("nan")), ("batch_size", 0), ("local_epochs", 0), ("steps", 0),
    ("optimizer", "rmsprop"), ("momentum", 1.0), ("weight_decay", -1.0)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(TrainConfigError, match=field):
        TrainConfig(**{field: value})


def test_train_refuses_mismatched_data(tiny_model, tiny_config, wine):
    with pytest.raises(ValueError, match="matching non-empty X and y, got 10 and 9"):
        train_local(tiny_model, wine.X[:10], wine.y[:9], tiny_config, seed=0)


class _Fixed(nn.Module):
    """Returns preset logits, to check metrics against hand-computed values."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def test_metrics_match_hand_computed_values():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    y = torch.tensor([0, 1, 1, 1])
    metrics = evaluate(_Fixed(logits), torch.zeros(4, 1), y)
    assert metrics.accuracy == 0.75
    p = torch.softmax(logits, 1)[torch.arange(4), y]
    assert metrics.loss == pytest.approx(float(-p.log().mean()))
    # class 0: tp=1 fp=1 fn=0 -> F1 2/3; class 1: tp=2 fp=0 fn=1 -> F1 0.8
    assert metrics.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    # positive scores: [.12, .73, .27, .95]; pairs (neg .12 < each pos) -> AUC 1
    assert metrics.roc_auc == 1.0


def test_roc_auc_is_none_for_multiclass_or_single_class():
    three = evaluate(_Fixed(torch.eye(3)), torch.zeros(3, 1), torch.tensor([0, 1, 2]))
    assert three.roc_auc is None and three.accuracy == 1.0
    single = evaluate(_Fixed(torch.tensor([[1.0, 0.0]])), torch.zeros(1, 1), torch.tensor([0]))
    assert single.roc_auc is None
    assert Metrics(1.0, 0.0, 1.0, None).as_dict() == {"accuracy": 1.0, "loss": 0.0, "macro_f1": 1.0,
                                                       "roc_auc": None}
