"""The class-balanced row weights of the coalition utility (``trainer.scoring.utility``):
every class present among a validator's rows weighs the same, so an update that only
raises one class's logit is no improvement for a validator dominated by that class."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.scoring import ValidatorUtilities, make_utility
from trainer.scoring.utility import class_balanced
from tests.trainer.modules import balanced_neg_gce, balanced_weights

LABELS = {
    "balanced": torch.tensor([0, 1, 2, 0, 1, 2]),
    "skewed": torch.tensor([1, 1, 1, 1, 1, 1, 1, 0, 2, 2]),
    "two_of_four": torch.tensor([3, 0, 3, 3, 0]),
    "one_each": torch.tensor([4, 2, 0]),
    "random": torch.randint(0, 7, (97,), generator=torch.Generator().manual_seed(0)),
}


@pytest.mark.parametrize("y", LABELS.values(), ids=LABELS.keys())
def test_the_weights_are_float64_one_per_row_and_sum_to_one(y):
    w = class_balanced(y)
    assert w.dtype == torch.float64 and w.shape == y.shape
    assert (w > 0).all()
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("y", LABELS.values(), ids=LABELS.keys())
def test_each_present_class_totals_one_over_k_split_equally_among_its_rows(y):
    w = class_balanced(y)
    classes = torch.unique(y)
    for c in classes:
        rows = w[y == c]
        assert float(rows.sum()) == pytest.approx(1.0 / len(classes), abs=1e-12)
        torch.testing.assert_close(rows, torch.full_like(rows, 1.0 / (len(classes) * len(rows))), rtol=0, atol=1e-15)


@pytest.mark.parametrize("y", LABELS.values(), ids=LABELS.keys())
def test_the_weights_match_the_definition_written_out_per_class(y):
    torch.testing.assert_close(class_balanced(y), balanced_weights(y), rtol=0, atol=1e-15)


def linear_model(n_classes: int = 2) -> torch.nn.Sequential:
    """A float64 linear classifier on 2 features: class c's logit is feature c (identity
    weights for the first two classes), biases 0."""
    model = torch.nn.Sequential(torch.nn.Linear(2, n_classes)).double().eval()
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[0, 0] = 1.0
        model[0].weight[1 if n_classes == 2 else n_classes - 1, 1] = 1.0
        model[0].bias.zero_()
    return model


def test_a_single_class_validator_weighs_its_rows_uniformly_like_the_plain_mean():
    y = torch.ones(7, dtype=torch.int64)
    torch.testing.assert_close(class_balanced(y), torch.full((7,), 1 / 7, dtype=torch.float64), rtol=0, atol=1e-15)
    model = linear_model()
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    update = {k: v + 0.3 for k, v in previous.items()}
    X = torch.randn(7, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u = make_utility(model, previous, [update], None, X, y, metric="loss", rule="weighted_mean")
    for coalition, state in ((frozenset(), previous), (frozenset({0}), update)):
        model.load_state_dict(state)
        with torch.no_grad():
            plain = -F.cross_entropy(model(X), y).item()
        assert u(coalition) == pytest.approx(plain, abs=1e-12)
    correct = (model(X).argmax(1) == y).double().mean().item()
    accuracy = make_utility(model, previous, [update], None, X, y, metric="accuracy", rule="weighted_mean")
    assert accuracy(frozenset({0})) == pytest.approx(correct, abs=1e-12)


def test_absent_classes_do_not_matter():
    """Labels {0, 5} weigh like {0, 1}: K counts the classes present, not the model's."""
    pattern = torch.tensor([0, 1, 1, 1, 0, 1, 1])
    torch.testing.assert_close(class_balanced(torch.where(pattern == 1, 5, 0)), class_balanced(pattern),
                               rtol=0, atol=0)
    # the same rows valued by a 6-class model whose class 5 plays class 1's part
    X = torch.randn(7, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    two, six = linear_model(2), linear_model(6)
    with torch.no_grad():
        six[0].bias[1:5] = -1e4  # classes 1..4 never predicted: the logits of 0 and 5 decide
    values = []
    for model, y in ((two, pattern), (six, torch.where(pattern == 1, 5, 0))):
        previous = {k: v.clone() for k, v in model.state_dict().items()}
        update = {k: v.clone() for k, v in previous.items()}
        update["0.bias"][0] += 0.7
        u = make_utility(model, previous, [update], None, X, y, rule="weighted_mean")
        values.append(u.evaluate_many([frozenset(), frozenset({0})]))
    torch.testing.assert_close(torch.from_numpy(values[1]), torch.from_numpy(values[0]), rtol=0, atol=1e-12)


def test_each_validator_weighs_its_own_classes():
    """``ValidatorUtilities`` balances every validator over its own rows, not the pooled ones."""
    model = linear_model()
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    update = {k: v.clone() for k, v in previous.items()}
    update["0.bias"][0] += 0.5
    gen = torch.Generator().manual_seed(3)
    validators = [(torch.randn(6, 2, generator=gen, dtype=torch.float64), torch.tensor([0, 0, 0, 0, 0, 1])),
                  (torch.randn(4, 2, generator=gen, dtype=torch.float64), torch.tensor([1, 1, 0, 1]))]
    shared = ValidatorUtilities(model, previous, [update], None, validators, rule="weighted_mean")
    for game, (X, y) in zip(shared.games, validators, strict=True):
        for coalition, state in ((frozenset(), previous), (frozenset({0}), update)):
            model.load_state_dict(state)
            with torch.no_grad():
                expected = balanced_neg_gce(model(X), y)
            assert game(coalition) == pytest.approx(expected, abs=1e-12)


def test_raising_the_majority_class_logit_is_no_improvement_once_balanced():
    """A validator holding 8 rows of class A and 2 of class B, each row a clear but not
    certain example of its class; the update only adds a constant to A's logit bias (what a
    label flipper whose flipped labels are A pushes). With the plain row mean that is a gain
    (most rows are A); balanced, what A gains B loses, and the update is a loss."""
    model = linear_model()  # logit of A = x_0, logit of B = x_1
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    biased = {k: v.clone() for k, v in previous.items()}
    biased["0.bias"][0] += 0.8
    X = torch.tensor([[1.0, 0.0]] * 8 + [[0.0, 1.0]] * 2, dtype=torch.float64)
    y = torch.tensor([0] * 8 + [1] * 2)

    def plain_mean(state):
        model.load_state_dict(state)
        with torch.no_grad():
            return -F.cross_entropy(model(X), y).item()

    plain_gain = plain_mean(biased) - plain_mean(previous)
    u = make_utility(model, previous, [biased], None, X, y, metric="loss", rule="weighted_mean")
    balanced_gain = u(frozenset({0})) - u(frozenset())
    assert plain_gain > 0.05
    assert balanced_gain < plain_gain
    assert balanced_gain < 0
    # the same numbers written out: class A's rows and class B's rows, half the weight each
    a = F.cross_entropy(torch.tensor([[1.8, 0.0]], dtype=torch.float64), torch.tensor([0])).item()
    b = F.cross_entropy(torch.tensor([[0.8, 1.0]], dtype=torch.float64), torch.tensor([1])).item()
    before = F.cross_entropy(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([0])).item()
    assert balanced_gain == pytest.approx(before - (a + b) / 2, abs=1e-12)
    # an update that makes class B's rows more certain (and touches no A row) gains in full
    sharper = {k: v.clone() for k, v in previous.items()}
    sharper["0.weight"][1, 1] += 0.8
    sharp = make_utility(model, previous, [sharper], None, X, y, metric="loss", rule="weighted_mean")
    assert sharp(frozenset({0})) - sharp(frozenset()) > 0
