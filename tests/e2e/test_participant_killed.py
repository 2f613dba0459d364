"""A participant killed right after the leader merged its update: five node processes on a
real chain; in epoch 2, the moment the leader's merge is on chain, a participant that is
not the leader is killed (SIGKILL). Validators that can no longer fetch its file check the
merge on the copy the leader keeps, so every surviving node ends every epoch with the
model the chain recorded (asserted from their logs and checkpoints), the leader is never
contradicted, the swarm finishes without the dead node, and the audit passes, naming the
files the dead node no longer serves."""

from __future__ import annotations

import json
import re
import signal

import pytest

from swarmtoken.audit import audit_swarm
from swarmtoken.chain.epochview import read_epoch
from swarmtoken.cli.demo import DemoOptions, LocalSwarm, free_port
from tests.e2e.steps import node_of, phase, wait

ADOPTED = re.compile(r"adopted the global model of epoch (\d+) \(([0-9a-f]{12})\)")
EPOCHS = 3
KILLED_IN = 2


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("killed")
    options = DemoOptions(nodes=5, epochs=EPOCHS, out=out, port=free_port(), commit_window=4, merge_window=20,
                          report_window=20, elect_grace=4, seed=5)
    env = LocalSwarm(options)
    try:
        env.launch()
        swarm, start = env.handles.swarm, int(env.handles.record["block"])
        wait(lambda: int(swarm.currentEpoch()) > KILLED_IN or phase(swarm, KILLED_IN) == "Report",
             f"the merge of epoch {KILLED_IN}")
        record = read_epoch(swarm, KILLED_IN, start)
        victim = node_of(env, next(n for n in record.participant_nodes() if n != record.leader))
        victim.process.send_signal(signal.SIGKILL)
        wait(lambda: bool(swarm.finished()), "the swarm to finish", timeout=300)
        models = {e: bytes(swarm.epochState(e)["modelHash"]).hex() for e in range(1, EPOCHS + 1)
                  if phase(swarm, e) == "Settled"}
        survivors = [n for n in env.nodes if n is not victim]
        checkpoints = [n.config_path.parent / "checkpoint.json" for n in survivors]
        last = max(models)
        wait(lambda: all(c.exists() and json.loads(c.read_text())["epoch"] == last for c in checkpoints),
             f"every surviving node to adopt the model of epoch {last}", timeout=60)
        report = audit_swarm(swarm, env.handles.token, from_block=start, check_files=True)
        yield {"victim": victim.address, "killed_record": record, "models": models,
               "logs": {n.address: n.log_path.read_text() for n in survivors},
               "checkpoints": [json.loads(c.read_text())["sha256"] for c in checkpoints], "report": report,
               "disputes": [d for e in models for d in read_epoch(swarm, e, start).disputes]}
    finally:
        env.stop()


def test_every_surviving_node_ends_every_epoch_with_the_recorded_model(killed_run):
    models = killed_run["models"]
    assert sorted(models) == list(range(1, EPOCHS + 1))
    for address, log in killed_run["logs"].items():
        adopted = dict((int(e), sha) for e, sha in ADOPTED.findall(log))
        assert adopted == {e: sha[:12] for e, sha in models.items()}, (address, adopted)
    assert set(killed_run["checkpoints"]) == {models[EPOCHS]}


def test_the_leader_is_never_contradicted(killed_run):
    assert killed_run["disputes"] == []
    assert not any("DISPUTE" in log for log in killed_run["logs"].values())


def test_the_audit_passes_and_names_what_the_dead_node_no_longer_serves(killed_run):
    report = killed_run["report"]
    assert report.ok, report.discrepancies
    gone = f"epoch {KILLED_IN} commit of {killed_run['victim']}: not served (its committer's store did not answer)"
    assert any(finding.startswith(gone) for finding in report.findings), report.findings
