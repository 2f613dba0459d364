"""The swarm end to end: a real anvil chain, four node processes, real HTTP, and the
failures a consortium will meet, one per epoch:

epoch 1  everything works;
epoch 2  one node's committed file is tampered with on disk: the leader rejects it, the
         epoch goes on without it, nothing already accepted is lost;
epoch 3  the elected leader is killed before it publishes: the next candidate takes over
         and merges without the dead node's update (its store is down with it);
epoch 4  the killed node, restarted once epoch 3's merge is published, resumes from the latest
         merged model and takes part; another node is killed mid-epoch after committing: the epoch
         settles anyway.

The scenario runs once (module fixture); each test checks one guarantee on its record.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from swarmtoken.audit import audit_swarm
from swarmtoken.chain.epochview import read_epoch
from swarmtoken.cli.demo import DemoOptions, LocalSwarm, free_port
from tests.e2e.steps import elect_now, node_of, pause_when_all_committed, phase, settled, signal_alive, wait

EPOCHS = 4


@dataclass
class Scenario:
    env: LocalSwarm
    records: dict = field(default_factory=dict)
    tampered: str = ""
    killed_leader: str = ""
    killed_mid_epoch: str = ""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    options = DemoOptions(nodes=4, rogue=0, epochs=EPOCHS, port=free_port(), out=str(out / "run"),
                          commit_window=4, merge_window=12, report_window=20, elect_grace=60,
                          elect_early=False)  # the scenario acts between the last commitment and the election
    env = LocalSwarm(options)
    Path(options.out).mkdir(parents=True)
    run = Scenario(env)
    try:
        env.launch()
        swarm = env.handles.swarm
        run.records[1] = settled(env, 1)

        # epoch 2: tamper with one committed file before the leader fetches it
        pause_when_all_committed(env, 2, 4)
        victim = env.nodes[3]
        commit = next(c for c in read_epoch(swarm, 2, 0).commits if c.node == victim.address)
        folder = Path(options.out) / f"node-{victim.index}" / "store"
        stored = folder / f"{(folder / 'commits' / commit.commitment).read_text().strip()}.safetensors"
        stored.write_bytes(stored.read_bytes()[:-8] + b"tampered")
        run.tampered = victim.address
        signal_alive(env, signal.SIGCONT)
        run.records[2] = settled(env, 2)

        # epoch 3: kill the leader between election and publication
        pause_when_all_committed(env, 3, 4)
        leader = elect_now(env, 3)
        node_of(env, leader).stop(signal.SIGKILL)
        run.killed_leader = leader
        signal_alive(env, signal.SIGCONT)
        wait(lambda: swarm.leaderOf(3) != leader, "the fail-over of epoch 3")
        # It comes back only once the new leader published: restarted earlier, its store
        # could serve its commitment in time to be merged, and the test would race.
        wait(lambda: phase(swarm, 3) != "Merge", "the merge of epoch 3")
        node_of(env, leader).start()
        run.records[3] = settled(env, 3)

        # epoch 4: the restarted node takes part; another node is killed after committing
        pause_when_all_committed(env, 4, 4)
        new_leader = elect_now(env, 4)
        other = next(n for n in env.nodes if n.address not in (leader, new_leader) and n.alive())
        other.stop(signal.SIGKILL)
        run.killed_mid_epoch = other.address
        signal_alive(env, signal.SIGCONT)
        run.records[4] = settled(env, 4)
        yield run
    finally:
        env.stop()


def _why(record) -> str:
    """What a failed payout assertion needs: was the epoch quorate, who reported, and the
    aggregates."""
    return (f"epoch {record.epoch}: quorate={record.quorate}, {len(record.reports)} reports of "
            f"{len(record.commits)} commits by {[r.reporter for r in record.reports]}, outcomes "
            f"{[(o.node, o.score, o.smoothed, o.payout, o.forfeit.name) for o in record.outcomes]}")


def _payout(record, address):
    return next((o.payout for o in record.outcomes if o.node == address), None)


def test_four_node_processes_settle_an_epoch_and_pay_contributors(scenario):
    first = scenario.records[1]
    assert len(first.participants) == 4 and len(first.reports) == 4
    assert first.credited > 0, _why(first)
    assert sum(o.payout for o in first.outcomes) == first.credited


def test_tampered_file_is_rejected_and_the_epoch_goes_on(scenario):
    second = scenario.records[2]
    participants = second.participant_nodes()
    assert scenario.tampered not in participants and len(participants) == 3
    assert _payout(second, scenario.tampered) is None
    assert second.credited > 0, _why(second)
    logs = "".join((Path(scenario.env.out) / f"node-{n.index}" / "node.log").read_text() for n in scenario.env.nodes)
    assert "rejected update of " + scenario.tampered in logs and "sha256" in logs.lower()


def test_leader_killed_before_publishing_is_skipped_and_next_candidate_publishes(scenario):
    third = scenario.records[3]
    assert third.skipped == [scenario.killed_leader]
    assert third.merged_hash and scenario.killed_leader not in third.participant_nodes()
    assert third.credited > 0, _why(third)


def test_restarted_node_resumes_from_the_latest_merged_model(scenario):
    fourth = scenario.records[4]
    assert scenario.killed_leader in [c.node for c in fourth.commits]
    node = node_of(scenario.env, scenario.killed_leader)
    log = node.log_path.read_text()
    assert "adopted the global model of epoch 3" in log.split("resumed from checkpoint")[-1] or \
        "adopted the global model of epoch 3" in log
    checkpoint = json.loads((node.config_path.parent / "checkpoint.json").read_text())
    assert checkpoint["epoch"] >= 3


def test_node_killed_mid_epoch_does_not_stop_the_epoch(scenario):
    fourth = scenario.records[4]
    assert fourth.settled_at is not None
    assert scenario.killed_mid_epoch not in fourth.participant_nodes()
    assert fourth.credited > 0, _why(fourth)


def test_audit_recomputes_every_settlement_and_names_the_tampered_file(scenario):
    """Every settlement and balance checks out; the file that was tampered with on disk,
    which its node still serves, is a finding (it no longer opens its commitment) and not a
    discrepancy, because its node was not paid for it."""
    env = scenario.env
    report = audit_swarm(env.handles.swarm, env.handles.token, from_block=int(env.handles.record["block"]),
                         check_files=True)
    assert report.files_checked > 0 and report.checks > 50
    assert report.ok, report.discrepancies
    assert f"epoch 2 commit of {scenario.tampered}: the served file does not open its commitment" in report.findings
