"""Swarm's node, SDK and CLI layer: chain client, parameter store, ledger and audit.

Kept free of heavy imports (brownie, web3, torch) so that `swarm --help` and
`swarm --version` start instantly; modules import those where they need them.
"""

from typing import Any

__version__ = "0.1.0"


def connect(config: Any, model: Any, validation: Any, **options: Any) -> Any:
    """Run a swarm node for your own model and training loop in this process and return
    its `trainer.SwarmBackend` (a `swarmtoken.backend.ChainSwarm`); see `swarmtoken.backend`."""
    from .backend import connect as start

    return start(config, model, validation, **options)
