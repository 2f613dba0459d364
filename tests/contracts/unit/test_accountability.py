"""Accountability at settlement. Every committer (participant or not) reports the merge hash
it recomputed and the committed updates it found valid. Only a quorate epoch (a strict
majority of the committers reported) pays, strikes, judges the leader and feeds the
stopping rule. In a quorate epoch a leader that a strict majority of reporters contradicts
(MergeContradicted) or that left out an update a strict majority found valid (Censored)
forfeits and takes a strike. Commitments are bound to their sender off chain: a copied
commitment is accepted on chain, and it is the reporters' verdict that leaves it unpaid."""

import pytest
from brownie import chain, web3

from swarmtoken.rewards import Forfeit
from swarmtoken.store import commitment_of
from tests.fixtures.deployments import MERGED, commitment, param_hash
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement
from tests.fixtures.scores import in_units

REWARD = 1000 * 10**18
SAMPLES = [100, 200, 300, 400]
ALL = 0b1111
OTHER = "22" * 32
THIRD = "33" * 32
ZERO = "00" * 32
SCORE_BOUND = 10**9
METRIC_BOUND = 10**6


@pytest.fixture
def members(nodes, protocol):
    protocol.enroll(nodes[:4])
    return nodes[:4]


@pytest.fixture
def merging(members, protocol):
    """Four members committed SAMPLES to epoch 1 and a leader is drawn."""
    protocol.submit(members, SAMPLES)
    protocol.elect()
    return members


def leader_index(swarm, epoch=1):
    return swarm.epochState(epoch)["leaderIndex"]


def elect_leader_other_than(swarm, protocol, avoid):
    """Draw the leader; while the draw picks ``avoid``, replay the election from the same
    chain state one block later (a new closing block hash, hence a new draw)."""
    for _ in range(32):
        protocol.elect()
        if swarm.leaderOf(protocol.epoch) != avoid.address:
            return protocol.leader()
        chain.undo(2)
        chain.mine()
    raise AssertionError("the draw kept picking the same node")


def report_count(swarm, epoch=1):
    """How many committers reported in ``epoch`` (its reporters bitmap's population)."""
    return bin(swarm.epochState(epoch)["reporters"]).count("1")


def bitmap_without(index):
    return ALL & ~(1 << index)


def settle_checked(swarm, protocol, nodes, participants, **placement):
    """Settle and hold the outcome to the reference rule; returns (tx, expected)."""
    before = [swarm.claimable(node) for node in nodes]
    tx = protocol.settle()
    expected = expected_settlement(REWARD, participants, protocol.reports[1], swarm, **placement)
    assert_settled_as_expected(tx, swarm, nodes, before, expected, REWARD)
    return tx, expected


# ------------------------------------------------------------------ copied commitments
def test_copied_commitment_is_accepted_and_paid_nothing_once_reporters_reject_it(swarm, protocol, members):
    """The contract cannot tell a copy from an update (binding is checked off chain, where
    the copy does not open for the copier's address). The honest reporters mark it invalid
    and score it 0: its credit (the mean of the other reporters' votes; its own vouching for
    itself is ignored) is 0, its smoothed credit stays 0, so it has no data weight; as no
    strict majority found it valid it forfeits (Invalid), is paid nothing and takes a
    strike."""
    original, copier = members[0], members[1]
    copied = commitment(original, 1)
    swarm.submitUpdate(1, copied, 100, {"from": original})
    tx = swarm.submitUpdate(1, copied, 200, {"from": copier})
    assert tx.events["UpdateSubmitted"]["commitment"] == "0x" + copied.hex()
    assert tx.events["UpdateSubmitted"]["node"] == copier
    # Off chain, the copy does not open for the copier whatever file it serves.
    assert commitment_of(copier.address, 1, param_hash(original, 1)) != copied.hex()
    protocol.submit(members[2:], SAMPLES[2:])
    protocol.elect()
    protocol.publish()  # the leader merged everything

    honest = [[300, 0, 50, 80], [310, 0, 40, 70], [290, 0, 60, 75]]
    for node, scores in zip([original] + members[2:], honest):
        protocol.report(node, scores, valid=bitmap_without(1))
    protocol.report(copier, [300, 500, 50, 80])  # it vouches for itself
    leader = leader_index(swarm)
    participants = [Participant(samples=s, leader=i == leader) for i, s in enumerate([100, 200, 300, 400])]
    tx, expected = settle_checked(swarm, protocol, members, participants)

    assert (expected.scores[1], expected.smoothed[1], expected.weights[1], expected.standing[1]) == (0, 0, 0, False)
    assert swarm.memberOf(copier)["smoothedScore"] == 0
    assert swarm.claimable(copier) == 0
    assert tx.events["ParticipantSettled"][1]["payout"] == 0
    assert expected.forfeits[1] is Forfeit.INVALID
    assert tx.events["ParticipantSettled"][1]["forfeit"] == int(Forfeit.INVALID)
    assert all(swarm.claimable(node) > 0 for node in [original] + members[2:])
    assert swarm.memberOf(copier)["strikes"] == 1


def test_leader_leaving_out_a_copied_commitment_is_not_censoring(swarm, protocol, members):
    """Only one reporter (the copier) found the copy valid, not a strict majority: leaving
    it out is the leader's duty, not censorship, and the leader is paid."""
    original, copier = members[0], members[1]
    copied = commitment(original, 1)
    swarm.submitUpdate(1, copied, 100, {"from": original})
    swarm.submitUpdate(1, copied, 200, {"from": copier})
    protocol.submit(members[2:], SAMPLES[2:])
    leader = elect_leader_other_than(swarm, protocol, copier)
    bitmap = bitmap_without(1)
    protocol.publish(bitmap)

    for node, scores in zip([original] + members[2:], [[30, 50, 80], [31, 40, 70], [29, 60, 75]]):
        protocol.report(node, scores, valid=bitmap)
    protocol.report(copier, [30, 50, 80], valid=ALL)
    participants = [Participant(samples=s, leader=n == leader) for n, s in zip(members, SAMPLES) if n != copier]
    tx, expected = settle_checked(
        swarm, protocol, [original] + members[2:], participants, commits=4, participants_bitmap=bitmap
    )

    assert "UpdateCensored" not in tx.events
    assert expected.verdict.censored == ()
    assert [e["forfeit"] for e in tx.events["ParticipantSettled"]] == [0, 0, 0]
    assert swarm.claimable(leader) > 0
    assert swarm.memberOf(leader)["strikes"] == 0
    assert swarm.claimable(copier) == 0


# ------------------------------------------------------------------ non-participants report
def test_non_participant_reports_and_settlement_waits_for_every_committer(swarm, protocol, merging):
    """A committer the leader left out still reports (its score vector covers the
    participants, and it is one of each participant's other reporters, voting over all of
    them since none is itself); settlement is not due until every committer reported, then
    at once."""
    left_out = (leader_index(swarm) + 1) % 4
    bitmap = bitmap_without(left_out)
    protocol.publish(bitmap)
    participants_nodes = [n for i, n in enumerate(merging) if i != left_out]
    for node in participants_nodes:
        protocol.report(node, in_units([10, 20, 30]), valid=bitmap)
    deadline = swarm.epochState(1)["deadline"]
    with reverts_with("SettlementNotDue", 1, 3, 4, deadline):
        protocol.settle()

    tx = protocol.report(merging[left_out], in_units([40, 50, 60]), valid=bitmap)
    event = tx.events["ValidationReported"]
    assert (event["reporter"], list(event["scores"])) == (merging[left_out], in_units([40, 50, 60]))
    state = swarm.epochState(1)
    assert state["reporters"] == ALL
    leader = leader_index(swarm)
    participants = [Participant(samples=SAMPLES[i], leader=i == leader) for i in range(4) if i != left_out]
    tx, expected = settle_checked(swarm, protocol, participants_nodes, participants, commits=4, participants_bitmap=bitmap)
    assert tx.events["EpochSettled"]["reporters"] == 4
    # Each participant's credit: the mean of the votes of its three other reporters, two
    # participants (each voting over the two others) and the non-participant (voting over
    # all three, positive total 150). Participant 0: 10 of 40, 10 of 30 and 40 of 150.
    credits = [
        (10 * 10**9 // 40 + 10 * 10**9 // 30 + 40 * 10**9 // 150) // 3,
        (20 * 10**9 // 50 + 20 * 10**9 // 30 + 50 * 10**9 // 150) // 3,
        (30 * 10**9 // 50 + 30 * 10**9 // 40 + 60 * 10**9 // 150) // 3,
    ]
    assert expected.scores == tuple(credits) == (283_333_333, 466_666_666, 583_333_333)
    assert [e["score"] for e in tx.events["ParticipantSettled"]] == credits
    assert len(tx.events["ParticipantSettled"]) == 3
    assert swarm.claimable(merging[left_out]) == 0


def test_settlement_without_every_committer_waits_for_the_report_deadline(swarm, protocol, merging):
    left_out = (leader_index(swarm) + 1) % 4
    bitmap = bitmap_without(left_out)
    protocol.publish(bitmap)
    for i, node in enumerate(merging):
        if i != left_out:
            protocol.report(node, [10, 20, 30], valid=bitmap)
    deadline = swarm.epochState(1)["deadline"]
    with reverts_with("SettlementNotDue", 1, 3, 4, deadline):
        protocol.settle()
    chain.sleep(61)
    tx = protocol.settle()
    assert tx.events["EpochSettled"]["reporters"] == 3
    assert tx.events["EpochSettled"]["quorate"]


# ------------------------------------------------------------------ merge disputes
@pytest.mark.parametrize(
    "hashes, majority",
    [
        ([OTHER, OTHER, OTHER, MERGED], OTHER),
        ([OTHER, OTHER, OTHER, OTHER], OTHER),
        ([OTHER, OTHER, None, MERGED], OTHER),  # 2 of 3 reports: a strict majority of reporters
    ],
)
def test_leader_contradicted_by_majority_forfeits_and_is_struck(swarm, protocol, merging, hashes, majority):
    """The majority's hash becomes the epoch's model; the leader forfeits
    (MergeContradicted) and takes a strike although its credit and smoothed credit are
    positive."""
    protocol.publish()
    leader = leader_index(swarm)
    for node, merged in zip(merging, hashes):
        if merged is not None:
            protocol.report(node, [10, 20, 30, 40], merged=merged)
    if None in hashes:
        chain.sleep(61)
    participants = [
        Participant(samples=s, leader=i == leader, reported=hashes[i] is not None) for i, s in enumerate(SAMPLES)
    ]
    tx, expected = settle_checked(swarm, protocol, merging, participants)

    disputed = tx.events["MergeDisputed"]
    assert (disputed["epoch"], disputed["leader"]) == (1, merging[leader])
    assert (disputed["publishedHash"], disputed["majorityHash"]) == ("0x" + MERGED, "0x" + majority)
    assert tx.events["EpochSettled"]["modelHash"] == "0x" + majority == swarm.epochState(1)["modelHash"]
    assert swarm.epochState(1)["mergedHash"] == "0x" + MERGED
    settled = tx.events["ParticipantSettled"][leader]
    assert settled["score"] > 0 and settled["smoothedScore"] > 0
    assert (settled["payout"], settled["forfeit"]) == (0, int(Forfeit.MERGE_CONTRADICTED))
    assert swarm.memberOf(merging[leader])["strikes"] == 1
    assert expected.verdict.fault is Forfeit.MERGE_CONTRADICTED


@pytest.mark.parametrize(
    "hashes",
    [
        [OTHER, OTHER, MERGED, MERGED],  # exactly half
        [OTHER, OTHER, THIRD, MERGED],  # a plurality is not a majority
        [ZERO, ZERO, ZERO, MERGED],  # a majority that could not recompute the merge
    ],
)
def test_leader_not_contradicted_by_a_strict_majority_stands(swarm, protocol, merging, hashes):
    protocol.publish()
    leader = leader_index(swarm)
    for node, merged in zip(merging, hashes):
        protocol.report(node, [10, 20, 30, 40], merged=merged)
    participants = [Participant(samples=s, leader=i == leader) for i, s in enumerate(SAMPLES)]
    tx, expected = settle_checked(swarm, protocol, merging, participants)

    assert "MergeDisputed" not in tx.events
    assert tx.events["EpochSettled"]["modelHash"] == "0x" + MERGED == swarm.epochState(1)["modelHash"]
    assert tx.events["ParticipantSettled"][leader]["forfeit"] == 0
    assert swarm.claimable(merging[leader]) > 0
    assert swarm.memberOf(merging[leader])["strikes"] == 0


# ------------------------------------------------------------------ censorship
def test_leader_censoring_an_update_a_majority_found_valid_forfeits(swarm, protocol, merging):
    """Three of four reporters found the left-out update valid: UpdateCensored names its
    node, the leader forfeits (Censored) and takes a strike; the others are paid."""
    leader = leader_index(swarm)
    left_out = (leader + 1) % 4
    bitmap = bitmap_without(left_out)
    protocol.publish(bitmap)
    valids = [ALL, ALL, ALL, bitmap]
    for node, valid in zip(merging, valids):
        protocol.report(node, [10, 20, 30], valid=valid)
    participants = [Participant(samples=SAMPLES[i], leader=i == leader) for i in range(4) if i != left_out]
    paid_nodes = [n for i, n in enumerate(merging) if i != left_out]
    tx, expected = settle_checked(swarm, protocol, paid_nodes, participants, commits=4, participants_bitmap=bitmap)

    censored = tx.events["UpdateCensored"]
    assert len(censored) == 1
    assert (censored["epoch"], censored["leader"], censored["node"]) == (1, merging[leader], merging[left_out])
    assert "MergeDisputed" not in tx.events
    by_node = {e["node"]: e for e in tx.events["ParticipantSettled"]}
    assert (by_node[merging[leader]]["payout"], by_node[merging[leader]]["forfeit"]) == (0, int(Forfeit.CENSORED))
    assert swarm.memberOf(merging[leader])["strikes"] == 1
    assert expected.verdict.censored == (left_out,)
    assert all(swarm.claimable(n) > 0 for n in paid_nodes if n != merging[leader])


def test_leaving_out_an_update_only_half_found_valid_is_not_censoring(swarm, protocol, merging):
    leader = leader_index(swarm)
    left_out = (leader + 1) % 4
    bitmap = bitmap_without(left_out)
    protocol.publish(bitmap)
    for node, valid in zip(merging, [ALL, ALL, bitmap, bitmap]):
        protocol.report(node, [10, 20, 30], valid=valid)
    participants = [Participant(samples=SAMPLES[i], leader=i == leader) for i in range(4) if i != left_out]
    paid_nodes = [n for i, n in enumerate(merging) if i != left_out]
    tx, _ = settle_checked(swarm, protocol, paid_nodes, participants, commits=4, participants_bitmap=bitmap)

    assert "UpdateCensored" not in tx.events
    assert {e["node"]: e["forfeit"] for e in tx.events["ParticipantSettled"]}[merging[leader]] == 0
    assert swarm.claimable(merging[leader]) > 0
    assert swarm.memberOf(merging[leader])["strikes"] == 0


def test_contradicted_leader_that_also_censored_forfeits_as_contradicted(swarm, protocol, merging):
    """The merge verdict comes first; the censorship is still on record."""
    leader = leader_index(swarm)
    left_out = (leader + 1) % 4
    protocol.publish(bitmap_without(left_out))
    for node in merging:
        protocol.report(node, [10, 20, 30], merged=OTHER, valid=ALL)
    tx = protocol.settle()
    assert tx.events["MergeDisputed"]["majorityHash"] == "0x" + OTHER
    assert tx.events["UpdateCensored"]["node"] == merging[left_out]
    forfeits = {e["node"]: e["forfeit"] for e in tx.events["ParticipantSettled"]}
    assert forfeits[merging[leader]] == int(Forfeit.MERGE_CONTRADICTED)
    assert swarm.memberOf(merging[leader])["strikes"] == 1


# ------------------------------------------------------------------ quorum
def test_epoch_without_quorum_pays_nothing_strikes_nobody_and_judges_nobody(swarm, protocol, merging):
    """Two reports of four commits (2 * 2 <= 4): the whole budget is carried, a credit of 0
    gives no strike and no smoothed credit moves, the leader is not judged although
    both reporters contradict it, and the metric does not count for the stopping rule."""
    protocol.publish()
    for node in merging[:2]:
        protocol.report(node, in_units([10, 20, 30, -40]), metric=800_000, merged=OTHER)
    chain.sleep(61)
    tx = protocol.settle()

    settled = tx.events["EpochSettled"]
    assert not settled["quorate"]
    assert (settled["budget"], settled["credited"], settled["carried"]) == (REWARD, 0, REWARD)
    assert settled["reporters"] == 2
    assert settled["modelHash"] == "0x" + MERGED  # nobody judged the leader
    assert "MergeDisputed" not in tx.events
    assert [e["payout"] for e in tx.events["ParticipantSettled"]] == [0] * 4
    # The credits are still recorded (the other reporter's vote, or both reporters' mean: node
    # 0 has 10 of reporter 1's positive 40, node 2 has 30 of 50 and 30 of 40, each capped at
    # one and a half of three equal shares, half a vote; -40 counts as 0)...
    assert [e["score"] for e in tx.events["ParticipantSettled"]] == [
        250_000_000, 400_000_000, (10**9 // 2 + 10**9 // 2) // 2, 0]
    # ... but no smoothed credit moves, so nobody stands well.
    assert [e["smoothedScore"] for e in tx.events["ParticipantSettled"]] == [0] * 4
    assert [e["standing"] for e in tx.events["ParticipantSettled"]] == [False] * 4
    assert [swarm.memberOf(n)["smoothedScore"] for n in merging] == [0] * 4
    assert [e["forfeit"] for e in tx.events["ParticipantSettled"]] == [0, 0, 1, 1]
    assert "NodeSuspended" not in tx.events
    assert [swarm.memberOf(n)["strikes"] for n in merging] == [0] * 4
    assert (swarm.bestMetric(), swarm.staleEpochs()) == (0, 1)
    assert swarm.carry() == REWARD
    assert tx.events["EpochOpened"]["budget"] == 2 * REWARD


def test_epoch_with_a_strict_majority_of_reports_pays(swarm, protocol, merging):
    protocol.publish()
    for node in merging[:3]:
        protocol.report(node, [10, 20, 30, 40], metric=800_000)
    chain.sleep(61)
    leader = leader_index(swarm)
    participants = [Participant(samples=s, leader=i == leader, reported=i < 3) for i, s in enumerate(SAMPLES)]
    tx, expected = settle_checked(swarm, protocol, merging, participants)
    assert expected.quorate and tx.events["EpochSettled"]["quorate"]
    assert tx.events["EpochSettled"]["credited"] > 0
    assert (swarm.bestMetric(), swarm.staleEpochs()) == (800_000, 0)


def test_two_colluding_reporters_can_no_longer_get_the_others_struck(swarm, protocol, members):
    """The old exploit: of four participants, two report and push the other two to the
    lowest score, so the victims get no vote at all (a credit of 0). Without quorum it
    counts for nothing, epoch after epoch (suspendAfter is 2): no smoothed credit moves and
    nobody is struck. Once three of four report the epoch is quorate and the vote applies:
    a liar can only withhold its own vote. The victim that reported has only the two
    colluders as other reporters, so its credit is 0 and it is struck; the other keeps the
    honest reporter's vote (10 of its 30, a third of it), enough weight not to be struck."""
    colluders, victims = members[:2], members[2:]
    rigged = [SCORE_BOUND, SCORE_BOUND, -SCORE_BOUND, -SCORE_BOUND]
    for _ in range(2):
        protocol.submit(members, SAMPLES)
        protocol.elect()
        protocol.publish()
        for node in colluders:
            protocol.report(node, rigged)
        chain.sleep(61)
        tx = protocol.settle()
        assert not tx.events["EpochSettled"]["quorate"]
        # Each colluder gives the other colluder as much of its vote as one participant can
        # get: one and a half of its three equal shares.
        assert [e["score"] for e in tx.events["ParticipantSettled"]] == [15 * 10**8 // 3] * 2 + [0, 0]
        assert [e["smoothedScore"] for e in tx.events["ParticipantSettled"]] == [0] * 4
        assert tx.events["EpochSettled"]["credited"] == 0
        assert "NodeSuspended" not in tx.events
    for node in victims:
        member = swarm.memberOf(node)
        assert (member["status"], member["strikes"], member["smoothedScore"]) == (1, 0, 0)

    protocol.submit(members, SAMPLES)
    protocol.elect()
    protocol.publish()
    for node in colluders:
        protocol.report(node, rigged)
    protocol.report(victims[0], in_units([10, 10, 10, 10]))
    chain.sleep(61)
    leader = leader_index(swarm, 3)
    before = [swarm.claimable(node) for node in members]
    budget = REWARD + swarm.carry()  # the two non-quorate epochs carried their budgets
    assert budget == 3 * REWARD
    tx = protocol.settle()
    participants = [Participant(samples=s, leader=i == leader, reported=i < 3) for i, s in enumerate(SAMPLES)]
    expected = expected_settlement(budget, participants, protocol.reports[3], swarm)
    assert_settled_as_expected(tx, swarm, members, before, expected, budget)
    assert tx.events["EpochSettled"]["quorate"]
    assert [e["score"] for e in tx.events["ParticipantSettled"]][2:] == [0, 10**9 // 3 // 3]
    assert [swarm.memberOf(n)["smoothedScore"] for n in victims] == [0, 10**9 // 3 // 3 // 2]
    # The second victim's smoothed credit per sample backs all of its 400 samples.
    assert expected.weights[2:] == (0, 400) and expected.struck == (False, False, True, False)
    assert [swarm.memberOf(n)["strikes"] for n in victims] == [1, 0]
    assert [swarm.claimable(n) for n in victims] == [0, 0]  # no credit; did not report
    assert all(swarm.claimable(n) > 0 for n in colluders)


# ------------------------------------------------------------------ score and metric bounds
@pytest.fixture
def reporting(merging, protocol):
    protocol.publish()
    return merging


def report_raw(swarm, node, scores, metric=1):
    return swarm.reportValidation(1, metric, bytes.fromhex(MERGED), ALL, scores, {"from": node})


def test_scores_must_lie_within_the_score_bound(swarm, reporting):
    """Scores lie in [-1e9, 1e9]: one past either bound is refused, the bounds and one
    inside them are accepted (one reporter each)."""
    for score in (SCORE_BOUND + 1, -SCORE_BOUND - 1, 2**63 - 1, -(2**63)):
        with reverts_with("ScoreOutOfRange", 2, score):
            report_raw(swarm, reporting[0], [1, 1, score, 1])
    assert report_count(swarm) == 0
    for node, score in zip(reporting, (SCORE_BOUND, SCORE_BOUND - 1, -SCORE_BOUND, -SCORE_BOUND + 1)):
        tx = report_raw(swarm, node, [1, 1, score, 1])
        assert list(tx.events["ValidationReported"]["scores"]) == [1, 1, score, 1]
    assert report_count(swarm) == 4


def test_metric_must_lie_within_the_metric_bound(swarm, reporting):
    """Metrics lie in [0, 1e6]: one past either bound is refused, the bounds and one inside
    them are accepted (one reporter each)."""
    for metric in (METRIC_BOUND + 1, -1, 2**63 - 1, -(2**63)):
        with reverts_with("MetricOutOfRange", metric):
            report_raw(swarm, reporting[0], [1] * 4, metric)
    assert report_count(swarm) == 0
    for node, metric in zip(reporting, (METRIC_BOUND, METRIC_BOUND - 1, 0, 1)):
        tx = report_raw(swarm, node, [1] * 4, metric)
        assert tx.events["ValidationReported"]["metric"] == metric
    assert report_count(swarm) == 4


def test_out_of_range_score_is_reported_at_its_first_index(swarm, reporting):
    with reverts_with("ScoreOutOfRange", 1, -SCORE_BOUND - 5):
        report_raw(swarm, reporting[0], [0, -SCORE_BOUND - 5, SCORE_BOUND + 9, 0])



def test_score_word_that_is_not_a_clean_int64_is_refused(swarm, reporting):
    """The bound check reads raw calldata words: a word whose high bits are dirty (here
    2**64 - 1, which an int64 cleanup would read as -1) is refused, not silently cleaned."""
    data = bytearray(bytes.fromhex(swarm.reportValidation.encode_input(1, 1, bytes.fromhex(MERGED), ALL, [1, 1, -1, 1])[2:]))
    clean = (-1).to_bytes(32, "big", signed=True)
    at = bytes(data).rindex(clean)
    data[at : at + 32] = (2**64 - 1).to_bytes(32, "big")
    tx = {"from": reporting[0].address, "to": swarm.address, "data": "0x" + data.hex(), "gas": 1_000_000}
    receipt = web3.eth.wait_for_transaction_receipt(web3.eth.send_transaction(tx))
    assert receipt.status == 0
    assert report_count(swarm) == 0
    tx["data"] = "0x" + bytes(bytearray(data[:at]) + clean + data[at + 32 :]).hex()
    assert web3.eth.wait_for_transaction_receipt(web3.eth.send_transaction(tx)).status == 1
    assert report_count(swarm) == 1
