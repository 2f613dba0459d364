"""The chain `swarm chain up` runs survives a hard crash with everything it answered.

Clients send ETH transfers (unlocked, raw-signed and batched, from several threads at once),
deploy a contract and call it so it writes storage and emits events; right after the last
receipt arrived, the supervisor and anvil are SIGKILLed together. Restarted from the state
file, the chain must have the same block number, balances, storage, receipts and logs. A
control run does the same on plain anvil with ``--state`` and must lose the transactions, so
the kill here is a real crash and these tests can fail.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from web3 import Web3

from swarmtoken.chain import durable, localchain
from swarmtoken.chain.localchain import LocalChainError
from swarmtoken.cli.demo import free_port

#: anvil's first default account (its well-known test mnemonic), for raw-signed transactions.
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#: Runtime code: store slot0 + 1, then emit LOG1(topic 0x11..11, data = new count).
RUNTIME = "60005460010180600055600052" + "7f" + "11" * 32 + "60206000a1" + "00"
#: Contract calls `drive` makes: two in each of four threads, one raw-signed, the last one.
CALLS = 4 * 2 + 1 + 1
INIT = "60" + f"{len(RUNTIME) // 2:02x}" + "600c600039" + "60" + f"{len(RUNTIME) // 2:02x}" + "6000f3" + RUNTIME


def connect(port: int) -> Web3:
    return Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 60}))


def kill_group(process) -> None:
    """SIGKILL the whole process group (supervisor, npm launcher, anvil) and wait until it is gone."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError("the chain's process group outlived SIGKILL")


def drive(w3: Web3, port: int) -> dict:
    """Send every kind of transaction and return what the clients were told."""
    accounts = w3.eth.accounts
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": accounts[0], "data": "0x" + INIT}))
    contract = receipt["contractAddress"]
    hashes = [receipt["transactionHash"]]

    def sender(index: int) -> None:
        client = connect(port)
        for i in range(6):
            tx = {"from": accounts[index], "to": accounts[(index + i + 1) % 10], "value": 10**15 * (i + 1)}
            if i % 3 == 2:
                tx = {"from": accounts[index], "to": contract}
            sent = client.eth.send_transaction(tx)
            client.eth.wait_for_transaction_receipt(sent)
            hashes.append(sent)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(hashes) == 1 + 4 * 6
    account0 = w3.eth.account.from_key(KEY0)
    nonce = w3.eth.get_transaction_count(account0.address)
    for i in range(3):
        tx = {"to": contract if i == 1 else accounts[7], "value": 0 if i == 1 else 12345, "gas": 100_000,
              "gasPrice": w3.eth.gas_price, "nonce": nonce + i, "chainId": w3.eth.chain_id}
        hashes.append(w3.eth.send_raw_transaction(account0.sign_transaction(tx).raw_transaction))
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
             {"jsonrpc": "2.0", "id": 2, "method": "eth_sendTransaction",
              "params": [{"from": accounts[8], "to": accounts[9], "value": hex(777)}]}]
    replies = {r["id"]: r for r in requests.post(f"http://127.0.0.1:{port}", json=batch, timeout=60).json()}
    hashes.append(bytes.fromhex(replies[2]["result"][2:]))
    receipts = [dict(w3.eth.get_transaction_receipt(h)) for h in hashes]
    # Last: one contract call and its receipt, so the caller kills the chain right after it.
    hashes.append(w3.eth.send_transaction({"from": accounts[5], "to": contract}))
    receipts.append(dict(w3.eth.get_transaction_receipt(hashes[-1])))
    return {"contract": contract, "hashes": hashes, "receipts": receipts}


def snapshot(w3: Web3, contract: str, hashes: list) -> dict:
    block = w3.eth.block_number
    return {
        "block": block,
        "head": w3.eth.get_block(block)["hash"],
        "balances": [w3.eth.get_balance(a) for a in w3.eth.accounts],
        "nonces": [w3.eth.get_transaction_count(a) for a in w3.eth.accounts],
        "storage": w3.eth.get_storage_at(contract, 0),
        "code": w3.eth.get_code(contract),
        "receipts": [dict(w3.eth.get_transaction_receipt(h)) for h in hashes],
        "logs": [dict(log) for log in w3.eth.get_logs({"fromBlock": 0, "toBlock": block, "address": contract})],
    }


@pytest.fixture
def chain_dir(tmp_path: Path) -> Path:
    return tmp_path


def test_a_hard_crash_loses_nothing_any_client_was_told(chain_dir):
    state = chain_dir / "chain-state.json"
    port = free_port()
    process = durable.start(port, state, log_file=chain_dir / "chain.log")
    try:
        w3 = connect(port)
        told = drive(w3, port)
        kill_group(process)  # immediately after the last receipt
    finally:
        localchain.stop_pid(process.pid)
    assert all(r["status"] == 1 for r in told["receipts"]), told["receipts"]
    port = free_port()
    process = durable.start(port, state, log_file=chain_dir / "chain.log")
    try:
        w3 = connect(port)
        after = snapshot(w3, told["contract"], told["hashes"])
        assert after["receipts"] == told["receipts"]
        assert after["block"] == max(r["blockNumber"] for r in told["receipts"])
        assert int.from_bytes(after["storage"], "big") == CALLS  # every contract call counted
        assert len(after["logs"]) == CALLS
        assert {log["transactionHash"] for log in after["logs"]} <= set(told["hashes"])
        # The chain goes on from there: same balances a new client reads, nonces continue.
        sent = w3.eth.send_transaction({"from": w3.eth.accounts[1], "to": w3.eth.accounts[2], "value": 1})
        assert w3.eth.wait_for_transaction_receipt(sent)["blockNumber"] == after["block"] + 1
        expected = snapshot(w3, told["contract"], told["hashes"] + [sent])
        kill_group(process)
        process = durable.start(port, state, log_file=chain_dir / "chain.log")
        assert snapshot(connect(port), told["contract"], told["hashes"] + [sent]) == expected
    finally:
        localchain.stop_pid(process.pid)


def test_plain_anvil_with_a_state_file_loses_them_control(chain_dir):
    """The same crash on the non-durable path: anvil writes ``--state`` only on a graceful exit."""
    state = chain_dir / "plain-state.json"
    port = free_port()
    process = localchain.start(port, state_file=state)
    try:
        told = drive(connect(port), port)
        kill_group(process)
    finally:
        localchain.stop_pid(process.pid)
    port = free_port()
    process = localchain.start(port, state_file=state)
    try:
        w3 = connect(port)
        assert w3.eth.block_number < max(r["blockNumber"] for r in told["receipts"])
    finally:
        localchain.stop_pid(process.pid)
        process.wait(timeout=10)
    assert state.exists()  # written by the graceful stop just above


def test_the_supervisor_exits_non_zero_when_anvil_dies_and_a_restart_resumes(chain_dir):
    state = chain_dir / "chain-state.json"
    port = free_port()
    process = durable.start(port, state, log_file=chain_dir / "chain.log")
    try:
        w3 = connect(port)
        sent = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 5})
        w3.eth.wait_for_transaction_receipt(sent)
        group = [int(p) for p in os.listdir("/proc") if p.isdigit() and p != str(process.pid)
                 and _pgid(int(p)) == process.pid]
        assert group, "anvil runs in the supervisor's process group"
        for pid in group:
            os.kill(pid, signal.SIGKILL)
        assert process.wait(timeout=15) == 1
        assert "anvil exited" in (chain_dir / "chain.log").read_text()
    finally:
        localchain.stop_pid(process.pid)
    process = durable.start(port, state, log_file=chain_dir / "chain.log")
    try:
        assert connect(port).eth.get_transaction_receipt(sent)["blockNumber"] == 1
    finally:
        localchain.stop_pid(process.pid)


def test_a_failed_state_write_stops_the_chain_instead_of_serving_what_the_file_lacks(chain_dir):
    state = chain_dir / "chain-state.json"
    port = free_port()
    process = durable.start(port, state, log_file=chain_dir / "chain.log")
    try:
        w3 = connect(port)
        kept = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 5})
        w3.eth.wait_for_transaction_receipt(kept)
        saved = state.read_bytes()
        state.unlink()
        (state / "blocker").mkdir(parents=True)  # os.replace onto a non-empty folder fails
        with pytest.raises(Exception):
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 6})
        assert process.wait(timeout=10) != 0
        assert "could not write" in (chain_dir / "chain.log").read_text()
    finally:
        localchain.stop_pid(process.pid)
    assert not localchain.group_running(process.pid)
    (state / "blocker").rmdir()
    state.rmdir()
    state.write_bytes(saved)
    process = durable.start(port, state, log_file=chain_dir / "chain.log")
    try:
        w3 = connect(port)
        assert w3.eth.block_number == 1 and w3.eth.get_transaction_receipt(kept)["blockNumber"] == 1
    finally:
        localchain.stop_pid(process.pid)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_user_errors_are_one_line(chain_dir):
    corrupt = chain_dir / "corrupt.json"
    corrupt.write_text("{not json")
    with pytest.raises(LocalChainError, match="not a readable chain state.*move it away"):
        durable.start(free_port(), corrupt)
    other = chain_dir / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(LocalChainError, match="not a chain state"):
        durable.start(free_port(), other)
    port = free_port()
    process = durable.start(port, chain_dir / "s.json")
    try:
        with pytest.raises(LocalChainError, match="already listens"):
            durable.start(port, chain_dir / "t.json")
    finally:
        localchain.stop_pid(process.pid)


def test_swarm_chain_down_and_up_keep_the_state(chain_dir, monkeypatch):
    from swarmtoken.cli.commands import main

    monkeypatch.chdir(chain_dir)
    port = free_port()
    runner = CliRunner()
    up = runner.invoke(main, ["chain", "up", "--port", str(port)])
    assert up.exit_code == 0, up.output
    try:
        w3 = connect(port)
        sent = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 5})
        w3.eth.wait_for_transaction_receipt(sent)
        down = runner.invoke(main, ["chain", "down"])
        assert down.exit_code == 0, down.output
        assert not localchain.is_listening(port)
        up = runner.invoke(main, ["chain", "up", "--port", str(port)])
        assert up.exit_code == 0, up.output
        assert connect(port).eth.get_transaction_receipt(sent)["blockNumber"] == 1
    finally:
        runner.invoke(main, ["chain", "down"])
    Path(".swarm/chain-state.json").write_text("garbage")
    up = runner.invoke(main, ["chain", "up", "--port", str(port)])
    assert up.exit_code != 0 and "Traceback" not in up.output and len(up.output.strip().splitlines()) == 1, up.output
