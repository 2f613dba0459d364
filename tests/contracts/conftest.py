"""Contract-test fixtures, split by concern under tests/fixtures (Curve style) and scoped
to tests/contracts so the chain-free trainer tests run without brownie."""

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
    connection the same chain-id cache and receipt wait."""
    steady_connection()
