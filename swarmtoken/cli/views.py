"""Rich renderings of the swarm's state and ledger for the CLI."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

from ..chain.connection import SwarmHandles
from ..chain.epochview import PHASES
from ..chain.ledger import EpochRecord, Ledger, MembershipEvent, read_ledger
from ..rewards import Forfeit, judge_leader
from ..units import METRIC_SCALE, SCORE_SCALE, wei_to_tokens

STATUSES = ("none", "active", "suspended", "removed")

#: Why a participant's payout was not credited, as the ledger says it.
FORFEIT_PHRASES = {
    Forfeit.NONE: "",
    Forfeit.NOT_REPORTED: "not reported (sent no validation report)",
    Forfeit.LEADER_TIMED_OUT: "leader timed out (published no merge)",
    Forfeit.REMOVED: "removed by the consortium admin",
    Forfeit.MERGE_CONTRADICTED: "leader fault: merge contradicted by a strict majority",
    Forfeit.CENSORED: "leader fault: censored an update a strict majority found valid",
    Forfeit.OVER_DECLARED: "over-declared (more samples than its allowance)",
    Forfeit.INVALID: "invalid update (no strict majority found it valid)",
}

#: The columns of `membership_rows`, in order (the CSV header of `swarm ledger --membership --csv`).
MEMBERSHIP_FIELDS = ("block", "log_index", "event", "account", "epoch", "strikes", "reason")


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


def forfeited_by(ledger: Ledger) -> dict[str, int]:
    """Tokens (wei) per node that its suspension took back unclaimed (``BalanceForfeited``)."""
    forfeited: dict[str, int] = {}
    for record in ledger.epochs.values():
        for account, amount in record.forfeits:
            forfeited[account] = forfeited.get(account, 0) + amount
    return forfeited


def claim_status(swarm: Any, address: str) -> str:
    """When ``address`` may claim its balance: now, or after how many more clean epochs
    (``SwarmLearning.claim``: CLAIM_AFTER consecutive quorate epochs without a strike, or
    the swarm's finish)."""
    if int(swarm.claimable(address)) == 0:
        return "nothing to claim"
    if swarm.claimUnlocked(address):
        return "now"
    clean, needed = int(swarm.memberOf(address)["cleanEpochs"]), int(swarm.CLAIM_AFTER())
    return f"after {needed - clean} more clean epoch{'s' if needed - clean > 1 else ''}, or at the finish"


def claim_refusal(swarm: Any, address: str, from_block: int) -> str | None:
    """Why ``swarm.claim`` would refuse ``address`` (events from ``from_block``, the
    deployment's), said so that the user knows what to do; None when it may claim."""
    amount = int(swarm.claimable(address))
    if amount == 0:
        def total(event: Any) -> int:
            return sum(int(e.args["amount"]) for e in event.get_logs(from_block=from_block,
                                                                     argument_filters={"account": address}))

        claimed, forfeited = total(swarm.events.RewardClaimed), total(swarm.events.BalanceForfeited)
        if claimed:
            return (f"{address} has nothing left to claim: it already claimed {wei_to_tokens(claimed)} tokens (a node "
                    "claims by itself when the swarm finishes: [node] claim_at_finish)")
        if forfeited:
            return (f"{address} has nothing to claim: its suspension forfeited its unclaimed {wei_to_tokens(forfeited)} "
                    "tokens; only the consortium admin can lift a suspension (swarm authorize)")
        return f"{address} has nothing to claim yet; credits arrive when an epoch it took part in settles"
    if not swarm.claimUnlocked(address):
        clean, needed = int(swarm.memberOf(address)["cleanEpochs"]), int(swarm.CLAIM_AFTER())
        return (f"{address}'s {wei_to_tokens(amount)} tokens are locked: a node claims after {needed} consecutive "
                f"epochs it took part in without a strike (it has {clean}), once it left with its last epoch settled "
                "without a strike, or once the swarm finishes; keep the node running and claim after its next clean epoch")
    return None


def rewards_table(handles: SwarmHandles, address: str) -> Table:
    ledger = read_ledger(handles.swarm, int(handles.record["block"]))
    claimed = sum(amount for account, amount in ledger.claims if account == address)
    forfeited = forfeited_by(ledger).get(address, 0)
    table = Table(title=f"rewards of {address}")
    for column in ("earned", "claimed", "forfeited", "claimable", "claim", "wallet balance"):
        table.add_column(column)
    earned, claimable, wallet = (earned_by(ledger).get(address, 0), int(handles.swarm.claimable(address)),
                                 int(handles.token.balanceOf(address)))
    table.add_row(*(str(wei_to_tokens(v)) for v in (earned, claimed, forfeited, claimable)),
                  claim_status(handles.swarm, address), str(wei_to_tokens(wallet)))
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
                "forfeit": FORFEIT_PHRASES[outcome.forfeit],
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


REJECTED_PHRASE = "its update was rejected (left out; no strict majority found it valid)"


def strike_reason(record: EpochRecord, account: str) -> str:
    """Why ``account`` took a strike in the settled, quorate epoch ``record``, from what the
    ledger holds (see `swarmtoken.rewards`, "Strikes"): a rejected update (`UpdateRejected`),
    a fault as leader (the reference verdict on the epoch's reports), an update merged
    without a strict majority finding it valid, else its evidence backing under half of its
    data (the data weights need the deployed rule, so that reason is the one left when the
    others do not apply)."""
    if account in record.rejected:
        return REJECTED_PHRASE
    reports = [r.as_report() for r in record.reports]
    reasons = []
    if account == record.leader:
        verdict = judge_leader(record.merged_hash or "", sum(1 << i for i in record.participants),
                               len(record.commits), reports)
        if verdict.fault is not Forfeit.NONE:
            reasons.append(FORFEIT_PHRASES[verdict.fault])
    index = next((c.index for c in record.commits if c.node == account), None)
    if index in record.participants and 2 * sum(r.valid >> index & 1 for r in reports) <= len(reports):
        reasons.append(FORFEIT_PHRASES[Forfeit.INVALID])
    return "; ".join(reasons) or "evidence backs under half its data"


def strike_epochs(ledger: Ledger, event: MembershipEvent) -> list[int]:
    """The epochs whose strikes suspended the member (``event``, a suspension): its last
    ``event.strikes`` quorate settled epochs up to ``event.epoch``, since strikes count
    consecutive quorate epochs the node settled in, and an authorisation that lifts a
    suspension or removal resets them. Fewer when the ledger starts later."""
    authorised, status = (-1, -1), "none"
    for earlier in ledger.membership:
        if earlier.account != event.account or earlier.at >= event.at:
            continue
        if earlier.kind == "authorized" and status in ("suspended", "removed"):
            authorised = earlier.at
        if earlier.kind != "authorized" or status in ("suspended", "removed"):
            status = earlier.kind
    epochs: list[int] = []
    for number in sorted((n for n in ledger.epochs if event.epoch is not None and n <= event.epoch), reverse=True):
        record = ledger.epochs[number]
        if len(epochs) == (event.strikes or 0):
            break
        if record.settled_at is None or record.settled_at < authorised:
            continue
        if record.quorate and (event.account in record.rejected or any(o.node == event.account
                                                                        for o in record.outcomes)):
            epochs.append(number)
    return sorted(epochs)


def membership_reason(ledger: Ledger, event: MembershipEvent, before: str, enrolled_before: bool = False) -> str:
    """What an operator needs to know of a membership change; ``before`` is the member's
    status before it as the events tell it (none, active, left, expired, removed or
    suspended), ``enrolled_before`` whether it had enrolled earlier."""
    if event.kind == "suspended":
        strikes = "; ".join(f"epoch {n}: {strike_reason(ledger.epochs[n], event.account)}"
                            for n in strike_epochs(ledger, event))
        forfeited = sum(amount for account, amount in ledger.epochs[event.epoch].forfeits if account == event.account) \
            if event.epoch in ledger.epochs else 0
        return f"{event.strikes} consecutive strikes, the last in epoch {event.epoch}" + (f" ({strikes})" if strikes else "") \
            + (f"; forfeited its unclaimed {wei_to_tokens(forfeited)} tokens" if forfeited else "")
    if event.kind == "authorized":
        terms = f"allowance {event.allowance} samples" if event.allowance is not None else "allow-listed"
        terms += f", until {event.expiry}" if event.expiry else ", no expiry"
        lifted = f"; lifts its {'suspension' if before == 'suspended' else 'removal'} (strikes reset, it may " \
            "enrol again)" if before in ("suspended", "removed") else ""
        return f"{terms}{lifted}"
    return {
        "enrolled": "re-enrolled" if enrolled_before else "enrolled as a node",
        "left": "left the swarm (strikes and smoothed score kept)",
        "expired": "its authorisation expired",
        "removed": "removed by the consortium admin",
    }.get(event.kind, event.kind)


def membership_rows(ledger: Ledger) -> list[dict[str, Any]]:
    """Every membership change in chain order (authorisations, enrolments, departures,
    expiries, removals, suspensions), each with why: ``MEMBERSHIP_FIELDS``."""
    rows = []
    status: dict[str, str] = {}
    enrolled: set[str] = set()
    for event in ledger.membership:
        before = status.get(event.account, "none")
        rows.append({
            "block": event.at[0],
            "log_index": event.at[1],
            "event": event.kind,
            "account": event.account,
            "epoch": event.epoch,
            "strikes": event.strikes,
            "reason": membership_reason(ledger, event, before, event.account in enrolled),
        })
        if event.kind == "enrolled":
            enrolled.add(event.account)
            status[event.account] = "active"
        elif event.kind == "authorized":
            # lifts a suspension or removal, else leaves the status as it was
            status[event.account] = "none" if before in ("suspended", "removed") else before
        elif not (event.kind == "suspended" and before == "removed"):
            status[event.account] = event.kind
    return rows


def print_membership(rows: list[dict[str, Any]]) -> None:
    table = Table(title="membership changes")
    for column in ("block", "event", "account", "epoch", "strikes", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["block"]), row["event"], _short(row["account"]),
                      "-" if row["epoch"] is None else str(row["epoch"]),
                      "-" if row["strikes"] is None else str(row["strikes"]), row["reason"])
    if not rows:
        table.caption = "none"
    Console().print(table)
