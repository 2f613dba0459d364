"""What the dashboard page shows, as one JSON document, built from the ledger (the swarm
contract's events) and a few reads of the contract's current state only.

`build_state` is pure: a `Ledger` plus a `ChainState` in, a JSON-ready dict out, so it is
tested without a chain or a browser. Token amounts are strings in tokens with two decimals
(`tokens`), as the page prints them; metrics and scores are floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..chain.ledger import Ledger
from ..cli.views import FORFEIT_PHRASES, STATUSES, earned_by, forfeited_by, ledger_rows, membership_rows
from ..units import METRIC_SCALE, SCORE_SCALE, wei_to_tokens


@dataclass
class MemberState:
    """One member as the contract's ``memberOf`` tells it now."""

    address: str
    status: str  # none | active | suspended | removed
    strikes: int = 0
    smoothed: float = 0.0  # smoothed score, in score units
    allowance: int = 0


@dataclass
class ChainState:
    """The contract's current state, beside the ledger: where the swarm stands now."""

    swarm: str
    block: int
    epoch: int
    phase: str  # one of epochview.PHASES, or "Finished"
    finished: bool = False
    deadline: int | None = None  # unix time the current phase's window ends
    max_epochs: int | None = None
    members: dict[str, MemberState] = field(default_factory=dict)


def tokens(wei: int) -> str:
    """wei as tokens with two decimals, as the page shows every amount."""
    return f"{wei_to_tokens(wei):.2f}"


def node_labels(ledger: Ledger, members: dict[str, MemberState] | None = None) -> dict[str, str]:
    """``node-0``, ``node-1``, ... in the order accounts first enrolled (the demo's order),
    then any other account the events or the contract name."""
    order: list[str] = []
    for event in ledger.membership:
        if event.kind == "enrolled" and event.account not in order:
            order.append(event.account)
    others = [e.account for e in ledger.membership] + [o.node for r in ledger.epochs.values() for o in r.outcomes]
    for account in others + list(members or {}):
        if account not in order:
            order.append(account)
    return {account: f"node-{i}" for i, account in enumerate(order)}


def _statuses_from_events(ledger: Ledger) -> dict[str, str]:
    """Each account's status as the membership events leave it (when the contract cannot be
    read): active, left, expired, removed, suspended, or none."""
    status: dict[str, str] = {}
    for row in membership_rows(ledger):
        account, kind = row["account"], row["event"]
        before = status.get(account, "none")
        if kind == "enrolled":
            status[account] = "active"
        elif kind == "authorized":
            status[account] = "none" if before in ("suspended", "removed") else before
        elif not (kind == "suspended" and before == "removed"):
            status[account] = kind
    return status


def build_state(ledger: Ledger, chain: ChainState) -> dict[str, Any]:
    """The page's JSON: the swarm now (epoch, phase, members), then every epoch of the
    ledger (leader, metrics, per-node scores and payouts, disputes, forfeited payouts and
    balances), the
    membership changes and the flattened ledger rows (the CSV's)."""
    labels = node_labels(ledger, chain.members)
    earned, forfeited = earned_by(ledger), forfeited_by(ledger)
    claimed: dict[str, int] = {}
    for account, amount in ledger.claims:
        claimed[account] = claimed.get(account, 0) + amount
    from_events = _statuses_from_events(ledger)

    epochs = []
    settled_in: dict[str, int] = {}
    for number in sorted(ledger.epochs):
        record = ledger.epochs[number]
        state = "settled" if record.settled_at is not None else "abandoned" if record.abandoned else "open"
        outcomes = []
        for outcome in record.outcomes:
            settled_in[outcome.node] = settled_in.get(outcome.node, 0) + 1
            outcomes.append({
                "node": outcome.node,
                "label": labels.get(outcome.node, outcome.node),
                "samples": outcome.samples,
                "score": outcome.score / SCORE_SCALE,
                "smoothed": outcome.smoothed / SCORE_SCALE,
                "standing": outcome.standing,
                "payout": tokens(outcome.payout),
                "payout_wei": str(outcome.payout),
                "forfeit": FORFEIT_PHRASES[outcome.forfeit],
            })
        epochs.append({
            "epoch": number,
            "state": state,
            "leader": record.leader,
            "leader_label": labels.get(record.leader, "-") if record.leader else "-",
            "skipped": [labels.get(a, a) for a in record.skipped],
            "commits": len(record.commits),
            "participants": len(record.participants),
            "metric": None if record.median_metric is None else record.median_metric / METRIC_SCALE,
            "reports": {labels.get(r.reporter, r.reporter): r.metric / METRIC_SCALE for r in record.reports},
            "quorate": record.quorate,
            "budget": None if record.budget is None else tokens(record.budget),
            "credited": None if record.credited is None else tokens(record.credited),
            "carried": None if record.carried is None else tokens(record.carried),
            "model_hash": record.model_hash,
            "disputes": list(record.disputes),
            "outcomes": outcomes,
        })

    accounts = list(labels)
    nodes = []
    for account in accounts:
        member = chain.members.get(account)
        nodes.append({
            "address": account,
            "label": labels[account],
            "status": member.status if member else from_events.get(account, "none"),
            "strikes": member.strikes if member else None,
            "smoothed": member.smoothed if member else None,
            "allowance": member.allowance if member else None,
            "earned": tokens(earned.get(account, 0)),
            "earned_wei": str(earned.get(account, 0)),
            "forfeited": tokens(forfeited.get(account, 0)),
            "claimed": tokens(claimed.get(account, 0)),
            "epochs_settled_in": settled_in.get(account, 0),
        })

    membership = [{**row, "label": labels.get(row["account"], row["account"])} for row in membership_rows(ledger)]
    forfeits = [{"epoch": e["epoch"], "label": o["label"], "node": o["node"], "reason": o["forfeit"]}
                for e in epochs for o in e["outcomes"] if o["forfeit"]]
    forfeits += [{"epoch": number, "label": labels.get(account, account), "node": account,
                  "reason": f"its suspension forfeited its unclaimed {tokens(amount)} tokens"}
                 for number in sorted(ledger.epochs) for account, amount in ledger.epochs[number].forfeits]
    forfeits.sort(key=lambda f: f["epoch"])
    disputes = [{"epoch": e["epoch"], "leader": e["leader_label"], "what": d} for e in epochs for d in e["disputes"]]
    return {
        "swarm": chain.swarm,
        "block": chain.block,
        "epoch": chain.epoch,
        "phase": chain.phase,
        "finished": chain.finished,
        "deadline": chain.deadline,
        "max_epochs": chain.max_epochs,
        "epochs_settled": sum(e["state"] == "settled" for e in epochs),
        "total_paid": tokens(sum(earned.values())),
        "nodes": nodes,
        "epochs": epochs,
        "disputes": disputes,
        "forfeits": forfeits,
        "membership": membership,
        "ledger": [{**row, "label": labels.get(row["node"], row["node"])} for row in ledger_rows(ledger)],
    }


def member_state(address: str, member: Any) -> MemberState:
    """A `MemberState` from the contract's ``memberOf`` tuple (brownie's ReturnValue)."""
    return MemberState(address, STATUSES[int(member["status"])], int(member["strikes"]),
                       int(member["smoothedScore"]) / SCORE_SCALE, int(member["allowance"]))
