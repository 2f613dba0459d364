"""brownie's confirmation of a transaction, made safe against anvil's order of writes.

brownie confirms each transaction in a thread that asks for the sender's nonce first and
for the receipt second, and calls the transaction dropped when the nonce has moved past it
but no receipt came back. anvil applies a mined block's state (the new nonce) before it
stores the block's receipts, so on a loaded machine the two reads can fall between those
writes: a transaction that was mined and succeeded is then reported as "Tx dropped without
known replacement" and the caller's call raises (seen in the contract tests under the full
suite's load, and in the gas benchmark when dozens of transfers went out in a row).
Waiting for the receipt before brownie's own loop starts closes that window; a transaction
that really is dropped or replaced still reaches brownie's handling, a few seconds later.
"""

from __future__ import annotations

import functools
import time
from typing import Any

#: How long to wait for a receipt before brownie's own loop takes over (seconds). A local
#: chain mines within milliseconds; on a public network brownie's loop then keeps waiting.
RECEIPT_WAIT = 10.0
#: The first pause between polls, doubled after each miss up to brownie's own pace (1 s):
#: the race lasts milliseconds, and a chain with a block time (1 s in the multi-host test)
#: should not be asked 20 times per transaction.
FIRST_POLL, LAST_POLL = 0.02, 1.0


def wait_for_receipts_first() -> None:
    """Make every brownie transaction confirmation wait up to ``RECEIPT_WAIT`` for its
    receipt before brownie checks the sender's nonce. Idempotent; the thread keeps the
    name ``_await_confirmation`` (``outage.quiet_confirmation_threads`` relies on it)."""
    from brownie.network.transaction import TransactionReceipt

    original = TransactionReceipt._await_confirmation
    if getattr(original, "waits_for_receipt", False):
        return

    @functools.wraps(original)
    def _await_confirmation(self: Any, *args: Any, **kwargs: Any) -> None:
        _wait_for_receipt(self.txid, RECEIPT_WAIT)
        original(self, *args, **kwargs)

    _await_confirmation.waits_for_receipt = True  # type: ignore[attr-defined]
    TransactionReceipt._await_confirmation = _await_confirmation


def _wait_for_receipt(txid: str, timeout: float) -> None:
    """Poll for ``txid``'s receipt until it exists or ``timeout`` passes; connection errors
    propagate as they would from brownie's own polling."""
    from brownie import web3
    from hexbytes import HexBytes
    from web3.exceptions import TransactionNotFound

    deadline, pause = time.monotonic() + timeout, FIRST_POLL
    while True:
        try:
            if web3.eth.get_transaction_receipt(HexBytes(txid))["blockHash"] is not None:
                return
        except TransactionNotFound:
            pass
        if time.monotonic() >= deadline:
            return
        time.sleep(pause)
        pause = min(2 * pause, LAST_POLL)
