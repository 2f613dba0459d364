"""Contribution scoring: the coalition utility, the Shapley axioms, the estimators.

The utility here values the weighted-mean share (``rule="weighted_mean"``), the linear
game the estimators are checked against; ``test_merged_utility`` covers the other rules
and the default (the swarm's ``fltrust_median``)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from trainer.data import SwarmSplit, load_dataset, split_swarm
from trainer.merges import merge
from trainer.models import build_model
from trainer.params import ShapeMismatchError
from trainer.scoring.game import merge_coefficients
from trainer.scoring import (
    SCORERS,
    CoalitionError,
    ParticipantCountError,
    ScoringInputError,
    SetFunctionGame,
    UnknownScorerError,
    make_utility,
    register_scorer,
    score,
)
from trainer.scoring import estimators
from tests.trainer.modules import (
    RowWeightedGame,
    Wrapped,
    balanced_accuracy,
    balanced_neg_cross_entropy,
    balanced_neg_gce,
    size_weighted_mix,
)
from trainer.training import TrainConfig, train_local

SHAPLEY_SCORERS = ["exact_shapley", "shapley_permutation", "shapley_kernel", "shapley_quadratic"]
SAMPLED_SCORERS = ["shapley_permutation", "shapley_kernel", "shapley_quadratic"]
N_NODES = 6


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def swarm() -> SwarmSplit:
    """Wine dealt to 6 nodes with label skew: updates that genuinely differ."""
    return split_swarm(load_dataset("wine"), N_NODES, partition="dirichlet", alpha=0.5, seed=1)


@pytest.fixture(scope="module")
def epoch(swarm: SwarmSplit) -> dict:
    """One epoch: a shared previous model, 6 locally trained updates, their sample counts."""
    model = build_model("mlp", swarm.n_features, swarm.n_classes, seed=0, hidden=(8,))
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(lr=0.1, batch_size=8, steps=6)
    updates = []
    for i, node in enumerate(swarm.nodes):
        local = build_model("mlp", swarm.n_features, swarm.n_classes, seed=0, hidden=(8,))
        local.load_state_dict(previous)
        train_local(local, node.X_train, node.y_train, config, seed=i)
        updates.append({k: v.clone() for k, v in local.state_dict().items()})
    X_val = torch.cat([node.X_val for node in swarm.nodes])
    y_val = torch.cat([node.y_val for node in swarm.nodes])
    return dict(model=model, previous=previous, updates=updates,
                weights=[len(node.y_train) for node in swarm.nodes], X_val=X_val, y_val=y_val)


def utility_of(epoch: dict, **overrides):
    """A fresh utility (empty cache) over the epoch fixture."""
    args = {k: epoch[k] for k in ("model", "previous", "updates", "weights", "X_val", "y_val")}
    args.update({"rule": "weighted_mean", **overrides})
    return make_utility(**args)


def additive(values: list[float]) -> SetFunctionGame:
    """u(S) = sum of the members' values: each player's Shapley value is its own value."""
    return SetFunctionGame(len(values), lambda s: sum(values[i] for i in s))


def glove() -> SetFunctionGame:
    """Player 0 holds a left glove, 1 and 2 right gloves; u(S) = number of pairs."""
    return SetFunctionGame(3, lambda s: float(min(len(s & {0}), len(s & {1, 2}))))


def weighted_majority() -> SetFunctionGame:
    """Votes (3, 1, 1, 1), quota 4: Shapley-Shubik indices (3/4, 1/12, 1/12, 1/12)."""
    votes = [3, 1, 1, 1]
    return SetFunctionGame(4, lambda s: float(sum(votes[i] for i in s) >= 4))


def brute_force_shapley(game: SetFunctionGame) -> np.ndarray:
    """Shapley value as the mean marginal contribution over all n! orders."""
    n = game.n
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        before: frozenset[int] = frozenset()
        for i in order:
            phi[i] += game(before | {i}) - game(before)
            before = before | {i}
    return phi / math.factorial(n)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --------------------------------------------------------------------------- the utility


def test_empty_coalition_is_the_previous_model(epoch):
    u = utility_of(epoch)
    with torch.no_grad():
        expected = balanced_neg_gce(epoch["model"].eval()(epoch["X_val"]), epoch["y_val"])
    # the fixture model holds exactly ``previous``
    assert u(frozenset()) == pytest.approx(expected, rel=1e-6)


def test_grand_coalition_is_the_weighted_mean_merge_evaluated_on_validation(epoch):
    u = utility_of(epoch)
    everyone = range(len(epoch["updates"]))
    merged = merge("weighted_mean", epoch["updates"], previous=epoch["previous"], weights=epoch["weights"])
    model = build_model("mlp", 13, 3, seed=0, hidden=(8,)).eval()
    model.load_state_dict(merged)
    logits = model(epoch["X_val"])
    assert u(frozenset(everyone)) == pytest.approx(balanced_neg_gce(logits, epoch["y_val"]), rel=1e-5)
    loss = utility_of(epoch, metric="loss")
    assert loss(frozenset(everyone)) == pytest.approx(balanced_neg_cross_entropy(logits, epoch["y_val"]), rel=1e-5)
    accuracy = utility_of(epoch, metric="accuracy")
    expected_accuracy = balanced_accuracy(logits, epoch["y_val"])
    assert accuracy(frozenset(everyone)) == pytest.approx(expected_accuracy)


def test_a_coalition_takes_its_members_share_of_the_full_step(epoch):
    u = utility_of(epoch)
    members = [0, 2, 5]
    total = float(sum(epoch["weights"]))
    state = {k: v.clone() for k, v in epoch["previous"].items()}
    for i in members:
        for k, v in epoch["updates"][i].items():
            if v.is_floating_point():
                state[k] = state[k] + (epoch["weights"][i] / total) * (v - epoch["previous"][k])
    model = build_model("mlp", 13, 3, seed=0, hidden=(8,)).eval()
    model.load_state_dict(state)
    expected = balanced_neg_gce(model(epoch["X_val"]), epoch["y_val"])
    assert u(frozenset(members)) == pytest.approx(expected, rel=1e-5)


def test_a_free_rider_scores_exactly_zero(epoch):
    updates = list(epoch["updates"])
    updates[3] = {k: v.clone() for k, v in epoch["previous"].items()}  # sends the global model back
    u = make_utility(epoch["model"], epoch["previous"], updates, epoch["weights"], epoch["X_val"], epoch["y_val"],
                     rule="weighted_mean")
    scores = score("exact_shapley", u, len(updates), seed=0)
    assert scores[3] == pytest.approx(0.0, abs=1e-12)
    assert abs(scores).max() > 1e-4

def test_linear_head_shortcut_equals_the_generic_forward(epoch):
    def renamed(sd):
        return {f"net.{k}": v for k, v in sd.items()}

    fast = utility_of(epoch)
    generic = utility_of(epoch, model=Wrapped(epoch["model"]), previous=renamed(epoch["previous"]),
                         updates=[renamed(u) for u in epoch["updates"]])
    coalitions = [frozenset(), frozenset({1}), frozenset({0, 3, 4}), frozenset(range(N_NODES))]
    np.testing.assert_allclose(fast.evaluate_many(coalitions), generic.evaluate_many(coalitions), rtol=1e-5)


def test_a_lone_node_swarm_adopts_that_update(epoch):
    """With one participant its share of the step is the whole step."""
    only = epoch["updates"][3]
    u = make_utility(epoch["model"], epoch["previous"], [only], [epoch["weights"][3]], epoch["X_val"], epoch["y_val"],
                     rule="weighted_mean")
    model = build_model("mlp", 13, 3, seed=0, hidden=(8,)).eval()
    model.load_state_dict(only)
    assert u(frozenset({0})) == pytest.approx(balanced_neg_gce(model(epoch["X_val"]), epoch["y_val"]), rel=1e-5)

def test_each_coalition_is_evaluated_once_and_batched_equals_single(epoch):
    u = utility_of(epoch)
    coalitions = [frozenset({0}), frozenset({1, 2}), frozenset({0}), frozenset()]
    batched = u.evaluate_many(coalitions)
    assert u.evaluations == 3
    assert batched[0] == batched[2]
    fresh = utility_of(epoch)
    singles = [fresh(s) for s in coalitions]
    np.testing.assert_allclose(batched, singles, rtol=1e-6)
    u(frozenset({1, 2}))
    assert u.evaluations == 3


def test_zero_weight_update_is_a_dummy_player(epoch):
    weights = list(epoch["weights"])
    weights[4] = 0
    phi = score("exact_shapley", utility_of(epoch, weights=weights), N_NODES, seed=0)
    assert phi[4] == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- axioms on known games


@pytest.mark.parametrize(
    ("game", "expected"),
    [
        (lambda: additive([0.5, -1.0, 2.0, 0.0, 0.25]), [0.5, -1.0, 2.0, 0.0, 0.25]),
        (glove, [2 / 3, 1 / 6, 1 / 6]),
        (weighted_majority, [3 / 4, 1 / 12, 1 / 12, 1 / 12]),
    ],
    ids=["additive", "glove", "weighted_majority"],
)
def test_exact_shapley_matches_known_values(game, expected):
    np.testing.assert_allclose(score("exact_shapley", game(), len(expected), seed=0), expected, atol=1e-12)


def test_exact_shapley_matches_the_permutation_definition():
    rng = np.random.default_rng(3)
    table = {s: float(rng.normal()) for r in range(6) for s in itertools.combinations(range(5), r)}
    game = SetFunctionGame(5, lambda s: table.get(tuple(sorted(s)), 0.0))
    np.testing.assert_allclose(score("exact_shapley", game, 5, seed=0), brute_force_shapley(game), atol=1e-12)


@pytest.mark.parametrize("scorer", SHAPLEY_SCORERS)
def test_efficiency_sum_is_grand_coalition_gain(epoch, scorer):
    u = utility_of(epoch)
    phi = score(scorer, u, N_NODES, seed=7, **({} if scorer == "exact_shapley" else {"budget": 30}))
    assert phi.sum() == pytest.approx(u(frozenset(range(N_NODES))) - u(frozenset()), abs=1e-9)


@pytest.mark.parametrize("scorer", ["exact_shapley", "shapley_kernel", "shapley_quadratic"])
def test_symmetric_players_get_equal_scores(epoch, scorer):
    """Permutation sampling is symmetric only in expectation, so it is not listed."""
    updates = list(epoch["updates"])
    updates[5] = updates[2]
    weights = list(epoch["weights"])
    weights[5] = weights[2]
    u = utility_of(epoch, updates=updates, weights=weights)
    phi = score(scorer, u, N_NODES, seed=0)  # default budget covers all 64 coalitions
    assert phi[5] == pytest.approx(phi[2], rel=1e-6, abs=1e-9)


def test_symmetry_and_dummy_on_a_game():
    # players 0 and 1 interchangeable, player 3 a dummy
    game = SetFunctionGame(4, lambda s: float(len(s & {0, 1}) * (2 in s)) + 0.5 * len(s & {0, 1, 2}))
    phi = score("exact_shapley", game, 4, seed=0)
    assert phi[0] == pytest.approx(phi[1])
    assert phi[3] == 0.0


# --------------------------------------------------------------------------- estimators


@pytest.mark.parametrize("game", [glove, weighted_majority, lambda: additive([1.0, 2.0, -0.5, 0.0, 3.0])])
def test_quadratic_estimator_with_full_budget_is_exact(game):
    g = game()
    exact = score("exact_shapley", game(), g.n, seed=0)
    np.testing.assert_allclose(score("shapley_quadratic", g, g.n, seed=1, budget=2**g.n), exact, atol=1e-10)
    assert g.evaluations == 2**g.n


def test_quadratic_estimator_converges_to_exact_on_model_utility(swarm):
    model = build_model("mlp", swarm.n_features, swarm.n_classes, seed=0, hidden=(8,))
    previous = model.state_dict()
    gen = torch.Generator().manual_seed(0)
    updates = [{k: v + 0.3 * torch.randn(v.shape, generator=gen) for k, v in previous.items()}
               for _ in range(9)]
    X = torch.cat([node.X_val for node in swarm.nodes])
    y = torch.cat([node.y_val for node in swarm.nodes])
    exact = score("exact_shapley", make_utility(model, previous, updates, None, X, y, rule="weighted_mean"), 9, seed=0)
    errors = [
        rel_l2(score("shapley_quadratic", make_utility(model, previous, updates, None, X, y, rule="weighted_mean"), 9,
                     seed=0, budget=budget), exact)
        for budget in (60, 200, 512)
    ]
    assert errors[0] < 0.25
    assert errors[1] < errors[0]
    assert errors[2] < 1e-9


def test_sampled_estimators_are_close_to_exact_with_40n_evaluations(epoch):
    exact = score("exact_shapley", utility_of(epoch), N_NODES, seed=0)
    tolerances = {"shapley_quadratic": 0.05, "shapley_permutation": 0.5, "shapley_kernel": 0.5}
    for scorer, tolerance in tolerances.items():
        u = utility_of(epoch)
        phi = score(scorer, u, N_NODES, seed=11, budget=40)
        assert u.evaluations <= 40
        assert rel_l2(phi, exact) < tolerance, scorer


def test_permutation_estimator_is_exact_on_additive_games():
    values = [0.3, -0.2, 1.5, 0.0, 0.7, 2.0, -1.0]
    np.testing.assert_allclose(score("shapley_permutation", additive(values), 7, seed=4, budget=40), values,
                               atol=1e-12)


def merge_game_table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth non-quadratic game with the swarm's merge structure, over all 2^n masks:
    ``u(S) = -|m_S - t|^2 + 0.3 sin(a . m_S)``, ``m_S = sum_{i in S} w_i x_i / W`` (each
    member's share of the full weighted step towards points ``x_i``)."""
    rng = np.random.default_rng(seed)
    points, weights = rng.normal(size=(n, 3)), rng.uniform(1, 4, size=n)
    target, direction = rng.normal(size=3), rng.normal(size=3)
    members = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    step = (members * weights) @ points / weights.sum()
    table = -((step - target) ** 2).sum(axis=1) + 0.3 * np.sin(step @ direction)
    return table, weights


def test_quadratic_estimator_beyond_exact_enumeration():
    # n above EXACT_MAX_N: the surrogate's Shapley value is closed-form at any n.
    n = 18
    table, weights = merge_game_table(n, seed=0)
    game = SetFunctionGame(n, lambda s: table[sum(1 << i for i in s)], weights=weights)
    phi = score("shapley_quadratic", game, n, seed=0)
    exact = estimators._shapley_from_table(table, n)
    assert game.evaluations <= 40 * n
    assert phi.sum() == pytest.approx(exact.sum(), rel=1e-9)
    assert rel_l2(phi, exact) < 0.1


def test_surrogate_shapley_closed_form_matches_enumeration():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    b, Q, weights = rng.normal(size=6), A @ A.T, rng.uniform(1, 5, size=6)
    masks = estimators._all_masks(6)
    coef = merge_coefficients(estimators._membership(masks, 6), weights)
    enumerated = estimators._shapley_from_table(estimators._quadratic(coef, b, Q), 6)
    np.testing.assert_allclose(estimators._surrogate_shapley(b, Q, weights), enumerated, rtol=1e-10)

@pytest.mark.parametrize("scorer", SAMPLED_SCORERS + ["loo", "auto"])
def test_same_seed_gives_bit_identical_scores(epoch, scorer):
    first = score(scorer, utility_of(epoch), N_NODES, seed=5)
    second = score(scorer, utility_of(epoch), N_NODES, seed=5)
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("scorer", SAMPLED_SCORERS)
def test_sampled_coalitions_depend_on_the_seed_only(scorer):
    def recorded(values):
        seen: list[frozenset[int]] = []
        game = SetFunctionGame(12, lambda s: seen.append(s) or float(sum(values[i] for i in s) ** 2))
        return game, seen

    rng = np.random.default_rng(0)
    (a, seen_a), (b, seen_b), (c, seen_c) = (recorded(rng.normal(size=12)) for _ in range(3))
    score(scorer, a, 12, seed=3, budget=100)
    score(scorer, b, 12, seed=3, budget=100)
    score(scorer, c, 12, seed=4, budget=100)
    assert set(seen_a) == set(seen_b)
    assert set(seen_a) != set(seen_c)
    assert len(seen_a) <= 100


def test_loo_is_grand_coalition_minus_coalition_without_i(epoch):
    u = utility_of(epoch)
    phi = score("loo", u, N_NODES, seed=0)
    full = frozenset(range(N_NODES))
    assert phi[2] == pytest.approx(u(full) - u(full - {2}))
    assert u.evaluations == N_NODES + 1


def test_auto_is_exact_up_to_ten_players_then_the_recommended_estimator():
    small = additive(list(np.arange(10.0)))
    np.testing.assert_array_equal(score("auto", small, 10, seed=0), score("exact_shapley", small, 10, seed=0))
    values = list(np.sin(np.arange(11.0)))

    def squared_sum(s: frozenset[int]) -> float:
        return float(sum(values[i] for i in s)) ** 2

    big = SetFunctionGame(11, squared_sum)
    auto = score("auto", big, 11, seed=2, budget=120)
    recommended = score(estimators.RECOMMENDED, SetFunctionGame(11, squared_sum), 11, seed=2, budget=120)
    np.testing.assert_array_equal(auto, recommended)
    assert big.evaluations <= 120


# --------------------------------------------------------------------------- linearity across validators


@pytest.mark.parametrize("metric", ["gce", "loss", "accuracy"])
@pytest.mark.parametrize("scorer", ["exact_shapley", "shapley_quadratic", "loo"])
def test_score_on_pooled_validation_is_the_weighted_sum_of_validator_scores(epoch, swarm, metric, scorer):
    """The size-weighted sum of the validators' scores is the score of the size-weighted mix
    of their class-balanced utilities: a row-weighted utility on the pooled rows."""
    nodes = swarm.nodes[:3]
    per_validator, sizes = [], []
    for node in nodes:
        u = utility_of(epoch, X_val=node.X_val, y_val=node.y_val, metric=metric)
        per_validator.append(score(scorer, u, N_NODES, seed=9, budget=40) if scorer == "shapley_quadratic"
                             else score(scorer, u, N_NODES, seed=9))
        sizes.append(len(node.y_val))
    pooled_u = utility_of(epoch, X_val=torch.cat([n.X_val for n in nodes]),
                          y_val=torch.cat([n.y_val for n in nodes]), metric=metric)
    pooled_u = RowWeightedGame(pooled_u, size_weighted_mix([n.y_val for n in nodes]))
    pooled = (score(scorer, pooled_u, N_NODES, seed=9, budget=40) if scorer == "shapley_quadratic"
              else score(scorer, pooled_u, N_NODES, seed=9))
    combined = sum(m * phi for m, phi in zip(sizes, per_validator)) / sum(sizes)
    np.testing.assert_allclose(pooled, combined, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- bad input


def test_unknown_scorer_lists_the_known_names(epoch):
    with pytest.raises(UnknownScorerError, match="exact_shapley"):
        score("banzhaf_magic", utility_of(epoch), N_NODES, seed=0)


def test_participant_count_mismatch_is_refused(epoch):
    with pytest.raises(ParticipantCountError, match="n=5"):
        score("loo", utility_of(epoch), 5, seed=0)


def test_exact_shapley_refuses_games_too_large_to_enumerate():
    with pytest.raises(ParticipantCountError, match="2\\^17"):
        score("exact_shapley", additive([1.0] * 17), 17, seed=0)


def test_budget_below_the_exact_strata_is_refused():
    with pytest.raises(ScoringInputError, match="budget=10"):
        score("shapley_quadratic", additive([1.0] * 8), 8, seed=0, budget=10)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"updates": []}, "updates is empty"),
        ({"weights": [1, 2, 3]}, "3 entries"),
        ({"weights": [1, 2, 3, -1, 5, 6]}, "player 3"),
        ({"weights": [0] * 6}, "all weights are zero"),
        ({"X_val": torch.zeros(0, 13), "y_val": torch.zeros(0, dtype=torch.int64)}, "non-empty"),
        ({"y_val": torch.zeros(3, dtype=torch.int64)}, "y_val has shape"),
        ({"metric": "f1"}, "unknown metric 'f1'"),
        ({"model": torch.nn.Sequential(torch.nn.Linear(13, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))},
         "key '0.bias' has shape \\(8,\\)"),
        ({"model": torch.nn.Sequential(torch.nn.Linear(13, 3))}, "previous does not fit the model: keys"),
        ({"X_val": torch.zeros(5, 7), "y_val": torch.zeros(5, dtype=torch.int64)},
         r"shape \(7,\) do not fit"),
        ({"X_val": torch.zeros(2, 13), "y_val": torch.tensor([0, 3])},
         "labels span 0..3 but the model has 3"),
    ],
)
def test_bad_utility_inputs_get_a_precise_error(epoch, overrides, message):
    with pytest.raises(ScoringInputError, match=message):
        utility_of(epoch, **overrides)


def test_malformed_update_is_named_by_index(epoch):
    updates = list(epoch["updates"])
    updates[4] = {k: v[..., :1] if v.ndim == 2 else v for k, v in updates[4].items()}
    with pytest.raises(ShapeMismatchError) as info:
        utility_of(epoch, updates=updates)
    assert info.value.index == 4


def test_coalition_with_unknown_member_is_refused(epoch):
    with pytest.raises(CoalitionError, match=r"\[6\]"):
        utility_of(epoch)(frozenset({0, 6}))


def test_a_scorer_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already registered"):
        register_scorer("loo")(lambda game, n, *, seed: np.zeros(n))
    assert "loo" in SCORERS
