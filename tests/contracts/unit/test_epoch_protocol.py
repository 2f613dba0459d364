"""One epoch step by step: commit, elect, fail-over, publish, report, settle, claim; each
step's success (state and event) and every way it is refused."""

from dataclasses import replace

import pytest
from brownie import ZERO_ADDRESS, accounts, chain, web3
from eth_abi import encode

from swarmtoken.rewards import CREDIT_SCALE, VOTE_CAP_BPS, VOTE_FLOOR, VOTE_RULE_REVISION
from tests.fixtures.deployments import ALLOWANCE, NO_REPORTS, commitment, pack
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement
from tests.fixtures.scores import SCORE_UNIT, in_units

COMMIT, MERGE, REPORT, SETTLED = 0, 1, 2, 3
NONE = 0
REWARD = 1000 * 10**18
MERGED = b"\x22" * 32
ALL = 0b1111


@pytest.fixture
def members(nodes, protocol):
    """Four enrolled nodes."""
    protocol.enroll(nodes[:4])
    return nodes[:4]


@pytest.fixture
def committed(members, protocol):
    """All four members committed to epoch 1."""
    protocol.submit(members, [100, 200, 300, 400])
    return members


@pytest.fixture
def merging(committed, protocol):
    """Epoch 1 in the Merge phase."""
    protocol.elect()
    return committed


@pytest.fixture
def reporting(merging, protocol):
    """Epoch 1 in the Report phase with all four as participants."""
    protocol.publish()
    return merging


def node_at(swarm, epoch, index):
    return accounts.at(swarm.commitAt(epoch, index)["node"], force=True)


# ------------------------------------------------------------------ commit
def test_node_commits_its_update(swarm, members):
    bound = commitment(members[1], 1)
    swarm.submitUpdate(1, commitment(members[0], 1), 10, {"from": members[0]})
    tx = swarm.submitUpdate(1, bound, 234, {"from": members[1]})
    event = tx.events["UpdateSubmitted"]
    assert event["epoch"] == 1
    assert event["node"] == members[1]
    assert event["index"] == 1
    assert event["commitment"] == "0x" + bound.hex()
    assert (event["declaredSamples"], event["samples"]) == (234, 234)  # within the allowance
    commit = swarm.commitAt(1, 1)
    assert (commit["node"], commit["samples"], commit["overDeclared"]) == (members[1], 234, False)
    assert swarm.epochState(1)["commitCount"] == 2
    member = swarm.memberOf(members[1])
    assert member["lastSubmitEpoch"] == 1
    assert member["commitIndex"] == 1


def test_commitment_binds_the_node_epoch_and_file(members):
    """keccak256(abi.encode(node, epoch, sha256)): the fixture's commitment matches the
    contract's definition, and differs per node and per epoch for the same file."""
    sha = b"\x42" * 32
    expected = web3.keccak(encode(["address", "uint256", "bytes32"], [members[0].address, 3, sha]))
    assert commitment(members[0], 3, sha) == bytes(expected)
    assert commitment(members[1], 3, sha) != commitment(members[0], 3, sha)
    assert commitment(members[0], 4, sha) != commitment(members[0], 3, sha)


def test_commit_for_a_future_epoch_is_refused(swarm, members):
    with reverts_with("WrongEpoch", 2, 1):
        swarm.submitUpdate(2, commitment(members[0], 2), 10, {"from": members[0]})


def test_commit_for_a_past_epoch_is_refused(swarm, members, protocol):
    protocol.run_epoch(members[:3], [1, 1, 1])
    with reverts_with("WrongEpoch", 1, 2):
        swarm.submitUpdate(1, commitment(members[3], 1), 10, {"from": members[3]})


def test_committing_twice_in_an_epoch_is_refused(swarm, members):
    swarm.submitUpdate(1, commitment(members[0], 1), 10, {"from": members[0]})
    with reverts_with("AlreadySubmitted", members[0], 1):
        swarm.submitUpdate(1, b"\x01" * 32, 10, {"from": members[0]})


@pytest.mark.parametrize(
    "value, samples, reason",
    [
        (b"\x00" * 32, 10, "zero commitment"),
        (b"\x01" * 32, 0, "zero numSamples"),
    ],
)
def test_malformed_commit_is_refused(swarm, members, value, samples, reason):
    with reverts_with("InvalidSubmission", reason):
        swarm.submitUpdate(1, value, samples, {"from": members[0]})


def test_non_member_cannot_commit(swarm, outsider):
    with reverts_with("NotActive", outsider, NONE):
        swarm.submitUpdate(1, b"\x01" * 32, 10, {"from": outsider})


def test_late_commit_is_accepted_until_the_election(swarm, committed, protocol, nodes):
    protocol.enroll(nodes[4:5])
    protocol.close_commit()
    tx = swarm.submitUpdate(1, commitment(nodes[4], 1), 5, {"from": nodes[4]})
    assert tx.events["UpdateSubmitted"]["index"] == 4


def test_commitments_are_bounded_by_max_peers_even_with_churn(create_swarm, admin, nodes):
    swarm, _ = create_swarm(min_peers=2, max_peers=2)
    for node in nodes[:3]:
        swarm.authorize(node, 0, ALLOWANCE, {"from": admin})
    for node in nodes[:2]:
        swarm.enroll("http://n", {"from": node})
        swarm.submitUpdate(1, commitment(node, 1), 10, {"from": node})
    swarm.leave({"from": nodes[0]})
    swarm.enroll("http://n", {"from": nodes[2]})
    with reverts_with("MaxPeersReached", 2):
        swarm.submitUpdate(1, commitment(nodes[2], 1), 10, {"from": nodes[2]})


def test_commit_after_the_election_is_refused(swarm, merging, protocol, nodes):
    protocol.enroll(nodes[4:5])
    with reverts_with("WrongPhase", 1, MERGE, COMMIT):
        swarm.submitUpdate(1, commitment(nodes[4], 1), 5, {"from": nodes[4]})


# ------------------------------------------------------------------ elect
def test_anyone_elects_a_committed_leader_after_the_commit_window(swarm, committed, protocol, outsider):
    """Two steps, both open to anyone: close the commits, then draw in a later block."""
    protocol.close_commit()
    closed = swarm.electLeader(1, {"from": outsider})
    assert closed.events["CommitsClosed"]["drawBlock"] == closed.block_number
    assert swarm.leaderOf(1) == ZERO_ADDRESS
    tx = swarm.drawLeader(1, {"from": outsider})
    event = tx.events["LeaderElected"]
    state = swarm.epochState(1)
    assert state["phase"] == MERGE
    assert state["leaderIndex"] == event["seed"] % 4
    assert event["leader"] == committed[state["leaderIndex"]] == swarm.leaderOf(1)
    assert event["epoch"] == 1
    assert event["deadline"] == tx.timestamp + 60 == state["deadline"]


def test_election_waits_for_the_commit_window_while_an_active_member_has_not_committed(swarm, members, protocol):
    protocol.submit(members[:3])  # minPeers reached, but the fourth member may still commit
    deadline = swarm.epochState(1)["deadline"]
    with reverts_with("CommitWindowOpen", 1, deadline):
        swarm.electLeader(1, {"from": members[0]})


def test_anyone_closes_the_commits_early_once_every_active_member_committed(swarm, committed, outsider):
    """The window is an upper bound: with everyone in, nobody is left to wait for."""
    assert chain.time() < swarm.epochState(1)["deadline"]
    tx = swarm.electLeader(1, {"from": outsider})
    assert tx.events["CommitsClosed"]["epoch"] == 1
    assert swarm.epochState(1)["phase"] == MERGE


def test_a_member_enrolling_during_the_commit_phase_reopens_the_wait(swarm, committed, nodes, protocol):
    protocol.enroll(nodes[4:5])
    deadline = swarm.epochState(1)["deadline"]
    with reverts_with("CommitWindowOpen", 1, deadline):
        swarm.electLeader(1, {"from": committed[0]})


def test_closing_early_still_needs_min_peers_commits(swarm, nodes, protocol):
    protocol.enroll(nodes[:2])
    protocol.submit(nodes[:2])  # every active member committed, but only 2 of minPeers 3
    with reverts_with("NotEnoughCommits", 1, 2, 3):
        swarm.electLeader(1, {"from": nodes[0]})


def test_election_needs_min_peers_commits(swarm, members, protocol):
    protocol.submit(members[:2])
    protocol.close_commit()
    with reverts_with("NotEnoughCommits", 1, 2, 3):
        swarm.electLeader(1, {"from": members[0]})
    # A late third commit unblocks it.
    protocol.submit(members[2:3])
    swarm.electLeader(1, {"from": members[0]})
    assert swarm.epochState(1)["phase"] == MERGE


def test_election_happens_once(swarm, merging):
    with reverts_with("WrongPhase", 1, MERGE, COMMIT):
        swarm.electLeader(1, {"from": merging[0]})


def test_election_of_a_wrong_epoch_is_refused(swarm, committed, protocol):
    protocol.close_commit()
    with reverts_with("WrongEpoch", 0, 1):
        swarm.electLeader(0, {"from": committed[0]})
    with reverts_with("WrongEpoch", 0, 1):
        swarm.drawLeader(0, {"from": committed[0]})


# ------------------------------------------------------------------ fail-over
def test_leader_times_out_and_next_candidate_takes_over(swarm, merging, outsider):
    state = swarm.epochState(1)
    timed_out = state["leaderIndex"]
    skipped = node_at(swarm, 1, timed_out)
    following = (timed_out + 1) % 4
    chain.sleep(61)
    tx = swarm.failover(1, {"from": outsider})
    event = tx.events["LeaderSkipped"]
    assert event["epoch"] == 1
    assert event["skipped"] == skipped
    assert event["next"] == merging[following] == swarm.leaderOf(1)
    assert event["deadline"] == tx.timestamp + 60
    state = swarm.epochState(1)
    assert state["leaderIndex"] == following
    assert state["failovers"] == 1
    assert state["skipped"] == 1 << timed_out
    assert state["phase"] == MERGE

    with reverts_with("NotLeader", skipped, merging[following]):
        swarm.publishMerge(1, MERGED, ALL, {"from": skipped})
    swarm.publishMerge(1, MERGED, ALL, {"from": merging[following]})


def test_failover_waits_for_the_merge_deadline(swarm, merging):
    deadline = swarm.epochState(1)["deadline"]
    with reverts_with("MergeWindowOpen", 1, deadline):
        swarm.failover(1, {"from": merging[0]})


def test_failover_needs_an_elected_leader(swarm, committed):
    with reverts_with("WrongPhase", 1, COMMIT, MERGE):
        swarm.failover(1, {"from": committed[0]})


# ------------------------------------------------------------------ publish
def leader_index(swarm, epoch=1):
    return swarm.epochState(epoch)["leaderIndex"]


def test_leader_publishes_the_merge(swarm, merging, protocol):
    leader = protocol.leader()
    left_out = (leader_index(swarm) + 1) % 4
    bitmap = ALL & ~(1 << left_out)
    tx = swarm.publishMerge(1, MERGED, bitmap, {"from": leader})
    event = tx.events["MergePublished"]
    assert event["epoch"] == 1
    assert event["leader"] == leader
    assert event["mergedHash"] == "0x" + MERGED.hex()
    assert event["participants"] == bitmap
    state = swarm.epochState(1)
    assert state["phase"] == REPORT
    assert state["participants"] == bitmap
    assert state["participantCount"] == 3
    assert state["mergedHash"] == "0x" + MERGED.hex()
    assert state["deadline"] == tx.timestamp + 60


def test_only_the_leader_publishes(swarm, merging, protocol, outsider):
    leader = protocol.leader()
    with reverts_with("NotLeader", outsider, leader):
        swarm.publishMerge(1, MERGED, ALL, {"from": outsider})
    for node in merging:
        if node != leader:
            with reverts_with("NotLeader", node, leader):
                swarm.publishMerge(1, MERGED, ALL, {"from": node})


def test_leader_cannot_publish_after_its_deadline(swarm, merging, protocol):
    deadline = swarm.epochState(1)["deadline"]
    chain.sleep(61)
    with reverts_with("DeadlinePassed", 1, deadline):
        swarm.publishMerge(1, MERGED, ALL, {"from": protocol.leader()})


def test_merge_with_a_zero_hash_is_refused(swarm, merging, protocol):
    with reverts_with("InvalidSubmission", "zero mergedHash"):
        swarm.publishMerge(1, b"\x00" * 32, ALL, {"from": protocol.leader()})


def test_leader_must_merge_its_own_update(swarm, merging, protocol):
    """The leader's own update anchors the merge: a bitmap without it is refused, even
    with enough other participants."""
    leader = protocol.leader()
    for bitmap in (ALL & ~(1 << leader_index(swarm)), 0):
        with reverts_with("LeaderNotParticipant", leader):
            swarm.publishMerge(1, MERGED, bitmap, {"from": leader})


@pytest.mark.parametrize("bitmap, index", [(0b11111, 4), (0b111 | 1 << 200, 200), (1 << 255 | 0b111, 255)])
def test_merge_naming_an_uncommitted_participant_is_refused(swarm, merging, protocol, bitmap, index):
    with reverts_with("ParticipantNotCommitted", index, 4):
        swarm.publishMerge(1, MERGED, bitmap, {"from": protocol.leader()})


@pytest.mark.parametrize("others", [0, 1])
def test_merge_with_too_few_participants_is_refused(swarm, merging, protocol, others):
    own = leader_index(swarm)
    bitmap = 1 << own | (1 << (own + 1) % 4 if others else 0)
    with reverts_with("TooFewParticipants", 1 + others, 3):
        swarm.publishMerge(1, MERGED, bitmap, {"from": protocol.leader()})


def test_publish_before_the_election_is_refused(swarm, committed):
    with reverts_with("WrongPhase", 1, COMMIT, MERGE):
        swarm.publishMerge(1, MERGED, ALL, {"from": committed[0]})


# ------------------------------------------------------------------ report
def report(swarm, node, scores, metric=1, merged=b"\x11" * 32, valid=ALL):
    return swarm.reportValidation(1, metric, merged, valid, scores, {"from": node})


def test_committer_reports_and_the_digest_chains_the_reports(swarm, reporting):
    digest = b"\x00" * 32
    for bit, node in enumerate(reporting[:2]):
        scores = [10 * bit, -3, 0, 10**9]
        metric = 880_000 + bit
        merged, valid = (b"\x11" * 32, ALL) if bit else (b"\x33" * 32, 0b0101)
        tx = swarm.reportValidation(1, metric, merged, valid, scores, {"from": node})
        event = tx.events["ValidationReported"]
        assert (event["epoch"], event["reporter"], event["metric"]) == (1, node, metric)
        assert (event["mergedHash"], event["valid"]) == ("0x" + merged.hex(), valid)
        assert list(event["scores"]) == scores
        head = web3.keccak(encode(["address", "int64", "bytes32", "uint256"], [node.address, metric, merged, valid]))
        digest = web3.keccak(encode(["bytes32", "bytes32", "int64[]"], [digest, head, scores]))
    state = swarm.epochState(1)
    assert state["reporters"] == 0b11
    assert bytes(state["reportsDigest"]) == bytes(digest)


def test_only_committers_report(swarm, reporting, protocol, nodes, outsider):
    """Any committer may report; an outsider or a member that did not commit may not."""
    protocol.enroll(nodes[4:5])
    for account in (outsider, nodes[4]):
        with reverts_with("NotCommitter", account, 1):
            report(swarm, account, [1, 1, 1, 1])
    assert swarm.epochState(1)["reporters"] == 0


def test_valid_bitmap_may_only_name_committed_updates(swarm, reporting):
    with reverts_with("ParticipantNotCommitted", 4, 4):
        report(swarm, reporting[0], [1, 1, 1, 1], valid=0b10000)
    with reverts_with("ParticipantNotCommitted", 255, 4):
        report(swarm, reporting[0], [1, 1, 1, 1], valid=1 << 255 | ALL)
    report(swarm, reporting[0], [1, 1, 1, 1], valid=0)  # found nothing valid: allowed


def test_reporting_twice_is_refused(swarm, reporting):
    report(swarm, reporting[0], [1, 1, 1, 1])
    with reverts_with("AlreadyReported", reporting[0], 1):
        report(swarm, reporting[0], [1, 1, 1, 1])


@pytest.mark.parametrize("length", [0, 3, 5])
def test_score_vector_must_match_the_participants(swarm, reporting, length):
    with reverts_with("ScoreCountMismatch", length, 4):
        report(swarm, reporting[0], [1] * length)


def test_report_after_the_report_deadline_is_refused(swarm, reporting):
    deadline = swarm.epochState(1)["deadline"]
    chain.sleep(61)
    with reverts_with("DeadlinePassed", 1, deadline):
        report(swarm, reporting[0], [1, 1, 1, 1])


def test_report_before_the_merge_is_refused(swarm, merging):
    with reverts_with("WrongPhase", 1, MERGE, REPORT):
        report(swarm, merging[0], [1, 1, 1, 1])


def test_removed_participant_cannot_report(swarm, reporting, admin):
    swarm.removeNode(reporting[0], {"from": admin})
    with reverts_with("NotActive", reporting[0], 3):
        report(swarm, reporting[0], [1, 1, 1, 1])


def test_participant_that_left_after_committing_still_reports(swarm, reporting):
    swarm.leave({"from": reporting[0]})
    tx = report(swarm, reporting[0], [1, 1, 1, 1])
    assert tx.events["ValidationReported"]["reporter"] == reporting[0]


# ------------------------------------------------------------------ settle
def test_anyone_settles_once_everyone_reported(swarm, token, reporting, protocol, outsider):
    scores = in_units([40, 30, 20, 10])
    for node in reporting:
        protocol.report(node, scores, metric=700_000)
    tx = protocol.settle(caller=outsider)

    settled = tx.events["EpochSettled"]
    credited = sum(swarm.claimable(node) for node in reporting)
    assert settled["epoch"] == 1
    assert settled["budget"] == REWARD
    assert settled["credited"] == credited == token.totalSupply() == token.balanceOf(swarm)
    assert settled["carried"] == REWARD - credited == swarm.carry()
    assert settled["medianMetric"] == 700_000
    assert settled["reporters"] == 4
    assert settled["quorate"]
    assert settled["modelHash"] == "0x" + "11" * 32 == swarm.epochState(1)["modelHash"]
    assert tx.events["Transfer"]["from"] == ZERO_ADDRESS
    assert tx.events["Transfer"]["to"] == swarm
    assert tx.events["Transfer"]["value"] == credited

    per_node = tx.events["ParticipantSettled"]
    assert [e["node"] for e in per_node] == [n.address for n in reporting]
    assert [e["samples"] for e in per_node] == [100, 200, 300, 400]
    # Each credit is the mean of the three other reporters' votes; every reporter sent the
    # same vector, so reporter r's positive total for the others is 100 - scores[r]:
    # participant 0 has 40 of 70, of 80 and of 90 (in units of 1e9, floored), but no one
    # more than one and a half of a report's three equal shares (half a vote).
    cap = 10**9 // 2
    credits = [
        (min(40 * 10**9 // 70, cap) + min(40 * 10**9 // 80, cap) + 40 * 10**9 // 90) // 3,
        (30 * 10**9 // 60 + 30 * 10**9 // 80 + 30 * 10**9 // 90) // 3,
        (20 * 10**9 // 60 + 20 * 10**9 // 70 + 20 * 10**9 // 90) // 3,
        (10 * 10**9 // 60 + 10 * 10**9 // 70 + 10 * 10**9 // 80) // 3,
    ]
    assert [e["score"] for e in per_node] == credits == [481_481_481, 402_777_777, 280_423_280, 144_841_269]
    # Smoothed from 0 with the test config's weight of one half, truncated toward zero.
    smoothed = [240_740_740, 201_388_888, 140_211_640, 72_420_634]
    assert [e["smoothedScore"] for e in per_node] == smoothed == [c // 2 for c in credits]
    assert [swarm.memberOf(n)["smoothedScore"] for n in reporting] == smoothed
    assert [e["payout"] for e in per_node] == [swarm.claimable(n) for n in reporting]
    assert [e["forfeit"] for e in per_node] == [0] * 4

    assert swarm.epochState(1)["phase"] == SETTLED
    opened = tx.events["EpochOpened"]
    assert opened["epoch"] == 2 == swarm.currentEpoch()
    assert opened["budget"] == REWARD + swarm.carry()
    assert opened["commitDeadline"] == tx.timestamp + 60


def test_settlement_waits_for_reports_or_the_deadline(swarm, reporting, protocol):
    protocol.report(reporting[0], [1, 1, 1, 1])
    deadline = swarm.epochState(1)["deadline"]
    with reverts_with("SettlementNotDue", 1, 1, 4, deadline):
        protocol.settle()
    chain.sleep(61)
    tx = protocol.settle()
    assert tx.events["EpochSettled"]["reporters"] == 1
    assert not tx.events["EpochSettled"]["quorate"]


def test_settlement_with_no_report_carries_the_whole_budget(swarm, token, reporting, protocol):
    chain.sleep(61)
    tx = protocol.settle()
    settled = tx.events["EpochSettled"]
    assert (settled["budget"], settled["credited"], settled["carried"]) == (REWARD, 0, REWARD)
    assert settled["medianMetric"] == 0
    assert settled["reporters"] == 0
    assert token.totalSupply() == 0
    assert "Transfer" not in tx.events
    assert [e["payout"] for e in tx.events["ParticipantSettled"]] == [0] * 4
    assert tx.events["EpochOpened"]["budget"] == 2 * REWARD


def test_settlement_must_resupply_every_report(swarm, reporting, protocol):
    for node in reporting:
        protocol.report(node, [1, 2, 3, 4])
    made = protocol.reports[1]
    _, metric = protocol.settlement_args(1)
    with reverts_with("ReportCountMismatch", 3, 4):
        swarm.settle(1, pack(made[:3], 4), metric, {"from": reporting[0]})
    with reverts_with("ReportCountMismatch", 5, 4):
        swarm.settle(1, pack(made + made[:1], 4), metric, {"from": reporting[0]})
    reporters, metrics, hashes, valids, scores = pack(made, 4)
    for short in (
        (reporters, metrics[:3], hashes, valids, scores),
        (reporters, metrics, hashes[:3], valids, scores),
        (reporters, metrics, hashes, valids[:3], scores),
    ):
        with reverts_with("ReportCountMismatch", 3, 4):
            swarm.settle(1, short, metric, {"from": reporting[0]})
    for wrong in (scores[:-1], scores + b"\x00", scores[:-8]):
        with reverts_with("PackedScoresLength", len(wrong), 4 * 4 * 8):
            swarm.settle(1, (reporters, metrics, hashes, valids, wrong), metric, {"from": reporting[0]})
    assert swarm.epochState(1)["phase"] == REPORT


@pytest.mark.parametrize("tamper", ["score", "metric", "mergedHash", "valid", "order", "reporter"])
def test_settlement_refuses_reports_that_differ_from_those_made(swarm, reporting, protocol, tamper):
    for i, node in enumerate(reporting):
        protocol.report(node, [1, 2, -3, 4], metric=500_000 + i)
    _, metric = protocol.settlement_args(1)
    reports = [list(r) for r in protocol.reports[1]]
    if tamper == "score":
        reports[2][1] = replace(reports[2][1], scores=[1, 2, -3, 999])
    elif tamper == "metric":
        reports[0][1] = replace(reports[0][1], metric=999_999)
    elif tamper == "mergedHash":
        reports[1][1] = replace(reports[1][1], merged_hash="33" * 32)
    elif tamper == "valid":
        reports[3][1] = replace(reports[3][1], valid=0b0111)
    elif tamper == "order":
        reports[0], reports[1] = reports[1], reports[0]
    else:
        reports[3][0] = reporting[0].address
    with reverts_with("ReportsMismatch", 1):
        swarm.settle(1, pack(reports, 4), metric, {"from": reporting[0]})
    assert swarm.epochState(1)["phase"] == REPORT


def test_epoch_credit_is_the_mean_of_the_other_reporters_votes(swarm, reporting, protocol):
    """A worked example of the vote. Each reporter r gives every other participant i the
    share floor(max(0, s_ri) * 1e9 / max(P_r, VOTE_FLOOR)), with P_r the sum of r's positive
    scores for the others, at most one and a half equal shares (floor(1.5e9 / 3) =
    500_000_000 of three others); i's credit is the floor of the mean of its three other reporters' votes.
    Scores in units of 0.01 (VOTE_FLOOR is 20 of them):

    - reporter 0 rates itself 99 (ignored) and the others 30, 10, -20: P = 40, votes
      500_000_000 (750_000_000 capped), 250_000_000 and 0 (a negative score counts as 0);
    - reporter 1 rates itself at the bound (ignored) and the others 1, 2, 0: P = 3, under
      the floor, so a fraction 3/20 of a vote: 1/20 and 2/20, i.e. 50_000_000, 100_000_000
      and 0;
    - reporter 2 has no positive score for anyone else (P = 0): it gives nobody anything,
      but it still counts among each one's three other reporters;
    - reporter 3 rates itself at -bound (ignored) and the others 7, 7, 7: P = 21, a whole
      vote, 333_333_333 each.
    """
    bound = swarm.SCORE_BOUND()
    # The contract's constants are the reference's.
    assert (swarm.CREDIT_SCALE(), swarm.VOTE_CAP_BPS(), swarm.VOTE_FLOOR(), swarm.VOTE_RULE_REVISION()) == (
        CREDIT_SCALE, VOTE_CAP_BPS, VOTE_FLOOR, VOTE_RULE_REVISION)
    assert CREDIT_SCALE == 10**9 and VOTE_FLOOR == 20 * SCORE_UNIT
    unit = SCORE_UNIT
    vectors = [in_units([99, 30, 10, -20]), [unit, bound, 2 * unit, 0], in_units([-5, -7, 100, 0]),
               [7 * unit, 7 * unit, 7 * unit, -bound]]
    for node, vector in zip(reporting, vectors):
        protocol.report(node, vector)
    before = [swarm.claimable(node) for node in reporting]
    tx = protocol.settle()

    credits = [
        (50_000_000 + 0 + 333_333_333) // 3,  # from reporters 1, 2, 3
        (500_000_000 + 0 + 333_333_333) // 3,  # from reporters 0, 2, 3
        (250_000_000 + 100_000_000 + 333_333_333) // 3,  # from reporters 0, 1, 3
        (0 + 0 + 0) // 3,  # rated -20, 0, 0 by the others
    ]
    assert credits == [127_777_777, 277_777_777, 227_777_777, 0]
    per_node = tx.events["ParticipantSettled"]
    assert [e["score"] for e in per_node] == credits
    assert [e["smoothedScore"] for e in per_node] == [c // 2 for c in credits]  # from 0, smoothing one half
    # Node 3 had evidence (three other reporters) and a credit of 0: weight 0 of its 400
    # samples, unpaid and struck; the three others are paid at full weight.
    assert [e["standing"] for e in per_node] == [True, True, True, False]
    assert [swarm.memberOf(node)["strikes"] for node in reporting] == [0, 0, 0, 1]
    expected = expected_settlement(REWARD, [Participant(samples=s) for s in (100, 200, 300, 400)],
                                   protocol.reports[1], swarm)
    assert expected.scores == tuple(credits) and expected.weights[3] == 0 and expected.struck == (False,) * 3 + (True,)
    assert_settled_as_expected(tx, swarm, reporting, before, expected, REWARD)


def test_no_report_gives_more_of_a_vote_than_the_median_report(swarm, reporting, protocol):
    """A noise epoch: three reporters measured 0.01 for one other participant each (a
    twentieth of a vote under the floor); the fourth, lying, rates participant 2 at the
    bound. The vote mass is the upper median of the reports' positive totals capped at the
    floor, 0.01, so the liar gives participant 2 a twentieth of a vote too, not a half.
    """
    unit, bound = SCORE_UNIT, swarm.SCORE_BOUND()
    vectors = [[0, unit, 0, 0], [0, 0, unit, 0], [unit, 0, 0, 0], [0, 0, bound, 0]]
    for node, vector in zip(reporting, vectors):
        protocol.report(node, vector)
    before = [swarm.claimable(node) for node in reporting]
    tx = protocol.settle()
    twentieth = CREDIT_SCALE * unit // VOTE_FLOOR
    credits = [twentieth // 3, twentieth // 3, 2 * twentieth // 3, 0]
    assert credits == [16_666_666, 16_666_666, 33_333_333, 0]
    assert [e["score"] for e in tx.events["ParticipantSettled"]] == credits
    expected = expected_settlement(REWARD, [Participant(samples=s) for s in (100, 200, 300, 400)],
                                   protocol.reports[1], swarm)
    assert expected.scores == tuple(credits)
    assert_settled_as_expected(tx, swarm, reporting, before, expected, REWARD)


@pytest.mark.parametrize("self_score", ["bound", "zero", "minus bound"])
def test_a_reporters_score_for_itself_moves_nothing(swarm, reporting, protocol, self_score):
    """Whatever each node says of itself (the bound, 0 or minus the bound), neither its own
    credit nor anybody's vote changes: the self-score is outside P_r as well. The settlement
    is the one of the reports with every self-score 0."""
    others = [in_units(row) for row in ([0, 20, 30, 50], [10, 0, 30, 60], [10, 20, 0, 70], [10, 20, 30, 0])]
    value = {"bound": swarm.SCORE_BOUND(), "zero": 0, "minus bound": -swarm.SCORE_BOUND()}[self_score]
    for i, node in enumerate(reporting):
        vector = list(others[i])
        vector[i] = value
        protocol.report(node, vector)
    tx = protocol.settle()
    # Participant 0: 10 of reporter 1's 100, of reporter 2's 100 and of reporter 3's 60.
    credits = [
        (100_000_000 + 100_000_000 + 166_666_666) // 3,
        (200_000_000 + 200_000_000 + 333_333_333) // 3,
        (300_000_000 + 300_000_000 + 500_000_000) // 3,
        (500_000_000 + 500_000_000 + 500_000_000) // 3,  # 50, 60 and 70 of 100: capped at 1.5 of 3 shares
    ]
    per_node = tx.events["ParticipantSettled"]
    assert [e["score"] for e in per_node] == credits == [122_222_222, 244_444_444, 366_666_666, 500_000_000]
    zeroed = [(reporter, replace(report, scores=others[i])) for i, (reporter, report) in enumerate(protocol.reports[1])]
    expected = expected_settlement(REWARD, [Participant(samples=s) for s in (100, 200, 300, 400)], zeroed, swarm)
    assert [(e["score"], e["smoothedScore"], e["standing"], e["payout"]) for e in per_node] == list(
        zip(expected.scores, expected.smoothed, expected.standing, expected.payouts)
    )


@pytest.mark.parametrize("metric", [500_002, 500_004, 0])
def test_settlement_refuses_a_metric_hint_that_is_not_the_lower_median(swarm, protocol, admin, nodes, metric):
    """The settler supplies the metrics' lower median; the contract verifies it by counting.
    Eight reports of 500_000 .. 500_007: the lower median is 500_003."""
    members = nodes[:8]
    protocol.enroll(members)
    protocol.submit(members)
    protocol.elect()
    protocol.publish()
    for i, node in enumerate(members):
        protocol.report(node, [10 * j + i for j in range(8)], metric=500_000 + i)
    reports, median = protocol.settlement_args(1)
    assert median == 500_003
    with reverts_with("WrongMetricMedian", metric):
        swarm.settle(1, reports, metric, {"from": admin})
    assert swarm.epochState(1)["phase"] == REPORT
    tx = protocol.settle()
    assert tx.events["EpochSettled"]["medianMetric"] == 500_003


def test_settlement_without_reports_needs_a_zero_metric_hint(swarm, reporting, protocol):
    chain.sleep(swarm.config()["reportWindow"] + 1)
    assert protocol.settlement_args(1) == (NO_REPORTS, 0)
    with reverts_with("WrongMetricMedian", 7):
        swarm.settle(1, NO_REPORTS, 7, {"from": reporting[0]})
    tx = swarm.settle(1, NO_REPORTS, 0, {"from": reporting[0]})
    assert [e["score"] for e in tx.events["ParticipantSettled"]] == [0] * 4
    assert swarm.currentEpoch() == 2


def test_settlement_before_the_merge_is_refused(swarm, merging, protocol):
    with reverts_with("WrongPhase", 1, MERGE, REPORT):
        protocol.settle()


def test_epoch_settles_only_once(swarm, reporting, protocol):
    for node in reporting:
        protocol.report(node, [1, 1, 1, 1])
    protocol.settle()
    with reverts_with("WrongEpoch", 1, 2):
        swarm.settle(1, *protocol.settlement_args(1), {"from": reporting[0]})


# ------------------------------------------------------------------ claim
def test_node_claims_its_credits_once(swarm, token, members, protocol):
    protocol.run_epoch(members, [5, 5, 5, 5])
    first = swarm.claimable(members[0])
    protocol.run_epoch(members, [5, 5, 5, 5])
    total = swarm.claimable(members[0])
    assert total > first > 0

    tx = swarm.claim({"from": members[0]})
    assert tx.events["RewardClaimed"]["account"] == members[0]
    assert tx.events["RewardClaimed"]["amount"] == total
    assert tx.events["Transfer"]["from"] == swarm
    assert tx.events["Transfer"]["to"] == members[0]
    assert token.balanceOf(members[0]) == total
    assert swarm.claimable(members[0]) == 0
    with reverts_with("NothingToClaim", members[0]):
        swarm.claim({"from": members[0]})
    assert token.balanceOf(members[0]) == total


def test_claim_without_credits_is_refused(swarm, outsider):
    with reverts_with("NothingToClaim", outsider):
        swarm.claim({"from": outsider})


def test_removed_leader_cannot_publish_and_is_failed_over_at_once(swarm, merging, protocol, admin):
    leader = protocol.leader()
    swarm.removeNode(leader, {"from": admin})
    with reverts_with("NotActive", leader.address, 3):
        protocol.publish()
    tx = swarm.failover(1, {"from": admin})  # no need to wait for the merge deadline
    assert tx.events["LeaderSkipped"]["skipped"] == leader.address
    protocol.publish()
    assert swarm.epochState(1)["phase"] == REPORT
