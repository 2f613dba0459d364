"""Reading one epoch back from the chain: its events (commitments, leader, merge, reports,
settlement) and the on-chain phase, in the shapes the node runtime works with."""

from __future__ import annotations

from typing import Any

from .ledger import EpochRecord, assemble

EPOCH_EVENTS = (
    "UpdateSubmitted",
    "LeaderElected",
    "LeaderSkipped",
    "MergePublished",
    "ValidationReported",
    "ParticipantSettled",
    "EpochSettled",
    "EpochAbandoned",
)
PHASES = ("Commit", "Merge", "Report", "Settled", "Abandoned")


def read_epoch(swarm: Any, epoch: int, from_block: int = 0) -> EpochRecord:
    """The events of ``epoch`` only (filtered by the indexed epoch topic), in chain order."""
    entries = []
    for name in EPOCH_EVENTS:
        for log in getattr(swarm.events, name).get_logs(from_block=from_block, argument_filters={"epoch": epoch}):
            entries.append((name, log))
    entries.sort(key=lambda item: (item[1].blockNumber, item[1].logIndex))
    return assemble(entries).epochs.get(epoch, EpochRecord(epoch))
