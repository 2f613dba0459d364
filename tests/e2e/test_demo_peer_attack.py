"""A rogue whose attack reads its peers' updates (ALIE) on the real swarm: commit-then-reveal
hides the current epoch's updates, so it forges from the previous epoch's, and the
chain-backed run must match the in-process simulator, which models the same view."""

from __future__ import annotations

from swarmtoken.cli.demo import DemoOptions, free_port, run_demo


def test_alie_rogue_forges_from_the_previous_epoch_and_matches_the_simulator(tmp_path):
    out = tmp_path / "run"
    options = DemoOptions(nodes=4, rogue=1, attack="alie", epochs=3, port=free_port(), out=str(out))
    summary = run_demo(options)
    assert summary["epochs_settled"] == 3 and summary["audit_ok"]
    assert abs(summary["global_accuracy"] - summary["simulator_accuracy"]) <= 0.02
    rogue = next(i for i, node in enumerate(summary["nodes"]) if node["rogue"])
    log = (out / f"node-{rogue}" / "node.log").read_text()
    assert "epoch 1: alie needs two peer updates of the previous epoch; committing honestly" in log
    assert "epoch 2: rogue: alie update forged from 3 peer updates of the previous epoch" in log
