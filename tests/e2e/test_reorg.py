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


@pytest.fixture(scope="module")
def reorg_run(tmp_path_factory):
    from brownie import web3

    out = tmp_path_factory.mktemp("reorg")
    options = DemoOptions(nodes=4, rogue=0, epochs=EPOCHS, out=out, port=free_port(), commit_window=4,
                          merge_window=30, report_window=30, seed=2)
    env = LocalSwarm(options)
    try:
        env.start_chain()
        env.deploy()
        env.create_nodes()
        env.start_nodes()
        swarm, start = env.handles.swarm, int(env.handles.record["block"])
        wait(lambda: int(swarm.currentEpoch()) == REORGED and phase(swarm, REORGED) == "Report"
             and int(swarm.epochState(REORGED)["reporters"]).bit_count() >= 2, f"reports in epoch {REORGED}",
             timeout=240)
        before = read_epoch(swarm, REORGED, start)
        published = swarm.events.MergePublished.get_logs(from_block=start, argument_filters={"epoch": REORGED})
        depth = int(web3.eth.block_number) - published[0].blockNumber + 1
        web3.provider.make_request("anvil_reorg", [depth, []])
        after_reorg = phase(swarm, REORGED)
        wait(lambda: bool(swarm.finished()), "the swarm to finish", timeout=300)
        record = read_epoch(swarm, REORGED, start)
        report = audit_swarm(swarm, env.handles.token, from_block=start, check_files=True)
        yield {"before": before, "after_reorg": after_reorg, "record": record, "report": report,
               "logs": "".join(node.log_path.read_text() for node in env.nodes), "depth": depth}
    finally:
        env.stop()


def test_the_reorganisation_took_the_merge_and_the_reports_away(reorg_run):
    assert len(reorg_run["before"].reports) >= 2 and reorg_run["depth"] >= 3
    assert reorg_run["after_reorg"] == "Merge"


def test_the_nodes_send_again_what_the_chain_lost_and_the_epoch_settles_on_the_same_merge(reorg_run):
    """Not asserted: that nobody forfeits. A node whose transaction (often the settlement)
    was in flight when the blocks were replaced can wait out its receipt timeout (30 s) and
    miss a deadline: about half the runs, see the closing note of issue "Node runtime"."""
    record = reorg_run["record"]
    assert record.settled_at is not None and record.merged_hash == reorg_run["before"].merged_hash
    assert len(record.reports) >= 3
    assert "our reportValidation is no longer on chain" in reorg_run["logs"]


def test_the_swarm_finishes_and_audits_clean(reorg_run):
    assert reorg_run["report"].ok, reorg_run["report"].discrepancies
