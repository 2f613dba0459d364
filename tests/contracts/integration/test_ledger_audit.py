"""The ledger rebuilt from events reproduces every settlement, including the leader's
verdict (a disputed merge, a censored update, the epoch's model), and the audit catches a
ledger, a balance or a file that does not add up."""

import copy
import hashlib
from dataclasses import replace

import pytest

from swarmtoken.audit import audit_balances, audit_files, audit_settlements, audit_swarm
from swarmtoken.config import chain_rule
from swarmtoken.chain.ledger import read_ledger
from swarmtoken.rewards import Forfeit
from swarmtoken.store import UnreachableError, commit_url
from swarmtoken.store.server import ROUTE
from tests.fixtures.deployments import ALLOWANCE, MERGED, commitment, param_hash
from tests.fixtures.scores import in_units

REWARD = 1000 * 10**18
OTHER = "22" * 32


def _two_epochs(protocol, nodes, swarm):
    members = nodes[:4]
    protocol.enroll(members)
    protocol.run_epoch(members, in_units([40, 30, 20, -5]), samples=[100, 200, 300, 400])
    # epoch 2: the fourth node never reports and forfeits
    protocol.run_epoch(members, in_units([10, 50, 5, 7]), samples=120, reporters=members[:3])
    swarm.claim({"from": members[0]})
    return members


def test_ledger_replays_each_epoch_from_events(swarm, nodes, protocol):
    members = _two_epochs(protocol, nodes, swarm)
    ledger = read_ledger(swarm)
    first, second = ledger.epochs[1], ledger.epochs[2]
    assert [(c.index, c.node, c.declared, c.samples) for c in first.commits] == [
        (i, m.address, s, s) for i, (m, s) in enumerate(zip(members, [100, 200, 300, 400]))
    ]
    assert [c.commitment for c in first.commits] == [commitment(m, 1).hex() for m in members]
    assert first.participant_nodes() == [m.address for m in members]
    assert first.leader == swarm.leaderOf(1) and first.merged_hash == MERGED == first.model_hash
    assert first.quorate and first.disputes == []
    assert [(r.reporter, r.as_report()) for r in second.reports] == [
        (reporter, replace(report, reporter=reporter)) for reporter, report in protocol.reports[2]
    ]
    assert second.settlement_args() == protocol.settlement_args(2)
    assert [o.forfeit for o in second.outcomes] == [Forfeit.NONE] * 3 + [Forfeit.NOT_REPORTED]
    assert [o.forfeited for o in second.outcomes] == [False, False, False, True]
    assert ledger.claims == [(members[0].address, first.outcomes[0].payout + second.outcomes[0].payout)]
    assert 3 in ledger.epochs and ledger.epochs[3].settled_at is None


def test_audit_passes_on_an_honest_history(swarm, token, nodes, protocol):
    _two_epochs(protocol, nodes, swarm)
    report = audit_swarm(swarm, token)
    assert report.ok, report.discrepancies
    assert report.checks > 20
    assert report.findings == []


@pytest.mark.parametrize("getter", ["VOTE_FLOOR", "VOTE_RULE_REVISION"])
def test_audit_names_a_contract_of_an_older_rule_first(swarm, token, nodes, protocol, getter):
    """A swarm deployed by a version without the vote floor, or without the median vote mass,
    answers that getter with a revert (here: the call goes to the token's address, which has
    no such function); the audit says which version to audit it with, before whatever the
    epochs then disagree on."""
    from brownie import Contract

    _two_epochs(protocol, nodes, swarm)
    stranger = Contract.from_abi("SwarmLearning", token.address, swarm.abi)

    class Older:  # the swarm, but for that one getter
        def __getattr__(self, name):
            return getattr(stranger if name == getter else swarm, name)

        def __str__(self):  # how brownie turns an argument into an address
            return swarm.address

    report = audit_swarm(Older(), token)
    assert not report.ok
    assert report.discrepancies[0].startswith(f"the contract has no {getter} ")
    assert audit_swarm(swarm, token).ok


def test_audit_names_a_payout_that_the_reports_do_not_justify(swarm, token, nodes, protocol):
    _two_epochs(protocol, nodes, swarm)
    ledger = copy.deepcopy(read_ledger(swarm))
    members = nodes[:4]
    # One report suffices: node 1's, one of node 0's three other reporters, now gives node 0
    # nothing instead of 40 of 60. On chain node 0 holds 40 of 60 and of 70 (both capped at
    # one and a half of three equal shares, half a vote) and of 90 (every reporter sent
    # [40, 30, 20, -5]).
    ledger.epochs[1].reports[1].scores[0] = 0
    report = audit_settlements(ledger, reward_per_epoch=REWARD, rule=chain_rule(swarm.config()))
    assert not report.ok
    cap = 15 * 10**8 // 3
    on_chain = (min(40 * 10**9 // 60, cap) + min(40 * 10**9 // 70, cap) + 40 * 10**9 // 90) // 3
    replayed = (0 + min(40 * 10**9 // 70, cap) + 40 * 10**9 // 90) // 3
    assert (on_chain, replayed) == (481_481_481, 314_814_814)
    assert report.discrepancies[0] == f"epoch 1: {members[0].address} score {on_chain}, reference {replayed}"
    assert (f"epoch 1: {members[0].address} smoothed score {on_chain // 2}, reference {replayed // 2}"
            in report.discrepancies)
    assert any(d.startswith(f"epoch 1: {members[0].address} paid ") for d in report.discrepancies)


def test_audit_catches_supply_and_claimable_mismatches(swarm, token, nodes, protocol):
    members = _two_epochs(protocol, nodes, swarm)
    ledger = read_ledger(swarm)
    report = audit_balances(ledger, total_supply=token.totalSupply() + 1, swarm_balance=token.balanceOf(swarm),
                            claimable=lambda a: swarm.claimable(a) + (1 if a == members[1].address else 0))
    assert len(report.discrepancies) == 2
    assert "token supply" in report.discrepancies[0] and members[1].address in report.discrepancies[1]


# ---------------------------------------------------------------- the leader's verdict


def _disputed_and_censored_epoch(swarm, protocol, members):
    """Five committers, one over its allowance; the leader leaves one update out of the
    merge and three of the five reporters recompute another merge and find every update
    valid. Returns (leader index, left-out index, settle transaction)."""
    protocol.submit(members, [100, 200, 300, ALLOWANCE + 500, 500])
    protocol.elect()
    leader = swarm.epochState(1)["leaderIndex"]
    left_out = (leader + 1) % 5
    bitmap = 0b11111 & ~(1 << left_out)
    protocol.publish(bitmap)
    for i, node in enumerate(members):
        dissents = i != leader and len([j for j in range(i) if j != leader]) < 3
        protocol.report(node, [30, 20, 10, 5], merged=OTHER if dissents else MERGED, valid=0b11111)
    return leader, left_out, protocol.settle()


def test_ledger_reconstructs_a_disputed_and_censored_epoch_and_the_audit_agrees(swarm, token, nodes, protocol):
    members = nodes[:5]
    protocol.enroll(members)
    leader, left_out, tx = _disputed_and_censored_epoch(swarm, protocol, members)
    assert "MergeDisputed" in tx.events and "UpdateCensored" in tx.events

    record = read_ledger(swarm).epochs[1]
    assert record.leader == members[leader].address
    assert record.merged_hash == MERGED and record.model_hash == OTHER
    assert record.quorate is True
    assert record.participants == [i for i in range(5) if i != left_out]
    assert [r.merged_hash for r in record.reports].count(OTHER) == 3
    assert record.disputes == [
        f"leader {members[leader].address} published {MERGED[:12]}, a strict majority recomputed {OTHER[:12]}",
        f"leader {members[leader].address} left out {members[left_out].address}, "
        "whose update a strict majority found valid",
    ]
    reasons = {o.node: o.forfeit for o in record.outcomes}
    assert reasons.pop(members[leader].address) is Forfeit.MERGE_CONTRADICTED
    assert reasons.pop(members[3].address, Forfeit.OVER_DECLARED) is Forfeit.OVER_DECLARED  # unless left out
    assert set(reasons.values()) == {Forfeit.NONE}
    assert members[left_out].address not in {o.node for o in record.outcomes}

    report = audit_swarm(swarm, token)
    assert report.ok and report.discrepancies == []
    assert f"epoch 1: {record.disputes[0]}" in report.findings
    assert f"epoch 1: {record.disputes[1]}" in report.findings
    # The over-declaration is a finding too (whether or not its update was merged).
    assert (f"epoch 1: {members[3].address} declared {ALLOWANCE + 500} samples, "
            f"its allowance counts {ALLOWANCE}") in report.findings
    assert len(report.findings) == 3


def test_audit_reports_a_tampered_outcome_of_a_disputed_epoch(swarm, nodes, protocol):
    """Tampering with the assembled ledger (the contradicted leader recorded as not having
    forfeited, or another model hash) is a discrepancy that names the epoch and the node."""
    members = nodes[:5]
    protocol.enroll(members)
    leader, _, _ = _disputed_and_censored_epoch(swarm, protocol, members)
    ledger = read_ledger(swarm)
    rule = chain_rule(swarm.config())
    assert audit_settlements(ledger, reward_per_epoch=REWARD, rule=rule).ok

    forgiven = copy.deepcopy(ledger)
    outcome = next(o for o in forgiven.epochs[1].outcomes if o.node == members[leader].address)
    outcome.forfeit = Forfeit.NONE
    report = audit_settlements(forgiven, reward_per_epoch=REWARD, rule=rule)
    assert report.discrepancies == [
        f"epoch 1: {members[leader].address} forfeit NONE, reference says MERGE_CONTRADICTED"
    ]

    relabelled = copy.deepcopy(ledger)
    relabelled.epochs[1].model_hash = MERGED
    report = audit_settlements(relabelled, reward_per_epoch=REWARD, rule=rule)
    assert report.discrepancies == [f"epoch 1: model {MERGED}, reference {OTHER}"]

    undisputed = copy.deepcopy(ledger)
    undisputed.epochs[1].disputes.pop()  # the UpdateCensored event "lost"
    report = audit_settlements(undisputed, reward_per_epoch=REWARD, rule=rule)
    assert report.discrepancies == ["epoch 1: 1 disputes emitted, reference finds 2"]


def test_declared_count_above_the_allowance_is_a_finding_not_a_discrepancy(swarm, token, nodes, protocol):
    members = nodes[:3]
    protocol.enroll(members)
    protocol.run_epoch(members, [5, 5, 5], samples=[ALLOWANCE, ALLOWANCE + 1, 2**64 - 1])
    report = audit_swarm(swarm, token)
    assert report.ok, report.discrepancies
    assert report.findings == [
        f"epoch 1: {members[1].address} declared {ALLOWANCE + 1} samples, its allowance counts {ALLOWANCE}",
        f"epoch 1: {members[2].address} declared {2**64 - 1} samples, its allowance counts {ALLOWANCE}",
    ]
    outcomes = read_ledger(swarm).epochs[1].outcomes
    assert [o.forfeit for o in outcomes] == [Forfeit.NONE, Forfeit.OVER_DECLARED, Forfeit.OVER_DECLARED]
    assert [o.samples for o in outcomes] == [ALLOWANCE] * 3


# ---------------------------------------------------------------- served files


def test_audit_checks_served_files_against_their_commitments(swarm, nodes, protocol):
    """Every committed file still served must open its commitment under its committer's
    address, and no two commitments may open with one file: either is a finding, and a
    discrepancy when its committer was paid. A file nobody serves any more is only counted;
    the epoch's model must hash to its on-chain hash."""
    members = nodes[:4]
    protocol.enroll(members)
    model = b"the merged model of epoch 1"
    # Node 3 commits, under its own address, the very file node 2 committed.
    copied = param_hash(members[2], 1)
    for node in members:
        sha = copied if node == members[3] else None
        swarm.submitUpdate(1, commitment(node, 1, sha), 100, {"from": node})
    protocol.elect()
    protocol.publish(merged=hashlib.sha256(model).hexdigest())
    for node in members:
        protocol.report(node, in_units([40, 30, 20, -5]))
    protocol.settle()
    ledger = read_ledger(swarm)
    record = ledger.epochs[1]
    leader = record.leader

    def file_of(node):  # the stand-in file whose sha256 param_hash is
        return f"{node.address}-1".encode()

    served = {
        commit_url(swarm.baseUriOf(members[0]), record.commits[0].commitment): b"not what was committed",
        commit_url(swarm.baseUriOf(members[2]), record.commits[2].commitment): file_of(members[2]),
        commit_url(swarm.baseUriOf(members[3]), record.commits[3].commitment): file_of(members[2]),
        f"{swarm.baseUriOf(leader)}{ROUTE}{record.model_hash}": model,
    }

    def download(url, **limits):
        if url in served:
            return served[url]
        raise UnreachableError(url, "connection refused", status=None, attempts=1)

    report = audit_files(ledger, swarm.baseUriOf, download)
    # Node 1 serves nothing; for node 0's and node 1's files the audit also asks the leader
    # for the copy it keeps of what it merged, and (in this test) no leader serves one.
    asked_leader = len({members[0].address, members[1].address} - {leader})
    assert (report.files_checked, report.files_unreachable) == (4, 1 + asked_leader)
    mismatch = f"epoch 1 commit of {members[0].address}: the served file does not open its commitment"
    twice = f"epoch 1: {members[2].address}, {members[3].address} committed the same file {copied.hex()[:12]}"
    unserved = f"epoch 1 commit of {members[1].address}: not served (its committer's store did not answer)"
    assert report.findings == [unserved, mismatch, twice, twice]
    # Nodes 0 and 2 were paid for those files; node 3, rated -5 by all, had no credit and was not.
    assert report.discrepancies == [f"{mismatch}, yet {members[0].address} was paid",
                                    f"{twice}, yet {members[2].address} was paid"]

    served[f"{swarm.baseUriOf(leader)}{ROUTE}{record.model_hash}"] = b"another model"
    report = audit_files(ledger, swarm.baseUriOf, download)
    assert report.discrepancies[-1] == (f"epoch 1 model: {leader} serves a file that does not hash to "
                                        f"{record.model_hash[:12]}")
