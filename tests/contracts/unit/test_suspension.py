"""Automatic suspension after `suspendAfter` consecutive settled epochs with a non-positive
median score (2 in the test config); authorising the node again lifts it."""

from tests.fixtures.deployments import Protocol, param_hash
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
        swarm.submitUpdate(epoch, param_hash(laggard, epoch), "http://p", 10, {"from": laggard})
    with reverts_with("NotActive", laggard, SUSPENDED):
        swarm.enroll("http://again", {"from": laggard})

    # The admin authorises it again: the suspension and its strikes are lifted.
    swarm.authorize(laggard, 0, {"from": admin})
    member = swarm.memberOf(laggard)
    assert (member["status"], member["strikes"]) == (NONE, 0)
    swarm.enroll("http://again", {"from": laggard})
    assert swarm.activeCount() == 4
    swarm.submitUpdate(epoch, param_hash(laggard, epoch), "http://p", 10, {"from": laggard})


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
