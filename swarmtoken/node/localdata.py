"""A node's private data and the shape of the model it trains, from its config.

With ``dataset`` set, the node takes shard ``shard`` of the seeded split of a bundled
dataset (the demo's case: every node derives the same split, keeps only its own shard).
With ``file`` set, it loads its own CSV/NPZ and carves a seeded validation split from it.
With ``loader`` set, the node's own function returns its rows (see `plugins`).

The last result is kept: `swarm train` loads the data once to check it before it touches
the chain (`checks`), and the node it then starts gets the same data without reading the
file again (a changed file, by size or modification time, is read again).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from trainer.data import NodeData

from .config import DataSection, NodeConfig


@dataclass(frozen=True)
class LocalData:
    node: NodeData
    n_features: int
    n_classes: int


def load_local_data(config: NodeConfig, val_fraction: float = 0.2) -> LocalData:
    """This node's data. Raises `trainer.data.DataFileError` (naming the file, line and
    column) for a malformed file, one whose labels fall outside ``[0, n_classes)``, with
    fewer than two classes or samples; `trainer.data.UnknownDatasetError` and
    `trainer.partition.PartitionError` for a dataset that cannot be split as asked."""
    data = config.data
    if data.loader:
        return _plugin_data(config)
    if data.file:
        path = config.path(data.file).resolve()
        try:
            stat = path.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = None  # the loader names the missing file
        return _load(data, path, stamp, val_fraction)
    return _load(data, None, None, val_fraction)


@functools.lru_cache(maxsize=1)
def _load(data: DataSection, path: Path | None, stamp: tuple[int, int] | None, val_fraction: float) -> LocalData:
    from trainer.data import DataFileError, load_dataset, load_node_file, split_swarm

    if path is not None:
        X, y = load_node_file(path, data.label_column)
        if data.n_classes:
            outside = torch.nonzero(y >= data.n_classes).flatten()
            if len(outside):
                at = int(outside[0])
                row = at + 2 if path.suffix.lower() == ".csv" else None  # the header is line 1
                raise DataFileError(path, f"label {int(y[at])} is outside [0, n_classes) with [data] n_classes = "
                                          f"{data.n_classes}" + ("" if row else f" (sample {at})"),
                                    row=row, column=data.label_column)
        n_classes = data.n_classes or int(y.max()) + 1
        if n_classes < 2:
            raise DataFileError(path, f"every label is {int(y.max())}: a classifier needs at least 2 classes",
                                column=data.label_column)
        if len(y) < 2:
            raise DataFileError(path, f"{len(y)} sample: a node needs at least 2 (one to train, one to validate)")
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(data.seed))
        n_val = max(1, int(len(y) * val_fraction))
        val, train = order[:n_val], order[n_val:]
        return LocalData(NodeData(X[train], y[train], X[val], y[val]), int(X.shape[1]), n_classes)
    split = split_swarm(load_dataset(data.dataset, seed=data.seed), data.shards,
                        partition=data.partition, alpha=data.alpha, seed=data.seed)
    return LocalData(split.nodes[data.shard], split.n_features, split.n_classes)


def _plugin_data(config: NodeConfig) -> LocalData:
    """The ``[data] loader`` plug-in's rows (see `plugins`): feature count from the rows'
    shape (0 for rows that are not flat vectors: only a ``[model] factory`` model takes them),
    class count from ``[data] n_classes`` or the largest label."""
    from .plugins import PluginError, load_rows_from_spec

    data = config.data
    (X, y), (X_val, y_val) = load_rows_from_spec(data.loader, data.options, "[data] loader", config.base_dir)
    n_classes = data.n_classes or int(max(y.max(), y_val.max())) + 1
    if n_classes < 2:
        raise PluginError(f"[data] loader = {data.loader!r}: every label is {int(y.max())}; a classifier needs two "
                          "classes or more")
    n_features = int(X.shape[1]) if X.ndim == 2 else 0
    return LocalData(NodeData(X, y, X_val, y_val), n_features, n_classes)
