"""Between epochs: adopt the global model the chain recorded (the strict majority's
merge hash), from our own recomputation or from any peer that serves it, checkpoint it,
and resume from the checkpoint after a restart."""

from __future__ import annotations

import json
import time

import torch

from ..atomic import write_atomically
from ..chain.epochview import PHASES, read_epoch
from ..store import FetchError, fetch
from ..store.server import ROUTE
from .work import log


class SyncPhase:
    """Global-model sync of :class:`~swarmtoken.node.runtime.Node`."""

    def _last_settled(self, epoch: int) -> int:
        """The last settled epoch before ``epoch`` (0: none). An epoch before the current
        one is settled or abandoned for good, so each is read from the chain once."""
        for earlier in range(epoch - 1, 0, -1):
            if earlier not in self.final_phases:
                self.final_phases[earlier] = PHASES[int(self.swarm.epochState(earlier)["phase"])]
            if self.final_phases[earlier] == "Settled":
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
        # Atomic: a reader (an operator's script, the tests) or a crash never sees it half written.
        write_atomically(checkpoint.with_suffix(".json"), json.dumps({"epoch": epoch, "sha256": stored.sha256}).encode(),
                         prefix=".checkpoint-")
        # wall: from the first poll that saw the epoch to adopting its model, so the
        # categories' sum and the wall time give the time spent waiting.
        wall = time.time() - self.epoch_seen.pop(epoch, time.time())
        for old in [e for e in self.epoch_seen if e < epoch]:
            del self.epoch_seen[old]
        if epoch in self.timings:
            with self.config.path("timings.jsonl").open("a") as out:
                out.write(json.dumps({"epoch": epoch, **self.timings.pop(epoch), "wall": wall}) + "\n")
        for old in [e for e in self.work if e <= epoch]:
            del self.work[old]
        log.info("adopted the global model of epoch %d (%s)", epoch, stored.sha256[:12])
        if self.own_loop is not None:
            self.own_loop.handover.adopted(epoch, state)

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
