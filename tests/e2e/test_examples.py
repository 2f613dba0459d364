"""The examples run as the README says and show what they claim."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 5  # the examples run 8 by default; 5 keep the suite short and still show the gain


def test_own_loop_cnn_three_organisations_beat_their_local_models_and_are_paid(tmp_path):
    """Three processes with their own CNN and loop, one SwarmCallback each, on a local
    chain: the swarm settles every epoch, each organisation ends with the same global
    model, better than what it trains alone, and is paid for its part; the audit passes."""
    out = tmp_path / "own_loop_cnn"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "own_loop_cnn" / "run.py"), "--out", str(out),
                           "--epochs", str(EPOCHS)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    nodes = summary["nodes"]
    assert summary["epochs_settled"] == EPOCHS and all(node["swarm_epochs"] == EPOCHS for node in nodes)
    assert summary["audit_ok"] and summary["files_verified"] > 0, summary
    assert len({node["swarm_accuracy"] for node in nodes}) == 1  # one global model
    local = [node["local_accuracy"] for node in nodes]
    assert nodes[0]["swarm_accuracy"] >= sum(local) / len(local) + 0.05, nodes
    assert all(float(node["earned"]) > 0 for node in nodes), nodes
    logs = "".join((out / f"node-{i}" / "train.log").read_text() for i in range(3))
    assert "Traceback" not in logs


def test_csv_node_organisations_with_a_plugin_loader_beat_their_local_models_and_are_paid(tmp_path):
    """Three `swarm train` nodes whose node.toml names the organisation's own CSV loader
    (each file in its own column order): every epoch settles, the swarm's model beats each
    organisation's local-only one, everyone is paid, and the audit passes."""
    out = tmp_path / "csv_node"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "csv_node" / "run.py"), "--out", str(out),
                           "--epochs", str(EPOCHS)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_settled"] == EPOCHS and summary["audit_ok"], summary["audit_discrepancies"]
    for node in summary["nodes"]:
        assert node["swarm_accuracy"] >= node["local_accuracy"] + 0.05, summary["nodes"]
        assert float(node["earned"]) > 0
    headers = {(out / f"org-{i}.csv").read_text().splitlines()[0] for i in range(3)}
    assert len(headers) == 3  # three column orders: the loader, not the file layout, makes them agree
    assert all('loader = "clinic_loader:load"' in (out / f"node-{i}" / "node.toml").read_text() for i in range(3))
