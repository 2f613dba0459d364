"""The README's walkthrough, command by command, with its 3 nodes on the swarm config it
names (`config/swarm.toml`: min_peers 3, suspend_after 3, 20 epochs): the swarm runs all
its epochs to the end with no intervention (no honest node suspended into a stall), the
nodes claim at the finish, and the audit passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarmtoken.cli.demo import free_port

ROOT = Path(__file__).resolve().parents[2]
SWARM = str(Path(sys.executable).with_name("swarm"))
NODES = 3
TIMEOUT_S = 900


def swarm(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([SWARM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"swarm {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def node_toml(port: int, shard: int) -> str:
    return f"""[chain]
rpc_port = {port}
deployment = "../deployments/development.json"
keystore = "../keys/node-{shard}.json"

[data]
shard = {shard}
shards = {NODES}
"""


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    work = tmp_path_factory.mktemp("walkthrough")
    port = free_port()
    env = {**os.environ, "SWARM_KEYSTORE_PASSWORD": "walkthrough"}
    swarm("chain", "up", "--port", str(port), cwd=work, env=env)
    processes: list[subprocess.Popen] = []
    try:
        swarm("deploy", "--config", str(ROOT / "config" / "swarm.toml"), "--port", str(port), cwd=work, env=env)
        for shard in range(NODES):
            address = swarm("account", "new", f"keys/node-{shard}.json", cwd=work, env=env).split()[-1]
            swarm("authorize", address, "--samples", "1200", "--port", str(port), cwd=work, env=env)
            folder = work / f"node-{shard}"
            folder.mkdir()
            (folder / "node.toml").write_text(node_toml(port, shard))
        started = time.monotonic()
        for shard in range(NODES):
            folder = work / f"node-{shard}"
            with (folder / "node.log").open("w") as log:
                processes.append(subprocess.Popen([SWARM, "train", "--config", "node.toml"], cwd=folder, env=env,
                                                  stdout=log, stderr=subprocess.STDOUT))
        for process in processes:
            process.wait(timeout=TIMEOUT_S - (time.monotonic() - started))
        ledger = json.loads(swarm("ledger", "--json", "--port", str(port), cwd=work, env=env))
        audit = subprocess.run([SWARM, "audit", "--port", str(port)], cwd=work, env=env, capture_output=True, text=True)
        yield {"work": work, "codes": [p.returncode for p in processes], "ledger": ledger, "audit": audit}
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        subprocess.run([SWARM, "chain", "down"], cwd=work, env=env, capture_output=True)


def test_the_walkthrough_swarm_runs_its_twenty_epochs_to_the_end(walkthrough):
    logs = {i: (walkthrough["work"] / f"node-{i}" / "node.log").read_text() for i in range(NODES)}
    assert walkthrough["codes"] == [0] * NODES, logs
    assert all("swarm finished" in log and "claimed" in log for log in logs.values()), logs


def test_every_epoch_settled_with_all_three_nodes_none_suspended(walkthrough):
    per_epoch: dict[int, int] = {}
    for row in walkthrough["ledger"]["epochs"]:
        per_epoch[row["epoch"]] = per_epoch.get(row["epoch"], 0) + 1
    assert per_epoch == {epoch: NODES for epoch in range(1, 21)}
    assert not [change for change in walkthrough["ledger"]["membership"] if change["event"] == "suspended"]
    logs = "".join((walkthrough["work"] / f"node-{i}" / "node.log").read_text() for i in range(NODES))
    assert "status suspended" not in logs


def test_the_audit_passes(walkthrough):
    assert walkthrough["audit"].returncode == 0, walkthrough["audit"].stdout + walkthrough["audit"].stderr
