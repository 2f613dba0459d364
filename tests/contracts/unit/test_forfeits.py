"""Forfeits: a participant that does not report, a leader that timed out and a removed node
earn nothing for the epoch; their share is carried to the next budget. An epoch whose every
candidate leader timed out is abandoned and its whole budget carried."""

import pytest
from brownie import ZERO_ADDRESS, chain

from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement

REWARD = 1000 * 10**18
SAMPLES = [100, 200, 1500, 50]
# One score vector per reporter, in the reporters' order; medians are all positive.
SCORES = [[300, 100, 50, 80], [310, 90, 40, 70], [290, 110, 60, 75], [305, 95, 45, 65]]


@pytest.fixture
def members(nodes, protocol):
    protocol.enroll(nodes[:4])
    return nodes[:4]


def open_report_phase(protocol, members):
    protocol.submit(members, SAMPLES)
    protocol.elect()
    protocol.publish()


def settle_and_check(swarm, protocol, members, participants, budget=REWARD):
    before = [swarm.claimable(node) for node in members]
    epoch = protocol.epoch
    tx = protocol.settle()
    expected = expected_settlement(budget, participants, protocol.reports.get(epoch, []), swarm.config())
    assert_settled_as_expected(tx, swarm, members, before, expected, budget)
    return tx, expected


def test_participant_that_does_not_report_forfeits_its_share(swarm, protocol, members):
    open_report_phase(protocol, members)
    for node, scores in zip(members[:3], SCORES):
        protocol.report(node, scores)
    chain.sleep(61)
    participants = [Participant(samples=s, reported=i < 3) for i, s in enumerate(SAMPLES)]
    tx, expected = settle_and_check(swarm, protocol, members, participants)

    assert expected.forfeited == (False, False, False, True)
    assert swarm.claimable(members[3]) == 0
    # What the silent node would have earned had it reported is in the carry.
    honest = expected_settlement(REWARD, [Participant(samples=s) for s in SAMPLES], protocol.reports[1], swarm.config())
    assert honest.payouts[3] > 0
    assert swarm.carry() == honest.carried + honest.payouts[3]

    # The carry is added to the next epoch's budget and paid out by the same rule.
    budget = REWARD + swarm.carry()
    assert tx.events["EpochOpened"]["budget"] == budget
    open_report_phase(protocol, members)
    for node, scores in zip(members, SCORES):
        protocol.report(node, scores)
    settle_and_check(swarm, protocol, members, [Participant(samples=s) for s in SAMPLES], budget)


def test_leader_that_timed_out_forfeits_even_if_it_reports(swarm, protocol, members):
    protocol.submit(members, SAMPLES)
    protocol.elect()
    timed_out = swarm.epochState(1)["leaderIndex"]
    chain.sleep(61)
    swarm.failover(1, {"from": members[0]})
    protocol.publish()
    for node, scores in zip(members, SCORES):
        protocol.report(node, scores)
    participants = [Participant(samples=s, skipped_leader=i == timed_out) for i, s in enumerate(SAMPLES)]
    _, expected = settle_and_check(swarm, protocol, members, participants)

    assert expected.forfeited[timed_out]
    assert swarm.claimable(members[timed_out]) == 0
    assert sum(expected.forfeited) == 1


@pytest.mark.parametrize("removed_after_reporting", [True, False])
def test_removed_node_forfeits_its_share(swarm, protocol, members, admin, removed_after_reporting):
    open_report_phase(protocol, members)
    removed = members[1]
    if not removed_after_reporting:
        swarm.removeNode(removed, {"from": admin})
    for node, scores in zip(members, SCORES):
        if node == removed and not removed_after_reporting:
            continue
        protocol.report(node, scores)
    if removed_after_reporting:
        swarm.removeNode(removed, {"from": admin})
    else:
        chain.sleep(61)
    participants = [
        Participant(samples=s, removed=i == 1, reported=removed_after_reporting or i != 1)
        for i, s in enumerate(SAMPLES)
    ]
    tx, _ = settle_and_check(swarm, protocol, members, participants)
    assert swarm.claimable(removed) == 0
    assert [e["forfeited"] for e in tx.events["ParticipantSettled"]] == [False, True, False, False]


def test_unpaid_participant_with_non_positive_score_is_not_a_forfeit(swarm, protocol, members):
    open_report_phase(protocol, members)
    scores = [[300, 0, 50, -80]] * 4
    for node, vector in zip(members, scores):
        protocol.report(node, vector)
    _, expected = settle_and_check(swarm, protocol, members, [Participant(samples=s) for s in SAMPLES])
    assert expected.payouts[1] == expected.payouts[3] == 0
    assert not any(expected.forfeited)


def test_epoch_is_abandoned_when_every_candidate_timed_out(swarm, protocol, members, outsider):
    committed = members[:3]
    protocol.submit(committed)
    protocol.elect()
    first = swarm.epochState(1)["leaderIndex"]
    skipped = []
    for _ in range(3):
        chain.sleep(61)
        tx = swarm.failover(1, {"from": outsider})
        skipped.append(tx.events["LeaderSkipped"]["skipped"])
    assert skipped == [committed[(first + k) % 3] for k in range(3)]

    last = tx.events["LeaderSkipped"]
    assert (last["next"], last["deadline"]) == (ZERO_ADDRESS, 0)
    assert tx.events["EpochAbandoned"]["epoch"] == 1
    assert tx.events["EpochAbandoned"]["carried"] == REWARD
    state = swarm.epochState(1)
    assert state["phase"] == 4  # Abandoned
    assert state["skipped"] == 0b111
    assert swarm.carry() == REWARD
    assert swarm.currentEpoch() == 2
    assert tx.events["EpochOpened"]["epoch"] == 2
    assert tx.events["EpochOpened"]["budget"] == 2 * REWARD
    with reverts_with("WrongEpoch", 1, 2):
        swarm.failover(1, {"from": outsider})

    # Nothing was minted; the next epoch pays out the doubled budget by the reference rule.
    open_report_phase(protocol, members)
    for node, scores in zip(members, SCORES):
        protocol.report(node, scores)
    settle_and_check(swarm, protocol, members, [Participant(samples=s) for s in SAMPLES], 2 * REWARD)
