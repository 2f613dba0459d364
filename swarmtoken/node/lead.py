"""Merge phase: serve our file, draw the leader, and, as leader, download every
commitment from under its committer's base URI, leave out what fails, merge the rest
with the agreed rule and publish; fail over a leader that misses its deadline."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..chain.epochview import read_epoch
from ..chain.ledger import CommitRecord, EpochRecord
from ..store import FetchError, commit_url, commitment_of, download_committed, hex_to_bytes32, shared_files
from ..store.codec import decode
from .merging import MergeInputs, invalid_steps, merge_inputs, merge_updates
from .work import EpochWork, log


class LeadPhase:
    """The merge phase of :class:`~swarmtoken.node.runtime.Node`."""

    def _merge_phase(self, epoch: int, state: Any, work: EpochWork) -> None:
        own = self._own_commit(epoch, work)
        if own is not None and not self.store.is_released(own):
            self.store.release(own)
        self._serve_copy(epoch, work)
        if not state["drawn"]:
            # The draw reads the hash of the block that closed the commits, so it goes in a
            # later block: on an automining chain, the block of this very transaction.
            # Whoever closed the commits draws at once (the draw's block follows the
            # election's); the others stand by in case it does not.
            if work.merge_seen is None:
                work.merge_seen = time.time()
            if work.elected or self._due(work.merge_seen, epoch):
                work.elected = False
                with self._timed(epoch, "chain"):
                    if self._send("drawLeader", epoch):
                        log.info("epoch %d: leader drawn: %s", epoch, self.swarm.leaderOf(epoch))
            return
        if self.swarm.leaderOf(epoch) == self.address:
            if time.time() > int(state["deadline"]):
                return
            if "publishMerge" in work.sent:  # published, yet the chain is back in the merge phase
                self._send_again(epoch, work, "publishMerge")
            elif not work.published:
                self._lead(epoch, work)
        elif self._due(int(state["deadline"]), epoch):
            with self._timed(epoch, "chain"):
                moved = self._send("failover", epoch)
            if moved:
                log.warning("epoch %d: leader timed out; leadership moved to %s", epoch, self.swarm.leaderOf(epoch))

    def _own_commit(self, epoch: int, work: EpochWork) -> str | None:
        """Our committed hash for ``epoch``, recovered from events after a restart."""
        if work.own_sha is None and int(self._member()["lastSubmitEpoch"]) == epoch:
            mine = [c for c in read_epoch(self.swarm, epoch, self.from_block).commits if c.node == self.address]
            work.own_sha = self.store.opened_by(mine[0].commitment) if mine else None
        return work.own_sha

    def _lead(self, epoch: int, work: EpochWork) -> None:
        if work.own_sha is not None:
            # The *_after_merge rogues act as participants only: as leader they serve on.
            self.own_commitments.discard(commitment_of(self.address, epoch, work.own_sha))
        with self._timed(epoch, "chain"):
            record = read_epoch(self.swarm, epoch, self.from_block)
        # Files fetched before we led (as a validator, before a reorganisation or a fail-over
        # made us leader) were not kept: fetch them again, to serve the copies we merge.
        for index in [i for i, sha in work.shas.items() if not self.store.has(sha)]:
            work.fetched.discard(index)
            work.updates.pop(index, None)
            work.shas.pop(index)
        with self._timed(epoch, "transfer"):
            self._fetch_updates(record, work, keep=True)
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
            sent = self._send_recorded(work, "publishMerge", epoch, hex_to_bytes32(stored.sha256), bitmap)
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

    def _fetch_updates(self, record: EpochRecord, work: EpochWork, keep: bool = False) -> None:
        """Download every commitment of the epoch not yet tried; failures are logged and
        left out, and so is every file that two commitments resolve to (neither can be
        told apart from a copy). ``keep`` (the leader): keep and serve a copy of every
        file (see `_fetch_update`)."""
        missing = [c for c in record.commits if c.index not in work.fetched]

        def get(commit: CommitRecord) -> tuple[CommitRecord, Any]:
            try:
                return commit, self._fetch_update(record, commit, keep)
            except FetchError as exc:
                return commit, exc

        with ThreadPoolExecutor(max_workers=8) as pool:
            for commit, result in pool.map(get, missing):
                work.fetched.add(commit.index)
                if isinstance(result, FetchError):
                    log.warning("epoch %d: rejected update of %s: %s", record.epoch, commit.node, result)
                else:
                    work.shas[commit.index], work.updates[commit.index] = result
        if keep:
            for sha in work.shas.values():
                self.store.release(sha)
        nodes = {c.index: c.node for c in record.commits}
        for sha, indices in shared_files(work.shas).items():
            if any(i in work.updates for i in indices):
                log.warning("epoch %d: DUPLICATE: %s committed the same file %s; all rejected", record.epoch,
                            ", ".join(nodes[i] for i in sorted(indices)), sha[:12])
                for index in indices:
                    work.updates.pop(index, None)
                    work.rejected_steps.pop(index, None)
        # Judge the same whole set on every pass (a retried validation or merge calls this
        # again): the sign-balance verdicts depend on it through its median.
        judged = {**work.updates, **work.rejected_steps}
        invalid = invalid_steps(judged, self.global_state, self.prior_state)
        for index, (check, value) in invalid.items():
            if index in work.rejected_steps:
                continue
            log.warning("epoch %d: %s: rejected update of %s: %s", record.epoch, check.upper(), nodes[index],
                        "its step repeats the previous merged step (cosine %.3f)" % value if check == "copy" else
                        "its step moves its coordinates one way (sign balance %.3f from the epoch's median)" % value)
        work.rejected_steps = {i: u for i, u in judged.items() if i in invalid}
        work.updates = {i: u for i, u in judged.items() if i not in invalid}

    def _fetch_update(self, record: EpochRecord, commit: CommitRecord, keep: bool) -> tuple[str, Any]:
        """One committed update: ours from the store, anyone else's from its committer. The
        leader keeps the bytes it merges and serves them under their commitments, so a
        validator can still check the merge when a participant stops serving its file or
        serves another one (killed, corrupted, or hostile) after the merge: for a
        participant of the published merge, the leader's copy is the fallback. Bytes that
        open the commitment are the committed file whoever serves them; a leader that cannot
        show a file it merged is contradicted by the validators' recomputation."""
        epoch, limits = record.epoch, dict(timeout=self.config.node.fetch_timeout,
                                          retries=self.config.node.fetch_retries,
                                          backoff=self.config.node.fetch_backoff)
        own = self.store.opened_by(commit.commitment) if commit.node == self.address else None
        if own is not None and commitment_of(self.address, epoch, own) == commit.commitment:
            return own, self.store.load(own, reference=self.global_state)
        try:
            sha, data = download_committed(self._base_uri(commit.node), commit.node, epoch, commit.commitment,
                                           **limits)
        except FetchError as exc:
            if commit.index not in record.participants or record.leader in (None, commit.node, self.address):
                raise
            sha, data = download_committed(self._base_uri(record.leader), commit.node, epoch, commit.commitment,
                                           **limits)
            log.warning("epoch %d: %s's update taken from the leader's copy (%s)", epoch, commit.node, exc)
        state = decode(data, commit_url(self._base_uri(commit.node), commit.commitment), self.global_state)
        if keep:
            self.store.put(data)
            self.store.bind_commitment(commit.commitment, sha)
        return sha, state

    def _merge_inputs(self, record: EpochRecord, indices: list[int], work: EpochWork) -> MergeInputs:
        by_index = {c.index: c for c in record.commits}
        return merge_inputs([by_index[i] for i in indices], work.updates, self.swarm.leaderOf(record.epoch))
