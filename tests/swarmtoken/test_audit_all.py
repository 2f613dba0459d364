"""`swarm audit`, chain-free: without `--all` it names the first discrepancy and says how
to list the rest; with `--all` it prints every discrepancy, one line each; either way it
exits non-zero when there is any. The report comes from a real audit of a tampered recorded
ledger; the chain reading is stubbed, the unit under test is the reporting and the option."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from swarmtoken import audit as audit_module
from swarmtoken.audit import AuditReport, audit_settlements
from swarmtoken.cli import commands
from swarmtoken.cli.commands import main
from tests.swarmtoken.recorded import REWARD, RULE, B, C, RecordedSwarm, history


def tampered_report() -> AuditReport:
    """The audit of a ledger whose contract overpaid B in epoch 1, misreported C's score in
    epoch 2 and its credited total in epoch 4: three discrepancies, in different epochs."""
    ledger = history(RecordedSwarm()).ledger()
    first, second = ledger.epochs[1].outcomes, ledger.epochs[2].outcomes
    first[1] = replace(first[1], payout=first[1].payout + 1)
    second[2] = replace(second[2], score=second[2].score + 7)
    ledger.epochs[4].credited += 1
    report = audit_settlements(ledger, reward_per_epoch=REWARD, rule=RULE)
    report.findings.append("epoch 2: a finding the operator should still see")
    return report


@pytest.fixture
def run(monkeypatch):
    """`swarm audit ...` on a given report instead of a chain."""
    monkeypatch.setattr(commands, "_connect_and_bind",
                        lambda *args: SimpleNamespace(swarm=None, token=None, record={"block": 0}))

    def invoke(report: AuditReport, *args: str):
        seen = {}

        def fake_audit(swarm, token, *, from_block, check_files):
            seen["check_files"] = check_files
            return report

        monkeypatch.setattr(audit_module, "audit_swarm", fake_audit)
        result = CliRunner().invoke(main, ["audit", *args])
        return result.exit_code, result.output, seen

    return invoke


def test_the_tampered_ledger_has_several_discrepancies():
    report = tampered_report()
    assert len(report.discrepancies) == 3
    assert any(f"{B} paid" in d for d in report.discrepancies) and any(f"{C} score" in d for d in report.discrepancies)


def test_all_lists_every_discrepancy_one_line_each(run):
    report = tampered_report()
    code, output, _ = run(report, "--all")
    assert code == 1, output
    lines = output.splitlines()
    total = len(report.discrepancies)
    listed = [line for line in lines if line.startswith("discrepancy ")]
    assert listed == [f"discrepancy {i}/{total}: {d}" for i, d in enumerate(report.discrepancies, 1)]
    assert lines[0] == report.summary() and "finding: epoch 2: a finding the operator should still see" in lines
    assert lines[-1] == f"Error: audit failed: {total} discrepancies, listed above"
    assert "swarm audit --all" not in output


def test_without_all_the_first_is_named_and_the_way_to_the_rest(run):
    report = tampered_report()
    code, output, _ = run(report)
    assert code == 1, output
    total = len(report.discrepancies)
    assert output.splitlines()[-1] == (f"Error: audit failed: {report.discrepancies[0]} ({total} discrepancies in all; "
                                       "`swarm audit --all` lists them)")
    assert not any(d in output for d in report.discrepancies[1:])
    assert "discrepancy 1/" not in output


def test_a_single_discrepancy_needs_no_hint(run):
    report = AuditReport()
    report.expect(False, "epoch 3: credited 5, reference 4")
    report.expect(True, "fine")
    code, output, _ = run(report)
    assert code == 1
    assert output.splitlines()[-1] == "Error: audit failed: epoch 3: credited 5, reference 4 (the only discrepancy)"
    code, output, _ = run(report, "--all")
    assert code == 1
    assert output.splitlines()[-2:] == ["discrepancy 1/1: epoch 3: credited 5, reference 4",
                                        "Error: audit failed: 1 discrepancy, listed above"]


@pytest.mark.parametrize("args", [(), ("--all",)])
def test_a_clean_audit_passes_with_or_without_all(run, args):
    report = AuditReport(checks=12, files_checked=3)
    code, output, seen = run(report, *args, "--no-files")
    assert code == 0, output
    assert output.splitlines()[0] == "12 checks, 3 files verified, 0 unreachable"
    assert "audit ok" in output and "discrepanc" not in output and seen == {"check_files": False}
