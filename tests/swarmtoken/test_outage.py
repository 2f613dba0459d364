"""The chain watch: bounded exponential backoff, and one log line per change of state."""

import logging

import pytest
import requests

from swarmtoken.chain.outage import CHAIN_DOWN_ERRORS, ChainWatch, quiet_confirmation_threads


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_its_bound_and_resets_once_the_chain_is_back():
    watch = ChainWatch(first_delay=0.5, max_delay=4.0, clock=Clock())
    error = requests.exceptions.ConnectionError("refused")
    assert [watch.failed(error) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    watch.reachable(lambda: 7)
    assert watch.down_since is None and watch.failed(error) == 0.5


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog):
    clock = Clock()
    watch = ChainWatch(clock=clock)
    caplog.set_level(logging.INFO, logger="swarmtoken.chain.outage")
    watch.reachable(lambda: pytest.fail("no outage: the block number is not read"))
    for _ in range(5):
        watch.failed(requests.exceptions.ConnectionError("Connection refused\nmore detail"))
    clock.now += 21
    watch.reachable(lambda: 42)
    watch.reachable(lambda: 43)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("chain unreachable since ") and "ConnectionError: Connection refused" in messages[0]
    assert "more detail" not in messages[0]
    assert messages[1] == "chain back at block 42 after 21 s"


@pytest.mark.parametrize("error", [requests.exceptions.ConnectionError(), requests.exceptions.ReadTimeout(),
                                   requests.exceptions.HTTPError("502 Bad Gateway"), ConnectionRefusedError(),
                                   TimeoutError()])
def test_what_counts_as_the_chain_being_down(error):
    assert isinstance(error, CHAIN_DOWN_ERRORS)


def test_a_contract_revert_is_not_an_outage():
    from brownie.exceptions import VirtualMachineError

    assert not issubclass(VirtualMachineError, CHAIN_DOWN_ERRORS)


@pytest.mark.parametrize(("first", "most"), [(0, 1), (-1, 1), (2, 1)])
def test_backoff_bounds_are_checked(first, most):
    with pytest.raises(ValueError, match="first_delay"):
        ChainWatch(first_delay=first, max_delay=most)


def test_a_confirmation_thread_killed_by_an_outage_is_quiet_and_other_threads_are_not(monkeypatch):
    """brownie confirms each transaction in a thread named after `_await_confirmation`; the
    node waits for receipts itself, so that thread dying with the outage is noise."""
    import threading

    seen = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append((args.thread.name, args.exc_type)))
    quiet_confirmation_threads()
    quiet_confirmation_threads()  # idempotent: wraps the hook once

    def _await_confirmation():
        raise requests.exceptions.ConnectionError("Connection reset by peer")

    def other():
        raise requests.exceptions.ConnectionError("not brownie's")

    def broken():
        raise ValueError("a bug")

    for target in (_await_confirmation, other, broken):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    assert [kind for _, kind in seen] == [requests.exceptions.ConnectionError, ValueError]
    assert all("_await_confirmation" not in name for name, _ in seen)


def test_a_custom_error_web3_raised_is_decoded_with_the_contracts_abi():
    """On a live network the gas estimate meets the revert and web3 raises
    ContractCustomError with the raw data: the node logs the error by name."""
    from eth_abi import encode
    from eth_utils import keccak
    from web3.exceptions import ContractCustomError

    from swarmtoken.chain.outage import custom_error_text

    abi = [{"type": "error", "name": "DeadlinePassed", "inputs": [{"type": "uint256"}, {"type": "uint64"}]},
           {"type": "function", "name": "settle", "inputs": []}]
    data = "0x" + (keccak(text="DeadlinePassed(uint256,uint64)")[:4] + encode(["uint256", "uint64"], [3, 99])).hex()
    assert custom_error_text(ContractCustomError(data, data=data), abi) == "DeadlinePassed(3, 99)"
    unknown = "0x12345678"
    assert unknown in custom_error_text(ContractCustomError(unknown, data=unknown), abi)
