"""What the swarm costs beyond training: per-epoch wall time split by activity.

Runs a real local swarm (anvil, contracts, one OS process per node, loopback HTTP) for
n = 4, 8, 16 nodes and reads each node's `timings.jsonl` (seconds per category and epoch,
written by the node runtime). Per epoch, each category is averaged over nodes, then over
epochs (the first epoch is warm-up and left out):

    coordination_s = chain + transfer + merge + settle

chain: transactions and event reads; transfer: downloading and checking parameter files;
merge: computing (or recomputing) the merge; settle: the settlement transaction and the
reports read for it. `train_s` and `score_s` are the learning work itself. `epoch_ms` is
the epoch's wall time as each node measures it (from the first poll that saw the epoch to
adopting its merged model), averaged over nodes and epochs (`epoch_ms_max`: the slowest);
`wait_s` is the part of it no category accounts for (polling, staggering, windows and
deadlines, and waiting for the slowest of n processes on a machine with two cores);
`transactions_per_epoch` counts the chain's transactions between settlements.

    python benchmarks/swarm_overhead.py --out benchmarks/results/overhead.json [--quick] [--sizes 4 8 16 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from swarmtoken.cli.demo import DemoOptions, LocalSwarm, free_port  # noqa: E402

CATEGORIES = ("train", "chain", "transfer", "merge", "score", "settle")
COORDINATION = ("chain", "transfer", "merge", "settle")


def run_swarm(nodes: int, epochs: int, folder: Path, seed: int) -> dict[str, float]:
    options = DemoOptions(nodes=nodes, rogue=0, epochs=epochs, seed=seed, port=free_port(), out=str(folder),
                          commit_window=2, merge_window=20, report_window=20)
    folder.mkdir(parents=True)
    with LocalSwarm(options, Console(quiet=True)) as env:
        env.launch()
        swarm = env.handles.swarm
        deadline = time.monotonic() + 300 + 30 * nodes
        while not swarm.finished():
            if time.monotonic() > deadline:
                raise RuntimeError(f"n={nodes}: the swarm did not finish; see {folder}/node-*/node.log")
            time.sleep(0.5)
        settled = swarm.events.EpochSettled.get_logs(from_block=int(env.handles.record["block"]))
        from brownie import web3

        blocks = [log.blockNumber for log in settled]
        # Transactions per epoch: every transaction in the blocks after one settlement up to
        # and including the next (automining: one block per transaction).
        txs = [sum(len(web3.eth.get_block(b)["transactions"]) for b in range(a + 1, z + 1))
               for a, z in zip(blocks[1:], blocks[2:])] or [0]
    per_epoch: dict[int, list[dict[str, float]]] = {}
    for node in range(nodes):
        path = folder / f"node-{node}" / "timings.jsonl"
        for line in path.read_text().splitlines() if path.exists() else []:
            record = json.loads(line)
            per_epoch.setdefault(record["epoch"], []).append(record)
    measured = [e for e in sorted(per_epoch) if e > 1]
    result = {
        f"{c}_s": statistics.mean(statistics.mean(r.get(c, 0.0) for r in per_epoch[e]) for e in measured)
        for c in CATEGORIES
    }
    result["coordination_s"] = sum(result[f"{c}_s"] for c in COORDINATION)
    walls = [r["wall"] for e in measured for r in per_epoch[e] if "wall" in r]
    result["epoch_ms"] = 1000 * statistics.mean(walls)
    result["epoch_ms_max"] = 1000 * max(walls)
    # What no category accounts for: polling, staggering, and the phases' windows and
    # deadlines (whatever the node spent waiting for the chain or its peers).
    result["wait_s"] = statistics.mean(
        r["wall"] - sum(r.get(c, 0.0) for c in CATEGORIES) for e in measured for r in per_epoch[e] if "wall" in r)
    result["transactions_per_epoch"] = float(statistics.mean(txs))
    result["epochs_measured"] = len(measured)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="n = 4 only, 3 epochs (for CI)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = (4,) if args.quick else tuple(args.sizes)
    epochs = 3 if args.quick else args.epochs
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            results[str(n)] = run_swarm(n, epochs, Path(tmp) / f"n{n}", args.seed)
    table = Table(title="Per-epoch wall time by activity (seconds, mean over nodes and epochs 2..), as the "
                        "nodes measure it")
    table.add_column("n")
    for column in (*CATEGORIES, "wait", "epoch (ms)", "max (ms)", "tx / epoch"):
        table.add_column(column, justify="right")
    for n, row in results.items():
        table.add_row(n, *(f"{row[f'{c}_s']:.3f}" for c in (*CATEGORIES, "wait")), f"{row['epoch_ms']:.0f}",
                      f"{row['epoch_ms_max']:.0f}", f"{row['transactions_per_epoch']:.1f}")
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
