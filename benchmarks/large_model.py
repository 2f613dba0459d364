"""A realistic model size: a 4-node swarm training a ResNet-18 class model (11.2 M parameters).

Runs a real local swarm (anvil, the contracts, one OS process per node, the nodes' stores
over loopback HTTP: `swarmtoken.cli.demo.LocalSwarm`) with ``[model] name = "resnet18"``
(`trainer.models.resnet18`: ResNet-18 with group norm, CIFAR stem) on ``[data] dataset =
"synthetic_images"`` (640 seeded 3x32x32 images of 10 classes, flat 3072-feature rows),
dealt near-IID (Dirichlet alpha 100: ~102 training and ~26 validation images per node), the
default `TrainConfig` (SGD, 2 local epochs of batch 32) and the swarm's default merge rule
and scorer, for 3 epochs. Run it in a network namespace of its own so its ports are private:

    ip netns add lm; ip netns exec lm ip link set lo up
    ip netns exec lm python benchmarks/large_model.py --out benchmarks/results/large_model.json
    ip netns del lm

All nodes share the loopback of one namespace (one namespace per node is what
``tests/e2e/multihost.py`` does for mlp swarms; its harness cannot set a model).

Per epoch and node (then the mean and max over nodes) it reports, from each node's
``timings.jsonl`` (written by the node runtime): ``train`` (local training), ``transfer``
(downloading, hash-checking and storing parameter files), ``merge`` (recomputing the
merge), ``score`` (the validation metric plus the contribution scores of every participant
on the node's validation rows; ``estimator`` is the scorer "auto" chose: exact Shapley at
n = 4, 16 coalitions), ``chain`` (transactions and event reads) and ``settle``; plus the
bytes each node downloaded (counted in every node process: a ``sitecustomize`` hook on the
store client's ``urllib.request.urlopen`` logs each completed download with its time,
attributed to the epoch whose settlement block came next) and each node process's peak
resident memory (``VmHWM`` in ``/proc/<pid>/status``, read after the swarm finished while
the nodes still serve). The model is not set through `DemoOptions` (it has no model
option): this script replaces the ``ModelSection`` and ``SwarmConfig`` that
`swarmtoken.cli.demo` builds nodes and the deployment with by ones naming ``resnet18``.

Measured (benchmarks/results/large_model.json; 2 shared cores, the 4 nodes and anvil on
them, so every number is about 2-3x a lone process's; one thread per node): per epoch,
mean over nodes

    epoch  train s  transfer s  bytes/node  merge s  score s (estimator)          chain s
    1      20.86    2.64        134.1 MB    21.18    15.16 (exact Shapley, 16)    0.20
    2      18.71    6.29        134.1 MB    15.18    15.46 (exact Shapley, 16)    0.14
    3      19.13    4.02        134.1 MB    10.80    11.87 (exact Shapley, 16)    0.11

score < train on every node in every epoch; peak resident memory per node 2.20-2.32 GiB;
bytes/node: 3 parameter files of 44.7 MB (the other participants' updates) per epoch.
What keeps scoring below training (`trainer.scoring`): from 1 M parameters the coalitions'
models run one at a time (vmap over convolutions is a grouped convolution: 12.3 s against
1.8 s for 16 coalitions on a lone core) in chunks of at most 256 MB of merged parameters,
mixed with one (B, n) @ (n, P) product per tensor; the fltrust_median share is streamed
over 1 M-coordinate blocks (no flattened float64 copies of all deltas); the full-epoch
median uses a min/max network; the rule's preconditions are checked on one coordinate.
What remains is intrinsic: 16 forward passes over the ~26 validation rows against 2 local
epochs of forward and backward passes over the ~102 training rows (about 0.6 of training).
The merge (`trainer.merges.fltrust_median` run by the node) is not covered by this work.

    python benchmarks/large_model.py --out benchmarks/results/large_model.json [--epochs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

CATEGORIES = ("train", "transfer", "merge", "score", "chain", "settle")
MODEL, DATASET, ALPHA = "resnet18", "synthetic_images", 100.0

#: Counts what a node process downloads through the store client (which reads with read1).
SITECUSTOMIZE = '''\
import json, os, time, urllib.request

_LOG = os.environ.get("LARGE_MODEL_TRANSFER_LOG")
if _LOG:
    _urlopen = urllib.request.urlopen

    def _counted(*args, **kwargs):
        response = _urlopen(*args, **kwargs)
        url = getattr(args[0], "full_url", args[0]) if args else kwargs.get("url")
        read1, received = response.read1, [0]

        def read1_counting(*a):
            chunk = read1(*a)
            received[0] += len(chunk)
            if not chunk:
                with open(f"{_LOG}-{os.getpid()}.jsonl", "a") as log:
                    log.write(json.dumps({"t": time.time(), "url": url, "bytes": received[0]}) + "\\n")
            return chunk

        response.read1 = read1_counting
        return response

    urllib.request.urlopen = _counted
'''


def model_facts() -> dict[str, Any]:
    """Parameter count and the size of one parameter file (what one transfer moves)."""
    from safetensors.torch import save

    from trainer.data import load_dataset
    from trainer.models import build_model

    data = load_dataset(DATASET)
    model = build_model(MODEL, data.n_features, data.n_classes, 0)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    return {"model": MODEL, "parameters": sum(p.numel() for p in model.parameters()),
            "file_bytes": len(save(state)), "dataset": DATASET, "image": "3x32x32",
            "images": len(data), "n_features": data.n_features, "n_classes": data.n_classes}


def peak_memory_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_swarm(nodes: int, epochs: int, folder: Path, seed: int, timeout_s: float) -> dict[str, Any]:
    import swarmtoken.cli.demo as demo
    from swarmtoken.config import SwarmConfig
    from swarmtoken.node.config import ModelSection

    # The demo builds every node's config with ModelSection() and the deployment record with
    # SwarmConfig(...): name the model there (the record's model is what nodes check theirs against).
    demo.ModelSection = functools.partial(ModelSection, name=MODEL)
    demo.SwarmConfig = functools.partial(SwarmConfig, model=MODEL)
    probe = folder / "probe"
    probe.mkdir(parents=True)
    (probe / "sitecustomize.py").write_text(SITECUSTOMIZE)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(probe), os.environ.get("PYTHONPATH")]))
    os.environ["LARGE_MODEL_TRANSFER_LOG"] = str(folder / "transfer")
    options = demo.DemoOptions(nodes=nodes, rogue=0, epochs=epochs, seed=seed, port=demo.free_port(),
                               out=str(folder / "swarm"), dataset=DATASET, alpha=ALPHA,
                               commit_window=2, merge_window=120, report_window=120)
    Path(options.out).mkdir(parents=True)
    started = time.monotonic()
    with demo.LocalSwarm(options, Console(quiet=True)) as env:
        env.launch()
        swarm = env.handles.swarm
        deadline = time.monotonic() + timeout_s
        while not swarm.finished():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the swarm did not finish in {timeout_s:.0f} s; see {options.out}/node-*/node.log")
            if not any(node.alive() for node in env.nodes):
                raise RuntimeError(f"every node exited; see {options.out}/node-*/node.log")
            time.sleep(1.0)
        wall = time.monotonic() - started
        timing_files = [Path(options.out) / f"node-{n.index}" / "timings.jsonl" for n in env.nodes]
        settle_by = time.monotonic() + 60
        while time.monotonic() < settle_by and not all(
                p.exists() and len(p.read_text().splitlines()) >= epochs for p in timing_files):
            time.sleep(1.0)
        pids = {n.index: n.process.pid for n in env.nodes}
        peaks = {i: peak_memory_kib(pid) for i, pid in pids.items()}
        from brownie import web3

        settled = swarm.events.EpochSettled.get_logs(from_block=int(env.handles.record["block"]))
        settle_time = {int(log.args.epoch): int(web3.eth.get_block(log.blockNumber)["timestamp"]) for log in settled}
    downloads: dict[int, list[dict[str, Any]]] = {i: [] for i in pids}
    by_pid = {pid: i for i, pid in pids.items()}
    for path in folder.glob("transfer-*.jsonl"):
        pid = int(path.stem.split("-")[1])
        if pid in by_pid:
            downloads[by_pid[pid]] = [json.loads(line) for line in path.read_text().splitlines()]
    return {"timings": {i: [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []
                        for i, p in enumerate(timing_files)},
            "peaks_kib": peaks, "downloads": downloads, "settle_time": settle_time, "wall_s": wall,
            "estimator": estimator_used(options.scorer, nodes)}


def estimator_used(scorer: str, n: int) -> str:
    """The estimator ``scorer`` runs for n participants ("auto": exact Shapley up to
    `trainer.scoring.estimators.AUTO_EXACT_MAX_N`, else the recommended sampled one)."""
    from trainer.scoring.estimators import AUTO_EXACT_MAX_N, RECOMMENDED

    if scorer != "auto":
        return scorer
    return f"exact_shapley ({2 ** n} coalitions)" if n <= AUTO_EXACT_MAX_N else RECOMMENDED


def epoch_of(t: float, settle_time: dict[int, int]) -> int | None:
    """The first epoch whose settlement block is at or after ``t`` (whole seconds)."""
    for epoch in sorted(settle_time):
        if t <= settle_time[epoch] + 1:
            return epoch
    return None


def summarise(raw: dict[str, Any], epochs: int, facts: dict[str, Any]) -> dict[str, Any]:
    per_epoch = []
    for epoch in range(1, epochs + 1):
        rows = {i: next((r for r in records if r.get("epoch") == epoch), None) for i, records in raw["timings"].items()}
        rows = {i: r for i, r in rows.items() if r is not None}
        if not rows:
            continue
        entry: dict[str, Any] = {"epoch": epoch, "nodes": len(rows)}
        for c in CATEGORIES:
            values = [r.get(c, 0.0) for r in rows.values()]
            entry[f"{c}_s"] = round(statistics.mean(values), 3)
            entry[f"{c}_s_max"] = round(max(values), 3)
        walls = [r["wall"] for r in rows.values() if "wall" in r]
        entry["wall_s"] = round(statistics.mean(walls), 3) if walls else None
        moved = {i: sum(d["bytes"] for d in raw["downloads"][i] if epoch_of(d["t"], raw["settle_time"]) == epoch)
                 for i in raw["downloads"]}
        files = {i: sum(1 for d in raw["downloads"][i] if epoch_of(d["t"], raw["settle_time"]) == epoch)
                 for i in raw["downloads"]}
        entry["transfer_bytes_per_node"] = round(statistics.mean(moved.values())) if moved else 0
        entry["transfer_bytes_max"] = max(moved.values()) if moved else 0
        entry["files_fetched_per_node"] = round(statistics.mean(files.values()), 2) if files else 0
        entry["score_below_train"] = all(r.get("score", 0.0) < r.get("train", 0.0) for r in rows.values())
        entry["estimator"] = raw["estimator"]
        entry["per_node"] = {str(i): {**{c: round(r.get(c, 0.0), 3) for c in CATEGORIES},
                                      "transfer_bytes": moved.get(i, 0)} for i, r in rows.items()}
        per_epoch.append(entry)
    peaks = {str(i): (None if kib is None else round(kib / 1024, 1)) for i, kib in raw["peaks_kib"].items()}
    total = {str(i): sum(d["bytes"] for d in raw["downloads"][i]) for i in raw["downloads"]}
    return {**facts, "nodes": len(raw["timings"]), "epochs": epochs, "alpha": ALPHA,
            "wall_s": round(raw["wall_s"], 1), "per_epoch": per_epoch, "peak_memory_mib": peaks,
            "downloaded_bytes_total": total,
            "score_below_train_every_epoch": all(e["score_below_train"] for e in per_epoch),
            "score_below_train_after_first": all(e["score_below_train"] for e in per_epoch[1:]) if
            len(per_epoch) > 1 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folder here (logs, timings)")
    args = parser.parse_args()
    facts = model_facts()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=args.keep))
        raw = run_swarm(args.nodes, args.epochs, folder, args.seed, args.timeout)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            raw = run_swarm(args.nodes, args.epochs, Path(tmp) / "run", args.seed, args.timeout)
    result = summarise(raw, args.epochs, facts)
    table = Table(title=f"{result['nodes']} nodes, {MODEL} ({result['parameters'] / 1e6:.2f} M parameters, "
                        f"{result['file_bytes'] / 2**20:.1f} MiB per file), {DATASET}: per epoch, mean over nodes")
    for column in ("epoch", "train s", "transfer s", "bytes/node", "merge s", "score s", "estimator", "chain s",
                   "settle s", "score<train"):
        table.add_column(column, justify="right")
    for e in result["per_epoch"]:
        table.add_row(str(e["epoch"]), f"{e['train_s']:.2f}", f"{e['transfer_s']:.2f}",
                      f"{e['transfer_bytes_per_node'] / 2**20:.1f} MiB", f"{e['merge_s']:.2f}", f"{e['score_s']:.2f}",
                      e["estimator"], f"{e['chain_s']:.2f}", f"{e['settle_s']:.2f}", str(e["score_below_train"]))
    Console().print(table)
    Console().print("peak memory per node (MiB): " + ", ".join(f"node-{i} {v}" for i, v in
                                                                 result["peak_memory_mib"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
