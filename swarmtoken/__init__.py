"""Swarm's node, SDK and CLI layer: chain client, parameter store, ledger and audit.

Kept free of heavy imports (brownie, web3, torch) so that `swarm --help` and
`swarm --version` start instantly; modules import those where they need them.
"""

__version__ = "0.1.0"
