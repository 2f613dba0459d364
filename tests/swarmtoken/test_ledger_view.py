"""`swarm ledger`, chain-free: forfeits carry a readable reason, and every membership change
(a suspension with the epoch and the strikes behind it, removals, expiries, departures,
enrolments, authorisations) shows in chain order in the table, `--json` and `--csv`. The
ledger is recorded events settled with the reference rule; the chain reading is stubbed,
the unit under test is the rendering and the options."""

from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from swarmtoken.chain import ledger as ledger_module
from swarmtoken.chain.ledger import CommitRecord, EpochRecord, Ledger, MembershipEvent, ReportRecord
from swarmtoken.cli import commands
from swarmtoken.cli.commands import main
from swarmtoken.cli.views import (FORFEIT_PHRASES, MEMBERSHIP_FIELDS, _short, ledger_rows, membership_rows,
                                  strike_epochs, strike_reason)
from swarmtoken.rewards import Forfeit, Participant, Report, settle, strikes_after
from tests.swarmtoken.recorded import MERGED, REWARD, RULE, A, B, C, D, RecordedSwarm

OTHER = "22" * 32
SUSPEND_AFTER = 2


def settle_epoch(swarm: RecordedSwarm, strikes: dict[str, int], epoch: int, samples: dict[str, int],
                 scores: dict[str, list[int]], *, published: str = MERGED, invalid: tuple[str, ...] = ()) -> tuple:
    """Like `RecordedSwarm.settle_epoch` (the first node leads), but the leader may publish
    ``published`` while every reporter recomputes ``MERGED``, the reporters may find the
    ``invalid`` nodes' updates invalid, and strikes are counted as the contract counts them,
    a member being suspended (``NodeSuspended``) at ``SUSPEND_AFTER``."""
    nodes = list(samples)
    everyone = (1 << len(nodes)) - 1
    valid = everyone & ~sum(1 << nodes.index(node) for node in invalid)
    for index, node in enumerate(nodes):
        swarm.emit("UpdateSubmitted", epoch=epoch, index=index, node=node, commitment="ab" * 32,
                   declaredSamples=samples[node], samples=samples[node])
    swarm.emit("LeaderElected", epoch=epoch, leader=nodes[0])
    swarm.emit("MergePublished", epoch=epoch, mergedHash=published, participants=everyone)
    reports = []
    for reporter, vector in scores.items():
        swarm.emit("ValidationReported", epoch=epoch, reporter=reporter, metric=900_000, scores=vector,
                   mergedHash=MERGED, valid=valid)
        reports.append(Report(900_000, vector, MERGED, valid, reporter))
    budget = REWARD + swarm.carry
    participants = [Participant(samples=samples[node], reported=node in scores, leader=index == 0, node=node,
                                smoothed=swarm.smoothed.get(node, 0)) for index, node in enumerate(nodes)]
    result = settle(budget, participants, reports, rule=RULE, published_hash=published)
    if result.verdict.fault is Forfeit.MERGE_CONTRADICTED:
        swarm.emit("MergeDisputed", epoch=epoch, leader=nodes[0], publishedHash=published, majorityHash=MERGED)
    for j, node in enumerate(nodes):
        before = strikes.get(node, 0)
        strikes[node] = strikes_after(before, result.struck[j])
        if before < SUSPEND_AFTER <= strikes[node]:
            swarm.emit("NodeSuspended", account=node, epoch=epoch, strikes=strikes[node])
        swarm.emit("ParticipantSettled", epoch=epoch, node=node, samples=samples[node], score=result.scores[j],
                   smoothedScore=result.smoothed[j], standing=result.standing[j], payout=result.payouts[j],
                   forfeit=int(result.forfeits[j]))
    swarm.smoothed.update(zip(nodes, result.smoothed))
    swarm.emit("EpochSettled", epoch=epoch, budget=budget, credited=result.credited, carried=result.carried,
               medianMetric=result.median_metric or 0, reporters=len(reports), quorate=result.quorate,
               modelHash=result.verdict.model_hash)
    swarm.carry = result.carried
    swarm.block += 1
    return result


def suspension_history() -> Ledger:
    """A is suspended after epoch 2: it led epoch 1 and published a merge the majority
    contradicted, then its update of epoch 2 was found invalid. C, whose huge declared data
    its evidence cannot back, is suspended in epoch 2 too, for its evidence alone (its third
    strike, in epoch 3, suspends nothing more). Then D is removed, B leaves, C's
    authorisation expires, and A's is renewed, lifting its suspension, and A re-enrols."""
    swarm = RecordedSwarm()
    strikes: dict[str, int] = {}
    for node in (A, B, C, D):
        swarm.emit("AccountAuthorized", account=node, expiry=0, allowance=5000)
    swarm.enroll(A, B, C, D)
    honest = [50, 40, 1, 30]
    first = settle_epoch(swarm, strikes, 1, {A: 100, B: 100, C: 5000, D: 100},
                         {node: honest for node in (A, B, C, D)}, published=OTHER)
    assert first.forfeits[0] is Forfeit.MERGE_CONTRADICTED and first.struck[0]
    second = settle_epoch(swarm, strikes, 2, {B: 100, A: 100, C: 5000, D: 100},
                          {node: [40, 50, 1, 30] for node in (A, B, C, D)}, invalid=(A,))
    assert second.forfeits[1] is Forfeit.INVALID
    third = settle_epoch(swarm, strikes, 3, {B: 100, C: 5000, D: 100}, {node: [40, 1, 30] for node in (B, C, D)})
    assert [first.struck, second.struck, third.struck] == [(True, False, True, False), (False, True, True, False),
                                                           (False, True, False)], "scenario drifted"
    swarm.emit("NodeRemoved", account=D)
    swarm.leave(B)
    swarm.emit("NodeExpired", account=C)
    swarm.emit("AccountAuthorized", account=A, expiry=1_900_000_000, allowance=200)
    swarm.enroll(A)
    return swarm.ledger()


@pytest.fixture(scope="module")
def recorded() -> Ledger:
    return suspension_history()


@pytest.fixture
def cli(monkeypatch, recorded):
    """`swarm ledger ...` reading ``recorded`` instead of a chain."""
    monkeypatch.setattr(commands, "_connect_and_bind", lambda *args: SimpleNamespace(swarm=None, record={"block": 0}))
    monkeypatch.setattr(ledger_module, "read_ledger", lambda swarm, block: recorded)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["ledger", *args], env={"COLUMNS": "400"})
        return result.exit_code, result.output

    return run


def test_forfeits_read_as_reasons(recorded):
    rows = {(row["epoch"], row["node"]): row["forfeit"] for row in ledger_rows(recorded)}
    assert rows[(1, A)] == "leader fault: merge contradicted by a strict majority"
    assert rows[(2, A)] == "invalid update (no strict majority found it valid)"
    assert rows[(1, B)] == "" and rows[(3, C)] == ""
    assert all(phrase == "" or "_" not in phrase for phrase in FORFEIT_PHRASES.values())
    assert set(FORFEIT_PHRASES) == set(Forfeit)


def test_membership_rows_follow_the_chain_and_say_why(recorded):
    rows = membership_rows(recorded)
    assert [(row["event"], row["account"]) for row in rows] == [
        *(("authorized", node) for node in (A, B, C, D)), *(("enrolled", node) for node in (A, B, C, D)),
        ("suspended", A), ("suspended", C), ("removed", D), ("left", B), ("expired", C), ("authorized", A),
        ("enrolled", A)]
    assert [(row["block"], row["log_index"]) for row in rows] == [event.at for event in recorded.membership]
    suspended = {row["account"]: row for row in rows if row["event"] == "suspended"}
    assert (suspended[A]["epoch"], suspended[A]["strikes"]) == (2, 2)
    assert suspended[A]["reason"] == ("2 consecutive strikes, the last in epoch 2 (epoch 1: leader fault: merge "
                                      "contradicted by a strict majority; epoch 2: invalid update (no strict majority "
                                      "found it valid))")
    assert (suspended[C]["epoch"], suspended[C]["strikes"]) == (2, 2)
    assert suspended[C]["reason"] == ("2 consecutive strikes, the last in epoch 2 (epoch 1: evidence backs under half "
                                      "its data; epoch 2: evidence backs under half its data)")
    reasons = [row["reason"] for row in rows[-5:]]
    assert reasons == ["removed by the consortium admin", "left the swarm (strikes and smoothed score kept)",
                       "its authorisation expired",
                       "allowance 200 samples, until 1900000000; "
                       "lifts its suspension (strikes reset, it may enrol again)", "re-enrolled"]
    assert rows[4]["reason"] == "enrolled as a node"
    assert rows[0]["reason"] == "allowance 5000 samples, no expiry"
    assert all(row["epoch"] is None and row["strikes"] is None for row in rows if row["event"] != "suspended")


def test_strike_reason_names_a_censoring_leader():
    record = EpochRecord(5, commits=[CommitRecord(i, node, "ab" * 32, 10, 10) for i, node in enumerate((A, B, C))],
                         leader=A, merged_hash=MERGED, participants=[0, 1], quorate=True, settled_at=(9, 0),
                         reports=[ReportRecord(node, 1, [1, 1], MERGED, 0b111) for node in (A, B, C)])
    assert strike_reason(record, A) == "leader fault: censored an update a strict majority found valid"
    assert strike_reason(record, B) == "evidence backs under half its data"


def test_table_shows_the_ledger_then_the_membership_changes(cli):
    code, output = cli()
    assert code == 0, output
    assert output.index("contribution ledger") < output.index("membership changes")
    assert "leader fault: merge contradicted by a strict majority" in output
    membership = output[output.index("membership changes"):]
    lines = [line for line in membership.splitlines() if "suspended" in line]
    assert len(lines) == 2
    assert _short(A) in lines[0] and "2 consecutive strikes, the last in epoch 2" in lines[0]
    assert "epoch 1: leader fault: merge contradicted" in lines[0] and "epoch 2: invalid update" in lines[0]
    assert _short(C) in lines[1] and "evidence backs under half its data" in lines[1]
    cells = [cell.strip() for cell in lines[0].split("│")]
    assert cells[4:6] == ["2", "2"]  # epoch, strikes
    assert "removed by the consortium admin" in membership and "lifts its suspension" in membership


def test_membership_flag_shows_only_the_membership_table(cli):
    code, output = cli("--membership")
    assert code == 0 and "membership changes" in output and "contribution ledger" not in output


def test_json_holds_the_epochs_and_the_membership(cli, recorded):
    code, output = cli("--json")
    assert code == 0, output
    document = json.loads(output)
    assert set(document) == {"epochs", "membership"}
    assert document["epochs"] == json.loads(json.dumps(ledger_rows(recorded)))
    assert len(document["epochs"]) == sum(len(record.outcomes) for record in recorded.epochs.values())
    suspended = [entry for entry in document["membership"] if entry["event"] == "suspended"]
    assert [(entry["account"], entry["epoch"], entry["strikes"]) for entry in suspended] == [(A, 2, 2), (C, 2, 2)]
    assert "epoch 1: leader fault" in suspended[0]["reason"]
    assert list(document["membership"][0]) == list(MEMBERSHIP_FIELDS)
    code, output = cli("--json", "--membership")
    assert code == 0 and json.loads(output) == document["membership"]


def test_csv_keeps_per_participant_rows_and_membership_has_its_own(cli, recorded):
    code, output = cli("--csv")
    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO(output)))
    assert list(rows[0])[:2] == ["epoch", "node"]
    assert len(rows) == sum(len(record.outcomes) for record in recorded.epochs.values())
    assert {(row["epoch"], row["node"]): row["forfeit"] for row in rows}[("1", A)].startswith("leader fault")
    code, output = cli("--csv", "--membership")
    assert code == 0, output
    reader = csv.DictReader(io.StringIO(output))
    assert reader.fieldnames == list(MEMBERSHIP_FIELDS)
    suspended = [row for row in reader if row["event"] == "suspended"]
    assert [(row["account"], row["epoch"], row["strikes"]) for row in suspended] == [(A, "2", "2"), (C, "2", "2")]
    assert "evidence backs under half its data" in suspended[1]["reason"]


def test_csv_and_json_together_is_a_user_error(cli):
    code, output = cli("--csv", "--json")
    assert code == 2 and "not both" in output


def test_an_empty_ledger_prints_headers(monkeypatch, cli):
    monkeypatch.setattr(ledger_module, "read_ledger", lambda swarm, block: Ledger({}, [], []))
    code, output = cli("--csv", "--membership")
    assert code == 0 and output.strip() == ",".join(MEMBERSHIP_FIELDS)
    code, output = cli("--json")
    assert json.loads(output) == {"epochs": [], "membership": []}


def test_only_an_authorisation_lifting_a_suspension_resets_the_strikes_named():
    ledger = suspension_history()
    settled_first = ledger.epochs[1].settled_at
    renewal = MembershipEvent("authorized", C, (settled_first[0], settled_first[1] + 1), allowance=6000, expiry=0)
    ledger.membership = sorted([*ledger.membership, renewal], key=lambda event: event.at)
    suspension = next(event for event in ledger.membership if event.kind == "suspended" and event.account == C)
    assert strike_epochs(ledger, suspension) == [1, 2]  # C was active: its allowance changed, its strikes did not
    row = next(row for row in membership_rows(ledger) if (row["block"], row["log_index"]) == renewal.at)
    assert row["reason"] == "allowance 6000 samples, no expiry"
