"""One swarm node: a process that trains on its private data and coordinates with its
peers only through the chain and their parameter stores.

Each epoch, driven by on-chain phase and deadlines (a late or dead peer is skipped, never
waited on forever):

1. Commit: train from the global model, store the parameters as a content-addressed
   safetensors file (not yet served), call ``submitUpdate`` with a commitment bound to
   this node, the epoch and the file's hash (`store.commitments`). After the window,
   anyone may trigger the election; nodes stagger their attempts by commit index so
   usually one transaction is sent.
2. Merge: serve our file. The leader downloads every commitment from under its
   committer's enrolled base URI (commitment, size, format, shape and finiteness
   checked), leaves out what fails and every file committed twice, merges the rest with
   the agreed rule and publishes. If the leader misses its deadline, anyone fails over.
3. Report: every committer downloads the same files, recomputes the merge of the
   leader's participants it found valid and compares its hash with the published one,
   logging a dispute on a mismatch. It evaluates the merge on its validation data, scores
   every participant (Shapley-style, seeded by the epoch, each coalition valued as the
   swarm's own merge of its members: `contribution_utility`) and reports the metric, its
   merge hash, the updates it found valid and the scores. The contract holds the leader
   to the majority (see `rewards`).
4. Settle: once all reported or the deadline passed, someone settles with the reports
   read back from events. The next epoch starts from the model settlement recorded
   (the strict majority's merge hash), whoever serves it.

Updates are merged and scored in a canonical order (by node address), so the result
does not depend on the order in which nodes happened to commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from ..chain.connection import SwarmHandles
from ..config import ConfigError, check_registered
from ..chain.epochview import PHASES, read_epoch
from ..chain.ledger import CommitRecord, EpochRecord
from ..chain.outage import CHAIN_DOWN_ERRORS, ChainWatch
from .localdata import load_local_data
from .compat import incompatibility
from .lock import KeystoreInUseError, KeystoreLock
from .config import NodeConfig
from .protocol_attacks import INFLATE_FACTOR, PROTOCOL_ATTACKS
from ..store import (
    FetchError,
    ParameterServer,
    ParameterStore,
    commitment_of,
    fetch,
    fetch_committed,
    hex_to_bytes32,
    shared_files,
)
from ..store.server import ROUTE
from ..units import METRIC_SCALE, SCORE_SCALE, to_fixed

if TYPE_CHECKING:
    from trainer.scoring import Utility

log = logging.getLogger("swarm.node")

STATUS_NONE, STATUS_ACTIVE = 0, 1
STATUSES = ("none", "active", "suspended", "removed")
STAGGER_S = 0.5
T = TypeVar("T")


class NodeError(RuntimeError):
    """The node cannot take part; the message says what the operator should do."""


def _writable_store(root: Path) -> ParameterStore:
    """The node's store at ``root``, or a NodeError naming the folder if it cannot be
    created or written (checked by writing and removing a probe file)."""
    try:
        store = ParameterStore(root)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".partial-probe-"):
            pass
    except OSError as exc:
        raise NodeError(f"store folder {root} is not writable ({exc.strerror or exc}); fix its permissions or "
                        "set [store] dir in the node config") from None
    return store


def _block_number() -> int:
    from brownie import web3

    return int(web3.eth.block_number)


def _text(value: bytes) -> str:
    return bytes(value).rstrip(b"\0").decode()


def epoch_seed(swarm_address: str, epoch: int) -> int:
    """The seed every validator uses for epoch ``epoch``'s sampled coalitions: derived from
    public data only, so all validators sample the same ones."""
    return int.from_bytes(hashlib.sha256(f"{swarm_address.lower()}:{epoch}".encode()).digest()[:4], "big")


@dataclass(frozen=True)
class MergeInputs:
    """One epoch's merge as every node computes it: the updates in canonical order (by node
    address, so the result does not depend on the order of commitment), their sample counts
    (allowance-capped) and the leader's position among them, the anchor of anchored rules
    (``None`` when the leader's update is not among them)."""

    commits: list[CommitRecord]
    updates: list[dict[str, torch.Tensor]]
    weights: list[int]
    anchor: int | None


def merge_inputs(commits: Iterable[CommitRecord], updates: Mapping[int, dict[str, torch.Tensor]],
                 leader: str | None) -> MergeInputs:
    """The `MergeInputs` of ``commits`` (each one's update held in ``updates`` under its
    commit index) in an epoch led by ``leader``."""
    ordered = sorted(commits, key=lambda c: c.node.lower())
    anchor = next((k for k, c in enumerate(ordered) if leader is not None and c.node.lower() == leader.lower()), None)
    return MergeInputs(ordered, [updates[c.index] for c in ordered], [c.samples for c in ordered], anchor)


def merge_updates(rule: str, inputs: MergeInputs, previous: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The swarm's merge of ``inputs`` from the global model ``previous``. No rule options:
    the on-chain config agrees on the rule's name only, so every node runs its defaults."""
    from trainer.merges import merge

    return merge(rule, inputs.updates, previous=previous, weights=inputs.weights, anchor=inputs.anchor)


def contribution_utility(model: torch.nn.Module, rule: str, inputs: MergeInputs, previous: dict[str, torch.Tensor],
                         X_val: torch.Tensor, y_val: torch.Tensor) -> Utility:
    """The coalition utility a validator scores with, the simulator's: ``u(S)`` is the
    validation performance of ``previous`` moved by the members' parts of the step that
    `merge_updates` took (same rule, weights and anchor; ``absent=swarm_absent(rule)``), so ``u``
    of all participants is the very model the swarm merged and what the rule neutralises (a
    reversed or noise update, a copy, a free rider) earns nothing. See
    `trainer.scoring.utility`."""
    from trainer.scoring import make_utility, swarm_absent

    return make_utility(model, previous, inputs.updates, inputs.weights, X_val, y_val, rule=rule,
                        anchor=inputs.anchor, absent=swarm_absent(rule))


def copied_steps(updates: Mapping[int, dict[str, torch.Tensor]], previous: dict[str, torch.Tensor],
                 prior: dict[str, torch.Tensor] | None) -> dict[int, float]:
    """The updates (by commit index) whose step copies the previous merged step ``previous -
    prior`` (``trainer.validity``: cosine at or above its threshold), with that cosine. A
    node that trained nothing can commit the global model moved once more the way it last
    moved; every validator reaches the same verdict from the two public global models.
    Nothing is a copy when ``prior`` is unknown (the first epoch, or a node that skipped
    one)."""
    from trainer.validity import is_copy, step_cosines

    if prior is None or not updates:
        return {}
    indices = sorted(updates)
    cosines = step_cosines([updates[i] for i in indices], previous, prior)
    return {i: c for i, c in zip(indices, cosines, strict=True) if is_copy(c)}


@dataclass
class EpochWork:
    """What this node did or learned in one epoch."""

    own_sha: str | None = None
    updates: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # the valid ones
    shas: dict[int, str] = field(default_factory=dict)  # file hash per fetched commit index
    fetched: set[int] = field(default_factory=set)  # commit indices tried (valid or not)
    merged_sha: str | None = None
    merged: dict[str, torch.Tensor] | None = None
    peer_updates: list[dict[str, torch.Tensor]] = field(default_factory=list)  # the others' merged updates
    copied: CommitRecord | None = None  # a copycat's victim
    merge_seen: float | None = None  # when we first saw the Merge phase
    published: bool = False
    reported: bool = False
    all_reported_seen: float | None = None
    commits_seen: tuple[int, float] | None = None  # (commit count, when we first saw it)


class Node:
    """A node's epoch loop. Construct, then `run()` until the swarm finishes."""

    def __init__(self, config: NodeConfig, account: Any, handles: SwarmHandles) -> None:
        from trainer.attacks import ATTACKS, flip_labels, is_data_attack
        from trainer.merges import MERGES
        from trainer.models import build_model
        from trainer.scoring import SCORERS
        from trainer.training import TrainConfig

        self.config = config
        self.account = account
        self.address = account.address
        self.swarm = handles.swarm
        self.token = handles.token
        self.from_block = int(handles.record["block"])
        chain_config = self.swarm.config()
        self.merge_rule = _text(chain_config["mergeRule"])
        self.scorer = _text(chain_config["scorer"])
        try:
            check_registered("the swarm's merge rule", self.merge_rule, MERGES)
            check_registered("the swarm's scorer", self.scorer, SCORERS)
            if config.node.attack:
                check_registered("[node] attack", config.node.attack, {**ATTACKS, **PROTOCOL_ATTACKS})
        except ConfigError as exc:
            raise NodeError(f"{exc} (this node cannot take part)") from None
        self.min_peers = int(chain_config["minPeers"])
        self.commit_window = int(chain_config["commitWindow"])
        try:
            self.lock = KeystoreLock(config.path(config.chain.keystore)).acquire()
        except KeystoreInUseError as exc:
            raise NodeError(str(exc)) from None
        local = load_local_data(config)
        self.data = local.node
        self.attack = config.node.attack if config.node.attack in ATTACKS else None
        self.protocol_attack = config.node.attack if config.node.attack in PROTOCOL_ATTACKS else None
        self.labels = self.data.y_train
        if self.attack and is_data_attack(self.attack):
            from trainer.simulate import derive_seed

            self.labels = flip_labels(self.data.y_train, local.n_classes,
                                      derive_seed(config.data.seed, "label_flip", config.data.shard))
        self.train_config = TrainConfig(**config.train)
        self.worker = build_model(config.model.name, local.n_features, local.n_classes, config.data.seed)
        problem = incompatibility(handles.record.get("config", {}), config.model.name, local.n_features,
                                  local.n_classes, self.worker)
        if problem is not None:
            raise NodeError(f"this node cannot join the swarm: {problem}")
        self.store = _writable_store(config.path(config.store.dir))
        removed = self.store.remove_partials()
        if removed:
            log.info("removed %d unfinished file(s) a previous run left in the store", removed)
        self.server = ParameterServer(self.store, config.store.host, config.store.port,
                                      public_url=config.store.public_url or None)
        self.global_state = {k: v.clone() for k, v in self.worker.state_dict().items()}
        self.global_epoch = 0
        self.prior_state: dict[str, torch.Tensor] | None = None  # the global model before it
        # A rogue's view of the last adopted epoch: (the model it started from, the other
        # participants' updates). Commit-then-reveal hides the current epoch's updates, so
        # an attack that reads peers (ALIE) works from these.
        self.peer_round: tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]] | None = None
        self.work: dict[int, EpochWork] = {}
        self.base_uris: dict[str, str] = {}
        self.timings: dict[int, dict[str, float]] = {}
        self.watch = ChainWatch(first_delay=0.5, max_delay=5.0)
        self._disk_warned = -float("inf")
        self._notes: dict[str, str] = {}  # what the node last said about its membership and the quorum
        self._enrol_tried: int | None = None
        self._load_checkpoint()

    @contextmanager
    def _timed(self, epoch: int, category: str) -> Iterator[None]:
        """Account wall time to (epoch, category): train, chain, transfer, merge, score or
        settle; written to timings.jsonl when the epoch's merge is adopted."""
        start = time.perf_counter()
        try:
            yield
        finally:
            bucket = self.timings.setdefault(epoch, {})
            bucket[category] = bucket.get(category, 0.0) + time.perf_counter() - start

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> None:
        """Enrol if needed, poll until the swarm finishes, sync the last model and claim.
        Every step rides out chain outages (``_until_reachable``)."""
        self.server.start()
        try:
            self._until_reachable(self._enroll_if_needed)
            while not self._until_reachable(self._poll):
                time.sleep(self.config.node.poll_interval)
            self._until_reachable(lambda: self._sync_global(int(self.swarm.currentEpoch()) + 1))
            self._until_reachable(self._finish)
        finally:
            self.server.stop()

    def _until_reachable(self, action: Callable[[], T]) -> T:
        """``action()``, repeated after a backoff for as long as the chain cannot be reached
        (see `chain.outage`); the loop then resumes from whatever state the chain is in."""
        while True:
            try:
                result = action()
            except CHAIN_DOWN_ERRORS as exc:
                time.sleep(self.watch.failed(exc))
                continue
            self.watch.reachable(_block_number)
            return result

    def _poll(self) -> bool:
        """One pass of the loop: True once the swarm has finished. A failure other than a
        chain outage or a node error is logged with its traceback, and the loop goes on."""
        if self.swarm.finished():
            return True
        epoch = int(self.swarm.currentEpoch())
        self._check_membership(epoch)
        self._check_quorum(epoch)
        try:
            self._step(epoch, synced=self._sync_global(epoch))
        except (NodeError, KeyboardInterrupt, *CHAIN_DOWN_ERRORS):
            raise
        except OSError as exc:  # the disk (a full or read-only store): one line, at most once a minute
            if time.monotonic() - self._disk_warned > 60:
                log.error("epoch %d: %s; fix the store folder %s, the node retries meanwhile", epoch, exc,
                          self.store.root)
                self._disk_warned = time.monotonic()
            time.sleep(1.0)
        except Exception:  # a daemon: log the failure with its traceback and carry on
            log.exception("epoch %d: step failed; retrying after a pause", epoch)
            time.sleep(1.0)
        return False

    def _finish(self) -> None:
        log.info("swarm finished; global model from epoch %d", self.global_epoch)
        if self.config.node.claim_at_finish and int(self.swarm.claimable(self.address)) > 0:
            self._send("claim")
            log.info("claimed; balance %d", int(self.token.balanceOf(self.address)))
        while self.config.node.serve_after_finish:
            time.sleep(1.0)

    def _enroll_if_needed(self) -> None:
        member = self.swarm.memberOf(self.address)
        if int(member["status"]) == STATUS_ACTIVE:
            return
        if not member["allowListed"]:
            raise NodeError(f"account {self.address} is not allow-listed; ask the consortium admin to run "
                            f"`swarm authorize {self.address}`")
        self._send("enroll", self.server.base_url, required=True)
        log.info("enrolled with parameter store %s", self.server.base_url)

    def _check_membership(self, epoch: int) -> None:
        """A member the admin authorised again after a suspension or removal (its status is
        back to none) re-enrols by itself, at most once per epoch; otherwise a node that is
        not an active member says so once, with what to do."""
        member = self.swarm.memberOf(self.address)
        status = int(member["status"])
        if status == STATUS_ACTIVE:
            self._notes.pop("membership", None)
            return
        expiry = int(member["expiry"])
        if status == STATUS_NONE and member["allowListed"] and (expiry == 0 or expiry > time.time()) \
                and self._enrol_tried != epoch:
            self._enrol_tried = epoch
            if self._send("enroll", self.server.base_url):
                log.info("re-enrolled with parameter store %s (authorised again)", self.server.base_url)
                return
        self._note("membership", f"this node is not an active member (status {STATUSES[status]}, "
                                 f"{int(member['strikes'])} strikes); it waits until the admin runs "
                                 f"`swarm authorize {self.address}`, then re-enrols by itself")

    def _check_quorum(self, epoch: int) -> None:
        """Say once, with the numbers, when the swarm cannot elect a leader because fewer
        than min_peers members are active, and once when it can again."""
        active = int(self.swarm.activeCount())
        if active >= self.min_peers:
            if self._notes.pop("quorum", None) is not None:
                log.info("epoch %d: %d active members again, min_peers %d: the swarm goes on", epoch, active,
                         self.min_peers)
            return
        self._note("quorum", f"only {active} active member(s), min_peers is {self.min_peers}: no "
                             "leader can be elected; the admin can `swarm authorize` a suspended or new member "
                             "(a running node re-enrols by itself)")

    def _note(self, key: str, message: str) -> None:
        """Log ``message`` as a warning unless it is what was last said under ``key``."""
        if self._notes.get(key) != message:
            log.warning(message)
            self._notes[key] = message

    # ------------------------------------------------------------------ one poll
    def _step(self, epoch: int, synced: bool) -> None:
        state = self.swarm.epochState(epoch)
        phase = PHASES[int(state["phase"])]
        work = self.work.setdefault(epoch, EpochWork())
        if phase == "Commit":
            self._commit(epoch, state, work, synced)
        elif phase == "Merge":
            self._merge_phase(epoch, state, work)
        elif phase == "Report":
            self._report_phase(epoch, state, work)

    def _rank(self, epoch: int) -> int:
        member = self.swarm.memberOf(self.address)
        return int(member["commitIndex"]) if int(member["lastSubmitEpoch"]) == epoch else 16

    def _due(self, deadline: float, epoch: int) -> bool:
        return time.time() > deadline + 1 + STAGGER_S * self._rank(epoch)

    def _commit(self, epoch: int, state: Any, work: EpochWork, synced: bool) -> None:
        """Train and commit once per epoch, but only from the latest global model: a node
        that could not fetch it yet sits the epoch out rather than send a stale update."""
        member = self.swarm.memberOf(self.address)
        fresh = int(member["status"]) == STATUS_ACTIVE and int(member["lastSubmitEpoch"]) != epoch
        if fresh and self.protocol_attack == "copycat":
            self._copy_commitment(epoch, work)
        elif fresh and synced and work.own_sha is None:
            with self._timed(epoch, "train"):
                update = self._train(epoch)
            with self._timed(epoch, "transfer"):
                stored = self.store.save(update)
            work.own_sha = stored.sha256
            commitment = commitment_of(self.address, epoch, stored.sha256)
            self.store.bind_commitment(commitment, stored.sha256)
            declared = self._declared_samples(member)
            with self._timed(epoch, "chain"):
                sent = self._send("submitUpdate", epoch, hex_to_bytes32(commitment), declared)
            if sent:
                log.info("epoch %d: committed %s (%d samples declared)", epoch, stored.sha256[:12], declared)
                return  # the state read before our commitment is stale
            log.warning("epoch %d: commit window closed before our update was in; we sit this epoch out", epoch)
        # Elect as soon as every active member committed (the contract allows it before the
        # window closes; with `elect_early` off, when the window closes); otherwise wait
        # `elect_grace` after the last new commitment, so slow starters get in and dead nodes
        # are not waited on. An epoch short of minPeers is abandoned once the contract allows
        # it and no commitment arrived for `elect_grace` either.
        committed = int(state["commitCount"])
        if work.commits_seen is None or committed != work.commits_seen[0]:
            work.commits_seen = (committed, time.time())
        everyone = committed >= int(self.swarm.activeCount())
        grace = work.commits_seen[1] + self.config.node.elect_grace
        if committed < self.min_peers and self._due(max(float(state["deadline"]) + self.commit_window, grace), epoch):
            if self._send("abandonEpoch", epoch):
                log.warning("epoch %d: abandoned with %d of %d commitments needed", epoch, committed, self.min_peers)
        elif committed >= self.min_peers and (
                time.time() >= work.commits_seen[1] + STAGGER_S * self._rank(epoch)
                if everyone and self.config.node.elect_early
                else self._due(max(float(state["deadline"]), work.commits_seen[1] if everyone else grace), epoch)):
            with self._timed(epoch, "chain"):
                elected = self._send("electLeader", epoch)
            if elected:
                log.info("epoch %d: commits closed", epoch)

    def _declared_samples(self, member: Any) -> int:
        """What we declare: our training samples up to the allowance the admin attested
        (a declaration above it forfeits the epoch's payout)."""
        allowance = int(member["allowance"])
        if self.protocol_attack == "inflate_samples":
            return self.data.n_train * INFLATE_FACTOR
        if self.data.n_train > allowance:
            log.warning("we hold %d training samples but our allowance is %d; declaring %d (ask the consortium "
                        "admin to attest the larger count with `swarm authorize --samples`)",
                        self.data.n_train, allowance, allowance)
        return min(self.data.n_train, allowance)

    def _copy_commitment(self, epoch: int, work: EpochWork) -> None:
        """Rogue ``copycat``: commit the first commitment another node made this epoch."""
        if work.copied is not None:
            return
        others = [c for c in read_epoch(self.swarm, epoch, self.from_block).commits if c.node != self.address]
        if not others:
            return
        work.copied = others[0]
        if self._send("submitUpdate", epoch, hex_to_bytes32(others[0].commitment), self.data.n_train):
            log.info("epoch %d: rogue: copycat committed %s's commitment %s", epoch, others[0].node,
                     others[0].commitment[:12])

    def _serve_copy(self, epoch: int, work: EpochWork) -> None:
        """Rogue ``copycat``: once the victim reveals, serve its bytes under the copy."""
        victim = work.copied
        if victim is None or self.store.opened_by(victim.commitment) is not None:
            return
        try:
            _, state = fetch_committed(self._base_uri(victim.node), victim.node, epoch, victim.commitment,
                                       timeout=self.config.node.fetch_timeout, retries=1, backoff=0.3)
        except FetchError:
            return
        stored = self.store.save(state)
        self.store.bind_commitment(victim.commitment, stored.sha256)
        self.store.release(stored.sha256)

    def _train(self, epoch: int) -> dict[str, torch.Tensor]:
        from trainer.attacks import apply_attack, is_data_attack, needs_peers, rebase
        from trainer.simulate import derive_seed
        from trainer.training import train_local

        seed, shard = self.config.data.seed, self.config.data.shard
        self.worker.load_state_dict(self.global_state)
        train_local(self.worker, self.data.X_train, self.labels, self.train_config,
                    derive_seed(seed, "train", epoch - 1, shard))
        update = {k: v.clone() for k, v in self.worker.state_dict().items()}
        if not self.attack or is_data_attack(self.attack):
            return update
        peers = []
        if needs_peers(self.attack):
            if self.peer_round is None or len(self.peer_round[1]) < 2:
                log.info("epoch %d: %s needs two peer updates of the previous epoch; committing honestly",
                         epoch, self.attack)
                return update
            peers = rebase(self.peer_round[1], self.peer_round[0], self.global_state)
        log.info("epoch %d: rogue: %s update forged from %d peer updates of the previous epoch",
                 epoch, self.attack, len(peers))
        return apply_attack(self.attack, update, previous=self.global_state, peers=peers,
                            seed=derive_seed(seed, "attack", epoch - 1, shard))

    def _merge_phase(self, epoch: int, state: Any, work: EpochWork) -> None:
        own = self._own_commit(epoch, work)
        if own is not None and not self.store.is_released(own):
            self.store.release(own)
        self._serve_copy(epoch, work)
        if not state["drawn"]:
            # The draw reads the hash of the block that closed the commits, so it goes in a
            # later block: on an automining chain, the block of this very transaction.
            if work.merge_seen is None:
                work.merge_seen = time.time()
            if self._due(work.merge_seen - 1, epoch):
                with self._timed(epoch, "chain"):
                    if self._send("drawLeader", epoch):
                        log.info("epoch %d: leader drawn: %s", epoch, self.swarm.leaderOf(epoch))
            return
        if self.swarm.leaderOf(epoch) == self.address:
            if not work.published and time.time() <= int(state["deadline"]):
                self._lead(epoch, work)
        elif self._due(int(state["deadline"]), epoch):
            with self._timed(epoch, "chain"):
                moved = self._send("failover", epoch)
            if moved:
                log.warning("epoch %d: leader timed out; leadership moved to %s", epoch, self.swarm.leaderOf(epoch))

    def _own_commit(self, epoch: int, work: EpochWork) -> str | None:
        """Our committed hash for ``epoch``, recovered from events after a restart."""
        if work.own_sha is None and int(self.swarm.memberOf(self.address)["lastSubmitEpoch"]) == epoch:
            mine = [c for c in read_epoch(self.swarm, epoch, self.from_block).commits if c.node == self.address]
            work.own_sha = self.store.opened_by(mine[0].commitment) if mine else None
        return work.own_sha

    def _lead(self, epoch: int, work: EpochWork) -> None:
        with self._timed(epoch, "chain"):
            record = read_epoch(self.swarm, epoch, self.from_block)
        with self._timed(epoch, "transfer"):
            self._fetch_updates(record, work)
        included = sorted(work.updates)
        if self._commit_index(record) not in work.updates:
            log.error("epoch %d: our own update is not available; cannot lead", epoch)
            work.published = True
            return
        if len(included) < self.min_peers:
            log.error("epoch %d: only %d valid updates, %d needed; cannot publish", epoch, len(included), self.min_peers)
            work.published = True
            return
        with self._timed(epoch, "merge"):
            merged = merge_updates(self.merge_rule, self._merge_inputs(record, included, work), self.global_state)
        with self._timed(epoch, "transfer"):
            stored = self.store.save(merged)
            self.store.release(stored.sha256)
        work.merged_sha, work.merged = stored.sha256, merged
        bitmap = sum(1 << i for i in included)
        with self._timed(epoch, "chain"):
            sent = self._send("publishMerge", epoch, hex_to_bytes32(stored.sha256), bitmap)
        if sent:
            work.published = True
            log.info("epoch %d: published merge %s of %d updates", epoch, stored.sha256[:12], len(included))

    def _commit_index(self, record: EpochRecord) -> int | None:
        return next((c.index for c in record.commits if c.node == self.address), None)

    def _base_uri(self, node: str) -> str:
        """The base URI ``node`` enrolled with: the only place its files are fetched from."""
        if node not in self.base_uris:
            self.base_uris[node] = self.swarm.baseUriOf(node)
        return self.base_uris[node]

    def _fetch_updates(self, record: EpochRecord, work: EpochWork) -> None:
        """Download every commitment of the epoch not yet tried; failures are logged and
        left out, and so is every file that two commitments resolve to (neither can be
        told apart from a copy)."""
        missing = [c for c in record.commits if c.index not in work.fetched]

        def get(commit: CommitRecord) -> tuple[CommitRecord, Any]:
            try:
                own = self.store.opened_by(commit.commitment) if commit.node == self.address else None
                if own is not None and commitment_of(self.address, record.epoch, own) == commit.commitment:
                    return commit, (own, self.store.load(own, reference=self.global_state))
                return commit, fetch_committed(self._base_uri(commit.node), commit.node, record.epoch,
                                               commit.commitment, reference=self.global_state,
                                               timeout=self.config.node.fetch_timeout,
                                               retries=self.config.node.fetch_retries,
                                               backoff=self.config.node.fetch_backoff)
            except FetchError as exc:
                return commit, exc

        with ThreadPoolExecutor(max_workers=8) as pool:
            for commit, result in pool.map(get, missing):
                work.fetched.add(commit.index)
                if isinstance(result, FetchError):
                    log.warning("epoch %d: rejected update of %s: %s", record.epoch, commit.node, result)
                else:
                    work.shas[commit.index], work.updates[commit.index] = result
        nodes = {c.index: c.node for c in record.commits}
        for sha, indices in shared_files(work.shas).items():
            if any(i in work.updates for i in indices):
                log.warning("epoch %d: DUPLICATE: %s committed the same file %s; all rejected", record.epoch,
                            ", ".join(nodes[i] for i in sorted(indices)), sha[:12])
                for index in indices:
                    work.updates.pop(index, None)
        for index, cosine in copied_steps(work.updates, self.global_state, self.prior_state).items():
            log.warning("epoch %d: COPY: rejected update of %s: its step repeats the previous merged step "
                        "(cosine %.3f)", record.epoch, nodes[index], cosine)
            work.updates.pop(index)

    def _merge_inputs(self, record: EpochRecord, indices: list[int], work: EpochWork) -> MergeInputs:
        by_index = {c.index: c for c in record.commits}
        return merge_inputs([by_index[i] for i in indices], work.updates, self.swarm.leaderOf(record.epoch))

    def _report_phase(self, epoch: int, state: Any, work: EpochWork) -> None:
        member = self.swarm.memberOf(self.address)
        bit = 1 << int(member["commitIndex"])
        committed = int(member["lastSubmitEpoch"]) == epoch
        if committed and not work.reported and not int(state["reporters"]) & bit:
            if time.time() <= int(state["deadline"]):
                self._validate(epoch, work)
        everyone = int(state["reporters"]).bit_count() == int(state["commitCount"])
        if everyone and work.all_reported_seen is None:
            work.all_reported_seen = time.time()
        due = (everyone and time.time() >= work.all_reported_seen + STAGGER_S * self._rank(epoch)) or \
            self._due(int(state["deadline"]), epoch)
        if due:
            with self._timed(epoch, "settle"):
                args = read_epoch(self.swarm, epoch, self.from_block).settlement_args()
                settled = self._send("settle", epoch, *args)
            if settled:
                log.info("epoch %d: settled", epoch)

    def _validate(self, epoch: int, work: EpochWork) -> None:
        """Check the leader and score the participants: fetch every commitment (the valid
        set also exposes censorship), recompute the merge of the leader's participants we
        found valid, evaluate it and score each participant on our validation data."""
        from trainer.scoring import score
        from trainer.training import evaluate

        with self._timed(epoch, "chain"):
            record = read_epoch(self.swarm, epoch, self.from_block)
        with self._timed(epoch, "transfer"):
            self._fetch_updates(record, work)
        available = [i for i in record.participants if i in work.updates]
        if not available:
            log.error("epoch %d: none of the leader's %d participants' updates could be fetched and checked; "
                      "not reporting", epoch, len(record.participants))
            work.reported = True
            return
        inputs = self._merge_inputs(record, available, work)
        with self._timed(epoch, "merge"):
            merged = merge_updates(self.merge_rule, inputs, self.global_state)
        with self._timed(epoch, "transfer"):
            stored = self.store.save(merged)
            self.store.release(stored.sha256)
        if stored.sha256 != record.merged_hash:
            log.warning("epoch %d: DISPUTE: leader published merge %s, recomputation gives %s; reporting ours",
                        epoch, (record.merged_hash or "")[:12], stored.sha256[:12])
        left_out = sorted(set(work.updates) - set(record.participants))
        if left_out:
            by_index = {c.index: c.node for c in record.commits}
            log.warning("epoch %d: DISPUTE: leader left out valid updates of %s", epoch,
                        ", ".join(by_index[i] for i in left_out))
        work.merged_sha, work.merged = stored.sha256, merged
        work.peer_updates = [update for c, update in zip(inputs.commits, inputs.updates) if c.node != self.address]
        with self._timed(epoch, "score"):
            self.worker.load_state_dict(merged)
            metric = evaluate(self.worker, self.data.X_val, self.data.y_val).accuracy
            utility = contribution_utility(self.worker, self.merge_rule, inputs, self.global_state,
                                           self.data.X_val, self.data.y_val)
            values = score(self.scorer, utility, len(inputs.commits), seed=epoch_seed(self.swarm.address, epoch))
        by_index = {c.index: float(v) for c, v in zip(inputs.commits, values)}
        scores = [to_fixed(max(-1.0, min(1.0, by_index.get(i, 0.0))), SCORE_SCALE) for i in record.participants]
        valid = sum(1 << i for i in work.updates)
        with self._timed(epoch, "chain"):
            sent = self._send("reportValidation", epoch, to_fixed(max(0.0, min(1.0, metric)), METRIC_SCALE),
                              hex_to_bytes32(stored.sha256), valid, scores)
        if sent:
            work.reported = True
            log.info("epoch %d: reported accuracy %.4f, scores %s", epoch, metric,
                     [round(by_index.get(i, 0.0), 5) for i in record.participants])

    # ------------------------------------------------------------------ global model
    def _last_settled(self, epoch: int) -> int:
        for earlier in range(epoch - 1, 0, -1):
            if PHASES[int(self.swarm.epochState(earlier)["phase"])] == "Settled":
                return earlier
        return 0

    def _sync_global(self, epoch: int) -> bool:
        """Adopt the model of the last settled epoch before ``epoch``: the hash settlement
        recorded (the strict majority's recomputation, else the leader's). Our own
        recomputation when it has that hash, else the file (hash-checked) from the leader or
        from any reporter that recomputed it. True when the global model is current."""
        settled = self._last_settled(epoch)
        if settled == self.global_epoch:
            return True
        state = self.swarm.epochState(settled)
        model, published = bytes(state["modelHash"]).hex(), bytes(state["mergedHash"]).hex()
        if model != published:
            log.warning("epoch %d: the swarm's model is %s (a strict majority's), not the leader's %s",
                        settled, model[:12], published[:12])
        work = self.work.get(settled)
        if work is not None and work.merged is not None and work.merged_sha == model:
            self._adopt(settled, work.merged)
            return True
        record = read_epoch(self.swarm, settled, self.from_block)
        holders = [record.leader] + [r.reporter for r in record.reports if r.merged_hash == model]
        for node in dict.fromkeys(h for h in holders if h):
            uri = f"{self._base_uri(node)}{ROUTE}{model}"
            try:
                merged = fetch(uri, model, reference=self.global_state,
                               timeout=self.config.node.fetch_timeout, retries=1, backoff=0.2)
            except FetchError as exc:
                log.warning("epoch %d model not available from %s: %s", settled, uri, exc)
                continue
            self._adopt(settled, merged)
            return True
        return False

    def _adopt(self, epoch: int, state: dict[str, torch.Tensor]) -> None:
        work = self.work.get(epoch)
        if self.attack and work is not None and work.peer_updates:
            self.peer_round = (self.global_state, work.peer_updates)
        self.prior_state = self.global_state if epoch == self.global_epoch + 1 else None
        self.global_state, self.global_epoch = state, epoch
        stored = self.store.save(state)
        self.store.release(stored.sha256)
        checkpoint = self.config.path(self.config.node.checkpoint)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.with_suffix(".json").write_text(json.dumps({"epoch": epoch, "sha256": stored.sha256}))
        if epoch in self.timings:
            with self.config.path("timings.jsonl").open("a") as out:
                out.write(json.dumps({"epoch": epoch, **self.timings.pop(epoch)}) + "\n")
        for old in [e for e in self.work if e <= epoch]:
            del self.work[old]
        log.info("adopted the global model of epoch %d (%s)", epoch, stored.sha256[:12])

    def _load_checkpoint(self) -> None:
        checkpoint = self.config.path(self.config.node.checkpoint).with_suffix(".json")
        if not checkpoint.exists():
            return
        try:
            saved = json.loads(checkpoint.read_text())
            self.global_state = self.store.load(saved["sha256"], reference=self.global_state)
            self.global_epoch = int(saved["epoch"])
        except (ValueError, KeyError, FetchError) as exc:
            log.warning("ignoring unusable checkpoint %s (%s); syncing the global model from the swarm", checkpoint, exc)
            return
        log.info("resumed from checkpoint of epoch %d", self.global_epoch)

    # ------------------------------------------------------------------ transactions
    def _send(self, method: str, *args: Any, required: bool = False) -> bool:
        """Send a transaction; a revert (another node was faster, a deadline passed) is
        logged and returns False unless ``required``."""
        from brownie.exceptions import VirtualMachineError

        try:
            getattr(self.swarm, method)(*args, {"from": self.account}, silent=True)
            return True
        except VirtualMachineError as exc:
            if required:
                raise NodeError(f"{method} was refused by the contract: {exc.revert_msg}") from None
            log.info("%s refused by the contract: %s", method, exc.revert_msg)
            return False
