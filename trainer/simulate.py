r"""The in-process swarm: N nodes x E epochs of train, commit, check, elect, merge, score, settle.

One epoch ``e`` with global parameters ``theta_e`` (all nodes start from ``theta_0`` built
with ``seed``); the *active* nodes are those not suspended (all of them without money):

1. **Train.** Active node ``i`` loads ``theta_e`` and trains on its private train split with
   the training seed ``s(seed, e, i)``.  A rogue (:class:`Rogue`, each with its own attack)
   under a *data* attack trains on its poisoned labels (``flip_labels``, fixed per node
   for the run); under a *model* attack it trains honestly and then commits
   ``attack(honest_i, previous=theta_e, peers=..., prior=theta_{e-1}, own=...)`` (``prior``
   is what ``extrapolated`` replays, ``theta_{-1} = theta_0``; ``own``, its own previous
   commit carried onto ``theta_e``, is what ``replay_own`` replays, so in its first epoch
   it commits the honest update).  Which peers it sees is ``attack_view``:

   * ``"previous"`` (default, what the chain-backed swarm allows): nodes commit hashes
     before any file is served, so a rogue only knows the honest updates of epoch
     ``e - 1``; it sees them carried onto ``theta_e`` by :func:`trainer.attacks.rebase`.
     In epoch 0 there are none: an attack that reads peers (``needs_peers``, i.e. ALIE)
     commits the honest update unchanged; the others need no peers and run as usual.
   * ``"current"``: the honest updates of epoch ``e`` itself, the omniscient attacker of
     the literature (an upper bound no real rogue reaches).
2. **Check.** With ``copy_cosine`` set, an update whose step copies the previous merged
   step (:func:`trainer.validity.copies`) is rejected: it is neither merged
   nor scored nor paid this epoch; so is, with ``sign_balance`` set, an update whose step is
   one-sided (:func:`trainer.validity.one_sided_steps`: its sign balance far from the
   epoch's median, the "mean +- z * std" family). The
   others are the epoch's *participants*.
3. **Elect.** The leader ``a`` is drawn uniformly among the active nodes (honest and rogue
   alike, as the chain cannot tell them apart) with the epoch seed ``s(seed, e)``. A leader
   whose own update was rejected cannot lead (the contract takes a merge only if it holds
   the leader's own update), so leadership fails over, as the contract's ``failover`` does,
   to the next node in commit order whose update is valid (:func:`elect_leader`).
4. **Merge.** ``theta_{e+1} = merge(rule, participants' updates, previous=theta_e,
   weights=n_train, anchor=a)``.
5. **Score and settle.** Every active node validates: it values the epoch's merge
   (:mod:`trainer.scoring`; by default, ``absent="share"``, ``u(S)`` is the model moved by
   the part of the merged step that came from coalition ``S``, each member keeping the
   coefficient the merge gave it; with ``public_steps``, a member absent from ``S`` still
   moves the model by the *public part* of its step, its projection on the span of the
   previous epoch's merged updates, so nobody is paid for what everyone knew) on *its
   own* validation rows with the scorer seeded
   by the epoch seed, so all read the same coalitions, and one pooled forward pass serves
   them all (:class:`trainer.scoring.ValidatorUtilities`). A rogue with a report attack
   (``"lying"``) sends a forged vector instead. With an ``economy`` the reports are
   settled by :class:`trainer.ledger.Ledger`, i.e. by ``swarmtoken.rewards.settle`` and
   ``strikes_after`` exactly as the contract does: per-node payouts, smoothed scores,
   standing and strikes; a node reaching ``suspend_after`` strikes is suspended and takes
   no further part. ``EpochRecord.scores`` is the honest validators' view: with
   ``validation="union"`` (default) the size-weighted mean of their scores, which by the
   linearity of the Shapley value in ``u`` *is* the score of the size-weighted mix of
   their (class-balanced) utilities, a utility on their pooled rows, and with
   ``"median"`` their coordinate-wise median.
6. **Report.** ``theta_{e+1}`` is evaluated on the global held-out test set.

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

from trainer.attacks import (ATTACKS, REPORT_ATTACKS, apply_attack, flip_labels, is_data_attack, needs_own, needs_peers,
                             rebase)
from trainer.data import Dataset, SwarmSplit, load_dataset, split_swarm
from trainer.ledger import Economy, EpochMoney, Ledger, Replay, SettlementInput, kept_payouts, replay
from trainer.merges import DEFAULT_MERGE
from trainer.merges import merge as merge_updates
from trainer.models import build_model
from trainer.params import StateDict
from trainer.scoring import DEFAULT_METRIC, ValidatorUtilities, score, swarm_absent
from trainer.training import Metrics, TrainConfig, evaluate, train_local
from trainer.validity import (DEFAULT_COPY_COSINE, DEFAULT_COPY_SINE_RATIO, DEFAULT_SIGN_BALANCE, balance_deviations,
                              copies, is_one_sided, step_cosines)

__all__ = ["ATTACK_VIEWS", "DEFAULT_MERGE", "VALIDATIONS", "EpochRecord", "Rogue", "SimulationConfigError",
           "SimulationResult", "centralized", "derive_seed", "elect_leader", "local_only", "simulate"]

VALIDATIONS = ("union", "median")
"""How the honest validators' scores combine into ``EpochRecord.scores``: one pooled
utility (the size-weighted mean of their scores), or their coordinate-wise median."""

ATTACK_VIEWS = ("previous", "current")
"""Which honest updates a model attack sees: the previous epoch's (rebased; the protocol's
commit-then-reveal allows no more) or the current epoch's (omniscient upper bound)."""


class SimulationConfigError(ValueError):
    """A :func:`simulate` argument is out of range or inconsistent; the message names it."""


@dataclass(frozen=True)
class Rogue:
    """One rogue node: what it commits, ``attack`` (a name in ``trainer.attacks.ATTACKS``
    with its ``options``; ``None``: it trains and commits honestly), and what it reports,
    ``report`` (a name in ``REPORT_ATTACKS`` such as ``"lying"``; ``None``: the scores it
    computed)."""

    node: int
    attack: str | None = None
    options: Mapping[str, object] = field(default_factory=dict)
    report: str | None = None


@dataclass(frozen=True)
class EpochRecord:
    """What one swarm epoch produced.

    ``scores[i]`` is node ``i``'s contribution score as the honest validators see it (see
    ``VALIDATIONS``; 0 for a node that was not merged, ``None`` when scoring is off, NaN
    when no honest validator is left); ``evaluations`` counts the distinct coalitions the
    scorer evaluated. ``participants`` are the merged nodes, ``rejected`` those whose update
    failed the copy or the sign-balance check, ``reporters`` the validators (every node not
    suspended);
    ``validator_scores[r, j]`` is what reporter ``r`` computed for participant ``j`` on its
    own rows, before any report attack; ``money`` is the epoch's settlement;
    ``step_cosines[i]`` is the cosine of node ``i``'s step with the previous merged step
    (what the copy check compares with ``copy_cosine``), ``balance_deviations[i]`` how far
    its sign balance lies from the epoch's median (what the sign-balance check compares
    with ``sign_balance``).
    """

    epoch: int
    leader: int
    test: Metrics
    scores: np.ndarray | None
    evaluations: int
    seconds: float
    participants: tuple[int, ...] = ()
    rejected: tuple[int, ...] = ()
    reporters: tuple[int, ...] = ()
    validator_scores: np.ndarray | None = None
    money: EpochMoney | None = None
    step_cosines: Mapping[int, float] = field(default_factory=dict)
    balance_deviations: Mapping[int, float] = field(default_factory=dict)


@dataclass
class SimulationResult:
    """The outcome of :func:`simulate`: per-epoch records, the rogues and the final model."""

    rogue_ids: list[int]
    n_train: list[int]
    epochs: list[EpochRecord] = field(default_factory=list)
    final_state: StateDict = field(default_factory=dict)
    rogues: list[Rogue] = field(default_factory=list)
    economy: Economy | None = None

    @property
    def final(self) -> Metrics:
        """Global test metrics after the last epoch."""
        return self.epochs[-1].test

    @property
    def honest_ids(self) -> list[int]:
        """Nodes that are not rogue."""
        return [i for i in range(len(self.n_train)) if i not in self.rogue_ids]

    def accumulated_scores(self) -> np.ndarray:
        """Per-node scores summed over all epochs.

        Raises :class:`SimulationConfigError` when the run was made without a scorer.
        """
        if any(record.scores is None for record in self.epochs):
            raise SimulationConfigError("this run was simulated with scorer=None: there are no scores")
        return np.sum([record.scores for record in self.epochs], axis=0)

    def _money(self) -> list[EpochMoney]:
        money = [record.money for record in self.epochs]
        if any(m is None for m in money):
            raise SimulationConfigError("this run was simulated without money (scorer=None or economy=None)")
        return money  # type: ignore[return-value]

    def payouts(self) -> list[list[int]]:
        """Wei paid per epoch and node (``payouts()[e][i]``): what epoch ``e`` credited node
        ``i``, unless a suspension forfeited it before ``i`` could claim it
        (:func:`trainer.ledger.kept_payouts`).

        Raises :class:`SimulationConfigError` when the run was not settled.
        """
        return kept_payouts(self._money())

    def total_payouts(self) -> list[int]:
        """Wei paid per node over the whole run."""
        return [sum(column) for column in zip(*self.payouts(), strict=True)]

    def suspended(self) -> list[int]:
        """Nodes suspended by the end of the run."""
        return [i for i, gone in enumerate(self._money()[-1].suspended) if gone]

    def replay(self, report_attacks: Mapping[int, str], economy: Economy | None = None) -> Replay:
        """Settle this run again as if nodes ``report_attacks`` (node id -> report attack)
        had reported that way, with ``economy`` (default: the run's). Reports never feed back
        into the model, so this is exact unless the replay suspends other members than the
        run did (``Replay.diverged``). See :func:`trainer.ledger.replay`."""
        money = self._money()
        # In the simulator every active node commits and reports: the reporters are the committers.
        inputs = [SettlementInput(r.reporters, r.participants, r.leader, r.reporters, r.validator_scores)  # type: ignore[arg-type]
                  for r in self.epochs]
        return replay(self.n_train, inputs, [m.suspended for m in money], economy or self.economy,  # type: ignore[arg-type]
                      report_attacks)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (no tensors)."""
        return {"rogue_ids": self.rogue_ids, "n_train": self.n_train,
                "rogues": [{"node": r.node, "attack": r.attack, "options": dict(r.options), "report": r.report}
                           for r in self.rogues],
                "epochs": [{"epoch": r.epoch, "leader": r.leader, "test": r.test.as_dict(),
                            "scores": None if r.scores is None else r.scores.tolist(),
                            "participants": list(r.participants), "rejected": list(r.rejected),
                            "money": None if r.money is None else r.money.as_dict(),
                            "evaluations": r.evaluations, "seconds": r.seconds} for r in self.epochs]}


def derive_seed(seed: int, stream: str, *keys: int) -> int:
    """A 32-bit seed for sub-task ``keys`` (epoch, node, ...) of random ``stream`` of run ``seed``.

    ``derive_seed(seed, "epoch", e)`` is epoch ``e``'s seed: it draws the leader and seeds
    the scorer, as the chain's epoch randomness would.  The stream name is mixed in by its
    CRC-32, which unlike ``hash`` is the same in every process.
    """
    return int(np.random.SeedSequence([seed, zlib.crc32(stream.encode()), *keys]).generate_state(1)[0])


def elect_leader(active: Sequence[int], participants: Sequence[int], epoch_seed: int) -> int:
    """The epoch's leader: drawn uniformly among ``active`` (in commit order) with
    ``epoch_seed``, then, while the drawn node's update is not among ``participants``, the
    next node in commit order, cyclically: the contract's fail-over past leaders that cannot
    publish a merge holding their own update. Why: an anchored rule (``fltrust``) needs the
    leader's update, and a node that committed a rejected one must not anchor the merge.
    With no participant at all the drawn node is returned (there is nothing to merge)."""
    drawn = int(np.random.default_rng(epoch_seed).integers(len(active)))
    valid = set(participants)
    in_turn = [active[(drawn + k) % len(active)] for k in range(len(active))]
    return next((node for node in in_turn if node in valid), active[drawn])


def _resolve_split(dataset: str | Dataset | SwarmSplit, n_nodes: int, partition: str, alpha: float,
                   seed: int) -> SwarmSplit:
    if isinstance(dataset, SwarmSplit):
        if len(dataset.nodes) != n_nodes:
            raise SimulationConfigError(f"n_nodes={n_nodes} but the given split has {len(dataset.nodes)} nodes")
        return dataset
    data = load_dataset(dataset, seed=seed) if isinstance(dataset, str) else dataset
    return split_swarm(data, n_nodes, partition=partition, alpha=alpha, seed=seed)


def _resolve_rogues(n_nodes: int, rogue_fraction: float, rogue_ids: Sequence[int] | None, attack: str | None,
                    attack_options: Mapping[str, object] | None, rogues: Sequence[Rogue] | None,
                    seed: int) -> list[Rogue]:
    """The rogues, given one by one (``rogues``) or all with one attack (the other arguments)."""
    if rogues is not None:
        if attack is not None or rogue_ids is not None or rogue_fraction or attack_options:
            raise SimulationConfigError("give rogues= or attack=/rogue_ids=/rogue_fraction=/attack_options=, "
                                        "not both")
        resolved = list(rogues)
        nodes = [r.node for r in resolved]
        if len(set(nodes)) != len(nodes):
            raise SimulationConfigError(f"rogues name a node twice: {nodes}")
        for r in resolved:
            if not isinstance(r.node, int) or not 0 <= r.node < n_nodes:
                raise SimulationConfigError(f"rogue node {r.node!r} must lie in [0, {n_nodes})")
            if r.attack is None and r.report is None:
                raise SimulationConfigError(f"rogue {r.node} has neither an attack nor a report attack")
            if r.attack is not None:
                is_data_attack(r.attack)  # raises UnknownAttackError for an unknown name
            if r.report is not None and r.report not in REPORT_ATTACKS:
                raise SimulationConfigError(f"rogue {r.node}: unknown report attack {r.report!r}; "
                                            f"known: {', '.join(sorted(REPORT_ATTACKS))}")
        resolved.sort(key=lambda r: r.node)
    else:
        if rogue_ids is not None:
            ids = sorted(set(int(i) for i in rogue_ids))
            if any(not 0 <= i < n_nodes for i in ids):
                raise SimulationConfigError(f"rogue_ids {list(rogue_ids)} must lie in [0, {n_nodes})")
        else:
            if not 0 <= rogue_fraction < 1:
                raise SimulationConfigError(f"rogue_fraction must be in [0, 1), got {rogue_fraction}")
            rng = np.random.default_rng(derive_seed(seed, "rogues"))
            ids = sorted(int(i) for i in rng.choice(n_nodes, size=round(rogue_fraction * n_nodes), replace=False))
        if ids and attack is None:
            raise SimulationConfigError(f"rogue nodes {ids} need an attack; known attacks: {', '.join(sorted(ATTACKS))}")
        if attack is not None:
            is_data_attack(attack)
        resolved = [Rogue(i, attack, dict(attack_options or {})) for i in ids]
    if len(resolved) >= n_nodes:
        raise SimulationConfigError(f"at least one honest node is needed, got rogues "
                                    f"{[r.node for r in resolved]} of {n_nodes}")
    return resolved


def simulate(dataset: str | Dataset | SwarmSplit = "digits", n_nodes: int = 8, epochs: int = 20, *,
             merge: str = DEFAULT_MERGE, scorer: str | None = "auto", attack: str | None = None,
             rogue_fraction: float = 0.0, rogue_ids: Sequence[int] | None = None,
             rogues: Sequence[Rogue] | None = None, alpha: float = 0.5,
             partition: str = "dirichlet", model: str = "mlp", train: TrainConfig | None = None,
             seed: int = 0, merge_options: Mapping[str, object] | None = None,
             attack_options: Mapping[str, object] | None = None,
             scorer_options: Mapping[str, object] | None = None,
             model_options: Mapping[str, object] | None = None,
             utility_metric: str = DEFAULT_METRIC, validation: str = "union",
             attack_view: str = "previous", economy: Economy | None = Economy(),
             copy_cosine: float | None = DEFAULT_COPY_COSINE,
             copy_sine_ratio: float | None = DEFAULT_COPY_SINE_RATIO, absent: str | None = None,
             sign_balance: float | None = DEFAULT_SIGN_BALANCE, public_steps: bool = False) -> SimulationResult:
    """Run a swarm of ``n_nodes`` for ``epochs`` epochs in process (see the module docstring).

    ``dataset`` is a registered name, a :class:`Dataset` (partitioned here with
    ``partition``/``alpha``/``seed``) or a ready :class:`SwarmSplit` (used as is, so
    benchmarks compare merges on the same split).  Rogues are ``rogues`` (one
    :class:`Rogue` each: its own attack, options and report attack), or all with one
    ``attack`` and ``attack_options``: ``rogue_ids`` or, if not given,
    ``round(rogue_fraction * n_nodes)`` nodes drawn with the seed.  ``scorer=None`` skips
    scoring and settlement (faster, for accuracy-only runs); ``validation`` is ``"union"``
    or ``"median"`` (step 4 of the module docstring); ``attack_view`` is ``"previous"`` or
    ``"current"``, the peer updates a model attack sees (step 1). ``economy`` settles every
    epoch (step 5; ``None``: no money); ``copy_cosine`` is the threshold of the copy check
    (step 2; ``None``: off) and ``copy_sine_ratio`` its bar relative to the epoch's other
    steps (``trainer.validity.copies``; ``None``: the cosine alone), ``sign_balance`` that
    of the sign-balance check (step 2; ``None``: off); ``absent`` is what a node outside a
    coalition is in the utility's merge (``trainer.scoring.ABSENT``; by default what the nodes use,
    ``trainer.scoring.swarm_absent(merge)``: ``"share"``, each node's part of the merged
    step, for a rule whose step combines the updates such as ``fltrust_median``, else
    ``"previous"``); ``public_steps`` credits nobody for the part of a step that lies in the
    span of the previous epoch's merged updates (step 5; needs ``absent="share"``;
    measured, not what the swarm does: see ``benchmarks/fairness.py``).

    Raises :class:`SimulationConfigError` for inconsistent arguments; the merge, attack,
    scorer and model registries raise their own typed errors for unknown names.
    """
    if n_nodes < 2 or epochs < 1:
        raise SimulationConfigError(f"need n_nodes >= 2 and epochs >= 1, got {n_nodes} and {epochs}")
    if validation not in VALIDATIONS:
        raise SimulationConfigError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    if attack_view not in ATTACK_VIEWS:
        raise SimulationConfigError(f"attack_view must be one of {ATTACK_VIEWS}, got {attack_view!r}")
    if copy_cosine is not None and not 0 < copy_cosine <= 1:
        raise SimulationConfigError(f"copy_cosine must be in (0, 1] or None, got {copy_cosine!r}")
    if copy_sine_ratio is not None and not copy_sine_ratio >= 0:
        raise SimulationConfigError(f"copy_sine_ratio must be >= 0 or None, got {copy_sine_ratio!r}")
    if sign_balance is not None and not 0 < sign_balance <= 2:
        raise SimulationConfigError(f"sign_balance must be in (0, 2] or None, got {sign_balance!r}")
    absent = swarm_absent(merge) if absent is None else absent
    if public_steps and absent != "share":
        raise SimulationConfigError(f"public_steps needs absent='share' (a merge whose step combines the updates, "
                                    f"such as fltrust_median), got absent={absent!r}")
    train = train or TrainConfig()
    split = _resolve_split(dataset, n_nodes, partition, alpha, seed)
    rogue_list = _resolve_rogues(n_nodes, rogue_fraction, rogue_ids, attack, attack_options, rogues, seed)
    by_node = {r.node: r for r in rogue_list}
    labels = [flip_labels(node.y_train, split.n_classes, derive_seed(seed, "label_flip", i))
              if i in by_node and by_node[i].attack is not None and is_data_attack(by_node[i].attack)
              else node.y_train for i, node in enumerate(split.nodes)]
    forgers = {i: r for i, r in by_node.items() if r.attack is not None and not is_data_attack(r.attack)}
    liars = {i: r.report for i, r in by_node.items() if r.report is not None}
    honest = [i for i in range(n_nodes) if i not in by_node]
    n_train = [node.n_train for node in split.nodes]
    ledger = Ledger(n_train, economy) if economy is not None and scorer is not None else None

    worker = build_model(model, split.n_features, split.n_classes, seed, **dict(model_options or {}))
    global_state = _clone(worker.state_dict())
    prior_state = global_state  # the global model the previous epoch started from
    result = SimulationResult(rogue_ids=sorted(by_node), n_train=n_train, rogues=rogue_list,
                              economy=economy if ledger is not None else None)
    last_round: tuple[StateDict, list[StateDict]] | None = None  # (theta_{e-1}, honest updates of e-1)
    merged_round: tuple[StateDict, list[StateDict]] | None = None  # (theta_{e-1}, merged updates of e-1)
    own_round: dict[int, tuple[StateDict, StateDict]] = {}  # rogue -> (the model it last trained from, its commit)
    for epoch in range(epochs):
        started = time.perf_counter()
        active = [i for i in range(n_nodes) if ledger is None or not ledger.suspended[i]]
        if not active:
            break
        updates: dict[int, StateDict] = {}
        for i in active:
            worker.load_state_dict(global_state)
            train_local(worker, split.nodes[i].X_train, labels[i], train, derive_seed(seed, "train", epoch, i))
            updates[i] = _clone(worker.state_dict())
        honest_updates = [updates[i] for i in honest if i in updates]
        if attack_view == "current":
            peers: list[StateDict] | None = honest_updates
        elif last_round is not None:
            peers = rebase(last_round[1], last_round[0], global_state)
        else:
            peers = None  # epoch 0 of the "previous" view: no peer updates known yet
        for i in active:
            if i not in forgers:
                continue
            attack: str = forgers[i].attack  # type: ignore[assignment]
            if (peers is not None or not needs_peers(attack)) and (i in own_round or not needs_own(attack)):
                own = rebase([own_round[i][1]], own_round[i][0], global_state)[0] if i in own_round else None
                updates[i] = apply_attack(attack, updates[i], previous=global_state, peers=peers or [],
                                          seed=derive_seed(seed, "attack", epoch, i), prior=prior_state, own=own,
                                          **dict(forgers[i].options))
            own_round[i] = (global_state, updates[i])
        if forgers:
            last_round = (global_state, honest_updates)
        cosines = step_cosines([updates[i] for i in active], global_state, prior_state)
        balances = balance_deviations([updates[i] for i in active], global_state)
        copied = (copies(cosines, copy_cosine, copy_sine_ratio) if copy_cosine is not None
                  else [False] * len(active))
        invalid = [copy or (sign_balance is not None and is_one_sided(b, sign_balance))
                   for copy, b in zip(copied, balances, strict=True)]
        participants = [i for i, bad in zip(active, invalid, strict=True) if not bad]
        rejected = [i for i, bad in zip(active, invalid, strict=True) if bad]
        epoch_seed = derive_seed(seed, "epoch", epoch)
        leader = elect_leader(active, participants, epoch_seed)
        anchor = participants.index(leader) if leader in participants else None
        merged = global_state
        if participants:
            merged = merge_updates(merge, [updates[i] for i in participants], previous=global_state,
                                   weights=[n_train[i] for i in participants], anchor=anchor,
                                   **dict(merge_options or {}))
        scores, computed, evaluations, money = None, None, 0, None
        if scorer is not None:
            public = (rebase(merged_round[1], merged_round[0], global_state)
                      if merged_round is not None and merged_round[1] else None)
            computed, evaluations = _validator_scores(
                scorer, worker, global_state, [updates[i] for i in participants], [n_train[i] for i in participants],
                [(split.nodes[i].X_val, split.nodes[i].y_val) for i in active], seed=epoch_seed,
                metric=utility_metric, rule=merge, anchor=anchor, merge_options=merge_options,
                scorer_options=scorer_options, absent=absent, public=public)
            scores = _honest_view(computed, active, participants, honest, n_nodes, validation,
                                  [len(split.nodes[i].y_val) for i in active])
            if ledger is not None:
                money = ledger.settle(active, participants, leader, active, computed, liars)
        if public_steps:  # the next epoch's public steps (kept only when asked for: n models)
            merged_round = (global_state, [updates[i] for i in participants])
        prior_state, global_state = global_state, merged
        worker.load_state_dict(global_state)
        result.epochs.append(EpochRecord(epoch=epoch, leader=leader, test=evaluate(worker, *split.test),
                                         scores=scores, evaluations=evaluations,
                                         seconds=time.perf_counter() - started, participants=tuple(participants),
                                         rejected=tuple(rejected), reporters=tuple(active),
                                         step_cosines=dict(zip(active, cosines, strict=True)),
                                         balance_deviations=dict(zip(active, balances, strict=True)),
                                         validator_scores=computed, money=money))
    result.final_state = global_state
    return result


def _validator_scores(scorer: str, worker: nn.Module, previous: StateDict, updates: list[StateDict],
                      weights: list[int], validators: list[tuple[torch.Tensor, torch.Tensor]], *, seed: int,
                      metric: str, rule: str, anchor: int | None, merge_options: Mapping[str, object] | None,
                      scorer_options: Mapping[str, object] | None, absent: str,
                      public: list[StateDict] | None = None) -> tuple[np.ndarray, int]:
    """``(validators, participants)`` scores, each validator valuing the epoch's merge on its
    own rows with the epoch seed (so all read the same coalitions, evaluated once for all),
    and the number of distinct coalitions evaluated."""
    if not updates:
        return np.zeros((len(validators), 0)), 0
    shared = ValidatorUtilities(worker, previous, updates, weights, validators, metric, rule=rule, anchor=anchor,
                                options=merge_options, absent=absent, public=public)
    values = [score(scorer, game, len(updates), seed=seed, **dict(scorer_options or {})) for game in shared.games]
    return np.asarray(values, dtype=np.float64), shared.evaluations


def _honest_view(computed: np.ndarray, reporters: list[int], participants: list[int], honest: list[int],
                 n_nodes: int, validation: str, sizes: list[int]) -> np.ndarray:
    """``EpochRecord.scores``: the honest reporters' scores per node, pooled (``"union"``: by
    linearity the size-weighted mean is the score of the size-weighted mix of their utilities) or their median."""
    rows = [r for r, node in enumerate(reporters) if node in honest]
    out = np.zeros(n_nodes)
    if not rows:
        out[participants] = np.nan
        return out
    if validation == "union":
        weights = np.asarray([sizes[r] for r in rows], dtype=np.float64)
        view = weights @ computed[rows] / weights.sum()
    else:
        view = np.median(computed[rows], axis=0)
    out[participants] = view
    return out


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
