"""The README's walkthrough, command by command, with its 3 nodes (`swarm init`, no
hand-written file) on the swarm config it names (`config/swarm.toml`: min_peers 3,
suspend_after 3, 20 epochs): the swarm runs all its epochs to the end with no
intervention (no honest node suspended into a stall), the nodes claim at the finish, and
the audit passes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarmtoken.cli.demo import free_port

ROOT = Path(__file__).resolve().parents[2]
SWARM = str(Path(sys.executable).with_name("swarm"))
NODES = 3
NAMES = ("node-a", "node-b", "node-c")
TIMEOUT_S = 900


def swarm(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([SWARM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"swarm {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


NEXT = re.compile(r"swarm authorize (0x[0-9a-fA-F]{40}) --samples (\d+)`, then start the node with "
                  r"`swarm train --config (\S+)`")


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    """The README's step 2 literally, from one working folder, for nodes a, b and c: no
    file written by hand and no flag the README does not show (the chain's port is the one
    `swarm chain up --port` the README mentions; every later command finds it by itself)."""
    work = tmp_path_factory.mktemp("walkthrough")
    port = free_port()
    env = {**os.environ, "SWARM_KEYSTORE_PASSWORD": "walkthrough"}
    swarm("chain", "up", "--port", str(port), cwd=work, env=env)
    processes: list[subprocess.Popen] = []
    try:
        swarm("deploy", "--config", str(ROOT / "config" / "swarm.toml"), cwd=work, env=env)
        commands = []
        for shard, name in enumerate(NAMES):
            printed = swarm("init", name, "--shard", str(shard), "--shards", str(NODES), cwd=work, env=env)
            address, samples, config = NEXT.search(printed).groups()
            swarm("authorize", address, "--samples", samples, cwd=work, env=env)
            commands.append(config)
        started = time.monotonic()
        for name, config in zip(NAMES, commands):
            with (work / f"{name}.log").open("w") as log:
                processes.append(subprocess.Popen([SWARM, "train", "--config", config], cwd=work, env=env,
                                                  stdout=log, stderr=subprocess.STDOUT))
        for process in processes:
            process.wait(timeout=TIMEOUT_S - (time.monotonic() - started))
        ledger = json.loads(swarm("ledger", "--json", cwd=work, env=env))
        audit = subprocess.run([SWARM, "audit"], cwd=work, env=env, capture_output=True, text=True)
        claim = subprocess.run([SWARM, "claim", "--keystore", f"{NAMES[0]}/keystore.json"], cwd=work, env=env,
                               capture_output=True, text=True)
        yield {"work": work, "codes": [p.returncode for p in processes], "ledger": ledger, "audit": audit,
               "claim": claim, "configs": [(work / c).read_text() for c in commands]}
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        subprocess.run([SWARM, "chain", "down"], cwd=work, env=env, capture_output=True)


def test_the_walkthrough_swarm_runs_its_twenty_epochs_to_the_end(walkthrough):
    logs = {name: (walkthrough["work"] / f"{name}.log").read_text() for name in NAMES}
    assert walkthrough["codes"] == [0] * NODES, logs
    assert all("swarm finished" in log and "claimed" in log for log in logs.values()), logs


def test_every_epoch_settled_with_all_three_nodes_none_suspended(walkthrough):
    per_epoch: dict[int, int] = {}
    for row in walkthrough["ledger"]["epochs"]:
        per_epoch[row["epoch"]] = per_epoch.get(row["epoch"], 0) + 1
    assert per_epoch == {epoch: NODES for epoch in range(1, 21)}
    assert not [change for change in walkthrough["ledger"]["membership"] if change["event"] == "suspended"]
    logs = "".join((walkthrough["work"] / f"{name}.log").read_text() for name in NAMES)
    assert "status suspended" not in logs


def test_the_audit_passes(walkthrough):
    assert walkthrough["audit"].returncode == 0, walkthrough["audit"].stdout + walkthrough["audit"].stderr


def test_the_written_configs_document_every_key_and_set_only_what_init_was_told(walkthrough):
    for config in walkthrough["configs"]:
        assert "# poll_interval = 0.2" in config and "# claim_at_finish = true" in config
        assert "rpc_port" not in config.replace("# rpc_port", "")  # the record names the chain


def test_claiming_after_the_finish_says_the_node_already_claimed(walkthrough):
    claim = walkthrough["claim"]
    assert "Traceback" not in claim.stdout + claim.stderr
    assert "nothing left to claim: it already claimed" in claim.stderr and "claim_at_finish" in claim.stderr, claim.stderr
