"""Report phase, validation: download the same files, recompute the merge of the
leader's participants we found valid, compare its hash with the published one, score
every participant on our own validation data and report."""

from __future__ import annotations

from ..chain.epochview import read_epoch
from ..store import hex_to_bytes32
from ..units import METRIC_SCALE, SCORE_SCALE, to_fixed
from .merging import contribution_utility, merge_updates
from .work import EpochWork, epoch_seed, log


class ValidatePhase:
    """Validation in the report phase of :class:`~swarmtoken.node.runtime.Node`."""

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
            device = self.train_config.torch_device
            metric = evaluate(self.worker, self.data.X_val, self.data.y_val, device=device).accuracy
            utility = contribution_utility(self.worker, self.merge_rule, inputs, self.global_state,
                                           self.data.X_val, self.data.y_val, device=device)
            values = score(self.scorer, utility, len(inputs.commits), seed=epoch_seed(self.swarm.address, epoch))
        by_index = {c.index: float(v) for c, v in zip(inputs.commits, values)}
        scores = [to_fixed(max(-1.0, min(1.0, by_index.get(i, 0.0))), SCORE_SCALE) for i in record.participants]
        valid = sum(1 << i for i in work.updates)
        with self._timed(epoch, "chain"):
            sent = self._send_recorded(work, "reportValidation", epoch,
                                       to_fixed(max(0.0, min(1.0, metric)), METRIC_SCALE),
                                       hex_to_bytes32(stored.sha256), valid, scores)
        if sent:
            work.reported = True
            log.info("epoch %d: reported accuracy %.4f, scores %s", epoch, metric,
                     [round(by_index.get(i, 0.0), 5) for i in record.participants])
