"""Reading the swarm for the dashboard: the contract's events, incrementally, and a few
view calls, cached by block number. Read-only: nothing here sends a transaction."""

from __future__ import annotations

import threading
import time
from typing import Any

from ..chain.epochview import PHASES
from ..chain.ledger import assemble
from .data import ChainState, build_state, member_state


class ChainSource:
    """The page's state for one swarm (a brownie contract), from ``from_block`` on.

    Events are read once: each refresh asks only for the blocks since the last one and
    folds all of them again (cheap, in memory). A refresh at the block already seen
    returns the cached state, so polling every second costs one ``eth_blockNumber``.
    When the chain cannot be reached the last state is kept, marked ``chain_error``."""

    def __init__(self, swarm: Any, from_block: int = 0) -> None:
        self.swarm = swarm
        self.from_block = from_block
        self._entries: list[tuple[str, Any]] = []
        self._read_to = from_block - 1  # last block whose events are in _entries
        self._block: int | None = None
        self._state: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def state(self) -> dict[str, Any]:
        with self._lock:
            try:
                self._refresh()
            except Exception as exc:  # the chain went away (or a call failed): keep what we had
                if self._state is None:
                    raise
                self._state = {**self._state, "chain_error": f"{type(exc).__name__}: {exc}"[:300]}
            return self._state

    def _refresh(self) -> None:
        from brownie import web3

        block = int(web3.eth.block_number)
        if block == self._block and self._state is not None and "chain_error" not in self._state:
            return
        if block > self._read_to:
            logbook = self.swarm.events.get_sequence(self._read_to + 1, block)
            new = [(name, event) for name, events in logbook.items() for event in events]
            new.sort(key=lambda item: (item[1].blockNumber, item[1].logIndex))
            self._entries.extend(new)
            self._read_to = block
        ledger = assemble(self._entries)
        swarm = self.swarm
        epoch = int(swarm.currentEpoch())
        finished = bool(swarm.finished())
        epoch_state = swarm.epochState(epoch)
        accounts = {e.account for e in ledger.membership}
        members = {account: member_state(account, swarm.memberOf(account)) for account in sorted(accounts)}
        try:
            max_epochs = int(swarm.config()["maxEpochs"])
        except Exception:
            max_epochs = None
        chain = ChainState(swarm=str(swarm.address), block=block, epoch=epoch,
                           phase="Finished" if finished else PHASES[int(epoch_state["phase"])], finished=finished,
                           deadline=int(epoch_state["deadline"]), max_epochs=max_epochs, members=members)
        state = build_state(ledger, chain)
        state["updated"] = time.time()
        self._block, self._state = block, state
