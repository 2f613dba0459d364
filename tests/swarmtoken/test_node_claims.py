"""A node claims mid-run what its clean epochs unlocked, at most every `claim_every`
epochs and once per epoch, so a later suspension cannot forfeit it; never while the
contract would refuse (fewer than CLAIM_AFTER clean epochs, nothing to claim). The
decision is tested here on a recorded chain state; the claim itself on chain is
`tests/contracts/unit/test_claim_lock.py`."""

from __future__ import annotations

from types import SimpleNamespace

from swarmtoken.node.runtime import Node
from swarmtoken.node.work import EpochWork


class Chain:
    """What `_claim_if_due` reads of the contract, and the claims sent."""

    def __init__(self, clean: int, claimable: int) -> None:
        self.clean, self.balance, self.sent = clean, claimable, []

    def claimable(self, address: str) -> int:
        return self.balance

    def claimUnlocked(self, address: str) -> bool:  # noqa: N802 (the contract's name)
        return self.clean >= 2


def node(chain: Chain, every: int = 5) -> SimpleNamespace:
    state = SimpleNamespace(config=SimpleNamespace(node=SimpleNamespace(claim_every=every)), swarm=chain,
                            address="0xnode", _last_claim=0)

    def send(method: str) -> bool:
        chain.sent.append(method)
        chain.balance = 0
        return True

    state._send = send
    return state


def test_a_node_claims_once_unlocked_then_waits_claim_every_epochs() -> None:
    chain = Chain(clean=1, claimable=10)
    me = node(chain)
    Node._claim_if_due(me, 5, EpochWork())
    assert chain.sent == []  # locked: one clean epoch
    chain.clean = 2
    work = EpochWork()
    Node._claim_if_due(me, 6, work)
    Node._claim_if_due(me, 6, work)  # a second pass of the same epoch
    assert chain.sent == ["claim"] and me._last_claim == 6
    chain.balance = 10
    for epoch in range(7, 11):
        Node._claim_if_due(me, epoch, EpochWork())
    assert chain.sent == ["claim"]  # not before epoch 11
    Node._claim_if_due(me, 11, EpochWork())
    assert chain.sent == ["claim", "claim"]


def test_nothing_to_claim_or_claim_every_zero_sends_nothing() -> None:
    chain = Chain(clean=3, claimable=0)
    Node._claim_if_due(node(chain), 9, EpochWork())
    chain.balance = 10
    Node._claim_if_due(node(chain, every=0), 9, EpochWork())
    assert chain.sent == []
