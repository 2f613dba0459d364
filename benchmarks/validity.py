"""Validity checks beyond digits: do honest steps pass them on every bundled table, and do
forgeries still fail?

Usage (from the repository root)::

    python benchmarks/validity.py --out benchmarks/results/validity.json [--quick] [--jobs 2]
    python benchmarks/validity.py --out old.json --copy-sine-ratio none   # the cosine alone

The copy and sign-balance thresholds of ``trainer.validity`` were first set on digits. A
check that rejects an honest update costs its node the epoch's pay and a strike, and three
strikes suspend it and forfeit what it has not claimed, so a threshold that only holds on
one table, or one training setting, is a fairness bug on the others. Per bundled table
(``digits``, ``breast_cancer``, ``wine``, ``fraud``), partition (IID, Dirichlet 0.5) and
local training (the default, lr 0.05 for 2 local epochs, and a slower one, ``_slow``: lr
0.01 for 1), 8 nodes, 10 epochs, ``--seeds`` seeds, the default swarm (merge, utility,
scorer, money):

- an honest swarm: ``honest_rejected_copy`` and ``honest_rejected_one_sided`` (share of
  honest (node, epoch) updates the copy check, or else the sign-balance check, rejected),
  ``honest_suspended`` (nodes, summed over seeds), ``worst_payout_to_data``
  (worst seed), ``copy_cosine_max`` and ``balance_deviation_max`` (the largest values the
  checks saw from an honest step), ``spread_ratio_max`` (the largest deviation / the epoch's
  median deviation of an honest step whose deviation reached the sign-balance threshold:
  what a bar relative to the epoch's spread would have to stay above to pass it);
- ALIE, z = 1 and z = 3, on 2 of the 8 nodes (``fairness.rogue_ids``, no money so nobody is
  suspended): ``alie_z*_caught``, the share of its commits from epoch 1 on (in epoch 0 it has
  no peers to forge from and commits honestly) that a check rejected, and
  ``alie_spread_ratio_min``, the smallest deviation / median deviation of those commits
  (where it lies below ``spread_ratio_max``, no bar relative to the spread separates them).

The JSON holds each figure per table and setting (partition and training); ``targets``
says whether no honest update was rejected as a copy anywhere, whether none was rejected as one-sided anywhere,
and whether ALIE (z = 1 and 3) was caught in every epoch on every table.

Measured, not adopted (10 seeds, default training): a copy threshold of 0.99 instead of
0.95 (with the cosine alone) passed the 4 honest updates it rejected on ``breast_cancer``
and ``fraud`` (cosines 0.951-0.957), but let 8 of ALIE's 360 z = 1 commits on IID
``breast_cancer`` and ``fraud`` through, and on digits it let ALIE z = 0.1, a near copy of
the peers' public steps, be paid 1.28 times the honest mean on Dirichlet data (0.21 at
0.95; ``benchmarks/fairness.py``); the bar relative to the epoch's other steps
(``trainer.validity.copies``) is what replaced the cosine alone. A sign-balance bar of 12
times the epoch's median deviation on top of the 0.3 passed every honest update, and no
ALIE commit was caught on ``breast_cancer`` and ``fraud`` any more: ALIE lies as little as
2.6 median deviations out there, honest steps up to 10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from fairness import honest_figures, rogue_ids
from trainer.data import load_dataset, split_swarm
from trainer.simulate import Rogue, SimulationResult, simulate
from trainer.training import TrainConfig
from trainer.validity import DEFAULT_COPY_COSINE, DEFAULT_COPY_SINE_RATIO, DEFAULT_SIGN_BALANCE, copies

TABLES = ("digits", "breast_cancer", "wine", "fraud")
PARTITIONS = ("iid", "dirichlet")
TRAININGS = {"": TrainConfig(), "_slow": TrainConfig(lr=0.01, local_epochs=1)}
ALIE_Z = (1.0, 3.0)
N_NODES = 8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, fraud with Dirichlet data only (CI)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per table and setting (default 10)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--copy-cosine", type=float, default=DEFAULT_COPY_COSINE)
    parser.add_argument("--copy-sine-ratio", type=ratio, default=DEFAULT_COPY_SINE_RATIO,
                        help="the copy check's bar relative to the epoch's other steps ('none': the cosine alone)")
    parser.add_argument("--sign-balance", type=float, default=DEFAULT_SIGN_BALANCE)
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (1 if args.quick else 10)
    args.epochs = args.epochs or (2 if args.quick else 10)
    args.tables = ("fraud",) if args.quick else TABLES
    args.partitions = ("dirichlet",) if args.quick else PARTITIONS
    return args


def ratio(text: str) -> float | None:
    """A ``--copy-sine-ratio``: a number, or "none" for the cosine alone."""
    return None if text.lower() == "none" else float(text)


def _spread_ratios(result: SimulationResult, nodes: set[int], floor: float, first_epoch: int = 0) -> list[float]:
    """Deviation / the epoch's median deviation of ``nodes``' commits at or above ``floor``."""
    ratios = []
    for record in result.epochs[first_epoch:]:
        median = statistics.median(record.balance_deviations.values())
        ratios += [d / median if median > 0 else float("inf")
                   for i, d in record.balance_deviations.items() if i in nodes and d >= floor]
    return ratios


def seed_task(task: tuple) -> tuple[str, str, int, dict[str, float]]:
    """Every figure of one (table, partition, training, seed), under the setting's name
    (the partition, with the training's suffix)."""
    table, partition, suffix, seed, epochs, checks = task
    training = TRAININGS[suffix]
    split = split_swarm(load_dataset(table, seed), N_NODES, partition=partition, alpha=0.5, seed=seed)
    honest = simulate(split, N_NODES, epochs, seed=seed, train=training, **checks)
    base = honest_figures(honest)
    pairs = sum(len(record.reporters) for record in honest.epochs)
    ratios = _spread_ratios(honest, set(range(N_NODES)), checks["sign_balance"])
    copied = sum(flag for record in honest.epochs for flag in copies(list(record.step_cosines.values()),
                                                                    checks["copy_cosine"], checks["copy_sine_ratio"]))
    rejected = sum(len(record.rejected) for record in honest.epochs)
    figures = {"honest_rejected_copy": copied / pairs, "honest_rejected_one_sided": (rejected - copied) / pairs,
               "honest_suspended": base["honest_suspended"], "worst_payout_to_data": base["worst_payout_to_data"],
               "copy_cosine_max": base["copy_cosine_max"], "balance_deviation_max": base["balance_deviation_max"],
               "spread_ratio_max": max(ratios, default=0.0)}
    rogues = rogue_ids(seed)
    alie_ratios: list[float] = []
    for z in ALIE_Z:
        result = simulate(split, N_NODES, epochs, seed=seed, economy=None, train=training,
                          rogues=[Rogue(i, "alie", {"z": z}) for i in rogues], **checks)
        commits = [(record, i) for record in result.epochs[1:] for i in rogues]
        figures[f"alie_z{z:g}_caught"] = (sum(i in record.rejected for record, i in commits) / len(commits)
                                          if commits else 1.0)
        alie_ratios += _spread_ratios(result, set(rogues), 0.0, first_epoch=1)
    figures["alie_spread_ratio_min"] = min(alie_ratios, default=float("inf"))
    return table, partition + suffix, seed, figures


WORST = {"honest_rejected_copy": max, "honest_rejected_one_sided": max, "honest_suspended": sum,
         "worst_payout_to_data": min, "copy_cosine_max": max, "balance_deviation_max": max, "spread_ratio_max": max,
         "alie_z1_caught": min, "alie_z3_caught": min, "alie_spread_ratio_min": min}


def summarise(rows: list[tuple[str, str, int, dict[str, float]]]) -> dict:
    """Per table and setting: each figure's mean, its worst seed (or the sum, for
    suspensions) and the per-seed values."""
    out: dict = {}
    for table, setting, seed, figures in sorted(rows, key=lambda row: row[:3]):
        cell = out.setdefault(table, {}).setdefault(setting, {})
        for name, value in figures.items():
            entry = cell.setdefault(name, {"per_seed": []})
            entry["per_seed"].append(value)
    for table in out.values():
        for cell in table.values():
            for name, entry in cell.items():
                finite = [v for v in entry["per_seed"] if np.isfinite(v)]
                entry["mean"] = float(np.mean(finite)) if finite else None
                entry["worst"] = WORST[name](entry["per_seed"]) if finite else None
    return out


def targets(figures: dict) -> dict[str, bool]:
    cells = [cell for table in figures.values() for cell in table.values()]
    return {"no_honest_copy_rejection": all(cell["honest_rejected_copy"]["worst"] == 0 for cell in cells),
            "no_honest_one_sided_rejection": all(cell["honest_rejected_one_sided"]["worst"] == 0 for cell in cells),
            "alie_always_caught": all(cell[f"alie_z{z:g}_caught"]["worst"] == 1.0 for cell in cells for z in ALIE_Z)}


def print_table(figures: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Validity checks: honest steps on every bundled table, and ALIE (2 of 8)")
    columns = tuple(WORST)
    table.add_column("table / setting")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for name, settings in figures.items():
        for setting, cell in settings.items():
            table.add_row(f"{name} / {setting}", *(
                "-" if cell[c]["worst"] is None else f"{cell[c]['worst']:.3g}" for c in columns))
    Console(width=200).print(table)
    print("(worst seed; honest suspended: summed over seeds)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    checks = {"copy_cosine": args.copy_cosine, "copy_sine_ratio": args.copy_sine_ratio,
              "sign_balance": args.sign_balance}
    tasks = [(table, partition, suffix, seed, args.epochs, checks) for table in args.tables
             for partition in args.partitions for suffix in TRAININGS for seed in range(args.seeds)]
    started, rows = time.perf_counter(), []
    with Pool(args.jobs) as pool:
        for done, row in enumerate(pool.imap_unordered(seed_task, tasks), start=1):
            rows.append(row)
            print(f"[{time.perf_counter() - started:6.0f} s] {done}/{len(tasks)} {row[0]} {row[1]} seed {row[2]}",
                  file=sys.stderr, flush=True)
    figures = summarise(rows)
    report = {"config": {"seeds": args.seeds, "epochs": args.epochs, "nodes": N_NODES, "tables": list(args.tables),
                         "trainings": {suffix or "default": asdict(train) for suffix, train in TRAININGS.items()},
                         **checks}, "figures": figures, "targets": targets(figures),
              "seconds": round(time.perf_counter() - started, 1)}
    print_table(figures)
    print("targets:", report["targets"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
