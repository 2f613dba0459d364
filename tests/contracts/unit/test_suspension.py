"""Automatic suspension after `suspendAfter` strikes (2 in the test config): a strike for each
quorate epoch after which the member's smoothed credit (moved by that epoch's credit) backs
under half of its samples, 2 w < d (or for an invalid update, or a leader fault), reset by a
quorate epoch without one. Evidence accumulates: one epoch without a vote does not strike a
member whose earlier credit still backs its data. Leaving does not dodge a suspension; only
authorising the node again lifts it."""

from tests.fixtures.deployments import ALLOWANCE, Protocol, commitment
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement
from tests.fixtures.scores import in_units

ACTIVE, NONE, SUSPENDED = 1, 0, 2


def test_node_without_a_vote_in_consecutive_epochs_is_suspended(swarm, protocol, admin, nodes):
    """Rated -5, then 0, by all the others: a credit of 0, no data weight, a strike each."""
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


def test_an_epoch_backing_over_half_the_data_resets_the_strikes(swarm, protocol, nodes):
    """A credit that lifts the smoothed credit to back over half of the node's samples resets
    the strikes; epochs without a vote then halve it, and the first that leaves it backing
    under half strikes again (from one)."""
    members = nodes[:3]
    protocol.enroll(members)
    history = []
    for score in [-10, 30, -40, -40, -40, -40]:
        tx, expected = run_checked(swarm, protocol, members, [10, 20, score], unit=2 * 10**7)
        assert "NodeSuspended" not in tx.events
        member = swarm.memberOf(members[2])
        history.append((expected.scores[2], member["smoothedScore"], expected.weights[2], member["strikes"]))
    assert history == [
        (0, 0, 0, 1),  # no vote: no weight, struck
        # 30 of reporter 0's 50 and of reporter 1's 40
        ((600_000_000 + 750_000_000) // 2, 337_500_000, 100, 0),
        (0, 168_750_000, 100, 0),  # halved, still full weight
        (0, 84_375_000, 100, 0),  # halved again, still full weight
        (0, 42_187_500, 51, 0),  # 51 of 100 samples backed: over half
        (0, 21_093_750, 25, 1),  # under half: struck again
    ]
    assert swarm.memberOf(members[2])["status"] == ACTIVE


def test_an_epoch_that_credits_nobody_strikes_nobody_for_low_credit(swarm, protocol, nodes):
    """Every member rates every update harmful (as on an imbalanced table while the model
    first learns the majority class): nobody holds credit, so low credit singles nobody out.
    Striking all would suspend the whole swarm after `suspendAfter` (2) such epochs. The next
    epoch that credits someone strikes those it leaves without credit."""
    members = nodes[:4]
    protocol.enroll(members)
    for _ in range(3):
        tx, expected = run_checked(swarm, protocol, members, [-10, -20, -30, -5])
        assert expected.struck == (False,) * 4 and expected.payouts == (0,) * 4
        assert "NodeSuspended" not in tx.events
        assert [swarm.memberOf(node)["strikes"] for node in members] == [0] * 4
    run_checked(swarm, protocol, members, [10, 20, -30, -5])
    assert [swarm.memberOf(node)["strikes"] for node in members] == [0, 0, 1, 1]
    assert swarm.activeCount() == 4


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
    """A member that commits and then leaves still takes the strikes of the epochs in which
    nobody votes for it; at suspendAfter it becomes Suspended (not merely gone), and it cannot enrol
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
        settled = tx.events["ParticipantSettled"][3]
        assert (settled["score"], settled["smoothedScore"]) == (0, 0)  # rated -5, then 0: no vote
        assert swarm.memberOf(dodger)["smoothedScore"] == 0
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


def run_checked(swarm, protocol, members, scores, unit=10**7):
    """One epoch in which every member reports ``scores`` (in ``unit``s, 0.01 by default),
    held to the reference rule."""
    budget = swarm.config()["rewardPerEpoch"] + swarm.carry()
    before = [swarm.claimable(node) for node in members]
    epoch = protocol.epoch
    tx = protocol.run_epoch(members, in_units(scores, unit))
    expected = expected_settlement(budget, [Participant(samples=100)] * len(members), protocol.reports[epoch], swarm)
    assert_settled_as_expected(tx, swarm, members, before, expected, budget)
    return tx, expected


def test_one_epoch_without_a_vote_does_not_strike_a_node_with_earlier_evidence(swarm, protocol, nodes):
    """Evidence accumulates: an honest node whose earlier epoch left it a large smoothed
    credit takes no strike for one epoch in which everyone rates it negative (its halved
    smoothed credit still backs all of its samples), while a node with little earlier
    evidence and the same ratings falls under half of its samples and is struck."""
    members = nodes[:4]
    protocol.enroll(members)
    honest, weak = members[3], members[2]
    run_checked(swarm, protocol, members, [50, 50, 10, 100])
    assert [swarm.memberOf(n)["smoothedScore"] for n in (weak, honest)] == [35_984_848, 250_000_000]

    tx, expected = run_checked(swarm, protocol, members, [50, 50, -40, -40])
    assert expected.scores[2:] == (0, 0)
    assert expected.weights[2:] == (44, 100)
    assert expected.struck[2:] == (True, False)  # the reference rule agrees
    assert "NodeSuspended" not in tx.events
    member = swarm.memberOf(honest)
    assert (member["smoothedScore"], member["strikes"], member["status"]) == (125_000_000, 0, ACTIVE)  # halved
    member = swarm.memberOf(weak)
    assert (member["smoothedScore"], member["strikes"], member["status"]) == (17_992_424, 1, ACTIVE)
    assert tx.events["ParticipantSettled"][2]["payout"] > 0  # still paid for the 44 samples it backs


def test_node_whose_evidence_falls_under_half_its_data_is_struck_and_suspended(swarm, protocol, nodes):
    """A node nobody votes for any more sees its smoothed credit halve each epoch; it is
    struck from the first epoch its data weight is under half of its samples (not before),
    once per such epoch, and suspended after suspendAfter (2) of them."""
    assert swarm.config()["suspendAfter"] == 2
    members = nodes[:4]
    protocol.enroll(members)
    failing = members[3]
    history = []
    for score in [100, -40, -40, -40, -40]:
        tx, expected = run_checked(swarm, protocol, members, [50, 60, 70, score])
        member = swarm.memberOf(failing)
        history.append((expected.scores[3], member["smoothedScore"], expected.weights[3], member["strikes"],
                         member["status"]))
        if member["status"] == SUSPENDED:
            break
        assert "NodeSuspended" not in tx.events
    assert history == [
        (455_172_846, 227_586_423, 100, 0, ACTIVE),
        (0, 113_793_211, 100, 0, ACTIVE),  # no vote, but its earlier evidence backs its data
        (0, 56_896_605, 100, 0, ACTIVE),
        (0, 28_448_302, 47, 1, ACTIVE),  # the first epoch under half of its 100 samples
        (0, 14_224_151, 22, 2, SUSPENDED),  # suspendAfter strikes
    ]
    event = tx.events["NodeSuspended"]
    assert (event["account"], event["epoch"], event["strikes"]) == (failing, 5, 2)
    assert swarm.activeCount() == 3
    for node in members[:3]:
        assert swarm.memberOf(node)["strikes"] == 0
    epoch = swarm.currentEpoch()
    with reverts_with("NotActive", failing, SUSPENDED):
        swarm.submitUpdate(epoch, commitment(failing, epoch), 10, {"from": failing})


def test_node_with_a_small_positive_credit_is_paid_for_what_it_backs_and_struck(swarm, protocol, nodes):
    """Rated 1 where the others get 50 to 70, a node has a positive credit, but one that backs
    only 12 of its 100 samples: it is paid for those 12 (its weight is continuous in the
    credit) and struck, and suspended after two such epochs; the others stand at full weight."""
    members = nodes[:4]
    protocol.enroll(members)
    lazy = members[3]
    for epoch in (1, 2):
        tx, expected = run_checked(swarm, protocol, members, [50, 60, 70, 1])
        assert expected.scores[3] == 8_302_352 and expected.smoothed[3] > 0
        assert expected.weights == (100, 100, 100, 12) and expected.standing == (True, True, True, False)
        assert expected.struck == (False, False, False, True)
        assert tx.events["ParticipantSettled"][3]["payout"] > 0
        assert swarm.memberOf(lazy)["strikes"] == epoch
    # Suspended before it could claim (no clean epoch): both epochs' pay is forfeited.
    assert tx.events["BalanceForfeited"]["account"] == lazy and swarm.claimable(lazy) == 0
    assert tx.events["NodeSuspended"]["account"] == lazy
    assert swarm.memberOf(lazy)["status"] == SUSPENDED
    assert [swarm.memberOf(node)["strikes"] for node in members[:3]] == [0, 0, 0]
