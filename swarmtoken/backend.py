"""Your own model and training loop as a full swarm node: the chain-backed
`trainer.SwarmBackend`.

::

    import swarmtoken
    from trainer import SwarmCallback

    torch.manual_seed(0)                       # every node builds the same initial model
    model = MyNet()
    swarm = swarmtoken.connect("node.toml", model, validation=val_loader)
    callback = SwarmCallback(swarm, n_samples=len(train_set), sync_every=20)   # batches
    for epoch in range(epochs):
        for xb, yb in train_loader:            # your loop, optimiser, AMP, scheduler ...
            ...
            callback.on_batch_end(model)       # every 20 batches: commit, wait, load the merge
    swarm.close()

`connect` starts a swarm node in a thread of this process: it enrols if needed, serves its
files, commits what the loop submits when an epoch allows, leads when elected, downloads
and checks the others' updates, recomputes the leader's merge, scores every participant
on *your* validation rows with a copy of *your* model (through
``torch.func.functional_call``, so any ``nn.Module`` whose ``state_dict`` the swarm shares),
reports, settles, and hands back the merge the chain recorded: the very protocol and
payout rules of `swarm train`, in the same `swarmtoken.node.runtime.Node`.

Integer buffers (BatchNorm's ``num_batches_tracked``) travel with the parameters and are
not averaged (see `trainer.merges`). All nodes must build the same architecture from the
same initial parameters (seed the model's construction). A node restarted from its
checkpoint hands back the checkpoint's model at its first submit, so the loop resumes
from the swarm's model; so does a node joining a swarm already under way.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .node.handover import Handover, OwnLoop, SwarmStoppedError

StateDict = dict[str, torch.Tensor]
__all__ = ["ChainSwarm", "SwarmStoppedError", "connect"]


class ChainSwarm:
    """A swarm node running in a thread of this process; `submit` is the
    `trainer.SwarmBackend` protocol."""

    def __init__(self, node: Any, handover: Handover, timeout: float | None) -> None:
        self.node = node
        self._handover = handover
        self._timeout = timeout
        self._base = 0  # the epoch of the global model the loop trains from (0: its own initial model)
        self._thread = threading.Thread(target=self._run, name="swarm-node", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.node.run()
        except BaseException:  # the handover carries it to the loop's next submit
            pass

    def submit(self, state: StateDict, n_samples: int) -> StateDict:
        """Commit ``state`` (trained on ``n_samples`` samples) in the next epoch that starts
        from the model it was trained from, and return the next global model the chain
        records. If the swarm moved on meanwhile, nothing is committed (the update would be
        stale) and the current global model comes back at once; once the swarm finished,
        its final model does.

        Raises:
            SwarmStoppedError: the node stopped (its log says why).
            TimeoutError: no new global model within ``timeout`` seconds (`connect`).
        """
        epoch, merged = self._handover.submit(state, n_samples, self._base, self._timeout)
        self._base = epoch
        return merged

    @property
    def finished(self) -> bool:
        """True once the swarm met its stopping rule: `submit` returns the final model."""
        return self._handover.finished

    @property
    def global_state(self) -> StateDict:
        """A copy of the latest global model the node adopted (the final one once `finished`)."""
        return self._handover.current[1]

    @property
    def epoch(self) -> int:
        """The epoch of the global model the loop last received (0: none yet)."""
        return self._base

    def close(self, timeout: float = 30.0) -> None:
        """Stop the node (it stops serving its files) and wait for its thread."""
        self.node.stopping.set()
        self._thread.join(timeout)

    def __enter__(self) -> ChainSwarm:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(config: str | Path, model: nn.Module, validation: Any, *, timeout: float | None = None) -> ChainSwarm:
    """Start a swarm node for ``model`` as configured in the node config file ``config``
    (its ``[chain]``, ``[store]`` and ``[node]`` sections; ``[data]``, ``[model]`` and
    ``[train]`` are the loop's business). ``validation``: the node's validation rows, as
    an ``(X, y)`` pair of tensors, a ``torch.utils.data.Dataset`` of ``(x, y)`` or a
    ``DataLoader`` yielding ``(x, y)`` batches (read once, into memory). ``timeout``
    bounds each `ChainSwarm.submit` (None: wait as long as the swarm takes).

    Raises:
        swarmtoken.config.ConfigError, swarmtoken.chain.connection.ChainError,
        swarmtoken.node.errors.NodeError: what the message says to fix.
    """
    from dataclasses import replace

    from .chain.connection import bind, load_account
    from .chain.connection import connect as connect_chain
    from .chain.deployment import read_record
    from .config import read_toml
    from .node.checks import recorded_chain
    from .node.config import NodeConfig
    from .node.runtime import Node

    node_config = NodeConfig.from_toml(config)
    given = read_toml(config).get("chain", {})
    record = read_record(node_config.path(node_config.chain.deployment))
    node_config = replace(node_config, chain=recorded_chain(node_config.chain, record, set(given)))
    X_val, y_val = validation_rows(validation)
    connect_chain(node_config.chain.network, node_config.chain.rpc_port)
    handles = bind(node_config.path(node_config.chain.deployment))
    account = load_account(node_config.path(node_config.chain.keystore))
    initial = {key: value.detach().clone() for key, value in model.state_dict().items()}
    handover = Handover(0, initial)
    node = Node(node_config, account, handles, OwnLoop(model, X_val, y_val, handover))
    handover.adopted(node.global_epoch, node.global_state)  # a checkpoint may have moved it on
    return ChainSwarm(node, handover, timeout)


def validation_rows(validation: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``validation`` as one ``(X, y)`` pair of tensors (see `connect`)."""
    from .node.plugins import as_rows

    rows = as_rows(validation)
    return rows
