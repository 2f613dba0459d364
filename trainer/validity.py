"""Validity checks a node runs on a committed update before it is merged or scored.

:func:`copies_previous_step` exposes a cheap fake: an update whose step is (a multiple of)
the previous epoch's merged step, ``theta_e - theta_{e-1}``, which every participant knows
because it is the public global model's last move. Committing ``theta_e + c (theta_e -
theta_{e-1})`` costs no data, points roughly where the swarm is going, and so earns trust
and Shapley value from any direction-based merge. An honest update is trained from
``theta_e`` on local data and is never that aligned with the last merged step: measured
with ``benchmarks/fairness.py`` (digits, 8 nodes, Dirichlet 0.5 and IID, 10 epochs), the
largest cosine of an honest step with the previous merged step is far below the threshold
(see that benchmark's ``copy_cosine`` figures). The check is a pure function of public
data (the two global models and the update), so every validator reaches the same verdict
and the leader can leave such an update out of the merge like any invalid one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainer.params import StateDict, flatten, validate_updates

__all__ = ["DEFAULT_COPY_COSINE", "ValidityError", "copies_previous_step", "is_copy", "step_cosines"]

#: Cosine with the previous merged step at or above which an update counts as a copy.
DEFAULT_COPY_COSINE = 0.95


class ValidityError(ValueError):
    """A validity-check argument is out of range."""


def step_cosines(updates: Sequence[StateDict], previous: StateDict, prior: StateDict) -> list[float]:
    """Cosine of each update's step ``update - previous`` with the previous merged step
    ``previous - prior``; 0 when either is zero (epoch 0, a free rider).

    Raises:
        UpdateError (and subclasses): an update or ``prior`` does not match ``previous``.
    """
    validate_updates([prior], previous)
    if len(updates) == 0:
        return []
    validate_updates(updates, previous)
    base = flatten(previous)
    step = base - flatten(prior)
    step_norm = float(torch.linalg.vector_norm(step))
    cosines = []
    for update in updates:
        delta = flatten(update) - base
        norm = float(torch.linalg.vector_norm(delta))
        cosines.append(float(delta @ step) / (norm * step_norm) if norm > 0 and step_norm > 0 else 0.0)
    return cosines


def is_copy(cosine: float, threshold: float = DEFAULT_COPY_COSINE) -> bool:
    """An update whose step has this cosine with the previous merged step is a copy.

    Raises:
        ValidityError: ``threshold`` is not in (0, 1].
    """
    if not 0 < threshold <= 1:
        raise ValidityError(f"threshold must be in (0, 1], got {threshold!r}")
    return cosine >= threshold


def copies_previous_step(updates: Sequence[StateDict], previous: StateDict, prior: StateDict,
                         threshold: float = DEFAULT_COPY_COSINE) -> list[bool]:
    """Which updates copy the previous merged step: cosine with it ``>= threshold``.

    Raises:
        ValidityError: ``threshold`` is not in (0, 1].
        UpdateError (and subclasses): an update or ``prior`` does not match ``previous``.
    """
    is_copy(0.0, threshold)
    return [is_copy(cosine, threshold) for cosine in step_cosines(updates, previous, prior)]
