"""The chain watch: bounded exponential backoff, and one log line per change of state."""

import logging

import pytest
import requests

from swarmtoken.chain.outage import CHAIN_DOWN_ERRORS, ChainWatch


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
