"""`swarm rewards` and `swarm claim` on real events: what an account earned, claimed and
forfeited, when it may claim (after two clean epochs, or at the finish), and why a claim
would be refused, in words that say what to do."""

from types import SimpleNamespace

from rich.console import Console

from swarmtoken.cli.views import claim_refusal, claim_status, rewards_table
from tests.fixtures.scores import in_units


def _text(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_a_locked_balance_says_when_it_can_be_claimed(swarm, token, protocol, nodes):
    members = nodes[:3]
    protocol.enroll(members)
    node = members[0]
    assert claim_status(swarm, node.address) == "nothing to claim"
    assert claim_refusal(swarm, node.address, 0).endswith(
        "has nothing to claim yet; credits arrive when an epoch it took part in settles")
    protocol.run_epoch(members, [5, 5, 5])
    assert claim_status(swarm, node.address) == "after 1 more clean epoch, or at the finish"
    assert "tokens are locked: a node claims after 2 consecutive epochs it took part in without a strike (it has 1)" \
        in claim_refusal(swarm, node.address, 0)
    text = _text(rewards_table(SimpleNamespace(swarm=swarm, token=token, record={"block": 0}), node.address))
    assert "forfeited" in text and "after 1 more clean epoch" in text
    protocol.run_epoch(members, [5, 5, 5])
    assert claim_status(swarm, node.address) == "now" and claim_refusal(swarm, node.address, 0) is None
    swarm.claim({"from": node})
    assert claim_status(swarm, node.address) == "nothing to claim"
    assert "nothing left to claim: it already claimed" in claim_refusal(swarm, node.address, 0)


def test_a_forfeited_balance_is_named_with_who_can_lift_the_suspension(swarm, protocol, nodes):
    """Rated 1 where the others get 50-70: paid for the little its credit backs, struck
    twice, suspended with that pay unclaimed."""
    members = nodes[:4]
    protocol.enroll(members)
    lazy = members[3]
    for _ in range(2):
        tx = protocol.run_epoch(members, in_units([50, 60, 70, 1], 10**7))
    lost = tx.events["BalanceForfeited"]["amount"]
    assert lost > 0
    refusal = claim_refusal(swarm, lazy.address, 0)
    assert "has nothing to claim: its suspension forfeited its unclaimed" in refusal
    assert "only the consortium admin can lift a suspension (swarm authorize)" in refusal
