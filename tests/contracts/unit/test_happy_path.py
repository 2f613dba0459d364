"""One full epoch, checked against the Python reference rule to the wei."""

from swarmtoken.config import chain_rule
from swarmtoken.rewards import Participant, Report, settle
from tests.fixtures.deployments import MERGED
from tests.fixtures.errors import reverts_with
from tests.fixtures.scores import in_units


def test_full_epoch_pays_by_reference_rule_and_opens_next(swarm, token, nodes, protocol):
    members = nodes[:4]
    protocol.enroll(members)
    scores = in_units([300, 100, 20, -20], 2 * 10**6)  # units of 0.002
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
    # Every reporter sends the same vector. Reporter r votes over its positive scores for the
    # others (-20 counts as 0): 420 - max(0, scores[r]) for r = 0 .. 3, i.e. 120, 320, 400
    # and 420, giving no one more than one and a half of its three equal shares
    # (500_000_000). Node 0 holds 300 of 320, of 400 and of 420 (its own reporter's vote is
    # not counted): capped each time; node 3 is rated -20 by all, no vote at all.
    cap = 15 * 10**8 // 3
    assert expected.scores == (
        (cap + cap + cap) // 3,
        (min(100 * 10**9 // 120, cap) + 100 * 10**9 // 400 + 100 * 10**9 // 420) // 3,
        (20 * 10**9 // 120 + 20 * 10**9 // 320 + 20 * 10**9 // 420) // 3,
        0,
    ) == (500_000_000, 329_365_079, 92_261_904, 0)
    assert [e["score"] for e in tx.events["ParticipantSettled"]] == list(expected.scores)
    # The first epoch halves the credit (smoothing one half, from 0).
    assert expected.smoothed == (250_000_000, 164_682_539, 46_130_952, 0)
    assert [swarm.memberOf(node)["smoothedScore"] for node in members] == list(expected.smoothed)
    assert [e["smoothedScore"] for e in tx.events["ParticipantSettled"]] == list(expected.smoothed)
    # Data weight: min(d, e * D+ * 10_000 / (2_000 * S+)) with D+ = 1200 samples and S+ the
    # three positive smoothed credits. Node 2's credit per sample backs 600 of its 900
    # samples: paid for those, but not in good standing; node 3 has no weight.
    positive = sum(expected.smoothed)
    assert expected.weights == (100, 200, 46_130_952 * 1200 * 10_000 // (2_000 * positive), 0) == (100, 200, 600, 0)
    assert expected.standing == (True, True, False, False)
    assert [e["standing"] for e in tx.events["ParticipantSettled"]] == list(expected.standing)
    credited = [swarm.claimable(node) for node in members]
    assert credited == list(expected.payouts)
    assert credited[0] > 0 and credited[1] > 0 and credited[2] > 0 and credited[3] == 0
    # Node 3 had evidence and no weight: struck; the others' weight is over half their data.
    assert expected.struck == (False, False, False, True)
    assert [swarm.memberOf(node)["strikes"] for node in members] == [0, 0, 0, 1]
    assert swarm.carry() == expected.carried
    assert token.totalSupply() == sum(credited) == token.balanceOf(swarm)
    assert tx.events["EpochSettled"]["credited"] == sum(credited)
    assert swarm.currentEpoch() == 2

    # One clean epoch: the credit stays locked until a second one (or the swarm's finish).
    with reverts_with("ClaimLocked", members[0], 1, 2):
        swarm.claim({"from": members[0]})
    assert swarm.claimable(members[0]) == credited[0]
