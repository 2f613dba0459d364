"""The audit's file checks, chain-free: every committed file must open its committer's
commitment, and no two commitments may resolve to one file. Misbehaviour the protocol
handled is a finding; being paid for it is a discrepancy."""

from __future__ import annotations

import pytest

from swarmtoken.audit import audit_files
from swarmtoken.chain.ledger import CommitRecord, EpochRecord, Ledger, OutcomeRecord
from swarmtoken.rewards import Forfeit
from swarmtoken.store import UnreachableError, commit_url, commitment_of, sha256_hex, shared_files

HONEST, OTHER, COPYCAT = ("0x" + c * 40 for c in "abc")
EPOCH = 4


def base_uri(node: str) -> str:
    return f"http://{node[2:8]}.example"


def outcome(node: str, paid: bool) -> OutcomeRecord:
    """A settled participant in good standing, paid or (forfeited) not."""
    return OutcomeRecord(node, 100, score=5, smoothed=5, standing=True, payout=10 if paid else 0,
                         forfeit=Forfeit.NONE if paid else Forfeit.NOT_REPORTED)


def serving(urls: dict[str, bytes]):
    """A download function that serves ``urls`` and finds every other address unreachable."""

    def download(url: str, timeout: float, retries: int) -> bytes:
        if url not in urls:
            raise UnreachableError(url, "connection refused", status=None, attempts=1)
        return urls[url]

    return download


def audit(commits: dict[str, bytes], served: dict[str, bytes], paid: set[str]):
    """``commits``: node -> the bytes it committed to; ``served``: node -> what it serves
    under that commitment (absent: unreachable)."""
    record = EpochRecord(EPOCH)
    urls = {}
    for index, (node, data) in enumerate(commits.items()):
        commitment = commitment_of(node, EPOCH, sha256_hex(data))
        record.commits.append(CommitRecord(index, node, commitment, 100, 100))
        if node in served:
            urls[commit_url(base_uri(node), commitment)] = served[node]
        record.outcomes.append(outcome(node, paid=node in paid))
    return audit_files(Ledger({EPOCH: record}, [], []), base_uri, serving(urls))


def test_files_that_open_their_commitments_are_clean():
    report = audit({HONEST: b"a", OTHER: b"b"}, {HONEST: b"a", OTHER: b"b"}, paid={HONEST, OTHER})
    assert report.ok and not report.findings and report.files_checked == 2


def test_a_copied_commitment_is_a_finding_and_a_discrepancy_only_if_paid():
    """The copycat committed the honest node's commitment value; it serves the honest
    bytes, which open the commitment for the honest node only."""
    honest_commitment = commitment_of(HONEST, EPOCH, sha256_hex(b"a"))
    record = EpochRecord(EPOCH)
    record.commits = [CommitRecord(0, HONEST, honest_commitment, 100, 100),
                      CommitRecord(1, COPYCAT, honest_commitment, 100, 100)]
    for paid_copycat, expect_ok in ((False, True), (True, False)):
        record.outcomes = [outcome(HONEST, paid=True), outcome(COPYCAT, paid=paid_copycat)]
        urls = {commit_url(base_uri(node), honest_commitment): b"a" for node in (HONEST, COPYCAT)}
        report = audit_files(Ledger({EPOCH: record}, [], []), base_uri, lambda url, **_: urls[url])
        assert report.ok is expect_ok
        assert report.findings == [f"epoch {EPOCH} commit of {COPYCAT}: the served file does not open its commitment"]


def test_two_commitments_to_one_file_name_both_and_paying_either_is_a_discrepancy():
    report = audit({HONEST: b"same", OTHER: b"same"}, {HONEST: b"same", OTHER: b"same"}, paid={OTHER})
    assert len(report.findings) == 2 and all("committed the same file" in f for f in report.findings)
    assert report.discrepancies == [f"{report.findings[1]}, yet {OTHER} was paid"]


def test_unreachable_files_are_counted_and_named_but_no_discrepancy():
    report = audit({HONEST: b"a", OTHER: b"b"}, {HONEST: b"a"}, paid={HONEST, OTHER})
    assert report.ok and report.files_unreachable == 1 and report.files_checked == 1
    assert report.findings == [f"epoch {EPOCH} commit of {OTHER}: not served (its committer's store did not answer)"]


def _merged_epoch(served: dict[str, bytes], leader_copy: bytes | None, paid: bool):
    """OTHER committed b"b" and HONEST, the leader, merged it; OTHER serves ``served``
    (absent: unreachable) and the leader keeps ``leader_copy`` under OTHER's commitment."""
    commitment = commitment_of(OTHER, EPOCH, sha256_hex(b"b"))
    record = EpochRecord(EPOCH, leader=HONEST, participants=[0, 1])
    record.commits = [CommitRecord(0, HONEST, commitment_of(HONEST, EPOCH, sha256_hex(b"a")), 100, 100),
                      CommitRecord(1, OTHER, commitment, 100, 100)]
    record.outcomes = [outcome(HONEST, paid=True), outcome(OTHER, paid=paid)]
    urls = {commit_url(base_uri(HONEST), record.commits[0].commitment): b"a"}
    if OTHER in served:
        urls[commit_url(base_uri(OTHER), commitment)] = served[OTHER]
    if leader_copy is not None:
        urls[commit_url(base_uri(HONEST), commitment)] = leader_copy
    return audit_files(Ledger({EPOCH: record}, [], []), base_uri, serving(urls))


@pytest.mark.parametrize("served, problem", [
    ({}, "not served (its committer's store did not answer)"),
    ({OTHER: b"corrupted"}, "the served file does not open its commitment"),
])
def test_a_file_gone_or_corrupted_after_the_merge_is_named_and_its_pay_checked_on_the_leaders_copy(served, problem):
    """The leader keeps what it merged: where its copy opens the commitment, paying the
    participant was right, whatever its own store serves now."""
    report = _merged_epoch(served, leader_copy=b"b", paid=True)
    assert report.ok, report.discrepancies
    assert report.findings == [f"epoch {EPOCH} commit of {OTHER}: {problem}; the leader's copy opens it"]


def test_a_corrupted_file_the_leader_cannot_vouch_for_is_a_discrepancy_if_paid():
    report = _merged_epoch({OTHER: b"corrupted"}, leader_copy=b"also wrong", paid=True)
    assert report.discrepancies == [f"epoch {EPOCH} commit of {OTHER}: the served file does not open its "
                                    f"commitment, yet {OTHER} was paid"]


@pytest.mark.parametrize("files, shared", [
    ({}, {}),
    ({0: "x", 1: "y"}, {}),
    ({0: "x", 1: "y", 2: "x", 3: "x"}, {"x": [0, 2, 3]}),
])
def test_shared_files_lists_every_file_committed_more_than_once(files, shared):
    assert shared_files(files) == shared


def _model_audit(served_by: dict[str, bytes]):
    """An epoch whose global model (hash of b"model") the leader and one reporter hold;
    ``served_by`` maps who serves what under the model's route."""
    from swarmtoken.chain.ledger import ReportRecord
    from swarmtoken.store.server import ROUTE

    model = sha256_hex(b"model")
    record = EpochRecord(EPOCH, leader=HONEST, model_hash=model)
    record.reports.append(ReportRecord(OTHER, 0, [], model, 0))
    urls = {f"{base_uri(node)}{ROUTE}{model}": data for node, data in served_by.items()}
    return audit_files(Ledger({EPOCH: record}, [], []), base_uri, serving(urls))


def test_a_global_model_served_by_nobody_is_named():
    report = _model_audit({})
    assert report.ok and report.files_checked == 0 and report.files_unreachable == 2
    assert report.findings == [f"epoch {EPOCH} model {sha256_hex(b'model')[:12]} is served by nobody (asked the "
                               "leader and 1 reporter(s) that recomputed it)"]


def test_a_global_model_any_holder_serves_is_verified():
    report = _model_audit({OTHER: b"model"})  # the leader is gone, a reporter still serves it
    assert report.ok and not report.findings and report.files_checked == 1
    bad = _model_audit({HONEST: b"not the model"})
    assert not bad.ok and "does not hash to" in bad.discrepancies[0]
