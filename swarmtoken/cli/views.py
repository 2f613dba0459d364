"""Rich renderings of the swarm's state and ledger for the CLI."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

from ..chain.connection import SwarmHandles
from ..chain.epochview import PHASES
from ..chain.ledger import Ledger, read_ledger
from ..units import METRIC_SCALE, SCORE_SCALE, wei_to_tokens

STATUSES = ("none", "active", "suspended", "removed")


def _short(address: str | None) -> str:
    return f"{address[:8]}..{address[-4:]}" if address else "-"


def status_table(handles: SwarmHandles) -> Table:
    swarm = handles.swarm
    epoch = int(swarm.currentEpoch())
    state = swarm.epochState(epoch)
    phase = "Finished" if swarm.finished() else PHASES[int(state["phase"])]
    left = int(state["deadline"]) - int(time.time())
    table = Table(title=f"swarm {swarm.address}: epoch {epoch}, {phase}")
    table.add_column("field")
    table.add_column("value")
    leader = swarm.leaderOf(epoch)
    table.add_row("leader", _short(leader) if int(leader, 16) else "not drawn yet")
    table.add_row("deadline", f"{int(state['deadline'])} ({left:+d} s)")
    table.add_row("commitments", str(int(state["commitCount"])))
    table.add_row("reports", f"{int(state['reporters']).bit_count()} of {int(state['commitCount'])} committers")
    table.add_row("active members", str(int(swarm.activeCount())))
    table.add_row("carry (tokens)", str(wei_to_tokens(int(swarm.carry()))))
    ledger = read_ledger(swarm, int(handles.record["block"]))
    for account in sorted({event.account for event in ledger.membership}):
        member = swarm.memberOf(account)
        table.add_row(f"member {_short(account)}", f"{STATUSES[int(member['status'])]}, "
                      f"strikes {int(member['strikes'])}, "
                      f"smoothed score {int(member['smoothedScore']) / SCORE_SCALE:+.5f}, "
                      f"allowance {int(member['allowance'])} samples, "
                      f"last commit epoch {int(member['lastSubmitEpoch'])}")
    return table


def earned_by(ledger: Ledger) -> dict[str, int]:
    """Tokens (wei) credited per node over every settled epoch of ``ledger``."""
    earned: dict[str, int] = {}
    for record in ledger.epochs.values():
        for outcome in record.outcomes:
            earned[outcome.node] = earned.get(outcome.node, 0) + outcome.payout
    return earned


def rewards_table(handles: SwarmHandles, address: str) -> Table:
    ledger = read_ledger(handles.swarm, int(handles.record["block"]))
    claimed = sum(amount for account, amount in ledger.claims if account == address)
    table = Table(title=f"rewards of {address}")
    table.add_column("earned")
    table.add_column("claimed")
    table.add_column("claimable")
    table.add_column("wallet balance")
    table.add_row(*(str(wei_to_tokens(v)) for v in (earned_by(ledger).get(address, 0), claimed,
                                                    int(handles.swarm.claimable(address)),
                                                    int(handles.token.balanceOf(address)))))
    return table


def ledger_rows(ledger: Ledger) -> list[dict[str, Any]]:
    """One row per (epoch, participant): the ledger flattened for tables, CSV and JSON."""
    rows = []
    for number in sorted(ledger.epochs):
        record = ledger.epochs[number]
        commits = {c.node: c for c in record.commits}
        for outcome in record.outcomes:
            rows.append({
                "epoch": number,
                "node": outcome.node,
                "commitment": commits[outcome.node].commitment if outcome.node in commits else "",
                "declared_samples": commits[outcome.node].declared if outcome.node in commits else 0,
                "samples": outcome.samples,
                "leader": record.leader or "",
                "merged_hash": record.merged_hash or "",
                "model_hash": record.model_hash or "",
                "score": outcome.score / SCORE_SCALE,
                "smoothed_score": outcome.smoothed / SCORE_SCALE,
                "standing": outcome.standing,
                "payout_tokens": str(wei_to_tokens(outcome.payout)),
                "forfeit": "" if not outcome.forfeited else outcome.forfeit.name.lower().replace("_", " "),
                "disputes": "; ".join(record.disputes) if outcome.node == record.leader else "",
                "median_metric": None if record.median_metric is None else record.median_metric / METRIC_SCALE,
            })
    return rows


def print_ledger(rows: list[dict[str, Any]]) -> None:
    table = Table(title="contribution ledger")
    columns = ("epoch", "node", "samples", "leader", "score", "smoothed", "standing", "payout", "forfeit", "metric",
               "disputes")
    for column in columns:
        table.add_column(column)
    for row in rows:
        samples = str(row["samples"]) + (f" (declared {row['declared_samples']})"
                                         if row["declared_samples"] > row["samples"] else "")
        table.add_row(str(row["epoch"]), _short(row["node"]), samples, _short(row["leader"]),
                      f"{row['score']:+.5f}", f"{row['smoothed_score']:+.5f}", "yes" if row["standing"] else "no",
                      row["payout_tokens"], row["forfeit"],
                      "-" if row["median_metric"] is None else f"{row['median_metric']:.4f}", row["disputes"])
    Console().print(table)
