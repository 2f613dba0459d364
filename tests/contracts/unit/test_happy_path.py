"""One full epoch, checked against the Python reference rule to the wei."""

from swarmtoken.rewards import Participant, settle


def test_full_epoch_pays_by_reference_rule_and_opens_next(swarm, token, nodes, protocol):
    members = nodes[:4]
    protocol.enroll(members)
    scores = [300, 100, 50, -20]
    samples = [100, 200, 1500, 50]
    protocol.submit(members, samples)
    protocol.elect()
    protocol.publish()
    for node in members:
        protocol.report(node, scores)
    tx = protocol.settle()

    budget = 1000 * 10**18
    expected = settle(
        budget,
        [Participant(samples=s) for s in samples],
        [(900_000, scores)] * 4,
        beta_bps=3000,
        sample_cap=1000,
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
