"""Does this node's model fit the swarm's? Checked before a node enrols, so an incompatible
node is refused in one line instead of being elected, failing to merge anyone's update and
stalling every epoch.

The deployment record carries the swarm's model (``SwarmConfig.model``: a registered name,
or a factory ``package.module:function`` with ``model_options``; ``n_features``,
``n_classes``, agreed by the consortium at deployment); a node compares the label count and
feature count of its data, its model name, and then the fingerprint of the model it built
(parameter and buffer names, shapes, dtypes) with the swarm's, and names the first
difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

Fingerprint = list[tuple[str, tuple[int, ...], str]]


def fingerprint(model: nn.Module) -> Fingerprint:
    """``(name, shape, dtype)`` of every tensor in the model's state dict, in order."""
    return [(name, tuple(tensor.shape), str(tensor.dtype).removeprefix("torch."))
            for name, tensor in model.state_dict().items()]


def first_difference(ours: Fingerprint, theirs: Fingerprint) -> str | None:
    """The first tensor whose name, shape or dtype differs, in words; None when they match."""
    for (name, shape, dtype), (their_name, their_shape, their_dtype) in zip(ours, theirs):
        if name != their_name:
            return f"tensor {name!r} is {their_name!r} in the swarm's model"
        if shape != their_shape:
            return f"tensor {name!r} has shape {shape}, the swarm's {their_shape}"
        if dtype != their_dtype:
            return f"tensor {name!r} is {dtype}, the swarm's {their_dtype}"
    if len(ours) != len(theirs):
        extra = ours[len(theirs)][0] if len(ours) > len(theirs) else theirs[len(ours)][0]
        return f"the models have {len(ours)} and {len(theirs)} tensors (first unmatched: {extra!r})"
    return None


def incompatibility(swarm: Mapping[str, Any], model_name: str, n_features: int, n_classes: int,
                    model: nn.Module) -> str | None:
    """Why a node with ``model`` (built as ``model_name`` for data with ``n_features`` and
    ``n_classes``) cannot join the swarm whose deployment config is ``swarm``; None when it
    fits, or when the record does not say (``n_classes`` 0: a record from before)."""
    from trainer.models import UnknownModelError, build_model

    from .plugins import PluginError, build_from_spec, is_spec

    want_classes, want_features = int(swarm.get("n_classes", 0) or 0), int(swarm.get("n_features", 0) or 0)
    if not want_classes:
        return None
    if n_classes != want_classes:
        return (f"this node's data has {n_classes} classes, the swarm's model has {want_classes}; give it data "
                f"with the swarm's label set (labels 0..{want_classes - 1})")
    if want_features and n_features != want_features:
        return f"this node's data has {n_features} features, the swarm's model takes {want_features}"
    want_model = str(swarm.get("model", model_name))
    if model_name != want_model:
        key = "[model] factory" if is_spec(model_name) or is_spec(want_model) else "[model] name"
        return f"{key} is {model_name!r}, the swarm's model is {want_model!r}"
    try:
        reference = (build_from_spec(want_model, swarm.get("model_options") or {}, 0, "the swarm's model")
                     if is_spec(want_model) else build_model(want_model, want_features, want_classes, 0))
    except UnknownModelError as exc:
        return f"the swarm's model {want_model!r} is not registered on this node ({exc})"
    except PluginError as exc:
        return f"the swarm's model cannot be built on this node: {exc}"
    return first_difference(fingerprint(model), fingerprint(reference))
