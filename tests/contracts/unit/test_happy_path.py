"""One full epoch, checked against the Python reference rule to the wei."""

from swarmtoken.config import chain_rule
from swarmtoken.rewards import Participant, Report, settle
from tests.fixtures.deployments import MERGED


def test_full_epoch_pays_by_reference_rule_and_opens_next(swarm, token, nodes, protocol):
    members = nodes[:4]
    protocol.enroll(members)
    scores = [300, 100, 50, -20]
    samples = [100, 200, 900, 50]
    protocol.submit(members, samples)
    protocol.elect()
    protocol.publish()
    for node in members:
        protocol.report(node, scores)
    tx = protocol.settle()

    budget = 1000 * 10**18
    leader = swarm.leaderOf(1)
    expected = settle(
        budget,
        [Participant(samples=s, leader=n.address == leader, node=n.address) for n, s in zip(members, samples)],
        [Report(900_000, scores, MERGED, 0b1111, n.address) for n in members],
        rule=chain_rule(swarm.config()),
        published_hash=MERGED,
    )
    # Every reporter agrees, so each score is the reported one; the first epoch halves it.
    assert expected.scores == tuple(scores)
    assert expected.smoothed == (150, 50, 25, -10)
    assert [swarm.memberOf(node)["smoothedScore"] for node in members] == list(expected.smoothed)
    assert [e["smoothedScore"] for e in tx.events["ParticipantSettled"]] == list(expected.smoothed)
    # Node 2's smoothed score per sample (25 / 900) is below 20 % of the average of the
    # positive ones (225 / 1200): not in good standing, like node 3 (negative).
    assert expected.standing == (True, True, False, False)
    assert [e["standing"] for e in tx.events["ParticipantSettled"]] == list(expected.standing)
    credited = [swarm.claimable(node) for node in members]
    assert credited == list(expected.payouts)
    assert credited[0] > 0 and credited[1] > 0 and credited[2] == credited[3] == 0
    assert swarm.carry() == expected.carried
    assert token.totalSupply() == sum(credited) == token.balanceOf(swarm)
    assert tx.events["EpochSettled"]["credited"] == sum(credited)
    assert swarm.currentEpoch() == 2

    members[0].balance()
    swarm.claim({"from": members[0]})
    assert token.balanceOf(members[0]) == credited[0]
    assert swarm.claimable(members[0]) == 0
