"""The money of a simulated swarm: each epoch settled with the contract's reference rule.

A :class:`Ledger` keeps what the chain keeps between epochs (every member's smoothed
score, strike count, clean epochs and unclaimed balance, who is suspended, the carried
budget) and settles one epoch at a
time with :func:`swarmtoken.rewards.settle`, which is the Python reference the contract is
held to the wei; nothing here re-implements the payout rule. One epoch's inputs are the
participants (the nodes whose updates were merged, in commit order), the leader, and one
report per validator: the contribution scores it computed on its own validation rows,
clipped to ``[-1, 1]`` and sent as integers ``round(score * SCORE_SCALE)`` exactly as a
node sends them (a lying validator sends :func:`trainer.attacks.forge_report` of them).

Strikes follow :func:`swarmtoken.rewards.strikes_after` with the settlement's verdict
in quorate epochs (``Settlement.struck`` for the participants, ``Settlement.rejected`` for
committers left out); a member with ``suspend_after`` strikes (0: never) is suspended,
forfeits its unclaimed balance to the carry and, in the simulator, stops training,
committing and validating. Every member claims as soon as the contract lets it
(:func:`swarmtoken.rewards.can_claim`), so a suspension forfeits only what it could not
claim yet; :func:`kept_payouts` is what each node keeps of each epoch's credit.

:func:`replay` settles a finished run again from its recorded scores with other report
attacks (lying validators): validators' reports do not feed back into the model, so this
is exact as long as the replay suspends the same members at the same epochs as the run
did; ``Replay.diverged`` says when it does not (then the run must be simulated again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from swarmtoken.rewards import (Participant, Report, Rule, Settlement, can_claim, clean_after, settle,
                                strikes_after)
from swarmtoken.units import SCORE_SCALE, TOKEN_DECIMALS, to_fixed
from trainer.attacks import REPORT_ATTACKS, UnknownAttackError, forge_report

__all__ = ["Economy", "EconomyError", "EpochMoney", "Ledger", "Replay", "SettlementInput", "address", "kept_payouts",
           "replay"]

DEFAULT_BUDGET = 1000 * 10**TOKEN_DECIMALS


class EconomyError(ValueError):
    """An :class:`Economy` field or a ledger input is out of range; the message names it."""


@dataclass(frozen=True)
class Economy:
    """The settlement parameters of a simulated swarm: ``budget`` wei minted per epoch (the
    carry is added to it), the contract's :class:`~swarmtoken.rewards.Rule`, and
    ``suspend_after`` strikes (0: nobody is ever suspended)."""

    budget: int = DEFAULT_BUDGET
    rule: Rule = field(default_factory=Rule)
    suspend_after: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 0:
            raise EconomyError(f"budget must be a non-negative int (wei), got {self.budget!r}")
        if isinstance(self.suspend_after, bool) or not isinstance(self.suspend_after, int) \
                or not 0 <= self.suspend_after <= 255:
            raise EconomyError(f"suspend_after must be an int in [0, 255], got {self.suspend_after!r}")


@dataclass(frozen=True)
class EpochMoney:
    """One settled epoch. ``participants``, ``reporters`` are node ids; ``reports[r]`` is the
    integer score vector reporter ``r`` sent (over the participants); ``settlement`` is the
    reference rule's verdict (indexed like ``participants``). The per-node tuples are
    indexed by node id: ``payouts`` in wei (0 for non-participants), ``forfeited`` (the
    unclaimed balance a suspension in this epoch took) and ``claimed`` (what the node claimed
    after this settlement), and the state after the epoch: ``smoothed`` scores,
    ``standing``, ``strikes``, ``clean`` epochs and ``suspended``."""

    budget: int
    participants: tuple[int, ...]
    reporters: tuple[int, ...]
    reports: tuple[tuple[int, ...], ...]
    settlement: Settlement
    payouts: tuple[int, ...]
    smoothed: tuple[int, ...]
    standing: tuple[bool, ...]
    strikes: tuple[int, ...]
    suspended: tuple[bool, ...]
    forfeited: tuple[int, ...]
    claimed: tuple[int, ...]
    clean: tuple[int, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (wei as ints; JSON has no size limit on them)."""
        return {"budget": self.budget, "participants": list(self.participants), "reporters": list(self.reporters),
                "reports": [list(r) for r in self.reports], "scores": list(self.settlement.scores),
                "payouts": list(self.payouts), "carried": self.settlement.carried,
                "smoothed": list(self.smoothed), "standing": list(self.standing), "strikes": list(self.strikes),
                "suspended": list(self.suspended), "forfeited": list(self.forfeited), "claimed": list(self.claimed),
                "clean": list(self.clean)}


def address(node: int) -> str:
    """The simulated address of node ``node`` (settlement matches a report to its reporter by it)."""
    return f"node-{node}"


class Ledger:
    """The chain's state for ``samples`` members (allowance-capped sample counts, by node id)."""

    def __init__(self, samples: Sequence[int], economy: Economy) -> None:
        """Every member starts with smoothed score 0, no strikes or clean epochs, nothing to
        claim, not suspended, nothing carried."""
        self.samples = [int(s) for s in samples]
        self.economy = economy
        n = len(self.samples)
        self.smoothed, self.strikes, self.suspended = [0] * n, [0] * n, [False] * n
        self.clean, self.claimable = [0] * n, [0] * n
        self.standing = [False] * n
        self.carry = 0

    def settle(self, committed: Sequence[int], participants: Sequence[int], leader: int, reporters: Sequence[int],
               scores: np.ndarray, report_attacks: Mapping[int, str] | None = None) -> EpochMoney:
        """Settle one epoch. ``committed`` are the nodes that committed, in commit-index order;
        ``participants`` those of them the leader merged (every reporter finds exactly those
        valid: the simulator's validity check is a pure function all run alike);
        ``scores[r, j]`` is what reporter ``reporters[r]`` computed for ``participants[j]``;
        ``report_attacks`` maps a node id to the report attack it runs.

        Raises:
            EconomyError: a suspended node takes part, a participant did not commit, shapes
                disagree, or a score is not finite.
            UnknownAttackError: a report attack is not in ``REPORT_ATTACKS``.
        """
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (len(reporters), len(participants)):
            raise EconomyError(f"scores has shape {scores.shape}, expected "
                               f"({len(reporters)} reporters, {len(participants)} participants)")
        if not np.isfinite(scores).all():
            raise EconomyError("scores must be finite")
        if not set(participants) <= set(committed):
            raise EconomyError(f"participants {sorted(set(participants) - set(committed))} did not commit")
        active = [*committed, *reporters]
        if any(self.suspended[i] for i in active):
            raise EconomyError(f"suspended nodes {sorted({i for i in active if self.suspended[i]})} cannot take part")
        attacks = dict(report_attacks or {})
        for name in attacks.values():
            if name not in REPORT_ATTACKS:
                raise UnknownAttackError(f"unknown report attack {name!r}; known: {', '.join(sorted(REPORT_ATTACKS))}")
        merged = sum(1 << committed.index(i) for i in participants)
        reports = []
        for r, node in enumerate(reporters):
            sent = scores[r]
            if node in attacks:
                sent = forge_report(attacks[node], sent, participants.index(node) if node in participants else None)
            reports.append(tuple(to_fixed(float(np.clip(v, -1.0, 1.0)), SCORE_SCALE) for v in sent))
        budget = self.economy.budget + self.carry
        outcome = settle(
            budget,
            [Participant(samples=self.samples[i], node=address(i), smoothed=self.smoothed[i], leader=i == leader,
                         reported=i in reporters) for i in participants],
            [Report(metric=0, scores=vector, valid=merged, reporter=address(node))
             for node, vector in zip(reporters, reports, strict=True)],
            rule=self.economy.rule, commits=len(committed), participants_bitmap=merged)
        n = len(self.samples)
        payouts, forfeited, claimed = [0] * n, [0] * n, [0] * n
        settled = [(i, outcome.struck[j]) for j, i in enumerate(participants)]
        settled += [(committed[index], True) for index in outcome.rejected]
        for j, i in enumerate(participants):
            payouts[i] = outcome.payouts[j]
            self.claimable[i] += payouts[i]
            self.smoothed[i] = outcome.smoothed[j]
            self.standing[i] = outcome.standing[j]
        if outcome.quorate:
            for i, struck in settled:
                self.strikes[i] = strikes_after(self.strikes[i], struck)
                self.clean[i] = clean_after(self.clean[i], struck)
                limit = self.economy.suspend_after
                if not self.suspended[i] and limit > 0 and self.strikes[i] >= limit:
                    self.suspended[i] = True
                    forfeited[i], self.claimable[i] = self.claimable[i], 0
        self.carry = outcome.carried + sum(forfeited)
        for i in range(n):
            if self.claimable[i] and can_claim(self.clean[i], finished=False):
                claimed[i], self.claimable[i] = self.claimable[i], 0
        return EpochMoney(budget, tuple(participants), tuple(reporters), tuple(reports), outcome, tuple(payouts),
                          tuple(self.smoothed), tuple(self.standing), tuple(self.strikes), tuple(self.suspended),
                          tuple(forfeited), tuple(claimed), tuple(self.clean))


def kept_payouts(epochs: Sequence[EpochMoney]) -> list[list[int]]:
    """Per epoch and node, the wei credited then that the node keeps: all of it, unless a
    suspension forfeited it before the node could claim it (after its last claim)."""
    kept = [list(money.payouts) for money in epochs]
    for i in range(len(kept[0]) if kept else 0):
        pending: list[int] = []  # epochs whose credit is still unclaimed
        for e, money in enumerate(epochs):
            if money.payouts[i]:
                pending.append(e)
            if money.forfeited[i]:
                for unclaimed in pending:
                    kept[unclaimed][i] = 0
            if money.forfeited[i] or money.claimed[i]:
                pending = []
    return kept


@dataclass(frozen=True)
class Replay:
    """A run settled again: its epochs, and the first epoch after which the replay's
    suspensions differ from the run's (``None``: the replay is exact)."""

    epochs: list[EpochMoney]
    diverged: int | None

    def totals(self) -> list[int]:
        """Per node, the wei paid over all epochs.

        Raises:
            EconomyError: the replay diverged, so it holds only some epochs.
        """
        if self.diverged is not None:
            raise EconomyError(f"the replay diverged after epoch {self.diverged}: its totals would be partial")
        return [sum(column) for column in zip(*kept_payouts(self.epochs), strict=True)]


@dataclass(frozen=True)
class SettlementInput:
    """What a run recorded to settle one epoch: the committed nodes (commit order), the
    participants, leader, reporters, and the scores each reporter computed (before any
    report attack)."""

    committed: tuple[int, ...]
    participants: tuple[int, ...]
    leader: int
    reporters: tuple[int, ...]
    scores: np.ndarray


def replay(samples: Sequence[int], inputs: Sequence[SettlementInput], suspended: Sequence[Sequence[bool]],
           economy: Economy, report_attacks: Mapping[int, str]) -> Replay:
    """Settle recorded epochs ``inputs`` again with ``report_attacks``. ``suspended[e]`` is
    the run's suspension state after epoch ``e``; the replay stops after the first epoch
    whose suspensions differ (``Replay.diverged``), since the run's later epochs had other
    participants than the replay would."""
    ledger = Ledger(samples, economy)
    epochs: list[EpochMoney] = []
    for e, epoch in enumerate(inputs):
        epochs.append(ledger.settle(epoch.committed, epoch.participants, epoch.leader, epoch.reporters, epoch.scores,
                                    report_attacks))
        if list(epochs[-1].suspended) != list(suspended[e]):
            return Replay(epochs, e)
    return Replay(epochs, None)
