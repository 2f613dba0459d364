"""Sample allowances: the admin attests how many samples each member holds (its allowance).
A declared count above it counts as the allowance, and the over-declaring participant
forfeits its payout for the epoch (OverDeclared, the lowest precedence): inflating the
data volume can only lose."""

from brownie import chain

from swarmtoken.config import chain_rule
from swarmtoken.rewards import Forfeit, Report, settle
from tests.fixtures.deployments import ALLOWANCE, MERGED, Protocol, commitment
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement

REWARD = 1000 * 10**18
# One score vector per reporter (every participant's credit, the mean of the other
# reporters' votes, positive, and distinct per participant).
SCORES = [[300, 100, 50, 80], [310, 90, 40, 70], [290, 110, 60, 75], [305, 95, 45, 65]]


def run(protocol, members, samples, reporters=None):
    """One epoch: commit ``samples``, elect, publish, every member (or ``reporters``)
    reports its row of SCORES, settle once every committer reported."""
    protocol.submit(members, samples)
    protocol.elect()
    protocol.publish()
    for node, scores in zip(members, SCORES):
        if reporters is None or node in reporters:
            protocol.report(node, scores)
    if reporters is not None:
        chain.sleep(protocol.swarm.config()["reportWindow"] + 1)
    return protocol.settle()


def test_declared_count_above_the_allowance_counts_as_the_allowance(swarm, protocol, nodes):
    """UpdateSubmitted shows both the declared and the counted samples; commitAt and the
    settlement only know the counted ones (and whether the declaration was above), and the
    over-declarers forfeit with OverDeclared while the shares stay computed on the capped
    counts."""
    members = nodes[:4]
    protocol.enroll(members, allowance=150)
    declared = [400, 150, 149, 2**64 - 1]
    counted = [150, 150, 149, 150]
    over = [True, False, False, True]
    for index, (node, n) in enumerate(zip(members, declared)):
        tx = swarm.submitUpdate(1, commitment(node, 1), n, {"from": node})
        event = tx.events["UpdateSubmitted"]
        assert (event["index"], event["declaredSamples"], event["samples"]) == (index, n, counted[index])
        commit = swarm.commitAt(1, index)
        assert (commit["node"], commit["samples"], commit["overDeclared"]) == (node, counted[index], over[index])
    protocol.elect()
    protocol.publish()
    for node, scores in zip(members, SCORES):
        protocol.report(node, scores)
    tx = protocol.settle()

    assert [e["samples"] for e in tx.events["ParticipantSettled"]] == counted
    participants = [Participant(samples=s, over_declared=o) for s, o in zip(counted, over)]
    expected = expected_settlement(REWARD, participants, protocol.reports[1], swarm)
    assert_settled_as_expected(tx, swarm, members, [0] * 4, expected, REWARD)
    assert [int(f) for f in expected.forfeits] == [6, 0, 0, 6]
    assert expected.payouts[0] == expected.payouts[3] == 0
    assert expected.payouts[1] > 0 and expected.payouts[2] > 0


def test_declaring_ten_times_the_allowance_gains_nothing_and_forfeits_the_payout(create_swarm, admin, nodes):
    """Two swarms run the same epoch (same members, samples, scores); only the first node's
    declaration differs: its allowance in one, ten times it in the other. Both count the
    allowance, so every other participant is paid exactly the same; the inflated declarer
    is paid nothing (OverDeclared) and its would-be payout is carried. Without the cap the
    reference rule would have paid the inflated declaration more."""
    members = nodes[:4]
    others = [300, 500, 700]
    outcomes = {}
    for declared in (ALLOWANCE, 10 * ALLOWANCE):
        swarm, _ = create_swarm()
        protocol = Protocol(swarm, admin)
        protocol.enroll(members)
        tx = run(protocol, members, [declared] + others)
        assert swarm.commitAt(1, 0)["samples"] == ALLOWANCE
        ledger = [(e["node"], e["samples"], e["score"], e["smoothedScore"], e["standing"])
                  for e in tx.events["ParticipantSettled"]]
        forfeits = [e["forfeit"] for e in tx.events["ParticipantSettled"]]
        outcomes[declared] = ([swarm.claimable(node) for node in members], swarm.carry(), ledger, forfeits)

    (paid, carry, ledger, forfeits), (paid_10x, carry_10x, ledger_10x, forfeits_10x) = outcomes.values()
    assert ledger_10x == ledger  # same counted samples, same scores, smoothed scores and standing
    assert forfeits == [0, 0, 0, 0]
    assert forfeits_10x == [int(Forfeit.OVER_DECLARED), 0, 0, 0]
    assert paid_10x == [0] + paid[1:]
    assert carry_10x == carry + paid[0]

    rule = chain_rule(swarm.config())
    reports = [Report(900_000, scores, MERGED, 0b1111, node.address) for node, scores in zip(members, SCORES)]

    def reference(samples):
        participants = [Participant(samples=s, node=node.address) for node, s in zip(members, samples)]
        return settle(REWARD, participants, reports, rule=rule, published_hash=MERGED)

    capped = reference([ALLOWANCE] + others)
    assert paid == list(capped.payouts)
    uncapped = reference([10 * ALLOWANCE] + others)
    assert uncapped.standing[0] and uncapped.payouts[0] > capped.payouts[0] > 0


def test_over_declaring_has_the_lowest_forfeit_precedence(swarm, protocol, nodes):
    """An over-declarer that also did not report is recorded as NotReported."""
    members = nodes[:4]
    protocol.enroll(members)
    tx = run(protocol, members, [10 * ALLOWANCE, 10 * ALLOWANCE, 100, 100], reporters=members[1:])
    assert [e["forfeit"] for e in tx.events["ParticipantSettled"]] == [1, 6, 0, 0]
    assert [swarm.claimable(n) for n in members[:2]] == [0, 0]


def test_authorisation_needs_a_non_zero_allowance(swarm, protocol, admin, nodes):
    with reverts_with("ZeroAllowance", nodes[0]):
        swarm.authorize(nodes[0], 0, 0, {"from": admin})
    assert not swarm.memberOf(nodes[0])["allowListed"]
    protocol.enroll(nodes[1:2], allowance=500)
    with reverts_with("ZeroAllowance", nodes[1]):  # nor can a renewal zero it
        swarm.authorize(nodes[1], 0, 0, {"from": admin})
    assert swarm.memberOf(nodes[1])["allowance"] == 500


def test_admin_changes_the_allowance_for_later_commits(swarm, protocol, admin, nodes):
    """A renewed authorisation attests a new allowance, which caps the next commitments."""
    protocol.enroll(nodes[:3], allowance=500)
    protocol.run_epoch(nodes[:3], [10, 20, 30], samples=500)
    assert (swarm.commitAt(1, 0)["samples"], swarm.commitAt(1, 0)["overDeclared"]) == (500, False)
    tx = swarm.authorize(nodes[0], 0, 200, {"from": admin})
    assert tx.events["AccountAuthorized"]["allowance"] == 200
    assert swarm.memberOf(nodes[0])["status"] == 1  # still active: only the allowance changed
    tx = swarm.submitUpdate(2, commitment(nodes[0], 2), 500, {"from": nodes[0]})
    assert (tx.events["UpdateSubmitted"]["declaredSamples"], tx.events["UpdateSubmitted"]["samples"]) == (500, 200)
    assert swarm.commitAt(2, 0)["overDeclared"]
