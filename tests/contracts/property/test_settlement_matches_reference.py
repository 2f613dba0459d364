"""Settlement on chain matches the Python reference rule (swarmtoken.rewards) to the wei.

Hypothesis draws whole epochs: which committed nodes the leader merges (3..8 participants
out of up to 8 commits), int64 scores including the bounds, sample counts up to 2**64 - 1
(above and below the sample cap), metrics, which participants report (settlement then
waits for the report deadline), a leader that times out, and removed participants. Every
example runs one or two epochs, so the second budget includes the first epoch's carry.

Deployments are costly, so the swarms (one per beta / sample cap / reward below, each
with eight enrolled nodes) are deployed once per test function; brownie's ``given``
snapshots the chain before the first example and reverts to it before every other one.
"""

from dataclasses import dataclass

import pytest
from brownie import chain
from brownie.test import given
from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st

from swarmtoken.rewards import Participant, settle
from tests.fixtures.deployments import Protocol

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1

# (beta, sample_cap, reward_per_epoch): data-only and quality-only splits, a beta of one
# basis point, caps of one sample and of the whole uint64 range, rewards of a few wei
# (rounding dominates) and of 10**32 tokens (products far beyond 128 bits).
SWARM_CONFIGS = [
    (0.3, 1000, "1000"),
    (0.0, 1, "1000"),
    (1.0, UINT64_MAX, "0.000000000000000007"),
    (0.0001, 2**40, "100000000000000000000000000000000"),
    (0.9999, 77, "3.000000000000000001"),
    (0.4321, 10**18, "0.000000000000001234"),
]


@dataclass(frozen=True)
class EpochPlan:
    """One epoch as drawn: commits, the leader's participant set, reports, timeouts."""

    samples: tuple  # per commit index
    participants: tuple  # ascending commit indices merged by the leader
    reports: tuple  # (participant position, metric, scores) in reporting order
    leader_times_out: bool
    removed: tuple  # participant positions the admin removes before settlement


int64s = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX]),
    st.integers(-1000, 1000),
)
sample_counts = st.one_of(
    st.integers(1, UINT64_MAX),
    st.sampled_from([1, 76, 77, 78, 999, 1000, 1001, 2**40, 10**18, UINT64_MAX - 1, UINT64_MAX]),
    st.integers(1, 5000),
)


@st.composite
def epoch_plans(draw):
    commits = draw(st.integers(3, 8))
    samples = tuple(draw(st.lists(sample_counts, min_size=commits, max_size=commits)))
    participants = tuple(
        sorted(draw(st.lists(st.integers(0, commits - 1), min_size=3, max_size=commits, unique=True)))
    )
    n = len(participants)
    positions = draw(st.permutations(range(n)))
    reporting = positions[: draw(st.integers(0, n))]
    reports = tuple(
        (pos, draw(int64s), tuple(draw(st.lists(int64s, min_size=n, max_size=n)))) for pos in reporting
    )
    removed = tuple(draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True)))
    return EpochPlan(samples, participants, reports, draw(st.booleans()), removed)


@pytest.fixture
def swarms(create_swarm, admin, nodes):
    """Every configuration of SWARM_CONFIGS deployed, with all eight nodes enrolled."""
    deployed = []
    for beta, cap, reward in SWARM_CONFIGS:
        swarm, token = create_swarm(beta=beta, sample_cap=cap, reward_per_epoch=reward, suspend_after=0)
        Protocol(swarm, admin).enroll(nodes)
        deployed.append((swarm, token))
    return deployed


def run_epoch_and_check(swarm, token, admin, nodes, plan: EpochPlan):
    """Drive one epoch by ``plan``, then hold settlement to swarmtoken.rewards.settle."""
    protocol = Protocol(swarm, admin)
    epoch = protocol.epoch
    config = swarm.config()
    committers = nodes[: len(plan.samples)]
    protocol.submit(committers, list(plan.samples))
    protocol.elect()
    skipped = None
    if plan.leader_times_out:
        skipped = swarm.epochState(epoch)["leaderIndex"]
        chain.sleep(config["mergeWindow"] + 1)
        swarm.failover(epoch, {"from": admin})
    protocol.publish(sum(1 << i for i in plan.participants))

    members = [committers[i] for i in plan.participants]
    for pos, metric, scores in plan.reports:
        protocol.report(members[pos], list(scores), metric)
    for pos in plan.removed:
        swarm.removeNode(members[pos], {"from": admin})
    if len(plan.reports) < len(members):
        chain.sleep(config["reportWindow"] + 1)

    budget = config["rewardPerEpoch"] + swarm.carry()
    claimable_before = [swarm.claimable(node) for node in committers]
    supply_before = token.totalSupply()
    tx = protocol.settle()

    reporters = {pos for pos, _, _ in plan.reports}
    expected = settle(
        budget,
        [
            Participant(
                samples=plan.samples[i],
                reported=pos in reporters,
                skipped_leader=i == skipped,
                removed=pos in plan.removed,
            )
            for pos, i in enumerate(plan.participants)
        ],
        [(metric, list(scores)) for _, metric, scores in plan.reports],
        beta_bps=config["betaBps"],
        sample_cap=config["sampleCap"],
    )

    settled = tx.events["EpochSettled"]
    assert (settled["epoch"], settled["budget"], settled["credited"], settled["carried"]) == (
        epoch,
        budget,
        expected.credited,
        expected.carried,
    )
    assert settled["medianMetric"] == (0 if expected.median_metric is None else expected.median_metric)
    assert settled["reporters"] == len(plan.reports)

    rows = [
        (e["epoch"], e["node"], e["samples"], e["medianScore"], e["payout"], e["forfeited"])
        for e in tx.events["ParticipantSettled"]
    ]
    assert rows == [
        (epoch, node.address, min(plan.samples[i], config["sampleCap"]), median, payout, forfeited)
        for node, i, median, payout, forfeited in zip(
            members, plan.participants, expected.medians, expected.payouts, expected.forfeited
        )
    ]

    paid = {node.address: payout for node, payout in zip(members, expected.payouts)}
    deltas = [swarm.claimable(node) - before for node, before in zip(committers, claimable_before)]
    assert deltas == [paid.get(node.address, 0) for node in committers]
    assert swarm.carry() == expected.carried
    assert token.totalSupply() - supply_before == expected.credited
    assert swarm.currentEpoch() == epoch + 1

    for pos in plan.removed:  # restore membership so a following epoch can use the node
        swarm.authorize(members[pos], 0, {"from": admin})
        swarm.enroll("http://127.0.0.1/again", {"from": members[pos]})


@settings(
    max_examples=24,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(
    which=st.integers(0, len(SWARM_CONFIGS) - 1),
    plans=st.lists(epoch_plans(), min_size=1, max_size=2),
)
@example(  # nobody reports: nothing is paid and the whole budget is carried
    which=0,
    plans=[EpochPlan((5, 5, 5), (0, 1, 2), (), False, ()), EpochPlan((5, 5, 5), (0, 1, 2), (), False, ())],
)
@example(  # every score and sample at its bound, all report, quality-only split
    which=1,
    plans=[
        EpochPlan(
            (UINT64_MAX,) * 8,
            tuple(range(8)),
            tuple((p, INT64_MAX, (INT64_MAX,) * 7 + (INT64_MIN,)) for p in range(8)),
            False,
            (),
        )
    ],
)
def test_settlement_matches_reference_rule_to_the_wei(swarms, admin, nodes, which, plans):
    swarm, token = swarms[which]
    for plan in plans:
        run_epoch_and_check(swarm, token, admin, nodes, plan)
