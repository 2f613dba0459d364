"""`swarm ledger`'s membership view on real events: a node suspended after two epochs
without a vote is read back with the epoch and strike count of `NodeSuspended`, each strike
named, and the admin's renewed authorisation with its allowance, lifting the suspension."""

from swarmtoken.chain.ledger import read_ledger
from swarmtoken.cli.views import membership_rows
from tests.fixtures.deployments import ALLOWANCE


def test_suspension_and_renewal_read_back_with_their_reasons(swarm, protocol, admin, nodes):
    members = nodes[:4]
    laggard = members[3]
    protocol.enroll(members)
    protocol.run_epoch(members, [10, 20, 30, -5])
    protocol.run_epoch(members, [10, 20, 30, 0])
    swarm.authorize(laggard, 0, ALLOWANCE, {"from": admin})

    ledger = read_ledger(swarm)
    suspended = [e for e in ledger.membership if e.kind == "suspended"]
    assert [(e.account, e.epoch, e.strikes) for e in suspended] == [(laggard.address, 2, 2)]
    assert (ledger.membership[-1].kind, ledger.membership[-1].allowance, ledger.membership[-1].expiry) == (
        "authorized", ALLOWANCE, 0)
    rows = {(row["event"], row["account"]): row for row in membership_rows(ledger)}
    assert rows[("suspended", laggard.address)]["reason"] == (
        "2 consecutive strikes, the last in epoch 2 (epoch 1: evidence backs under half its data; "
        "epoch 2: evidence backs under half its data)")
    assert membership_rows(ledger)[-1]["reason"].endswith("lifts its suspension (strikes reset, it may enrol again)")
