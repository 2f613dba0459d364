"""Random sequences of protocol calls against a small Python model of SwarmLearning.

Hypothesis drives enrol / leave / remove / authorise / submit / elect / fail-over / publish /
report / settle / claim / time jumps in any order. Each rule asks the model what the call
must do and asserts exactly that: the state change and events, or the specific custom
error. After every step the invariants compare the whole contract state with the model:

- money: total minted + carry == rewardPerEpoch * (epochs settled or abandoned), i.e.
  credits never exceed the budgets injected plus carried dust and nothing is lost;
  token.totalSupply() == claimed + token.balanceOf(swarm); balanceOf(swarm) == sum of
  claimable; every node's token balance equals what it claimed (nothing claimed twice);
- the phase machine: (epoch, phase) stays put or takes exactly one legal transition.

brownie's own state-machine runner is broken in 1.22.2, so the machine subclasses
hypothesis' RuleBasedStateMachine directly: the test takes a chain snapshot after the
deployment and every run starts by reverting to it.
"""

import random
from dataclasses import dataclass, field

import brownie
import pytest
import requests
from brownie import chain, web3
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from swarmtoken.rewards import Participant, lower_median, median_scores, settle_arguments
from swarmtoken.rewards import settle as reference_settle
from tests.fixtures.deployments import NO_REPORTS, pack, param_hash

COMMIT, MERGE, REPORT, SETTLED, ABANDONED = range(5)
NONE, ACTIVE, SUSPENDED, REMOVED = range(4)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TIME_MARGIN = 5  # seconds around a deadline where the next block's timestamp is uncertain

CONFIG = dict(min_peers=2, max_peers=8, suspend_after=1, max_epochs=3, beta=0.3, sample_cap=1000)
ENROLLED_AT_START = 5  # nodes 0-4 enrolled, 5-6 only allow-listed, 7 a stranger

int64s = st.one_of(st.integers(-50, 1000), st.sampled_from([INT64_MIN, 0, INT64_MAX]))


def score_vector(seed: int, n: int) -> list:
    """``n`` int64 scores from ``seed``: mostly small (both signs), sometimes at the bounds.
    A seed keeps each step's drawn data small, so runs reach their full step count."""
    rng = random.Random(seed)
    pool = [INT64_MIN, INT64_MAX, 0, -1, 1]
    return [rng.choice(pool) if rng.random() < 0.15 else rng.randint(-50, 1000) for _ in range(n)]


def reverts(error: str):
    """Expect the custom error ``error`` (brownie decodes it as ``Name: args``)."""
    return brownie.reverts(revert_pattern=rf"{error}(: .*)?")


def batch_call(calls):
    """Run ``(contract_method, args)`` eth_calls in one JSON-RPC batch round trip."""
    payload = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "eth_call",
            "params": [{"to": method._address, "data": method.encode_input(*args)}, "latest"],
        }
        for i, (method, args) in enumerate(calls)
    ]
    answers = sorted(requests.post(web3.provider.endpoint_uri, json=payload, timeout=30).json(), key=lambda a: a["id"])
    assert all("result" in a for a in answers), answers
    return [method.decode_output(a["result"]) for (method, _), a in zip(calls, answers)]


@dataclass
class MemberModel:
    allow_listed: bool = False
    status: int = NONE
    strikes: int = 0
    last_submit_epoch: int = 0
    claimable: int = 0
    claimed: int = 0


@dataclass
class EpochModel:
    phase: int = COMMIT
    deadline: int = 0
    commits: list = field(default_factory=list)  # (node index, samples) in commit order
    leader: int = 0  # index into commits
    failovers: int = 0
    skipped: set = field(default_factory=set)  # commit indices
    participants: list = field(default_factory=list)  # ascending commit indices
    reports: list = field(default_factory=list)  # (node index, metric, scores) in order


class SwarmMachine(RuleBasedStateMachine):
    """One swarm with eight nodes; see the module docstring."""

    swarm = token = admin = outsider = None
    nodes: list = []

    def __init__(self):
        super().__init__()
        chain.revert()
        cfg = self.swarm.config()
        self.reward = cfg["rewardPerEpoch"]
        self.min_peers = cfg["minPeers"]
        self.windows = {COMMIT: cfg["commitWindow"], MERGE: cfg["mergeWindow"], REPORT: cfg["reportWindow"]}
        self.beta_bps, self.sample_cap = cfg["betaBps"], cfg["sampleCap"]
        self.suspend_after, self.max_epochs = cfg["suspendAfter"], cfg["maxEpochs"]
        self.members = [MemberModel(allow_listed=i < 7, status=ACTIVE if i < ENROLLED_AT_START else NONE) for i in range(8)]
        self.epoch = 1
        self.finished = False
        self.carry = 0
        self.closed_epochs = 0  # settled or abandoned: each injected one rewardPerEpoch
        self.settled_epochs = 0  # maxEpochs counts these
        self.state = EpochModel(deadline=self.swarm.epochState(1)["deadline"])
        self.last_seen = (1, COMMIT)

    # ------------------------------------------------------------------ helpers
    def _at(self, index):
        return self.nodes[index]

    def _wait_until_clear_of(self, deadline, wait=False):
        """Whether the next block comes after ``deadline``: sleep past it when ``wait``, and
        step out of the seconds around it where the block time is a coin toss. The clock is
        read from a freshly mined block (the backend's time offset survives reverts)."""
        chain.mine()
        now = web3.eth.get_block("latest")["timestamp"]
        if wait and now <= deadline + TIME_MARGIN:
            chain.sleep(deadline + TIME_MARGIN + 1 - now)
            return True
        if abs(now - deadline) <= TIME_MARGIN:
            chain.sleep(2 * TIME_MARGIN + 1)
            return True
        return now > deadline

    def _open_next_epoch(self, tx):
        opened = tx.events["EpochOpened"]
        self.epoch += 1
        assert opened["epoch"] == self.epoch
        assert opened["budget"] == self.reward + self.carry
        self.state = EpochModel(deadline=opened["commitDeadline"])

    def _wrong_hint(self, medians, metric):
        """WrongMedian unless the hints are the reference lower medians of the reports."""
        s = self.state
        truth = median_scores([scores for _, _, scores in s.reports], len(s.participants))
        truth_metric = lower_median([m for _, m, _ in s.reports]) if s.reports else 0
        return None if (list(medians), metric) == (truth, truth_metric) else "WrongMedian"

    def _leader_removed(self):
        s = self.state
        return bool(s.commits) and self.members[s.commits[s.leader][0]].status == REMOVED

    def _phase_error(self, expected):
        return "WrongPhase" if self.state.phase != expected else None

    def _blocked(self):
        """The error every epoch call hits first once the swarm finished, else None."""
        return "SwarmIsFinished" if self.finished else None

    # ------------------------------------------------------------------ membership rules
    @rule(i=st.integers(0, 7))
    def enrol(self, i):
        """An account joins: only when allow-listed and not already a member."""
        m, node = self.members[i], self._at(i)
        error = (
            "NotAllowListed"
            if not m.allow_listed
            else "AlreadyEnrolled"
            if m.status == ACTIVE
            else "NotActive"
            if m.status != NONE
            else None
        )
        if error:
            with reverts(error):
                self.swarm.enroll("http://127.0.0.1/node", {"from": node})
            return
        tx = self.swarm.enroll("http://127.0.0.1/node", {"from": node})
        assert tx.events["NodeEnrolled"]["account"] == node
        m.status = ACTIVE

    @rule(i=st.integers(0, 7))
    def leave(self, i):
        """A member leaves voluntarily; its credits and a pending commitment stay valid."""
        m, node = self.members[i], self._at(i)
        if m.status != ACTIVE:
            with reverts("NotActive"):
                self.swarm.leave({"from": node})
            return
        self.swarm.leave({"from": node})
        m.status = NONE

    @rule(i=st.integers(0, 7))
    def remove(self, i):
        """The admin removes a node; it forfeits the payouts of unsettled epochs."""
        m, node = self.members[i], self._at(i)
        error = "UnknownNode" if not m.allow_listed and m.status == NONE else "NotActive" if m.status == REMOVED else None
        if error:
            with reverts(error):
                self.swarm.removeNode(node, {"from": self.admin})
            return
        tx = self.swarm.removeNode(node, {"from": self.admin})
        assert tx.events["NodeRemoved"]["account"] == node
        m.allow_listed, m.status = False, REMOVED

    @rule(i=st.integers(0, 7))
    def authorise(self, i):
        """The admin allow-lists an account, lifting a suspension or removal."""
        m = self.members[i]
        self.swarm.authorize(self._at(i), 0, {"from": self.admin})
        m.allow_listed = True
        if m.status in (SUSPENDED, REMOVED):
            m.status, m.strikes = NONE, 0

    # ------------------------------------------------------------------ epoch rules
    @rule(
        pick=st.integers(0, 7),
        anyone=st.sampled_from([False, False, True]),
        samples=st.one_of(st.integers(1, 3000), st.sampled_from([999, 1000, 1001, 2**64 - 1])),
        shift=st.sampled_from([0, 0, 0, 0, 0, -1, 1]),
    )
    def submit(self, pick, anyone, samples, shift):
        """A node commits its update for the open epoch (a stale or future epoch is refused).
        Mostly a node that may still commit, sometimes any account."""
        ready = [i for i, m in enumerate(self.members) if m.status == ACTIVE and m.last_submit_epoch != self.epoch]
        i = pick if anyone or not ready else ready[pick % len(ready)]
        m, node, epoch = self.members[i], self._at(i), self.epoch + shift
        error = (
            self._blocked()
            or ("WrongEpoch" if shift else None)
            or self._phase_error(COMMIT)
            or ("NotActive" if m.status != ACTIVE else None)
            or ("AlreadySubmitted" if m.last_submit_epoch == self.epoch else None)
        )
        args = (epoch, param_hash(node, epoch), "http://127.0.0.1/update", samples, {"from": node})
        if error:
            with reverts(error):
                self.swarm.submitUpdate(*args)
            return
        tx = self.swarm.submitUpdate(*args)
        assert tx.events["UpdateSubmitted"]["index"] == len(self.state.commits)
        self.state.commits.append((i, samples))
        m.last_submit_epoch = self.epoch

    @rule(wait=st.sampled_from([True, True, False]))
    def elect(self, wait):
        """Anyone closes the commit phase once its window passed and minPeers committed."""
        after = self._wait_until_clear_of(self.state.deadline, wait)
        error = (
            self._blocked()
            or self._phase_error(COMMIT)
            or ("CommitWindowOpen" if not after else None)
            or ("NotEnoughCommits" if len(self.state.commits) < self.min_peers else None)
        )
        if error:
            with reverts(error):
                self.swarm.electLeader(self.epoch, {"from": self.outsider})
            return
        tx = self.swarm.electLeader(self.epoch, {"from": self.outsider})
        elected = tx.events["LeaderElected"]
        self.state.leader = elected["seed"] % len(self.state.commits)
        assert elected["leader"] == self._at(self.state.commits[self.state.leader][0])
        assert elected["deadline"] == tx.timestamp + self.windows[MERGE]
        self.state.phase, self.state.deadline = MERGE, elected["deadline"]

    @rule(wait=st.booleans())
    def fail_over(self, wait):
        """After the leader's deadline (at once when the admin removed the leader) anyone
        hands leadership on; when every candidate timed out the epoch is abandoned and its
        budget carried."""
        after = self._wait_until_clear_of(self.state.deadline, wait)
        error = (
            self._blocked()
            or self._phase_error(MERGE)
            or ("MergeWindowOpen" if not after and not self._leader_removed() else None)
        )
        if error:
            with reverts(error):
                self.swarm.failover(self.epoch, {"from": self.outsider})
            return
        tx = self.swarm.failover(self.epoch, {"from": self.outsider})
        s = self.state
        s.skipped.add(s.leader)
        s.failovers += 1
        if s.failovers == len(s.commits):
            assert tx.events["EpochAbandoned"]["carried"] == self.reward + self.carry
            self.carry += self.reward
            self.closed_epochs += 1
            s.phase = ABANDONED
            self._open_next_epoch(tx)
            return
        s.leader = (s.leader + 1) % len(s.commits)
        skipped = tx.events["LeaderSkipped"]
        assert skipped["next"] == self._at(s.commits[s.leader][0])
        assert skipped["deadline"] == tx.timestamp + self.windows[MERGE]
        s.deadline = skipped["deadline"]

    @rule(
        by_leader=st.sampled_from([True, True, True, False]),
        picks=st.lists(st.integers(0, 7), min_size=1, max_size=8),
        stray=st.sampled_from([False, False, False, True]),
    )
    def publish(self, by_leader, picks, stray):
        """The leader publishes the merge over a random subset of the committed nodes, which
        must all have committed (a ``stray`` subset may name uncommitted indices)."""
        s = self.state
        chosen = sorted(set(picks if stray or not s.commits else [p % len(s.commits) for p in picks]))
        leader = self._at(s.commits[s.leader][0]) if s.commits and not self.finished else self.admin
        caller = leader if by_leader else self.outsider
        bitmap = sum(1 << c for c in chosen)
        after = self._wait_until_clear_of(s.deadline)
        error = (
            self._blocked()
            or self._phase_error(MERGE)
            or ("NotLeader" if not by_leader else None)
            or ("NotActive" if self._leader_removed() else None)
            or ("DeadlinePassed" if after else None)
            or ("ParticipantNotCommitted" if any(c >= len(s.commits) for c in chosen) else None)
            or ("TooFewParticipants" if len(chosen) < self.min_peers else None)
        )
        args = (self.epoch, b"\x22" * 32, "http://127.0.0.1/merged", bitmap, {"from": caller})
        if error:
            with reverts(error):
                self.swarm.publishMerge(*args)
            return
        tx = self.swarm.publishMerge(*args)
        s.phase, s.participants = REPORT, sorted(chosen)
        s.deadline = tx.timestamp + self.windows[REPORT]
        assert tx.events["MergePublished"]["participants"] == bitmap

    @rule(
        pick=st.integers(0, 7),
        anyone=st.sampled_from([False, False, True]),
        metric=int64s,
        seed=st.integers(0, 2**32 - 1),
        bad_length=st.sampled_from([False] * 5 + [True]),
    )
    def report(self, pick, anyone, metric, seed, bad_length):
        """A participant reports its validation metric and one score per participant.
        Mostly a participant that has not reported yet, sometimes any account."""
        s = self.state
        due = [s.commits[c][0] for c in s.participants if all(r[0] != s.commits[c][0] for r in s.reports)]
        i = pick if anyone or not due else due[pick % len(due)]
        m, node = self.members[i], self._at(i)
        n = len(s.participants)
        vector = score_vector(seed, n + 1 if bad_length else n)
        position = next((c for c in s.participants if s.commits[c][0] == i), None)
        after = self._wait_until_clear_of(s.deadline)
        error = (
            self._blocked()
            or self._phase_error(REPORT)
            or ("DeadlinePassed" if after else None)
            or ("NotActive" if m.status == REMOVED else None)
            or ("NotParticipant" if m.last_submit_epoch != self.epoch or position is None else None)
            or ("AlreadyReported" if any(r[0] == i for r in s.reports) else None)
            or ("ScoreCountMismatch" if bad_length else None)
        )
        if error:
            with reverts(error):
                self.swarm.reportValidation(self.epoch, metric, vector, {"from": node})
            return
        self.swarm.reportValidation(self.epoch, metric, vector, {"from": node})
        s.reports.append((i, metric, vector))

    @rule(tamper=st.sampled_from([None, None, None, None, "report", "median", "metric"]), wait=st.sampled_from([True, True, False]))
    def settle(self, tamper, wait):
        """Anyone settles once all participants reported or the report deadline passed, with
        the lower medians as hints; the payouts must match swarmtoken.rewards to the wei.
        Forged reports and wrong median hints are refused."""
        s = self.state
        calldata = [(self._at(i).address, metric, scores) for i, metric, scores in s.reports]
        _, medians, metric = settle_arguments(calldata, len(s.participants))
        if tamper == "report" and calldata:
            node, reported, scores = calldata[-1]
            calldata[-1] = (node, reported, [scores[0] ^ 1] + scores[1:])
        elif tamper == "median" and medians:
            medians = [medians[0] + (1 if medians[0] < INT64_MAX else -1)] + medians[1:]
        elif tamper == "metric":
            metric = metric + (1 if metric < INT64_MAX else -1)
        after = self._wait_until_clear_of(s.deadline, wait and len(s.reports) < len(s.participants))
        error = (
            self._blocked()
            or self._phase_error(REPORT)
            or ("SettlementNotDue" if len(s.reports) < len(s.participants) and not after else None)
            or ("ReportsMismatch" if tamper == "report" and calldata else None)
            or (self._wrong_hint(medians, metric))
        )
        args = (self.epoch, pack(calldata, len(s.participants)), medians, metric, {"from": self.outsider})
        if error:
            with reverts(error):
                self.swarm.settle(*args)
            return
        tx = self.swarm.settle(*args)

        nodes = [s.commits[c][0] for c in s.participants]
        reporters = {r[0] for r in s.reports}
        budget = self.reward + self.carry
        expected = reference_settle(
            budget,
            [
                Participant(
                    samples=s.commits[c][1],
                    reported=i in reporters,
                    skipped_leader=c in s.skipped,
                    removed=self.members[i].status == REMOVED,
                )
                for c, i in zip(s.participants, nodes)
            ],
            [(metric, scores) for _, metric, scores in s.reports],
            beta_bps=self.beta_bps,
            sample_cap=self.sample_cap,
        )
        settled = tx.events["EpochSettled"]
        assert (settled["budget"], settled["credited"], settled["carried"]) == (
            budget,
            expected.credited,
            expected.carried,
        )
        assert [e["payout"] for e in tx.events["ParticipantSettled"]] == list(expected.payouts)
        for i, payout, median in zip(nodes, expected.payouts, expected.medians):
            m = self.members[i]
            m.claimable += payout
            if not s.reports:
                continue
            m.strikes = 0 if median > 0 else min(m.strikes + 1, 255)
            if self.suspend_after and m.strikes >= self.suspend_after and m.status == ACTIVE:
                m.status = SUSPENDED
        self.carry = expected.carried
        self.closed_epochs += 1
        self.settled_epochs += 1
        s.phase = SETTLED
        if self.settled_epochs >= self.max_epochs:
            assert "SwarmFinished" in tx.events
            self.finished = True
        else:
            self._open_next_epoch(tx)

    @rule(i=st.integers(0, 7), kind=st.sampled_from(["stranger", "phase"]))
    def refused_call(self, i, kind):
        """Only the admin manages membership; a call meant for another phase is refused with
        WrongPhase (SwarmIsFinished once the swarm finished)."""
        if kind == "stranger":
            with reverts("OwnableUnauthorizedAccount"):
                self.swarm.removeNode(self._at(i), {"from": self.outsider})
            return
        calls = {
            COMMIT: lambda: self.swarm.electLeader(self.epoch, {"from": self.outsider}),
            MERGE: lambda: self.swarm.failover(self.epoch, {"from": self.outsider}),
            REPORT: lambda: self.swarm.settle(self.epoch, NO_REPORTS, [], 0, {"from": self.outsider}),
        }
        wrong = {COMMIT: MERGE, MERGE: REPORT, REPORT: COMMIT}.get(self.state.phase, COMMIT)
        with reverts(self._blocked() or "WrongPhase"):
            calls[wrong]()

    @rule(i=st.integers(0, 7))
    def claim(self, i):
        """A node pulls everything credited to it, exactly once."""
        m, node = self.members[i], self._at(i)
        if m.claimable == 0:
            with reverts("NothingToClaim"):
                self.swarm.claim({"from": node})
            return
        tx = self.swarm.claim({"from": node})
        assert tx.events["RewardClaimed"]["amount"] == m.claimable
        m.claimed += m.claimable
        m.claimable = 0

    @rule(seconds=st.sampled_from([1, 20, 61, 130]))
    def time_passes(self, seconds):
        """Time jumps forward (windows are 60 s)."""
        chain.sleep(seconds)

    @rule(
        pick=st.integers(0, 7),
        coin=st.booleans(),
        samples=st.one_of(st.integers(1, 3000), st.sampled_from([999, 1000, 1001, 2**64 - 1])),
        picks=st.lists(st.integers(0, 7), min_size=2, max_size=8),
        metric=int64s,
        seed=st.integers(0, 2**32 - 1),
    )
    def protocol_moves_on(self, pick, coin, samples, picks, metric, seed):
        """Whoever's turn it is takes the next protocol step: a ready node commits (until
        minPeers committed, then sometimes), the window closes and a leader is elected, the
        leader publishes (or, once it missed its deadline, anyone fails over), participants
        report, and anyone settles (after the deadline when reports are missing). Once the
        swarm finished, nodes claim. The rules above make the same calls with random
        arguments and at random times; this one lets runs get through whole epochs."""
        s = self.state
        if self.finished:
            self.claim(pick)
        elif s.phase == COMMIT:
            ready = [i for i, m in enumerate(self.members) if m.status == ACTIVE and m.last_submit_epoch != self.epoch]
            if ready and (len(s.commits) < self.min_peers or coin):
                self.submit(pick, False, samples, 0)
            else:
                self.elect(True)
        elif s.phase == MERGE:
            chain.mine()
            if self._leader_removed():
                self.fail_over(False)
            elif web3.eth.get_block("latest")["timestamp"] > s.deadline - TIME_MARGIN:
                self.fail_over(True)
            else:
                self.publish(True, picks, False)
        else:
            due = [s.commits[c][0] for c in s.participants if all(r[0] != s.commits[c][0] for r in s.reports)]
            if due and (coin or len(s.reports) == 0):
                self.report(pick, False, metric, seed, False)
            else:
                self.settle(None, True)

    # Hypothesis draws among the enabled rules uniformly and an epoch takes about seven
    # protocol steps in order, so the rule above is registered six times: most runs then
    # settle epochs within the step budget instead of mostly reshuffling membership.
    protocol_moves_on_ = protocol_moves_on__ = protocol_moves_on___ = protocol_moves_on
    protocol_moves_on____ = protocol_moves_on_____ = protocol_moves_on

    # ------------------------------------------------------------------ invariants
    @invariant()
    def contract_matches_model(self):
        """Money and phase invariants, and every field of the model, checked in one batch."""
        swarm, token = self.swarm, self.token
        per_node = []
        for node in self.nodes:
            per_node += [(swarm.claimable, (node,)), (token.balanceOf, (node,)), (swarm.memberOf, (node,))]
        epoch, settled, finished, carry, active, supply, held, *rest = batch_call(
            [
                (swarm.currentEpoch, ()),
                (swarm.settledEpochs, ()),
                (swarm.finished, ()),
                (swarm.carry, ()),
                (swarm.activeCount, ()),
                (token.totalSupply, ()),
                (token.balanceOf, (swarm,)),
                *per_node,
            ]
        )
        claimable, balances, members = rest[0::3], rest[1::3], rest[2::3]
        state, previous = batch_call([(swarm.epochState, (epoch,)), (swarm.epochState, (self.last_seen[0],))])

        # money
        claimed = [m.claimed for m in self.members]
        assert supply + carry == self.reward * self.closed_epochs
        assert supply == sum(claimed) + held
        assert held == sum(claimable)
        assert list(balances) == claimed
        assert list(claimable) == [m.claimable for m in self.members]
        assert carry == self.carry

        # phase machine: stay, or one legal step
        seen = (epoch, state[0])
        last_epoch, last_phase = self.last_seen
        if seen != self.last_seen:
            if epoch == last_epoch:
                assert (last_phase, seen[1]) in {(COMMIT, MERGE), (MERGE, REPORT), (REPORT, SETTLED)}
            else:
                assert epoch == last_epoch + 1 and seen[1] == COMMIT
                assert (last_phase, previous[0]) in {(REPORT, SETTLED), (MERGE, ABANDONED)}
        self.last_seen = seen

        # the model
        assert (epoch, settled, finished, state[0]) == (self.epoch, self.settled_epochs, self.finished, self.state.phase)
        assert (state[1], state[2], state[4]) == (self.state.deadline, len(self.state.commits), len(self.state.reports))
        assert active == sum(m.status == ACTIVE for m in self.members)
        assert [(x[0], x[1], x[2]) for x in members] == [(m.allow_listed, m.status, m.strikes) for m in self.members]

    def teardown(self):
        """Everyone claims: the contract is left holding nothing and supply is all paid out."""
        for m, node in zip(self.members, self.nodes):
            if m.claimable:
                self.swarm.claim({"from": node})
                m.claimed, m.claimable = m.claimed + m.claimable, 0
        assert self.token.balanceOf(self.swarm) == 0
        assert self.token.totalSupply() == sum(m.claimed for m in self.members)


@pytest.fixture
def machine_world(create_swarm, admin, nodes, outsider):
    swarm, token = create_swarm(**CONFIG)
    for index, node in enumerate(nodes[:7]):
        swarm.authorize(node, 0, {"from": admin})
        if index < ENROLLED_AT_START:
            swarm.enroll("http://127.0.0.1/node", {"from": node})
    SwarmMachine.swarm, SwarmMachine.token = swarm, token
    SwarmMachine.admin, SwarmMachine.outsider, SwarmMachine.nodes = admin, outsider, list(nodes)
    return swarm


def test_random_protocol_runs_keep_money_and_phase_invariants(machine_world):
    chain.snapshot()
    run_state_machine_as_test(
        SwarmMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=45,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        ),
    )
