"""Contract-test fixtures, split by concern under tests/fixtures (Curve style) and scoped
to tests/contracts so the chain-free trainer tests run without brownie."""

import sys
from types import SimpleNamespace

import pytest

pytest.register_assert_rewrite("tests.fixtures")

from tests.fixtures.accounts import admin, many_nodes, nodes, outsider  # noqa: F401
from tests.fixtures.deployments import (  # noqa: F401
    _isolation,
    _module_isolation,
    create_swarm,
    deployed,
    protocol,
    swarm,
    token,
)
from swarmtoken.chain.connection import steady_connection


@pytest.fixture(scope="session", autouse=True)
def _steady_connection():
    """brownie's pytest plugin connects without `chain.connection.connect`: give its
    connection the same chain-id cache and receipt wait, and `_CallerFrame`."""
    steady_connection()
    sys.modules["brownie.network.rpc"].inspect = _CallerFrame  # the module (brownie.network.rpc is the Rpc)


class _CallerFrame:
    """brownie's `Rpc` methods (snapshot, revert, sleep, mine: every test's isolation) check
    who called them with ``inspect.stack()[1].frame``, and ``inspect.stack()`` reads the
    source of every frame on the stack: a tenth of a contract test module's time (4.3 s of
    44 s in test_suspension.py). This answers the same question from the frame alone."""

    @staticmethod
    def stack() -> list:
        return [None, SimpleNamespace(frame=sys._getframe(2))]  # 0: here, 1: brownie's check, 2: its caller

