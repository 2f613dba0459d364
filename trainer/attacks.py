r"""Attacks a rogue node can mount, for experiments, tests and the demo's rogue nodes.

Model poisoning: a rogue trains honestly (``honest``), then commits a forged update.
With the honest delta ``x = honest - previous`` and the honest peers' deltas ``x_j``:

* ``sign_flip``:      previous - scale * x                (scale = 1)
* ``gaussian_noise``: previous + e, e ~ N(0, sigma^2 I)  (sigma = 1; carries no information)
* ``scaled``:         previous + scale * x                (scale = 10; boosting)
* ``free_rider``:     previous                            (no work, claims a share anyway)
* ``stale_noise``:    previous + e, ||e|| = fraction * ||x|| (fraction = 0.01; a stale copy
  dressed up as work: no training signal, a norm no honest update has)
* ``extrapolated``:   previous + c * (previous - prior)      (c = 1; replays the previous
  epoch's merged step, public to everyone, with no data: ``prior`` is the global model
  the previous epoch started from, so in epoch 0 (``prior = previous``) it is a free rider)
* ``replay_own``:     previous + (own previous step)      (a node that trained once
  replays its last committed step, carried onto the current model, every epoch after)
* ``alie``:           previous + mu - z * s               ("a little is enough",
  Baruch et al. 2019), mu and s the coordinate-wise mean and standard deviation of
  the peers' deltas; z = Phi^{-1}((n - s') / n) with s' = floor(n / 2 + 1) - f when
  ``n`` and ``f`` are given, else ``z`` (default 1.0). With z = 0 it is a stale copy of
  the peers' mean step.

``extrapolated``, ``replay_own`` and ``alie`` take ``cosine`` (default 1: off): the forged step is
disguised with seeded Gaussian noise orthogonal to it, scaled so that the committed step
has exactly that cosine with the forged one (:func:`disguise`). It is how a copy of public
information slips under a check that compares directions (a copy check at cosine 0.95
passes ``cosine=0.9``) while keeping most of what the copy is worth.

Lying validator (``REPORT_ATTACKS``, applied to a validator's score vector, not to an
update): ``lying`` reports +1 for its own update and -1 for every other.

Data poisoning: ``label_flip`` maps every label through a seeded derangement of the
classes (no class keeps its label) before local training; the simulator asks
``is_data_attack(name)`` and calls ``flip_labels`` instead of forging the update.

Which peers an attack may see: in the swarm every node commits a hash of its update
before any file is served (commit-then-reveal), so a rogue cannot read the honest
updates of the epoch it attacks; it can only read the previous epoch's (it downloads
them to check the previous merge). :func:`rebase` carries such stale updates onto the
current global model, and ``needs_peers(name)`` tells a caller which attacks read
``peers`` at all (only ``alie``), i.e. which cannot be mounted before a previous epoch
exists. The literature's omniscient attacker (``peers`` = the current epoch's honest
updates) is the upper bound; ``trainer.simulate.simulate(attack_view=...)`` runs both.

Adding an attack: one function with the model-attack signature and
``@register_attack("name")`` (``peers=True`` if it reads ``peers``, ``prior=True`` if it
reads ``prior``, the global model before ``previous``, ``own=True`` if it reads ``own``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from trainer.params import StateDict, flatten, unflatten, validate_updates

ATTACKS: dict[str, Callable[..., object]] = {}
"""Model attacks: ``attack(honest, *, previous, peers, seed, **options) -> StateDict``;
data attacks (``is_data_attack``): ``fn(y, n_classes, seed) -> y``."""
_DATA_ATTACKS: set[str] = set()
_PEER_ATTACKS: set[str] = set()
_PRIOR_ATTACKS: set[str] = set()
_OWN_ATTACKS: set[str] = set()

ReportAttack = Callable[[np.ndarray, "int | None"], np.ndarray]
"""``fn(scores, own) -> scores``: what a lying validator reports instead of the scores it
computed (one per participant; ``own`` is its own position among them, or None)."""


class UnknownAttackError(KeyError, ValueError):
    """The attack name is not in ``ATTACKS``; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


class AttackOptionError(ValueError):
    """An attack option is out of range, or a data attack is used as a model attack."""


def register_attack(
    name: str, *, data: bool = False, peers: bool = False, prior: bool = False, own: bool = False
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Add an attack to ``ATTACKS``; ``data=True`` marks a data-poisoning attack,
    ``peers=True`` a model attack that reads the peers' updates (``needs_peers``),
    ``prior=True`` one that reads the global model before ``previous`` (``apply_attack``
    passes it as ``prior=``), ``own=True`` one that reads the rogue's own previous
    committed update carried onto ``previous`` (``needs_own``; passed as ``own=``)."""

    def decorator(fn: Callable[..., object]) -> Callable[..., object]:
        if name in ATTACKS:
            raise AttackOptionError(f"attack {name!r} is already registered")
        ATTACKS[name] = fn
        if data:
            _DATA_ATTACKS.add(name)
        if peers:
            _PEER_ATTACKS.add(name)
        if prior:
            _PRIOR_ATTACKS.add(name)
        if own:
            _OWN_ATTACKS.add(name)
        return fn

    return decorator


def is_data_attack(name: str) -> bool:
    """True when ``name`` poisons the training data rather than the committed update.

    Raises:
        UnknownAttackError: ``name`` is not registered.
    """
    _known(name)
    return name in _DATA_ATTACKS


def needs_peers(name: str) -> bool:
    """True when model attack ``name`` reads the peers' updates (``alie``).

    Such an attack has nothing to work with before a previous epoch's updates exist;
    the others (sign flip, noise, ...) need only the rogue's own honest update.

    Raises:
        UnknownAttackError: ``name`` is not registered.
    """
    _known(name)
    return name in _PEER_ATTACKS


def needs_own(name: str) -> bool:
    """True when model attack ``name`` reads the rogue's own previous committed update
    (``replay_own``); before the rogue has committed once it has nothing to replay.

    Raises:
        UnknownAttackError: ``name`` is not registered.
    """
    _known(name)
    return name in _OWN_ATTACKS


def rebase(updates: Sequence[StateDict], old: StateDict, new: StateDict) -> list[StateDict]:
    """Carry full updates made from ``old`` onto ``new``: ``new + (u - old)`` per update.

    Why: under commit-then-reveal a rogue only knows the previous epoch's honest
    updates, which were trained from the previous global model ``old``. Their deltas
    ``u - old`` are the freshest peer statistics it can have; adding them to the
    current global model ``new`` gives stale peer updates in the current epoch's frame,
    which an attack that reads ``peers`` (``alie``) can use as if they were current.

    Floating tensors are computed in float64 and cast back to ``new``'s dtype (as the
    merges do); integer buffers take ``new``'s value. An empty ``updates`` gives ``[]``.

    Raises:
        UpdateError (and subclasses): ``new`` or an update does not match ``old``'s
            layout, or holds non-finite values.
    """
    validate_updates([new], old)
    if len(updates) == 0:
        return []
    validate_updates(updates, old)
    base_new, base_old = flatten(new), flatten(old)
    return [unflatten(base_new + (flatten(u) - base_old), new) for u in updates]


def _known(name: str) -> None:
    if name not in ATTACKS:
        raise UnknownAttackError(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}")


def _delta(honest: StateDict, previous: StateDict) -> torch.Tensor:
    validate_updates([honest], previous)
    return flatten(honest) - flatten(previous)


def _forge(previous: StateDict, honest: StateDict, delta: torch.Tensor) -> StateDict:
    """previous + delta, keeping the honest update's integer buffers."""
    out = unflatten(flatten(previous) + delta, previous)
    for key in sorted(previous):
        if not previous[key].is_floating_point():
            out[key] = honest[key].clone()
    return out


@register_attack("sign_flip")
def sign_flip(
    honest: StateDict, *, previous: StateDict, peers: Sequence[StateDict], seed: int, scale: float = 1.0
) -> StateDict:
    """Commit the honest step reversed (times ``scale``): pushes the model uphill."""
    if not scale > 0:
        raise AttackOptionError(f"sign_flip: scale must be > 0, got {scale!r}")
    return _forge(previous, honest, -scale * _delta(honest, previous))


@register_attack("gaussian_noise")
def gaussian_noise(
    honest: StateDict, *, previous: StateDict, peers: Sequence[StateDict], seed: int, sigma: float = 1.0
) -> StateDict:
    """Commit previous + N(0, sigma^2) noise: an update with no information, seeded."""
    if not sigma > 0:
        raise AttackOptionError(f"gaussian_noise: sigma must be > 0, got {sigma!r}")
    delta = _delta(honest, previous)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(delta.shape, generator=generator, dtype=torch.float64) * sigma
    return _forge(previous, honest, noise)


@register_attack("scaled")
def scaled(
    honest: StateDict, *, previous: StateDict, peers: Sequence[StateDict], seed: int, scale: float = 10.0
) -> StateDict:
    """Commit the honest step times ``scale``: tries to dominate an averaging merge."""
    if not scale > 0:
        raise AttackOptionError(f"scaled: scale must be > 0, got {scale!r}")
    return _forge(previous, honest, scale * _delta(honest, previous))


@register_attack("free_rider")
def free_rider(honest: StateDict, *, previous: StateDict, peers: Sequence[StateDict], seed: int) -> StateDict:
    """Commit the global model unchanged: no training, yet a claim on the reward."""
    _delta(honest, previous)
    return {key: value.detach().clone() for key, value in previous.items()}


@register_attack("stale_noise")
def stale_noise(
    honest: StateDict, *, previous: StateDict, peers: Sequence[StateDict], seed: int, fraction: float = 0.01
) -> StateDict:
    """Commit the global model plus seeded Gaussian noise rescaled to ``fraction`` of the
    honest step's norm: a free rider that is not bit-equal to the global model, the
    cheapest way to pass a "did it change anything" check."""
    if not fraction > 0:
        raise AttackOptionError(f"stale_noise: fraction must be > 0, got {fraction!r}")
    delta = _delta(honest, previous)
    noise = torch.randn(delta.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return _forge(previous, honest, noise * (fraction * torch.linalg.vector_norm(delta) / torch.linalg.vector_norm(noise)))


def disguise(step: torch.Tensor, cosine: float, seed: int) -> torch.Tensor:
    """``step`` plus seeded Gaussian noise orthogonal to it, of norm ``||step|| tan(acos(cosine))``,
    so the result has cosine ``cosine`` with ``step``; ``cosine = 1`` (or a zero step) returns
    ``step`` unchanged.

    Raises:
        AttackOptionError: ``cosine`` is not in (0, 1].
    """
    if not 0 < cosine <= 1:
        raise AttackOptionError(f"cosine must be in (0, 1], got {cosine!r}")
    norm = torch.linalg.vector_norm(step)
    if cosine == 1 or float(norm) == 0.0:
        return step
    noise = torch.randn(step.shape, generator=torch.Generator().manual_seed(seed), dtype=step.dtype)
    noise = noise - (noise @ step) / (norm * norm) * step
    return step + noise * (norm * math.tan(math.acos(cosine)) / torch.linalg.vector_norm(noise))


@register_attack("extrapolated", prior=True)
def extrapolated(
    honest: StateDict, *, previous: StateDict, peers: Sequence[StateDict], seed: int, prior: StateDict,
    c: float = 1.0, cosine: float = 1.0,
) -> StateDict:
    """Commit ``previous + c (previous - prior)``: the previous epoch's merged step again,
    which everyone can compute and which points roughly where the swarm is going, with no
    data behind it (``cosine < 1``: disguised, see :func:`disguise`)."""
    if not c > 0:
        raise AttackOptionError(f"extrapolated: c must be > 0, got {c!r}")
    _delta(honest, previous)
    validate_updates([prior], previous)
    return _forge(previous, honest, disguise(c * (flatten(previous) - flatten(prior)), cosine, seed))


@register_attack("replay_own", own=True)
def replay_own(
    honest: StateDict, *, previous: StateDict, peers: Sequence[StateDict], seed: int, own: StateDict,
    cosine: float = 1.0,
) -> StateDict:
    """Commit ``own``: the rogue's own previous committed update carried onto ``previous``,
    i.e. its previous step again. A node that trained once replays that work every epoch
    with no training; the step is real work, but stale, and not the merged step a copy
    check compares with (``cosine < 1``: disguised, see :func:`disguise`)."""
    _delta(honest, previous)
    validate_updates([own], previous)
    return _forge(previous, honest, disguise(flatten(own) - flatten(previous), cosine, seed))


def alie_z(n: int, f: int) -> float:
    """ALIE's largest undetected shift: z = Phi^{-1}((n - s) / n), s = floor(n/2 + 1) - f.

    Raises:
        AttackOptionError: the quantile is undefined (needs 0 < f < n and 1 <= s < n).
    """
    from scipy.stats import norm  # here, not at import: scipy.stats costs a node 0.6 s to start

    s = (n // 2 + 1) - f
    if not (0 < f < n) or not (0 < n - s < n):
        raise AttackOptionError(f"alie: z undefined for n={n}, f={f}")
    return float(norm.ppf((n - s) / n))


@register_attack("alie", peers=True)
def alie(
    honest: StateDict,
    *,
    previous: StateDict,
    peers: Sequence[StateDict],
    seed: int,
    z: float | None = None,
    n: int | None = None,
    f: int | None = None,
    cosine: float = 1.0,
) -> StateDict:
    """"A little is enough": commit previous + mean - z * std of the peers' deltas.

    Why it hurts: each coordinate stays within z standard deviations of the honest
    mean, so median/trimmed-mean/Krum accept it, yet all rogues push the same way
    every epoch. Pass ``z``, or ``n`` (participants) and ``f`` (rogues) for the
    paper's z; default z = 1.0 (z = 0: the peers' mean, a stale copy). ``cosine < 1``
    disguises the step (:func:`disguise`). Needs at least 2 peers (a standard deviation).
    """
    if z is not None and (n is not None or f is not None):
        raise AttackOptionError("alie: give either z or (n, f), not both")
    if n is not None or f is not None:
        if n is None or f is None:
            raise AttackOptionError("alie: n and f must be given together")
        z = alie_z(n, f)
    z_used = 1.0 if z is None else z
    if len(peers) < 2:
        raise AttackOptionError(f"alie: needs at least 2 peer updates, got {len(peers)}")
    _delta(honest, previous)
    validate_updates(peers, previous)
    base = flatten(previous)
    deltas = torch.stack([flatten(p) - base for p in peers])
    mu = deltas.mean(dim=0)
    sd = deltas.std(dim=0, correction=0)
    return _forge(previous, honest, disguise(mu - z_used * sd, cosine, seed))


@register_attack("label_flip", data=True)
def flip_labels(y: torch.Tensor, n_classes: int, seed: int) -> torch.Tensor:
    """Relabel every sample through a seeded derangement of the classes.

    A derangement (no class maps to itself) makes every label wrong, the strongest
    label flip with a fixed mapping; for two classes it swaps them.

    Raises:
        AttackOptionError: fewer than 2 classes, or a label outside [0, n_classes).
    """
    if n_classes < 2:
        raise AttackOptionError(f"label_flip: needs at least 2 classes, got {n_classes}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise AttackOptionError(
            f"label_flip: labels must lie in [0, {n_classes}), got range "
            f"[{int(y.min())}, {int(y.max())}]"
        )
    generator = torch.Generator().manual_seed(seed)
    shift = int(torch.randint(1, n_classes, (1,), generator=generator))
    order = torch.randperm(n_classes, generator=generator)
    mapping = torch.empty(n_classes, dtype=torch.int64)
    mapping[order] = order[(torch.arange(n_classes) + shift) % n_classes]
    return mapping[y.to(torch.int64)].to(y.dtype)


def _lying(scores: np.ndarray, own: int | None) -> np.ndarray:
    """+1 for its own update, -1 for every other: the largest lie the score bounds allow."""
    out = np.full(len(scores), -1.0)
    if own is not None:
        out[own] = 1.0
    return out


def _boosting(scores: np.ndarray, own: int | None) -> np.ndarray:
    """+1 for the other participant it values most (the first on a tie) and for itself, -1
    for every other: its whole vote on one node, as a liar favouring an accomplice casts it."""
    out = np.full(len(scores), -1.0)
    others = [j for j in range(len(scores)) if j != own]
    if others:
        out[max(others, key=lambda j: (scores[j], -j))] = 1.0
    if own is not None:
        out[own] = 1.0
    return out


REPORT_ATTACKS: dict[str, ReportAttack] = {"lying": _lying, "boosting": _boosting}
"""Lying-validator attacks by name: ``fn(scores, own) -> reported scores``."""


def forge_report(name: str, scores: np.ndarray, own: int | None) -> np.ndarray:
    """What a validator running report attack ``name`` reports instead of ``scores``.

    Raises:
        UnknownAttackError: ``name`` is not in ``REPORT_ATTACKS``.
    """
    if name not in REPORT_ATTACKS:
        raise UnknownAttackError(f"unknown report attack {name!r}; known: {', '.join(sorted(REPORT_ATTACKS))}")
    return REPORT_ATTACKS[name](np.asarray(scores, dtype=np.float64), own)


def needs_prior(name: str) -> bool:
    """True when model attack ``name`` reads ``prior``, the global model before ``previous``.

    Raises:
        UnknownAttackError: ``name`` is not registered.
    """
    _known(name)
    return name in _PRIOR_ATTACKS


def apply_attack(
    name: str,
    honest: StateDict,
    *,
    previous: StateDict,
    peers: Sequence[StateDict],
    seed: int,
    prior: StateDict | None = None,
    own: StateDict | None = None,
    **options: object,
) -> StateDict:
    """Run model-poisoning attack ``name``; refuses unknown names, data attacks, and an
    attack that reads ``prior`` (``needs_prior``) or ``own`` (``needs_own``) called without
    it. ``prior`` and ``own`` are passed only to the attacks that read them."""
    _known(name)
    if name in _DATA_ATTACKS:
        raise AttackOptionError(f"{name!r} poisons data: call flip_labels on the labels instead")
    if name in _PRIOR_ATTACKS:
        if prior is None:
            raise AttackOptionError(f"{name!r} needs prior= (the global model before previous)")
        options = {**options, "prior": prior}
    if name in _OWN_ATTACKS:
        if own is None:
            raise AttackOptionError(f"{name!r} needs own= (its own previous update carried onto previous)")
        options = {**options, "own": own}
    return ATTACKS[name](honest, previous=previous, peers=peers, seed=seed, **options)  # type: ignore[return-value]
