"""The in-process swarm simulator and its baselines."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from trainer.attacks import UnknownAttackError, rebase
from trainer.merges import UnknownRuleError
from trainer.models import build_model
from trainer.params import flatten
from trainer.ledger import Economy
from trainer.scoring import ScoringInputError, make_utility, score
from trainer.simulate import (Rogue, SimulationConfigError, centralized, derive_seed, elect_leader, local_only,
                              simulate)
from trainer.training import TrainConfig, train_local

simulate_module = importlib.import_module("trainer.simulate")  # `trainer.simulate` is also the function
FAST = TrainConfig(lr=0.05, batch_size=16, steps=4)


def _run(split, **kwargs):
    options = dict(merge="mean", scorer="exact_shapley", train=FAST, seed=0, model_options={"hidden": (8,)})
    options.update(kwargs)
    return simulate(split, len(split.nodes), options.pop("epochs", 3), **options)


def test_swarm_learns_and_records_every_epoch(wine_split):
    result = _run(wine_split, epochs=4)
    assert [r.epoch for r in result.epochs] == [0, 1, 2, 3]
    assert result.final.accuracy > 0.85
    assert all(0 <= r.leader < 4 and r.scores.shape == (4,) and r.evaluations > 0 for r in result.epochs)
    assert result.accumulated_scores().shape == (4,)
    assert result.n_train == [node.n_train for node in wine_split.nodes]
    assert set(result.final_state) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    summary = result.as_dict()
    assert len(summary["epochs"]) == 4 and summary["rogue_ids"] == []


def test_simulation_is_bit_deterministic(wine_split):
    one, two = _run(wine_split), _run(wine_split)
    assert all(torch.equal(one.final_state[k], two.final_state[k]) for k in one.final_state)
    assert all(np.array_equal(a.scores, b.scores) and a.leader == b.leader for a, b in zip(one.epochs, two.epochs))
    other = _run(wine_split, seed=1)
    assert not all(torch.equal(one.final_state[k], other.final_state[k]) for k in one.final_state)


def test_leader_is_drawn_among_all_nodes_with_the_epoch_seed(wine_split):
    result = _run(wine_split, epochs=8, scorer=None)
    leaders = [r.leader for r in result.epochs]
    assert leaders == [int(np.random.default_rng(derive_seed(0, "epoch", e)).integers(4)) for e in range(8)]
    assert len(set(leaders)) > 1


def test_rogues_are_drawn_by_fraction_or_given(wine_split):
    drawn = _run(wine_split, scorer=None, epochs=1, attack="sign_flip", rogue_fraction=0.25)
    assert len(drawn.rogue_ids) == 1 and drawn.honest_ids == sorted(set(range(4)) - set(drawn.rogue_ids))
    given = _run(wine_split, scorer=None, epochs=1, attack="sign_flip", rogue_ids=[3, 1])
    assert given.rogue_ids == [1, 3]


def test_model_attack_changes_the_merge(wine_split):
    clean = _run(wine_split, scorer=None, epochs=2)
    # (the sign-balance check off: on this 139-parameter model it rejects the noise)
    attacked = _run(wine_split, scorer=None, epochs=2, attack="gaussian_noise", rogue_ids=[0],
                    attack_options={"sigma": 5.0}, sign_balance=None)
    assert attacked.final.loss > 2 * clean.final.loss
    assert attacked.epochs[0].test.loss > 2 * clean.epochs[0].test.loss


def test_free_riders_commit_the_previous_model(wine_split):
    # Three of four nodes send the global model back: the coordinate-wise median is that model.
    result = _run(wine_split, scorer=None, epochs=2, merge="median", attack="free_rider", rogue_ids=[0, 1, 2])
    initial = build_model("mlp", 13, 3, seed=0, hidden=(8,)).state_dict()
    assert all(torch.equal(result.final_state[k], initial[k]) for k in initial)


def test_label_flip_poisons_the_rogue_training_data(wine_split):
    clean = _run(wine_split, scorer=None, epochs=3, merge="mean")
    flipped = _run(wine_split, scorer=None, epochs=3, merge="mean", attack="label_flip", rogue_ids=[0, 1, 2])
    assert flipped.final.accuracy < clean.final.accuracy - 0.3


def test_scores_use_honest_validators_and_reward_honest_over_sign_flip(wine_split):
    result = _run(wine_split, epochs=3, attack="sign_flip", rogue_ids=[2])
    totals = result.accumulated_scores()
    assert totals[2] < min(totals[i] for i in (0, 1, 3))


def test_median_validation_is_the_median_of_per_validator_scores(wine_split):
    # With one honest validator the median over validators is that validator's score,
    # which is also the union's.
    lone = dict(epochs=2, attack="free_rider", rogue_ids=[0, 1, 2])
    union, median = _run(wine_split, **lone), _run(wine_split, validation="median", **lone)
    assert all(np.array_equal(a.scores, b.scores) for a, b in zip(union.epochs, median.epochs))
    # With four validators each scores on its own rows (one shared pass: same evaluations).
    union, median = _run(wine_split, epochs=1), _run(wine_split, epochs=1, validation="median")
    assert median.epochs[0].evaluations == union.epochs[0].evaluations == 2**4
    per_validator = union.epochs[0].validator_scores
    np.testing.assert_array_equal(median.epochs[0].scores, np.median(per_validator, axis=0))
    sizes = np.array([len(node.y_val) for node in wine_split.nodes], dtype=float)
    np.testing.assert_allclose(union.epochs[0].scores, sizes @ per_validator / sizes.sum(), rtol=1e-12)
    assert not np.allclose(median.epochs[0].scores, union.epochs[0].scores)


def test_every_validator_scores_on_its_own_rows(wine_split):
    """Validator v's row is the Shapley value of the merge valued on v's rows alone."""
    result = _run(wine_split, epochs=1)
    record = result.epochs[0]
    model = build_model("mlp", 13, 3, seed=0, hidden=(8,))
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    updates = []
    for i, node in enumerate(wine_split.nodes):
        model.load_state_dict(previous)
        train_local(model, node.X_train, node.y_train, FAST, derive_seed(0, "train", 0, i))
        updates.append({k: v.clone() for k, v in model.state_dict().items()})
    for v, node in enumerate(wine_split.nodes):
        utility = make_utility(model, previous, updates, result.n_train, node.X_val, node.y_val, rule="mean",
                               anchor=record.leader)
        np.testing.assert_allclose(record.validator_scores[v], score("exact_shapley", utility, 4,
                                                                     seed=derive_seed(0, "epoch", 0)),
                                   rtol=1e-5, atol=1e-9)  # float32 forward passes over other row batches


def _spy_attacks(monkeypatch):
    """Record every apply_attack call the simulator makes: (previous, peers, forged)."""
    calls = []
    real = simulate_module.apply_attack

    def spy(name, honest, *, previous, peers, seed, **options):
        forged = real(name, honest, previous=previous, peers=peers, seed=seed, **options)
        calls.append({"previous": previous, "peers": list(peers), "honest": honest, "forged": forged})
        return forged

    monkeypatch.setattr(simulate_module, "apply_attack", spy)
    return calls


def _same_state(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_previous_view_commits_the_honest_update_in_epoch_0(wine_split):
    # With nothing to learn from in epoch 0, the ALIE rogue trains and commits honestly:
    # the mean merge then gives exactly the clean swarm's model; the omniscient rogue does not.
    clean = _run(wine_split, scorer=None, epochs=1)
    previous = _run(wine_split, scorer=None, epochs=1, attack="alie", rogue_ids=[0])
    current = _run(wine_split, scorer=None, epochs=1, attack="alie", rogue_ids=[0], attack_view="current")
    assert _same_state(previous.final_state, clean.final_state)
    assert not _same_state(current.final_state, clean.final_state)


def test_attack_views_give_alie_the_right_peers(wine_split, monkeypatch):
    calls = _spy_attacks(monkeypatch)
    _run(wine_split, scorer=None, epochs=2, attack="alie", rogue_ids=[0], attack_view="current")
    current = list(calls)
    calls.clear()
    previous_run = _run(wine_split, scorer=None, epochs=2, attack="alie", rogue_ids=[0])
    # "current": both epochs attacked with the epoch's own 3 honest updates.
    assert len(current) == 2 and all(len(c["peers"]) == 3 for c in current)
    assert all(c["honest"] is not p for c in current for p in c["peers"])
    # "previous": epoch 0 not attacked; epoch 1 sees epoch 0's honest updates (identical in
    # both runs, as epoch 0 trains from the same model) rebased onto theta_1.
    assert len(calls) == 1
    theta_0, epoch_0_honest = current[0]["previous"], current[0]["peers"]
    theta_1 = calls[0]["previous"]
    assert not _same_state(theta_1, theta_0)
    expected = rebase(epoch_0_honest, theta_0, theta_1)
    assert all(_same_state(got, want) for got, want in zip(calls[0]["peers"], expected, strict=True))
    # ... which are not the current epoch's: the forged update and the run differ.
    assert not _same_state(calls[0]["forged"], current[1]["forged"])
    omniscient = _run(wine_split, scorer=None, epochs=2, attack="alie", rogue_ids=[0], attack_view="current")
    assert not _same_state(previous_run.final_state, omniscient.final_state)


def test_a_replay_own_rogue_commits_its_first_step_again_every_epoch_after(wine_split, monkeypatch):
    calls = _spy_attacks(monkeypatch)
    _run(wine_split, scorer=None, epochs=3, rogues=[Rogue(1, "replay_own")])
    assert len(calls) == 2  # epoch 0: nothing of its own to replay, so it trains and commits honestly
    steps = [flatten(c["forged"]) - flatten(c["previous"]) for c in calls]
    assert torch.allclose(steps[0], steps[1])  # the same step, carried onto each new global model
    assert not torch.allclose(steps[1], flatten(calls[1]["honest"]) - flatten(calls[1]["previous"]))


def test_previous_view_is_deterministic_and_leaves_peerless_attacks_alone(wine_split):
    one = _run(wine_split, epochs=3, attack="alie", rogue_ids=[1])
    two = _run(wine_split, epochs=3, attack="alie", rogue_ids=[1])
    assert _same_state(one.final_state, two.final_state)
    assert all(np.array_equal(a.scores, b.scores) for a, b in zip(one.epochs, two.epochs))
    # sign_flip reads no peers: both views attack every epoch identically.
    views = [_run(wine_split, scorer=None, epochs=2, attack="sign_flip", rogue_ids=[1], attack_view=view)
             for view in ("previous", "current")]
    assert _same_state(views[0].final_state, views[1].final_state)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"attack": None, "rogue_ids": [1]}, SimulationConfigError, "rogue nodes \\[1\\] need an attack"),
    ({"attack": "sign_flip", "rogue_fraction": 1.0}, SimulationConfigError, "rogue_fraction must be in"),
    ({"attack": "sign_flip", "rogue_ids": [4]}, SimulationConfigError, "rogue_ids \\[4\\] must lie in"),
    ({"attack": "sign_flip", "rogue_ids": [0, 1, 2, 3]}, SimulationConfigError, "at least one honest node"),
    ({"attack": "teleport"}, UnknownAttackError, "unknown attack 'teleport'"),
    ({"epochs": 0}, SimulationConfigError, "epochs >= 1"),
    ({"validation": "mean"}, SimulationConfigError, "validation must be one of"),
    ({"attack_view": "next"}, SimulationConfigError, "attack_view must be one of"),
    ({"merge": "mode"}, UnknownRuleError, "mode"),
    ({"merge": "median", "public_steps": True}, SimulationConfigError, "public_steps needs absent='share'"),
    ({"absent": "previous", "public_steps": True}, SimulationConfigError, "got absent='previous'"),
])
def test_bad_simulation_arguments_are_named(wine_split, kwargs, error, message):
    with pytest.raises(error, match=message):
        _run(wine_split, scorer=None, **kwargs)


def test_split_node_count_must_match(wine_split):
    with pytest.raises(SimulationConfigError, match="n_nodes=3 but the given split has 4 nodes"):
        simulate(wine_split, 3, 1, scorer=None)


def test_no_scores_without_a_scorer(wine_split):
    with pytest.raises(SimulationConfigError, match="scorer=None"):
        _run(wine_split, scorer=None, epochs=1).accumulated_scores()


def test_simulate_accepts_a_dataset_name():
    result = simulate("wine", 3, 1, merge="mean", scorer=None, train=FAST, partition="iid",
                      model_options={"hidden": (4,)})
    assert len(result.n_train) == 3 and sum(result.n_train) > 80


def test_baselines_train_on_the_same_split(wine_split):
    local = local_only(wine_split, epochs=3, train=FAST, seed=0, model_options={"hidden": (8,)})
    central = centralized(wine_split, epochs=3, train=FAST, seed=0, model_options={"hidden": (8,)})
    assert len(local) == 4 and all(0 <= m.accuracy <= 1 for m in local)
    assert central.accuracy > 0.85
    again = local_only(wine_split, epochs=3, train=FAST, seed=0, model_options={"hidden": (8,)})
    assert [m.loss for m in local] == [m.loss for m in again]


# --------------------------------------------------------------------------- the money


def test_every_epoch_is_settled_by_the_reference_rule(wine_split):
    """The payouts are swarmtoken.rewards.settle's on the integer reports the validators sent."""
    from swarmtoken.rewards import Participant, Report, settle
    from trainer.ledger import address

    result = _run(wine_split, epochs=3)
    economy = result.economy
    carry = 0
    smoothed = [0] * 4
    for record in result.epochs:
        money = record.money
        assert money.participants == money.reporters == (0, 1, 2, 3)
        expected = settle(economy.budget + carry,
                          [Participant(samples=result.n_train[i], node=address(i), smoothed=smoothed[i],
                                       leader=i == record.leader) for i in range(4)],
                          [Report(metric=0, scores=vector, valid=0b1111, reporter=address(r))
                           for r, vector in zip(money.reporters, money.reports)],
                          rule=economy.rule, commits=4, participants_bitmap=0b1111)
        assert money.payouts == expected.payouts and money.smoothed == expected.smoothed
        # the integer reports are the computed scores, clipped and scaled as a node sends them
        assert money.reports[1] == tuple(round(float(v) * 10**9) for v in record.validator_scores[1])
        carry, smoothed = expected.carried, list(expected.smoothed)
    assert sum(map(sum, result.payouts())) + carry == 3 * economy.budget
    assert result.total_payouts() == [sum(column) for column in zip(*result.payouts())]
    assert all(total > 0 for total in result.total_payouts())


def test_money_is_deterministic_and_can_be_switched_off(wine_split):
    one, two = _run(wine_split, epochs=2), _run(wine_split, epochs=2)
    assert one.payouts() == two.payouts()
    with pytest.raises(SimulationConfigError, match="without money"):
        _run(wine_split, epochs=1, economy=None).payouts()


def test_each_rogue_runs_its_own_attack(wine_split, monkeypatch):
    calls = _spy_attacks(monkeypatch)
    result = _run(wine_split, epochs=1, rogues=[Rogue(3, "scaled", {"scale": 2.0}), Rogue(1, "sign_flip")])
    assert result.rogue_ids == [1, 3] and [r.attack for r in result.rogues] == ["sign_flip", "scaled"]
    assert len(calls) == 2
    for call in calls:
        step = {k: call["forged"][k] - call["previous"][k] for k in call["forged"]}
        honest = {k: call["honest"][k] - call["previous"][k] for k in call["honest"]}
        ratio = float((step["0.bias"] / honest["0.bias"]).mean())
        assert ratio == pytest.approx(-1.0, abs=1e-5) or ratio == pytest.approx(2.0, abs=1e-5)


def test_a_lying_validator_reports_plus_one_for_itself_and_minus_one_for_the_others(wine_split):
    result = _run(wine_split, epochs=2, rogues=[Rogue(2, report="lying")])
    for record in result.epochs:
        lie = record.money.reports[record.money.reporters.index(2)]
        assert lie == (-10**9, -10**9, 10**9, -10**9)
    # Reports never feed back into the model: replaying the honest run with the liar gives
    # exactly this run's money.
    honest = _run(wine_split, epochs=2)
    assert all(torch.equal(honest.final_state[k], result.final_state[k]) for k in honest.final_state)
    replayed = honest.replay({2: "lying"})
    assert replayed.diverged is None and replayed.totals() == result.total_payouts()
    assert honest.replay({}).totals() == honest.total_payouts()


def test_a_suspended_node_stops_taking_part(wine_split):
    # The sign-balance check off: the reversed step must be merged and scored to earn strikes
    # (on wine's small model the honest steps share a sign bias, so its reverse is one-sided).
    result = _run(wine_split, epochs=4, rogues=[Rogue(0, "sign_flip", {"scale": 5.0})],
                  economy=Economy(suspend_after=1), sign_balance=None)
    first = result.epochs[0].money
    assert first.smoothed[0] <= 0 and first.suspended[0] and first.strikes[0] == 1
    assert result.suspended() == [0]
    for record in result.epochs[1:]:
        assert 0 not in record.participants and 0 not in record.reporters
        assert record.money.payouts[0] == 0 and 0 <= record.leader != 0
    never = _run(wine_split, epochs=4, rogues=[Rogue(0, "sign_flip", {"scale": 5.0})],
                 economy=Economy(suspend_after=0), sign_balance=None)
    assert never.suspended() == [] and all(0 in r.participants for r in never.epochs)


def test_an_extrapolated_copy_of_the_last_merged_step_is_rejected_and_unpaid(wine_split):
    result = _run(wine_split, epochs=3, rogues=[Rogue(1, "extrapolated", {"c": 1.0})])
    # Epoch 0 has no previous step: the copy is the global model (a free rider, worth 0).
    assert result.epochs[0].participants == (0, 1, 2, 3) and result.epochs[0].scores[1] == 0
    for record in result.epochs[1:]:
        assert record.rejected == (1,) and 1 not in record.participants
        assert record.step_cosines[1] == pytest.approx(1.0) and max(
            record.step_cosines[i] for i in (0, 2, 3)) < 0.95
    assert result.total_payouts()[1] == 0
    unchecked = _run(wine_split, epochs=3, rogues=[Rogue(1, "extrapolated")], copy_cosine=None)
    assert all(r.rejected == () for r in unchecked.epochs)


def test_public_steps_value_a_disguised_copy_for_its_noise_only(wine_split):
    """A copy of the last merged step disguised to cosine 0.9 passes the copy check and is
    valued as merged; with public steps it is valued for what it adds to them, its noise."""
    rogue = [Rogue(1, "extrapolated", {"c": 1.0, "cosine": 0.9})]
    plain = _run(wine_split, epochs=3, merge="fltrust_median", rogues=rogue)
    public = _run(wine_split, epochs=3, merge="fltrust_median", rogues=rogue, public_steps=True)
    for a, b in zip(plain.epochs[1:], public.epochs[1:], strict=True):
        assert a.rejected == b.rejected == () and a.participants == b.participants == (0, 1, 2, 3)
        assert a.step_cosines[1] == pytest.approx(0.9)
        assert a.scores[1] > 0.5 * max(a.scores[i] for i in (0, 2, 3))  # the copy has merged value
        assert b.scores[1] < min(b.scores[i] for i in (0, 2, 3))  # its noise is worth less than any honest step
    # nothing changes in epoch 0 (no public steps yet) nor in the model
    assert np.array_equal(plain.epochs[0].scores, public.epochs[0].scores)
    assert [r.test for r in plain.epochs] == [r.test for r in public.epochs]


def test_a_one_sided_alie_update_is_rejected_and_unpaid_once_it_has_peers(wine_split):
    """ALIE (mean - z * std of the previous epoch's honest steps) is one-sided: rejected from
    epoch 1 on (in epoch 0 it has no peers and commits its honest update, which is merged);
    the honest steps stay balanced. With the check off it is merged every epoch."""
    result = _run(wine_split, epochs=3, rogues=[Rogue(1, "alie", {"z": 1.0})])
    assert result.epochs[0].participants == (0, 1, 2, 3)
    for record in result.epochs[1:]:
        assert record.rejected == (1,) and 1 not in record.participants
        assert record.balance_deviations[1] >= 0.3 and max(record.balance_deviations[i] for i in (0, 2, 3)) < 0.3
        assert record.money.payouts[1] == 0
    unchecked = _run(wine_split, epochs=3, rogues=[Rogue(1, "alie", {"z": 1.0})], sign_balance=None)
    assert all(r.rejected == () for r in unchecked.epochs)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"rogues": [Rogue(1, "sign_flip")], "attack": "sign_flip"}, SimulationConfigError, "not both"),
    ({"rogues": [Rogue(1, "sign_flip"), Rogue(1, "scaled")]}, SimulationConfigError, "name a node twice"),
    ({"rogues": [Rogue(4, "sign_flip")]}, SimulationConfigError, "rogue node 4 must lie in"),
    ({"rogues": [Rogue(1)]}, SimulationConfigError, "neither an attack nor a report attack"),
    ({"rogues": [Rogue(1, report="flattering")]}, SimulationConfigError, "unknown report attack 'flattering'"),
    ({"rogues": [Rogue(1, "teleport")]}, UnknownAttackError, "unknown attack 'teleport'"),
    ({"copy_cosine": 1.5}, SimulationConfigError, "copy_cosine must be in"),
    ({"copy_sine_ratio": -1.0}, SimulationConfigError, "copy_sine_ratio must be >= 0"),
    ({"sign_balance": 0.0}, SimulationConfigError, "sign_balance must be in"),
    ({"sign_balance": 2.5}, SimulationConfigError, "sign_balance must be in"),
])
def test_bad_rogue_and_money_arguments_are_named(wine_split, kwargs, error, message):
    with pytest.raises(error, match=message):
        _run(wine_split, epochs=1, **kwargs)


def test_the_default_utility_pays_each_node_its_part_of_the_merged_step(wine_split):
    """absent="share": an update the merge gives no trust (reversed) scores exactly 0 with
    every validator; a rule whose step is no combination of the updates is scored with
    "previous" by default (as the nodes do) and refuses "share"."""
    # (the sign-balance check off, so that the reversed update is merged and scored)
    result = _run(wine_split, epochs=2, merge="fltrust_median", rogues=[Rogue(2, "sign_flip")], sign_balance=None)
    for record in result.epochs:
        assert (record.validator_scores[:, 2] == 0).all() and (record.validator_scores[:, [0, 1, 3]] != 0).all()
    previous = _run(wine_split, epochs=1, merge="fltrust_median", rogues=[Rogue(2, "sign_flip")], absent="previous",
                    sign_balance=None)
    assert (previous.epochs[0].validator_scores[:, 2] != 0).any()
    with pytest.raises(ScoringInputError, match="absent='share' needs a rule"):
        _run(wine_split, epochs=1, merge="median", absent="share")
    assert _run(wine_split, epochs=1, merge="median").epochs[0].scores is not None


def _drawn(seed: int, epoch: int, n: int) -> int:
    return int(np.random.default_rng(derive_seed(seed, "epoch", epoch)).integers(n))


def test_leadership_fails_over_past_a_leader_whose_update_was_rejected():
    seed = derive_seed(3, "epoch", 3)
    assert _drawn(3, 3, 4) == 1
    assert elect_leader([0, 1, 2, 3], [0, 1, 2, 3], seed) == 1
    assert elect_leader([0, 1, 2, 3], [0, 2, 3], seed) == 2
    assert elect_leader([0, 1, 2, 3], [0, 3], seed) == 3
    assert elect_leader([0, 1, 2, 3], [0], seed) == 0  # cyclic, in commit order
    assert elect_leader([0, 1, 2, 3], [], seed) == 1  # nothing to merge: the drawn node stays


def test_an_anchored_merge_is_led_by_a_valid_update_when_the_drawn_leader_forged(wine_split):
    """fltrust anchors the merge on the leader's update: a drawn leader whose copy was
    rejected hands over to the next valid committer instead of leaving the merge unanchored."""
    assert _drawn(3, 3, 4) == 1
    result = _run(wine_split, epochs=4, seed=3, merge="fltrust", rogues=[Rogue(1, "extrapolated")], economy=None)
    assert result.epochs[3].rejected == (1,) and result.epochs[3].leader == 2
    assert all(record.leader in record.participants for record in result.epochs)
