"""Automatic suspension after `suspendAfter` strikes (2 in the test config): a strike for each
quorate epoch with a non-positive median score (or a leader fault), reset by a quorate
epoch with a positive one. Leaving does not dodge it; only authorising the node again
lifts it."""

from tests.fixtures.deployments import ALLOWANCE, Protocol, commitment
from tests.fixtures.errors import reverts_with

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
    members = nodes[:3]
    protocol.enroll(members)
    for score in [-1, 1, -1]:
        tx = protocol.run_epoch(members, [10, 20, score])
        assert "NodeSuspended" not in tx.events
    member = swarm.memberOf(members[2])
    assert (member["status"], member["strikes"]) == (ACTIVE, 1)


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
    medians; at suspendAfter it becomes Suspended (not merely gone), and it cannot enrol
    again until the admin authorises it."""
    members = nodes[:4]
    dodger = members[3]
    protocol.enroll(members)
    for epoch, score in [(1, -5), (2, 0)]:
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
        assert tx.events["ParticipantSettled"][3]["medianScore"] == score
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
