"""A chain outage in each phase: four node processes on a real anvil chain, which is
stopped (its state written to disk) and restarted from that state once in the Commit, the
Merge and the Report phase of successive epochs. Every node must ride it out without a
restart: nobody dies, the swarm finishes, every node logs the outage once and the
recovery once, nothing the chain had accepted is lost, every node ends with the global
model the chain recorded (byte for byte: its checkpoint's hash), and the audit passes.

The nodes are started while the chain runs (a node whose chain is not there at start
refuses to start, in one line). The suite stops the chain for ``SWARM_OUTAGE_SECONDS``
each time (default 6, beyond the nodes' largest backoff of 5 s); the acceptance run of
issue "Node runtime" is 20 s:

    SWARM_OUTAGE_SECONDS=20 .venv/bin/python -m pytest -p no:pytest-brownie tests/e2e/test_chain_outage.py
"""

from __future__ import annotations

import json
import os
import time

import pytest

from swarmtoken.audit import audit_swarm
from swarmtoken.chain.epochview import PHASES
from swarmtoken.chain.localchain import start, stop_pid
from swarmtoken.cli.demo import DemoOptions, LocalSwarm, free_port
from tests.e2e.steps import wait

OUTAGE_S = float(os.environ.get("SWARM_OUTAGE_SECONDS", "6"))
EPOCHS = 4
#: The phases the chain goes down in, each in a later epoch than the one before.
PHASES_DOWN = ("Commit", "Merge", "Report")


def _next_epoch_in(swarm, phase: str, after: int) -> int:
    """Wait for the first epoch after ``after`` to be in ``phase`` (in Commit: with at least
    two commitments, so the nodes are up and mid-epoch) and return it."""
    seen: list[int] = []

    def ready() -> bool:
        epoch = int(swarm.currentEpoch())
        state = swarm.epochState(epoch)
        seen[:] = [epoch]
        return epoch > after and PHASES[int(state["phase"])] == phase and \
            (phase != "Commit" or int(state["commitCount"]) >= 2)

    wait(lambda: ready() or bool(swarm.finished()), f"an epoch after {after} in {phase}", timeout=300)
    if swarm.finished():
        pytest.fail(f"the swarm finished before the test could stop the chain in {phase}")
    return seen[0]


@pytest.fixture(scope="module")
def outage_run(tmp_path_factory):
    from brownie import web3

    out = tmp_path_factory.mktemp("outage")
    options = DemoOptions(nodes=4, epochs=EPOCHS, out=out, port=free_port(), commit_window=4, merge_window=20,
                          report_window=20, seed=3)
    state_file = out / "chain-state.json"
    env = LocalSwarm(options)
    try:
        env.chain_process = start(options.port, state_file=state_file, log_file=out / "anvil.log")
        from swarmtoken.chain.connection import connect

        connect("development", options.port)
        env.deploy()
        env.create_nodes()
        env.start_nodes()
        swarm = env.handles.swarm
        downs = []
        last = 0
        for phase in PHASES_DOWN:
            epoch = _next_epoch_in(swarm, phase, after=last)
            block = int(web3.eth.block_number)
            stop_pid(env.chain_process.pid)
            env.chain_process.wait(timeout=10)
            time.sleep(OUTAGE_S)
            env.chain_process = start(options.port, state_file=state_file, log_file=out / "anvil.log")
            downs.append((epoch, phase, block, int(web3.eth.block_number)))
            last = epoch
        wait(lambda: bool(swarm.finished()), "the swarm to finish", timeout=300)
        last = max(e for e in range(1, int(swarm.currentEpoch()) + 1) if PHASES[int(swarm.epochState(e)["phase"])]
                   == "Settled")
        model = bytes(swarm.epochState(last)["modelHash"]).hex()
        checkpoints = [node.config_path.parent / "checkpoint.json" for node in env.nodes]
        wait(lambda: all(c.exists() and json.loads(c.read_text())["epoch"] == last for c in checkpoints),
              f"every node to adopt the model of epoch {last}", timeout=60)
        alive = [node.alive() for node in env.nodes]
        logs = {node.address: node.log_path.read_text() for node in env.nodes}
        report = audit_swarm(swarm, env.handles.token, from_block=int(env.handles.record["block"]), check_files=True)
        yield {"model": model, "checkpoints": [json.loads(c.read_text())["sha256"] for c in checkpoints],
               "downs": downs, "alive": alive, "logs": logs, "report": report, "settled": int(swarm.settledEpochs())}
    finally:
        env.stop()


def test_no_block_the_chain_had_is_lost_across_a_restart(outage_run):
    for epoch, phase, before, after in outage_run["downs"]:
        assert after >= before, f"epoch {epoch} ({phase}): block {before} before the outage, {after} after"


def test_every_node_rides_out_every_outage_without_a_restart(outage_run):
    assert all(outage_run["alive"]), outage_run["alive"]
    for address, text in outage_run["logs"].items():
        assert "Traceback" not in text, f"{address} logged a traceback:\n{text[-3000:]}"
        assert text.count("chain unreachable since") == len(PHASES_DOWN), f"{address}:\n{text[-3000:]}"
        assert text.count("chain back at block") == len(PHASES_DOWN), f"{address}:\n{text[-3000:]}"


def test_the_swarm_finishes_and_its_ledger_audits_clean(outage_run):
    assert outage_run["settled"] >= 1
    report = outage_run["report"]
    assert report.ok, report.discrepancies
    assert report.checks > 0 and report.files_checked > 0


def test_every_node_ends_with_the_model_the_chain_recorded(outage_run):
    assert set(outage_run["checkpoints"]) == {outage_run["model"]}, outage_run
