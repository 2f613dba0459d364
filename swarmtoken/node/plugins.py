"""A node's own model and data code, named in ``node.toml``:

    [model]
    factory = "mypackage.models:build"   # called with the section's other keys, returns an nn.Module
    width = 64

    [data]
    loader = "mypackage.data:load"       # called with the section's other keys
    path = "clinic.csv"

The loader is called in the config's folder (so relative paths among its options are
relative to node.toml, like the config's own paths) and returns ``(train, validation)``, each an ``(X, y)`` pair of tensors or a
``torch.utils.data.Dataset`` of ``(x, y)`` (read once into memory). The node's config
folder is put on ``sys.path`` first, so a module next to ``node.toml`` is found. The
factory runs after ``torch.manual_seed([data] seed)``: every node builds the same initial
parameters. Whatever goes wrong (a malformed name, a module or function that does not
import, a call that fails or returns the wrong thing) is one `PluginError` line naming the
key and what to do.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ConfigError

#: The form a plug-in is named in.
FORM = "package.module:function"
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PluginError(ConfigError):
    """A plug-in named in a node config cannot be used; the message names the key and the fix."""


def is_spec(value: str) -> bool:
    return bool(_SPEC.match(value))


def resolve(spec: str, key: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """The function ``spec`` names (``package.module:function``)."""
    if not is_spec(spec):
        raise PluginError(f"{key} = {spec!r}: expected {FORM!r}, e.g. \"mymodels:build\"")
    module_name, function = spec.split(":")
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any import failure means the same to them
        raise PluginError(f"{key} = {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc}); put it "
                          "next to node.toml or on PYTHONPATH") from None
    found = getattr(module, function, None)
    if not callable(found):
        raise PluginError(f"{key} = {spec!r}: {module_name!r} has no function {function!r}")
    return found


def build_from_spec(spec: str, options: Mapping[str, Any], seed: int, key: str,
                    base_dir: Path | None = None) -> nn.Module:
    """Call the factory ``spec`` with ``options`` after seeding torch with ``seed``."""
    factory = resolve(spec, key, base_dir)
    torch.manual_seed(seed)
    try:
        model = factory(**options)
    except Exception as exc:  # the user's code
        raise PluginError(f"{key} = {spec!r} failed with options {dict(options)}: {type(exc).__name__}: {exc}") \
            from None
    if not isinstance(model, nn.Module):
        raise PluginError(f"{key} = {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_rows_from_spec(spec: str, options: Mapping[str, Any], key: str, base_dir: Path | None = None):
    """Call the loader ``spec``; its ``(train, validation)`` as two ``(X, y)`` pairs."""
    loader = resolve(spec, key, base_dir)
    try:
        with contextlib.chdir(base_dir or Path.cwd()):  # its options' paths are relative to node.toml
            result = loader(**options)
    except Exception as exc:  # the user's code
        raise PluginError(f"{key} = {spec!r} failed with options {dict(options)}: {type(exc).__name__}: {exc}") \
            from None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise PluginError(f"{key} = {spec!r} returned {type(result).__name__}; it must return (train, validation)")
    try:
        return as_rows(result[0], "train"), as_rows(result[1], "validation")
    except (TypeError, ValueError) as exc:
        raise PluginError(f"{key} = {spec!r}: {exc}") from None


def as_rows(data: Any, what: str = "validation") -> tuple[torch.Tensor, torch.Tensor]:
    """``data`` (an ``(X, y)`` pair of tensors, a ``Dataset`` of ``(x, y)`` or an iterable of
    ``(x, y)`` batches such as a ``DataLoader``) as one ``(X, y)`` pair, labels int64."""
    from torch.utils.data import DataLoader, Dataset

    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        X, y = data
    else:
        if isinstance(data, Dataset):
            data = DataLoader(data, batch_size=256)
        if not isinstance(data, Iterable):
            raise TypeError(f"{what} must be an (X, y) pair of tensors, a Dataset or a DataLoader of (x, y), "
                            f"not {type(data).__name__}")
        batches = list(data)
        if not batches:
            raise ValueError(f"{what} is empty")
        X = torch.cat([torch.as_tensor(b[0]) for b in batches])
        y = torch.cat([torch.as_tensor(b[1]) for b in batches])
    if len(X) == 0 or len(X) != len(y):
        raise ValueError(f"{what} needs as many labels as rows, and some: got {len(X)} rows, {len(y)} labels")
    if y.is_floating_point() and not bool(torch.equal(y, y.round())):
        raise ValueError(f"{what} labels must be class indices (integers), got fractional values")
    return X, y.to(torch.int64)


def node_model(section: Any, n_features: int, n_classes: int, seed: int, base_dir: Path | None = None) -> nn.Module:
    """The model a node's ``[model]`` section builds: its ``factory``'s, else the registered
    ``name`` for data with ``n_features`` and ``n_classes`` (``trainer.models.build_model``)."""
    if section.factory:
        return build_from_spec(section.factory, section.options, seed, "[model] factory", base_dir)
    from trainer.models import build_model

    return build_model(section.name, n_features, n_classes, seed)
