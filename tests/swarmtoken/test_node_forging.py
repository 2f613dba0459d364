"""Every model attack a node can be configured with (``[node] attack``) can be mounted by
a real node from what it knows, in its first epoch and later: a rogue node whose attack
needed an input the node did not pass (``extrapolated`` needs the global model before
the current one) raised in every epoch and never committed."""

from __future__ import annotations

import pytest
import torch

from swarmtoken.node.commit import forge_update
from trainer.attacks import ATTACKS, is_data_attack, needs_own, needs_peers, needs_prior
from trainer.models import build_model

MODEL_ATTACKS = sorted(name for name in ATTACKS if not is_data_attack(name))


def _states(count: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    base = build_model("mlp", 4, 3, seed=0, hidden=(8,)).state_dict()
    return [{k: v + 0.1 * torch.randn(v.shape, generator=gen) for k, v in base.items()} for _ in range(count)]


@pytest.mark.parametrize("attack", MODEL_ATTACKS)
def test_every_model_attack_is_mounted_in_the_first_epoch_and_later(attack):
    prior, current, update, own, *peers = _states(7)
    first = forge_update(attack, update, epoch=1, global_state=current, prior_state=None, peer_round=None,
                         own_round=None, seed=1)
    later = forge_update(attack, update, epoch=2, global_state=current, prior_state=prior,
                         peer_round=(prior, peers), own_round=(prior, own), seed=1)
    for forged in (first, later):
        assert forged.keys() == update.keys()
        assert all(forged[k].shape == update[k].shape and torch.isfinite(forged[k]).all() for k in update)
    if needs_peers(attack):  # no peer updates known yet: the honest update
        assert all(torch.equal(first[k], update[k]) for k in update)
    if needs_prior(attack):  # the previous merged step is not known yet: a step of zero
        assert all(torch.equal(first[k], current[k]) for k in update)
    if needs_own(attack):  # nothing of its own to replay yet: the honest update
        assert all(torch.equal(first[k], update[k]) for k in update)


def test_extrapolated_replays_the_previous_merged_step():
    prior, current, update = _states(3)
    forged = forge_update("extrapolated", update, epoch=2, global_state=current, prior_state=prior, peer_round=None,
                          own_round=None, seed=1)
    assert all(torch.allclose(forged[k], 2 * current[k] - prior[k]) for k in update)


def test_replay_own_commits_its_last_step_again_on_the_current_model():
    """Trained from ``prior`` to ``own`` last time; now it commits current + (own - prior)."""
    prior, current, update, own = _states(4)
    forged = forge_update("replay_own", update, epoch=3, global_state=current, prior_state=None, peer_round=None,
                          own_round=(prior, own), seed=1)
    assert all(torch.allclose(forged[k], current[k] + own[k] - prior[k]) for k in update)
