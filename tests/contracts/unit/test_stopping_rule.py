"""The stopping rule, evaluated at settlement: the target metric, maxEpochs, and patience
with minDelta each finish the swarm; afterwards every protocol call is refused but credits
can still be claimed."""

from brownie import chain

from tests.fixtures.deployments import NO_REPORTS, Protocol
from tests.fixtures.errors import reverts_with

SCORES = [10, 20, 30]


def start(create_swarm, admin, nodes, **overrides):
    swarm, token = create_swarm(**overrides)
    protocol = Protocol(swarm, admin)
    protocol.enroll(nodes[:3])
    return swarm, token, protocol


def test_reaching_the_target_metric_finishes_the_swarm(create_swarm, admin, nodes):
    swarm, token, protocol = start(create_swarm, admin, nodes, target_metric=0.9)
    assert swarm.config()["targetMetric"] == 900_000
    tx = protocol.run_epoch(nodes[:3], SCORES, metric=899_999)
    assert "SwarmFinished" not in tx.events
    assert not swarm.finished()

    tx = protocol.run_epoch(nodes[:3], SCORES, metric=900_000)
    assert tx.events["SwarmFinished"]["epoch"] == 2
    assert tx.events["SwarmFinished"]["bestMetric"] == 900_000
    assert "EpochOpened" not in tx.events
    assert swarm.finished()
    assert swarm.currentEpoch() == 2
    assert swarm.bestMetric() == 900_000


def test_finished_swarm_refuses_protocol_calls_but_pays_claims(create_swarm, admin, nodes):
    swarm, token, protocol = start(create_swarm, admin, nodes, max_epochs=1)
    tx = protocol.run_epoch(nodes[:3], SCORES)
    assert tx.events["SwarmFinished"]["epoch"] == 1
    node = nodes[0]
    for call in [
        lambda: swarm.submitUpdate(2, b"\x01" * 32, 1, {"from": node}),
        lambda: swarm.submitUpdate(1, b"\x01" * 32, 1, {"from": node}),
        lambda: swarm.electLeader(1, {"from": node}),
        lambda: swarm.drawLeader(1, {"from": node}),
        lambda: swarm.abandonEpoch(1, {"from": node}),
        lambda: swarm.failover(1, {"from": node}),
        lambda: swarm.publishMerge(1, b"\x01" * 32, 0b111, {"from": node}),
        lambda: swarm.reportValidation(1, 1, b"\x01" * 32, 0b111, SCORES, {"from": node}),
        lambda: swarm.settle(1, NO_REPORTS, 0, {"from": node}),
    ]:
        with reverts_with("SwarmIsFinished"):
            call()

    supply = token.totalSupply()
    claimed = 0
    for member in nodes[:3]:
        amount = swarm.claimable(member)
        assert amount > 0
        swarm.claim({"from": member})
        assert token.balanceOf(member) == amount
        claimed += amount
    assert token.totalSupply() == supply == claimed + token.balanceOf(swarm)


def test_max_epochs_finishes_the_swarm(create_swarm, admin, nodes):
    swarm, _, protocol = start(create_swarm, admin, nodes, max_epochs=2)
    assert "SwarmFinished" not in protocol.run_epoch(nodes[:3], SCORES, metric=100).events
    tx = protocol.run_epoch(nodes[:3], SCORES, metric=50)
    assert tx.events["SwarmFinished"]["epoch"] == 2
    assert tx.events["SwarmFinished"]["bestMetric"] == 100
    assert swarm.finished()


def test_patience_runs_out_without_an_improvement_of_min_delta(create_swarm, admin, nodes):
    swarm, _, protocol = start(create_swarm, admin, nodes, patience=2, min_delta=0.01)
    assert swarm.config()["minDelta"] == 10_000
    steps = [
        (500_000, 500_000, 0),  # first metric sets the best
        (510_001, 510_001, 0),  # improved by more than minDelta: counts
        (520_001, 510_001, 1),  # improved by exactly minDelta: not enough (Keras' rule)
    ]
    for metric, best, stale in steps:
        tx = protocol.run_epoch(nodes[:3], SCORES, metric=metric)
        assert "SwarmFinished" not in tx.events
        assert (swarm.bestMetric(), swarm.staleEpochs()) == (best, stale)
    tx = protocol.run_epoch(nodes[:3], SCORES, metric=510_001)  # flat: no progress either
    assert tx.events["SwarmFinished"]["epoch"] == 4
    assert tx.events["SwarmFinished"]["bestMetric"] == 510_001
    assert swarm.finished()


def test_epoch_without_reports_counts_against_patience(create_swarm, admin, nodes):
    swarm, _, protocol = start(create_swarm, admin, nodes, patience=1)
    protocol.run_epoch(nodes[:3], SCORES, metric=500_000)
    assert not swarm.finished()
    tx = protocol.run_epoch(nodes[:3], SCORES, reporters=[])
    assert tx.events["EpochSettled"]["reporters"] == 0
    assert tx.events["SwarmFinished"]["epoch"] == 2
    assert tx.events["SwarmFinished"]["bestMetric"] == 500_000


def test_no_stopping_rule_fires_before_max_epochs(swarm, protocol, nodes):
    protocol.enroll(nodes[:3])
    for epoch, metric in enumerate([300_000, 200_000, 100_000], start=1):
        tx = protocol.run_epoch(nodes[:3], SCORES, metric=metric)
        assert "SwarmFinished" not in tx.events
        assert tx.events["EpochOpened"]["epoch"] == epoch + 1
    assert swarm.bestMetric() == 300_000
    assert swarm.staleEpochs() == 2
    assert not swarm.finished()


def test_max_epochs_counts_settled_epochs_not_abandoned_ones(create_swarm, admin, nodes):
    """`Config.maxEpochs` is documented as "the swarm finishes after this many settled
    epochs": an abandoned epoch must not use up one of them."""
    swarm, _, protocol = start(create_swarm, admin, nodes, max_epochs=2)
    protocol.submit(nodes[:3])
    protocol.elect()
    for _ in range(3):
        chain.sleep(61)
        tx = swarm.failover(1, {"from": admin})
    assert tx.events["EpochAbandoned"]["epoch"] == 1

    tx = protocol.run_epoch(nodes[:3], SCORES)  # the first settled epoch
    assert "SwarmFinished" not in tx.events
    assert not swarm.finished()
    tx = protocol.run_epoch(nodes[:3], SCORES)  # the second settled epoch
    assert tx.events["SwarmFinished"]["epoch"] == 3


def test_metric_of_an_epoch_without_quorum_does_not_count(create_swarm, admin, nodes):
    """One report of three commits is not a strict majority: its metric, although above the
    target, neither finishes the swarm nor becomes the best; the epoch counts as stale. A
    quorate epoch's metric does."""
    swarm, _, protocol = start(create_swarm, admin, nodes, target_metric=0.9)
    tx = protocol.run_epoch(nodes[:3], SCORES, reporters=nodes[:1], metric=950_000)
    assert not tx.events["EpochSettled"]["quorate"]
    assert tx.events["EpochSettled"]["medianMetric"] == 950_000
    assert "SwarmFinished" not in tx.events
    assert not swarm.finished()
    assert (swarm.bestMetric(), swarm.staleEpochs()) == (0, 1)

    tx = protocol.run_epoch(nodes[:3], SCORES, reporters=nodes[:2], metric=950_000)
    assert tx.events["EpochSettled"]["quorate"]
    assert tx.events["SwarmFinished"]["bestMetric"] == 950_000
