"""The utility values the model the swarm merged: every merge rule, checked against a plain
loop over ``trainer.merges.merge``, and what that means for rogues and free riders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from trainer import merges
from trainer.attacks import apply_attack
from trainer.data import SwarmSplit, load_dataset, split_swarm
from trainer.merges import MERGES, InvalidAnchorError, merge
from trainer.models import build_model
from trainer.scoring import ABSENT, ScoringInputError, ValidatorUtilities, make_utility, score, swarm_absent
from tests.trainer.modules import RowWeightedGame, Wrapped, balanced_neg_gce, size_weighted_mix
from trainer.training import TrainConfig, train_local

N = 5
ANCHOR = 2
WEIGHTS = [30, 10, 40, 10, 50]
ALL = [frozenset(c) for r in range(N + 1) for c in itertools.combinations(range(N), r)]
#: The counterfactuals that merge each coalition with the rule ("share" splits the grand
#: coalition's merge instead, tested on its own below).
MERGING = ("previous", "dropped")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def float64_epoch(wine) -> dict:
    """A float64 wine MLP and 5 updates sharing a direction with different strengths (one
    against it, so trust rules give it 0): merges agree with the loop to ~1e-16."""
    model = build_model("mlp", wine.n_features, wine.n_classes, seed=0, hidden=(8,)).double().eval()
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    common = {k: 0.2 * torch.randn(v.shape, generator=gen, dtype=v.dtype) for k, v in previous.items()}
    updates = [{k: v + s * common[k] + 0.15 * torch.randn(v.shape, generator=gen, dtype=v.dtype)
                for k, v in previous.items()} for s in (1.0, 0.5, 2.0, -1.0, 1.5)]
    X, y = wine.X[::3].double(), wine.y[::3]  # 60 rows of every class
    return dict(model=model, previous=previous, updates=updates, weights=WEIGHTS, X_val=X, y_val=y)


@pytest.fixture(scope="module")
def swarm() -> SwarmSplit:
    """Wine dealt to 6 nodes with label skew (the epoch of ``test_scoring``)."""
    return split_swarm(load_dataset("wine"), 6, partition="dirichlet", alpha=0.5, seed=1)


@pytest.fixture(scope="module")
def trained_epoch(swarm: SwarmSplit) -> dict:
    """One epoch of 6 locally trained float32 updates and their sample counts."""
    model = build_model("mlp", swarm.n_features, swarm.n_classes, seed=0, hidden=(8,))
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    updates = []
    for i, node in enumerate(swarm.nodes):
        local = build_model("mlp", swarm.n_features, swarm.n_classes, seed=0, hidden=(8,))
        local.load_state_dict(previous)
        train_local(local, node.X_train, node.y_train, TrainConfig(lr=0.1, batch_size=8, steps=6), seed=i)
        updates.append({k: v.clone() for k, v in local.state_dict().items()})
    return dict(model=model, previous=previous, updates=updates, weights=[n.n_train for n in swarm.nodes],
                X_val=torch.cat([n.X_val for n in swarm.nodes]), y_val=torch.cat([n.y_val for n in swarm.nodes]))


def utility(epoch: dict, **overrides):
    args = {k: epoch[k] for k in ("model", "previous", "updates", "weights", "X_val", "y_val")}
    args.update(overrides)
    return make_utility(**args)


def performance(epoch: dict, state: dict, model=None) -> float:
    model = model or epoch["model"]
    model.load_state_dict(state)
    with torch.no_grad():
        return balanced_neg_gce(model(epoch["X_val"]), epoch["y_val"])


def merged_by_loop(epoch: dict, coalition: frozenset[int], rule: str, absent: str, anchor: int | None,
                   **options) -> dict:
    """The coalition's model by a plain call of ``trainer.merges.merge`` (the leader's code),
    following the choices documented in ``trainer.scoring.coalition_merge``."""
    previous, updates, weights = epoch["previous"], epoch["updates"], epoch["weights"]
    if not coalition:
        return previous
    if absent == "previous":
        slots = [u if i in coalition else previous for i, u in enumerate(updates)]
        return merge(rule, slots, previous=previous, weights=weights, anchor=anchor, **options)
    members = sorted(coalition)
    if sum(weights[i] for i in members) == 0:
        return previous
    position = members.index(anchor) if anchor in coalition else None
    try:
        return merge(rule, [updates[i] for i in members], previous=previous,
                     weights=[weights[i] for i in members], anchor=position, **options)
    except InvalidAnchorError:
        return previous


def loop_values(epoch, coalitions, rule, absent="previous", anchor=None, **options) -> np.ndarray:
    return np.array([performance(epoch, merged_by_loop(epoch, s, rule, absent, anchor, **options))
                     for s in coalitions])


# --------------------------------------------------------------------------- equal to the leader's merge


@pytest.mark.filterwarnings("ignore::trainer.merges.RobustnessWarning")
@pytest.mark.parametrize("absent", MERGING)
@pytest.mark.parametrize("rule", sorted(MERGES))
def test_every_rule_values_what_merge_makes_of_each_coalition(float64_epoch, rule, absent):
    u = utility(float64_epoch, rule=rule, anchor=ANCHOR, absent=absent)
    if rule == "multi_krum" and absent == "dropped":
        # A lone member cannot be Krum-merged (n > 2f + 2): the documented refusal.
        with pytest.raises(ScoringInputError, match=r"cannot merge coalition \[0\].*needs n > 2f \+ 2"):
            u.evaluate_many(ALL)
        return
    expected = loop_values(float64_epoch, ALL, rule, absent, ANCHOR)
    torch.testing.assert_close(torch.from_numpy(u.evaluate_many(ALL)), torch.from_numpy(expected),
                               rtol=0, atol=1e-10)
    assert u.evaluations == 2**N


@pytest.mark.filterwarnings("ignore::trainer.merges.RobustnessWarning")
@pytest.mark.parametrize(("rule", "options"), [
    ("trimmed_mean", {"beta": 0.4}),
    ("centered_clipping", {"tau": 0.5, "iters": 2}),
    ("multi_krum", {"f": 1, "m": 2}),
    ("geometric_median", {"max_iter": 3}),
])
def test_merge_options_reach_every_coalition(float64_epoch, rule, options):
    u = utility(float64_epoch, rule=rule, options=options)
    expected = loop_values(float64_epoch, ALL, rule, **options)
    np.testing.assert_allclose(u.evaluate_many(ALL), expected, rtol=0, atol=1e-10)
    default = utility(float64_epoch, rule=rule).evaluate_many(ALL)
    assert not np.allclose(default, expected)


@pytest.mark.parametrize(("rule", "anchor"), [("fltrust_median", None), ("fltrust", 0), ("fltrust", 3)])
def test_the_grand_coalition_is_the_leaders_merge(float64_epoch, rule, anchor):
    e = float64_epoch
    leaders = merge(rule, e["updates"], previous=e["previous"], weights=e["weights"], anchor=anchor)
    for absent in ABSENT:
        u = utility(e, rule=rule, anchor=anchor, absent=absent)
        assert u(frozenset(range(N))) == pytest.approx(performance(e, leaders), abs=1e-12)


@pytest.mark.parametrize("absent", MERGING)
@pytest.mark.parametrize("rule", sorted(MERGES))
def test_the_empty_coalition_is_the_previous_model(float64_epoch, rule, absent):
    u = utility(float64_epoch, rule=rule, anchor=ANCHOR, absent=absent)
    # The same model through the batched forward pass and through a single one: equal up to
    # the last bit the CPU's vector width rounds differently (AVX-512 against AVX2).
    assert u(frozenset()) == pytest.approx(performance(float64_epoch, float64_epoch["previous"]), abs=1e-12)


@pytest.mark.parametrize("rule", sorted(set(MERGES) - {"multi_krum"}))
def test_a_lone_update_is_adopted_by_every_rule(float64_epoch, rule):
    """One participant: every rule's merge of one update is that update (rescaled to its own
    norm by the trust rules), whatever ``absent`` says."""
    e = float64_epoch
    only = e["updates"][2]
    for absent in MERGING:
        u = utility(e, updates=[only], weights=[7], rule=rule, anchor=0, absent=absent)
        assert u(frozenset({0})) == pytest.approx(performance(e, only), abs=1e-12)


def test_krum_refuses_a_lone_update(float64_epoch):
    with pytest.raises(ScoringInputError, match=r"'multi_krum' cannot merge these updates.*n > 2f \+ 2"):
        utility(float64_epoch, updates=float64_epoch["updates"][:1], weights=[1], rule="multi_krum")


def test_a_member_alone_is_merged_alone_when_absent_nodes_are_dropped(float64_epoch):
    e = float64_epoch
    for rule in ("median", "fltrust_median", "weighted_mean"):
        u = utility(e, rule=rule, absent="dropped")
        for i in range(N):
            assert u(frozenset({i})) == pytest.approx(performance(e, e["updates"][i]), abs=1e-12)


def test_coalitions_without_their_anchor_or_their_weight_keep_the_previous_model(float64_epoch):
    e = float64_epoch
    before = performance(e, e["previous"])
    for absent in MERGING:
        u = utility(e, rule="fltrust", anchor=ANCHOR, absent=absent)
        without = [s for s in ALL if ANCHOR not in s]
        np.testing.assert_allclose(u.evaluate_many(without), before, rtol=0, atol=1e-12)
        assert u(frozenset({ANCHOR, 0})) != pytest.approx(before, abs=1e-6)
    u = utility(e, weights=[0, 0, 1, 1, 1], absent="dropped")
    assert u(frozenset({0, 1})) == pytest.approx(before, abs=1e-12)
    assert u(frozenset({0, 2})) == pytest.approx(performance(e, e["updates"][2]), abs=1e-12)


@pytest.mark.parametrize("rule", ["fltrust_median", "median"])
def test_the_generic_forward_pass_gives_the_linear_head_shortcut_values(float64_epoch, rule):
    e = float64_epoch

    def renamed(sd):
        return {f"net.{k}": v for k, v in sd.items()}

    fast = utility(e, rule=rule)
    generic = utility(e, rule=rule, model=Wrapped(e["model"]), previous=renamed(e["previous"]),
                      updates=[renamed(u) for u in e["updates"]])
    np.testing.assert_allclose(fast.evaluate_many(ALL), generic.evaluate_many(ALL), rtol=0, atol=1e-12)


def test_a_rule_replaced_in_the_registry_is_valued_by_its_new_function(float64_epoch, monkeypatch):
    """Batched kernels are keyed by the rule function: a replaced rule falls back to calling it."""
    def half_median(deltas, weights, anchor, *, f=None):
        return merges.median(deltas, weights, anchor, f=f) / 2

    monkeypatch.setitem(MERGES, "median", half_median)
    u = utility(float64_epoch, rule="median")
    np.testing.assert_allclose(u.evaluate_many(ALL), loop_values(float64_epoch, ALL, "median"), rtol=0, atol=1e-10)


def test_the_default_is_the_swarms_merge_and_the_weighted_mean_is_the_share_of_the_full_step(float64_epoch):
    e = float64_epoch
    np.testing.assert_array_equal(utility(e).evaluate_many(ALL),
                                  utility(e, rule="fltrust_median", absent="previous").evaluate_many(ALL))
    shares = utility(e, rule="weighted_mean").evaluate_many(ALL)
    np.testing.assert_allclose(shares, loop_values(e, ALL, "weighted_mean"), rtol=0, atol=1e-10)


def fltrust_median_coefficients(epoch: dict) -> torch.Tensor:
    """The leader's ``fltrust_median`` step as coefficients over the deltas, from the rule's
    own definition: c_i = w_i t_i T / (||x_i|| sum_j w_j t_j)."""
    from trainer.merges import _median_rows, _norms, _weighted_lower_median
    from trainer.params import flatten

    base = flatten(epoch["previous"])
    x = torch.stack([flatten(u) - base for u in epoch["updates"]])
    w = torch.tensor(epoch["weights"], dtype=torch.float64) / sum(epoch["weights"])
    reference = _median_rows(x)
    norms = _norms(x)
    trust = torch.clamp((x @ reference) / (norms * reference.norm()), min=0.0)
    target = _weighted_lower_median(norms[:, None], torch.where(trust > 0, w, 0.0))[0]
    return w * trust * target / (norms * (w * trust).sum())


def test_share_values_each_members_part_of_the_leaders_merge(float64_epoch):
    e = float64_epoch
    from trainer.params import flatten, unflatten

    c = fltrust_median_coefficients(e)
    base = flatten(e["previous"])
    x = torch.stack([flatten(u) - base for u in e["updates"]])
    u = utility(e, absent="share")
    expected = [performance(e, unflatten(base + sum((c[i] * x[i] for i in s), torch.zeros_like(base)),
                                         e["previous"])) for s in ALL]
    np.testing.assert_allclose(u.evaluate_many(ALL), expected, rtol=0, atol=1e-10)
    leaders = merge("fltrust_median", e["updates"], previous=e["previous"], weights=e["weights"])
    assert u(frozenset(range(N))) == pytest.approx(performance(e, leaders), abs=1e-12)
    # update 3 points against the others: trust 0, coefficient 0, a dummy player worth exactly 0
    assert c[3] == 0 and score("exact_shapley", u, N, seed=0)[3] == 0.0
    # the linear rules' share is their "previous" counterfactual
    np.testing.assert_array_equal(utility(e, rule="weighted_mean", absent="share").evaluate_many(ALL),
                                  utility(e, rule="weighted_mean").evaluate_many(ALL))


def _public_steps(e: dict, seed: int = 1) -> list[dict]:
    """Three public models around ``previous`` (the previous epoch's updates carried onto it)."""
    gen = torch.Generator().manual_seed(seed)
    return [{k: v + 0.2 * torch.randn(v.shape, generator=gen, dtype=v.dtype) for k, v in e["previous"].items()}
            for _ in range(3)]


def test_public_steps_credit_nobody_for_the_part_of_a_step_in_their_span(float64_epoch):
    """u(S) = previous + sum_{i in S} c_i x_i + sum_{i not in S} c_i pi_i, pi_i the projection
    of x_i on the public steps' span: the grand coalition is still the leader's merge."""
    e = float64_epoch
    from trainer.params import flatten, unflatten

    public = _public_steps(e)
    c = fltrust_median_coefficients(e)
    base = flatten(e["previous"])
    x = torch.stack([flatten(u) - base for u in e["updates"]])
    p = torch.stack([flatten(m) - base for m in public])
    pi = x @ torch.linalg.pinv(p) @ p  # least-squares projection on the span
    u = utility(e, absent="share", public=public)
    expected = [performance(e, unflatten(base + sum((c[i] * (x[i] if i in s else pi[i]) for i in range(N)),
                                                    torch.zeros_like(base)), e["previous"])) for s in ALL]
    np.testing.assert_allclose(u.evaluate_many(ALL), expected, rtol=0, atol=1e-10)
    leaders = merge("fltrust_median", e["updates"], previous=e["previous"], weights=e["weights"])
    assert u(frozenset(range(N))) == pytest.approx(performance(e, leaders), abs=1e-12)


def test_a_copy_of_public_steps_is_worth_nothing_however_it_is_disguised(trained_epoch):
    """The projection on the public steps does not depend on the metric; the cross-entropy
    keeps a removed copy's float32 rounding under 1e-9 (the "gce" metric left 1.5e-9)."""
    e = trained_epoch
    from trainer.attacks import disguise
    from trainer.params import flatten, unflatten

    n = len(e["updates"])
    public = e["updates"][:2]  # as if they were the previous epoch's, carried onto previous
    base = flatten(e["previous"])
    mix = 0.6 * (flatten(public[0]) - base) + 0.4 * (flatten(public[1]) - base)
    updates = [*e["updates"][:2], unflatten(base + mix, e["previous"]), *e["updates"][3:]]
    game = {"absent": "share", "metric": "loss"}
    plain = score("exact_shapley", utility(e, updates=updates, **game), n, seed=0)
    valued = score("exact_shapley", utility(e, updates=updates, public=public, **game), n, seed=0)
    assert abs(valued[2]) < 1e-9 < 0.01 < plain[2]  # a mix of public steps changes no coalition's model
    updates[2] = unflatten(base + disguise(mix, 0.9, seed=3), e["previous"])
    plain = score("exact_shapley", utility(e, updates=updates, **game), n, seed=0)
    valued = score("exact_shapley", utility(e, updates=updates, public=public, **game), n, seed=0)
    assert plain[2] > 0.01 and valued[2] < 0.1 * plain[2]  # only its noise is valued


def test_public_steps_are_checked(float64_epoch):
    e = float64_epoch
    with pytest.raises(ScoringInputError, match="public steps need absent='share'"):
        utility(e, absent="previous", public=_public_steps(e))
    broken = [{k: v[..., :1] for k, v in m.items()} for m in _public_steps(e)]
    with pytest.raises(Exception, match="shape"):
        utility(e, absent="share", public=broken)
    # no public steps (the first epoch): the plain share
    np.testing.assert_array_equal(utility(e, absent="share", public=[]).evaluate_many(ALL),
                                  utility(e, absent="share").evaluate_many(ALL))


@pytest.mark.parametrize("rule", ["median", "trimmed_mean", "geometric_median", "multi_krum", "centered_clipping"])
def test_share_needs_a_rule_whose_step_combines_the_updates(float64_epoch, rule):
    assert set(ABSENT) == {*MERGING, "share"}
    with pytest.raises(ScoringInputError, match=f"absent='share' needs a rule .* not '{rule}'"):
        utility(float64_epoch, rule=rule, absent="share")


# --------------------------------------------------------------------------- what it pays for


@pytest.mark.parametrize("rule", sorted(MERGES))
def test_a_free_rider_scores_zero_under_every_rule(float64_epoch, rule):
    e = float64_epoch
    updates = list(e["updates"])
    updates[3] = {k: v.clone() for k, v in e["previous"].items()}
    phi = score("exact_shapley", utility(e, updates=updates, rule=rule, anchor=0), N, seed=0)
    assert phi[3] == pytest.approx(0.0, abs=1e-12)
    assert np.abs(phi).max() > 1e-3


def test_a_scaled_update_is_paid_about_its_honest_value_under_fltrust_median(trained_epoch):
    """Node j commits ``previous + 10 (update_j - previous)`` instead of its update.

    Measured, phi(scaled)_j / phi(honest)_j for j = 0..5 on this epoch (class-balanced
    utility, metric "gce"): valuing each member's share of the merged step (``absent="share"``,
    what the swarm does): 0.94 0.98 1.14 - 1.20 0.95 (node 3 has no trust, so no value either
    way); re-merging each coalition (``absent="previous"``): 0.98 1.06 1.95 1.07 1.40 1.03,
    where the scaled norm moves the rank of the weighted median norm of the trusted updates
    (node 2 then sets a longer step for every coalition holding it). Valuing the weighted-mean
    share instead (the old utility): 8.22 -1.84 3.13 7.89 1.71 6.27, paid as if merged at 10x.
    With the cross-entropy ("loss"): 0.96 0.98 1.16 - 1.06 0.96; 0.99 0.74 -2.73 1.05 -11.87
    1.00 (its unbounded loss charged the overshoot); 5.84 -8.52 -2.07 3.34 -5.44 4.44."""
    e = trained_epoch
    n = len(e["updates"])

    def ratios(**rule):
        honest = score("exact_shapley", utility(e, **rule), n, seed=0)
        scaled = []
        for j in range(n):
            updates = list(e["updates"])
            updates[j] = apply_attack("scaled", updates[j], previous=e["previous"], peers=[], seed=0)
            scaled.append(score("exact_shapley", utility(e, updates=updates, **rule), n, seed=0)[j])
        return honest, np.array(scaled)

    honest, scaled = ratios(absent="share")
    trusted = honest > 0
    assert trusted.sum() == n - 1
    assert scaled[~trusted] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.abs(scaled[trusted] / honest[trusted] - 1) < 0.25)
    honest, scaled = ratios(rule="weighted_mean")
    assert scaled[0] / honest[0] > 5


@pytest.mark.parametrize("scorer", ["exact_shapley", "shapley_quadratic", "loo"])
def test_pooled_validation_is_the_size_weighted_sum_for_a_nonlinear_rule(trained_epoch, swarm, scorer):
    """The merge never reads validation rows, so the utility is a weighted row mean for any
    rule: the size-weighted sum of the validators' scores is the score of the size-weighted
    mix of their (class-balanced) utilities, a row-weighted utility on the pooled rows."""
    nodes, n = swarm.nodes[:3], len(trained_epoch["updates"])
    options = {"budget": 40} if scorer == "shapley_quadratic" else {}
    per_validator = [score(scorer, utility(trained_epoch, X_val=v.X_val, y_val=v.y_val, rule="fltrust_median"),
                           n, seed=9, **options) for v in nodes]
    pooled_rows = utility(trained_epoch, X_val=torch.cat([v.X_val for v in nodes]),
                          y_val=torch.cat([v.y_val for v in nodes]), rule="fltrust_median")
    mix = RowWeightedGame(pooled_rows, size_weighted_mix([v.y_val for v in nodes]))
    pooled = score(scorer, mix, n, seed=9, **options)
    sizes = [len(v.y_val) for v in nodes]
    combined = sum(m * phi for m, phi in zip(sizes, per_validator)) / sum(sizes)
    np.testing.assert_allclose(pooled, combined, rtol=1e-5, atol=1e-7)


def test_validator_utilities_give_each_validator_its_own_utility_at_the_cost_of_one(trained_epoch, swarm):
    nodes = swarm.nodes[:3]
    args = {k: trained_epoch[k] for k in ("model", "previous", "updates", "weights")}
    shared = ValidatorUtilities(**args, validators=[(v.X_val, v.y_val) for v in nodes])
    coalitions = ALL[:20]
    for game, v in zip(shared.games, nodes, strict=True):
        alone = utility(trained_epoch, X_val=v.X_val, y_val=v.y_val).evaluate_many(coalitions)
        np.testing.assert_allclose(game.evaluate_many(coalitions), alone, rtol=1e-6, atol=1e-7)
    assert shared.evaluations == 20
    with pytest.raises(ScoringInputError, match="validators is empty"):
        ValidatorUtilities(**args, validators=[])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("overrides", "message"), [
    ({"rule": "krum_magic"}, r"unknown merge rule 'krum_magic'; known: .*fltrust_median"),
    ({"rule": "fltrust", "anchor": 5}, r"anchor 5 is not an update index in \[0, 5\)"),
    ({"rule": "fltrust", "anchor": -1}, r"anchor -1 is not an update index"),
    ({"rule": "fltrust", "anchor": True}, r"anchor True is not an update index"),
    ({"rule": "fltrust"}, r"'fltrust' cannot merge these updates: fltrust: needs anchor="),
    ({"rule": "trimmed_mean", "options": {"beta": 0.7}}, r"beta must be in \[0, 0.5\)"),
    ({"rule": "weighted_mean", "options": {"gamma": 1}}, r"has no option 'gamma'"),
    ({"rule": "multi_krum", "options": {"f": 2}}, r"needs n > 2f \+ 2, got n=5 updates with f=2"),
    ({"absent": "ignored"}, r"absent must be one of \('previous', 'dropped', 'share'\)"),
])
def test_bad_merge_arguments_get_a_precise_error(float64_epoch, overrides, message):
    with pytest.raises(ScoringInputError, match=message):
        utility(float64_epoch, **overrides)


@pytest.mark.parametrize("rule, absent", [("fltrust_median", "share"), ("fltrust", "share"), ("mean", "share"),
                                          ("weighted_mean", "share"), ("median", "previous"),
                                          ("trimmed_mean", "previous"), ("multi_krum", "previous")])
def test_the_swarm_values_each_nodes_share_of_the_step_wherever_the_rule_has_shares(rule, absent):
    """The nodes and the simulator score the same game: "share" for a rule whose step is a
    combination of the updates, "previous" for the others (which would refuse "share")."""
    assert swarm_absent(rule) == absent
