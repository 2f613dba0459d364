"""One full epoch, checked against the Python reference rule to the wei."""

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
        [Participant(samples=s, leader=n.address == leader) for n, s in zip(members, samples)],
        [Report(900_000, scores, MERGED, 0b1111)] * 4,
        beta_bps=3000,
        published_hash=MERGED,
    )
    credited = [swarm.claimable(node) for node in members]
    assert credited == list(expected.payouts)
    assert credited[3] == 0
    assert swarm.carry() == expected.carried
    assert token.totalSupply() == sum(credited) == token.balanceOf(swarm)
    assert tx.events["EpochSettled"]["credited"] == sum(credited)
    assert swarm.currentEpoch() == 2

    members[0].balance()
    swarm.claim({"from": members[0]})
    assert token.balanceOf(members[0]) == credited[0]
    assert swarm.claimable(members[0]) == 0
