"""Cost of a crash-proof local chain: milliseconds per transaction on plain anvil and on
the persisting proxy `swarm chain up` runs, and the size of the state file it rewrites.

Usage (from the repository root, in a network namespace of its own if ports are shared)::

    python benchmarks/chain_persistence.py --out benchmarks/results/chain_persistence.json

For each N (100 and 1000) and each chain, a fresh chain gets N sequential contract calls
(each stores a counter and emits an event, like the swarm's transactions), every one sent
with web3 and waited for until its receipt arrived, as a node does. The proxy dumps the whole
chain (every block, receipt and trace) before it answers, so its cost grows with the chain:
besides the mean, the JSON has the mean of the first and of the last 100 transactions.
A 4-node swarm makes ~12 transactions per epoch, a 16-node one ~36 (`overhead.json`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarmtoken.chain import durable, localchain  # noqa: E402
from swarmtoken.cli.demo import free_port  # noqa: E402

COUNTS = (100, 1000)
QUICK_COUNTS = (100,)
#: Runtime code: slot0 += 1, then LOG1(topic 0x11..11, data = the new count).
RUNTIME = "60005460010180600055600052" + "7f" + "11" * 32 + "60206000a1" + "00"
INIT = "60" + f"{len(RUNTIME) // 2:02x}" + "600c600039" + "60" + f"{len(RUNTIME) // 2:02x}" + "6000f3" + RUNTIME


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help=f"only N = {QUICK_COUNTS}")
    return parser.parse_args(argv)


def run(kind: str, count: int, folder: Path) -> dict[str, float]:
    """Send ``count`` contract calls to a fresh chain of ``kind`` and time each one."""
    port = free_port()
    state = folder / f"{kind}-{count}.json"
    process = durable.start(port, state) if kind == "durable" else localchain.start(port)
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 120}))
        sender = w3.eth.accounts[0]
        contract = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": sender, "data": "0x" + INIT}))
        call = {"from": sender, "to": contract["contractAddress"], "gas": 60_000}
        times = []
        for _ in range(count):
            started = time.perf_counter()
            w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(call), poll_latency=0.001)
            times.append(time.perf_counter() - started)
        assert int.from_bytes(w3.eth.get_storage_at(contract["contractAddress"], 0), "big") == count
    finally:
        localchain.stop_pid(process.pid)
        process.wait(timeout=10)
    window = min(100, count)
    return {"ms_per_tx": 1000 * statistics.mean(times), "ms_first_100": 1000 * statistics.mean(times[:window]),
            "ms_last_100": 1000 * statistics.mean(times[-window:]),
            "state_bytes": state.stat().st_size if kind == "durable" else 0}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = QUICK_COUNTS if args.quick else COUNTS
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for count in counts:
            results[str(count)] = {kind: run(kind, count, Path(folder)) for kind in ("plain", "durable")}
    table = Table(title="local chain: ms per transaction (web3 send + receipt), sequential")
    for column in ("N", "plain", "durable", "overhead", "durable first 100", "durable last 100", "state file"):
        table.add_column(column, justify="right")
    for count, row in results.items():
        plain, kept = row["plain"], row["durable"]
        table.add_row(count, f"{plain['ms_per_tx']:.2f}", f"{kept['ms_per_tx']:.2f}",
                      f"+{kept['ms_per_tx'] - plain['ms_per_tx']:.2f}", f"{kept['ms_first_100']:.2f}",
                      f"{kept['ms_last_100']:.2f}", f"{kept['state_bytes'] / 2**20:.2f} MiB")
    Console().print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
