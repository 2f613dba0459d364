"""Robustness of the merge rules to rogue nodes, and rogue detection by the contribution scores.

Usage (from the repository root)::

    python benchmarks/robustness.py --out benchmarks/results/robustness.json [--quick]
    python benchmarks/robustness.py --detection-only --attacks alie alie_omniscient   # part 2 only, ~1 min

What a rogue can see: every attack runs with the simulator's ``attack_view="previous"``,
the view the chain-backed swarm allows (nodes commit hashes before any file is served, so
a model attack that reads the peers' updates, i.e. ALIE, only knows the previous epoch's
honest updates, rebased onto the current model, and commits honestly in epoch 0). The
row ``alie_omniscient`` is ALIE with ``attack_view="current"``, the literature's attacker
that reads the current epoch's honest updates: an upper bound no real rogue reaches, kept
so that both are visible. The other attacks read no peers and do not depend on the view.

Part 1, accuracy: every registered merge x attacks (sign_flip, gaussian_noise, alie,
alie_omniscient, label_flip, free_rider, scaled) x rogue fraction {0, 0.25}; 8 nodes,
digits, Dirichlet alpha 0.5, 20 epochs, the simulator's default local training, seeds 0-2 (each seed its own
partition, rogue set and elected leaders). Accuracy is the final global model's test
accuracy, averaged over the seeds. With no rogue the attack is irrelevant, so each merge
runs once per seed at fraction 0 and that number is reported for every attack.
``clean_mean`` is the plain mean without rogues; ``honest_only_oracle`` is the plain mean
run on the 6 honest nodes alone (the rogues' data is lost to any merge, so this is the
ceiling under attack; the rogue set depends on the seed, not on the attack). Target: for every attack at 0.25 the best
merge is within 0.03 of ``clean_mean``. A merge "breaks" under an attack when it ends more
than 0.03 below ``clean_mean``.

Part 1 also measures the swarm-specific risk of anchored rules: the leader (FLTrust's
anchor) is elected among all committed nodes, rogues included. ``rogue_leader`` gives, per
merge at fraction 0.25, the mean change of test accuracy over epochs led by a rogue and
over epochs led by an honest node. The leader sequence depends on the seed only, so the
rules that ignore the leader are the control for which epochs happened to be rogue-led.

Part 2, rogue detection: 2 of 8 rogues, the recommended merge, the simulator's default
scorer ("auto": exact Shapley at n = 8) on the swarm's utility; per attack over ``--detection-
seeds`` seeds (default 20) with ``--detection-epochs`` epochs each (default 10, fewer than
part 1; the whole run takes 6 to 11 minutes on one core, by load):

- ``seed_rate``: fraction of seeds where the scores accumulated over the run rank both
  rogues below every honest node (target >= 0.95);
- ``epoch_rate``: the same test on each epoch's own scores, over all seeds and epochs;
- for ``free_rider``: ``free_rider_ratio_max`` = the largest, over seeds and rogues, of a
  free rider's accumulated score divided by the median honest accumulated score (target
  <= 0.05; negative means it is charged, not paid).

``--attacks`` restricts both parts to some rows, ``--detection-only`` skips part 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trainer.data import load_dataset, split_swarm  # noqa: E402
from trainer.merges import MERGES  # noqa: E402
from trainer.simulate import SimulationResult, simulate  # noqa: E402

ATTACKS = ("sign_flip", "gaussian_noise", "alie", "alie_omniscient", "label_flip", "free_rider", "scaled")
DETECTION_ATTACKS = ("sign_flip", "gaussian_noise", "alie", "alie_omniscient", "label_flip", "free_rider")
SCENARIOS = {name: (name, "previous") for name in ATTACKS} | {"alie_omniscient": ("alie", "current")}
"""Row name -> (attack, the simulator's ``attack_view``)."""
RECOMMENDED = "fltrust_median"
N_NODES = 8
ALPHA = 0.5
ROGUE_FRACTION = 0.25
TOLERANCE = 0.03
DETECTION_TARGET = 0.95
FREE_RIDER_TARGET = 0.05
FULL = {"epochs": 20, "seeds": (0, 1, 2), "merges": None, "detection_seeds": 20, "detection_epochs": 10}
QUICK = {"epochs": 4, "seeds": (0,), "merges": ("mean", "median", "fltrust", RECOMMENDED),
         "detection_seeds": 2, "detection_epochs": 2}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help="4 merges, 4 epochs, 1 seed; 2 detection seeds")
    parser.add_argument("--detection-seeds", type=int, help="seeds of the rogue-detection runs")
    parser.add_argument("--detection-epochs", type=int, help="epochs of each rogue-detection run")
    parser.add_argument("--attacks", nargs="+", choices=ATTACKS, metavar="ATTACK",
                        help=f"only these rows (of {', '.join(ATTACKS)})")
    parser.add_argument("--detection-only", action="store_true", help="skip part 1 (accuracy)")
    return parser.parse_args(argv)


def _progress(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.0f} s] {message}", file=sys.stderr, flush=True)


def _rogue_leader_steps(run: SimulationResult) -> tuple[list[float], list[float]]:
    """Accuracy change of each epoch (after minus before), split by the leader's side."""
    rogue, honest = [], []
    for before, record in zip(run.epochs, run.epochs[1:]):
        change = record.test.accuracy - before.test.accuracy
        (rogue if record.leader in run.rogue_ids else honest).append(change)
    return rogue, honest


def accuracy_matrix(plan: dict, started: float) -> dict:
    """Part 1: final test accuracy per (merge, attack, rogue fraction), mean over seeds."""
    merges = list(plan["merges"] or sorted(MERGES))
    attacks = plan["attacks"]
    per_seed: dict[tuple[str, str, float], list[float]] = {}
    leader_steps: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in merges}
    oracle: list[float] = []
    for seed in plan["seeds"]:
        split = split_swarm(load_dataset("digits", seed=seed), N_NODES, partition="dirichlet", alpha=ALPHA,
                            seed=seed)
        for merge in merges:
            clean = simulate(split, N_NODES, plan["epochs"], merge=merge, scorer=None, seed=seed).final.accuracy
            for attack in attacks:
                per_seed.setdefault((merge, attack, 0.0), []).append(clean)
                name, view = SCENARIOS[attack]
                run = simulate(split, N_NODES, plan["epochs"], merge=merge, scorer=None, attack=name,
                               attack_view=view, rogue_fraction=ROGUE_FRACTION, seed=seed)
                per_seed.setdefault((merge, attack, ROGUE_FRACTION), []).append(run.final.accuracy)
                rogue, honest = _rogue_leader_steps(run)
                leader_steps[merge][0].extend(rogue)
                leader_steps[merge][1].extend(honest)
            _progress(f"seed {seed} {merge}: clean {clean:.3f}", started)
        rogues_of_seed = run.rogue_ids  # drawn from the seed alone, the same for every attack
        honest = replace(split, nodes=[node for i, node in enumerate(split.nodes) if i not in rogues_of_seed])
        oracle.append(simulate(honest, len(honest.nodes), plan["epochs"], merge="mean", scorer=None,
                               seed=seed).final.accuracy)
    results = [{"merge": m, "attack": a, "attack_view": SCENARIOS[a][1], "rogue_fraction": f,
                "accuracy": statistics.fmean(accs),
                "accuracy_per_seed": accs, "accuracy_min": min(accs)}
               for (m, a, f), accs in per_seed.items()]
    clean_mean = statistics.fmean(per_seed[("mean", attacks[0], 0.0)])
    rogue_leader = {m: {"rogue_led_epochs": len(r), "honest_led_epochs": len(h),
                        "mean_accuracy_change_rogue_led": statistics.fmean(r) if r else None,
                        "mean_accuracy_change_honest_led": statistics.fmean(h) if h else None}
                    for m, (r, h) in leader_steps.items()}
    return {"results": results, "clean_mean": clean_mean, "rogue_leader": rogue_leader,
            "honest_only_oracle": statistics.fmean(oracle), "honest_only_oracle_per_seed": oracle}


def summarise_accuracy(part: dict) -> dict:
    """Best merge per attack at 0.25, and the attacks under which each merge breaks."""
    clean = part["clean_mean"]
    attacked = [r for r in part["results"] if r["rogue_fraction"] == ROGUE_FRACTION]
    best = {}
    for attack in dict.fromkeys(r["attack"] for r in attacked):
        top = max((r for r in attacked if r["attack"] == attack), key=lambda r: r["accuracy"])
        best[attack] = {"merge": top["merge"], "accuracy": top["accuracy"], "gap": clean - top["accuracy"],
                        "met": clean - top["accuracy"] <= TOLERANCE}
    breaks = {}
    for r in attacked:
        if clean - r["accuracy"] > TOLERANCE:
            breaks.setdefault(r["merge"], {})[r["attack"]] = r["accuracy"]
    recommended = {r["attack"]: r["accuracy"] for r in attacked if r["merge"] == RECOMMENDED}
    return {"best_per_attack": best, "breaks": breaks, "recommended": RECOMMENDED,
            "recommended_worst_gap": clean - min(recommended.values()) if recommended else None,
            "target": f"for every attack at {ROGUE_FRACTION} the best merge within {TOLERANCE} of clean_mean",
            "met": all(b["met"] for b in best.values())}


def _both_below(scores: np.ndarray, rogues: list[int]) -> bool:
    honest = [i for i in range(len(scores)) if i not in rogues]
    return bool(scores[rogues].max() < scores[honest].min())


def rogue_detection(seeds: int, epochs: int, started: float, attacks: tuple[str, ...] = DETECTION_ATTACKS) -> dict:
    """Part 2: do the contribution scores rank the rogues last?"""
    out = {}
    for attack in attacks:
        seed_hits, epoch_hits, ratios, seconds, evaluations = [], [], [], [], []
        name, view = SCENARIOS[attack]
        for seed in range(seeds):
            run = simulate("digits", N_NODES, epochs, merge=RECOMMENDED, scorer="auto", attack=name,
                           attack_view=view, rogue_fraction=ROGUE_FRACTION, alpha=ALPHA, seed=seed)
            rogues = run.rogue_ids
            total = run.accumulated_scores()
            seed_hits.append(_both_below(total, rogues))
            epoch_hits.extend(_both_below(record.scores, rogues) for record in run.epochs)
            seconds.extend(record.seconds for record in run.epochs)
            evaluations.extend(record.evaluations for record in run.epochs)
            honest_median = float(np.median(total[run.honest_ids]))
            ratios.extend(float(total[i]) / honest_median for i in rogues)
        entry = {"attack": name, "attack_view": view, "seeds": seeds, "epochs": epochs,
                 "seed_rate": statistics.fmean(seed_hits),
                 "epoch_rate": statistics.fmean(epoch_hits), "met": statistics.fmean(seed_hits) >= DETECTION_TARGET,
                 "rogue_to_median_honest_max": max(ratios), "rogue_to_median_honest_mean": statistics.fmean(ratios),
                 "seconds_per_epoch": statistics.fmean(seconds), "evaluations_per_epoch": statistics.fmean(evaluations)}
        if attack == "free_rider":
            entry["free_rider_ratio_max"] = max(ratios)
            entry["free_rider_met"] = max(ratios) <= FREE_RIDER_TARGET
        out[attack] = entry
        _progress(f"detection {attack}: seed rate {entry['seed_rate']:.2f}, epoch rate {entry['epoch_rate']:.2f}",
                  started)
    return out


def print_tables(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    if "results" in summary:
        print_accuracy_tables(summary, console)
    detection = Table(title=f"rogue detection with {RECOMMENDED}: 2 of {N_NODES} rogues, accumulated scores")
    for column in ("attack", "seeds x epochs", "both rogues last (seeds)", "per epoch", "rogue / median honest (max)",
                   "(mean)", "s / epoch"):
        detection.add_column(column, justify="right" if column != "attack" else "left")
    for attack, d in summary["rogue_detection"].items():
        rate = f"{d['seed_rate']:.2f}"
        detection.add_row(attack, f"{d['seeds']} x {d['epochs']}",
                          rate if d["met"] else f"[red]{rate}[/red]", f"{d['epoch_rate']:.2f}",
                          f"{d['rogue_to_median_honest_max']:+.3f}", f"{d['rogue_to_median_honest_mean']:+.3f}",
                          f"{d['seconds_per_epoch']:.2f}")
    console.print(detection)
    if "results" not in summary:
        return
    acc = summary["accuracy_summary"]
    console.print(f"honest-only oracle (mean merge on the 6 honest nodes): {summary['honest_only_oracle']:.3f}")
    console.print(f"target (accuracy): {'[green]met[/green]' if acc['met'] else '[red]MISSED[/red]'}; "
                  f"worst gap of {RECOMMENDED}: {acc['recommended_worst_gap']:.3f}")
    for merge, broken in acc["breaks"].items():
        console.print(f"  {merge} breaks under: " + ", ".join(f"{a} ({v:.3f})" for a, v in broken.items()))


def print_accuracy_tables(summary: dict, console) -> None:
    from rich.table import Table

    attacks = summary["config"]["attacks"]
    clean = summary["clean_mean"]
    rows = {}
    for r in summary["results"]:
        rows.setdefault(r["merge"], {})[(r["attack"], r["rogue_fraction"])] = r["accuracy"]
    table = Table(title=f"final test accuracy, digits, {N_NODES} nodes, Dirichlet {ALPHA} "
                        f"(clean_mean = {clean:.3f}; red = more than {TOLERANCE} below it)")
    table.add_column("merge")
    table.add_column("no rogue", justify="right")
    for attack in attacks:
        table.add_column(f"{attack} @{ROGUE_FRACTION}", justify="right")
    best = summary["accuracy_summary"]["best_per_attack"]
    for merge, cells in rows.items():
        values = []
        for attack in attacks:
            acc = cells[(attack, ROGUE_FRACTION)]
            text = f"{acc:.3f}"
            if clean - acc > TOLERANCE:
                text = f"[red]{text}[/red]"
            if best[attack]["merge"] == merge:
                text = f"[bold]{text}*[/bold]"
            values.append(text)
        table.add_row(merge, f"{cells[(attacks[0], 0.0)]:.3f}", *values)
    console.print(table)
    leader = Table(title="mean test-accuracy change of one epoch, by who led it (rogue fraction 0.25)")
    leader.add_column("merge")
    for column in ("rogue-led", "honest-led", "rogue-led epochs"):
        leader.add_column(column, justify="right")
    for merge, entry in summary["rogue_leader"].items():
        rogue, honest = entry["mean_accuracy_change_rogue_led"], entry["mean_accuracy_change_honest_led"]
        leader.add_row(merge, "-" if rogue is None else f"{rogue:+.3f}", "-" if honest is None else f"{honest:+.3f}",
                       str(entry["rogue_led_epochs"]))
    console.print(leader)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    plan = dict(QUICK if args.quick else FULL)
    plan["detection_seeds"] = args.detection_seeds or plan["detection_seeds"]
    plan["detection_epochs"] = args.detection_epochs or plan["detection_epochs"]
    plan["attacks"] = tuple(a for a in ATTACKS if not args.attacks or a in args.attacks)
    detection_attacks = tuple(a for a in DETECTION_ATTACKS if a in plan["attacks"])
    started = time.monotonic()
    summary: dict = {
        "config": {"dataset": "digits", "n_nodes": N_NODES, "partition": "dirichlet", "alpha": ALPHA,
                   "epochs": plan["epochs"], "seeds": list(plan["seeds"]), "attacks": list(plan["attacks"]),
                   "attack_views": {a: {"attack": SCENARIOS[a][0], "attack_view": SCENARIOS[a][1]}
                                    for a in plan["attacks"]},
                   "rogue_fractions": [0.0, ROGUE_FRACTION], "quick": args.quick,
                   "detection_only": args.detection_only,
                   "detection": {"merge": RECOMMENDED, "scorer": "auto", "seeds": plan["detection_seeds"],
                                 "epochs": plan["detection_epochs"], "attacks": list(detection_attacks)}},
    }
    if not args.detection_only:
        part = accuracy_matrix(plan, started)
        summary |= {
            "clean_mean": part["clean_mean"],
            "results": part["results"],
            "honest_only_oracle": part["honest_only_oracle"],
            "honest_only_oracle_per_seed": part["honest_only_oracle_per_seed"],
            "rogue_leader": part["rogue_leader"],
            "accuracy_summary": summarise_accuracy(part),
        }
    summary["rogue_detection"] = rogue_detection(plan["detection_seeds"], plan["detection_epochs"], started,
                                                 detection_attacks)
    summary["runtime_seconds"] = round(time.monotonic() - started, 1)
    print_tables(summary)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
