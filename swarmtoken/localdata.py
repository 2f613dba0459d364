"""A node's private data and the model it trains, from its config.

With ``dataset`` set, the node takes shard ``shard`` of the seeded split of a bundled
dataset (the demo's case: every node derives the same split, keeps only its own shard).
With ``file`` set, it loads its own CSV/NPZ and carves a seeded validation split from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .nodeconfig import NodeConfig


@dataclass(frozen=True)
class LocalData:
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    n_features: int
    n_classes: int

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])


def load_local_data(config: NodeConfig, val_fraction: float = 0.2) -> LocalData:
    from trainer.data import load_dataset, load_node_file, split_swarm

    data = config.data
    if data.file:
        X, y = load_node_file(config.path(data.file), data.label_column)
        n_classes = data.n_classes or int(y.max()) + 1
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(data.seed))
        n_val = max(1, int(len(y) * val_fraction))
        val, train = order[:n_val], order[n_val:]
        return LocalData(X[train], y[train], X[val], y[val], int(X.shape[1]), n_classes)
    split = split_swarm(load_dataset(data.dataset, seed=data.seed), data.shards,
                        partition=data.partition, alpha=data.alpha, seed=data.seed)
    node = split.nodes[data.shard]
    return LocalData(node.X_train, node.y_train, node.X_val, node.y_val, split.n_features, split.n_classes)
