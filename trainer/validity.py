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

:func:`one_sided_steps` exposes a step shifted along a same-signed vector, the signature of
the "mean +- z * std" family ("a little is enough", Baruch et al. 2019, and its kin): the
coordinate-wise standard deviation of the peers' steps is non-negative everywhere, so
``mu - z * sd`` moves most coordinates the same way, and its *sign balance*
``sum(step) / ||step||_1`` stands far from the other steps' (sign statistics are what
SignGuard, Xu et al. 2022, filters on). Steps trained by SGD on local data share the sign
balance the model and data give them (about 0 on digits, up to 0.34 on wine with a small
MLP), so the check compares each balance with the *median* balance of the epoch's updates:
measured with ``benchmarks/fairness.py`` (digits, 8 nodes, Dirichlet 0.5 and IID, 10
epochs, 10 seeds, every attack run and the label-noise probe) the largest deviation of an
honest step is 0.076 and that of ``alie`` at least 0.50 (z = 1; 0.93 for z = 3), see that
benchmark's ``balance_deviation_max`` figure. Both thresholds were set on digits: on the
two-class tables honest steps reach cosine 0.957 and a deviation of 0.50 (``fraud``), and
both checks reject some honest updates there; ``benchmarks/validity.py`` measures every
bundled table, and why neither threshold moves. Like the copy check it is a pure function of public data (the
global model and the epoch's updates; unlike it, the verdict on one update depends on the
set of updates it is judged with, through their median).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch

from trainer.params import StateDict, flatten, validate_updates

__all__ = ["DEFAULT_COPY_COSINE", "DEFAULT_SIGN_BALANCE", "ValidityError", "copies_previous_step", "is_copy",
           "balance_deviations", "is_one_sided", "one_sided_steps", "step_balances", "step_cosines"]

#: Cosine with the previous merged step at or above which an update counts as a copy.
DEFAULT_COPY_COSINE = 0.95
#: Deviation of a step's sign balance from the epoch's median at or above which it is one-sided.
DEFAULT_SIGN_BALANCE = 0.3
#: Fewest updates whose median sign balance a step is judged against.
MIN_BALANCE_UPDATES = 3


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


def step_balances(updates: Sequence[StateDict], previous: StateDict) -> list[float]:
    """Sign balance of each update's step ``update - previous``: ``sum(step) / ||step||_1``,
    in [-1, 1] (+1: every coordinate moved up, -1: every one down); 0 for a zero step.

    Raises:
        UpdateError (and subclasses): an update does not match ``previous``.
    """
    if len(updates) == 0:
        return []
    validate_updates(updates, previous)
    base = flatten(previous)
    balances = []
    for update in updates:
        delta = flatten(update) - base
        mass = float(delta.abs().sum())
        balances.append(float(delta.sum()) / mass if mass > 0 else 0.0)
    return balances


def balance_deviations(updates: Sequence[StateDict], previous: StateDict) -> list[float]:
    """How far each update's sign balance (:func:`step_balances`) lies from the median
    balance of all ``updates`` (the mean of the two middle ones for an even count), in [0, 2].
    With fewer than MIN_BALANCE_UPDATES updates every deviation is 0: the median of two is
    their mean, equally far from both, so an honest update would fall with a forged one.

    Raises:
        UpdateError (and subclasses): an update does not match ``previous``.
    """
    balances = step_balances(updates, previous)
    if len(balances) < MIN_BALANCE_UPDATES:
        return [0.0] * len(balances)
    median = statistics.median(balances)
    return [abs(balance - median) for balance in balances]


def is_one_sided(deviation: float, threshold: float = DEFAULT_SIGN_BALANCE) -> bool:
    """A step whose sign balance deviates this much from the epoch's median is one-sided:
    ``deviation >= threshold``.

    Raises:
        ValidityError: ``threshold`` is not in (0, 2].
    """
    if not 0 < threshold <= 2:
        raise ValidityError(f"threshold must be in (0, 2], got {threshold!r}")
    return deviation >= threshold


def one_sided_steps(updates: Sequence[StateDict], previous: StateDict,
                    threshold: float = DEFAULT_SIGN_BALANCE) -> list[bool]:
    """Which updates' steps are one-sided: sign balance ``>= threshold`` away from the
    median balance of ``updates``.

    Raises:
        ValidityError: ``threshold`` is not in (0, 2].
        UpdateError (and subclasses): an update does not match ``previous``.
    """
    is_one_sided(0.0, threshold)
    return [is_one_sided(deviation, threshold) for deviation in balance_deviations(updates, previous)]
