"""Accuracy benchmark: does the swarm's merged model match a model trained on pooled data?

Setup (issue 3, acceptance 1): digits, 8 nodes, Dirichlet label skew alpha = 0.5, 20 swarm
epochs, seeds 0-2, the default ``TrainConfig`` and MLP.  For each seed one split is made and
shared by every contender, all reported on the same held-out global test set:

- ``centralized``: one model on the pooled train data of all nodes, as many passes over the
  data as the swarm's nodes make (``centralized_3x``: three times as many, to show that the
  baseline has converged and the comparison is not won against an under-trained model);
- ``local_only``: each node alone for the same number of local steps as its swarm run;
- ``swarm[merge]``: :func:`trainer.simulate.simulate` with that merge rule, no attack.

``min_node_gain`` = min over seeds and nodes of ``acc(swarm["mean"]) - acc(local_only[node])``:
the smallest improvement any single node gets from joining.  Targets:
``swarm["mean"] >= centralized - 0.015`` and ``min_node_gain >= 0.08``.

Usage: ``python benchmarks/accuracy.py --out benchmarks/results/accuracy.json [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from trainer.data import load_dataset, split_swarm
from trainer.merges import MERGES
from trainer.simulate import centralized, local_only, simulate
from trainer.training import TrainConfig

DEFAULT_MERGES = ["mean", "weighted_mean", "median", "trimmed_mean", "geometric_median", "multi_krum",
                  "centered_clipping", "fltrust", "fltrust_median"]


def run_seed(seed: int, *, merges: list[str], epochs: int, n_nodes: int, alpha: float,
             train: TrainConfig) -> dict[str, object]:
    """All contenders on the split of one seed; accuracies on the global test set."""
    split = split_swarm(load_dataset("digits"), n_nodes, partition="dirichlet", alpha=alpha, seed=seed)
    started = time.perf_counter()
    central = centralized(split, epochs=epochs, train=train, seed=seed)
    central_seconds = time.perf_counter() - started
    central_3x = centralized(split, epochs=3 * epochs, train=train, seed=seed)
    started = time.perf_counter()
    local = [m.accuracy for m in local_only(split, epochs=epochs, train=train, seed=seed)]
    local_seconds = time.perf_counter() - started
    swarm, seconds = {}, {"centralized": central_seconds, "local_only": local_seconds}
    for rule in merges:
        started = time.perf_counter()
        result = simulate(split, n_nodes, epochs, merge=rule, scorer=None, train=train, seed=seed)
        seconds[rule] = time.perf_counter() - started
        swarm[rule] = result.final.accuracy
    return {"seed": seed, "n_train": [node.n_train for node in split.nodes],
            "centralized": central.accuracy, "centralized_macro_f1": central.macro_f1,
            "centralized_3x": central_3x.accuracy,
            "local_only": local, "swarm": swarm, "seconds": seconds,
            "min_node_gain": {rule: acc - max(local) for rule, acc in swarm.items()}}


def summarise(per_seed: list[dict], merges: list[str]) -> dict[str, object]:
    """Means over seeds, the worst-case node gain and the target checks."""
    centralized_mean = float(np.mean([s["centralized"] for s in per_seed]))
    swarm = {rule: float(np.mean([s["swarm"][rule] for s in per_seed])) for rule in merges}
    gains = {rule: float(min(s["min_node_gain"][rule] for s in per_seed)) for rule in merges}
    summary = {
        "centralized": centralized_mean,
        "centralized_3x": float(np.mean([s["centralized_3x"] for s in per_seed])),
        "local_only_mean": float(np.mean([np.mean(s["local_only"]) for s in per_seed])),
        "local_only_best": float(np.mean([max(s["local_only"]) for s in per_seed])),
        "swarm": swarm,
        "swarm_std": {rule: float(np.std([s["swarm"][rule] for s in per_seed])) for rule in merges},
        "min_node_gain": gains.get("mean"),
        "min_node_gain_by_merge": gains,
    }
    if "mean" in swarm:
        summary["targets"] = {
            "swarm_mean_within_0.015_of_centralized": swarm["mean"] >= centralized_mean - 0.015,
            "min_node_gain_at_least_0.08": gains["mean"] >= 0.08,
        }
    return summary


def print_table(report: dict, console: Console) -> None:
    """Accuracy per contender: mean over seeds, spread, per-seed values, worst node gain."""
    seeds = [s["seed"] for s in report["per_seed"]]
    table = Table(title=f"digits, {report['config']['n_nodes']} nodes, Dirichlet "
                        f"{report['config']['alpha']}, {report['config']['epochs']} epochs, seeds {seeds}")
    for column in ["contender", "accuracy", "std", *[f"seed {s}" for s in seeds], "min node gain", "s/run"]:
        table.add_column(column, justify="left" if column == "contender" else "right")

    def row(name: str, values: list[float], gain: float | None, seconds: float | None) -> None:
        table.add_row(name, f"{np.mean(values):.4f}", f"{np.std(values):.4f}", *[f"{v:.4f}" for v in values],
                      "" if gain is None else f"{gain:+.4f}", "" if seconds is None else f"{seconds:.1f}")

    per_seed = report["per_seed"]
    row("centralized", [s["centralized"] for s in per_seed], None,
        np.mean([s["seconds"]["centralized"] for s in per_seed]))
    row("centralized, 3x epochs", [s["centralized_3x"] for s in per_seed], None, None)
    row("local-only (mean node)", [float(np.mean(s["local_only"])) for s in per_seed], None,
        np.mean([s["seconds"]["local_only"] for s in per_seed]))
    row("local-only (best node)", [max(s["local_only"]) for s in per_seed], None, None)
    for rule in report["swarm"]:
        row(f"swarm {rule}", [s["swarm"][rule] for s in per_seed], report["min_node_gain_by_merge"][rule],
            np.mean([s["seconds"][rule] for s in per_seed]))
    console.print(table)
    if report["config"]["quick"]:
        console.print("quick run (1 seed, 6 epochs): the targets apply to the full run")
    for target, met in report.get("targets", {}).items():
        console.print(f"{target}: {'met' if met else 'MISSED'}")


def main() -> None:
    """Parse arguments, run every seed, print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    parser.add_argument("--quick", action="store_true", help="1 seed, 6 epochs, 4 merges (CI)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--merges", nargs="+", default=[m for m in DEFAULT_MERGES if m in MERGES])
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 6
        args.merges = [m for m in ["mean", "median", "fltrust", "fltrust_median"] if m in args.merges]
    torch.set_num_threads(1)
    train = TrainConfig()
    started = time.perf_counter()
    per_seed = [run_seed(seed, merges=args.merges, epochs=args.epochs, n_nodes=args.nodes, alpha=args.alpha,
                         train=train) for seed in args.seeds]
    report = {
        "config": {"dataset": "digits", "n_nodes": args.nodes, "alpha": args.alpha, "epochs": args.epochs,
                   "seeds": args.seeds, "model": "mlp", "train": asdict(train), "quick": args.quick},
        **summarise(per_seed, args.merges),
        "flwr": "not run: flwr is not installed in this environment",
        "per_seed": per_seed,
        "seconds": time.perf_counter() - started,
    }
    print_table(report, Console(width=150))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
