r"""The in-process swarm: N nodes x E epochs of train, commit, elect, merge, score, in one process.

One epoch ``e`` with global parameters ``theta_e`` (all nodes start from ``theta_0`` built
with ``seed``):

1. **Train.** Node ``i`` loads ``theta_e`` and trains on its private train split with the
   training seed ``s(seed, e, i)``.  A rogue node under a *data* attack trains on its
   poisoned labels (``flip_labels``, fixed per node for the run); under a *model* attack it
   trains honestly and then commits ``attack(honest_i, previous=theta_e, peers=...)``.
   Which peers it sees is ``attack_view``:

   * ``"previous"`` (default, what the chain-backed swarm allows): nodes commit hashes
     before any file is served, so a rogue only knows the honest updates of epoch
     ``e - 1``; it sees them carried onto ``theta_e`` by :func:`trainer.attacks.rebase`.
     In epoch 0 there are none: an attack that reads peers (``needs_peers``, i.e. ALIE)
     commits the honest update unchanged; the others need no peers and run as usual.
   * ``"current"``: the honest updates of epoch ``e`` itself, the omniscient attacker of
     the literature (an upper bound no real rogue reaches).
2. **Elect.** The leader ``a`` is drawn uniformly among all committed nodes (honest and
   rogue alike, as the chain cannot tell them apart) with the epoch seed ``s(seed, e)``.
3. **Merge.** ``theta_{e+1} = merge(rule, updates, previous=theta_e, weights=n_train,
   anchor=a)``.
4. **Score.** The validators are the honest nodes (the simulator models rogue
   *trainers*, not lying validators).  With ``validation="union"`` (default) one utility
   ``u(S)`` (see :mod:`trainer.scoring`) is evaluated on the union of their validation
   sets; by the linearity of the Shapley value in ``u`` this equals the sample-weighted
   mean of the scores each validator would compute on its own rows, at 1/|validators|
   of the cost.  With ``validation="median"`` every validator scores on its own rows and
   the swarm score is the coordinate-wise median over validators, the robust aggregate
   the chain uses so that one lying validator cannot move money.  Either way the scorer
   is seeded with the epoch seed, so all validators sample the same coalitions.
5. **Report.** ``theta_{e+1}`` is evaluated on the global held-out test set.

Seeds ``s(...)`` come from :func:`derive_seed`, a ``numpy.random.SeedSequence`` over the run
seed, a named stream ("epoch", "train", "attack", ...) and integer keys, so the run is a
pure function of its arguments (the same call gives bit-identical scores and parameters)
and no two random streams share a seed.

Baselines for the benchmarks: :func:`local_only` (each node alone, for the same number of
local steps as its whole swarm run) and :func:`centralized` (one model on the pooled train
data, for the same number of passes over the data).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from trainer.attacks import ATTACKS, apply_attack, flip_labels, is_data_attack, needs_peers, rebase
from trainer.data import Dataset, SwarmSplit, load_dataset, split_swarm
from trainer.merges import merge as merge_updates
from trainer.models import build_model
from trainer.params import StateDict
from trainer.scoring import make_utility, score
from trainer.training import Metrics, TrainConfig, evaluate, train_local

__all__ = ["ATTACK_VIEWS", "VALIDATIONS", "EpochRecord", "SimulationConfigError", "SimulationResult", "centralized",
           "derive_seed", "local_only", "simulate"]


VALIDATIONS = ("union", "median")
"""How validators' data is used to score: one pooled utility, or a median of per-validator scores."""

ATTACK_VIEWS = ("previous", "current")
"""Which honest updates a model attack sees: the previous epoch's (rebased; the protocol's
commit-then-reveal allows no more) or the current epoch's (omniscient upper bound)."""


class SimulationConfigError(ValueError):
    """A :func:`simulate` argument is out of range or inconsistent; the message names it."""


@dataclass(frozen=True)
class EpochRecord:
    """What one swarm epoch produced.

    ``scores[i]`` is node ``i``'s contribution score this epoch (``None`` when scoring is
    off); ``evaluations`` counts the utility evaluations the scorer spent.
    """

    epoch: int
    leader: int
    test: Metrics
    scores: np.ndarray | None
    evaluations: int
    seconds: float


@dataclass
class SimulationResult:
    """The outcome of :func:`simulate`: per-epoch records, the rogues and the final model."""

    rogue_ids: list[int]
    n_train: list[int]
    epochs: list[EpochRecord] = field(default_factory=list)
    final_state: StateDict = field(default_factory=dict)

    @property
    def final(self) -> Metrics:
        """Global test metrics after the last epoch."""
        return self.epochs[-1].test

    @property
    def honest_ids(self) -> list[int]:
        """Nodes that are not rogue."""
        return [i for i in range(len(self.n_train)) if i not in self.rogue_ids]

    def accumulated_scores(self) -> np.ndarray:
        """Per-node scores summed over all epochs, what the payouts add up to.

        Raises :class:`SimulationConfigError` when the run was made without a scorer.
        """
        if any(record.scores is None for record in self.epochs):
            raise SimulationConfigError("this run was simulated with scorer=None: there are no scores")
        return np.sum([record.scores for record in self.epochs], axis=0)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (no tensors)."""
        return {"rogue_ids": self.rogue_ids, "n_train": self.n_train,
                "epochs": [{"epoch": r.epoch, "leader": r.leader, "test": r.test.as_dict(),
                            "scores": None if r.scores is None else r.scores.tolist(),
                            "evaluations": r.evaluations, "seconds": r.seconds} for r in self.epochs]}


def derive_seed(seed: int, stream: str, *keys: int) -> int:
    """A 32-bit seed for sub-task ``keys`` (epoch, node, ...) of random ``stream`` of run ``seed``.

    ``derive_seed(seed, "epoch", e)`` is epoch ``e``'s seed: it draws the leader and seeds
    the scorer, as the chain's epoch randomness would.  The stream name is mixed in by its
    CRC-32, which unlike ``hash`` is the same in every process.
    """
    return int(np.random.SeedSequence([seed, zlib.crc32(stream.encode()), *keys]).generate_state(1)[0])


def _resolve_split(dataset: str | Dataset | SwarmSplit, n_nodes: int, partition: str, alpha: float,
                   seed: int) -> SwarmSplit:
    if isinstance(dataset, SwarmSplit):
        if len(dataset.nodes) != n_nodes:
            raise SimulationConfigError(f"n_nodes={n_nodes} but the given split has {len(dataset.nodes)} nodes")
        return dataset
    data = load_dataset(dataset, seed=seed) if isinstance(dataset, str) else dataset
    return split_swarm(data, n_nodes, partition=partition, alpha=alpha, seed=seed)


def _resolve_rogues(n_nodes: int, rogue_fraction: float, rogue_ids: Sequence[int] | None,
                    attack: str | None, seed: int) -> list[int]:
    if rogue_ids is not None:
        rogues = sorted(set(int(i) for i in rogue_ids))
        if any(not 0 <= i < n_nodes for i in rogues):
            raise SimulationConfigError(f"rogue_ids {list(rogue_ids)} must lie in [0, {n_nodes})")
    else:
        if not 0 <= rogue_fraction < 1:
            raise SimulationConfigError(f"rogue_fraction must be in [0, 1), got {rogue_fraction}")
        count = round(rogue_fraction * n_nodes)
        rng = np.random.default_rng(derive_seed(seed, "rogues"))
        rogues = sorted(int(i) for i in rng.choice(n_nodes, size=count, replace=False))
    if len(rogues) >= n_nodes:
        raise SimulationConfigError(f"at least one honest node is needed, got rogues {rogues} of {n_nodes}")
    if rogues and attack is None:
        raise SimulationConfigError(f"rogue nodes {rogues} need an attack; "
                                    f"known attacks: {', '.join(sorted(ATTACKS))}")
    return rogues


def simulate(dataset: str | Dataset | SwarmSplit = "digits", n_nodes: int = 8, epochs: int = 20, *,
             merge: str = "fltrust", scorer: str | None = "auto", attack: str | None = None,
             rogue_fraction: float = 0.0, rogue_ids: Sequence[int] | None = None, alpha: float = 0.5,
             partition: str = "dirichlet", model: str = "mlp", train: TrainConfig | None = None,
             seed: int = 0, merge_options: Mapping[str, object] | None = None,
             attack_options: Mapping[str, object] | None = None,
             scorer_options: Mapping[str, object] | None = None,
             model_options: Mapping[str, object] | None = None,
             utility_metric: str = "loss", validation: str = "union",
             attack_view: str = "previous") -> SimulationResult:
    """Run a swarm of ``n_nodes`` for ``epochs`` epochs in process (see the module docstring).

    ``dataset`` is a registered name, a :class:`Dataset` (partitioned here with
    ``partition``/``alpha``/``seed``) or a ready :class:`SwarmSplit` (used as is, so
    benchmarks compare merges on the same split).  Rogues are ``rogue_ids`` or, if not
    given, ``round(rogue_fraction * n_nodes)`` nodes drawn with the seed.  ``scorer=None``
    skips scoring (faster, for accuracy-only runs); ``validation`` is ``"union"`` or
    ``"median"`` (step 4 of the module docstring); ``attack_view`` is ``"previous"`` or
    ``"current"``, the peer updates a model attack sees (step 1).

    Raises :class:`SimulationConfigError` for inconsistent arguments; the merge, attack,
    scorer and model registries raise their own typed errors for unknown names.
    """
    if n_nodes < 2 or epochs < 1:
        raise SimulationConfigError(f"need n_nodes >= 2 and epochs >= 1, got {n_nodes} and {epochs}")
    if validation not in VALIDATIONS:
        raise SimulationConfigError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    if attack_view not in ATTACK_VIEWS:
        raise SimulationConfigError(f"attack_view must be one of {ATTACK_VIEWS}, got {attack_view!r}")
    train = train or TrainConfig()
    split = _resolve_split(dataset, n_nodes, partition, alpha, seed)
    rogues = _resolve_rogues(n_nodes, rogue_fraction, rogue_ids, attack, seed)
    data_attack = attack is not None and is_data_attack(attack)
    labels = [flip_labels(node.y_train, split.n_classes, derive_seed(seed, "label_flip", i))
              if data_attack and i in rogues else node.y_train for i, node in enumerate(split.nodes)]
    honest = [i for i in range(n_nodes) if i not in rogues]
    validators = [(split.nodes[i].X_val, split.nodes[i].y_val) for i in honest]
    if validation == "union":
        validators = [(torch.cat([X for X, _ in validators]), torch.cat([y for _, y in validators]))]
    n_train = [node.n_train for node in split.nodes]

    worker = build_model(model, split.n_features, split.n_classes, seed, **dict(model_options or {}))
    global_state = _clone(worker.state_dict())
    result = SimulationResult(rogue_ids=rogues, n_train=n_train)
    last_round: tuple[StateDict, list[StateDict]] | None = None  # (theta_{e-1}, honest updates of e-1)
    for epoch in range(epochs):
        started = time.perf_counter()
        updates = []
        for i, node in enumerate(split.nodes):
            worker.load_state_dict(global_state)
            train_local(worker, node.X_train, labels[i], train, derive_seed(seed, "train", epoch, i))
            updates.append(_clone(worker.state_dict()))
        honest_updates = [updates[i] for i in honest]
        if attack is not None and not data_attack and rogues:
            if attack_view == "current":
                peers: list[StateDict] | None = honest_updates
            elif last_round is not None:
                peers = rebase(last_round[1], last_round[0], global_state)
            else:
                peers = None if needs_peers(attack) else []
            if peers is not None:  # else: epoch 0 of the "previous" view, nothing to attack with
                for i in rogues:
                    updates[i] = apply_attack(attack, updates[i], previous=global_state, peers=peers,
                                              seed=derive_seed(seed, "attack", epoch, i),
                                              **dict(attack_options or {}))
            last_round = (global_state, honest_updates)
        epoch_seed = derive_seed(seed, "epoch", epoch)
        leader = int(np.random.default_rng(epoch_seed).integers(n_nodes))
        merged = merge_updates(merge, updates, previous=global_state, weights=n_train, anchor=leader,
                               **dict(merge_options or {}))
        scores, evaluations = None, 0
        if scorer is not None:
            per_validator = []
            for X_val, y_val in validators:
                utility = make_utility(worker, global_state, updates, n_train, X_val, y_val, metric=utility_metric)
                per_validator.append(score(scorer, utility, n_nodes, seed=epoch_seed,
                                           **dict(scorer_options or {})))
                evaluations += utility.evaluations
            scores = np.median(np.asarray(per_validator, dtype=np.float64), axis=0)
        global_state = merged
        worker.load_state_dict(global_state)
        result.epochs.append(EpochRecord(epoch=epoch, leader=leader, test=evaluate(worker, *split.test),
                                         scores=scores, evaluations=evaluations,
                                         seconds=time.perf_counter() - started))
    result.final_state = global_state
    return result


def _clone(state: StateDict) -> StateDict:
    return {key: value.detach().clone() for key, value in state.items()}


def local_only(split: SwarmSplit, *, epochs: int = 20, model: str = "mlp", train: TrainConfig | None = None,
               seed: int = 0, model_options: Mapping[str, object] | None = None) -> list[Metrics]:
    """Each node trains alone from the swarm's initial model, reported on the global test set.

    A node makes ``epochs * train.steps_for(n_train)`` steps, exactly its local work over
    a whole swarm run, in one continuous run (its optimiser state is kept, which can only
    help it).  Returns one :class:`Metrics` per node: the baseline a node would have
    without the swarm.
    """
    train = train or TrainConfig()
    results = []
    for i, node in enumerate(split.nodes):
        net = build_model(model, split.n_features, split.n_classes, seed, **dict(model_options or {}))
        config = replace(train, steps=epochs * train.steps_for(node.n_train))
        train_local(net, node.X_train, node.y_train, config, derive_seed(seed, "local_only", i))
        results.append(evaluate(net, *split.test))
    return results


def centralized(split: SwarmSplit, *, epochs: int = 20, model: str = "mlp", train: TrainConfig | None = None,
                seed: int = 0, model_options: Mapping[str, object] | None = None) -> Metrics:
    """One model trained on all nodes' pooled train data: the ceiling a swarm aims for.

    It makes ``epochs * train.steps_for(n_pooled)`` steps, i.e. as many passes over the
    data as the swarm's nodes make over theirs.
    """
    train = train or TrainConfig()
    X, y = split.pooled_train()
    net: nn.Module = build_model(model, split.n_features, split.n_classes, seed, **dict(model_options or {}))
    config = replace(train, steps=epochs * train.steps_for(len(X)))
    train_local(net, X, y, config, derive_seed(seed, "centralized"))
    return evaluate(net, *split.test)
