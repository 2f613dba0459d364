"""Settlement on chain matches the Python reference rule (swarmtoken.rewards) to the wei.

Hypothesis draws whole epochs: how many nodes commit (3..8) and the sample counts they
declare (below, at and above their attested allowances, up to 2**64 - 1), which committed
updates the leader leaves out of its merge, which committers report (participants or not,
in any order; fewer than a strict majority makes the epoch non-quorate, and settlement then
waits for the report deadline), each report's metric, scores (up to the score bounds), the
merge hash it recomputed (the leader's, another one, or zero: drawn around an epoch-wide
favourite so that some epochs have a strict majority against the leader) and its bitmap of
updates found valid (likewise, so that some left-out updates are censored), a leader that
times out, and removed nodes. Every example runs two to four epochs on one swarm, so each
budget after the first includes the previous carry and each participant's smoothed credit
carries over from the epochs before (a member's own report's score for itself is ignored,
both as its vote for itself and in that report's positive total, whether or not the others
reporting are participants; a report with no positive score for the others gives no vote).
Checked against the reference, which is given each participant's address and its smoothed
credit as the previous epochs left it in a model kept here: every payout, forfeit reason,
credit, smoothed credit and good standing (full data weight), the credited total and carry,
the median metric, quorum, the epoch's model hash, the MergeDisputed, UpdateCensored and UpdateRejected
events, and every enrolled node's smoothed credit and strikes (`memberOf`, participants or
not) against the model.

Deployments are costly, so the swarms (one per beta / allowances / reward below, each
with eight enrolled nodes) are deployed once per test function; brownie's ``given``
snapshots the chain before the first example and reverts to it before every other one.
The leader is drawn from a block hash, so it differs between runs of one example: the
plan names the updates left out, and the leader's own is always merged.
"""

from dataclasses import dataclass

import pytest
from brownie import chain
from brownie.test import given
from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st

from swarmtoken.config import SwarmConfig, chain_rule
from swarmtoken.rewards import VOTE_FLOOR, ZERO_HASH, Participant, Report, settle, strikes_after
from tests.fixtures.deployments import MERGED, Protocol

UINT64_MAX = 2**64 - 1
SCORE_BOUND = 10**9
METRIC_BOUND = 10**6
OTHER, THIRD = "22" * 32, "33" * 32
# MERGED is what Protocol.publish publishes; listed second so that the simplest draw (the
# first) is a hash that contradicts the leader.
HASHES = [OTHER, MERGED, ZERO_HASH, THIRD]

# (beta, per-node allowances, reward_per_epoch, (smoothing, standing)): data-only and
# quality-only splits, a beta of one basis point, allowances of one sample up to the whole
# uint64 range, rewards of a few wei (rounding dominates) and of the largest allowed, 10**12
# tokens (products far beyond 128 bits); no smoothing and the slowest, no standing threshold
# (full data weight for any positive credit) and the strictest (the default rule in the first
# and fifth).
DEFAULT_RULE = (SwarmConfig.smoothing, SwarmConfig.standing)
SWARM_CONFIGS = [
    (0.3, (1000,) * 8, "1000", DEFAULT_RULE),
    (0.0, (1, 77, 1000, 5000, 2**40, UINT64_MAX, 1, 3), "1000", (1.0, 0.0)),
    (1.0, (UINT64_MAX,) * 8, "0.000000000000000007", (0.0001, 1.0)),
    (0.0001, (2**40, 1, 10**18, 77, UINT64_MAX, 1000, 3, 2**63), "1000000000000", (0.3333, 0.5)),
    (0.9999, (77,) * 8, "3.000000000000000001", DEFAULT_RULE),
    (0.4321, (10**18, 1, 2, 1000, 999, 1001, UINT64_MAX - 1, 50), "0.000000000000001234", (0.9999, 0.0001)),
]


@dataclass(frozen=True)
class ReportPlan:
    reporter: int  # commit index of the reporter
    metric: int
    merged: str  # the merge hash it recomputed
    valid: int  # bitmap over commit indices it found valid
    scores: tuple  # one per commit; the first participantCount are reported


@dataclass(frozen=True)
class EpochPlan:
    """One epoch as drawn: declared samples per commit index, the updates the leader leaves
    out (never its own), reports in order, a timeout, removals before settlement."""

    declared: tuple
    left_out: tuple
    reports: tuple
    leader_times_out: bool
    removed: tuple  # commit indices the admin removes after the reports


scores = st.one_of(
    st.integers(1, SCORE_BOUND),  # mostly positive, so most participants are paid
    st.integers(-SCORE_BOUND, SCORE_BOUND),
    st.sampled_from([-SCORE_BOUND, -SCORE_BOUND + 1, -1, 0, 1, SCORE_BOUND - 1, SCORE_BOUND]),
    st.integers(-1000, 1000),
    st.integers(-VOTE_FLOOR // 4, VOTE_FLOOR // 4),  # a report's positive total straddles the vote floor
)
metrics = st.one_of(st.integers(0, METRIC_BOUND), st.sampled_from([0, 1, METRIC_BOUND - 1, METRIC_BOUND]))


def honest_samples(allowance):
    """At most ``allowance``: anywhere below it, just below it, at it, or one."""
    return st.one_of(st.integers(1, allowance), st.sampled_from(sorted({1, max(allowance - 1, 1), allowance})))


def inflated_samples(allowance):
    """Above ``allowance``: just above it, anywhere above it, or 2**64 - 1."""
    if allowance == UINT64_MAX:
        return st.just(UINT64_MAX)  # nothing is above: at the allowance
    return st.one_of(st.just(allowance + 1), st.integers(allowance + 1, UINT64_MAX), st.just(UINT64_MAX))


@st.composite
def epoch_plans(draw, allowances):
    commits = draw(st.integers(3, 8))
    over = draw(st.lists(st.integers(0, commits - 1), max_size=2, unique=True))  # usually none or one
    declared = tuple(
        draw(inflated_samples(allowances[i]) if i in over else honest_samples(allowances[i])) for i in range(commits)
    )
    # Updates the leader leaves out: mostly some, so that censorship can be judged.
    left_out = tuple(sorted(draw(st.one_of(
        st.lists(st.integers(0, commits - 1), min_size=min(1, commits - 3), max_size=commits - 3, unique=True),
        st.just([]),
    ))))
    order = draw(st.permutations(range(commits)))
    # About half the epochs quorate (a strict majority of committers reports), half not.
    reporters = order[: draw(st.one_of(st.integers(commits // 2 + 1, commits), st.integers(0, commits // 2)))]
    favourite_hash = draw(st.sampled_from(HASHES))
    favourite_valid = draw(st.one_of(st.just(2**commits - 1), st.integers(0, 2**commits - 1)))
    reports = tuple(
        ReportPlan(
            reporter,
            draw(metrics),
            draw(st.one_of(st.just(favourite_hash), st.sampled_from(HASHES))),
            draw(st.one_of(st.just(favourite_valid), st.integers(0, 2**commits - 1))),
            tuple(draw(st.lists(scores, min_size=commits, max_size=commits))),
        )
        for reporter in reporters
    )
    removed = tuple(draw(st.lists(st.integers(0, commits - 1), max_size=2, unique=True)))
    return EpochPlan(declared, left_out, reports, draw(st.booleans()), removed)


def swarm_and_plans():
    return st.integers(0, len(SWARM_CONFIGS) - 1).flatmap(
        lambda which: st.tuples(
            st.just(which), st.lists(epoch_plans(SWARM_CONFIGS[which][1]), min_size=2, max_size=4)
        )
    )


@pytest.fixture
def swarms(create_swarm, admin, nodes):
    """Every configuration of SWARM_CONFIGS deployed, with all eight nodes enrolled under
    their allowances."""
    deployed = []
    for beta, allowances, reward, (smoothing, standing) in SWARM_CONFIGS:
        swarm, token = create_swarm(beta=beta, reward_per_epoch=reward, suspend_after=0, smoothing=smoothing,
                                    standing=standing)
        protocol = Protocol(swarm, admin)
        for node, allowance in zip(nodes, allowances):
            protocol.enroll([node], allowance=allowance)
        deployed.append((swarm, token))
    return deployed


def hex_of(value) -> str:
    return bytes(value).hex() if isinstance(value, bytes) else str(value).removeprefix("0x")


def run_epoch_and_check(swarm, token, admin, nodes, allowances, plan: EpochPlan, smoothed: dict, strikes: dict):
    """Drive one epoch by ``plan``, then hold settlement to swarmtoken.rewards.settle, each
    participant starting from its smoothed credit in ``smoothed`` (address -> value), which
    is then moved to the reference's and compared with every node's on chain; likewise the
    strike counts in ``strikes`` (suspension is off in these swarms, so they only count)."""
    protocol = Protocol(swarm, admin)
    epoch = protocol.epoch
    config = swarm.config()
    commits = len(plan.declared)
    committers = nodes[:commits]
    protocol.submit(committers, list(plan.declared))
    samples = [min(d, allowances[i]) for i, d in enumerate(plan.declared)]
    assert [(c["node"], c["samples"], c["overDeclared"]) for c in (swarm.commitAt(epoch, i) for i in range(commits))] \
        == [(node.address, s, d > s) for node, s, d in zip(committers, samples, plan.declared)]

    protocol.elect()
    skipped = None
    if plan.leader_times_out:
        skipped = swarm.epochState(epoch)["leaderIndex"]
        chain.sleep(config["mergeWindow"] + 1)
        swarm.failover(epoch, {"from": admin})
    leader = swarm.epochState(epoch)["leaderIndex"]
    participants = [i for i in range(commits) if i not in plan.left_out or i == leader]
    bitmap = sum(1 << i for i in participants)
    protocol.publish(bitmap)

    n = len(participants)
    for r in plan.reports:
        protocol.report(committers[r.reporter], list(r.scores[:n]), r.metric, merged=r.merged, valid=r.valid)
    for i in plan.removed:
        swarm.removeNode(committers[i], {"from": admin})
    if len(plan.reports) < commits:
        chain.sleep(config["reportWindow"] + 1)

    budget = config["rewardPerEpoch"] + swarm.carry()
    claimable_before = [swarm.claimable(node) for node in committers]
    supply_before = token.totalSupply()
    tx = protocol.settle()

    reporters = {r.reporter for r in plan.reports}
    expected = settle(
        budget,
        [
            Participant(
                samples=samples[i],
                reported=i in reporters,
                skipped_leader=i == skipped,
                removed=i in plan.removed,
                leader=i == leader,
                over_declared=plan.declared[i] > samples[i],
                node=committers[i].address,
                smoothed=smoothed[committers[i].address],
            )
            for i in participants
        ],
        [Report(r.metric, list(r.scores[:n]), r.merged, r.valid, committers[r.reporter].address) for r in plan.reports],
        rule=chain_rule(config),
        commits=commits,
        participants_bitmap=bitmap,
        published_hash=MERGED,
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
    assert settled["quorate"] == expected.quorate == (2 * len(plan.reports) > commits)
    assert hex_of(settled["modelHash"]) == expected.verdict.model_hash == hex_of(swarm.epochState(epoch)["modelHash"])

    rows = [
        (e["epoch"], e["node"], e["samples"], e["score"], e["smoothedScore"], e["standing"], e["payout"], e["forfeit"])
        for e in tx.events["ParticipantSettled"]
    ]
    assert rows == [
        (epoch, committers[i].address, samples[i], score, after, standing, payout, int(forfeit))
        for i, score, after, standing, payout, forfeit in zip(
            participants, expected.scores, expected.smoothed, expected.standing, expected.payouts, expected.forfeits
        )
    ]
    # The smoothed credits persist on chain: the participants' moved (only with evidence),
    # every other node's unchanged. A quorate epoch strikes a participant by the reference's
    # verdict (evidence backing under half of its samples, an invalid update, a leader fault)
    # and resets the others' strikes; an epoch without quorum leaves them.
    for i, after, evidence, struck in zip(participants, expected.smoothed, expected.evidence, expected.struck):
        assert evidence or after == smoothed[committers[i].address]
        smoothed[committers[i].address] = after
        if expected.quorate:
            strikes[committers[i].address] = strikes_after(strikes[committers[i].address], struck)
        else:
            assert not struck
    # A committer left out whose update no strict majority found valid takes a strike too.
    for i in expected.rejected:
        strikes[committers[i].address] = strikes_after(strikes[committers[i].address], True)
    rejected = [(e["epoch"], e["node"]) for e in tx.events["UpdateRejected"]] if "UpdateRejected" in tx.events else []
    assert rejected == [(epoch, committers[i].address) for i in expected.rejected]
    assert [swarm.memberOf(node)["smoothedScore"] for node in nodes] == [smoothed[node.address] for node in nodes]
    assert [swarm.memberOf(node)["strikes"] for node in nodes] == [strikes[node.address] for node in nodes]

    leader_address = committers[leader].address
    disputed = [(e["epoch"], e["leader"], hex_of(e["publishedHash"]), hex_of(e["majorityHash"]))
                for e in tx.events["MergeDisputed"]] if "MergeDisputed" in tx.events else []
    model = expected.verdict.model_hash
    assert disputed == ([(epoch, leader_address, MERGED, model)] if model != MERGED else [])
    censored = [(e["epoch"], e["leader"], e["node"]) for e in tx.events["UpdateCensored"]] \
        if "UpdateCensored" in tx.events else []
    assert censored == [(epoch, leader_address, committers[i].address) for i in expected.verdict.censored]

    paid = {committers[i].address: payout for i, payout in zip(participants, expected.payouts)}
    deltas = [swarm.claimable(node) - before for node, before in zip(committers, claimable_before)]
    assert deltas == [paid.get(node.address, 0) for node in committers]
    assert swarm.carry() == expected.carried
    assert token.totalSupply() - supply_before == expected.credited
    assert swarm.currentEpoch() == epoch + 1

    for i in plan.removed:  # restore membership so a following epoch can use the node (and clear its strikes)
        swarm.authorize(committers[i], 0, allowances[i], {"from": admin})
        strikes[committers[i].address] = 0
        swarm.enroll("http://127.0.0.1/again", {"from": committers[i]})
    return expected


def _report(reporter, merged=MERGED, valid=0b11111, metric=500_000, score=SCORE_BOUND):
    return ReportPlan(reporter, metric, merged, valid, (score,) * 8)


def _self_serving(reporter, valid):
    """A report that rates position ``reporter`` (the reporter's own, when nothing before
    it was left out) at the bound and the others by who reports, some of them negative:
    counting a reporter's own score, for itself or in its report's positive total, would
    change every credit."""
    scores = tuple(SCORE_BOUND if j == reporter else 100 * (reporter + 1) - 37 * j for j in range(8))
    return ReportPlan(reporter, 400_000 + reporter, MERGED, valid, scores)


def _near_the_floor(reporter, total, valid=0x1F):
    """A report whose positive scores for the other four of five participants sum to
    ``total`` (the reporter's own score is the bound, outside the sum), split 1:2:3:4
    with the remainder on the last, so that the vote floor decides the fraction of a vote."""
    shares = [total // 10, 2 * total // 10, 3 * total // 10]
    others = [*shares, total - sum(shares)]
    scores = others[:reporter] + [SCORE_BOUND] + others[reporter:]
    return ReportPlan(reporter, 500_000, MERGED, valid, tuple(scores[:5]) + (0, 0, 0))


def _specialist(reporter, favourite, valid=0x7F):
    """A report (on non-IID data) that values one participant, ``favourite``, and rates
    every other one below zero, itself included: its whole vote goes to ``favourite``."""
    scores = tuple(SCORE_BOUND if j == favourite else -SCORE_BOUND + j for j in range(8))
    return ReportPlan(reporter, 600_000 + reporter, MERGED, valid, scores)


@settings(
    max_examples=16,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(drawn=swarm_and_plans())
@example(  # nobody reports: not quorate, nothing is paid and the whole budget is carried, twice
    drawn=(0, [EpochPlan((5, 5, 5), (), (), False, ()), EpochPlan((5, 5, 5), (), (), False, ())]),
)
@example(  # every declaration at its allowance (up to 2**64 - 1), every score at its bound, the largest reward
    drawn=(
        3,
        [
            EpochPlan(
                SWARM_CONFIGS[3][1],
                (),
                tuple(ReportPlan(p, METRIC_BOUND, MERGED, 0xFF, (SCORE_BOUND,) * 7 + (-SCORE_BOUND,))
                      for p in range(8)),
                False,
                (),
            )
        ],
    ),
)
@example(  # everyone declares 2**64 - 1: all but the node allowed that much over-declare and forfeit
    drawn=(1, [EpochPlan((UINT64_MAX,) * 8, (), tuple(_report(p, valid=0xFF, score=p - 3) for p in range(8)), False,
                         ())]),
)
@example(  # three of five recompute another merge and find all valid: contradicted and censoring leader
    drawn=(0, [EpochPlan((10, 20, 30, 40, 50), (3, 4), tuple(_report(p, OTHER) for p in (4, 0, 2, 1)), False, ())]),
)
@example(  # a zero-hash majority blames nobody; a minority's valid bits censor nothing
    drawn=(3, [EpochPlan((7,) * 5, (0,), tuple(_report(p, ZERO_HASH, valid=1 << p) for p in range(5)), True, (2,))]),
)
@example(  # two of five report (not quorate): their contradicting hash and valid bits do not count
    drawn=(5, [EpochPlan((9,) * 5, (1, 3), (_report(1, OTHER), _report(3, OTHER)), False, ())]),
)
@example(  # non-participants report too (left-out committers, after and among participants); smoothed
    # scores carry over three quorate epochs, then a non-quorate one leaves them as they are
    drawn=(
        0,
        [
            EpochPlan((10, 20, 30, 40, 50, 60), (1, 4), tuple(_self_serving(p, 0b111111) for p in (4, 1, 0, 2, 3, 5)),
                      False, ()),
            EpochPlan((100, 200, 300, 400, 500), (2,), tuple(_self_serving(p, 0b11011) for p in (2, 0, 4, 3)), False,
                      ()),
            EpochPlan((70,) * 7, (), tuple(_self_serving(p, 0x7F) for p in (6, 5, 4, 3, 2, 1)), False, (1,)),
            EpochPlan((70,) * 7, (0, 3), tuple(_self_serving(p, 0x7F) for p in (0, 3, 6)), False, ()),
        ],
    ),
)
@example(  # no report has a positive score for anyone else (P_r = 0 everywhere): every credit is 0, every
    # participant is struck (evidence backing none of its data), nothing is paid; then the same swarm again with
    # positive scores, which reset the strikes
    drawn=(4, [EpochPlan((50,) * 5, (), tuple(_report(p, valid=0x1F, score=-p) for p in range(5)), False, ()),
               EpochPlan((50,) * 5, (), tuple(_report(p, valid=0x1F, score=3) for p in range(5)), False, ())]),
)
@example(  # specialists: each reporter gives its whole vote to one other participant and rates the rest
    # negative; some participants get one vote of several, one gets two, one none; twice, so that the
    # smoothed credits and strikes carry over
    drawn=(
        1,
        [
            EpochPlan((1, 77, 1000, 5000, 2**40, 50, 1), (),
                      tuple(_specialist(p, f) for p, f in ((0, 1), (1, 2), (2, 1), (3, 4), (4, 5), (5, 0), (6, 3))),
                      False, ()),
            EpochPlan((1, 77, 1000, 5000, 2**40, 50, 1), (),
                      tuple(_specialist(p, f) for p, f in ((6, 0), (5, 1), (4, 2), (3, 4), (2, 3), (1, 0))),
                      False, ()),
        ],
    ),
)
@example(  # reports whose positive totals lie just under, at and just over the vote floor, and far under it
    drawn=(4, [EpochPlan((50, 60, 70, 75, 77), (),
                         tuple(_near_the_floor(p, t) for p, t in ((0, VOTE_FLOOR - 1), (1, VOTE_FLOOR),
                                                                  (2, VOTE_FLOOR + 1), (3, 7), (4, VOTE_FLOOR // 3))),
                         False, ())]),
)
@example(  # a noise epoch with one loud report (the median report's mass caps it), then one in which half the
    # reports have nothing positive (the upper median is still an honest report's mass)
    drawn=(4, [EpochPlan((50, 60, 70, 75, 77), (),
                         tuple(_near_the_floor(p, t) for p, t in ((0, 7), (1, 9), (2, SCORE_BOUND), (3, 11))),
                         False, ()),
               EpochPlan((50, 60, 70, 75, 77), (),
                         tuple(_near_the_floor(p, t) for p, t in ((3, 0), (1, 2 * VOTE_FLOOR), (0, 0), (4, VOTE_FLOOR))),
                         False, ())]),
)
def test_settlement_matches_reference_rule_to_the_wei(swarms, admin, nodes, drawn):
    which, plans = drawn
    swarm, token = swarms[which]
    allowances = SWARM_CONFIGS[which][1]
    # Each example starts from the snapshot (brownie reverts the chain between examples).
    smoothed = {node.address: swarm.memberOf(node)["smoothedScore"] for node in nodes}
    strikes = {node.address: swarm.memberOf(node)["strikes"] for node in nodes}
    for plan in plans:
        run_epoch_and_check(swarm, token, admin, nodes, allowances, plan, smoothed, strikes)
