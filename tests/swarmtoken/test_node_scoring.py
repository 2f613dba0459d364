"""What a node merges and what its contribution scorer values, chain-free: both take the
updates in canonical order with the leader as anchor, and the utility of all participants
is the very model the swarm merged (not a weighted mean of the raw updates)."""

from __future__ import annotations

import pytest
import torch

from swarmtoken.chain.ledger import CommitRecord
from swarmtoken.node.merging import contribution_utility, invalid_steps, merge_inputs, merge_updates
from trainer.models import build_model
from trainer.scoring import make_utility
from tests.trainer.modules import balanced_neg_gce

NODES = ["0xCC" + "0" * 38, "0xaa" + "0" * 38, "0xBb" + "0" * 38, "0xdd" + "0" * 38]


def commits() -> list[CommitRecord]:
    """Four commitments in commit order; declared counts above what counts (the allowance)."""
    return [CommitRecord(i, node, "ab" * 32, 10 * (i + 1) + 5, 10 * (i + 1)) for i, node in enumerate(NODES)]


@pytest.fixture(scope="module")
def epoch() -> dict:
    """A small MLP, four updates along one direction (the third scaled by 10) and
    validation rows."""
    gen = torch.Generator().manual_seed(0)
    model = build_model("mlp", 4, 3, seed=0, hidden=(8,)).double().eval()
    previous = {k: v.clone() for k, v in model.state_dict().items()}
    step = {k: 0.3 * torch.randn(v.shape, generator=gen, dtype=v.dtype) for k, v in previous.items()}
    updates = {i: {k: v + scale * step[k] + 0.05 * torch.randn(v.shape, generator=gen, dtype=v.dtype)
                   for k, v in previous.items()} for i, scale in enumerate((1.0, 0.8, 10.0, 1.2))}
    X = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (30,), generator=gen)
    return dict(model=model, previous=previous, updates=updates, X=X, y=y)


def performance(epoch: dict, state: dict) -> float:
    epoch["model"].load_state_dict(state)
    with torch.no_grad():
        return balanced_neg_gce(epoch["model"](epoch["X"]), epoch["y"])


def test_updates_are_ordered_by_address_with_the_leader_as_anchor(epoch):
    inputs = merge_inputs(commits(), epoch["updates"], leader=NODES[3].upper().replace("0X", "0x"))
    assert [c.node for c in inputs.commits] == [NODES[1], NODES[2], NODES[0], NODES[3]]
    assert inputs.weights == [20, 30, 10, 40]  # the allowance-capped counts, not the declared ones
    assert inputs.updates[0] is epoch["updates"][1]
    assert inputs.anchor == 3


def test_no_anchor_when_the_leaders_update_is_not_among_the_merged(epoch):
    assert merge_inputs(commits()[:3], epoch["updates"], leader=NODES[3]).anchor is None
    assert merge_inputs(commits(), epoch["updates"], leader=None).anchor is None


@pytest.mark.parametrize("rule", ["fltrust_median", "fltrust", "median"])
def test_the_utility_of_everyone_is_the_merged_model(epoch, rule):
    inputs = merge_inputs(commits(), epoch["updates"], leader=NODES[2])
    utility = contribution_utility(epoch["model"], rule, inputs, epoch["previous"], epoch["X"], epoch["y"])
    everyone = frozenset(range(len(NODES)))
    merged = merge_updates(rule, inputs, epoch["previous"])
    assert utility(everyone) == pytest.approx(performance(epoch, merged), abs=1e-9)
    assert utility(frozenset()) == pytest.approx(performance(epoch, epoch["previous"]), abs=1e-9)


def test_a_scaled_update_is_valued_as_the_rule_merges_it_not_as_a_weighted_mean(epoch):
    """Under fltrust_median the 10x update is rescaled, so the swarm's utility of everyone
    differs from the weighted-mean valuation the scorer used before."""
    inputs = merge_inputs(commits(), epoch["updates"], leader=NODES[1])
    everyone = frozenset(range(len(NODES)))
    swarm = contribution_utility(epoch["model"], "fltrust_median", inputs, epoch["previous"], epoch["X"], epoch["y"])
    mean = make_utility(epoch["model"], epoch["previous"], inputs.updates, inputs.weights, epoch["X"], epoch["y"],
                        rule="weighted_mean")
    assert abs(swarm(everyone) - mean(everyone)) > 1e-3


def test_an_update_that_repeats_the_previous_merged_step_is_a_copy(epoch):
    """The global model moved by ``step`` last epoch: an update that moves it the same way
    again (scaled, with a little noise) is a copy; the honest updates, trained in other
    directions, are not; without the model before the global one nothing is judged."""
    previous, updates = epoch["previous"], epoch["updates"]
    gen = torch.Generator().manual_seed(1)
    prior = {k: v - 0.2 * torch.randn(v.shape, generator=gen, dtype=v.dtype) for k, v in previous.items()}
    last_step = {k: previous[k] - prior[k] for k in previous}
    forged = {k: v + 0.5 * last_step[k] + 1e-3 * torch.randn(v.shape, generator=gen, dtype=v.dtype)
              for k, v in previous.items()}
    copies = invalid_steps({**updates, 7: forged}, previous, prior)
    assert list(copies) == [7] and copies[7][0] == "copy" and copies[7][1] > 0.95
    assert invalid_steps({**updates, 7: forged}, previous, None) == {}


def test_a_step_pushed_one_way_is_rejected_whatever_the_prior(epoch):
    """ALIE's ``mean - z * std`` of the honest steps: the standard deviation is positive in
    every coordinate, so the step leans one way; the honest steps do not."""
    previous, updates = epoch["previous"], epoch["updates"]
    steps = [{k: u[k] - previous[k] for k in previous} for u in updates.values()]
    mean = {k: torch.stack([s[k] for s in steps]).mean(0) for k in previous}
    spread = {k: torch.stack([s[k] for s in steps]).std(0) for k in previous}
    alie = {k: previous[k] + mean[k] - 1.0 * spread[k] for k in previous}
    for prior in (None, previous):
        rejected = invalid_steps({**updates, 7: alie}, previous, prior)
        assert list(rejected) == [7] and rejected[7][0] == "one-sided" and rejected[7][1] >= 0.3
    assert invalid_steps(updates, previous, None) == {}
