"""Parameter containers: validation and flat views of a model's ``state_dict``.

A node commits its *full* parameters (a ``StateDict``), never a delta. Before any
merge the leader, and every node that recomputes the leader's merge, checks each
committed update against the reference model (the previous global model):

* the same keys (``KeyMismatchError``),
* the same shape and dtype per key (``ShapeMismatchError``, ``DTypeMismatchError``),
* only finite floating-point values (``NonFiniteError``).

Each error carries ``index`` (position of the offending update in the list, ``None``
when the reference itself is bad) and ``key`` so a node can say exactly whose file
is broken.

Merges work on a flat view: ``flatten(sd)`` concatenates every floating-point entry,
in sorted key order, as one float64 vector, and ``unflatten(vec, like)`` is its
inverse on ``like``'s layout::

    unflatten(flatten(sd), sd) == sd          (floating entries up to float64 -> dtype)

Non-floating entries (integer buffers such as BatchNorm's ``num_batches_tracked``)
are not part of the vector; ``unflatten`` copies them from ``like``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

StateDict = dict[str, torch.Tensor]
"""A model's ``state_dict()``: full parameters and buffers, keyed by name."""


class UpdateError(ValueError):
    """A committed update (or the reference model) cannot be merged.

    Attributes:
        index: position of the offending update in the list passed in; ``None`` when
            the problem is not tied to one update (empty list, bad reference).
        key: the offending ``state_dict`` key, or ``None``.
    """

    def __init__(self, message: str, *, index: int | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.key = key


class KeyMismatchError(UpdateError):
    """An update lacks a key of the reference model or carries an extra one."""


class ShapeMismatchError(UpdateError):
    """An update's tensor has a different shape than the reference's."""


class DTypeMismatchError(UpdateError):
    """An update's tensor has a different dtype than the reference's (or is no tensor)."""


class NonFiniteError(UpdateError):
    """An update (or the reference) holds NaN or +/-Inf."""


def _who(index: int | None) -> str:
    return "reference model" if index is None else f"update {index}"


def _check_finite(sd: StateDict, index: int | None) -> None:
    for key in sorted(sd):
        value = sd[key]
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise NonFiniteError(
                f"{_who(index)}: key {key!r} holds {bad} non-finite value(s) (NaN or Inf)",
                index=index,
                key=key,
            )


def _check_tensors(sd: StateDict, index: int | None) -> None:
    if not isinstance(sd, dict):
        raise UpdateError(
            f"{_who(index)} is a {type(sd).__name__}, expected a state dict (dict of tensors)",
            index=index,
        )
    for key in sorted(sd):
        if not isinstance(sd[key], torch.Tensor):
            raise DTypeMismatchError(
                f"{_who(index)}: key {key!r} is a {type(sd[key]).__name__}, expected a torch.Tensor",
                index=index,
                key=key,
            )


def validate_updates(updates: Sequence[StateDict], reference: StateDict) -> None:
    """Refuse any update that cannot be merged with ``reference``'s layout.

    Why: a merge silently broadcasting a wrong shape, or averaging a NaN, would
    publish a broken global model that every node then adopts. Checking up front
    lets the caller drop exactly the offending participant.

    Args:
        updates: committed full state dicts, in participant order.
        reference: the previous global model; fixes the expected keys, shapes, dtypes.

    Raises:
        UpdateError: ``updates`` is empty or an entry is not a dict.
        KeyMismatchError / ShapeMismatchError / DTypeMismatchError / NonFiniteError:
            naming the first offending update ``index`` and ``key`` (or ``index=None``
            when ``reference`` itself is non-finite).
    """
    _check_tensors(reference, None)
    _check_finite(reference, None)
    if len(updates) == 0:
        raise UpdateError("no updates to merge: the list of updates is empty")
    expected = set(reference)
    for index, update in enumerate(updates):
        _check_tensors(update, index)
        missing = sorted(expected - set(update))
        if missing:
            raise KeyMismatchError(
                f"update {index}: missing key {missing[0]!r} ({len(missing)} missing in total)",
                index=index,
                key=missing[0],
            )
        extra = sorted(set(update) - expected)
        if extra:
            raise KeyMismatchError(
                f"update {index}: unexpected key {extra[0]!r} ({len(extra)} extra in total)",
                index=index,
                key=extra[0],
            )
        for key in sorted(reference):
            want, got = reference[key], update[key]
            if got.dtype != want.dtype:
                raise DTypeMismatchError(
                    f"update {index}: key {key!r} has dtype {got.dtype}, expected {want.dtype}",
                    index=index,
                    key=key,
                )
            if got.shape != want.shape:
                raise ShapeMismatchError(
                    f"update {index}: key {key!r} has shape {tuple(got.shape)}, "
                    f"expected {tuple(want.shape)}",
                    index=index,
                    key=key,
                )
        _check_finite(update, index)


def float_keys(sd: StateDict) -> list[str]:
    """Sorted keys of the floating-point entries: the layout of ``flatten``'s vector."""
    return [key for key in sorted(sd) if sd[key].is_floating_point()]


def flatten(sd: StateDict) -> torch.Tensor:
    """Concatenate every floating-point entry of ``sd`` (sorted keys) as one float64 vector.

    Why float64: merges are computed in double precision and cast back once, so the
    result does not depend on the order of float32 roundings.
    """
    keys = float_keys(sd)
    if not keys:
        return torch.zeros(0, dtype=torch.float64)
    return torch.cat([sd[key].detach().reshape(-1).to(torch.float64) for key in keys])


def unflatten(vec: torch.Tensor, like: StateDict) -> StateDict:
    """Inverse of ``flatten`` on ``like``'s layout.

    Floating entries are cut from ``vec`` and cast to ``like``'s dtypes and shapes;
    non-floating entries (integer buffers) are copied from ``like``.

    Raises:
        ShapeMismatchError: ``vec`` is not 1-D or its length differs from the number
            of floating-point values in ``like``.
    """
    keys = float_keys(like)
    sizes = [like[key].numel() for key in keys]
    if vec.dim() != 1 or vec.numel() != sum(sizes):
        raise ShapeMismatchError(
            f"flat vector has shape {tuple(vec.shape)}, expected ({sum(sizes)},) "
            f"for {len(keys)} floating-point entries"
        )
    out: StateDict = {key: value.detach().clone() for key, value in like.items()}
    for key, chunk in zip(keys, torch.split(vec, sizes), strict=True):
        out[key] = chunk.reshape(like[key].shape).to(like[key].dtype).clone()
    return out
