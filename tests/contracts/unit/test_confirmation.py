"""A transaction mined while its receipt is not yet served is confirmed, not called dropped
(`swarmtoken.chain.confirmation`): anvil stores a block's receipts after its state, so
brownie's nonce-then-receipt check can fall between the two writes on a loaded machine."""

import pytest
from brownie import web3
from brownie.exceptions import TransactionError
from brownie.network.transaction import TransactionReceipt
from web3.exceptions import TransactionNotFound

from swarmtoken.chain import confirmation


def _receipts_served_late(monkeypatch, misses: int) -> None:
    """The next ``misses`` receipt lookups find nothing, as between anvil's two writes."""
    served = web3.eth.get_transaction_receipt
    left = [misses]

    def late(txid):
        if left[0] > 0:
            left[0] -= 1
            raise TransactionNotFound(f"receipt of {txid!r} not stored yet")
        return served(txid)

    monkeypatch.setattr(web3.eth, "get_transaction_receipt", late)


def test_a_mined_transaction_whose_receipt_comes_late_is_confirmed(monkeypatch, admin, outsider):
    _receipts_served_late(monkeypatch, misses=3)
    tx = admin.transfer(outsider, 1)
    assert tx.status == 1 and tx.block_number is not None


def test_without_the_wait_brownie_calls_that_transaction_dropped(monkeypatch, admin, outsider):
    """The control: the race is real in brownie's own loop, so the test above can fail."""
    wrapped = TransactionReceipt._await_confirmation
    monkeypatch.setattr(TransactionReceipt, "_await_confirmation", wrapped.__wrapped__)
    _receipts_served_late(monkeypatch, misses=3)
    with pytest.raises(TransactionError, match="dropped without known replacement"):
        admin.transfer(outsider, 1)


def test_installing_twice_wraps_once():
    before = TransactionReceipt._await_confirmation
    confirmation.wait_for_receipts_first()
    assert TransactionReceipt._await_confirmation is before
    assert before.__name__ == "_await_confirmation"  # the outage hook finds its threads by it
