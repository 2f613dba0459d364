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
    The contract's view calls are made at the block the events were read to, so the state
    is of one block. When the chain cannot be reached the last state is kept, marked
    ``chain_error``."""

    def __init__(self, swarm: Any, from_block: int = 0) -> None:
        self.swarm = swarm
        self.from_block = from_block
        self._entries: list[tuple[str, Any]] = []
        self._read_to = from_block - 1  # last block whose events are in _entries
        self._block: int | None = None
        self._state: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._by_topic: dict[bytes, tuple[str, Any]] | None = None

    def state(self) -> dict[str, Any]:
        with self._lock:
            try:
                self._refresh()
            except Exception as exc:  # the chain went away (or a call failed): keep what we had
                if self._state is None:
                    raise
                self._state = {**self._state, "chain_error": f"{type(exc).__name__}: {exc}"[:300]}
            return self._state

    def _events(self, from_block: int, to_block: int) -> list[tuple[str, Any]]:
        """The swarm's decoded events in [from_block, to_block], in chain order, from one
        ``eth_getLogs`` on its address (brownie's ``get_sequence`` asks once per event type)."""
        from brownie import web3

        if self._by_topic is None:
            names = [item["name"] for item in self.swarm.abi if item.get("type") == "event"]
            events = {name: getattr(self.swarm.events, name) for name in names}
            self._by_topic = {bytes.fromhex(event.topic[2:]): (name, event) for name, event in events.items()}
        logs = web3.eth.get_logs({"address": self.swarm.address, "fromBlock": from_block, "toBlock": to_block})
        entries = []
        for raw in logs:
            known = self._by_topic.get(bytes(raw["topics"][0])) if raw["topics"] else None
            if known is not None:
                entries.append((known[0], known[1]().process_log(raw)))
        entries.sort(key=lambda item: (item[1].blockNumber, item[1].logIndex))
        return entries

    def _refresh(self) -> None:
        from brownie import web3

        block = int(web3.eth.block_number)
        if block == self._block and self._state is not None and "chain_error" not in self._state:
            return
        if block > self._read_to:
            self._entries.extend(self._events(self._read_to + 1, block))
            self._read_to = block
        ledger = assemble(self._entries)

        def at_block(method: Any, *args: Any) -> Any:  # every view read at the block the events end at
            return method.call(*args, block_identifier=block)

        swarm = self.swarm
        epoch = int(at_block(swarm.currentEpoch))
        finished = bool(at_block(swarm.finished))
        epoch_state = at_block(swarm.epochState, epoch)
        accounts = {e.account for e in ledger.membership}
        members = {account: member_state(account, at_block(swarm.memberOf, account)) for account in sorted(accounts)}
        try:
            max_epochs = int(at_block(swarm.config)["maxEpochs"])
        except Exception:
            max_epochs = None
        chain = ChainState(swarm=str(swarm.address), block=block, epoch=epoch,
                           phase="Finished" if finished else PHASES[int(epoch_state["phase"])], finished=finished,
                           deadline=int(epoch_state["deadline"]), max_epochs=max_epochs, members=members)
        state = build_state(ledger, chain)
        state["updated"] = time.time()
        self._block, self._state = block, state
