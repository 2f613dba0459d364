"""A swarm across namespaces (`tests.e2e.multihost`): the chain in one network namespace,
each of four nodes in its own, joined by veth pairs on a bridge with private addresses and
no loopback address anywhere. The swarm runs to its stopping rule while one node's
namespace is torn down mid-epoch; the others finish, the audit passes, and everything
the harness made is gone afterwards. Needs root and `ip netns`; skipped otherwise."""

from __future__ import annotations

import pytest

from tests.e2e import multihost

REASON = multihost.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"multi-host test: {REASON}")
NODES, EPOCHS, KILL_IN = 4, 3, 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    harness = multihost.MultiHost(tmp_path_factory.mktemp("multihost"), nodes=NODES, epochs=EPOCHS, kill_in=KILL_IN)
    left: list[str] = []
    try:
        result = harness.run()
    finally:
        left = harness.cleanup()
    result["left_over"] = left
    yield result
    assert harness.leftovers() == []


def test_every_node_ran_in_its_own_namespace_with_no_loopback_address(run):
    top = run["topology"]
    assert run["namespaces_of_nodes"] == {i: top["namespaces"][1 + i] for i in range(NODES)}
    base_uris = run["chain"]["base_uris"]
    assert sorted(base_uris.values()) == sorted(f"http://{a}:{multihost.STORE_PORT}" for a in top["node_addresses"])
    assert run["chain"]["rpc_url"] == top["rpc_url"] == f"http://{top['chain_address']}:{multihost.CHAIN_PORT}"
    assert f"host: {top['rpc_url']}" in run["network_config"]
    assert run["record"]["endpoint"] == {"network": top["network"], "rpc_url": top["rpc_url"]}
    for i, config in run["configs"].items():
        assert f'network = "{top["network"]}"' in config and f'host = "{top["node_addresses"][i]}"' in config
    for text in [*base_uris.values(), run["chain"]["rpc_url"], *run["configs"].values(), str(run["record"])]:
        assert "127.0.0.1" not in text and "localhost" not in text


def test_the_swarm_reaches_its_stopping_rule_with_every_epoch_settled(run):
    chain = run["chain"]
    assert chain["finished"]
    assert {int(e): v["phase"] for e, v in chain["epochs"].items()} == {e: "Settled" for e in range(1, EPOCHS + 1)}


def test_the_node_cut_off_mid_epoch_drops_out_and_the_others_finish(run):
    victim, address = run["victim"], run["victim_address"]
    assert run["moment"]["phase"] == "Report" and run["moment"]["epoch"] == KILL_IN  # mid-epoch: merge on chain
    assert run["victim_alive_at_teardown"]
    epochs = {int(e): v for e, v in run["chain"]["epochs"].items()}
    assert address in epochs[KILL_IN]["participants"]
    for epoch in range(KILL_IN + 1, EPOCHS + 1):
        assert address not in epochs[epoch]["committers"], epoch
        assert len(epochs[epoch]["participants"]) == NODES - 1, epochs[epoch]
    for i, log in run["logs"].items():
        if i == victim:
            assert "swarm finished" not in log
        else:
            assert "swarm finished" in log, log[-3000:]


def test_the_audit_passes_naming_the_dead_nodes_unserved_files(run):
    audit = run["audit"]
    assert audit["code"] == 0, audit["out"] + audit["err"]
    findings = [line for line in audit["out"].splitlines() if line.startswith("finding:")]
    assert findings and all(run["victim_address"] in line for line in findings), findings
    assert any("not served" in line for line in findings), findings
    assert "audit ok: every payout matches" in audit["out"]  # files were fetched from the stores over the bridge


def test_everything_it_made_is_gone(run):
    assert run["left_over"] == []
