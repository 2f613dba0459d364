"""Commit phase: train from the global model, store the update as a content-addressed
file (served only after the phase), commit a value bound to this node, the epoch and the
file's hash, and close the commits when every active member is in or the window has
passed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch

from ..chain.epochview import read_epoch
from ..store import FetchError, commitment_of, fetch_committed, hex_to_bytes32
from .protocol_attacks import INFLATE_FACTOR
from .work import STAGGER_S, STATUS_ACTIVE, EpochWork, log

if TYPE_CHECKING:
    from trainer.params import StateDict


class CommitPhase:
    """The commit phase of :class:`~swarmtoken.node.runtime.Node`."""

    def _commit(self, epoch: int, state: Any, work: EpochWork, synced: bool) -> None:
        """Train and commit once per epoch, but only from the latest global model: a node
        that could not fetch it yet sits the epoch out rather than send a stale update."""
        member = self._member()
        fresh = int(member["status"]) == STATUS_ACTIVE and int(member["lastSubmitEpoch"]) != epoch
        if fresh and "submitUpdate" in work.sent:
            self._send_again(epoch, work, "submitUpdate")
        elif fresh and self.protocol_attack == "copycat":
            self._copy_commitment(epoch, work)
        elif fresh and synced and work.own_sha is None and (offered := self._next_update(epoch)) is not None:
            update, samples = offered
            with self._timed(epoch, "transfer"):
                stored = self.store.save(update)
            work.own_sha = stored.sha256
            commitment = commitment_of(self.address, epoch, stored.sha256)
            self.store.bind_commitment(commitment, stored.sha256)
            self.own_commitments.add(commitment)
            declared = self._declared_samples(member, samples)
            with self._timed(epoch, "chain"):
                sent = self._send_recorded(work, "submitUpdate", epoch, hex_to_bytes32(commitment), declared)
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
                work.elected = True
                log.info("epoch %d: commits closed", epoch)

    def _next_update(self, epoch: int) -> tuple[dict[str, torch.Tensor], int] | None:
        """This epoch's update and its training-sample count: trained here, or what the
        user's own loop handed over for the current global model (None: nothing yet)."""
        if self.own_loop is None:
            with self._timed(epoch, "train"):
                return self._train(epoch), self.data.n_train
        offer = self.own_loop.handover.take(self.global_epoch)
        return None if offer is None else (offer.state, offer.n_samples)

    def _declared_samples(self, member: Any, samples: int) -> int:
        """What we declare: our training samples up to the allowance the admin attested
        (a declaration above it forfeits the epoch's payout)."""
        allowance = int(member["allowance"])
        if self.protocol_attack == "inflate_samples":
            return samples * INFLATE_FACTOR
        if samples > allowance:
            log.warning("we hold %d training samples but our allowance is %d; declaring %d (ask the consortium "
                        "admin to attest the larger count with `swarm authorize --samples`)",
                        samples, allowance, allowance)
        return min(samples, allowance)

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
        from trainer.attacks import is_data_attack
        from trainer.simulate import derive_seed
        from trainer.training import train_local

        seed, shard = self.config.data.seed, self.config.data.shard
        self.worker.load_state_dict(self.global_state)
        train_local(self.worker, self.data.X_train, self.labels, self.train_config,
                    derive_seed(seed, "train", epoch - 1, shard))
        update = {k: v.clone() for k, v in self.worker.state_dict().items()}
        if not self.attack or is_data_attack(self.attack):
            return update
        forged = forge_update(self.attack, update, epoch=epoch, global_state=self.global_state,
                              prior_state=self.prior_state, peer_round=self.peer_round, own_round=self.own_round,
                              seed=derive_seed(seed, "attack", epoch - 1, shard))
        self.own_round = (self.global_state, forged)
        return forged



def forge_update(attack: str, update: StateDict, *, epoch: int, global_state: StateDict, prior_state: StateDict | None,
                 peer_round: tuple[StateDict, list[StateDict]] | None, own_round: tuple[StateDict, StateDict] | None,
                 seed: int) -> StateDict:
    """What a rogue node commits under model attack ``attack``, from what a node can know:
    the global model before the current one (``prior_state``, None when the node did not
    adopt the two in a row), the previous epoch's peer updates (``peer_round``: the model
    they were trained from, and the updates) and its own last update (``own_round``: the
    model it was trained from, and the update). Mirrors ``trainer.simulate``: an attack
    that reads peers commits ``update`` honestly until two are known, one that replays its
    own update commits ``update`` honestly the first time, and one that reads the previous
    merged step takes a step of zero (the global model, a free rider) until it is known."""
    from trainer.attacks import apply_attack, needs_own, needs_peers, needs_prior, rebase

    peers = []
    if needs_peers(attack):
        if peer_round is None or len(peer_round[1]) < 2:
            log.info("epoch %d: %s needs two peer updates of the previous epoch; committing honestly", epoch, attack)
            return update
        peers = rebase(peer_round[1], peer_round[0], global_state)
    own = None
    if needs_own(attack):
        if own_round is None:
            log.info("epoch %d: %s has no update of its own to replay yet; committing honestly", epoch, attack)
            return update
        own = rebase([own_round[1]], own_round[0], global_state)[0]
    prior = None
    source = f"{len(peers)} peer updates of the previous epoch" if peers else "its own update"
    if needs_prior(attack):
        prior = global_state if prior_state is None else prior_state
        source = "the previous merged step" + ("" if prior_state is not None else " (not known yet: a step of zero)")
    elif own is not None:
        source = "its own last update"
    log.info("epoch %d: rogue: %s update forged from %s", epoch, attack, source)
    return apply_attack(attack, update, previous=global_state, peers=peers, seed=seed, prior=prior, own=own)
