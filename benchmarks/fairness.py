"""Fairness benchmark: does the money follow contribution, and do cheap fakes earn nothing?

Setup (issue 8, acceptance): digits, 8 nodes, 10 epochs, seeds 0..N-1, Dirichlet 0.5 and
IID partitions, the default merge (``fltrust_median``), ``TrainConfig`` and scorer, every
epoch settled by :func:`trainer.simulate.simulate`'s money model (``swarmtoken.rewards.settle``
exactly as the contract; budget 1000 tokens per epoch plus carry; ``--beta``,
``--smoothing``, ``--standing`` are the ``Rule`` in basis points, default the contract's).
Per partition and seed:

- ``base``: the honest swarm. ``honest_zero_pairs``: the fraction of honest (node, epoch)
  pairs paid nothing; ``honest_suspended``: honest nodes suspended (``--suspend-after``,
  default 3); ``worst_payout_to_data``: min over honest nodes of (payout share) / (data
  share); ``copy_cosine_max``: the largest cosine of an honest step with the previous
  merged step (the copy check's margin); ``balance_deviation_max``: the largest distance of an
  honest step's sign balance ``sum(step) / ||step||_1`` from the epoch's median (the
  sign-balance check's margin, threshold
  ``trainer.validity.DEFAULT_SIGN_BALANCE``); ``accuracy``: final test accuracy.
- ``lying_1``, ``lying_2``: the base run settled again with one (each of the 8 nodes in
  turn) or two (the 8 pairs ``(k, k + 4 mod 8)`` and ``(k, k + 1 mod 8)``) validators
  reporting +1 for themselves and -1 for every other: the largest change of any node's
  total payout, as a fraction of all tokens minted. Reports do not feed back into the
  model, so the run is re-settled from its score matrices (``SimulationResult.replay``);
  when the liars change who is suspended, the run is simulated again with them.
  ``boosting_1``, ``boosting_2``: the same with liars that also rate +1 the other node they
  value most (``"boosting"``): their whole vote on one node, as a liar favouring an
  accomplice casts it (beyond the issue's lying validator; same targets).
- ``sybil_split``: node ``seed mod 8``'s data dealt to two identities (its train and
  validation rows halved), total payout of the two / its payout in ``base``;
  ``sybil_pool``: nodes ``seed mod 8`` and ``seed + 1 mod 8`` pooled into one identity,
  its payout / theirs in ``base``. A seed whose node(s) earned nothing in ``base``
  (suspended) has no ratio and is left out of these two figures (``per_seed`` is shorter).
- one run per attack in ``ATTACKS``, 2 rogues of 8 (drawn per seed): the larger rogue's
  total payout / the honest nodes' mean. For an attack that reads the peers' previous
  updates (ALIE and its stale copies) or its own (``replay_own``), which has nothing to
  forge from in epoch 0 and trains honestly there, ``rogue_<attack>_forged`` is the same
  ratio over epochs 1 on, when it commits forgeries: what the forgery itself is paid. For
  the attacks in ``SELF_COMPARED`` (a rogue that trains honestly and then scales its
  update, which the merge normalises back to the median norm, or replays its own last
  step), ``rogue_<attack>_vs_self`` is the larger ratio of a rogue's total payout to its
  own in ``base``, the same node honest: whether it is paid more than its real
  contribution. Over a seed's attack runs, ``honest_suspended_beside_rogues`` (the most
  honest nodes suspended in any of them, target 0) and
  ``worst_payout_to_data_beside_rogues`` (the least any honest node was paid against its
  data share among the honest nodes, with the base targets): a rogue must not cost an
  honest node its membership or its pay.

And, per seed, ``quality``: quantity-skewed IID shards (``partition="quantity"``, alpha
``QUALITY_ALPHA``) whose nodes carry label noise {0, 0, .1, .1, .3, .3, .5, .5} shuffled
per seed (that fraction of a node's train and validation labels replaced by another class):
Spearman(total payout, samples x (1 - noise)). Two diagnostics say where it falls short:
``quality_spearman_by_samples``, the same Spearman for payouts exactly by samples (what
data weight alone can reach), and ``quality_noise_credit_factor``, what noise 0.5 multiplies
a node's epoch credit by at equal data (fitted per seed, :func:`noise_credit_factor`): 0.5
would follow the target's value, 1.0 means the validators' scores do not see the noise.

And, per seed, ``small``: honest swarms of 3, 4 and 5 nodes (Dirichlet 0.5, twice the
epochs: where consortia start, and where a run goes on), each with the honest targets
``n<k>_honest_suspended`` (0) and ``n<k>_worst_payout_to_data`` (>= 0.5): with few
validators, a node whose classes no other validator holds earns little credit however
good its update, and is struck as a node of no value would be. The same swarms with one
rogue (a seeded node) mounting each of ``SMALL_ATTACKS`` give ``n<k>_rogue_<attack>`` (its
total payout / the honest mean, <= 0.05) and ``n<k>_honest_suspended_with_rogue`` (the
most honest nodes suspended in any of those runs, 0).

And, per seed, ``long``: the ``lying`` group's figures over twice the epochs, for both
partitions (``<partition>_lying_1`` ... ``<partition>_boosting_2``, the same targets): near
convergence honest scores shrink toward noise, and a liar's vote must not outweigh them
the longer a run goes. The same runs give ``<partition>_honest_suspended`` and
``<partition>_worst_payout_to_data`` (the ``base`` targets): twice the epochs is the
config's default ``max_epochs``, and near convergence a few nodes earn most of the credit,
which moves everyone else's standing; ``<partition>_honest_suspended_with_rogue`` (0) counts
the honest nodes suspended in the same run with one rogue (the seed's first, mounting
``LONG_ATTACK``).

Each figure is reported per partition as the mean and the worst seed; ``targets`` holds
each target with its threshold and pass/fail, judged on the worst seed (``pass``) and on
the mean (``pass_mean``).

Usage: ``python benchmarks/fairness.py --out benchmarks/results/fairness.json [--quick]
[--seeds N] [--only base lying sybil quality small long ATTACK ...] [--jobs J] [--public-steps]
[--metric gce|loss|accuracy]``. ``--metric`` scores with another row metric than the
swarm's (``trainer.scoring.utility``, "Label noise", compares them).
``--public-steps`` scores with ``simulate(public_steps=True)`` (nobody is credited for the
part of a step in the span of the previous epoch's merged updates), a measured candidate
that the swarm does not use: see ``trainer.scoring.utility``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from swarmtoken.rewards import Rule
from trainer.attacks import needs_own, needs_peers
from trainer.data import NodeData, SwarmSplit, load_dataset, split_swarm, with_label_noise
from trainer.ledger import Economy
from trainer.scoring import DEFAULT_METRIC, METRICS
from trainer.simulate import DEFAULT_MERGE, Rogue, SimulationResult, derive_seed, simulate

N_NODES = 8
PARTITIONS = {"dirichlet": 0.5, "iid": 0.5}
QUALITY_ALPHA = 2.0
NOISE = (0.0, 0.0, 0.1, 0.1, 0.3, 0.3, 0.5, 0.5)
#: label -> (attack, options); every one with 2 rogues of 8.
ATTACKS: dict[str, tuple[str, dict[str, float]]] = {
    "sign_flip": ("sign_flip", {}),
    "gaussian_noise": ("gaussian_noise", {}),
    "scaled_x3": ("scaled", {"scale": 3.0}),
    "scaled_x10": ("scaled", {"scale": 10.0}),
    "label_flip": ("label_flip", {}),
    "free_rider": ("free_rider", {}),
    "stale_noise": ("stale_noise", {"fraction": 0.01}),
    "extrapolated_c0.5": ("extrapolated", {"c": 0.5}),
    "extrapolated_c1": ("extrapolated", {"c": 1.0}),
    "alie_z1": ("alie", {"z": 1.0}),
    "alie_z3": ("alie", {"z": 3.0}),
    # Beyond the list: the obvious next moves of a faker who meets the copy and
    # sign-balance checks (copies of public steps disguised with orthogonal noise to
    # cosine 0.9, under the copy check's 0.95; ALIE with a z too small to be one-sided).
    "extrapolated_c1_cos0.9": ("extrapolated", {"c": 1.0, "cosine": 0.9}),
    "stale_peers_cos0.9": ("alie", {"z": 0.0, "cosine": 0.9}),
    # The same copies under noise 1.7 times their norm (cosine 0.5): whether more disguise,
    # which any direction check would have to allow, makes them worthless.
    "extrapolated_c1_cos0.5": ("extrapolated", {"c": 1.0, "cosine": 0.5}),
    "stale_peers_cos0.5": ("alie", {"z": 0.0, "cosine": 0.5}),
    "alie_z0.1": ("alie", {"z": 0.1}),
    # A node that trained once and then commits its own last step again every epoch (no
    # copy of anyone's, so not what the copy check compares with), plain and disguised.
    "replay_own": ("replay_own", {}),
    "replay_own_cos0.9": ("replay_own", {"cosine": 0.9}),
}
#: Attacks whose rogues contribute their own work (rescaled, or stale): compared with themselves honest.
SELF_COMPARED = ("scaled_x3", "scaled_x10", "replay_own", "replay_own_cos0.9")


def forges_later(attack: str) -> bool:
    """Whether ``attack`` trains honestly in epoch 0, having nothing to forge from yet (the
    peers' previous updates, or its own)."""
    return needs_peers(attack) or needs_own(attack)


GROUPS = ("base", "lying", "sybil", "quality", "small", "long")
#: Groups whose tasks are not one partition's.
SEED_GROUPS = ("quality", "small", "long")
#: The ``small`` group's swarm sizes (Dirichlet 0.5, twice the epochs).
SMALL_SIZES = (3, 4, 5)
#: The attacks the ``small`` group mounts, one rogue at a time.
SMALL_ATTACKS = ("sign_flip", "gaussian_noise", "label_flip")
#: The report attacks of the ``lying`` group (``trainer.attacks.REPORT_ATTACKS``).
LIES = ("lying", "boosting")
PAYOUT_TO_DATA = {"dirichlet": 0.5, "iid": 0.85}
#: The honest figures the ``long`` group also reports (the run lasts the config's default
#: ``max_epochs``, 20: relative standing near convergence decides its strikes).
LONG_HONEST = ("honest_suspended", "worst_payout_to_data")
#: The attack of the ``long`` group's one rogue (``<partition>_honest_suspended_with_rogue``).
LONG_ATTACK = "sign_flip"
#: figure -> (which seed is worst: "max" or "min" or "far1" (furthest from 1), target or None)
TARGETS: dict[str, tuple[str, tuple[str, float] | tuple[float, float] | None]] = {
    "honest_zero_pairs": ("max", ("<=", 0.05)),
    "honest_suspended": ("max", ("<=", 0)),
    "worst_payout_to_data": ("min", None),  # threshold per partition, see PAYOUT_TO_DATA
    "honest_suspended_beside_rogues": ("max", ("<=", 0)),
    "worst_payout_to_data_beside_rogues": ("min", None),  # as worst_payout_to_data
    **{f"{attack}_1": ("max", ("<=", 0.02)) for attack in LIES},
    **{f"{attack}_2": ("max", ("<=", 0.05)) for attack in LIES},
    "sybil_split": ("max", ("<=", 1.05)),
    "sybil_pool": ("far1", (0.95, 1.05)),
    "accuracy": ("min", None),
    "copy_cosine_max": ("max", None),
    "balance_deviation_max": ("max", None),
    **{f"rogue_{label}": ("max", ("<=", 0.05)) for label in ATTACKS},
    **{f"rogue_{label}_forged": ("max", None) for label, (attack, _) in ATTACKS.items() if forges_later(attack)},
    **{f"rogue_{label}_vs_self": ("max", None) for label in SELF_COMPARED},
    **{f"n{n}_honest_suspended": ("max", ("<=", 0)) for n in SMALL_SIZES},
    **{f"n{n}_worst_payout_to_data": ("min", (">=", PAYOUT_TO_DATA["dirichlet"])) for n in SMALL_SIZES},
    **{f"n{n}_rogue_{label}": ("max", ("<=", 0.05)) for n in SMALL_SIZES for label in SMALL_ATTACKS},
    **{f"n{n}_honest_suspended_with_rogue": ("max", ("<=", 0)) for n in SMALL_SIZES},
    **{f"{partition}_{attack}_{count}": ("max", ("<=", limit)) for partition in PARTITIONS for attack in LIES
       for count, limit in ((1, 0.02), (2, 0.05))},
    **{f"{partition}_honest_suspended{suffix}": ("max", ("<=", 0)) for partition in PARTITIONS
       for suffix in ("", "_with_rogue")},
    **{f"{partition}_worst_payout_to_data": ("min", (">=", PAYOUT_TO_DATA[partition])) for partition in PARTITIONS},
    "quality_spearman_by_samples": ("min", None),
    "quality_noise_credit_factor": ("max", None),
}


@dataclass(frozen=True)
class Plan:
    """What every run of the benchmark shares: the settlement parameters, whether the
    scores credit nobody for the public part of a step (``simulate(public_steps=...)``), and
    the utility's row metric (``simulate(utility_metric=...)``)."""

    economy: Economy
    public_steps: bool = False
    metric: str = DEFAULT_METRIC


def plan_of(args: argparse.Namespace) -> Plan:
    """The benchmark's plan from its command line."""
    return Plan(Economy(budget=1000 * 10**18, rule=Rule(beta_bps=args.beta, smoothing_bps=args.smoothing,
                                                        standing_bps=args.standing),
                        suspend_after=args.suspend_after), public_steps=args.public_steps, metric=args.metric)


def run(split: SwarmSplit, seed: int, epochs: int, plan: Plan, rogues: Sequence[Rogue] = ()) -> SimulationResult:
    """One simulated swarm with money (the default merge, utility, scorer and training)."""
    return simulate(split, len(split.nodes), epochs, seed=seed, economy=plan.economy, rogues=list(rogues),
                    public_steps=plan.public_steps, utility_metric=plan.metric)


def honest_figures(result: SimulationResult) -> dict[str, float]:
    """The honest swarm's fairness figures (see the module docstring)."""
    payouts = np.array(result.payouts(), dtype=object)
    honest = result.honest_ids
    totals = np.array([float(t) for t in result.total_payouts()])
    data = np.array(result.n_train, dtype=float)
    paid = totals[honest].sum()
    ratios = [(totals[i] / paid) / (data[i] / data[honest].sum()) if paid else 0.0 for i in honest]
    cosines = [c for record in result.epochs[1:] for i, c in record.step_cosines.items() if i in honest]
    balances = [d for record in result.epochs for i, d in record.balance_deviations.items() if i in honest]
    return {"honest_zero_pairs": float(np.mean([payouts[e][i] == 0 for e in range(len(payouts)) for i in honest])),
            "honest_suspended": float(len([i for i in result.suspended() if i in honest])),
            "worst_payout_to_data": float(min(ratios)),
            "accuracy": result.final.accuracy,
            "copy_cosine_max": float(max(cosines, default=0.0)),
            "balance_deviation_max": float(max(balances, default=0.0))}


def largest_shift(base: Sequence[int], other: Sequence[int], minted: int) -> float:
    """The largest change of one node's total payout, as a fraction of the tokens minted."""
    return max(abs(a - b) for a, b in zip(base, other, strict=True)) / minted


def lying_figures(result: SimulationResult, split: SwarmSplit, seed: int, epochs: int,
                  plan: Plan) -> dict[str, float]:
    """``lying_1``, ``lying_2``, ``boosting_1`` and ``boosting_2`` (see the module docstring)."""
    minted = plan.economy.budget * epochs
    base = result.total_payouts()
    pairs = sorted({tuple(sorted((k, (k + step) % N_NODES))) for k in range(N_NODES) for step in (1, 4)})
    out = {}
    for attack in LIES:
        for count, groups in ((1, [(k,) for k in range(N_NODES)]), (2, pairs)):
            shifts = []
            for liars in groups:
                replayed = result.replay({k: attack for k in liars})
                totals = replayed.totals() if replayed.diverged is None else run(
                    split, seed, epochs, plan, [Rogue(k, report=attack) for k in liars]).total_payouts()
                shifts.append(largest_shift(base, totals, minted))
            out[f"{attack}_{count}"] = max(shifts)
    return out


def split_node(split: SwarmSplit, k: int) -> SwarmSplit:
    """Node ``k``'s rows dealt to two identities, ``k`` and a new last node (halves of its
    train and of its validation rows, in their stored order)."""
    node = split.nodes[k]
    t, v = node.n_train // 2, len(node.y_val) // 2
    first = NodeData(node.X_train[:t], node.y_train[:t], node.X_val[:v], node.y_val[:v])
    second = NodeData(node.X_train[t:], node.y_train[t:], node.X_val[v:], node.y_val[v:])
    nodes = list(split.nodes)
    nodes[k] = first
    return replace(split, nodes=[*nodes, second])


def pool_nodes(split: SwarmSplit, a: int, b: int) -> SwarmSplit:
    """Nodes ``a`` and ``b`` pooled into one identity at ``a``'s place (``b`` removed)."""
    x, y = split.nodes[a], split.nodes[b]
    pooled = NodeData(torch.cat([x.X_train, y.X_train]), torch.cat([x.y_train, y.y_train]),
                      torch.cat([x.X_val, y.X_val]), torch.cat([x.y_val, y.y_val]))
    nodes = [pooled if i == a else node for i, node in enumerate(split.nodes) if i != b]
    return replace(split, nodes=nodes)


def sybil_figures(result: SimulationResult, split: SwarmSplit, seed: int, epochs: int,
                  plan: Plan) -> dict[str, float]:
    """``sybil_split`` and ``sybil_pool`` (see the module docstring)."""
    base = result.total_payouts()
    k, other = seed % N_NODES, (seed + 1) % N_NODES
    halves = run(split_node(split, k), seed, epochs, plan).total_payouts()
    pooled = run(pool_nodes(split, k, other), seed, epochs, plan).total_payouts()
    pooled_index = k if k < other else k - 1
    figures = {}
    # A node paid nothing whole (suspended) has no ratio: the seed is left out of the figure.
    if base[k] > 0:
        figures["sybil_split"] = (halves[k] + halves[-1]) / base[k]
    if base[k] + base[other] > 0:
        figures["sybil_pool"] = pooled[pooled_index] / (base[k] + base[other])
    return figures


def rogue_ids(seed: int) -> list[int]:
    """The 2 rogue nodes of seed ``seed``."""
    rng = np.random.default_rng(derive_seed(seed, "fairness-rogues"))
    return sorted(int(i) for i in rng.choice(N_NODES, size=2, replace=False))


def attack_figures(split: SwarmSplit, seed: int, epochs: int, plan: Plan, labels: Sequence[str],
                   base: Sequence[int] | None = None) -> dict:
    """``rogue_<attack>``: the larger rogue's total payout / the honest mean, per attack (and
    ``_forged``, and ``_vs_self`` given the ``base`` run's totals; see the module docstring),
    and over all those runs the most honest nodes suspended and the worst honest pay against
    data (``<figure>_beside_rogues``)."""
    out = {}
    rogues = rogue_ids(seed)
    beside = []  # honest_figures of each attack run
    for label in labels:
        attack, options = ATTACKS[label]
        result = run(split, seed, epochs, plan, [Rogue(i, attack, options) for i in rogues])
        beside.append(honest_figures(result))
        payouts = np.array([[float(p) for p in epoch] for epoch in result.payouts()])
        out[f"rogue_{label}"] = rogue_ratio(payouts, rogues, result.honest_ids)
        if forges_later(attack):
            out[f"rogue_{label}_forged"] = rogue_ratio(payouts[1:], rogues, result.honest_ids)
        if label in SELF_COMPARED and base is not None and all(base[i] > 0 for i in rogues):
            out[f"rogue_{label}_vs_self"] = float(max(payouts[:, i].sum() / float(base[i]) for i in rogues))
    if beside:
        out["honest_suspended_beside_rogues"] = max(f["honest_suspended"] for f in beside)
        out["worst_payout_to_data_beside_rogues"] = min(f["worst_payout_to_data"] for f in beside)
    return out


def rogue_ratio(payouts: np.ndarray, rogues: Sequence[int], honest: Sequence[int]) -> float:
    """The larger rogue's total over ``payouts`` (epochs x nodes) / the honest nodes' mean."""
    totals = payouts.sum(axis=0)
    mean = totals[list(honest)].mean()
    return float(totals[list(rogues)].max() / mean) if mean > 0 else float("inf")


def noisy_split(seed: int) -> tuple[SwarmSplit, list[float]]:
    """The quality probe's split: quantity-skewed IID shards, label noise shuffled per seed."""
    split = split_swarm(load_dataset("digits"), N_NODES, partition="quantity", alpha=QUALITY_ALPHA, seed=seed)
    rng = np.random.default_rng(derive_seed(seed, "fairness-noise"))
    noise = [float(v) for v in rng.permutation(NOISE)]
    nodes = []
    for i, (node, level) in enumerate(zip(split.nodes, noise, strict=True)):
        noisy = [with_label_noise(y, level, split.n_classes, derive_seed(seed, "fairness-noise", i, part))
                 for part, y in enumerate((node.y_train, node.y_val))]
        nodes.append(NodeData(node.X_train, noisy[0], node.X_val, noisy[1]))
    return replace(split, nodes=nodes), noise


def quality_figures(seed: int, epochs: int, plan: Plan) -> dict[str, float]:
    """``quality_spearman`` and its two diagnostics (see the module docstring)."""
    split, noise = noisy_split(seed)
    result = run(split, seed, epochs, plan)
    value = [n * (1 - level) for n, level in zip(result.n_train, noise, strict=True)]
    return {"quality_spearman": float(spearmanr([float(t) for t in result.total_payouts()], value).statistic),
            "quality_spearman_by_samples": float(spearmanr(result.n_train, value).statistic),
            "quality_noise_credit_factor": noise_credit_factor(result, noise),
            "quality_honest_suspended": float(len(result.suspended()))}


def small_figures(seed: int, epochs: int, plan: Plan) -> dict[str, float]:
    """The ``small`` group's figures per swarm size (see the module docstring)."""
    figures = {}
    for n in SMALL_SIZES:
        split = split_swarm(load_dataset("digits"), n, partition="dirichlet", alpha=PARTITIONS["dirichlet"], seed=seed)
        honest = honest_figures(run(split, seed, epochs, plan))
        figures[f"n{n}_honest_suspended"] = honest["honest_suspended"]
        figures[f"n{n}_worst_payout_to_data"] = honest["worst_payout_to_data"]
        rogue = int(np.random.default_rng(derive_seed(seed, "fairness-small-rogue", n)).integers(n))
        suspended = []
        for label in SMALL_ATTACKS:
            attack, options = ATTACKS[label]
            result = run(split, seed, epochs, plan, [Rogue(rogue, attack, options)])
            payouts = np.array([[float(p) for p in epoch] for epoch in result.payouts()])
            figures[f"n{n}_rogue_{label}"] = rogue_ratio(payouts, [rogue], result.honest_ids)
            suspended.append(len([i for i in result.suspended() if i != rogue]))
        figures[f"n{n}_honest_suspended_with_rogue"] = float(max(suspended))
    return figures


def long_figures(seed: int, epochs: int, plan: Plan) -> dict[str, float]:
    """The ``long`` group's figures: the lying figures of each partition over ``epochs``, the
    honest swarm's suspensions and worst pay against data over that run, and the honest nodes
    suspended beside one ``LONG_ATTACK`` rogue."""
    figures = {}
    for partition, alpha in PARTITIONS.items():
        split = split_swarm(load_dataset("digits"), N_NODES, partition=partition, alpha=alpha, seed=seed)
        base = run(split, seed, epochs, plan)
        honest = {name: value for name, value in honest_figures(base).items() if name in LONG_HONEST}
        rogue = rogue_ids(seed)[0]
        attacked = run(split, seed, epochs, plan, [Rogue(rogue, *ATTACKS[LONG_ATTACK])])
        honest["honest_suspended_with_rogue"] = float(len([i for i in attacked.suspended() if i != rogue]))
        lying = lying_figures(base, split, seed, epochs, plan)
        figures.update({f"{partition}_{name}": value for name, value in {**honest, **lying}.items()})
    return figures


def noise_credit_factor(result: SimulationResult, noise: Sequence[float]) -> float:
    """What label noise 0.5 multiplies a node's epoch credit by, at equal data: ``exp(b / 2)``
    for the least-squares fit ``log(mean credit) = a + c log(samples) + b noise`` over the
    nodes (credits of the epochs each took part in, at least 1)."""
    credits: list[list[int]] = [[] for _ in result.n_train]
    for record in result.epochs:
        for node, credit in zip(record.money.participants, record.money.settlement.scores, strict=True):
            credits[node].append(credit)
    design = np.column_stack([np.ones(len(noise)), np.log(result.n_train), noise])
    observed = np.log([max(float(np.mean(c)), 1.0) if c else 1.0 for c in credits])
    (_, _, slope), *_ = np.linalg.lstsq(design, observed, rcond=None)
    return float(np.exp(slope / 2))


Task = tuple[str, int, int, Plan, list[str]]
"""(partition or "quality", seed, epochs, plan, figure groups)."""
Result = tuple[str, int, dict[str, float], float]
"""(partition, seed, figures, seconds)."""


def seed_task(task: Task) -> Result:
    """Every figure of one (partition, seed); ``partition == "quality"`` runs the quality probe."""
    partition, seed, epochs, plan, only = task
    torch.set_num_threads(1)
    started = time.perf_counter()
    if partition == "quality":
        return partition, seed, quality_figures(seed, epochs, plan), time.perf_counter() - started
    if partition == "small":
        return partition, seed, small_figures(seed, 2 * epochs, plan), time.perf_counter() - started
    if partition == "long":
        return partition, seed, long_figures(seed, 2 * epochs, plan), time.perf_counter() - started
    split = split_swarm(load_dataset("digits"), N_NODES, partition=partition, alpha=PARTITIONS[partition], seed=seed)
    figures: dict[str, float] = {}
    base = None
    if {"base", "lying", "sybil"} & set(only) or set(SELF_COMPARED) & set(only):
        base = run(split, seed, epochs, plan)
        if "base" in only:
            figures.update(honest_figures(base))
        if "lying" in only:
            figures.update(lying_figures(base, split, seed, epochs, plan))
        if "sybil" in only:
            figures.update(sybil_figures(base, split, seed, epochs, plan))
    figures.update(attack_figures(split, seed, epochs, plan, [a for a in ATTACKS if a in only],
                                  None if base is None else base.total_payouts()))
    return partition, seed, figures, time.perf_counter() - started


def summarise(per_seed: dict[str, dict[int, dict[str, float]]]) -> tuple[dict, dict]:
    """Per partition and figure: mean, worst seed and per-seed values; then the targets."""
    summary: dict[str, dict[str, dict[str, object]]] = {}
    targets: dict[str, dict[str, object]] = {}
    for partition, seeds in per_seed.items():
        names = sorted({name for figures in seeds.values() for name in figures})
        summary[partition] = {}
        for name in names:
            which = [s for s in sorted(seeds) if name in seeds[s]]
            values = [seeds[s][name] for s in which]
            kind = TARGETS.get(name, ("max" if name != "quality_spearman" else "min", None))[0]
            worst = {"max": max, "min": min}.get(kind, lambda v: max(v, key=lambda x: abs(x - 1)))(values)
            summary[partition][name] = {"mean": float(np.mean(values)), "worst": float(worst), "per_seed": values,
                                        "seeds": which}
            target = _target(partition, name)
            if target is not None:
                targets[f"{partition}.{name}"] = {"threshold": target, "worst": float(worst),
                                                  "mean": float(np.mean(values)), "pass": _meets(worst, target),
                                                  "pass_mean": _meets(float(np.mean(values)), target)}
    return summary, targets


def _target(partition: str, name: str) -> tuple | None:
    if name in ("worst_payout_to_data", "worst_payout_to_data_beside_rogues"):
        return (">=", PAYOUT_TO_DATA[partition])
    if name == "quality_spearman":
        return (">=", 0.95)
    if name == "quality_honest_suspended":
        return None
    return TARGETS[name][1] if name in TARGETS else None


def _meets(value: float, target: tuple) -> bool:
    if target[0] == "<=":
        return value <= target[1]
    if target[0] == ">=":
        return value >= target[1]
    return target[0] <= value <= target[1]


def print_table(report: dict, console: Console) -> None:
    """One row per figure: mean and worst seed per partition, and the target verdicts."""
    partitions = list(report["figures"])
    table = Table(title=f"fairness: digits, {N_NODES} nodes, {report['config']['epochs']} epochs, "
                        f"seeds {report['config']['seeds']}, rule {report['config']['rule']}")
    table.add_column("figure", no_wrap=True)
    for partition in partitions:
        table.add_column(f"{partition} mean", justify="right")
        table.add_column(f"{partition} worst", justify="right")
        table.add_column("target", justify="right")
    names = sorted({name for figures in report["figures"].values() for name in figures})
    for name in names:
        row = [name]
        for partition in partitions:
            figure = report["figures"][partition].get(name)
            verdict = report["targets"].get(f"{partition}.{name}")
            row += ["" if figure is None else f"{figure['mean']:.3f}", "" if figure is None else f"{figure['worst']:.3f}",
                    "" if verdict is None else f"{'pass' if verdict['pass'] else 'FAIL'} {verdict['threshold']}"]
        table.add_row(*row)
    console.print(table)


def main() -> None:
    """Parse arguments, run every (partition, seed), print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs (CI: the figures, not the targets)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10; quick: 1)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 10; quick: 2)")
    parser.add_argument("--only", nargs="+", choices=[*GROUPS, *ATTACKS], default=[*GROUPS, *ATTACKS],
                        help="figure groups and attacks to run (default all)")
    parser.add_argument("--partitions", nargs="+", choices=list(PARTITIONS), default=list(PARTITIONS))
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one per (partition, seed))")
    defaults = Rule()
    parser.add_argument("--beta", type=int, default=defaults.beta_bps, help="Rule.beta_bps")
    parser.add_argument("--smoothing", type=int, default=defaults.smoothing_bps, help="Rule.smoothing_bps")
    parser.add_argument("--standing", type=int, default=defaults.standing_bps, help="Rule.standing_bps")
    parser.add_argument("--suspend-after", type=int, default=3)
    parser.add_argument("--metric", choices=sorted(METRICS), default=DEFAULT_METRIC,
                        help="the validators' row metric (trainer.scoring.utility; default the swarm's)")
    parser.add_argument("--public-steps", action="store_true",
                        help="credit nobody for the part of a step in the span of the previous epoch's merged "
                             "updates (simulate(public_steps=True); not what the swarm does)")
    args = parser.parse_args()
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 10)
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 10)
    plan = plan_of(args)
    economy = plan.economy
    groups = [p for p in args.partitions if set(args.only) - set(SEED_GROUPS)] + \
        [group for group in SEED_GROUPS if group in args.only]
    # Seed by seed, so that a report written before the end covers every partition.
    tasks: list[Task] = [(group, seed, epochs, plan, args.only) for seed in range(seeds) for group in groups]
    started = time.perf_counter()
    console = Console(width=160)
    config = {"dataset": "digits", "n_nodes": N_NODES, "epochs": epochs, "seeds": list(range(seeds)),
              "partitions": {p: PARTITIONS[p] for p in args.partitions}, "merge": DEFAULT_MERGE,
              "rule": asdict(economy.rule), "suspend_after": economy.suspend_after, "budget_wei": economy.budget,
              "public_steps": plan.public_steps, "metric": plan.metric, "only": args.only, "quick": args.quick,
              "quality_alpha": QUALITY_ALPHA, "noise": list(NOISE),
              "small_sizes": list(SMALL_SIZES), "small_epochs": 2 * epochs, "long_epochs": 2 * epochs,
              "attacks": {label: {"attack": a, "options": o} for label, (a, o) in ATTACKS.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) if args.jobs > 1 else _Serial() as pool:
        for result in pool.imap_unordered(seed_task, tasks):
            results.append(result)
            console.print(f"{result[0]} seed {result[1]}: {result[3]:.0f} s ({len(results)} of {len(tasks)})")
            # Written after every task, so a long run can be read (``complete: false``) before it ends.
            report = build_report(config, results, len(tasks), time.perf_counter() - started)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report, console)
    failed = [name for name, verdict in report["targets"].items() if not verdict["pass"]]
    console.print(f"targets: {len(report['targets']) - len(failed)} of {len(report['targets'])} pass (worst seed)"
                  + (f"; failing: {', '.join(failed)}" if failed else ""))


class _Serial:
    """``Pool``'s ``imap_unordered`` in this process (``--jobs 1``)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap_unordered(self, fn: Callable[[Task], Result], tasks: Iterable[Task]) -> Iterator[Result]:
        return map(fn, tasks)


def build_report(config: dict, results: list[Result], tasks: int,
                 seconds: float) -> dict:
    """The JSON report of the tasks done so far (``complete`` once all ``tasks`` are)."""
    per_seed: dict[str, dict[int, dict[str, float]]] = {}
    for partition, seed, figures, _ in results:
        per_seed.setdefault(partition, {})[seed] = figures
    figures, targets = summarise(per_seed)
    return {"config": config, "complete": len(results) == tasks, "tasks_done": len(results), "tasks": tasks,
            "figures": figures, "targets": targets, "seconds": seconds,
            "seconds_per_task": {f"{p}/{s}": t for p, s, _, t in results}}

if __name__ == "__main__":
    main()
