"""Validity checks a node runs on a committed update before it is merged or scored.

:func:`copies_previous_step` exposes a cheap fake: an update whose step is (a multiple of)
the previous epoch's merged step, ``theta_e - theta_{e-1}``, which every participant knows
because it is the public global model's last move. Committing ``theta_e + c (theta_e -
theta_{e-1})`` costs no data, points roughly where the swarm is going, and so earns trust
and Shapley value from any direction-based merge. An honest update is trained from
``theta_e`` on local data, but how aligned with the last merged step it gets depends on the
task and the training: on digits its cosine stays below 0.93, while with slower training
(learning rate 0.01, one local epoch) honest steps on the two-class tables reach 0.99 and
more (``benchmarks/validity.py``, settings ``_slow``): slow training keeps stepping the
same way, and a cosine threshold alone struck 46 % of a ``breast_cancer`` run's honest
updates as copies (IID), suspending 12 honest nodes in 10 seeds. So a step counts as a
copy when its cosine is at least 0.95 *and* its sine with the previous merged step is at
most 0.4 times the median sine of the epoch's other steps: a copy lies on that line (sine
0 up to rounding), fresh work keeps an angle typical of its epoch. That cleared every
honest update of the IID ``breast_cancer`` and all ``wine`` runs, and on digits it flags
exactly what the cosine alone did (every ``benchmarks/fairness.py`` figure is unchanged):
ALIE z = 0.1, a near copy of the peers' public steps, stays within about 0.37 of the
others' median sine. On Dirichlet data a node whose data dominates the merge steps where
the swarm just went and can still be taken for a copy (up to 10 % of a run's honest
updates on ``breast_cancer`` and 16 % on ``fraud``, with the slower training). The check is
a pure function of public data (the two global models and the epoch's updates), so every
validator that fetched the same updates reaches the same verdict and the leader can leave
such an update out of the merge like any invalid one.

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
benchmark's ``balance_deviation_max`` figure. On the two-class tables honest steps reach
0.50 (``fraud``) and 0.36 (``breast_cancer``), where ALIE lies as little as 2.6 times the
epoch's median deviation out and honest steps up to 10 (``benchmarks/validity.py``), so
no threshold, absolute or relative to the epoch's spread, separates them there, and the
check rejects some honest updates on those tables. Like the copy check it is a pure
function of public data (the global model and the epoch's updates), and the verdict on one
update depends on the set of updates it is judged with, through their median.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import torch

from trainer.params import StateDict, flatten, validate_updates

__all__ = ["DEFAULT_COPY_COSINE", "DEFAULT_COPY_SINE_RATIO", "DEFAULT_SIGN_BALANCE", "ValidityError",
           "balance_deviations", "copies", "copies_previous_step", "is_one_sided", "one_sided_steps", "step_balances",
           "step_cosines", "step_sines"]

#: Cosine with the previous merged step at or above which an update can count as a copy.
DEFAULT_COPY_COSINE = 0.95
#: A copy's sine with the previous merged step is at most this fraction of the median of the
#: epoch's other steps' sines.
DEFAULT_COPY_SINE_RATIO = 0.4
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


def step_sines(cosines: Sequence[float]) -> list[float]:
    """How far each step points from the previous merged step: the sine of the angle between
    them, ``sqrt(1 - cos^2)`` (0 for a copy), and 1 at or beyond a right angle (a zero step
    has cosine 0, so 1 too)."""
    return [math.sqrt(max(0.0, 1.0 - cosine * cosine)) if cosine > 0 else 1.0 for cosine in cosines]


def copies(cosines: Sequence[float], threshold: float = DEFAULT_COPY_COSINE,
           sine_ratio: float | None = DEFAULT_COPY_SINE_RATIO) -> list[bool]:
    """Which of an epoch's steps, given their cosines with the previous merged step
    (:func:`step_cosines`), are copies: cosine ``>= threshold`` and, unless ``sine_ratio``
    is ``None``, a sine (:func:`step_sines`) at most ``sine_ratio`` times the median sine of
    the epoch's *other* steps (a step judged alone: the cosine decides). The median of the
    others is where the swarm's fresh work points this epoch; a minority of copies cannot
    move it, and a copy sits on the previous step's line, far closer than that.

    Raises:
        ValidityError: ``threshold`` is not in (0, 1] or ``sine_ratio`` is negative.
    """
    if not 0 < threshold <= 1:
        raise ValidityError(f"threshold must be in (0, 1], got {threshold!r}")
    if sine_ratio is not None and not sine_ratio >= 0:
        raise ValidityError(f"sine_ratio must be >= 0 or None, got {sine_ratio!r}")
    sines = step_sines(cosines)
    flags = []
    for i, cosine in enumerate(cosines):
        others = sines[:i] + sines[i + 1:]
        near = sine_ratio is None or not others or sines[i] <= sine_ratio * statistics.median(others)
        flags.append(cosine >= threshold and near)
    return flags


def copies_previous_step(updates: Sequence[StateDict], previous: StateDict, prior: StateDict,
                         threshold: float = DEFAULT_COPY_COSINE,
                         sine_ratio: float | None = DEFAULT_COPY_SINE_RATIO) -> list[bool]:
    """Which updates copy the previous merged step ``previous - prior`` (:func:`copies` of
    their :func:`step_cosines`).

    Raises:
        ValidityError: ``threshold`` is not in (0, 1] or ``sine_ratio`` is negative.
        UpdateError (and subclasses): an update or ``prior`` does not match ``previous``.
    """
    copies([], threshold, sine_ratio)
    return copies(step_cosines(updates, previous, prior), threshold, sine_ratio)


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
