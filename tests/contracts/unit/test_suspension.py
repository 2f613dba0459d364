"""Automatic suspension after `suspendAfter` strikes (2 in the test config): a strike for each
quorate epoch after which the member's smoothed score (moved by that epoch's score) is
non-positive (or a leader fault), reset by a quorate epoch that leaves it positive. Evidence
accumulates: one bad epoch does not strike a member whose smoothed score stays positive.
Leaving does not dodge a suspension; only authorising the node again lifts it."""

from tests.fixtures.deployments import ALLOWANCE, Protocol, commitment
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement

ACTIVE, NONE, SUSPENDED = 1, 0, 2


def test_node_with_consecutive_non_positive_scores_is_suspended(swarm, protocol, admin, nodes):
    members = nodes[:4]
    laggard = members[3]
    protocol.enroll(members)
    tx = protocol.run_epoch(members, [10, 20, 30, -5])
    assert "NodeSuspended" not in tx.events
    assert swarm.memberOf(laggard)["strikes"] == 1
    assert swarm.memberOf(laggard)["status"] == ACTIVE

    tx = protocol.run_epoch(members, [10, 20, 30, 0])
    event = tx.events["NodeSuspended"]
    assert (event["account"], event["epoch"], event["strikes"]) == (laggard, 2, 2)
    assert swarm.memberOf(laggard)["status"] == SUSPENDED
    assert swarm.activeCount() == 3
    for node in members[:3]:
        assert swarm.memberOf(node)["strikes"] == 0

    epoch = swarm.currentEpoch()
    with reverts_with("NotActive", laggard, SUSPENDED):
        swarm.submitUpdate(epoch, commitment(laggard, epoch), 10, {"from": laggard})
    with reverts_with("NotActive", laggard, SUSPENDED):
        swarm.enroll("http://again", {"from": laggard})

    # The admin authorises it again: the suspension and its strikes are lifted.
    swarm.authorize(laggard, 0, ALLOWANCE, {"from": admin})
    member = swarm.memberOf(laggard)
    assert (member["status"], member["strikes"]) == (NONE, 0)
    swarm.enroll("http://again", {"from": laggard})
    assert swarm.activeCount() == 4
    swarm.submitUpdate(epoch, commitment(laggard, epoch), 10, {"from": laggard})


def test_positive_score_resets_the_strikes(swarm, protocol, nodes):
    """A score that lifts the smoothed score above zero resets the strikes; the next epoch
    that takes it to zero or below strikes again (from one)."""
    members = nodes[:3]
    protocol.enroll(members)
    smoothed, strikes = [], []
    for score in [-10, 30, -40]:
        tx = protocol.run_epoch(members, [10, 20, score])
        assert "NodeSuspended" not in tx.events
        member = swarm.memberOf(members[2])
        smoothed.append(member["smoothedScore"])
        strikes.append(member["strikes"])
    # (0 - 10) / 2, (-5 + 30) / 2, (12 - 40) / 2, each truncated toward zero
    assert smoothed == [-5, 12, -14]
    assert strikes == [1, 0, 1]
    assert swarm.memberOf(members[2])["status"] == ACTIVE


def test_suspension_is_off_when_suspend_after_is_zero(create_swarm, admin, nodes):
    swarm, _ = create_swarm(suspend_after=0)
    protocol = Protocol(swarm, admin)
    members = nodes[:3]
    protocol.enroll(members)
    for _ in range(3):
        tx = protocol.run_epoch(members, [10, 20, -7])
        assert "NodeSuspended" not in tx.events
    member = swarm.memberOf(members[2])
    assert (member["status"], member["strikes"]) == (ACTIVE, 3)


def test_leaving_does_not_dodge_a_suspension(swarm, protocol, admin, nodes):
    """A member that commits and then leaves still takes the strikes of its non-positive
    smoothed scores; at suspendAfter it becomes Suspended (not merely gone), and it cannot enrol
    again until the admin authorises it."""
    members = nodes[:4]
    dodger = members[3]
    protocol.enroll(members)
    for epoch, score, smoothed in [(1, -5, -2), (2, 0, -1)]:
        protocol.submit(members)
        swarm.leave({"from": dodger})
        assert swarm.memberOf(dodger)["status"] == NONE
        assert swarm.activeCount() == 3
        protocol.elect()
        protocol.publish()
        for node in members:
            protocol.report(node, [10, 20, 30, score])
        tx = protocol.settle()
        assert tx.events["EpochSettled"]["quorate"]
        settled = tx.events["ParticipantSettled"][3]
        assert (settled["score"], settled["smoothedScore"]) == (score, smoothed)
        assert swarm.memberOf(dodger)["smoothedScore"] == smoothed
        if epoch == 1:
            assert "NodeSuspended" not in tx.events
            assert (swarm.memberOf(dodger)["status"], swarm.memberOf(dodger)["strikes"]) == (NONE, 1)
            swarm.enroll("http://back", {"from": dodger})  # strikes survive a re-enrolment

    event = tx.events["NodeSuspended"]
    assert (event["account"], event["epoch"], event["strikes"]) == (dodger, 2, 2)
    assert swarm.memberOf(dodger)["status"] == SUSPENDED
    assert swarm.activeCount() == 3  # its seat was already free
    with reverts_with("NotActive", dodger, SUSPENDED):
        swarm.enroll("http://again", {"from": dodger})

    swarm.authorize(dodger, 0, ALLOWANCE, {"from": admin})
    assert (swarm.memberOf(dodger)["status"], swarm.memberOf(dodger)["strikes"]) == (NONE, 0)
    swarm.enroll("http://again", {"from": dodger})
    assert swarm.memberOf(dodger)["status"] == ACTIVE


def run_checked(swarm, protocol, members, scores):
    """One epoch in which every member reports ``scores``, held to the reference rule."""
    budget = swarm.config()["rewardPerEpoch"] + swarm.carry()
    before = [swarm.claimable(node) for node in members]
    epoch = protocol.epoch
    tx = protocol.run_epoch(members, scores)
    expected = expected_settlement(budget, [Participant(samples=100)] * len(members), protocol.reports[epoch], swarm)
    assert_settled_as_expected(tx, swarm, members, before, expected, budget)
    return tx, expected


def test_one_negative_epoch_does_not_strike_a_node_with_a_positive_smoothed_score(swarm, protocol, nodes):
    """Evidence accumulates: an honest node whose earlier epochs left it a clearly positive
    smoothed score takes no strike for one epoch with a negative score (its smoothed score
    stays positive), while a node with little earlier evidence and the same negative score
    falls to or below zero and is struck."""
    members = nodes[:4]
    protocol.enroll(members)
    honest, weak = members[3], members[2]
    run_checked(swarm, protocol, members, [50, 50, 10, 100])
    assert [swarm.memberOf(n)["smoothedScore"] for n in (weak, honest)] == [5, 50]

    tx, expected = run_checked(swarm, protocol, members, [50, 50, -40, -40])
    assert expected.scores[2:] == (-40, -40)
    assert expected.struck[2:] == (True, False)  # the reference rule agrees
    assert "NodeSuspended" not in tx.events
    member = swarm.memberOf(honest)
    assert (member["smoothedScore"], member["strikes"], member["status"]) == (5, 0, ACTIVE)  # (50 - 40) / 2
    member = swarm.memberOf(weak)
    assert (member["smoothedScore"], member["strikes"], member["status"]) == (-17, 1, ACTIVE)  # (5 - 40) / 2


def test_node_whose_smoothed_score_falls_to_zero_or_below_is_struck_and_suspended(swarm, protocol, nodes):
    """A node that keeps scoring negative is struck from the first epoch its smoothed score
    is <= 0 (not before), once per such epoch, and suspended after suspendAfter (2) of them."""
    assert swarm.config()["suspendAfter"] == 2
    members = nodes[:4]
    protocol.enroll(members)
    failing = members[3]
    history = []
    for score in [100, -40, -40, -40]:
        tx, expected = run_checked(swarm, protocol, members, [50, 60, 70, score])
        member = swarm.memberOf(failing)
        history.append((expected.scores[3], member["smoothedScore"], member["strikes"], member["status"]))
        if member["status"] == SUSPENDED:
            break
        assert "NodeSuspended" not in tx.events
    assert history == [
        (100, 50, 0, ACTIVE),
        (-40, 5, 0, ACTIVE),  # still positive: no strike
        (-40, -17, 1, ACTIVE),  # the first epoch at or below zero
        (-40, -28, 2, SUSPENDED),  # suspendAfter strikes
    ]
    event = tx.events["NodeSuspended"]
    assert (event["account"], event["epoch"], event["strikes"]) == (failing, 4, 2)
    assert swarm.activeCount() == 3
    for node in members[:3]:
        assert swarm.memberOf(node)["strikes"] == 0
    epoch = swarm.currentEpoch()
    with reverts_with("NotActive", failing, SUSPENDED):
        swarm.submitUpdate(epoch, commitment(failing, epoch), 10, {"from": failing})
