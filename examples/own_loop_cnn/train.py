"""One organisation's own training script: a small CNN on 8x8 digit images (1x8x8
tensors), its own loop and optimiser, joined to a chain swarm by one callback.

    python examples/own_loop_cnn/train.py --config node-0/node.toml --shard 0 --shards 3 --out node-0/result.json

The swarm part is three lines: `swarmtoken.connect` (a full swarm node in a thread of
this process), `SwarmCallback(..., sync_every=...)`, and `callback.on_batch_end(model)`
in the loop. Everything else is what the organisation would write anyway. It also trains
the same model on its own data alone, for comparison, and writes both accuracies.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import swarmtoken
from trainer import SwarmCallback
from trainer.data import load_dataset, split_swarm

SEED = 0


class SmallCNN(nn.Module):
    """Two 3x3 convolutions with pooling, then a linear head: 8x8 -> 4x4 -> 2x2 -> 10. The
    batch norm's running statistics travel with the parameters (and are merged like them);
    its integer ``num_batches_tracked`` is not averaged (see `trainer.merges`)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def images(X: torch.Tensor) -> torch.Tensor:
    return X.reshape(-1, 1, 8, 8)


def organisation_data(shard: int, shards: int):
    """Stands in for the organisation's own images: its shard of a non-IID split of the
    digits (the same split the deployment attested each node's sample count from)."""
    split = split_swarm(load_dataset("digits", seed=SEED), shards, partition="dirichlet", alpha=0.5, seed=SEED)
    node = split.nodes[shard]
    train = TensorDataset(images(node.X_train), node.y_train)
    return train, (images(node.X_val), node.y_val), (images(split.test[0]), split.test[1])


def new_model() -> SmallCNN:
    torch.manual_seed(SEED)  # every node starts from the same parameters
    return SmallCNN()


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


def run_epoch(model: nn.Module, optimiser: torch.optim.Optimizer, loader: DataLoader,
              callback: SwarmCallback | None = None) -> None:
    model.train()
    for xb, yb in loader:
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimiser.step()
        if callback is not None:
            callback.on_batch_end(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the node config (chain, keystore, store)")
    parser.add_argument("--shard", type=int, required=True)
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--sync-every", type=int, default=16, help="batches between syncs with the swarm")
    parser.add_argument("--max-local-epochs", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--serve-until", type=Path, help="keep the node serving its files until this file exists")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(1)

    train, validation, (X_test, y_test) = organisation_data(args.shard, args.shards)
    loader = DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(args.shard))
    model = new_model()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    local_epochs = 0
    with swarmtoken.connect(args.config, model, validation) as swarm:
        callback = SwarmCallback(swarm, n_samples=len(train), sync_every=args.sync_every)
        while not swarm.finished and local_epochs < args.max_local_epochs:
            run_epoch(model, optimiser, loader, callback)
            local_epochs += 1
        swarm_epochs = swarm.epoch
        model.load_state_dict(swarm.global_state)  # the swarm's final model, not our last local steps

        alone = new_model()  # the same model and loop on this organisation's data only
        optimiser = torch.optim.SGD(alone.parameters(), lr=0.05, momentum=0.9)
        for _ in range(local_epochs):
            run_epoch(alone, optimiser, loader)
        result = {"address": swarm.node.address, "swarm_epochs": swarm_epochs, "local_epochs": local_epochs,
                  "swarm_accuracy": accuracy(model, X_test, y_test), "local_accuracy": accuracy(alone, X_test, y_test)}
        args.out.write_text(json.dumps(result, indent=2))
        print(json.dumps(result))
        while args.serve_until is not None and not args.serve_until.exists():
            time.sleep(0.2)  # the node keeps serving its files (for the consortium's audit) until told


if __name__ == "__main__":
    main()
