"""What operators see of the new rule, chain-free: the ledger table and the demo's final
table carry each node's epoch score, smoothed score and good standing beside its tokens."""

from __future__ import annotations

from rich.console import Console

from swarmtoken.cli.demo import EpochView, print_summary, standing_record
from swarmtoken.units import SCORE_SCALE, wei_to_tokens
from swarmtoken.cli.views import earned_by, ledger_rows
from tests.swarmtoken.recorded import C, D, RecordedSwarm, history


def test_ledger_rows_carry_score_smoothed_score_and_standing():
    ledger = history(RecordedSwarm()).ledger()
    rows = {(row["epoch"], row["node"]): row for row in ledger_rows(ledger)}
    poor = rows[(2, C)]
    outcome = ledger.epochs[2].outcomes[2]
    assert outcome.payout > 0  # out of standing is partial weight, not unpaid
    assert (poor["score"], poor["smoothed_score"], poor["standing"], poor["payout_tokens"]) == (
        outcome.score / SCORE_SCALE, outcome.smoothed / SCORE_SCALE, False, str(wei_to_tokens(outcome.payout)))
    assert rows[(4, D)]["standing"] is True and (3, D) not in rows  # abandoned epochs settle nobody
    assert "median_score" not in poor


def test_standing_record_follows_the_last_settled_epoch():
    views = [EpochView(1, smoothed={C: 0.2, D: 0.1}, standing=[C, D]), EpochView(2),  # epoch 2 abandoned
             EpochView(3, smoothed={C: -0.1}, standing=[])]
    assert standing_record(views, C) == {"smoothed_score": -0.1, "epochs_settled_in": 2, "epochs_in_standing": 1}
    assert standing_record(views, D) == {"smoothed_score": 0.1, "epochs_settled_in": 1, "epochs_in_standing": 1}
    assert standing_record(views, "0x" + "e" * 40)["smoothed_score"] is None


def test_demo_final_table_shows_the_payouts_and_what_they_followed():
    ledger = history(RecordedSwarm()).ledger()
    earned = earned_by(ledger)
    node = {"rogue": False, "attack": "", "local_accuracy": 0.8, "swarm_accuracy": 0.95, "claimed": 0, "forfeited": 0}
    summary = {
        "epochs_settled": 3, "seconds": 1.0, "global_accuracy": 0.95, "centralized_accuracy": 0.97,
        "simulator_accuracy": 0.95, "audit_ok": True, "audit_checks": 10, "files_verified": 0, "audit_findings": [],
        "nodes": [{**node, "address": C, "earned": earned[C], "smoothed_score": -0.25, "epochs_settled_in": 3,
                   "epochs_in_standing": 2, "forfeited": 1234 * 10**16},
                  {**node, "address": D, "earned": earned[D], "smoothed_score": None, "epochs_settled_in": 0,
                   "epochs_in_standing": 0}],
    }
    console = Console(record=True, width=200)
    print_summary(console, summary)
    text = console.export_text()
    for column in ("earned", "share", "smoothed score", "in standing", "forfeited"):
        assert column in text
    assert "12.34" in text  # C's forfeited tokens
    share = earned[C] / (earned[C] + earned[D])
    assert f"{share:.1%}" in text and "-0.25000" in text and "2/3 epochs" in text and "0/0 epochs" in text
