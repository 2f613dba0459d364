"""Forfeits: a participant that does not report, a leader that timed out, a removed node, a
leader a strict majority of reporters found at fault (contradicted merge, censored update)
and a node that declared more samples than its allowance earn nothing for the epoch; their
share is carried to the next budget. The reason is recorded in `ParticipantSettled`
whenever it applies, in the order Removed > LeaderTimedOut > leader fault > NotReported >
OverDeclared. An epoch whose every candidate leader timed out is abandoned and its whole
budget carried."""

import pytest
from brownie import ZERO_ADDRESS, chain

from swarmtoken.rewards import Forfeit
from tests.fixtures.deployments import ALLOWANCE, MERGED, Protocol
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement

REWARD = 1000 * 10**18
SAMPLES = [100, 200, ALLOWANCE, 50]  # declared exactly at the allowance is no over-declaration
# One score vector per reporter, in the reporters' order; every participant's credit (the
# mean of the other reporters' votes) is positive and, per sample, high enough for full
# data weight, so that every participant (whichever the draw makes leader) is paid.
SCORES = [[300, 100, 250, 80], [310, 90, 240, 70], [290, 110, 260, 75], [305, 95, 245, 65]]


@pytest.fixture
def members(nodes, protocol):
    protocol.enroll(nodes[:4])
    return nodes[:4]


def open_report_phase(protocol, members, participants_bitmap=None):
    protocol.submit(members, SAMPLES)
    protocol.elect()
    protocol.publish(participants_bitmap)


def leader_index(swarm, epoch=1):
    return swarm.epochState(epoch)["leaderIndex"]


def settle_and_check(swarm, protocol, members, participants, budget=REWARD, **placement):
    """Settle and hold the outcome to the reference rule; ``members`` and ``participants``
    are the epoch's participants in commit-index order."""
    before = [swarm.claimable(node) for node in members]
    epoch = protocol.epoch
    tx = protocol.settle()
    expected = expected_settlement(budget, participants, protocol.reports.get(epoch, []), swarm,
                                   **placement)
    # The fixture's asserts are not rewritten by pytest; this one shows the numbers.
    assert [swarm.claimable(node) - b for node, b in zip(members, before)] == list(expected.payouts)
    assert_settled_as_expected(tx, swarm, members, before, expected, budget)
    return tx, expected


def reasons(tx):
    return [Forfeit(e["forfeit"]) for e in tx.events["ParticipantSettled"]]


def test_participant_that_does_not_report_forfeits_its_share(swarm, protocol, members):
    open_report_phase(protocol, members)
    for node, scores in zip(members[:3], SCORES):
        protocol.report(node, scores)
    chain.sleep(61)
    participants = [Participant(samples=s, reported=i < 3) for i, s in enumerate(SAMPLES)]
    tx, expected = settle_and_check(swarm, protocol, members, participants)

    assert expected.forfeits == (Forfeit.NONE,) * 3 + (Forfeit.NOT_REPORTED,)
    assert swarm.claimable(members[3]) == 0
    # What the silent node would have earned had it reported is in the carry.
    honest = expected_settlement(REWARD, [Participant(samples=s) for s in SAMPLES], protocol.reports[1], swarm)
    assert honest.payouts[3] > 0
    assert swarm.carry() == honest.carried + honest.payouts[3]

    # The carry is added to the next epoch's budget and paid out by the same rule.
    budget = REWARD + swarm.carry()
    assert tx.events["EpochOpened"]["budget"] == budget
    open_report_phase(protocol, members)
    for node, scores in zip(members, SCORES):
        protocol.report(node, scores)
    settle_and_check(swarm, protocol, members, [Participant(samples=s) for s in SAMPLES], budget)


def test_leader_that_timed_out_forfeits_even_if_it_reports(swarm, protocol, members):
    protocol.submit(members, SAMPLES)
    protocol.elect()
    timed_out = swarm.epochState(1)["leaderIndex"]
    chain.sleep(61)
    swarm.failover(1, {"from": members[0]})
    protocol.publish()
    for node, scores in zip(members, SCORES):
        protocol.report(node, scores)
    participants = [Participant(samples=s, skipped_leader=i == timed_out) for i, s in enumerate(SAMPLES)]
    tx, _ = settle_and_check(swarm, protocol, members, participants)

    assert reasons(tx) == [Forfeit.LEADER_TIMED_OUT if i == timed_out else Forfeit.NONE for i in range(4)]
    assert swarm.claimable(members[timed_out]) == 0


@pytest.mark.parametrize("removed_after_reporting", [True, False])
def test_removed_node_forfeits_its_share(swarm, protocol, members, admin, removed_after_reporting):
    open_report_phase(protocol, members)
    removed = members[1]
    if not removed_after_reporting:
        swarm.removeNode(removed, {"from": admin})
    for node, scores in zip(members, SCORES):
        if node == removed and not removed_after_reporting:
            continue
        protocol.report(node, scores)
    if removed_after_reporting:
        swarm.removeNode(removed, {"from": admin})
    else:
        chain.sleep(61)
    participants = [
        Participant(samples=s, removed=i == 1, reported=removed_after_reporting or i != 1)
        for i, s in enumerate(SAMPLES)
    ]
    tx, _ = settle_and_check(swarm, protocol, members, participants)
    assert swarm.claimable(removed) == 0
    assert reasons(tx) == [Forfeit.NONE, Forfeit.REMOVED, Forfeit.NONE, Forfeit.NONE]


def test_unpaid_participant_with_zero_credit_is_not_a_forfeit(swarm, protocol, members):
    """Participants 1 and 3, rated 0 and -80 by everyone, get no vote, so no credit and no
    payout; that is not a forfeit (they are struck instead: no data weight)."""
    open_report_phase(protocol, members)
    scores = [[300, 0, 50, -80]] * 4
    for node, vector in zip(members, scores):
        protocol.report(node, vector)
    _, expected = settle_and_check(swarm, protocol, members, [Participant(samples=s) for s in SAMPLES])
    assert expected.scores[1] == expected.scores[3] == 0
    assert expected.payouts[1] == expected.payouts[3] == 0
    assert set(expected.forfeits) == {Forfeit.NONE}
    assert expected.struck == (False, True, False, True)
    assert [swarm.memberOf(node)["strikes"] for node in members] == [0, 1, 0, 1]


def test_epoch_is_abandoned_when_every_candidate_timed_out(swarm, protocol, members, outsider):
    committed = members[:3]
    protocol.submit(committed)
    protocol.elect()
    first = swarm.epochState(1)["leaderIndex"]
    skipped = []
    for _ in range(3):
        chain.sleep(61)
        tx = swarm.failover(1, {"from": outsider})
        skipped.append(tx.events["LeaderSkipped"]["skipped"])
    assert skipped == [committed[(first + k) % 3] for k in range(3)]

    last = tx.events["LeaderSkipped"]
    assert (last["next"], last["deadline"]) == (ZERO_ADDRESS, 0)
    assert tx.events["EpochAbandoned"]["epoch"] == 1
    assert tx.events["EpochAbandoned"]["carried"] == REWARD
    state = swarm.epochState(1)
    assert state["phase"] == 4  # Abandoned
    assert state["skipped"] == 0b111
    assert swarm.carry() == REWARD
    assert swarm.currentEpoch() == 2
    assert tx.events["EpochOpened"]["epoch"] == 2
    assert tx.events["EpochOpened"]["budget"] == 2 * REWARD
    with reverts_with("WrongEpoch", 1, 2):
        swarm.failover(1, {"from": outsider})

    # Nothing was minted; the next epoch pays out the doubled budget by the reference rule.
    open_report_phase(protocol, members)
    for node, scores in zip(members, SCORES):
        protocol.report(node, scores)
    settle_and_check(swarm, protocol, members, [Participant(samples=s) for s in SAMPLES], 2 * REWARD)


# ---------------------------------------------------------------- leader at fault

OTHER = "22" * 32
ZERO = "00" * 32
ALL_VALID = 0b1111


def hex_of(value) -> str:
    """A bytes32 from an event or a view, as hex without 0x."""
    return bytes(value).hex() if isinstance(value, bytes) else str(value).removeprefix("0x")


def test_leader_contradicted_by_majority_forfeits_and_is_struck(swarm, protocol, members):
    """Three of four reporters recomputed another merge: that merge becomes the epoch's
    model, the leader forfeits its share (positive: it stands well) as MergeContradicted and takes a strike
    anyway; the others are paid as if the leader had been honest."""
    open_report_phase(protocol, members)
    leader = leader_index(swarm)
    dissenter = (leader + 1) % 4  # one reporter agrees with the leader, the rest do not
    for i, (node, scores) in enumerate(zip(members, SCORES)):
        protocol.report(node, scores, merged=MERGED if i == dissenter else OTHER)
    participants = [Participant(samples=s, leader=i == leader) for i, s in enumerate(SAMPLES)]
    tx, expected = settle_and_check(swarm, protocol, members, participants)

    disputed = tx.events["MergeDisputed"]
    assert (disputed["epoch"], disputed["leader"]) == (1, members[leader])
    assert (hex_of(disputed["publishedHash"]), hex_of(disputed["majorityHash"])) == (MERGED, OTHER)
    assert "UpdateCensored" not in tx.events
    assert hex_of(tx.events["EpochSettled"]["modelHash"]) == OTHER == hex_of(swarm.epochState(1)["modelHash"])
    assert reasons(tx) == [Forfeit.MERGE_CONTRADICTED if i == leader else Forfeit.NONE for i in range(4)]
    assert expected.scores[leader] > 0 and expected.standing[leader] and swarm.claimable(members[leader]) == 0
    honest = expected_settlement(REWARD, [Participant(samples=s) for s in SAMPLES], protocol.reports[1], swarm)
    assert swarm.carry() == honest.carried + honest.payouts[leader]
    assert [swarm.memberOf(node)["strikes"] for node in members] == [int(i == leader) for i in range(4)]


def test_leader_that_left_out_an_update_the_majority_found_valid_forfeits_as_censored(swarm, protocol, members):
    """The leader merged three of four commitments; every reporter (the left-out node too,
    as a committer) found all four valid: `UpdateCensored` names the left-out node, which
    is no participant and so has no outcome; the leader forfeits as Censored."""
    protocol.submit(members, SAMPLES)
    protocol.elect()
    leader = leader_index(swarm)
    left_out = (leader + 2) % 4
    protocol.publish(ALL_VALID & ~(1 << left_out))
    kept = [i for i in range(4) if i != left_out]
    for node in members:
        protocol.report(node, [SCORES[0][i] for i in kept], valid=ALL_VALID)
    participants = [Participant(samples=SAMPLES[i], leader=i == leader) for i in kept]
    tx, expected = settle_and_check(swarm, protocol, [members[i] for i in kept], participants,
                                    commits=4, participants_bitmap=ALL_VALID & ~(1 << left_out))

    censored = tx.events["UpdateCensored"]
    assert (censored["epoch"], censored["leader"], censored["node"]) == (1, members[leader], members[left_out])
    assert len(tx.events["UpdateCensored"]) == 1 and "MergeDisputed" not in tx.events
    assert expected.verdict.censored == (left_out,)
    assert reasons(tx) == [Forfeit.CENSORED if i == leader else Forfeit.NONE for i in kept]
    assert hex_of(tx.events["EpochSettled"]["modelHash"]) == MERGED  # the merge itself stands
    assert swarm.claimable(members[left_out]) == 0
    assert swarm.memberOf(members[leader])["strikes"] == 1


def test_contradicted_and_censoring_leader_forfeits_for_the_contradiction(swarm, protocol, members):
    protocol.submit(members, SAMPLES)
    protocol.elect()
    leader = leader_index(swarm)
    left_out = (leader + 1) % 4
    bitmap = ALL_VALID & ~(1 << left_out)
    protocol.publish(bitmap)
    kept = [i for i in range(4) if i != left_out]
    for node in members[:3]:
        protocol.report(node, [SCORES[1][i] for i in kept], merged=OTHER, valid=ALL_VALID)
    chain.sleep(61)
    participants = [Participant(samples=SAMPLES[i], leader=i == leader, reported=i < 3) for i in kept]
    tx, _ = settle_and_check(swarm, protocol, [members[i] for i in kept], participants, commits=4,
                             participants_bitmap=bitmap)
    assert tx.events["UpdateCensored"]["node"] == members[left_out]
    assert hex_of(tx.events["MergeDisputed"]["majorityHash"]) == OTHER
    assert reasons(tx)[kept.index(leader)] is Forfeit.MERGE_CONTRADICTED


@pytest.mark.parametrize(
    "hashes",
    [
        [OTHER, OTHER, MERGED, ZERO],  # half is not a strict majority
        [ZERO, ZERO, ZERO, MERGED],  # those who could not recompute the merge blame nobody
        [OTHER, "33" * 32, ZERO, MERGED],
    ],
    ids=["half", "zero-majority", "split"],
)
def test_leader_stands_without_a_strict_majority_of_another_nonzero_hash(swarm, protocol, members, hashes):
    open_report_phase(protocol, members)
    leader = leader_index(swarm)
    for node, scores, merged in zip(members, SCORES, hashes):
        protocol.report(node, scores, merged=merged)
    participants = [Participant(samples=s, leader=i == leader) for i, s in enumerate(SAMPLES)]
    tx, expected = settle_and_check(swarm, protocol, members, participants)
    assert "MergeDisputed" not in tx.events and "UpdateCensored" not in tx.events
    assert hex_of(tx.events["EpochSettled"]["modelHash"]) == MERGED
    assert set(reasons(tx)) == {Forfeit.NONE} and expected.payouts[leader] > 0


def test_non_quorate_epoch_judges_nobody_and_pays_nobody(swarm, protocol, members):
    """Two of four committers reported (not a strict majority): their contradicting hash
    and their valid bitmaps count for nothing, nobody is paid or struck, and the whole
    budget is carried; who did not report is still recorded."""
    protocol.submit(members, SAMPLES)
    protocol.elect()
    leader = leader_index(swarm)
    left_out = (leader + 1) % 4
    bitmap = ALL_VALID & ~(1 << left_out)
    protocol.publish(bitmap)
    kept = [i for i in range(4) if i != left_out]
    reporters = [leader, left_out]
    for i in reporters:
        protocol.report(members[i], [-5, 10, 20], merged=OTHER, valid=ALL_VALID)
    chain.sleep(61)
    participants = [Participant(samples=SAMPLES[i], leader=i == leader, reported=i in reporters) for i in kept]
    tx, expected = settle_and_check(swarm, protocol, [members[i] for i in kept], participants, commits=4,
                                    participants_bitmap=bitmap)
    settled = tx.events["EpochSettled"]
    assert not settled["quorate"] and settled["credited"] == 0 and settled["carried"] == REWARD
    assert hex_of(settled["modelHash"]) == MERGED
    assert "MergeDisputed" not in tx.events and "UpdateCensored" not in tx.events
    assert reasons(tx) == [Forfeit.NONE if i in reporters else Forfeit.NOT_REPORTED for i in kept]
    assert [swarm.memberOf(node)["strikes"] for node in members] == [0] * 4  # rated -5 (no credit), yet no strike


def test_forfeit_reasons_follow_their_precedence_even_when_nothing_was_due(create_swarm, admin, nodes):
    """Seven committers, every one declaring more samples than its allowance: the drawn
    leader times out (then stays silent), its successor publishes, is contradicted and does
    not report; a third is removed before reporting, rated negative like the first; four report.
    Each gets the reason that ranks first for it (OverDeclared only for those with no other),
    recorded even where the payout would have been zero anyway."""
    swarm, _ = create_swarm()
    protocol = Protocol(swarm, admin)
    members = nodes[:7]
    protocol.enroll(members, allowance=50)
    protocol.submit(members, 100)
    protocol.elect()
    timed_out = leader_index(swarm)
    chain.sleep(61)
    swarm.failover(1, {"from": admin})
    leader, removed = (timed_out + 1) % 7, (timed_out + 2) % 7
    protocol.publish()
    swarm.removeNode(members[removed], {"from": admin})
    scores = [-3 if i in (timed_out, removed) else 10 + i for i in range(7)]
    reporters = [i for i in range(7) if i not in (timed_out, leader, removed)]
    for i in reporters:
        protocol.report(members[i], scores, merged=OTHER)
    chain.sleep(61)
    participants = [
        Participant(samples=50, reported=i in reporters, skipped_leader=i == timed_out, removed=i == removed,
                    leader=i == leader, over_declared=True)
        for i in range(7)
    ]
    tx, expected = settle_and_check(swarm, protocol, members, participants)
    want = {timed_out: Forfeit.LEADER_TIMED_OUT, leader: Forfeit.MERGE_CONTRADICTED, removed: Forfeit.REMOVED}
    assert reasons(tx) == [want.get(i, Forfeit.OVER_DECLARED) for i in range(7)]
    assert tx.events["EpochSettled"]["credited"] == 0 and swarm.carry() == REWARD
    # A negative score is no vote: those two have no credit at all.
    assert expected.scores[timed_out] == expected.scores[removed] == 0
    assert expected.smoothed[timed_out] == expected.smoothed[removed] == 0
    assert all(expected.scores[i] > 0 for i in range(7) if i not in (timed_out, removed))
    assert tx.events["MergeDisputed"]["leader"] == members[leader]
