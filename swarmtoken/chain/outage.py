"""Riding out chain outages: which errors mean "the chain cannot be reached", and a watch
that waits with bounded exponential backoff and logs once per change of state.

Why a watch and not a retry decorator around each call: a node's loop reads the chain
state afresh every poll, so after an outage the right thing is not to repeat the failed
call but to wait, then resume from wherever the chain is. What a transaction did before
the chain went away is read back from the chain like everything else (a node checks
``memberOf(...).lastSubmitEpoch`` before committing, the reporters bitmap before
reporting), so a repeated poll never sends a transaction twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

log = logging.getLogger(__name__)

#: Raised by web3's HTTP provider when the RPC endpoint refuses the connection, times out,
#: or answers with an HTTP error (a 5xx from a proxy in front of the node), and by the
#: standard library's sockets.
CHAIN_DOWN_ERRORS: tuple[type[BaseException], ...] = (requests.exceptions.RequestException, ConnectionError,
                                                      TimeoutError)


class ChainWatch:
    """The chain's reachability as a node's loop sees it. Call :meth:`failed` with each
    outage error (it logs the first, and returns how long to wait) and :meth:`reachable`
    after every poll that reached the chain (it logs the recovery once)."""

    def __init__(self, first_delay: float = 0.5, max_delay: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not 0 < first_delay <= max_delay:
            raise ValueError(f"need 0 < first_delay <= max_delay, got {first_delay} and {max_delay}")
        self.first_delay, self.max_delay = first_delay, max_delay
        self._clock = clock
        self.down_since: float | None = None
        self.failures = 0

    def failed(self, error: BaseException) -> float:
        """Record one failed poll; returns the seconds to wait before the next one
        (``first_delay * 2^k``, at most ``max_delay``)."""
        if self.down_since is None:
            self.down_since = self._clock()
            log.warning("chain unreachable since %s (%s: %s); retrying with backoff up to %.0f s",
                        time.strftime("%H:%M:%S", time.localtime(self.down_since)), type(error).__name__,
                        _first_line(error), self.max_delay)
        delay = min(self.max_delay, self.first_delay * 2 ** min(self.failures, 32))
        self.failures += 1
        return delay

    def reachable(self, block: Callable[[], int]) -> None:
        """Record a poll that reached the chain; ``block`` reads the current block number,
        called only to log a recovery."""
        if self.down_since is None:
            return
        log.info("chain back at block %d after %.0f s", block(), self._clock() - self.down_since)
        self.down_since, self.failures = None, 0


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""


def quiet_confirmation_threads() -> None:
    """Keep brownie's per-transaction confirmation threads from printing a traceback when
    the chain goes away under them. Those threads only matter to a caller that waits on
    brownie's confirmation; the node waits for its receipts itself (``Node._send``) and its
    loop logs the outage once. Every other thread's exceptions still reach the previous hook.
    Idempotent."""
    previous = threading.excepthook
    if getattr(previous, "quiets_confirmations", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else ""
        if isinstance(args.exc_value, CHAIN_DOWN_ERRORS) and name.endswith("(_await_confirmation)"):
            return
        previous(args)

    hook.quiets_confirmations = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def custom_error_text(exc: Exception, abi: list[dict[str, Any]]) -> str:
    """A revert web3 raised (``ContractLogicError``) in words: a custom error of ``abi``
    decoded to ``Name(arg, ...)``, else web3's own message."""
    from eth_abi import decode
    from eth_utils import keccak

    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        raw = bytes.fromhex(data[2:])
        for entry in abi:
            if entry.get("type") != "error":
                continue
            types = [i["type"] for i in entry.get("inputs", [])]
            if keccak(text=f"{entry['name']}({','.join(types)})")[:4] == raw[:4]:
                try:
                    values = decode(types, raw[4:])
                except Exception:  # malformed revert data: show the name alone
                    return f"{entry['name']}(...)"
                return f"{entry['name']}({', '.join(map(str, values))})"
    return str(exc)
