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
    """The events of ``epoch`` only, in chain order, from one ``eth_getLogs``: every epoch
    event has the epoch as its first indexed argument (topic 1), so one filter on the
    contract, the events' signatures and that topic selects them all (a query per event
    type cost a node eight round trips each time it read an epoch)."""
    from brownie import web3

    events = {name: getattr(swarm.events, name) for name in EPOCH_EVENTS}
    by_topic = {bytes.fromhex(event.topic[2:]): name for name, event in events.items()}
    logs = web3.eth.get_logs({
        "address": swarm.address,
        "fromBlock": from_block,
        "toBlock": "latest",
        "topics": [[event.topic for event in events.values()], "0x" + epoch.to_bytes(32, "big").hex()],
    })
    entries = []
    for raw in logs:
        name = by_topic[bytes(raw["topics"][0])]
        entries.append((name, events[name]().process_log(raw)))
    entries.sort(key=lambda item: (item[1].blockNumber, item[1].logIndex))
    return assemble(entries).epochs.get(epoch, EpochRecord(epoch))
