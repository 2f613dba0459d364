"""A reorganisation of recent blocks: four node processes on a real chain; in epoch 2, once
the leader's merge and some reports are on chain, the blocks from the merge on are replaced
by empty ones (`anvil_reorg`), so the chain is back in the merge phase and has forgotten
the merge and the reports. The nodes resume where the chain is: the leader publishes again
(or, if it is held up, the next candidate does), the validators report again, the epoch
settles on the same merge, the swarm finishes and the audit passes."""

from __future__ import annotations

import pytest

from swarmtoken.audit import audit_swarm
from swarmtoken.chain.epochview import read_epoch
from swarmtoken.cli.demo import DemoOptions, LocalSwarm, free_port
from tests.e2e.steps import phase, wait

EPOCHS = 3
REORGED = 2
REPORTED = f"epoch {REORGED}: reported accuracy"


@pytest.fixture(scope="module")
def reorg_run(tmp_path_factory):
    from brownie import web3

    out = tmp_path_factory.mktemp("reorg")
    options = DemoOptions(nodes=4, rogue=0, epochs=EPOCHS, out=out, port=free_port(), commit_window=4,
                          merge_window=30, report_window=30, seed=2)
    env = LocalSwarm(options)
    try:
        env.launch()
        swarm, start = env.handles.swarm, int(env.handles.record["block"])

        def reporters_who_saw_their_receipt() -> list[int]:
            return [i for i, node in enumerate(env.nodes) if REPORTED in node.log_path.read_text()]

        def pending() -> int:
            return int(web3.provider.make_request("txpool_status", [])["result"]["pending"], 16)

        def reports_seen() -> bool:
            """2+ reports on chain, one at least whose node read its receipt (it logs after
            the receipt), so that node must notice the loss."""
            return int(swarm.epochState(REORGED)["reporters"]).bit_count() >= 2 and bool(reporters_who_saw_their_receipt())

        def frozen_with_reports() -> bool:
            """Mining is off from the merge on and the test mines a block only while the
            reports are not yet seen, so the epoch cannot settle before they are: the
            settlement comes from a node that read every report's receipt, and stays in the
            pool. (Sampling with mining on missed the moment whenever all four reports and
            the settlement fell between two looks.)"""
            if reports_seen():
                return True
            if pending():
                web3.provider.make_request("evm_mine", [])
            return False

        def resume_mining() -> None:
            web3.provider.make_request("evm_setAutomine", [True])
            web3.provider.make_request("evm_mine", [])  # what was sent meanwhile

        wait(lambda: int(swarm.currentEpoch()) > REORGED or int(swarm.currentEpoch()) == REORGED
             and phase(swarm, REORGED) not in ("Commit", "Merge"), f"the merge of epoch {REORGED}")
        web3.provider.make_request("evm_setAutomine", [False])
        assert int(swarm.currentEpoch()) == REORGED and phase(swarm, REORGED) == "Report"
        wait(frozen_with_reports, f"reports in epoch {REORGED}")
        assert phase(swarm, REORGED) == "Report"
        knew = reporters_who_saw_their_receipt()
        before = read_epoch(swarm, REORGED, start)
        published = swarm.events.MergePublished.get_logs(from_block=start, argument_filters={"epoch": REORGED})
        depth = int(web3.eth.block_number) - published[0].blockNumber + 1
        web3.provider.make_request("anvil_reorg", [depth, []])
        after_reorg = phase(swarm, REORGED)
        resume_mining()
        wait(lambda: bool(swarm.finished()), "the swarm to finish", timeout=300)
        record = read_epoch(swarm, REORGED, start)
        abandoned = swarm.events.EpochAbandoned.get_logs(from_block=start)
        report = audit_swarm(swarm, env.handles.token, from_block=start, check_files=True)
        yield {"before": before, "after_reorg": after_reorg, "record": record, "report": report,
               "logs": [node.log_path.read_text() for node in env.nodes], "depth": depth, "knew": knew,
               "abandoned": [int(e.args.epoch) for e in abandoned]}
    finally:
        env.stop()


def test_the_reorganisation_took_the_merge_and_the_reports_away(reorg_run):
    assert len(reorg_run["before"].reports) >= 2 and reorg_run["depth"] >= 2  # the merge's block, the reports' blocks
    assert reorg_run["after_reorg"] == "Merge"


def test_the_nodes_send_again_what_the_chain_lost_and_the_epoch_settles_on_the_same_merge(reorg_run):
    record = reorg_run["record"]
    assert record.settled_at is not None and record.merged_hash == reorg_run["before"].merged_hash
    assert reorg_run["knew"]
    for i in reorg_run["knew"]:
        assert f"epoch {REORGED}: our reportValidation is no longer on chain" in reorg_run["logs"][i]


def test_nobody_forfeits_for_what_the_reorganisation_took(reorg_run):
    """A node whose transaction was in flight when the blocks were replaced gives it up within
    a second (`chain.receipts`) and goes on from the chain's state, in time for every deadline:
    every committer reports, nobody is struck and the leader is not failed over."""
    record = reorg_run["record"]
    assert len(record.reports) == len(record.commits) == 4
    assert record.skipped == [] and record.disputes == []
    assert not any("no receipt within" in log for log in reorg_run["logs"])
    assert reorg_run["abandoned"] == []


def test_the_swarm_finishes_and_audits_clean(reorg_run):
    assert reorg_run["report"].ok, reorg_run["report"].discrepancies


@pytest.fixture()
def plain_chain():
    from web3 import Web3

    from swarmtoken.chain.localchain import start, stop_pid

    port = free_port()
    process = start(port)
    try:
        yield Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
    finally:
        stop_pid(process.pid)


def test_a_receipt_is_awaited_and_a_transaction_the_chain_cannot_mine_is_given_up(plain_chain):
    """What held a node up for 30 s after a reorganisation: a transaction behind a nonce the
    chain no longer has stays pending for ever, and one the chain dropped is unknown."""
    from web3.exceptions import TimeExhausted

    from swarmtoken.chain.receipts import LOST_AFTER_S, TransactionLost, await_receipt

    w3 = plain_chain
    sender, to = w3.eth.accounts[:2]
    nonce = w3.eth.get_transaction_count(sender)
    mined = w3.eth.send_transaction({"from": sender, "to": to, "value": 1, "nonce": nonce})
    assert await_receipt(w3, mined, sender, nonce, timeout=5)["status"] == 1

    gapped = w3.eth.send_transaction({"from": sender, "to": to, "value": 1, "nonce": nonce + 2})
    assert w3.eth.get_transaction(gapped)  # known to the chain, pending behind nonce + 1
    with pytest.raises(TransactionLost):
        await_receipt(w3, gapped, sender, nonce + 2, timeout=30)
    with pytest.raises(TransactionLost):
        await_receipt(w3, "0x" + "ab" * 32, sender, nonce + 1, timeout=30)

    # A pending transaction the chain can still mine is waited for, up to the timeout.
    w3.provider.make_request("evm_setAutomine", [False])
    pending = w3.eth.send_transaction({"from": sender, "to": to, "value": 1, "nonce": nonce + 1})
    with pytest.raises(TimeExhausted):
        await_receipt(w3, pending, sender, nonce + 1, timeout=2 * LOST_AFTER_S)
    w3.provider.make_request("evm_mine", [])
    assert await_receipt(w3, pending, sender, nonce + 1, timeout=5)["status"] == 1
