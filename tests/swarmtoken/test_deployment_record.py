"""The deployment record remembers its chain: `write_record` / `read_record` round trip
with the endpoint, the chain id and the deployment block's hash; records written before
endpoints were recorded still read; `swarm deploy` refuses to overwrite a record without
--force; commands and nodes default to the record's endpoint (chain-free: the recorded
port is closed, so the message naming it is what is checked)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from swarmtoken.chain.connection import CHAIN_FILE, local_chain_port, resolve_endpoint
from swarmtoken.chain.deployment import (Deployment, DeploymentRecordError, DeploymentRecordExists, local_endpoint,
                                         read_record, record_endpoint, write_record)
from swarmtoken.cli.commands import main
from swarmtoken.cli.demo import free_port
from swarmtoken.config import SwarmConfig
from swarmtoken.node.checks import CheckedNode, with_recorded_endpoint
from swarmtoken.node.config import ChainSection, NodeConfig

TOKEN, SWARM = "0x" + "1" * 40, "0x" + "2" * 40
BLOCK_HASH = "0x" + "ab" * 32


@dataclass(frozen=True)
class Contract:
    address: str


def deployment() -> Deployment:
    return Deployment(token=Contract(TOKEN), swarm=Contract(SWARM), block=7, block_hash=BLOCK_HASH)


def write(path, port: int | None = 8601, **kwargs):
    endpoint = local_endpoint("development", port) if port is not None else None
    return write_record(path, network="development", chain_id=31337, deployment=deployment(), config=SwarmConfig(),
                        endpoint=endpoint, **kwargs)


def old_record(path) -> None:
    """A record as `swarm deploy` wrote it before it recorded endpoints."""
    path.write_text(json.dumps({"network": "development", "chain_id": 31337, "token": TOKEN, "swarm": SWARM,
                                "block": 7, "config": SwarmConfig().as_dict()}))


def test_round_trip_keeps_the_endpoint_chain_id_and_block_hash(tmp_path):
    path = write(tmp_path / "deployments" / "development.json")
    record = read_record(path)
    assert record["endpoint"] == {"network": "development", "port": 8601, "rpc_url": "http://127.0.0.1:8601"}
    assert (record["chain_id"], record["block"], record["block_hash"]) == (31337, 7, BLOCK_HASH)
    assert (record["token"], record["swarm"], record["network"]) == (TOKEN, SWARM, "development")
    assert record["config"] == SwarmConfig().as_dict()
    assert record_endpoint(record) == ("development", 8601)


def test_a_record_without_a_local_port_records_its_network(tmp_path):
    record = read_record(write(tmp_path / "r.json", port=None))
    assert record["endpoint"] == {"network": "development"}
    assert record_endpoint(record) == ("development", None)


def test_an_old_record_without_endpoint_or_block_hash_still_reads(tmp_path):
    old_record(tmp_path / "old.json")
    record = read_record(tmp_path / "old.json")
    assert "endpoint" not in record and "block_hash" not in record
    assert record_endpoint(record) == ("development", None)


@pytest.mark.parametrize("endpoint", [[1, 2], {"network": 3}, {"network": "development", "port": "8545"},
                                      {"network": "development", "port": 0}, {"network": "development", "port": True}])
def test_a_malformed_endpoint_is_one_line_naming_the_file(tmp_path, endpoint):
    path = tmp_path / "r.json"
    old_record(path)
    path.write_text(json.dumps({**json.loads(path.read_text()), "endpoint": endpoint}))
    with pytest.raises(DeploymentRecordError, match="r.json: its endpoint is malformed"):
        read_record(path)


def test_write_record_refuses_to_overwrite_unless_asked(tmp_path):
    path = write(tmp_path / "r.json", port=8601)
    with pytest.raises(DeploymentRecordExists) as refused:
        write(path, port=8602, overwrite=False)
    assert str(path) in str(refused.value) and "--force" in str(refused.value)
    assert read_record(path)["endpoint"]["port"] == 8601  # untouched
    write(path, port=8602, overwrite=True)
    assert read_record(path)["endpoint"]["port"] == 8602


def test_deploy_refuses_an_existing_record_in_one_line_before_touching_any_chain(tmp_path):
    path = write(tmp_path / "r.json")
    before = path.read_text()
    # the port is closed: the refusal must come before any connection attempt
    result = CliRunner().invoke(main, ["deploy", "--out", str(path), "--port", str(free_port())])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "--force" in lines[0], result.output
    assert path.read_text() == before
    forced = CliRunner().invoke(main, ["deploy", "--out", str(path), "--force", "--port", str(free_port())])
    assert forced.exit_code == 2 and "no chain is running" in forced.output  # --force got past the refusal


# ---------------------------------------------------------------------- which chain
def test_resolve_endpoint_prefers_flags_then_record_then_chain_up_then_default(tmp_path):
    record = read_record(write(tmp_path / "r.json", port=8601))
    old_record(tmp_path / "old.json")
    old = read_record(tmp_path / "old.json")
    folder = tmp_path / "work"
    folder.mkdir()
    assert resolve_endpoint(None, None, record, folder=folder)[:2] == ("development", 8601)
    assert resolve_endpoint(None, 8700, record, folder=folder)[:2] == ("development", 8700)
    assert resolve_endpoint("development", None, record, folder=folder)[:2] == ("development", 8601)
    assert resolve_endpoint(None, None, old, folder=folder)[:2] == ("development", None)
    assert resolve_endpoint(None, None, None, folder=folder)[:2] == ("development", None)
    (folder / CHAIN_FILE).parent.mkdir()
    (folder / CHAIN_FILE).write_text(json.dumps({"pid": 1, "port": 8650, "state": "s.json"}))
    assert local_chain_port(folder) == 8650
    assert resolve_endpoint(None, None, None, folder=folder)[:2] == ("development", 8650)
    assert resolve_endpoint(None, None, old, folder=folder)[:2] == ("development", 8650)
    assert resolve_endpoint(None, None, record, folder=folder)[:2] == ("development", 8601)  # the record wins
    assert resolve_endpoint(None, 8700, None, folder=folder)[:2] == ("development", 8700)  # the flag wins
    (folder / CHAIN_FILE).write_text("{oops")
    assert local_chain_port(folder) is None


def test_commands_connect_to_the_recorded_port_by_default(tmp_path):
    port = free_port()
    path = write(tmp_path / "r.json", port=port)
    result = CliRunner().invoke(main, ["status", "--deployment", str(path)])
    assert result.exit_code == 2, result.output
    assert f"no chain is running on 127.0.0.1:{port}" in result.output
    assert f"swarm chain up --port {port}" in result.output and "Traceback" not in result.output
    other = free_port()
    result = CliRunner().invoke(main, ["status", "--deployment", str(path), "--port", str(other)])
    assert result.exit_code == 2 and f"no chain is running on 127.0.0.1:{other}" in result.output


def test_deploy_defaults_to_the_chain_started_from_this_folder(tmp_path, monkeypatch):
    port = free_port()
    (tmp_path / CHAIN_FILE).parent.mkdir()
    (tmp_path / CHAIN_FILE).write_text(json.dumps({"pid": 1, "port": port, "state": "s.json"}))
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "swarm.toml"
    config.write_text("")
    result = CliRunner().invoke(main, ["deploy", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"no chain is running on 127.0.0.1:{port}" in result.output and "chain.json" in result.output


# ---------------------------------------------------------------------- the node
def checked(record: dict, **chain) -> CheckedNode:
    return CheckedNode(config=NodeConfig(chain=ChainSection(**chain)), local=SimpleNamespace(), record=record)


def test_a_node_without_rpc_port_uses_the_records(tmp_path):
    record = read_record(write(tmp_path / "r.json", port=8601))
    assert with_recorded_endpoint(checked(record), set()).config.chain.rpc_port == 8601
    kept = with_recorded_endpoint(checked(record, rpc_port=9000), {"rpc_port"})
    assert kept.config.chain.rpc_port == 9000  # the config's own port wins
    old_record(tmp_path / "old.json")
    unchanged = checked(read_record(tmp_path / "old.json"))
    assert with_recorded_endpoint(unchanged, set()) is unchanged


def test_train_without_rpc_port_reaches_the_records_port(tmp_path):
    from eth_account import Account

    port = free_port()
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps({**json.loads(write(path, port=port).read_text()),
                                "config": SwarmConfig(n_features=3, n_classes=3).as_dict()}))
    key = Account.create()
    (tmp_path / "keystore.json").write_text(json.dumps(Account.encrypt(key.key, "pw", kdf="pbkdf2", iterations=2)))
    (tmp_path / "data.csv").write_text("a,b,c,label\n" + "".join(f"{i},{i % 7},{i % 5},{i % 3}\n" for i in range(40)))
    (tmp_path / "node.toml").write_text('[chain]\ndeployment = "deployment.json"\nkeystore = "keystore.json"\n'
                                        '[store]\nport = 0\n[data]\nfile = "data.csv"\n')
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "node.toml")])
    assert result.exit_code == 2, result.output
    assert f"no chain is running on 127.0.0.1:{port}" in result.output, result.output
