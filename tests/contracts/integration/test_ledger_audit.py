"""The ledger rebuilt from events reproduces every settlement, and the audit catches a
ledger, a balance or a file that does not add up."""

import copy

from swarmtoken.audit import audit_balances, audit_files, audit_settlements, audit_swarm
from swarmtoken.ledger import read_ledger


def _two_epochs(protocol, nodes, swarm):
    members = nodes[:4]
    protocol.enroll(members)
    protocol.run_epoch(members, [40, 30, 20, -5], samples=[100, 200, 300, 400])
    # epoch 2: the fourth node never reports and forfeits
    protocol.run_epoch(members, [10, 50, 5, 7], samples=120, reporters=members[:3])
    swarm.claim({"from": members[0]})
    return members


def test_ledger_replays_each_epoch_from_events(swarm, nodes, protocol):
    members = _two_epochs(protocol, nodes, swarm)
    ledger = read_ledger(swarm)
    first, second = ledger.epochs[1], ledger.epochs[2]
    assert [c.node for c in first.commits] == [m.address for m in members]
    assert first.participant_nodes() == [m.address for m in members]
    assert [(r.reporter, r.metric, list(r.scores)) for r in second.reports] == [tuple(r) for r in protocol.reports[2]]
    assert second.settlement_args() == protocol.settlement_args(2)
    assert [o.forfeited for o in second.outcomes] == [False, False, False, True]
    assert ledger.claims == [(members[0].address, first.outcomes[0].payout + second.outcomes[0].payout)]
    assert 3 in ledger.epochs and ledger.epochs[3].settled_at is None


def test_audit_passes_on_an_honest_history(swarm, token, nodes, protocol):
    _two_epochs(protocol, nodes, swarm)
    report = audit_swarm(swarm, token)
    assert report.ok, report.discrepancies
    assert report.checks > 20


def test_audit_names_a_payout_that_the_reports_do_not_justify(swarm, token, nodes, protocol):
    _two_epochs(protocol, nodes, swarm)
    ledger = copy.deepcopy(read_ledger(swarm))
    for tampered in ledger.epochs[1].reports[:3]:  # a majority, or the median would not move
        tampered.scores[0] += 10**6
    report = audit_settlements(ledger, reward_per_epoch=1000 * 10**18, beta_bps=3000, sample_cap=1000)
    assert not report.ok
    assert report.discrepancies[0].startswith("epoch 1:") and "median score" in report.discrepancies[0]


def test_audit_catches_supply_and_claimable_mismatches(swarm, token, nodes, protocol):
    members = _two_epochs(protocol, nodes, swarm)
    ledger = read_ledger(swarm)
    report = audit_balances(ledger, total_supply=token.totalSupply() + 1, swarm_balance=token.balanceOf(swarm),
                            claimable=lambda a: swarm.claimable(a) + (1 if a == members[1].address else 0))
    assert len(report.discrepancies) == 2
    assert "token supply" in report.discrepancies[0] and members[1].address in report.discrepancies[1]


def test_audit_checks_served_files_against_their_commitments(swarm, nodes, protocol):
    """A mismatching or oversized file is a discrepancy naming it; a file nobody serves any
    more is only counted."""
    from swarmtoken.store import FileTooLargeError, HashMismatchError, UnreachableError

    _two_epochs(protocol, nodes, swarm)
    ledger = read_ledger(swarm)
    tampered, huge = ledger.epochs[1].commits[0], ledger.epochs[1].commits[1]

    def download(uri, expected, **limits):
        if uri == tampered.uri and expected == tampered.param_hash:
            raise HashMismatchError(uri, f"sha256 mismatch: expected {expected}, found 00")
        if uri == huge.uri and expected == huge.param_hash:
            raise FileTooLargeError(uri, "declared 10 GiB, limit 256 MiB")
        raise UnreachableError(uri, "connection refused", status=None, attempts=1)

    report = audit_files(ledger, download)
    assert report.files_checked == 2 and report.files_unreachable > 0
    assert report.discrepancies[0].startswith(f"epoch 1 commit of {tampered.node}: file at {tampered.uri}: sha256 mismatch")
    assert report.discrepancies[1].startswith(f"epoch 1 commit of {huge.node}: file at ") and "limit" in report.discrepancies[1]
