"""The dashboard's data, chain-free: a hand-built ledger and chain state in, the page's JSON
out; and the server's routes on that JSON (aiohttp's test client, no browser, no chain)."""

from __future__ import annotations

import asyncio
import csv
import io
import json

from swarmtoken.chain.ledger import (CommitRecord, EpochRecord, Ledger, MembershipEvent, OutcomeRecord,
                                     ReportRecord)
from swarmtoken.cli.views import earned_by
from swarmtoken.dashboard.data import ChainState, MemberState, build_state, tokens
from swarmtoken.rewards import Forfeit
from swarmtoken.units import METRIC_SCALE, SCORE_SCALE

A, B, C = ("0x" + c * 40 for c in "abc")
TOKEN = 10**18


def outcome(node: str, payout: float, score: float = 0.1, standing: bool = True,
            forfeit: Forfeit = Forfeit.NONE) -> OutcomeRecord:
    return OutcomeRecord(node, 100, int(score * SCORE_SCALE), int(score * SCORE_SCALE), standing,
                         round(payout * 1000) * TOKEN // 1000, forfeit)


def ledger() -> Ledger:
    """Three members; epoch 1 settled, epoch 2 disputed (the leader C forfeits) after which
    C is suspended, epoch 3 abandoned, epoch 4 open."""
    one = EpochRecord(1, commits=[CommitRecord(i, n, "00", 100, 100) for i, n in enumerate((A, B, C))], leader=A,
                      merged_hash="11" * 32, participants=[0, 1, 2],
                      reports=[ReportRecord(n, int(m * METRIC_SCALE), [], "11" * 32, 7)
                               for n, m in ((A, 0.9), (B, 0.92), (C, 0.5))],
                      outcomes=[outcome(A, 400.125), outcome(B, 350), outcome(C, 249.875, standing=False)],
                      budget=1000 * TOKEN, credited=1000 * TOKEN, carried=0, median_metric=900000, quorate=True,
                      model_hash="22" * 32, settled_at=(10, 3))
    two = EpochRecord(2, commits=one.commits, leader=C, skipped=[B], merged_hash="33" * 32, participants=[0, 1, 2],
                      disputes=["leader C published 333333, a strict majority recomputed 444444"],
                      outcomes=[outcome(A, 500), outcome(B, 500), outcome(C, 0, forfeit=Forfeit.MERGE_CONTRADICTED)],
                      budget=1000 * TOKEN, credited=1000 * TOKEN, carried=0, median_metric=950000, quorate=True,
                      model_hash="44" * 32, settled_at=(20, 5))
    three = EpochRecord(3, abandoned=True, carried=1000 * TOKEN)
    four = EpochRecord(4, commits=[CommitRecord(0, A, "00", 100, 100)])
    membership = [MembershipEvent("authorized", n, (1, i), allowance=100, expiry=0) for i, n in enumerate((A, B, C))]
    membership += [MembershipEvent("enrolled", n, (2, i)) for i, n in enumerate((A, B, C))]
    membership.append(MembershipEvent("suspended", C, (20, 6), epoch=2, strikes=2))
    two.forfeits.append((C, 249_875 * 10**15))  # its unclaimed balance: its epoch-1 pay
    return Ledger(epochs={1: one, 2: two, 3: three, 4: four}, claims=[(A, 400 * TOKEN)], membership=membership)


def chain(members: bool = True) -> ChainState:
    return ChainState(swarm="0x" + "5" * 40, block=25, epoch=4, phase="Commit", deadline=1234, max_epochs=10,
                      members={A: MemberState(A, "active", 0, 0.1, 100), B: MemberState(B, "active", 0, 0.1, 100),
                               C: MemberState(C, "suspended", 2, 0.0, 100)} if members else {})


def test_state_has_the_swarm_now_and_every_epoch():
    state = build_state(ledger(), chain())
    json.dumps(state)  # JSON-ready
    assert (state["epoch"], state["phase"], state["finished"], state["block"], state["max_epochs"]) == (4, "Commit",
                                                                                                       False, 25, 10)
    assert state["epochs_settled"] == 2
    assert [e["state"] for e in state["epochs"]] == ["settled", "settled", "abandoned", "open"]
    one, two = state["epochs"][:2]
    assert (one["leader_label"], one["metric"], one["reports"]) == ("node-0", 0.9, {"node-0": 0.9, "node-1": 0.92,
                                                                                    "node-2": 0.5})
    assert two["leader_label"] == "node-2" and two["skipped"] == ["node-1"]
    # two decimals rounded half to even, as the demo's final table prints them
    assert [o["payout"] for o in one["outcomes"]] == ["400.12", "350.00", "249.88"]
    assert one["outcomes"][2]["standing"] is False and one["outcomes"][0]["score"] == 0.1


def test_members_their_status_earnings_and_claims():
    state = build_state(ledger(), chain())
    nodes = {n["label"]: n for n in state["nodes"]}
    assert list(nodes) == ["node-0", "node-1", "node-2"]  # in enrolment order
    assert (nodes["node-2"]["status"], nodes["node-2"]["strikes"]) == ("suspended", 2)
    earned = earned_by(ledger())
    for n in state["nodes"]:
        assert n["earned"] == tokens(earned[n["address"]]) and n["earned_wei"] == str(earned[n["address"]])
    assert (nodes["node-0"]["earned"], nodes["node-0"]["claimed"], nodes["node-1"]["claimed"]) == ("900.12", "400.00",
                                                                                                   "0.00")
    assert nodes["node-2"]["epochs_settled_in"] == 2
    assert (nodes["node-2"]["forfeited"], nodes["node-0"]["forfeited"]) == ("249.88", "0.00")
    assert state["total_paid"] == tokens(sum(earned.values())) == "2000.00"


def test_status_from_events_when_the_contract_was_not_read():
    nodes = {n["label"]: n for n in build_state(ledger(), chain(members=False))["nodes"]}
    assert [nodes[k]["status"] for k in ("node-0", "node-1", "node-2")] == ["active", "active", "suspended"]
    assert nodes["node-0"]["strikes"] is None


def test_disputes_forfeits_and_membership_changes():
    state = build_state(ledger(), chain())
    assert state["disputes"] == [{"epoch": 2, "leader": "node-2",
                                  "what": "leader C published 333333, a strict majority recomputed 444444"}]
    assert [(f["epoch"], f["label"]) for f in state["forfeits"]] == [(2, "node-2"), (2, "node-2")]
    assert "merge contradicted" in state["forfeits"][0]["reason"]
    assert state["forfeits"][1]["reason"] == "its suspension forfeited its unclaimed 249.88 tokens"
    suspension = state["membership"][-1]
    assert (suspension["event"], suspension["label"], suspension["epoch"], suspension["strikes"]) == (
        "suspended", "node-2", 2, 2)
    assert "2 consecutive strikes" in suspension["reason"]
    assert [(r["epoch"], r["label"]) for r in state["ledger"]] == [(e, f"node-{i}") for e in (1, 2) for i in range(3)]


def test_an_empty_swarm():
    state = build_state(Ledger({}, [], []), ChainState(swarm="0x" + "5" * 40, block=3, epoch=1, phase="Commit"))
    assert (state["epochs_settled"], state["nodes"], state["epochs"], state["total_paid"]) == (0, [], [], "0.00")


class Fixed:
    """A source whose state is a test's."""

    def __init__(self, state: dict) -> None:
        self.current, self.reads = state, 0

    def state(self) -> dict:
        self.reads += 1
        return self.current


def test_routes_serve_the_page_json_events_and_csv():
    from aiohttp.test_utils import TestClient, TestServer

    from swarmtoken.dashboard.server import Dashboard

    state = build_state(ledger(), chain())
    dashboard = Dashboard(Fixed(state), interval=0.05)

    async def scenario() -> None:
        dashboard._changed = asyncio.Condition()
        poller = asyncio.create_task(dashboard._poll())
        async with TestClient(TestServer(dashboard.app())) as client:
            page = await (await client.get("/")).text()
            assert "__STATE__" not in page and '"epochs_settled": 2' in page and "/static/app.js" in page
            assert "<script" not in page.split('id="initial-state"')[1].split("</script>")[0]
            assert (await client.get("/static/app.js")).status == 200
            assert (await (await client.get("/api/state")).json())["epochs_settled"] == 2
            response = await client.get("/ledger.csv")
            assert response.headers["Content-Disposition"].endswith('"ledger.csv"')
            rows = list(csv.DictReader(io.StringIO(await response.text())))
            assert [r["payout_tokens"] for r in rows[:3]] == ["400.125", "350", "249.875"]
            assert "label" not in rows[0]
            membership = list(csv.DictReader(io.StringIO(await (await client.get("/membership.csv")).text())))
            assert membership[-1]["event"] == "suspended"
            events = await client.get("/api/events")
            assert events.headers["Content-Type"].startswith("text/event-stream")
            first = await events.content.readline()
            assert json.loads(first.decode().removeprefix("data: "))["block"] == 25
            await events.content.readline()
            dashboard.source.current = {**state, "block": 26, "epochs_settled": 3}  # a new block
            second = await asyncio.wait_for(events.content.readline(), timeout=5)
            assert json.loads(second.decode().removeprefix("data: "))["epochs_settled"] == 3
            events.close()
        poller.cancel()

    asyncio.run(scenario())
