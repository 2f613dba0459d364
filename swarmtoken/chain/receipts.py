"""Waiting for a transaction's receipt without waiting for one that can no longer come.

A reorganisation of recent blocks leaves a sender's transaction in one of two states that
``wait_for_transaction_receipt`` would wait out to its timeout: the transaction was mined
and its block replaced (the chain no longer knows it), or it was signed with a nonce read
before the reorganisation and now sits behind a nonce the chain no longer has (a gap: it
stays pending until that nonce is used). Either way the only way on is to read the chain's
state again and send what is still needed, with the nonce the chain has now.
"""

from __future__ import annotations

import time
from typing import Any

#: Seconds between receipt polls: with a chain that mines on arrival, the first poll answers.
POLL_S = 0.05
#: Seconds a transaction may look lost (unknown, or behind a nonce gap) before it is given
#: up: long enough that a transaction is not taken for lost while it propagates.
LOST_AFTER_S = 1.0


class TransactionLost(Exception):
    """The chain can no longer mine our transaction (see the module docstring)."""


def await_receipt(web3: Any, txid: str, sender: str, nonce: int, timeout: float) -> Any:
    """The receipt of ``txid``; TransactionLost once it has been unknown to the chain, or
    pending behind a nonce gap, for LOST_AFTER_S; ``web3``'s TimeExhausted after ``timeout``
    (a pending transaction the chain may still mine, on a slow chain)."""
    from web3.exceptions import TimeExhausted, TransactionNotFound

    start = time.monotonic()
    lost_since: float | None = None
    while True:
        try:
            return web3.eth.get_transaction_receipt(txid)
        except TransactionNotFound:
            pass
        now = time.monotonic()
        if now - start >= timeout:
            raise TimeExhausted(f"no receipt for {txid} within {timeout:.0f} s")
        if now - start >= LOST_AFTER_S / 2:  # the common case (mined at once) never pays these reads
            if _unminable(web3, txid, sender, nonce):
                lost_since = now if lost_since is None else lost_since
                if now - lost_since >= LOST_AFTER_S:
                    raise TransactionLost(txid)
            else:
                lost_since = None
        time.sleep(POLL_S)


def _unminable(web3: Any, txid: str, sender: str, nonce: int) -> bool:
    from web3.exceptions import TransactionNotFound

    try:
        web3.eth.get_transaction(txid)
    except TransactionNotFound:
        return True
    return int(web3.eth.get_transaction_count(sender, "latest")) < nonce
