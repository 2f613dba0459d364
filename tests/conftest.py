"""Fixtures are split by concern under tests/fixtures (Curve style)."""

pytest_plugins = [
    "tests.fixtures.accounts",
    "tests.fixtures.deployments",
]
