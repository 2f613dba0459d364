"""One epoch step by step: commit, elect, fail-over, publish, report, settle, claim; each
step's success (state and event) and every way it is refused."""

from dataclasses import replace

import pytest
from brownie import ZERO_ADDRESS, accounts, chain, web3
from eth_abi import encode

from tests.fixtures.deployments import ALLOWANCE, NO_REPORTS, commitment, pack
from tests.fixtures.errors import reverts_with

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


def test_election_waits_for_the_commit_window(swarm, committed):
    deadline = swarm.epochState(1)["deadline"]
    with reverts_with("CommitWindowOpen", 1, deadline):
        swarm.electLeader(1, {"from": committed[0]})


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
    scores = [40, 30, 20, 10]
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
    assert [e["score"] for e in per_node] == scores
    # Smoothed from 0 with the default weight of one half, truncated toward zero.
    assert [e["smoothedScore"] for e in per_node] == [20, 15, 10, 5]
    assert [swarm.memberOf(n)["smoothedScore"] for n in reporting] == [20, 15, 10, 5]
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
    _, cuts, metric = protocol.settlement_args(1)
    with reverts_with("ReportCountMismatch", 3, 4):
        swarm.settle(1, pack(made[:3], 4), cuts, metric, {"from": reporting[0]})
    with reverts_with("ReportCountMismatch", 5, 4):
        swarm.settle(1, pack(made + made[:1], 4), cuts, metric, {"from": reporting[0]})
    reporters, metrics, hashes, valids, scores = pack(made, 4)
    for short in (
        (reporters, metrics[:3], hashes, valids, scores),
        (reporters, metrics, hashes[:3], valids, scores),
        (reporters, metrics, hashes, valids[:3], scores),
    ):
        with reverts_with("ReportCountMismatch", 3, 4):
            swarm.settle(1, short, cuts, metric, {"from": reporting[0]})
    for wrong in (scores[:-1], scores + b"\x00", scores[:-8]):
        with reverts_with("PackedScoresLength", len(wrong), 4 * 4 * 8):
            swarm.settle(1, (reporters, metrics, hashes, valids, wrong), cuts, metric, {"from": reporting[0]})
    assert swarm.epochState(1)["phase"] == REPORT


@pytest.mark.parametrize("tamper", ["score", "metric", "mergedHash", "valid", "order", "reporter"])
def test_settlement_refuses_reports_that_differ_from_those_made(swarm, reporting, protocol, tamper):
    for i, node in enumerate(reporting):
        protocol.report(node, [1, 2, -3, 4], metric=500_000 + i)
    _, cuts, metric = protocol.settlement_args(1)
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
        swarm.settle(1, pack(reports, 4), cuts, metric, {"from": reporting[0]})
    assert swarm.epochState(1)["phase"] == REPORT


def test_a_reporters_score_for_itself_is_ignored(swarm, reporting, protocol):
    """Each node rates itself at the bound; its score is what the three others gave it."""
    others = [[10, 20, 30, 40], [11, 21, 31, 41], [12, 22, 32, 42], [13, 23, 33, 43]]
    for i, node in enumerate(reporting):
        vector = list(others[i])
        vector[i] = swarm.SCORE_BOUND()
        protocol.report(node, vector)
    tx = protocol.settle()
    # Three other scores each, one trimmed from each end: the middle one.
    assert [e["score"] for e in tx.events["ParticipantSettled"]] == [12, 22, 31, 41]


@pytest.mark.parametrize("wrong", ["low above", "low below", "high above", "high below", "absent", "metric",
                                   "length"])
def test_settlement_refuses_cuts_that_are_not_the_trimmed_means_ends(swarm, protocol, admin, nodes, wrong):
    """The settler supplies each participant's trimming cuts; the contract verifies them by
    counting. Eight reporters of eight participants: seven other scores each, two trimmed
    from each end, so the cuts are the third and fifth of the seven."""
    members = nodes[:8]
    protocol.enroll(members)
    protocol.submit(members)
    protocol.elect()
    protocol.publish()
    for i, node in enumerate(members):
        protocol.report(node, [10 * j + i for j in range(8)], metric=500_000 + i)
    reports, cuts, metric = protocol.settlement_args(1)
    # Participant 0 has 1 .. 7 from the others and keeps 3, 4, 5; participant 1 keeps 13, 14, 15.
    assert cuts[:4] == [3, 5, 13, 15] and metric == 500_003
    if wrong == "low above":
        cuts[0], error = 4, ("WrongCut", 0, 4, 5)
    elif wrong == "low below":
        cuts[0], error = 2, ("WrongCut", 0, 2, 5)
    elif wrong == "high above":
        cuts[3], error = 16, ("WrongCut", 1, 13, 16)
    elif wrong == "high below":
        cuts[3], error = 14, ("WrongCut", 1, 13, 14)
    elif wrong == "absent":
        cuts[4:6], error = [0, 0], ("WrongCut", 2, 0, 0)
    elif wrong == "metric":
        metric, error = 500_004, ("WrongMetricMedian", 500_004)
    else:
        cuts, error = cuts[:14], ("ScoreCountMismatch", 14, 16)
    with reverts_with(*error):
        swarm.settle(1, reports, cuts, metric, {"from": admin})
    assert swarm.epochState(1)["phase"] == REPORT
    tx = protocol.settle()
    assert [e["score"] for e in tx.events["ParticipantSettled"]][:2] == [4, 14]


def test_settlement_without_reports_needs_zero_hints(swarm, reporting, protocol):
    chain.sleep(swarm.config()["reportWindow"] + 1)
    with reverts_with("WrongCut", 2, 5, 0):
        swarm.settle(1, NO_REPORTS, [0, 0, 0, 0, 5, 0, 0, 0], 0, {"from": reporting[0]})
    with reverts_with("WrongMetricMedian", 7):
        swarm.settle(1, NO_REPORTS, [0] * 8, 7, {"from": reporting[0]})
    swarm.settle(1, NO_REPORTS, [0] * 8, 0, {"from": reporting[0]})
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
