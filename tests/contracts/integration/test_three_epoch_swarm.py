"""A scripted three-epoch swarm of five nodes: one node never reports, a leader times out
and the next candidate publishes, and the admin removes a node. After every settlement each
credit, forfeit reason and the carry match the Python reference rule to the wei; at the end
everyone claims and the token supply equals what was claimed plus what the contract still
holds."""

from brownie import chain

from swarmtoken.rewards import Forfeit
from tests.fixtures.deployments import MERGED, Protocol
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement
from tests.fixtures.scores import in_units

REWARD = 1000 * 10**18
# Declared sample counts; every allowance is ALLOWANCE (1000). In epoch 1 node 2 declares
# 1200: 1000 count, and the over-declaration forfeits its payout for that epoch.
DECLARED = [100, 400, 1200, 250, 600]
SAMPLES = [100, 400, 1000, 250, 600]
# Score vectors over the five participants, one per reporter (nodes 0-3; node 4 is silent).
# Node 2 inflates its own score; a participant's own report's score for itself is ignored
# (it neither counts for itself nor dilutes that report's votes for the others).
SCORES = {epoch: [in_units(row, 2 * 10**6) for row in rows] for epoch, rows in {  # units of 0.002
    1: [[120, 80, 40, -10, 30], [110, 90, 35, -5, 25], [100, 85, 450, -8, 28], [115, 70, 45, 0, 20]],
    2: [[90, 60, 50, 20, 10], [95, 65, 45, 25, 15], [85, 55, 350, 30, 5], [100, 70, 40, 15, 12]],
    3: [[60, 70, 80, 90, 5], [65, 75, 85, 95, 6], [55, 65, 400, 85, 4], [70, 80, 90, 100, 2]],
}.items()}
METRICS = [610_000, 640_000, 620_000, 650_000]


def test_three_epoch_swarm_pays_by_the_reference_rule_and_balances(create_swarm, admin, nodes):
    swarm, token = create_swarm(min_peers=3, max_peers=8)
    protocol = Protocol(swarm, admin)
    members = nodes[:5]
    silent, removed = members[4], members[3]
    protocol.enroll(members)
    credited_total = 0
    carry = 0
    ledger = {node.address: 0 for node in members}  # payouts summed from ParticipantSettled

    def settle_epoch(epoch, participants):
        nonlocal credited_total, carry
        budget = REWARD + carry
        before = [swarm.claimable(node) for node in members]
        chain.sleep(swarm.config()["reportWindow"] + 1)  # the silent node never reports
        tx = protocol.settle(caller=members[0])
        expected = expected_settlement(budget, participants, protocol.reports[epoch], swarm)
        assert_settled_as_expected(tx, swarm, members, before, expected, budget)
        assert tx.events["EpochSettled"]["reporters"] == len(protocol.reports[epoch])
        assert tx.events["EpochOpened"]["epoch"] == epoch + 1
        assert tx.events["EpochOpened"]["budget"] == REWARD + expected.carried
        for event in tx.events["ParticipantSettled"]:
            ledger[event["node"]] += event["payout"]
        credited_total += expected.credited
        carry = expected.carried
        return expected

    def report(epoch, reporters):
        for node, scores, metric in zip(members, SCORES[epoch], METRICS):
            if node in reporters:
                protocol.report(node, scores, metric)

    # Epoch 1: everyone commits (node 2 over-declares), the leader merges all five, node 4
    # never reports.
    protocol.submit(members, DECLARED)
    assert [(c["node"], c["samples"], c["overDeclared"]) for c in (swarm.commitAt(1, i) for i in range(5))] == [
        (node.address, s, i == 2) for i, (node, s) in enumerate(zip(members, SAMPLES))
    ]
    protocol.elect()
    protocol.publish()
    report(1, members[:4])
    expected = settle_epoch(
        1, [Participant(samples=s, reported=i != 4, over_declared=i == 2) for i, s in enumerate(SAMPLES)]
    )
    # Node 2's 450 for itself is ignored: its credit is the mean of the other reporters'
    # votes, 40 of reporter 0's positive 150, 35 of reporter 1's 170 and 45 of reporter 3's 250.
    assert expected.forfeits[2] is Forfeit.OVER_DECLARED
    assert expected.scores[2] == (40 * 10**9 // 150 + 35 * 10**9 // 170 + 45 * 10**9 // 250) // 3 == 217_516_339
    # Node 3 is rated -10, -5 and -8 by the others: no vote, no credit, no weight.
    assert expected.forfeits[4] is Forfeit.NOT_REPORTED and expected.payouts[3] == 0
    assert (expected.scores[3], expected.smoothed[3], expected.standing[3]) == (0, 0, False)
    assert expected.forfeits[3] is Forfeit.NONE  # unpaid is not forfeited
    assert expected.struck[3] and swarm.memberOf(removed)["strikes"] == 1

    # Epoch 2: the elected leader times out; the next candidate publishes.
    protocol.submit(members, SAMPLES)
    protocol.elect()
    timed_out = swarm.epochState(2)["leaderIndex"]
    chain.sleep(swarm.config()["mergeWindow"] + 1)
    tx = swarm.failover(2, {"from": members[1]})
    assert tx.events["LeaderSkipped"]["skipped"] == members[timed_out]
    successor = members[(timed_out + 1) % 5]
    assert protocol.leader() == successor
    protocol.publish()
    assert swarm.epochState(2)["participants"] == 0b11111
    report(2, members[:4])
    expected = settle_epoch(
        2,
        [
            Participant(samples=s, reported=i != 4, skipped_leader=i == timed_out)
            for i, s in enumerate(SAMPLES)
        ],
    )
    assert expected.forfeits[timed_out] is Forfeit.LEADER_TIMED_OUT
    # Again not node 2's 350 for itself: 50 of 140, 45 of 180 and 40 of 222.
    assert expected.scores[2] == (50 * 10**9 // 140 + 45 * 10**9 // 180 + 40 * 10**9 // 222) // 3 == 262_441_012
    assert expected.forfeits[4] is (Forfeit.LEADER_TIMED_OUT if timed_out == 4 else Forfeit.NOT_REPORTED)

    # Epoch 3: after the merge the admin removes node 3, which can no longer report.
    protocol.submit(members, SAMPLES)
    protocol.elect()
    protocol.publish()
    swarm.removeNode(removed, {"from": admin})
    with reverts_with("NotActive", removed, 3):
        swarm.reportValidation(3, 1, bytes.fromhex(MERGED), 0b11111, SCORES[3][3], {"from": removed})
    report(3, members[:3])
    expected = settle_epoch(
        3,
        [Participant(samples=s, reported=i < 3, removed=i == 3) for i, s in enumerate(SAMPLES)],
    )
    assert expected.forfeits[3] is Forfeit.REMOVED and expected.forfeits[4] is Forfeit.NOT_REPORTED
    assert credited_total + carry == 3 * REWARD
    assert swarm.carry() == carry

    # Everyone claims what the ledger credited; the removed node keeps its earlier credits.
    claimed = 0
    for node in members:
        amount = swarm.claimable(node)
        assert amount == ledger[node.address]
        if amount == 0:
            with reverts_with("NothingToClaim", node):
                swarm.claim({"from": node})
            continue
        swarm.claim({"from": node})
        assert token.balanceOf(node) == amount
        claimed += amount
    assert swarm.claimable(silent) == token.balanceOf(silent) == 0
    # The removed node keeps its epoch-2 credit, unless the draw made it the leader that timed out.
    assert (token.balanceOf(removed) > 0) == (timed_out != 3)
    assert token.totalSupply() == claimed + token.balanceOf(swarm) == credited_total
    assert token.balanceOf(swarm) == 0

