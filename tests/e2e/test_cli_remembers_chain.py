"""The CLI remembers its chain, on real chains driven through the real `swarm` command:
two local chains run side by side (`swarm chain up --port A` in folder X, a second anvil on
port B holding a swarm of its own, at the same addresses, as every fresh anvil gives them).
`swarm deploy` in X with no port flag deploys to A and records it; `swarm status` and
`swarm authorize` in X then reach A with no flags; `--port B` is refused in one line
(same addresses, code there too, but another deployment block); a restart of X's chain
keeps the record valid; a second `swarm deploy` is refused without --force and works with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swarmtoken.cli.demo import free_port

ROOT = Path(__file__).resolve().parents[2]
SWARM = str(Path(sys.executable).with_name("swarm"))
CONFIG = str(ROOT / "config" / "swarm.toml")
RECORD = Path("deployments") / "development.json"
ADDRESS_X, ADDRESS_Y = "0x" + "a1" * 20, "0x" + "b2" * 20


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([SWARM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def ok(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = run(*args, cwd=cwd, env=env)
    assert done.returncode == 0, f"swarm {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def refused_in_one_line(done: subprocess.CompletedProcess) -> str:
    """The single error line of a command refused as a user error (exit 2, no traceback)."""
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    print(lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    from swarmtoken.chain.localchain import start, stop_pid

    x, y = tmp_path_factory.mktemp("x"), tmp_path_factory.mktemp("y")
    port_a = free_port()
    port_b = free_port()
    while port_b == port_a:
        port_b = free_port()
    env = {**os.environ, "SWARM_KEYSTORE_PASSWORD": "remember", "COLUMNS": "200"}
    other = start(port_b, log_file=y / "anvil.log")
    try:
        ok("chain", "up", "--port", str(port_a), cwd=x, env=env)
        try:
            # B holds a swarm of its own, deployed first, from another folder
            ok("deploy", "--config", CONFIG, "--port", str(port_b), cwd=y, env=env)
            ok("authorize", ADDRESS_Y, "--samples", "4321", cwd=y, env=env)
            deployed = ok("deploy", "--config", CONFIG, cwd=x, env=env)
            yield {"x": x, "y": y, "a": port_a, "b": port_b, "env": env, "deployed": deployed}
        finally:
            run("chain", "down", cwd=x, env=env)
    finally:
        stop_pid(other.pid)


def test_deploy_without_port_goes_to_the_chain_started_here_and_records_it(chains):
    record = json.loads((chains["x"] / RECORD).read_text())
    port = chains["a"]
    assert record["endpoint"] == {"network": "development", "port": port, "rpc_url": f"http://127.0.0.1:{port}"}
    assert record["chain_id"] == 31337 and record["block_hash"].startswith("0x") and len(record["block_hash"]) == 66
    assert f"http://127.0.0.1:{port}" in chains["deployed"]
    other = json.loads((chains["y"] / RECORD).read_text())
    assert other["endpoint"]["port"] == chains["b"]
    # a fresh anvil deploys to the same addresses: only the deployment block tells them apart
    assert (other["swarm"], other["token"]) == (record["swarm"], record["token"])
    assert other["block_hash"] != record["block_hash"]


def test_commands_without_flags_reach_the_records_chain(chains):
    x, env = chains["x"], chains["env"]
    ok("authorize", ADDRESS_X, "--samples", "1234", cwd=x, env=env)
    shown = ok("status", cwd=x, env=env)
    assert "allowance 1234 samples" in shown and "4321" not in shown, shown
    other = ok("status", cwd=chains["y"], env=env)
    assert "allowance 4321 samples" in other and "1234" not in other, other


def test_another_chain_with_the_same_addresses_is_refused_in_one_line(chains):
    line = refused_in_one_line(run("status", "--port", str(chains["b"]), cwd=chains["x"], env=chains["env"]))
    assert f"127.0.0.1:{chains['b']}" in line and "another chain" in line, line
    assert f"127.0.0.1:{chains['a']}" in line and "swarm deploy --force" in line, line


def test_a_chain_without_the_contract_is_refused_in_one_line(chains):
    empty = free_port()
    while empty in (chains["a"], chains["b"]):
        empty = free_port()
    from swarmtoken.chain.localchain import start, stop_pid

    process = start(empty, log_file=chains["y"] / "empty.log")
    try:
        line = refused_in_one_line(run("status", "--port", str(empty), cwd=chains["x"], env=chains["env"]))
    finally:
        stop_pid(process.pid)
    assert f"127.0.0.1:{empty}" in line and "no contract at" in line, line


def test_the_record_stays_valid_across_a_restart_of_the_chain(chains):
    x, env, port = chains["x"], chains["env"], chains["a"]
    ok("chain", "down", cwd=x, env=env)
    line = refused_in_one_line(run("status", cwd=x, env=env))
    assert f"no chain is running on 127.0.0.1:{port}" in line and f"swarm chain up --port {port}" in line, line
    ok("chain", "up", "--port", str(port), cwd=x, env=env)
    assert "allowance 1234 samples" in ok("status", cwd=x, env=env)


def test_a_second_deploy_is_refused_without_force_and_works_with_it(chains):
    x, env = chains["x"], chains["env"]
    before = (x / RECORD).read_text()
    line = refused_in_one_line(run("deploy", "--config", CONFIG, cwd=x, env=env))
    assert str(RECORD) in line and "--force" in line, line
    assert (x / RECORD).read_text() == before
    ok("deploy", "--config", CONFIG, "--force", cwd=x, env=env)
    old, new = json.loads(before), json.loads((x / RECORD).read_text())
    assert new["swarm"] != old["swarm"] and new["endpoint"] == old["endpoint"]
    shown = ok("status", cwd=x, env=env)
    assert new["swarm"] in "".join(shown.split()) and "1234" not in shown, shown  # the new swarm, with no members yet
