"""A node's private data and the shape of the model it trains, from its config.

With ``dataset`` set, the node takes shard ``shard`` of the seeded split of a bundled
dataset (the demo's case: every node derives the same split, keeps only its own shard).
With ``file`` set, it loads its own CSV/NPZ and carves a seeded validation split from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainer.data import NodeData

from .config import NodeConfig


@dataclass(frozen=True)
class LocalData:
    node: NodeData
    n_features: int
    n_classes: int


def load_local_data(config: NodeConfig, val_fraction: float = 0.2) -> LocalData:
    from trainer.data import load_dataset, load_node_file, split_swarm

    data = config.data
    if data.file:
        X, y = load_node_file(config.path(data.file), data.label_column)
        n_classes = data.n_classes or int(y.max()) + 1
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(data.seed))
        n_val = max(1, int(len(y) * val_fraction))
        val, train = order[:n_val], order[n_val:]
        return LocalData(NodeData(X[train], y[train], X[val], y[val]), int(X.shape[1]), n_classes)
    split = split_swarm(load_dataset(data.dataset, seed=data.seed), data.shards,
                        partition=data.partition, alpha=data.alpha, seed=data.seed)
    return LocalData(split.nodes[data.shard], split.n_features, split.n_classes)
