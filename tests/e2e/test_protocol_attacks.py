"""Attacks on the protocol rather than the model, on the real swarm: a copycat that commits
another node's commitment and serves that node's file, and a node that declares ten times
its attested allowance. Neither may be paid for what it did not do, and the audit, which
still balances to the wei, names both."""

from __future__ import annotations

from swarmtoken.cli.demo import DemoOptions, free_port, run_demo


def test_copycat_and_inflated_declaration_earn_nothing_and_the_audit_names_both(tmp_path):
    out = tmp_path / "run"
    options = DemoOptions(nodes=5, rogue=0, protocol_attacks=("copycat", "inflate_samples"), epochs=3,
                          port=free_port(), out=str(out), elect_grace=10)
    summary = run_demo(options)
    assert summary["epochs_settled"] == 3 and summary["audit_ok"], summary["audit_discrepancies"]

    by_attack = {node["attack"]: node for node in summary["nodes"]}
    honest = [node["earned"] for node in summary["nodes"] if not node["attack"]]
    honest_mean = sum(honest) / len(honest)
    assert honest_mean > 0 and min(honest) > 0
    for attack in ("copycat", "inflate_samples"):
        assert by_attack[attack]["earned"] <= 0.05 * honest_mean, (attack, by_attack[attack]["earned"], honest_mean)

    findings = "\n".join(summary["audit_findings"])
    copycat, inflater = by_attack["copycat"]["address"], by_attack["inflate_samples"]["address"]
    assert f"commit of {copycat}: the served file does not open its commitment" in findings
    assert f"{inflater} declared " in findings and "its allowance counts" in findings

    copycat_log = (out / f"node-{summary['nodes'].index(by_attack['copycat'])}" / "node.log").read_text()
    assert "rogue: copycat committed" in copycat_log
    logs = "".join((out / f"node-{i}" / "node.log").read_text() for i in range(options.nodes))
    assert f"rejected update of {copycat}" in logs and "does not open" in logs
