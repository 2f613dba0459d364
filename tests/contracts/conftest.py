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

from swarmtoken.chain.confirmation import wait_for_receipts_first

# brownie's pytest plugin connects without `chain.connection.connect`: install the same
# confirmation fix here (a mined transaction is otherwise now and then called dropped).
wait_for_receipts_first()
