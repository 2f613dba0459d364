"""The slot between a user's own training loop and the swarm node running in a thread of
the same process (`swarmtoken.connect`): the loop offers its parameters and waits; the
node commits them when the epoch allows and hands back the model the chain recorded.

An offer carries the epoch of the global model it was trained from. The node commits it
only while that is still the swarm's current model (an update trained from an older one
would be stale); otherwise the loop gets the current model at once and goes on from it.
The offer stays until a newer global model is adopted, so an epoch abandoned for want of
peers does not lose it: the node commits it again in the next epoch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
from torch import nn

StateDict = dict[str, torch.Tensor]


class SwarmStoppedError(RuntimeError):
    """The node thread stopped (an error, or `close`); the message says why."""


@dataclass(frozen=True)
class Offer:
    state: StateDict
    n_samples: int
    base_epoch: int  # the global model's epoch the parameters were trained from


@dataclass(frozen=True)
class OwnLoop:
    """What a node driven by the user's own loop learns with: the user's model (any
    ``nn.Module``; the node validates and scores copies of it through
    ``torch.func.functional_call``), the user's validation rows, and the handover."""

    model: nn.Module
    X_val: torch.Tensor
    y_val: torch.Tensor
    handover: Handover


class Handover:
    """Thread-safe exchange of offers and global models (see the module docstring)."""

    def __init__(self, epoch: int, state: StateDict) -> None:
        self._changed = threading.Condition()
        self._offer: Offer | None = None
        self._epoch = epoch
        self._state = state
        self._finished = False
        self._error: BaseException | None = None

    # ------------------------------------------------------------ the user's side
    def submit(self, state: StateDict, n_samples: int, base_epoch: int, timeout: float | None) -> tuple[int, StateDict]:
        """Offer ``state`` and wait until a global model newer than ``base_epoch`` is adopted
        (or the swarm finished); return its epoch and a copy of it.

        Raises:
            SwarmStoppedError: the node stopped before that.
            TimeoutError: ``timeout`` seconds passed.
        """
        with self._changed:
            self._offer = Offer(state, n_samples, base_epoch)
            self._changed.notify_all()
            if not self._changed.wait_for(lambda: self._epoch > base_epoch or self._finished or self._error,
                                          timeout=timeout):
                self._offer = None
                raise TimeoutError(f"no new global model within {timeout} s (the swarm is at epoch {self._epoch})")
            self._offer = None
            if self._error is not None and self._epoch <= base_epoch:
                raise SwarmStoppedError(f"the swarm node stopped: {self._error}") from self._error
            return self._epoch, {key: value.clone() for key, value in self._state.items()}

    @property
    def finished(self) -> bool:
        with self._changed:
            return self._finished

    @property
    def current(self) -> tuple[int, StateDict]:
        with self._changed:
            return self._epoch, {key: value.clone() for key, value in self._state.items()}

    # ------------------------------------------------------------ the node's side
    def take(self, global_epoch: int) -> Offer | None:
        """The offer to commit in an epoch that starts from global model ``global_epoch``:
        None when there is none or it was trained from an older model."""
        with self._changed:
            offer = self._offer
            return offer if offer is not None and offer.base_epoch == global_epoch else None

    def adopted(self, epoch: int, state: StateDict) -> None:
        with self._changed:
            self._epoch, self._state = epoch, state
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._changed:
            self._error = error
            self._changed.notify_all()
