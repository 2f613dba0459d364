"""What a node merges and how it values it: the inputs of an epoch's merge in canonical
order, the merge itself, the coalition utility every participant is scored with (the
swarm's own merge of each coalition) and the validity checks. Pure functions of their
arguments, so every node that has the same files computes the same bytes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..chain.ledger import CommitRecord

if TYPE_CHECKING:
    from trainer.scoring import Utility


@dataclass(frozen=True)
class MergeInputs:
    """One epoch's merge as every node computes it: the updates in canonical order (by node
    address, so the result does not depend on the order of commitment), their sample counts
    (allowance-capped) and the leader's position among them, the anchor of anchored rules
    (``None`` when the leader's update is not among them)."""

    commits: list[CommitRecord]
    updates: list[dict[str, torch.Tensor]]
    weights: list[int]
    anchor: int | None


def merge_inputs(commits: Iterable[CommitRecord], updates: Mapping[int, dict[str, torch.Tensor]],
                 leader: str | None) -> MergeInputs:
    """The `MergeInputs` of ``commits`` (each one's update held in ``updates`` under its
    commit index) in an epoch led by ``leader``."""
    ordered = sorted(commits, key=lambda c: c.node.lower())
    anchor = next((k for k, c in enumerate(ordered) if leader is not None and c.node.lower() == leader.lower()), None)
    return MergeInputs(ordered, [updates[c.index] for c in ordered], [c.samples for c in ordered], anchor)


def merge_updates(rule: str, inputs: MergeInputs, previous: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The swarm's merge of ``inputs`` from the global model ``previous``. No rule options:
    the on-chain config agrees on the rule's name only, so every node runs its defaults."""
    from trainer.merges import merge

    return merge(rule, inputs.updates, previous=previous, weights=inputs.weights, anchor=inputs.anchor)


def contribution_utility(model: torch.nn.Module, rule: str, inputs: MergeInputs, previous: dict[str, torch.Tensor],
                         X_val: torch.Tensor, y_val: torch.Tensor, device: torch.device | None = None) -> Utility:
    """The coalition utility a validator scores with, the simulator's: ``u(S)`` is the
    validation performance of ``previous`` moved by the members' parts of the step that
    `merge_updates` took (same rule, weights and anchor; ``absent=swarm_absent(rule)``), so ``u``
    of all participants is the very model the swarm merged and what the rule neutralises (a
    reversed or noise update, a copy, a free rider) earns nothing. See
    `trainer.scoring.utility`. The forward passes run on ``device`` ([train] device)."""
    from trainer.scoring import make_utility, swarm_absent

    return make_utility(model, previous, inputs.updates, inputs.weights, X_val, y_val, rule=rule,
                        anchor=inputs.anchor, absent=swarm_absent(rule), device=device)


def invalid_steps(updates: Mapping[int, dict[str, torch.Tensor]], previous: dict[str, torch.Tensor],
                  prior: dict[str, torch.Tensor] | None) -> dict[int, tuple[str, float]]:
    """The updates (by commit index) that fail a ``trainer.validity`` check, with the check
    (``"copy"`` or ``"one-sided"``) and the value that failed it: a step that copies the
    previous merged step ``previous - prior`` (its cosine at or above the threshold and its
    angle to it far narrower than the epoch's other steps': a node that trained nothing can
    commit the global model moved once more the way it last moved),
    or a one-sided step (its sign balance's distance from the median of the epoch's updates,
    the "mean +- z * std" family). Every validator reaches the same verdict from the public
    global models and the epoch's updates. Nothing is a copy when ``prior`` is unknown (the
    first epoch, or a node that skipped one); the sign balance needs only ``previous``."""
    from trainer.validity import balance_deviations, copies, is_one_sided, step_cosines

    if not updates:
        return {}
    indices = sorted(updates)
    steps = [updates[i] for i in indices]
    invalid: dict[int, tuple[str, float]] = {}
    if prior is not None:
        cosines = step_cosines(steps, previous, prior)
        invalid.update({i: ("copy", c) for i, c, copy in zip(indices, cosines, copies(cosines), strict=True) if copy})
    for i, deviation in zip(indices, balance_deviations(steps, previous), strict=True):
        if i not in invalid and is_one_sided(deviation):
            invalid[i] = ("one-sided", deviation)
    return dict(sorted(invalid.items()))
