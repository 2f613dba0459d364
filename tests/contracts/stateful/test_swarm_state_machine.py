"""Random sequences of protocol calls, honest and adversarial, against a small Python model
of SwarmLearning.

Hypothesis drives enrol / leave / remove / authorise (allowance, expiry) / release /
commit / elect / draw / abandon / fail-over / publish / report / settle / claim / time and
block jumps in any order, and five adversaries with them:

- a *copycat* commits another member's commitment, copied from the chain, in the same
  epoch: it cannot open it, so honest reporters mark its index invalid and score it 0, and
  an honest leader leaves it out;
- a *lying reporter* scores itself +1e9 (if it is a participant), everybody else -1e9,
  and reports a wrong merge hash;
- a *censoring leader* leaves an honest committer out of the merge; honest reporters mark
  that committer valid;
- a *withholder* commits and never reports, and as leader never publishes (fail-over);
- a *garbage leader* publishes a hash nobody can recompute; the honest majority reports
  the hash it recomputed and so contradicts it.

Each rule asks the model what its call must do and asserts exactly that: the state change
and events, or the custom error with its arguments. Every settlement is predicted with
``swarmtoken.rewards.settle`` (commits, participants bitmap, published hash) and compared
to the wei: payouts, forfeits, credits (the other reporters' votes), smoothed credits,
standing, carry, model hash, disputes, censorship, rejected updates, strikes, clean epochs,
suspensions and the balances they forfeit. With an honest
majority the verdict must also be the truth (the model hash is the honest merge; the leader
is faulted exactly for garbage or censorship).

After every step the invariants compare the whole contract state with the model:

- money: token.totalSupply() == everything credited - forfeited == claimed + token.balanceOf(swarm);
  supply + carry + what the token cap withheld == rewardPerEpoch * (epochs settled or
  abandoned); balanceOf(swarm) == sum of claimable; claimable == credits - claims -
  forfeits for every account; every node's token balance equals what it claimed; a claim
  before CLAIM_AFTER clean epochs (swarm not finished) is refused;
- the phase machine: (epoch, phase) stays put or takes exactly one legal transition;
- every field of the epoch, its commitments, the members, the stopping rule's state;
- no account is credited for an epoch in which it had no valid commitment of its own: a
  copycat's credit from the epoch it copied in is zero, and its claimable does not grow
  when that epoch settles.

The test runs a fixed (derandomised) sequence of about 1,250 steps by default, and fresh
random ones with SWARM_STATEFUL_EXPLORE=1 (see the note above the test).

Block time is made exact: the test sets anvil's block timestamp interval to one second, so
the next transaction's timestamp is the latest block's plus one and deadlines are hit to
the second (``_advance_to``), instead of guessing around wall-clock jitter. The interval is
removed again when the test ends.

brownie's own state-machine runner is broken in 1.22.2, so the machine subclasses
hypothesis' RuleBasedStateMachine directly: the test takes a chain snapshot after the
deployment and every run starts by reverting to it.
"""

import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import pytest
import requests
from brownie import ZERO_ADDRESS, chain, web3
from eth_abi import encode
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from swarmtoken.config import chain_rule
from swarmtoken.rewards import (CLAIM_AFTER, ZERO_HASH, Forfeit, Participant, Report, can_claim, clean_after,
                                settle_arguments, strikes_after)
from swarmtoken.rewards import settle as reference_settle
from tests.fixtures.deployments import NO_REPORTS, commitment
from tests.fixtures.errors import reverts_with

COMMIT, MERGE, REPORT, SETTLED, ABANDONED = range(5)
NONE, ACTIVE, SUSPENDED, REMOVED = range(4)
SCORE_BOUND, METRIC_BOUND = 10**9, 10**6
UINT64_MAX = 2**64 - 1
BLOCKHASH_WINDOW = 256  # blockhash(n) is non-zero for the 256 blocks after n only

# Roles of a commitment in its epoch. A liar is an honest committer that lied when it reported.
HONEST, COPYCAT, WITHHOLDER, LIAR = "honest", "copycat", "withholder", "liar"

CONFIG = dict(
    min_peers=3,
    max_peers=6,  # below the eight node accounts: MaxPeersReached is reachable
    commit_window=60,
    merge_window=60,
    report_window=60,
    reward_per_epoch="1000",
    beta=0.3,
    suspend_after=2,
    max_epochs=5,
    patience=4,
    target_metric=0.95,
    min_delta=0.001,
    token_cap="2500",  # the cap cuts the budget from about the third settled epoch on
)
ALLOWANCES = [1000, 400, 1000, UINT64_MAX, 60, 1000, 500]  # nodes 0-6 allow-listed at start
ENROLLED_AT_START = 6  # nodes 0-5 enrolled (every seat taken), 6 only allow-listed, 7 a stranger
NODES = 8
RARE_DATA_NODE, RARE_DATA_DISCOUNT = 0, 8  # see SwarmMachine._report_content
OUTSIDER = NODES  # actor index of the account that is never allow-listed

UPDATE_SUBMITTED = "0x" + keccak(b"UpdateSubmitted(uint256,address,uint16,bytes32,uint64,uint64)").hex()

sample_counts = st.one_of(st.integers(1, 3000), st.sampled_from([1, 59, 60, 61, 999, 1000, 1001, UINT64_MAX]))
seeds = st.integers(0, 2**32 - 1)
MOVE_ON = dict(  # protocol_moves_on's arguments
    pick=st.integers(0, NODES),
    coin=st.booleans(),
    hurry=st.sampled_from([False] * 15 + [True]),
    adversary=st.sampled_from([None] * 4 + [COPYCAT, WITHHOLDER, LIAR, "censor", "censor", "censor", "garbage"]),
    samples=sample_counts,
    seed=seeds,
)

# What the runs covered, over all examples: "steps" is counted by the invariant that runs
# after every step, the rest where the model sees it happen.
SEEN = Counter()
REFUSED = Counter()  # custom errors the calls were refused with


def rpc(method, params=()):
    """A raw JSON-RPC call to the node (anvil's own methods have no brownie wrapper)."""
    answer = web3.provider.make_request(method, list(params))
    assert "error" not in answer, answer
    return answer["result"]


def batch_call(calls):
    """Run ``(contract_method, args)`` eth_calls in one JSON-RPC batch round trip."""
    if not calls:
        return []
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


def hex32(value) -> str:
    """A bytes32 as 64 hex digits (no 0x), whatever brownie decoded it to."""
    text = value.hex() if isinstance(value, bytes) else str(value)
    return text.removeprefix("0x").rjust(64, "0")


def merge_hash(epoch: int, bitmap: int) -> str:
    """The merge of the updates in ``bitmap``: what anyone recomputes from the files."""
    return keccak(b"merge" + encode(["uint256", "uint256"], [epoch, bitmap])).hex()


def garbage_hash(epoch: int) -> str:
    """What a garbage leader publishes: a hash no merge reproduces."""
    return keccak(b"garbage" + encode(["uint256"], [epoch])).hex()


def lie_hash(epoch: int) -> str:
    """The merge hash lying reporters agree on (they collude)."""
    return keccak(b"lie" + encode(["uint256"], [epoch])).hex()


def popcount(bitmap: int) -> int:
    return bin(bitmap).count("1")


def bits(bitmap: int) -> list:
    return [i for i in range(bitmap.bit_length()) if bitmap >> i & 1]


def honest_score(rng: random.Random) -> int:
    """An honest validator's score for a valid update: mostly positive, sometimes not, now
    and then at the bounds."""
    if rng.random() < 0.1:
        return rng.choice([SCORE_BOUND, -SCORE_BOUND, 0, 1, -1])
    return rng.randint(-200_000_000, SCORE_BOUND)


def events(tx, name) -> list:
    """Every ``name`` event of ``tx``, in order (none: an empty list)."""
    return list(tx.events[name]) if name in tx.events else []


@dataclass
class MemberModel:
    allow_listed: bool = False
    status: int = NONE
    strikes: int = 0
    commit_index: int = 0
    expiry: int = 0
    last_submit_epoch: int = 0
    allowance: int = 0
    smoothed: int = 0
    clean: int = 0  # consecutive quorate epochs settled without a strike
    credited: int = 0  # every payout settlement credited to it
    claimed: int = 0
    forfeited: int = 0  # unclaimed balances its suspensions forfeited

    @property
    def claimable(self) -> int:
        return self.credited - self.claimed - self.forfeited


@dataclass
class CommitModel:
    node: int  # actor index
    declared: int
    samples: int  # capped by the allowance
    over_declared: bool  # declared more than the allowance: forfeits the epoch's payout
    commitment: bytes
    valid: bool  # opens with the committer's own file (a copycat's does not)
    role: str


@dataclass
class EpochModel:
    deadline: int
    budget: int
    opened_block: int
    phase: int = COMMIT
    commits: list = field(default_factory=list)  # CommitModel in commit order
    draw_block: int = 0
    drawn: bool = False
    leader: int = 0  # commit index
    failovers: int = 0
    skipped: int = 0  # bitmap over commit indices
    participants: int = 0  # bitmap over commit indices
    published: str = ZERO_HASH
    reports: list = field(default_factory=list)  # (address, Report) in order
    report_roles: list = field(default_factory=list)
    reporters: int = 0  # bitmap over commit indices
    digest: bytes = bytes(32)
    model_hash: str = ZERO_HASH  # fixed at settlement


class SwarmMachine(RuleBasedStateMachine):
    """One swarm, eight node accounts and an outsider; see the module docstring."""

    # Set once by the fixture below: the deployment, the accounts, the on-chain config and
    # the state of the snapshot every run starts from.
    swarm = token = admin = None
    actors: list = []  # eight nodes, then the outsider
    cfg: dict = {}
    cap = start_block = start_deadline = 0

    def __init__(self):
        super().__init__()
        chain.revert()
        rpc("anvil_setBlockTimestampInterval", [1])
        SEEN["runs"] += 1
        cfg = self.cfg
        self.reward = cfg["rewardPerEpoch"]
        self.min_peers, self.max_peers = cfg["minPeers"], cfg["maxPeers"]
        self.windows = {COMMIT: cfg["commitWindow"], MERGE: cfg["mergeWindow"], REPORT: cfg["reportWindow"]}
        self.rule, self.suspend_after, self.max_epochs = chain_rule(cfg), cfg["suspendAfter"], cfg["maxEpochs"]
        self.patience, self.target, self.min_delta = cfg["patience"], cfg["targetMetric"], cfg["minDelta"]
        self.members = [
            MemberModel(
                allow_listed=i < len(ALLOWANCES),
                status=ACTIVE if i < ENROLLED_AT_START else NONE,
                allowance=ALLOWANCES[i] if i < len(ALLOWANCES) else 0,
            )
            for i in range(NODES + 1)
        ]
        self.epoch, self.finished = 1, False
        self.carry = self.supply = self.capped = 0  # capped: budget the token cap withheld
        self.closed_epochs = self.settled_epochs = 0
        self.best, self.has_best, self.stale = 0, False, 0
        self.copied = set()  # (epoch, actor) of copycat commitments
        self.credits = {}  # (epoch, actor) -> payout, from ParticipantSettled
        self.copycat_gains = {}  # (epoch, copycat) -> its claimable after minus before settling
        self.model_hashes = {}  # settled epoch -> its global model (EpochState.modelHash)
        self.state = EpochModel(deadline=self.start_deadline, budget=self._budget(), opened_block=self.start_block)
        self.last_seen = (1, COMMIT)
        self.started = False

    # ------------------------------------------------------------------ clock
    @staticmethod
    def _clock():
        """(number, timestamp) of the latest block. The next transaction is mined in the
        next block, one second later (anvil's timestamp interval)."""
        block = rpc("eth_getBlockByNumber", ["latest", False])
        return int(block["number"], 16), int(block["timestamp"], 16)

    def _next_time(self):
        return self._clock()[1] + 1

    def _advance_to(self, t):
        """Make the next transaction's timestamp ``t`` (or now + 1 if that is later); return it."""
        _, now = self._clock()
        if t - 1 <= now:
            return now + 1
        rpc("evm_setNextBlockTimestamp", [t - 1])
        rpc("evm_mine")
        return t

    # ------------------------------------------------------------------ helpers
    def _at(self, i):
        return self.actors[i]

    @staticmethod
    def _call(error, fn, *args):
        """Call ``fn``; when ``error`` (name, *args) is given, expect exactly that custom error."""
        if error:
            with reverts_with(*error):
                fn(*args)
            REFUSED[error[0]] += 1
            return None
        return fn(*args)

    def _in(self, phase):
        return not self.finished and self.state.phase == phase

    def _epoch_error(self, phase, epoch=None):
        """The error every epoch call checks first (_openEpochState), else None."""
        epoch = self.epoch if epoch is None else epoch
        if self.finished:
            return ("SwarmIsFinished",)
        if epoch != self.epoch:
            return ("WrongEpoch", epoch, self.epoch)
        if self.state.phase != phase:
            return ("WrongPhase", self.epoch, self.state.phase, phase)
        return None

    def _unlocked(self, m):
        """SwarmLearning.claimUnlocked: clean epochs, the finish, or departed with its last
        commitment settled without a strike."""
        departed = m.status in (NONE, REMOVED) and m.strikes == 0 and m.last_submit_epoch < self.epoch
        if departed and m.clean < CLAIM_AFTER and not self.finished:
            SEEN["departed members unlocked"] += 1
        return can_claim(m.clean, self.finished, departed)

    def _expired(self, m, t):
        return m.expiry != 0 and t >= m.expiry

    def _budget(self):
        """rewardPerEpoch plus carry, limited by what the token may still mint."""
        wanted = self.reward + self.carry
        return wanted if self.cap == 0 else min(wanted, self.cap - self.supply)

    def _close_epoch(self, budget):
        """Book an epoch's budget as settled or abandoned (what the cap withheld included)."""
        self.capped += self.reward + self.carry - budget
        SEEN["budgets cut by the token cap"] += budget < self.reward + self.carry
        self.closed_epochs += 1

    def _open_next_epoch(self, tx):
        opened = tx.events["EpochOpened"]
        self.epoch += 1
        budget = self._budget()
        assert (opened["epoch"], opened["commitDeadline"], opened["budget"]) == (
            self.epoch,
            tx.timestamp + self.windows[COMMIT],
            budget,
        )
        self.state = EpochModel(deadline=opened["commitDeadline"], budget=budget, opened_block=tx.block_number)

    def _valid_mask(self):
        return sum(1 << c for c, cm in enumerate(self.state.commits) if cm.valid)

    def _leader_commit(self):
        return self.state.commits[self.state.leader]

    def _may_commit(self, i):
        """Active and not committed yet this epoch (authorisation is checked against the clock)."""
        m = self.members[i]
        return m.status == ACTIVE and m.last_submit_epoch != self.epoch

    def _withholds(self, i):
        m = self.members[i]
        return m.last_submit_epoch == self.epoch and self.state.commits[m.commit_index].role == WITHHOLDER

    def _due(self, roles=(HONEST, COPYCAT)):
        """Committers of the given roles that may still report (not removed, not reported)."""
        s = self.state
        return [
            cm.node
            for c, cm in enumerate(s.commits)
            if cm.role in roles and not s.reporters >> c & 1 and self.members[cm.node].status != REMOVED
        ]

    # ------------------------------------------------------------------ membership rules
    @rule(i=st.integers(0, NODES - 1))
    def enrol(self, i):
        """An account joins: allow-listed, authorisation not expired, not already a member,
        and a seat free (maxPeers)."""
        m, node = self.members[i], self._at(i)
        t = self._next_time()
        active = sum(x.status == ACTIVE for x in self.members)
        error = (
            ("NotAllowListed", node)
            if not m.allow_listed
            else ("AuthorizationExpired", node, m.expiry, t)
            if self._expired(m, t)
            else ("AlreadyEnrolled", node)
            if m.status == ACTIVE
            else ("NotActive", node, m.status)
            if m.status != NONE
            else ("MaxPeersReached", self.max_peers)
            if active >= self.max_peers
            else None
        )
        tx = self._call(error, self.swarm.enroll, f"http://127.0.0.1/{i}", {"from": node})
        if tx:
            assert tx.events["NodeEnrolled"]["account"] == node
            m.status = ACTIVE

    @rule(i=st.integers(0, NODES - 1))
    def leave(self, i):
        """A member leaves voluntarily; its credits and a pending commitment stay valid."""
        m, node = self.members[i], self._at(i)
        error = ("NotActive", node, m.status) if m.status != ACTIVE else None
        if self._call(error, self.swarm.leave, {"from": node}):
            m.status = NONE

    @rule(i=st.integers(0, NODES - 1))
    def remove(self, i):
        """The admin removes a node; it forfeits the payouts of unsettled epochs and may no
        longer report or publish."""
        m, node = self.members[i], self._at(i)
        error = (
            ("UnknownNode", node)
            if not m.allow_listed and m.status == NONE
            else ("NotActive", node, REMOVED)
            if m.status == REMOVED
            else None
        )
        tx = self._call(error, self.swarm.removeNode, node, {"from": self.admin})
        if tx:
            assert tx.events["NodeRemoved"]["account"] == node
            m.allow_listed, m.status = False, REMOVED

    @rule(
        i=st.integers(0, NODES - 1),
        expires_in=st.sampled_from([None] * 7 + [-1, 0, 1, 30, 61, 200]),
        allowance=st.sampled_from([0, 1, 60, 1000, 1000, UINT64_MAX]),
    )
    def authorise(self, i, expires_in, allowance):
        """The admin allow-lists an account with a sample allowance (zero is refused) and an
        expiry (none, past, now or soon), lifting a suspension or removal."""
        m, node = self.members[i], self._at(i)
        t = self._next_time()
        expiry = 0 if expires_in is None else t + expires_in
        error = ("ZeroAllowance", node) if allowance == 0 else None
        tx = self._call(error, self.swarm.authorize, node, expiry, allowance, {"from": self.admin})
        if tx:
            event = tx.events["AccountAuthorized"]
            assert (event["account"], event["expiry"], event["allowance"]) == (node, expiry, allowance)
            m.allow_listed, m.expiry, m.allowance = True, expiry, allowance
            if m.status in (SUSPENDED, REMOVED):
                m.status, m.strikes = NONE, 0

    @rule(i=st.integers(0, NODES - 1))
    def release_expired(self, i):
        """Anyone frees the seat of an active member whose authorisation expired."""
        m, node = self.members[i], self._at(i)
        t = self._next_time()
        error = (
            ("NotActive", node, m.status)
            if m.status != ACTIVE
            else ("AuthorizationNotExpired", node, m.expiry)
            if not self._expired(m, t)
            else None
        )
        tx = self._call(error, self.swarm.releaseExpired, node, {"from": self._at(OUTSIDER)})
        if tx:
            assert tx.events["NodeExpired"]["account"] == node
            m.status = NONE

    # ------------------------------------------------------------------ commit phase
    def _submit(self, i, epoch, value, samples, role, valid):
        """``i`` commits ``value`` for ``epoch`` declaring ``samples``; expects the model's
        verdict. Returns whether it was accepted."""
        s, m, node = self.state, self.members[i], self._at(i)
        t = self._next_time()
        error = (
            self._epoch_error(COMMIT, epoch)
            or (("NotActive", node, m.status) if m.status != ACTIVE else None)
            or (("NotAllowListed", node) if not m.allow_listed else None)
            or (("AuthorizationExpired", node, m.expiry, t) if self._expired(m, t) else None)
            or (("AlreadySubmitted", node, self.epoch) if m.last_submit_epoch == self.epoch else None)
            or (("InvalidSubmission", "zero commitment") if value == bytes(32) else None)
            or (("InvalidSubmission", "zero numSamples") if samples == 0 else None)
            or (("MaxPeersReached", self.max_peers) if len(s.commits) >= self.max_peers else None)
        )
        tx = self._call(error, self.swarm.submitUpdate, epoch, value, samples, {"from": node})
        if not tx:
            return False
        counted, over = min(samples, m.allowance), samples > m.allowance
        event = tx.events["UpdateSubmitted"]
        assert (event["epoch"], event["node"], event["index"], hex32(event["commitment"])) == (
            self.epoch,
            node,
            len(s.commits),
            value.hex(),
        )
        assert (event["declaredSamples"], event["samples"]) == (samples, counted)
        m.last_submit_epoch, m.commit_index = self.epoch, len(s.commits)
        s.commits.append(CommitModel(i, samples, counted, over, value, valid, role))
        SEEN[f"{role} commits"] += 1
        return True

    def _ready(self, t):
        """Members that can commit at time ``t``."""
        return [
            i
            for i in range(NODES)
            if self._may_commit(i) and self.members[i].allow_listed and not self._expired(self.members[i], t)
        ]

    @precondition(lambda self: self._in(COMMIT))
    @rule(
        pick=st.integers(0, NODES),
        anyone=st.sampled_from([False, False, True]),
        samples=st.one_of(sample_counts, st.just(0)),
        shift=st.sampled_from([0, 0, 0, 0, 0, -1, 1]),
        zero=st.sampled_from([False] * 9 + [True]),
    )
    def commit(self, pick, anyone, samples, shift, zero):
        """A node commits keccak(node, epoch, sha256 of its file) with any declared sample
        count (above its allowance it counts as the allowance and forfeits the epoch's payout,
        OverDeclared): mostly a node that may commit, sometimes any account, a stale or future
        epoch, a zero commitment or a zero sample count (all refused)."""
        ready = self._ready(self._next_time())
        i = pick if anyone or not ready else ready[pick % len(ready)]
        epoch = self.epoch + shift
        value = bytes(32) if zero else commitment(self._at(i), epoch)
        self._submit(i, epoch, value, samples, HONEST, True)

    @precondition(lambda self: self._in(COMMIT) and self.state.commits and any(map(self._may_commit, range(NODES))))
    @rule(pick=st.integers(0, NODES - 1), victim=st.integers(0, NODES - 1), samples=sample_counts)
    def copycat_commits(self, pick, victim, samples):
        """Copycat: a member that trained nothing reads another member's commitment of this
        epoch from the chain (UpdateSubmitted) and commits the same value. The contract
        cannot tell; nobody can open it under the copycat's address, so it has no valid
        commitment of its own this epoch and must never be credited for it."""
        s = self.state
        candidates = [i for i in range(NODES) if self._may_commit(i)]
        i = candidates[pick % len(candidates)]
        logs = rpc(
            "eth_getLogs",
            [
                {
                    "address": self.swarm.address,
                    "fromBlock": hex(s.opened_block),
                    "toBlock": "latest",
                    "topics": [UPDATE_SUBMITTED, "0x" + encode(["uint256"], [self.epoch]).hex()],
                }
            ],
        )
        on_chain = [bytes.fromhex(log["data"][2:])[32:64] for log in logs]
        assert on_chain == [cm.commitment for cm in s.commits]
        copied = on_chain[victim % len(on_chain)]
        if self._submit(i, self.epoch, copied, samples, COPYCAT, False):
            self.copied.add((self.epoch, i))

    @precondition(lambda self: self._in(COMMIT) and any(map(self._may_commit, range(NODES))))
    @rule(pick=st.integers(0, NODES - 1), samples=sample_counts)
    def withholder_commits(self, pick, samples):
        """Withholder: a member commits its own update and then goes silent: it never
        reports, and if it is drawn as leader it never publishes, so anyone fails over after
        its deadline. It forfeits (NotReported or LeaderTimedOut)."""
        candidates = [i for i in range(NODES) if self._may_commit(i)]
        i = candidates[pick % len(candidates)]
        self._submit(i, self.epoch, commitment(self._at(i), self.epoch), samples, WITHHOLDER, True)

    @precondition(lambda self: self._in(COMMIT))
    @rule(wait=st.sampled_from([True, True, False]))
    def elect(self, wait):
        """Anyone closes the commit phase once its window passed, or before that once every
        active member committed, provided minPeers committed; the block that closes it draws
        the leader later."""
        s = self.state
        t = self._advance_to(s.deadline + 1) if wait else self._next_time()
        error = (
            self._epoch_error(COMMIT)
            or (("CommitWindowOpen", self.epoch, s.deadline)
                if t <= s.deadline and len(s.commits) < sum(m.status == ACTIVE for m in self.members) else None)
            or (
                ("NotEnoughCommits", self.epoch, len(s.commits), self.min_peers)
                if len(s.commits) < self.min_peers
                else None
            )
        )
        tx = self._call(error, self.swarm.electLeader, self.epoch, {"from": self._at(OUTSIDER)})
        if tx:
            closed = tx.events["CommitsClosed"]
            assert (closed["epoch"], closed["drawBlock"]) == (self.epoch, tx.block_number)
            assert "LeaderElected" not in tx.events
            s.phase, s.draw_block, s.deadline = MERGE, tx.block_number, tx.timestamp + self.windows[MERGE]

    @precondition(lambda self: self._in(COMMIT))
    @rule(wait=st.sampled_from([True] + [False] * 5))
    def abandon(self, wait):
        """Anyone abandons an epoch that has too few commits a whole commit window after its
        deadline; the budget carries and the next epoch opens."""
        s = self.state
        at = s.deadline + self.windows[COMMIT]
        t = self._advance_to(at + 1) if wait else self._next_time()
        error = ("EpochNotStalled", self.epoch, at) if t <= at or len(s.commits) >= self.min_peers else None
        tx = self._call(error, self.swarm.abandonEpoch, self.epoch, {"from": self._at(OUTSIDER)})
        if tx:
            self._abandoned(tx)

    def _abandoned(self, tx):
        SEEN["epochs abandoned" if self.state.phase == COMMIT else "epochs abandoned (every leader failed)"] += 1
        budget = self._budget()
        abandoned = tx.events["EpochAbandoned"]
        assert (abandoned["epoch"], abandoned["carried"]) == (self.epoch, budget) and budget == self.state.budget
        self._close_epoch(budget)
        self.carry = budget
        self.state.phase = ABANDONED
        self._open_next_epoch(tx)

    # ------------------------------------------------------------------ merge phase
    @precondition(lambda self: self._in(MERGE))
    @rule()
    def draw(self):
        """Anyone draws the leader from the hash of the block that closed the commits (from
        a later block on); once that hash is gone (256 blocks) the draw moves to the current
        block. Drawing twice is refused."""
        s = self.state
        error = ("LeaderAlreadyDrawn", self.epoch) if s.drawn else None
        tx = self._call(error, self.swarm.drawLeader, self.epoch, {"from": self._at(OUTSIDER)})
        if not tx:
            return
        if tx.block_number - s.draw_block > BLOCKHASH_WINDOW:
            closed = tx.events["CommitsClosed"]
            assert (closed["epoch"], closed["drawBlock"]) == (self.epoch, tx.block_number)
            assert "LeaderElected" not in tx.events
            s.draw_block = tx.block_number
            SEEN["draws moved on (blockhash gone)"] += 1
            return
        block_hash = web3.eth.get_block(s.draw_block)["hash"]
        seed = int.from_bytes(
            keccak(encode(["bytes32", "uint256", "address"], [bytes(block_hash), self.epoch, self.swarm.address])),
            "big",
        )
        s.drawn, s.leader, s.deadline = True, seed % len(s.commits), tx.timestamp + self.windows[MERGE]
        elected = tx.events["LeaderElected"]
        assert (elected["epoch"], elected["leader"], elected["seed"], elected["deadline"]) == (
            self.epoch,
            self._at(self._leader_commit().node),
            seed,
            s.deadline,
        )

    @precondition(lambda self: self._in(MERGE) and not self.state.drawn)
    @rule(gap=st.sampled_from([BLOCKHASH_WINDOW, BLOCKHASH_WINDOW + 1]))
    def blocks_pass(self, gap):
        """Many blocks are mined before anyone draws: with the next transaction ``gap``
        blocks after the closing block, the closing block's hash is just still there (256)
        or just gone (257)."""
        number, _ = self._clock()
        missing = self.state.draw_block + gap - (number + 1)
        if missing > 0:
            rpc("anvil_mine", [hex(missing)])

    @precondition(lambda self: self._in(MERGE))
    @rule(wait=st.sampled_from([True, False, False]))
    def fail_over(self, wait):
        """After the leader's deadline (at once when the admin removed the leader) anyone
        hands leadership to the next committer; the skipped leader forfeits. When every
        candidate was skipped the epoch is abandoned and its budget carried."""
        s = self.state
        t = self._advance_to(s.deadline + 1) if wait else self._next_time()
        leader_removed = s.drawn and self.members[self._leader_commit().node].status == REMOVED
        error = (
            ("LeaderNotDrawn", self.epoch, s.draw_block)
            if not s.drawn
            else ("MergeWindowOpen", self.epoch, s.deadline)
            if t <= s.deadline and not leader_removed
            else None
        )
        tx = self._call(error, self.swarm.failover, self.epoch, {"from": self._at(OUTSIDER)})
        if not tx:
            return
        skipped = self._at(self._leader_commit().node)
        s.skipped |= 1 << s.leader
        SEEN["fail-overs"] += 1
        s.failovers += 1
        event = tx.events["LeaderSkipped"]
        if s.failovers == len(s.commits):
            assert (event["skipped"], event["next"], event["deadline"]) == (skipped, ZERO_ADDRESS, 0)
            self._abandoned(tx)
            return
        s.leader = (s.leader + 1) % len(s.commits)
        s.deadline = tx.timestamp + self.windows[MERGE]
        assert (event["skipped"], event["next"], event["deadline"]) == (
            skipped,
            self._at(self._leader_commit().node),
            s.deadline,
        )

    def _publish(self, caller, merged, bitmap):
        """``caller`` publishes ``merged`` over ``bitmap``; expects the model's verdict."""
        s = self.state
        t = self._next_time()
        leader = self._at(self._leader_commit().node) if s.drawn else None
        count = popcount(bitmap)
        error = (
            self._epoch_error(MERGE)
            or (("LeaderNotDrawn", self.epoch, s.draw_block) if not s.drawn else None)
            or (("NotLeader", caller, leader) if caller != leader else None)
            or (("NotActive", leader, REMOVED) if self.members[self._leader_commit().node].status == REMOVED else None)
            or (("DeadlinePassed", self.epoch, s.deadline) if t > s.deadline else None)
            or (("InvalidSubmission", "zero mergedHash") if merged == ZERO_HASH else None)
            or (
                ("ParticipantNotCommitted", bitmap.bit_length() - 1, len(s.commits))
                if bitmap >> len(s.commits)
                else None
            )
            or (("LeaderNotParticipant", leader) if not bitmap >> s.leader & 1 else None)
            or (("TooFewParticipants", count, self.min_peers) if count < self.min_peers else None)
        )
        tx = self._call(error, self.swarm.publishMerge, self.epoch, bytes.fromhex(merged), bitmap, {"from": caller})
        if not tx:
            return False
        published = tx.events["MergePublished"]
        assert (published["epoch"], published["leader"], hex32(published["mergedHash"]), published["participants"]) == (
            self.epoch,
            leader,
            merged,
            bitmap,
        )
        s.phase, s.participants, s.published = REPORT, bitmap, merged
        s.deadline = tx.timestamp + self.windows[REPORT]
        return True

    def _leader_bitmap(self):
        """What an honest leader merges: every update that opens its commitment, and its own
        (a copycat leader must include its own to publish at all)."""
        return self._valid_mask() | 1 << self.state.leader

    def _leader_acts(self):
        """The leader is drawn and is not a withholder (a withholder never publishes)."""
        return self._in(MERGE) and self.state.drawn and self._leader_commit().role != WITHHOLDER

    @precondition(lambda self: self._leader_acts())
    @rule()
    def honest_leader_publishes(self):
        """An honest leader merges every committed update that opens its commitment (so it
        leaves copycats out) and publishes the hash of that merge."""
        bitmap = self._leader_bitmap()
        self._publish(self._at(self._leader_commit().node), merge_hash(self.epoch, bitmap), bitmap)

    def _censorable(self):
        s = self.state
        return [c for c, cm in enumerate(s.commits) if cm.role == HONEST and c != s.leader]

    @precondition(lambda self: self._leader_acts() and self._censorable())
    @rule(pick=st.integers(0, NODES - 1))
    def censoring_leader_publishes(self, pick):
        """Censoring leader: publishes the honest merge minus one honest committer's update
        (with the hash of that smaller merge, which reporters reproduce). Honest reporters
        mark the left-out update valid, so with an honest majority the leader is found to
        have censored it, forfeits and takes a strike."""
        victims = self._censorable()
        bitmap = self._leader_bitmap() & ~(1 << victims[pick % len(victims)])
        leader = self._at(self._leader_commit().node)
        SEEN["censoring leaders"] += self._publish(leader, merge_hash(self.epoch, bitmap), bitmap)

    @precondition(lambda self: self._leader_acts())
    @rule()
    def garbage_leader_publishes(self):
        """Garbage leader: publishes the right participants but a hash that no merge
        reproduces; the honest majority reports the hash it recomputed instead."""
        leader = self._at(self._leader_commit().node)
        SEEN["garbage leaders"] += self._publish(leader, garbage_hash(self.epoch), self._leader_bitmap())

    @precondition(lambda self: self._in(MERGE))
    @rule(
        by_leader=st.sampled_from([True, True, True, False]),
        picks=st.lists(st.integers(0, 7), min_size=1, max_size=8),
        stray=st.sampled_from([False, False, False, True]),
        zero=st.sampled_from([False] * 9 + [True]),
    )
    def publish_anything(self, by_leader, picks, stray, zero):
        """The leader (or somebody else) publishes the hash of a merge over any subset of the
        commitments, copycats included: refused unless the caller leads, in time, with a
        non-zero hash, over committed indices including its own and at least minPeers.
        Reporters recompute the merge without the updates that do not open."""
        s = self.state
        chosen = set(picks) if stray else {p % len(s.commits) for p in picks}
        bitmap = sum(1 << c for c in chosen)
        acts = s.drawn and self._leader_commit().role != WITHHOLDER
        caller = self._at(self._leader_commit().node) if by_leader and acts else self._at(OUTSIDER)
        self._publish(caller, ZERO_HASH if zero else merge_hash(self.epoch, bitmap), bitmap)

    # ------------------------------------------------------------------ report phase
    def _report_content(self, i, behaviour, seed):
        """(metric, merged hash, valid bitmap, scores) that actor ``i`` reports."""
        s, m = self.state, self.members[i]
        own = m.commit_index if m.last_submit_epoch == self.epoch else None
        rng = random.Random(seed)
        order = bits(s.participants)
        if behaviour == LIAR:
            scores = [SCORE_BOUND if c == own else -SCORE_BOUND for c in order]
            return METRIC_BOUND, lie_hash(self.epoch), 0 if own is None else 1 << own, scores
        valid = self._valid_mask()
        scores = [honest_score(rng) if s.commits[c].valid else 0 for c in order]
        if order and rng.random() < 0.5:
            # A specialist validator (non-IID data) values one participant and the others at
            # most barely (a score of 1): credits become uneven, so some participants are paid
            # below full weight (each vote is capped at one and a half equal shares, so rating the others
            # at most 0 instead rarely left anyone with a small positive credit).
            favourite = rng.randrange(len(order))
            scores = [score if k == favourite else min(score, 1) for k, score in enumerate(scores)]
        # Every honest validator values the rare-data node's update at an eighth of what it
        # would give another: its credit per sample sits near the standing line, so it is
        # paid below full weight whenever it declares about half the average data or more
        # (random specialists alone left a whole fresh-clone run without such a payout).
        scores = [
            score // RARE_DATA_DISCOUNT if score > 0 and s.commits[c].node == RARE_DATA_NODE else score
            for c, score in zip(order, scores)
        ]
        if behaviour == COPYCAT and own is not None:
            valid |= 1 << own
            scores = [SCORE_BOUND if c == own else score for c, score in zip(order, scores)]
        metric = rng.randint(700_000, METRIC_BOUND)
        return metric, merge_hash(self.epoch, s.participants & self._valid_mask()), valid, scores

    def _report_error(self, i, t):
        s, m, node = self.state, self.members[i], self._at(i)
        return (
            self._epoch_error(REPORT)
            or (("DeadlinePassed", self.epoch, s.deadline) if t > s.deadline else None)
            or (("NotActive", node, REMOVED) if m.status == REMOVED else None)
            or (("NotCommitter", node, self.epoch) if m.last_submit_epoch != self.epoch else None)
            or (("AlreadyReported", node, self.epoch) if s.reporters >> m.commit_index & 1 else None)
        )

    def _report(self, i, behaviour, seed):
        """Actor ``i`` reports as ``behaviour`` (HONEST, COPYCAT or LIAR); returns whether
        the report was accepted."""
        s, node = self.state, self._at(i)
        metric, merged, valid, scores = self._report_content(i, behaviour, seed)
        error = self._report_error(i, self._next_time())
        tx = self._call(
            error, self.swarm.reportValidation, self.epoch, metric, bytes.fromhex(merged), valid, scores, {"from": node}
        )
        if not tx:
            return False
        event = tx.events["ValidationReported"]
        assert (event["epoch"], event["reporter"], event["metric"], hex32(event["mergedHash"])) == (
            self.epoch,
            node,
            metric,
            merged,
        )
        assert (event["valid"], list(event["scores"])) == (valid, scores)
        s.reports.append((node.address, Report(metric, scores, merged, valid)))
        s.report_roles.append(behaviour)
        SEEN[f"{behaviour} reports"] += 1
        s.reporters |= 1 << self.members[i].commit_index
        fields = [node.address, metric, bytes.fromhex(merged), valid]
        head = keccak(encode(["address", "int64", "bytes32", "uint256"], fields))
        s.digest = keccak(encode(["bytes32", "bytes32", "int64[]"], [s.digest, head, scores]))
        return True

    def _behaviour(self, i):
        m = self.members[i]
        if m.last_submit_epoch == self.epoch and self.state.commits[m.commit_index].role == COPYCAT:
            return COPYCAT
        return HONEST

    @precondition(lambda self: self._in(REPORT))
    @rule(pick=st.integers(0, NODES), anyone=st.sampled_from([False, False, False, True]), seed=seeds)
    def report(self, pick, anyone, seed):
        """A committer reports: the metric of the merge on its validation data, the merge hash
        it recomputed from the updates that open their commitments, those updates as valid,
        and one score per participant (0 for an update that does not open). A copycat also
        calls itself valid and scores itself +1e9. Mostly a committer that is due, sometimes
        any account (a stranger, a removed node, a second report, too late: refused)."""
        due = self._due()
        if anyone or not due:
            callers = [a for a in range(NODES + 1) if not self._withholds(a)]
            i = callers[pick % len(callers)]
        else:
            i = due[pick % len(due)]
        self._report(i, self._behaviour(i), seed)

    @precondition(lambda self: self._in(REPORT) and self._due((HONEST,)))
    @rule(pick=st.integers(0, NODES - 1))
    def lying_reporter(self, pick):
        """Lying reporter: a committer scores itself +1e9 (if it is a participant) and every
        other participant -1e9, calls only its own update valid, claims the best metric and
        reports a merge hash nobody computed (liars agree on it). A minority of liars cannot
        take over the model or the verdict (the majority hash and the valid votes ignore it),
        and each liar moves the credits only by withholding its own vote: its self-score is
        ignored and -1e9 counts as 0."""
        due = self._due((HONEST,))
        self._report(due[pick % len(due)], LIAR, 0)

    @precondition(lambda self: self._in(REPORT) and self._due((HONEST,)))
    @rule(seed=seeds)
    def honest_majority_reports(self, seed):
        """The honest committers that are due all report, one after another: the hash they
        recomputed (the leader's when it merged honestly, a contradicting one when it
        published garbage or merged an update that does not open), every update that opens
        as valid (a censored one included), and their scores."""
        for n, i in enumerate(self._due((HONEST,))):
            if not self._report(i, HONEST, seed + n):
                break

    @precondition(lambda self: self._in(REPORT))
    @rule(
        pick=st.integers(0, NODES),
        kind=st.sampled_from(["length", "metric_low", "metric_high", "valid", "score_high", "score_low"]),
        position=st.integers(0, 7),
    )
    def malformed_report(self, pick, kind, position):
        """A report with one malformed field is refused with the error that names it: a
        score vector of the wrong length, a metric or a score out of range, a valid bitmap
        naming an uncommitted index."""
        s = self.state
        due = self._due()
        i = due[pick % len(due)] if due else pick
        metric, merged, valid, scores = self._report_content(i, HONEST, pick)
        n, j = len(scores), position % len(scores)
        if kind == "length":
            scores, error = scores + [0], ("ScoreCountMismatch", n + 1, n)
        elif kind == "metric_low":
            metric, error = -1, ("MetricOutOfRange", -1)
        elif kind == "metric_high":
            metric, error = METRIC_BOUND + 1, ("MetricOutOfRange", METRIC_BOUND + 1)
        elif kind == "valid":
            valid, error = valid | 1 << len(s.commits), ("ParticipantNotCommitted", len(s.commits), len(s.commits))
        else:
            bad = SCORE_BOUND + 1 if kind == "score_high" else -SCORE_BOUND - 1
            scores[j], error = bad, ("ScoreOutOfRange", j, bad)
        error = self._report_error(i, self._next_time()) or error
        args = (self.epoch, metric, bytes.fromhex(merged), valid, scores, {"from": self._at(i)})
        assert self._call(error, self.swarm.reportValidation, *args) is None

    # ------------------------------------------------------------------ settlement
    @precondition(lambda self: self._in(REPORT))
    @rule(
        tamper=st.sampled_from([None] * 6 + ["score", "hash", "valid", "order", "drop", "packed", "metric"]),
        wait=st.sampled_from([True, False, False]),
    )
    def settle(self, tamper, wait):
        """Anyone settles once every committer reported or the report deadline passed, with
        the reports as emitted and the metric median as a hint; the outcome must match
        swarmtoken.rewards.settle to the wei. Forged, reordered, dropped or truncated
        reports and a wrong hint are refused with the error that names them."""
        s = self.state
        k, c = len(s.reports), len(s.commits)
        t = self._advance_to(s.deadline + 1) if wait and k < c else self._next_time()
        n = popcount(s.participants)
        (reporters, metrics, hashes, valids, packed), metric = settle_arguments(s.reports, n)
        error = ("SettlementNotDue", self.epoch, k, c, s.deadline) if k < c and t <= s.deadline else None
        forged = None
        if tamper == "drop" and k:
            reporters, forged = reporters[:-1], ("ReportCountMismatch", k - 1, k)
        elif tamper == "packed" and k:
            packed, forged = packed[:-8], ("PackedScoresLength", len(packed) - 8, len(packed))
        elif tamper == "score" and k:
            packed, forged = bytes([packed[0] ^ 1]) + packed[1:], ("ReportsMismatch", self.epoch)
        elif tamper == "hash" and k:
            hashes, forged = hashes[:-1] + [keccak(hashes[-1])], ("ReportsMismatch", self.epoch)
        elif tamper == "valid" and k:
            valids, forged = valids[:-1] + [valids[-1] ^ 1], ("ReportsMismatch", self.epoch)
        elif tamper == "order" and k >= 2:
            swapped = [s.reports[1], s.reports[0]] + s.reports[2:]
            (reporters, metrics, hashes, valids, packed), _ = settle_arguments(swapped, n)
            forged = ("ReportsMismatch", self.epoch)
        elif tamper == "metric":
            metric, forged = metric + 1, ("WrongMetricMedian", metric + 1)
        args = (self.epoch, (reporters, metrics, hashes, valids, packed), metric)
        copycats = [cm.node for cm in s.commits if not cm.valid]
        before = batch_call([(self.swarm.claimable, (self._at(i),)) for i in copycats])
        tx = self._call(error or forged, self.swarm.settle, *args, {"from": self._at(OUTSIDER)})
        if tx:
            after = batch_call([(self.swarm.claimable, (self._at(i),)) for i in copycats])
            for i, was, now in zip(copycats, before, after):
                self.copycat_gains[(self.epoch, i)] = now - was
            self._settled(tx, metric)

    def _settled(self, tx, metric):
        """Check a settlement against the reference rule and the protocol's promises, then
        move the model on."""
        s = self.state
        order = bits(s.participants)
        nodes = [s.commits[c].node for c in order]
        budget = self._budget()
        assert budget == s.budget
        expected = reference_settle(
            budget,
            [
                Participant(
                    samples=s.commits[c].samples,
                    reported=bool(s.reporters >> c & 1),
                    skipped_leader=bool(s.skipped >> c & 1),
                    removed=self.members[s.commits[c].node].status == REMOVED,
                    leader=c == s.leader,
                    over_declared=s.commits[c].over_declared,
                    node=self._at(s.commits[c].node).address,
                    smoothed=self.members[s.commits[c].node].smoothed,
                )
                for c in order
            ],
            [replace(report, reporter=reporter) for reporter, report in s.reports],
            rule=self.rule,
            commits=len(s.commits),
            participants_bitmap=s.participants,
            published_hash=s.published,
        )
        verdict = expected.verdict
        SEEN["epochs settled"] += 1
        SEEN["quorate" if expected.quorate else "not quorate"] += 1
        SEEN[f"verdict {verdict.fault.name}"] += expected.quorate
        SEEN["participants paid"] += sum(pay > 0 for pay in expected.payouts)
        SEEN["participants paid below full weight"] += sum(
            pay > 0 and not standing for pay, standing in zip(expected.payouts, expected.standing))
        SEEN["participants struck"] += sum(expected.struck)
        for why in expected.forfeits:
            if why is not Forfeit.NONE:
                SEEN[f"forfeit {why.name}"] += 1

        # the ledger, to the wei
        per_node = events(tx, "ParticipantSettled")
        fields = ("epoch", "node", "samples", "score", "smoothedScore", "standing", "payout", "forfeit")
        assert [tuple(e[name] for name in fields) for e in per_node] == [
            (self.epoch, self._at(i).address, s.commits[c].samples, score, smoothed, standing, pay, int(why))
            for i, c, score, smoothed, standing, pay, why in zip(
                nodes, order, expected.scores, expected.smoothed, expected.standing, expected.payouts, expected.forfeits
            )
        ]
        settled = tx.events["EpochSettled"]
        assert (
            settled["epoch"],
            settled["budget"],
            settled["credited"],
            settled["carried"],
            settled["medianMetric"],
            settled["reporters"],
            settled["quorate"],
            hex32(settled["modelHash"]),
        ) == (
            self.epoch,
            budget,
            expected.credited,
            expected.carried + sum(e["amount"] for e in events(tx, "BalanceForfeited")),  # checked below
            metric,
            len(s.reports),
            expected.quorate,
            verdict.model_hash,
        )
        s.model_hash = self.model_hashes[self.epoch] = verdict.model_hash  # read back by the invariant
        leader = self._at(self._leader_commit().node).address
        disputed = events(tx, "MergeDisputed")
        disputes = [(e["leader"], hex32(e["publishedHash"]), hex32(e["majorityHash"])) for e in disputed]
        assert disputes == (
            [(leader, s.published, verdict.model_hash)] if verdict.fault is Forfeit.MERGE_CONTRADICTED else []
        )
        assert [(e["leader"], e["node"]) for e in events(tx, "UpdateCensored")] == [
            (leader, self._at(s.commits[c].node).address) for c in verdict.censored
        ]

        # what the protocol promises beyond the arithmetic
        truth = merge_hash(self.epoch, s.participants & self._valid_mask())
        honest = sum(role == HONEST for role in s.report_roles)
        if expected.quorate and 2 * honest > len(s.reports):
            # an honest majority fixes the model and judges the leader by the truth
            left_out = tuple(c for c in range(len(s.commits)) if s.commits[c].valid and not s.participants >> c & 1)
            fault = (
                Forfeit.MERGE_CONTRADICTED if s.published != truth else Forfeit.CENSORED if left_out else Forfeit.NONE
            )
            assert (verdict.model_hash, verdict.fault, verdict.censored) == (truth, fault, left_out)
            SEEN["honest majorities"] += 1
        for c, pay in zip(order, expected.payouts):
            if not s.commits[c].valid:  # a copycat the leader merged anyway
                SEEN["copycat participants"] += 1
                assert pay == 0

        # credits, strikes (rejected updates too), suspensions with their forfeits; expired
        # seats are released (participants first, then committers outside the merge by index)
        suspended, forfeits, expired = [], [], []

        def strike(i, struck):
            m = self.members[i]
            m.strikes, m.clean = strikes_after(m.strikes, struck), clean_after(m.clean, struck)
            if struck and self.suspend_after and m.strikes >= self.suspend_after and m.status in (ACTIVE, NONE):
                m.status = SUSPENDED
                SEEN["suspensions"] += 1
                suspended.append((self._at(i).address, m.strikes))
                if m.claimable:
                    SEEN["balances forfeited"] += 1
                    forfeits.append((self._at(i).address, m.claimable))
                    m.forfeited += m.claimable

        def release(i):
            m = self.members[i]
            if m.status == ACTIVE and self._expired(m, tx.timestamp):
                m.status = NONE
                expired.append(self._at(i).address)
                SEEN["seats released at settlement"] += 1

        for i, smoothed, struck, pay in zip(nodes, expected.smoothed, expected.struck, expected.payouts):
            m = self.members[i]
            m.credited += pay
            m.smoothed = smoothed
            self.credits[(self.epoch, i)] = pay
            if expected.quorate:
                strike(i, struck)
            release(i)
        for c, cm in enumerate(s.commits):
            if not s.participants >> c & 1:
                if c in expected.rejected:
                    SEEN["rejected updates"] += 1
                    strike(cm.node, True)
                release(cm.node)
        assert [e["node"] for e in events(tx, "UpdateRejected")] == [
            self._at(s.commits[c].node).address for c in expected.rejected
        ]
        assert [(e["account"], e["epoch"], e["strikes"]) for e in events(tx, "NodeSuspended")] == [
            (a, self.epoch, k) for a, k in suspended
        ]
        assert [(e["account"], e["epoch"], e["amount"]) for e in events(tx, "BalanceForfeited")] == [
            (a, self.epoch, amount) for a, amount in forfeits
        ]
        assert [e["account"] for e in events(tx, "NodeExpired")] == expired
        forfeited = sum(amount for _, amount in forfeits)
        SEEN["balances burned (forfeit over the epoch's credits)"] += forfeited > expected.credited

        # money and the stopping rule
        self._close_epoch(budget)
        self.carry = expected.carried + forfeited
        self.supply += expected.credited - forfeited
        self.settled_epochs += 1
        s.phase = SETTLED
        if expected.quorate and (not self.has_best or metric > self.best + self.min_delta):
            self.best, self.has_best, self.stale = metric, True, 0
        else:
            self.stale += 1
        fires = (
            (expected.quorate and self.target != 0 and metric >= self.target)
            or self.settled_epochs >= self.max_epochs
            or (self.patience != 0 and self.stale >= self.patience)
        )
        if fires:
            finished = tx.events["SwarmFinished"]
            assert (finished["epoch"], finished["bestMetric"]) == (self.epoch, self.best)
            assert "EpochOpened" not in tx.events
            self.finished = True
            SEEN["swarms finished"] += 1
        else:
            assert "SwarmFinished" not in tx.events
            self._open_next_epoch(tx)

    # ------------------------------------------------------------------ any time
    @rule(
        call=st.sampled_from(
            [
                "submitUpdate",
                "electLeader",
                "abandonEpoch",
                "drawLeader",
                "failover",
                "publishMerge",
                "reportValidation",
                "settle",
            ]
        ),
        kind=st.sampled_from(["phase", "phase", "epoch", "stranger"]),
        shift=st.sampled_from([-1, 1]),
        i=st.integers(0, NODES - 1),
    )
    def refused_call(self, call, kind, shift, i):
        """A protocol call for another phase is refused with WrongPhase, one for a stale or
        future epoch with WrongEpoch, and every one with SwarmIsFinished once the swarm
        finished; only the admin manages membership (authorize, removeNode)."""
        outsider = self._at(OUTSIDER)
        if kind == "stranger":
            error = ("OwnableUnauthorizedAccount", outsider)
            if shift < 0:
                self._call(error, self.swarm.authorize, self._at(i), 0, 1000, {"from": outsider})
            else:
                self._call(error, self.swarm.removeNode, self._at(i), {"from": outsider})
            return
        phases = {
            "submitUpdate": COMMIT,
            "electLeader": COMMIT,
            "abandonEpoch": COMMIT,
            "drawLeader": MERGE,
            "failover": MERGE,
            "publishMerge": MERGE,
            "reportValidation": REPORT,
            "settle": REPORT,
        }
        if kind == "phase" and not self.finished and phases[call] == self.state.phase:
            call = next(name for name, phase in phases.items() if phase != self.state.phase)
        epoch = self.epoch + shift if kind == "epoch" else self.epoch
        args = {
            "submitUpdate": (epoch, commitment(self._at(0), epoch), 1),
            "publishMerge": (epoch, b"\x11" * 32, 7),
            "reportValidation": (epoch, 0, b"\x11" * 32, 0, []),
            "settle": (epoch, NO_REPORTS, 0),
        }.get(call, (epoch,))
        error = self._epoch_error(phases[call], epoch)
        assert error
        self._call(error, getattr(self.swarm, call), *args, {"from": outsider})

    @rule(i=st.integers(0, NODES))
    def claim(self, i):
        """An account pulls everything credited to it and not forfeited, exactly once, after
        CLAIM_AFTER clean epochs, the swarm's finish, or its departure (``_unlocked``)."""
        m, node = self.members[i], self._at(i)
        error = ("NothingToClaim", node) if m.claimable == 0 else \
            None if self._unlocked(m) else ("ClaimLocked", node, m.clean, CLAIM_AFTER)
        tx = self._call(error, self.swarm.claim, {"from": node})
        if tx:
            assert (tx.events["RewardClaimed"]["account"], tx.events["RewardClaimed"]["amount"]) == (node, m.claimable)
            m.claimed += m.claimable

    @rule(to=st.sampled_from(["deadline", "past deadline", 1, 10, 30]))
    def time_passes(self, to):
        """Time jumps forward: a few seconds, or so that the next transaction lands exactly on
        the current window's deadline (still inside it) or one second after it."""
        s = self.state
        if to == "deadline":
            self._advance_to(s.deadline)
        elif to == "past deadline":
            self._advance_to(s.deadline + 1)
        else:
            self._advance_to(self._next_time() + to)

    @rule(**MOVE_ON)
    def protocol_moves_on(self, pick, coin, hurry, adversary, samples, seed):
        """Whoever's turn it is takes the next protocol step: a ready node commits (until
        minPeers + 1 committed, then sometimes), the commit window closes, the leader is
        drawn and publishes (a removed or withholding leader is failed over after its
        deadline, as is one with too few valid updates to merge), a due committer reports,
        anyone settles (after the deadline when reports are missing: once nobody is due, the
        deadline passed, or now and then in a ``hurry``); an epoch short of commits gets an
        allow-listed account enrolled, or is abandoned. Once the swarm finished, accounts
        claim. Now and then the one whose turn it is is an ``adversary``: a copycat or a
        withholder commits, the leader censors or publishes garbage, a reporter lies. The
        rules above make the same calls with other arguments, at other times; this one lets
        runs get through whole epochs."""
        s = self.state
        if self.finished:
            self.claim(pick)
        elif s.phase == COMMIT:
            t = self._next_time()
            ready = self._ready(t)
            idle = [
                i
                for i, m in enumerate(self.members[:NODES])
                if m.status == NONE and m.allow_listed and not self._expired(m, t) and m.last_submit_epoch != self.epoch
            ]
            active = sum(m.status == ACTIVE for m in self.members)
            if ready and len(s.commits) < self.max_peers and (len(s.commits) <= self.min_peers or coin):
                if adversary == COPYCAT and s.commits:
                    self.copycat_commits(pick, seed, samples)
                    return
                if adversary == WITHHOLDER:
                    self.withholder_commits(pick, samples)
                    return
                i = ready[pick % len(ready)]
                declared = min(samples, self.members[i].allowance)  # what an honest node declares
                self._submit(i, self.epoch, commitment(self._at(i), self.epoch), declared, HONEST, True)
            elif len(s.commits) >= self.min_peers:
                self.elect(True)
            elif idle and active < self.max_peers:
                self.enrol(idle[pick % len(idle)])
            else:
                self.abandon(True)
        elif s.phase == MERGE:
            if not s.drawn:
                self.draw()
                return
            leader = self._leader_commit()
            if self.members[leader.node].status == REMOVED:
                self.fail_over(False)
            elif leader.role == WITHHOLDER or popcount(self._leader_bitmap()) < self.min_peers:
                self.fail_over(True)
            elif self._next_time() > s.deadline:
                self.fail_over(False)
            elif adversary == "censor" and self._censorable() and popcount(self._leader_bitmap()) > self.min_peers:
                self.censoring_leader_publishes(pick)
            elif adversary == "garbage":
                self.garbage_leader_publishes()
            else:
                self.honest_leader_publishes()
        else:
            due = self._due()
            if due and not (hurry and s.reports) and self._next_time() <= s.deadline:
                if adversary == LIAR and self._due((HONEST,)):
                    self.lying_reporter(pick)
                    return
                i = due[pick % len(due)]
                self._report(i, self._behaviour(i), seed)
            else:
                self.settle(None, True)

    # Hypothesis draws among the enabled rules uniformly and an epoch takes about ten
    # protocol steps in order, so the rule above is registered several more times (after the
    # class, each under its own name: hypothesis switches rules off per run by name, and one
    # name would leave whole runs without progress): most runs then settle epochs within
    # the step budget instead of mostly reshuffling membership.

    # ------------------------------------------------------------------ invariants
    @invariant()
    def contract_matches_model(self):
        """Money and phase invariants, and every field of the model, checked in one batch."""
        if self.started:
            SEEN["steps"] += 1
        self.started = True
        swarm, token, s = self.swarm, self.token, self.state
        per_actor = []
        for actor in self.actors:
            per_actor += [(swarm.claimable, (actor,)), (token.balanceOf, (actor,)), (swarm.memberOf, (actor,))]
        answers = batch_call(
            [
                (swarm.currentEpoch, ()),
                (swarm.settledEpochs, ()),
                (swarm.finished, ()),
                (swarm.carry, ()),
                (swarm.activeCount, ()),
                (swarm.bestMetric, ()),
                (swarm.staleEpochs, ()),
                (token.totalSupply, ()),
                (token.balanceOf, (swarm,)),
                (swarm.epochState, (self.epoch,)),
                (swarm.epochState, (self.last_seen[0],)),
                (swarm.leaderOf, (self.epoch,)),
                *[(swarm.commitAt, (self.epoch, c)) for c in range(len(s.commits))],
                *per_actor,
            ]
        )
        epoch, settled, finished, carry, active, best, stale, supply, held, state, previous, leader = answers[:12]
        commits, rest = answers[12 : 12 + len(s.commits)], answers[12 + len(s.commits) :]
        claimable, balances, members = rest[0::3], rest[1::3], rest[2::3]

        # money
        claimed = [m.claimed for m in self.members]
        assert supply + carry + self.capped == self.reward * self.closed_epochs
        assert (supply, carry) == (self.supply, self.carry)
        assert supply == sum(claimed) + held
        assert held == sum(claimable)
        assert list(claimable) == [m.claimable for m in self.members]
        assert list(balances) == claimed
        assert self.cap == 0 or supply <= self.cap

        # phase machine: stay, or one legal step
        seen = (epoch, state[0])
        last_epoch, last_phase = self.last_seen
        if seen != self.last_seen:
            if epoch == last_epoch:
                assert (last_phase, seen[1]) in {(COMMIT, MERGE), (MERGE, REPORT), (REPORT, SETTLED)}
            else:
                assert epoch == last_epoch + 1 and seen[1] == COMMIT
                assert (last_phase, previous[0]) in {(REPORT, SETTLED), (MERGE, ABANDONED), (COMMIT, ABANDONED)}
                assert hex32(previous[13]) == self.model_hashes.get(last_epoch, ZERO_HASH)
        self.last_seen = seen

        # the model
        assert (epoch, settled, finished) == (self.epoch, self.settled_epochs, self.finished)
        assert (best, stale) == (self.best, self.stale)
        assert active == sum(m.status == ACTIVE for m in self.members)
        drawn_leader = self._at(self._leader_commit().node).address if s.drawn else ZERO_ADDRESS
        assert leader == drawn_leader
        assert tuple(state[:11]) == (
            s.phase,
            s.deadline,
            len(s.commits),
            popcount(s.participants),
            s.leader if s.drawn else 0,
            s.failovers,
            s.draw_block,
            s.drawn,
            s.participants,
            s.reporters,
            s.skipped,
        )
        assert popcount(s.reporters) == len(s.reports)
        assert (hex32(state[11]), hex32(state[12]), hex32(state[13])) == (s.digest.hex(), s.published, s.model_hash)

        assert [tuple(x) for x in commits] == [
            (self._at(cm.node).address, cm.samples, cm.over_declared) for cm in s.commits
        ]
        assert [tuple(x) for x in members] == [
            (m.allow_listed, m.status, m.strikes, m.commit_index, m.expiry, m.last_submit_epoch, m.allowance,
             m.smoothed, m.clean)
            for m in self.members
        ]

    @invariant()
    def copycat_is_never_credited(self):
        """No account is credited for an epoch in which it had no valid commitment of its
        own: a copycat's payout from the epoch it copied in is zero (ParticipantSettled, if
        the leader merged it anyway), and its claimable did not grow when that epoch settled
        (read from the chain around the settle transaction; it shrinks to 0 when the rejected
        copy's strike suspends it and forfeits its balance)."""
        assert all(self.credits.get(key, 0) == 0 for key in self.copied)
        assert set(self.copycat_gains) <= self.copied
        assert all(gain <= 0 for gain in self.copycat_gains.values())

    def teardown(self):
        """Everyone who may claims: the contract is left holding only the locked balances
        (fewer than CLAIM_AFTER clean epochs, swarm not finished), and supply is the rest paid
        out; only the carry (dust and forfeits) waits for a next epoch."""
        if sys.exc_info()[1] is not None:
            return  # hypothesis tears down in a finally clause: a failed step is the news
        for m, actor in zip(self.members, self.actors):
            if m.claimable and self._unlocked(m):
                self.swarm.claim({"from": actor})
                m.claimed += m.claimable
        locked = sum(m.claimable for m in self.members)
        assert self.token.balanceOf(self.swarm) == locked
        assert self.token.totalSupply() == sum(m.claimed for m in self.members) + locked == self.supply


def _protocol_moves_on_again(copy):
    def step(self, pick, coin, hurry, adversary, samples, seed):
        self.protocol_moves_on(pick, coin, hurry, adversary, samples, seed)

    step.__name__ = step.__qualname__ = f"protocol_moves_on_{copy}"
    step.__doc__ = SwarmMachine.protocol_moves_on.__doc__
    return rule(**MOVE_ON)(step)


PROTOCOL_WEIGHT = 14  # registrations of protocol_moves_on
for _copy in range(1, PROTOCOL_WEIGHT):
    setattr(SwarmMachine, f"protocol_moves_on_{_copy}", _protocol_moves_on_again(_copy))


@pytest.fixture
def machine_world(create_swarm, admin, nodes, outsider):
    swarm, token = create_swarm(**CONFIG)
    for index, allowance in enumerate(ALLOWANCES):
        swarm.authorize(nodes[index], 0, allowance, {"from": admin})
        if index < ENROLLED_AT_START:
            swarm.enroll(f"http://127.0.0.1/{index}", {"from": nodes[index]})
    SwarmMachine.swarm, SwarmMachine.token, SwarmMachine.admin = swarm, token, admin
    SwarmMachine.actors = list(nodes[:NODES]) + [outsider]
    SwarmMachine.cfg, SwarmMachine.cap = swarm.config().dict(), token.cap()
    SwarmMachine.start_block, SwarmMachine.start_deadline = web3.eth.block_number, swarm.epochState(1)["deadline"]
    return swarm


# How many steps a hypothesis run makes is not set directly: its first ~10 examples are
# kept small (a step or a few each), later ones make up to STEPS_PER_EXAMPLE, and examples
# that end early or overrun do not count towards max_examples. Random runs therefore vary
# between about 1,100 and 3,400 steps (1 to 3 minutes on two cores). By default the test runs the
# derandomised sequence (hypothesis seeds itself from the test's source; the leader draws
# still vary with block hashes), about 1,250 steps in about a minute: steady for CI, and a
# failure reproduces. SWARM_STATEFUL_EXPLORE=1 runs fresh random sequences (and uses the
# example database) to hunt for new failures. Should a run stop short of MIN_STEPS, or
# (fixed sequence) miss a case in COVERED, the test runs the machine again, one block later.
EXAMPLES, STEPS_PER_EXAMPLE, MIN_STEPS, ROUNDS = 35, 50, 1000, 8
EXPLORE = bool(os.environ.get("SWARM_STATEFUL_EXPLORE"))
COVERED = [
    "copycat commits",
    "withholder commits",
    "liar reports",
    "censoring leaders",
    "garbage leaders",
    "honest majorities",
    "verdict MERGE_CONTRADICTED",
    "verdict CENSORED",
    "participants paid",
    "participants paid below full weight",
    "participants struck",
    "rejected updates",
    "balances forfeited",
    "fail-overs",
]


def test_random_protocol_runs_keep_money_accountability_and_phase_invariants(machine_world):
    """At least MIN_STEPS random steps of honest and adversarial protocol calls keep the
    contract equal to the model and every invariant true."""
    chain.snapshot()
    SEEN.clear()
    REFUSED.clear()
    started = time.perf_counter()
    try:
        for round_ in range(ROUNDS):
            if round_:
                # The same sequence from the same snapshot replays the same block hashes, and so
                # the same leader draws: start the next round one block later instead.
                chain.revert()
                chain.mine(1)
                chain.snapshot()
            run_state_machine_as_test(
                SwarmMachine,
                settings=settings(
                    max_examples=EXAMPLES,
                    derandomize=not EXPLORE,
                    stateful_step_count=STEPS_PER_EXAMPLE,
                    deadline=None,
                    suppress_health_check=[
                        HealthCheck.too_slow,
                        HealthCheck.filter_too_much,
                        HealthCheck.data_too_large,
                    ],
                ),
            )
            # Rounds until the steps are enough and (fixed sequence) every case in COVERED was
            # met: the derandomised sequence follows the test's source and the draws follow the
            # block hashes, so an edit or another chain history (the genesis time, the tests
            # run before on this worker) can move a rare case into a later round instead of
            # failing the test.
            if SEEN["steps"] >= MIN_STEPS and (EXPLORE or all(SEEN[what] for what in COVERED)):
                break
    finally:
        rpc("anvil_removeBlockTimestampInterval")
    elapsed = time.perf_counter() - started
    print(f"\nstate machine: {SEEN['steps']} steps in {SEEN['runs']} runs, {elapsed:.1f} s")
    print(f"seen: {dict(sorted(SEEN.items()))}")
    print(f"refused: {dict(sorted(REFUSED.items()))}")
    assert SEEN["steps"] >= MIN_STEPS
    if not EXPLORE:
        # The fixed sequence meets every adversary and verdict many times over; a change
        # after which it no longer does would leave this test without its teeth.
        missed = [what for what in COVERED if not SEEN[what]]
        assert not missed, f"the runs never saw: {missed}"
