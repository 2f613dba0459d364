"""One swarm node: a process that trains on its private data and coordinates with its
peers only through the chain and their parameter stores.

Each epoch, driven by on-chain phase and deadlines (a late or dead peer is skipped, never
waited on forever):

1. Commit: train from the global model, store the parameters as a content-addressed
   safetensors file (not yet served), call ``submitUpdate`` with a commitment bound to
   this node, the epoch and the file's hash (`store.commitments`). Once every active
   member committed (or the window passed), anyone may trigger the election; nodes
   stagger their attempts by commit index so usually one transaction is sent.
2. Merge: serve our file. The leader downloads every commitment from under its
   committer's enrolled base URI (commitment, size, format, shape and finiteness
   checked), leaves out what fails and every file committed twice, merges the rest with
   the agreed rule and publishes, serving a copy of every file it merged. If the leader
   misses its deadline, anyone fails over.
3. Report: every committer downloads the same files (a participant's from the leader's
   copy when its own store no longer serves it, or serves another file), recomputes the
   merge of the leader's participants it found valid and compares its hash with the
   published one,
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

The loop reacts to the chain rather than to a clock: it passes again at once after a
transaction of its own, else as soon as a new block appears (every state change is a
transaction; the block number, one cheap call, is checked every BLOCK_CHECK_S) or after
``poll_interval`` for what moves with time alone (deadlines, staggers). Windows are upper
bounds: commits close once every active member committed, settlement follows the last
report.

This module is the loop (enrolment, polling, outages, membership, transactions); each
phase lives in its own module, mixed into :class:`Node`: `commit`, `lead` (merge phase),
`validate` and `settle` (report phase), `sync` (adopting the global model), with the
pure merge and scoring inputs in `merging` and the shared per-epoch state in `work`.
"""

from __future__ import annotations

import copy
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import torch

from ..chain.connection import SwarmHandles
from ..chain.epochview import PHASES
from ..chain.newheads import NewHeads
from ..chain.outage import CHAIN_DOWN_ERRORS, ChainWatch, custom_error_text, quiet_confirmation_threads
from ..chain.receipts import TransactionLost, await_receipt
from ..config import ConfigError, check_registered
from ..store import ParameterServer, ParameterStore
from ..units import wei_to_tokens
from .commit import CommitPhase
from .compat import incompatibility
from .config import NodeConfig
from .handover import OwnLoop
from .lead import LeadPhase
from .localdata import load_local_data
from .lock import KeystoreInUseError, KeystoreLock
from .plugins import node_model
from .errors import NodeError
from .protocol_attacks import PROTOCOL_ATTACKS, after_first_download
from .settle import SettlePhase
from .sync import SyncPhase
from .validate import ValidatePhase
from .work import STAGGER_S, STATUS_ACTIVE, STATUS_NONE, STATUSES, EpochWork, bytes32_text, log


T = TypeVar("T")
#: Seconds between a node's checks of its own membership and of the swarm's quorum.
MEMBERSHIP_CHECK_S = 5.0
#: Seconds between a waiting node's checks for a new block.
BLOCK_CHECK_S = 0.03
#: Seconds a node waits for a transaction's receipt before it reads the chain again.
TX_RECEIPT_TIMEOUT_S = 30.0


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


class Node(CommitPhase, LeadPhase, ValidatePhase, SettlePhase, SyncPhase):
    """A node's epoch loop. Construct, then `run()` until the swarm finishes."""

    def __init__(self, config: NodeConfig, account: Any, handles: SwarmHandles, own_loop: OwnLoop | None = None) -> None:
        """``own_loop``: the node trains nothing itself; it commits what the user's training
        loop hands over, validates and scores with the user's model and validation data, and
        hands each adopted global model back (`swarmtoken.connect`). Else it trains its
        ``[model]`` on its ``[data]``, as `swarm train` runs it."""
        from trainer.attacks import ATTACKS, flip_labels, is_data_attack
        from trainer.data import NodeData
        from trainer.merges import MERGES
        from trainer.scoring import SCORERS
        from trainer.training import TrainConfig

        self.config = config
        self.account = account
        self.address = account.address
        self.swarm = handles.swarm
        self.token = handles.token
        self.from_block = int(handles.record["block"])
        chain_config = self.swarm.config()
        self.merge_rule = bytes32_text(chain_config["mergeRule"])
        self.scorer = bytes32_text(chain_config["scorer"])
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
        self.own_loop = own_loop
        self.attack = config.node.attack if config.node.attack in ATTACKS else None
        self.protocol_attack = config.node.attack if config.node.attack in PROTOCOL_ATTACKS else None
        self.train_config = TrainConfig(**config.train)
        if own_loop is not None:
            if config.node.attack:
                raise NodeError("[node] attack is for `swarm train` demo nodes; a node driven by your own loop "
                                "trains what you train: remove the key")
            self.data = NodeData(own_loop.X_val[:0], own_loop.y_val[:0], own_loop.X_val, own_loop.y_val)
            self.worker = copy.deepcopy(own_loop.model)
        else:
            local = load_local_data(config)
            self.data = local.node
            try:
                self.worker = node_model(config.model, local.n_features, local.n_classes, config.data.seed,
                                         config.base_dir)
            except ConfigError as exc:
                raise NodeError(str(exc)) from None
            problem = incompatibility(handles.record.get("config", {}), config.model.factory or config.model.name,
                                      local.n_features, local.n_classes, self.worker)
            if problem is not None:
                raise NodeError(f"this node cannot join the swarm: {problem}")
        self.labels = self.data.y_train
        if self.attack and is_data_attack(self.attack):
            from trainer.simulate import derive_seed

            self.labels = flip_labels(self.data.y_train, local.n_classes,
                                      derive_seed(config.data.seed, "label_flip", config.data.shard))
        self.own_commitments: set[str] = set()  # what this process committed
        self.store = _writable_store(config.path(config.store.dir))
        removed = self.store.remove_partials()
        if removed:
            log.info("removed %d unfinished file(s) a previous run left in the store", removed)
        self.server = ParameterServer(self.store, config.store.host, config.store.port,
                                      public_url=config.store.public_url or None,
                                      on_served=after_first_download(config.node.attack, self.store, self.own_commitments,
                                                                     self._decoy))
        self.global_state = {k: v.clone() for k, v in self.worker.state_dict().items()}
        self.global_epoch = 0
        self.prior_state: dict[str, torch.Tensor] | None = None  # the global model before it
        # A rogue's view of the last adopted epoch: (the model it started from, the other
        # participants' updates). Commit-then-reveal hides the current epoch's updates, so
        # an attack that reads peers (ALIE) works from these.
        self.peer_round: tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]] | None = None
        # A rogue's last forged update and the model it was trained from (``replay_own``).
        self.own_round: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None
        self.work: dict[int, EpochWork] = {}
        self.final_phases: dict[int, str] = {}  # past epochs' phases (Settled or Abandoned)
        self.base_uris: dict[str, str] = {}
        self.timings: dict[int, dict[str, float]] = {}
        self.epoch_seen: dict[int, float] = {}  # when a poll first saw each epoch
        self.watch = ChainWatch(first_delay=0.5, max_delay=5.0)
        self.stopping = threading.Event()  # set by whoever runs the node in a thread, to stop it
        self._disk_warned = -float("inf")
        self._membership_checked = -float("inf")
        self._notes: dict[str, str] = {}  # what the node last said about its membership and the quorum
        self._acted = False  # a transaction of ours went through in this pass of the loop
        self._member_read: Any = None  # this pass's memberOf (see `_member`)
        self.heads = NewHeads("")  # the chain's block announcements once `run` subscribes (none yet)
        self._heads_seen = 0  # blocks announced when this pass of the loop began
        self._lost = False  # the chain lost our last transaction: take the next nonce from its mined count
        self._last_claim = 0  # the epoch of our last mid-run claim (see `_claim_if_due`)
        self._load_checkpoint()

    def _decoy(self) -> str:
        """A released file other than our update (the global model): what the
        ``swap_after_merge`` rogue serves instead."""
        stored = self.store.save(self.global_state)
        self.store.release(stored.sha256)
        return stored.sha256

    @contextmanager
    def _timed(self, epoch: int, category: str) -> Iterator[None]:
        """Account wall time to (epoch, category): train, chain, transfer, merge, score or
        settle; written to timings.jsonl, with the epoch's whole wall time, when the epoch's
        merge is adopted."""
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
        from brownie import web3

        quiet_confirmation_threads()
        self.server.start()
        self.heads = NewHeads(getattr(web3.provider, "endpoint_uri", None) or "")
        if self.heads.active:
            where = urlsplit(self.heads.url)  # no path or credentials (an API key) in the log
            log.info("waiting on the chain's new blocks as it announces them (%s://%s:%s)", where.scheme,
                     where.hostname, where.port or "")
        else:
            log.info("the chain offers no block subscriptions; polling its block number every %.0f ms",
                     BLOCK_CHECK_S * 1000)
        try:
            self._until_reachable(self._enroll_if_needed)
            while not self._until_reachable(self._poll):
                if self.stopping.is_set():
                    return
                if not self._acted:
                    self._until_reachable(self._await_block)
            self._until_reachable(lambda: self._sync_global(int(self.swarm.currentEpoch()) + 1))
            if self.own_loop is not None:
                self.own_loop.handover.finish()
            self._until_reachable(self._finish)
        except BaseException as exc:
            if self.own_loop is not None:
                self.own_loop.handover.fail(exc)
            raise
        finally:
            self.heads.stop()
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

    def _await_block(self) -> None:
        """Sleep until the chain has a new block (every state change is a transaction, so
        a new block is when a phase can have moved) or ``poll_interval`` passed (deadlines
        and staggers move with the clock alone). The chain announces its blocks where it
        can (`chain.newheads`: counted from the start of this pass, so a block mined while
        the pass read the chain ends the wait at once); otherwise the block number is
        checked every BLOCK_CHECK_S, one cheap call where a pass reads the whole state."""
        from brownie import web3

        if self.heads.active:
            self.heads.wait_beyond(self._heads_seen, self.config.node.poll_interval)
            return
        block = int(web3.eth.block_number)
        until = time.monotonic() + self.config.node.poll_interval
        while time.monotonic() < until:
            time.sleep(min(BLOCK_CHECK_S, max(0.0, until - time.monotonic())))
            if int(web3.eth.block_number) != block:
                return

    def _poll(self) -> bool:
        """One pass of the loop: True once the swarm has finished. A failure other than a
        chain outage or a node error is logged with its traceback, and the loop goes on."""
        self._acted = False
        self._member_read = None
        self._heads_seen = self.heads.count
        epoch = int(self.swarm.currentEpoch())
        state = self.swarm.epochState(epoch)
        # The swarm finishes only by settling its current epoch (no next one opens).
        if PHASES[int(state["phase"])] == "Settled" and self.swarm.finished():
            return True
        self._forget_epochs_after(epoch)
        self.epoch_seen.setdefault(epoch, time.time())
        if time.monotonic() >= self._membership_checked + MEMBERSHIP_CHECK_S:
            # Two extra reads that rarely change: not on every poll of the hot loop.
            self._check_membership()
            self._check_quorum(epoch)
            self._membership_checked = time.monotonic()
        try:
            self._step(epoch, state, synced=self._sync_global(epoch))
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

    def _forget_epochs_after(self, epoch: int) -> None:
        """The chain is back in ``epoch`` after we worked on a later one (a reorganisation
        replaced the blocks that settled it): what we did for the later epochs (an update
        trained from a model the chain may no longer agree on, a refused commitment that
        made us sit the epoch out) belongs to a history the chain dropped, so it is done
        again from the chain's state when the epoch opens again."""
        later = [e for e in self.work if e > epoch]
        if later:
            log.warning("the chain is back in epoch %d (recent blocks were reorganised); what we did for epoch %s "
                        "is done again", epoch, ", ".join(map(str, later)))
            for old in later:
                del self.work[old]

    def _finish(self) -> None:
        log.info("swarm finished; global model from epoch %d", self.global_epoch)
        if self.config.node.claim_at_finish and int(self.swarm.claimable(self.address)) > 0:
            self._send("claim")
            log.info("claimed; balance %s tokens", wei_to_tokens(int(self.token.balanceOf(self.address))))
        while self.config.node.serve_after_finish and not self.stopping.is_set():
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

    def _check_membership(self) -> None:
        """A member the admin authorised again after a suspension or removal (its status is
        back to none) re-enrols by itself (the loop checks every MEMBERSHIP_CHECK_S); otherwise
        a node that is not an active member says so once, with what to do."""
        member = self.swarm.memberOf(self.address)
        status = int(member["status"])
        if status == STATUS_ACTIVE:
            self._notes.pop("membership", None)
            return
        expiry = int(member["expiry"])
        if status == STATUS_NONE and member["allowListed"] and (expiry == 0 or expiry > time.time()):
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
    def _step(self, epoch: int, state: Any, synced: bool) -> None:
        phase = PHASES[int(state["phase"])]
        work = self.work.setdefault(epoch, EpochWork())
        if phase == "Commit":
            self._commit(epoch, state, work, synced)
        elif phase == "Merge":
            self._merge_phase(epoch, state, work)
            self._claim_if_due(epoch, work)
        elif phase == "Report":
            self._report_phase(epoch, state, work)

    def _claim_if_due(self, epoch: int, work: EpochWork) -> None:
        """Claim mid-run, once per epoch at most and ``claim_every`` epochs after the last
        claim, what the contract lets this node claim (``claimUnlocked``): a
        suspension would forfeit it. In the merge phase, which is quiet for all but the leader."""
        every = self.config.node.claim_every
        if every == 0 or work.claim_checked or epoch < self._last_claim + every:
            return
        work.claim_checked = True
        amount = int(self.swarm.claimable(self.address))
        if amount == 0 or not self.swarm.claimUnlocked(self.address):
            return
        if self._send("claim"):
            self._last_claim = epoch
            log.info("epoch %d: claimed %s tokens", epoch, wei_to_tokens(amount))

    def _member(self) -> Any:
        """This node's membership record, read once per pass of the loop (and again after
        each transaction of ours)."""
        if self._member_read is None:
            self._member_read = self.swarm.memberOf(self.address)
        return self._member_read

    def _rank(self, epoch: int) -> int:
        member = self._member()
        return int(member["commitIndex"]) if int(member["lastSubmitEpoch"]) == epoch else 16

    def _due(self, deadline: float, epoch: int) -> bool:
        return time.time() > deadline + 1 + STAGGER_S * self._rank(epoch)


    # ------------------------------------------------------------------ transactions
    def _send_recorded(self, work: EpochWork, method: str, *args: Any) -> bool:
        """`_send`, remembering the arguments of what the chain accepted (see `_send_again`)."""
        sent = self._send(method, *args)
        if sent:
            work.sent[method] = args
        return sent

    def _send_again(self, epoch: int, work: EpochWork, method: str) -> None:
        """Our ``method`` transaction of ``epoch`` went through, yet the chain no longer has
        it (a reorganisation of recent blocks dropped it): send the same again, once more
        for each time the chain loses it; stop after a refusal (a deadline passed)."""
        log.warning("epoch %d: our %s is no longer on chain (recent blocks were reorganised); sending it again",
                    epoch, method)
        if not self._send(method, *work.sent[method]):
            del work.sent[method]

    def _send(self, method: str, *args: Any, required: bool = False) -> bool:
        """Send a transaction and wait for its receipt; a revert (another node was faster, a
        deadline passed) is logged and returns False unless ``required``.

        brownie waits for a receipt on an event that its confirmation thread sets, with no
        timeout: if the chain goes away meanwhile that thread dies and the wait never ends.
        So the transaction is sent without waiting (``required_confs`` 0) and the receipt
        is awaited here, where an outage raises and the loop rides it out, and a transaction
        the chain lost (a reorganisation, a restart from an older state) is given up within
        a second (`chain.receipts`) instead of hanging."""
        from brownie import web3
        from brownie.exceptions import VirtualMachineError
        from web3.exceptions import ContractLogicError, TimeExhausted

        while True:
            try:
                # The pool's count, which covers a transaction of ours still pending on a slow
                # chain; after a loss the chain's mined count instead: brownie's history would
                # wait for ever for the chain's nonce to pass a dropped transaction, and the
                # pool may still count one of ours stuck behind it.
                nonce = web3.eth.get_transaction_count(self.address, "latest" if self._lost else "pending")
                tx = getattr(self.swarm, method)(*args, {"from": self.account, "required_confs": 0,
                                                         "nonce": nonce}, silent=True)
                receipt = await_receipt(web3, tx.txid, self.address, nonce, TX_RECEIPT_TIMEOUT_S)
            except VirtualMachineError as exc:
                reason = exc.revert_msg
            except ContractLogicError as exc:  # a live network: the gas estimate meets the revert, web3 raises
                reason = custom_error_text(exc, self.swarm.abi)
            except TransactionLost:
                log.warning("%s: the chain lost the transaction (recent blocks were reorganised?); the node goes "
                            "on from the chain's state", method)
                self._lost = True
                if required and not self.stopping.is_set():  # nothing to go on from without it (enrolment)
                    continue
                return False
            except TimeExhausted:
                log.warning("%s: no receipt within %.0f s (a slow or congested chain?); the node goes on from "
                            "the chain's state", method, TX_RECEIPT_TIMEOUT_S)
                return False
            else:
                self._lost = False
                if receipt["status"] == 1:
                    self._acted = True  # the loop's next pass follows at once: our own change moved the state
                    self._member_read = None
                    return True
                reason = "reverted on chain"
            break
        if required:
            raise NodeError(f"{method} was refused by the contract: {reason}") from None
        log.info("%s refused by the contract: %s", method, reason)
        return False
