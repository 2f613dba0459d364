"""Liveness: an epoch in which fewer than minPeers nodes committed within twice the commit
window can be abandoned by anyone (`abandonEpoch`); its budget is carried and the next
epoch opens, so no swarm waits forever for late nodes or for the admin. An epoch with
enough commits is never abandoned this way: it must be elected."""

import pytest
from brownie import chain

from tests.fixtures.deployments import commitment
from tests.fixtures.errors import reverts_with

COMMIT, MERGE, ABANDONED = 0, 1, 4
REWARD = 1000 * 10**18
WINDOW = 60  # TEST_CONFIG's commit window


@pytest.fixture
def members(nodes, protocol):
    protocol.enroll(nodes[:3])
    return nodes[:3]


def stalled_at(swarm, epoch=1):
    """The time after which the commit phase counts as stalled: deadline + commitWindow."""
    return swarm.epochState(epoch)["deadline"] + WINDOW


def test_epoch_is_not_abandoned_before_twice_the_commit_window(swarm, members, protocol, outsider):
    protocol.submit(members[:2])
    at = stalled_at(swarm)
    with reverts_with("EpochNotStalled", 1, at):
        swarm.abandonEpoch(1, {"from": outsider})
    protocol.close_commit()  # past the commit deadline, not yet past deadline + commitWindow
    assert chain.time() <= at
    with reverts_with("EpochNotStalled", 1, at):
        swarm.abandonEpoch(1, {"from": outsider})
    assert swarm.epochState(1)["phase"] == COMMIT


def test_anyone_abandons_an_epoch_short_of_min_peers_and_the_next_opens(swarm, members, protocol, outsider):
    protocol.submit(members[:2])  # minPeers is 3
    at = stalled_at(swarm)
    chain.sleep(2 * WINDOW + 1)
    tx = swarm.abandonEpoch(1, {"from": outsider})
    assert tx.timestamp > at
    abandoned = tx.events["EpochAbandoned"]
    assert (abandoned["epoch"], abandoned["carried"]) == (1, REWARD)
    assert swarm.epochState(1)["phase"] == ABANDONED
    assert swarm.carry() == REWARD
    opened = tx.events["EpochOpened"]
    assert (opened["epoch"], opened["budget"]) == (2, 2 * REWARD)
    assert opened["commitDeadline"] == tx.timestamp + WINDOW
    assert swarm.currentEpoch() == 2
    assert swarm.settledEpochs() == 0

    # The abandoned epoch takes nothing more; the next one runs and pays the carried budget.
    with reverts_with("WrongEpoch", 1, 2):
        swarm.submitUpdate(1, commitment(members[2], 1), 10, {"from": members[2]})
    tx = protocol.run_epoch(members, [10, 20, 30])
    assert tx.events["EpochSettled"]["budget"] == 2 * REWARD
    assert tx.events["EpochSettled"]["credited"] > REWARD


def test_epoch_without_any_commit_is_abandoned(swarm, members, outsider):
    chain.sleep(2 * WINDOW + 1)
    tx = swarm.abandonEpoch(1, {"from": outsider})
    assert tx.events["EpochAbandoned"]["carried"] == REWARD
    assert swarm.currentEpoch() == 2


def test_epoch_with_min_peers_commits_is_never_abandoned(swarm, members, protocol, outsider):
    protocol.submit(members)
    at = stalled_at(swarm)
    chain.sleep(10 * WINDOW)
    with reverts_with("EpochNotStalled", 1, at):
        swarm.abandonEpoch(1, {"from": outsider})
    protocol.elect()  # it can still be elected, however late
    assert swarm.epochState(1)["phase"] == MERGE


def test_epoch_past_its_commit_phase_is_not_abandoned_this_way(swarm, members, protocol, outsider):
    protocol.submit(members)
    protocol.elect()
    chain.sleep(10 * WINDOW)
    with reverts_with("WrongPhase", 1, MERGE, COMMIT):
        swarm.abandonEpoch(1, {"from": outsider})
