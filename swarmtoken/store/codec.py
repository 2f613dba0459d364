"""State dicts to bytes and back, safely.

The format is safetensors: a JSON header plus raw tensor data, so reading a peer's
file parses data and never executes code (a pickle, or a ``torch.save`` zip, which
is a pickle inside, is refused as malformed).

Bytes are deterministic: the same tensors (same keys, dtypes, shapes and values)
give the same bytes whatever the dict order, memory layout, device or autograd
state, so a node that recomputes the leader's merge gets the leader's hash::

    sha256(serialize(a)) == sha256(serialize(b))  <=>  a and b hold equal tensors

The checks on a received file run cheapest-first and stop at the first failure:
hash, parse, keys/shapes/dtypes against the reference model, finiteness.
"""

from __future__ import annotations

import safetensors.torch
import torch

from .errors import HashMismatchError, MalformedFileError, NonFiniteError, ShapeMismatchError
from .hashing import sha256_hex

StateDict = dict[str, torch.Tensor]


def serialize(state: StateDict) -> bytes:
    """The canonical safetensors bytes of ``state``.

    Keys are sorted and every tensor is copied to a contiguous CPU tensor of its
    own, so views, transposes and tied weights (which safetensors refuses) all
    serialise, and to the same bytes as their materialised values.

    Raises:
        ValueError: ``state`` is empty.
        TypeError: a key is not a string or a value is not a tensor.
    """
    if not state:
        raise ValueError("cannot serialise an empty state dict")
    tensors = {}
    for key in sorted(state):
        value = state[key]
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise TypeError(f"state dict entries must be str -> torch.Tensor, got {key!r}: {type(value).__name__}")
        tensors[key] = value.detach().to("cpu").clone(memory_format=torch.contiguous_format)
    return safetensors.torch.save(tensors)


def decode_verified(
    data: bytes, expected_sha256: str, source: str, reference: StateDict | None = None
) -> StateDict:
    """`check_hash`, then `decode`: everything a node checks on a file it did not just
    write. ``expected_sha256`` is canonical lowercase hex; ``source`` (a URL or path)
    is named in every error.

    Raises:
        HashMismatchError, MalformedFileError, ShapeMismatchError, NonFiniteError.
    """
    check_hash(data, expected_sha256, source)
    return decode(data, source, reference)


def check_hash(data: bytes, expected_sha256: str, source: str) -> None:
    """The bytes are the ones committed on chain.

    Raises:
        HashMismatchError: naming both hashes.
    """
    found = sha256_hex(data)
    if found != expected_sha256:
        detail = f"sha256 mismatch: expected {expected_sha256}, found {found} ({len(data)} bytes)"
        raise HashMismatchError(source, detail)


def decode(data: bytes, source: str, reference: StateDict | None = None) -> StateDict:
    """Parse hash-checked bytes into tensors. With ``reference`` (the previous global
    model), keys, shapes and dtypes must match it exactly, so a merge never sees a
    misshapen update; floating-point values must be finite.

    Raises:
        MalformedFileError, ShapeMismatchError, NonFiniteError.
    """
    try:
        state = safetensors.torch.load(data)
    # Untrusted bytes: any failure to parse them (safetensors' own error, an unknown
    # dtype, a bad buffer) means the same thing to the caller.
    except Exception as exc:
        detail = f"not a safetensors file ({len(data)} bytes, starts {data[:16]!r}): {exc}"
        raise MalformedFileError(source, detail) from None
    if reference is not None:
        check_layout(state, reference, source)
    check_finite(state, source)
    return state


def check_layout(state: StateDict, reference: StateDict, source: str) -> None:
    """Same keys, and per key the same shape and dtype, as ``reference``.

    Raises:
        ShapeMismatchError: naming the first missing/unexpected key or the first key
            (in sorted order) whose shape or dtype differs.
    """
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing or unexpected:
        detail = f"keys differ from the reference: missing {missing}, unexpected {unexpected}"
        raise ShapeMismatchError(source, detail)
    for key in sorted(reference):
        want, got = reference[key], state[key]
        if want.shape != got.shape or want.dtype != got.dtype:
            raise ShapeMismatchError(
                source,
                f"{key!r}: expected {want.dtype} {tuple(want.shape)}, found {got.dtype} {tuple(got.shape)}",
            )


def check_finite(state: StateDict, source: str) -> None:
    """Every floating-point (and complex) tensor holds only finite values.

    Raises:
        NonFiniteError: naming the first such key in sorted order and how many
            entries are NaN or infinite.
    """
    for key in sorted(state):
        tensor = state[key]
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        # Fast path: a NaN or Inf anywhere makes the sum non-finite. A non-finite sum of
        # finite values (overflow) is rare and resolved by the exact count below.
        if bool(torch.isfinite(tensor.sum())):
            continue
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            detail = f"{key!r}: expected only finite values, found {bad} NaN/Inf of {tensor.numel()}"
            raise NonFiniteError(source, detail)
