"""Join a swarm from your own torch training loop: one callback call per local epoch.

::

    swarm = InProcessSwarm(n_nodes=3, initial=model.state_dict())
    callback = SwarmCallback(swarm.node(0), n_samples=len(my_dataset))
    for epoch in range(epochs):
        for xb, yb in loader:              # the user's own loop, optimiser, schedule ...
            ...
        callback.on_epoch_end(model)       # submit, wait for the merge, load it back

``on_epoch_end`` submits the model's parameters with the node's sample count to a
:class:`SwarmBackend` and loads the merged parameters back into the model, so the next
local epoch starts from the swarm's model.  The backend decides how the merge happens:

- :class:`InProcessSwarm` (here): several nodes in one process, each loop in its own
  thread; a round closes when every node has submitted, the leader is drawn with the
  round seed, and ``trainer.merges.merge`` combines the updates in node-id order, so the
  result does not depend on which thread arrived first.
- the chain-backed backend (``swarmtoken.connect``) runs a full swarm node in a thread of
  the user's process: it commits the submitted parameters, leads when elected, validates
  and scores with the user's model, settles, and returns the merge the chain recorded;
  it implements the same one-method protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from torch import nn

from trainer.merges import DEFAULT_MERGE, merge
from trainer.params import StateDict

__all__ = ["InProcessSwarm", "RoundRecord", "SwarmBackend", "SwarmCallback", "SwarmProtocolError",
           "SwarmTimeoutError"]


@runtime_checkable
class SwarmBackend(Protocol):
    """One node's connection to a swarm."""

    def submit(self, state: StateDict, n_samples: int) -> StateDict:
        """Commit this node's parameters for the current round and return the merged ones.

        Blocks until the round's merge is available.
        """
        ...


class SwarmProtocolError(ValueError):
    """A node broke the round protocol (unknown id, joined twice, submitted twice, bad count)."""


class SwarmTimeoutError(TimeoutError):
    """A round did not close in time; the message lists the nodes still missing."""


class SwarmCallback:
    """Sync a user's model with the swarm every ``sync_every`` calls of the hook the loop
    uses: `on_batch_end` (counting batches) or `on_epoch_end` (counting local epochs)."""

    def __init__(self, backend: SwarmBackend, n_samples: int, sync_every: int = 1) -> None:
        if n_samples < 1:
            raise SwarmProtocolError(f"n_samples must be >= 1, got {n_samples}")
        if sync_every < 1:
            raise SwarmProtocolError(f"sync_every must be >= 1, got {sync_every}")
        self.backend = backend
        self.n_samples = n_samples
        self.sync_every = sync_every
        self._batches = 0
        self._epochs = 0

    def on_batch_end(self, model: nn.Module) -> StateDict | None:
        """After a batch: every ``sync_every`` batches, `sync`; returns the merge, or None."""
        self._batches += 1
        return self.sync(model) if self._batches % self.sync_every == 0 else None

    def on_epoch_end(self, model: nn.Module) -> StateDict | None:
        """After a local epoch: every ``sync_every`` epochs, `sync`; returns the merge, or None."""
        self._epochs += 1
        return self.sync(model) if self._epochs % self.sync_every == 0 else None

    def sync(self, model: nn.Module) -> StateDict:
        """Submit ``model``'s parameters, load the merged ones into it in place, return them."""
        state = {key: value.detach().clone() for key, value in model.state_dict().items()}
        merged = self.backend.submit(state, self.n_samples)
        model.load_state_dict(merged)
        return merged


@dataclass(frozen=True)
class RoundRecord:
    """One closed round of an :class:`InProcessSwarm`: who led it and the sample counts used."""

    round: int
    leader: int
    n_samples: list[int]


class _Node:
    """The :class:`SwarmBackend` handle of node ``node_id`` in an :class:`InProcessSwarm`."""

    def __init__(self, swarm: InProcessSwarm, node_id: int) -> None:
        self.swarm = swarm
        self.node_id = node_id

    def submit(self, state: StateDict, n_samples: int) -> StateDict:
        """Submit for this node; see :meth:`InProcessSwarm.submit`."""
        return self.swarm.submit(self.node_id, state, n_samples)


class InProcessSwarm:
    """A swarm of ``n_nodes`` threads of one process, merging with ``merge`` each round.

    ``initial`` is the model every node starts from (the first round's ``previous``).
    The leader of round ``r`` is drawn uniformly with ``numpy.random.default_rng([seed, r])``
    and passed as the merge's ``anchor``.  ``timeout`` bounds how long a node waits for
    the others (:class:`SwarmTimeoutError`).  If the merge fails (a malformed update), every
    waiting node receives the same exception, and so does every later submission: a
    swarm whose merge failed is closed.
    """

    def __init__(self, n_nodes: int, initial: StateDict, *, merge: str = DEFAULT_MERGE, seed: int = 0,
                 timeout: float = 60.0, merge_options: Mapping[str, object] | None = None) -> None:
        if n_nodes < 1:
            raise SwarmProtocolError(f"n_nodes must be >= 1, got {n_nodes}")
        self.n_nodes = n_nodes
        self.rule = merge
        self.seed = seed
        self.timeout = timeout
        self.merge_options = dict(merge_options or {})
        self.history: list[RoundRecord] = []
        self._global = {key: value.detach().clone() for key, value in initial.items()}
        self._pending: dict[int, tuple[StateDict, int]] = {}
        self._joined: set[int] = set()
        self._error: BaseException | None = None
        self._closed = threading.Condition()

    @property
    def global_state(self) -> StateDict:
        """The latest merged model (a copy)."""
        with self._closed:
            return {key: value.clone() for key, value in self._global.items()}

    def node(self, node_id: int) -> SwarmBackend:
        """The backend handle for node ``node_id`` in ``[0, n_nodes)``; each id joins once."""
        if not 0 <= node_id < self.n_nodes:
            raise SwarmProtocolError(f"node id {node_id} is not in [0, {self.n_nodes})")
        with self._closed:
            if node_id in self._joined:
                raise SwarmProtocolError(f"node {node_id} has already joined")
            self._joined.add(node_id)
        return _Node(self, node_id)

    def submit(self, node_id: int, state: StateDict, n_samples: int) -> StateDict:
        """Record node ``node_id``'s update; the last submitter of a round merges; all return the merge."""
        with self._closed:
            if self._error is not None:
                raise self._error
            if node_id in self._pending:
                raise SwarmProtocolError(f"node {node_id} already submitted in round {len(self.history)}")
            if n_samples < 1:
                raise SwarmProtocolError(f"node {node_id}: n_samples must be >= 1, got {n_samples}")
            this_round = len(self.history)
            self._pending[node_id] = (state, n_samples)
            if len(self._pending) == self.n_nodes:
                self._close_round()
            elif not self._closed.wait_for(lambda: len(self.history) > this_round or self._error is not None,
                                           timeout=self.timeout):
                del self._pending[node_id]
                missing = sorted(set(range(self.n_nodes)) - set(self._pending) - {node_id})
                raise SwarmTimeoutError(f"round {this_round}: node {node_id} waited {self.timeout} s "
                                        f"for nodes {missing}")
            if self._error is not None:
                raise self._error
            return {key: value.clone() for key, value in self._global.items()}

    def _close_round(self) -> None:
        ids = sorted(self._pending)
        updates = [self._pending[i][0] for i in ids]
        counts = [self._pending[i][1] for i in ids]
        leader = int(np.random.default_rng([self.seed, len(self.history)]).integers(self.n_nodes))
        try:
            self._global = merge(self.rule, updates, previous=self._global, weights=counts, anchor=leader,
                                 **self.merge_options)
        except Exception as error:
            self._error = error
        else:
            self.history.append(RoundRecord(round=len(self.history), leader=leader, n_samples=counts))
        finally:
            self._pending.clear()
            self._closed.notify_all()
