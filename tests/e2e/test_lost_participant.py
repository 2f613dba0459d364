"""One global model when a participant's file is lost after the merge: a participant
whose store stops serving its file once the leader downloaded it (what its peers see
of a node killed right after the merge), and one that then serves another file under its
commitment (a file corrupted after the merge). Validators check the merge on the copy
the leader keeps, so the honest leader is never contradicted, every node ends every
epoch with the model the chain recorded, and the audit names both files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from swarmtoken.cli.demo import DemoOptions, free_port, run_demo

ADOPTED = re.compile(r"adopted the global model of epoch (\d+) \(([0-9a-f]{12})\)")
ATTACKS = ("withhold_after_merge", "swap_after_merge")


def _demo(out: Path) -> tuple[DemoOptions, dict]:
    options = DemoOptions(nodes=5, rogue=0, protocol_attacks=ATTACKS, epochs=3,
                          port=free_port(), out=str(out), elect_grace=10)
    return options, run_demo(options)


def _a_rogue_led_every_epoch(out: Path, summary: dict) -> bool:
    """Whether one of the two rogues led every epoch: a leader serves its own file on, so
    such a run never shows that rogue's attack (about 2 runs in 125 with 5 nodes and 3
    epochs: the leaders are drawn from block hashes)."""
    leaders = {json.loads(path.read_text())["leader"] for path in sorted((out / "epochs").glob("epoch-*.json"))}
    return any(leaders == {node["address"]} for node in summary["nodes"] if node["attack"] in ATTACKS)


def test_files_lost_after_the_merge_neither_fork_the_model_nor_fault_the_leader(tmp_path):
    out = tmp_path / "run"
    options, summary = _demo(out)
    if _a_rogue_led_every_epoch(out, summary):
        out = tmp_path / "again"
        options, summary = _demo(out)
        assert not _a_rogue_led_every_epoch(out, summary), "a rogue led every epoch of two runs in a row"
    assert summary["epochs_settled"] == 3 and summary["audit_ok"], summary["audit_discrepancies"]
    findings = "\n".join(summary["audit_findings"])
    assert " published " not in findings, findings  # no MergeDisputed: the leader was never contradicted

    adopted: dict[int, set[str]] = {}
    logs = ""
    for i in range(options.nodes):
        log = (out / f"node-{i}" / "node.log").read_text()
        logs += log
        for epoch, sha in ADOPTED.findall(log):
            adopted.setdefault(int(epoch), set()).add(sha)
    assert sorted(adopted) == [1, 2, 3] and all(len(shas) == 1 for shas in adopted.values()), adopted
    assert "DISPUTE" not in logs

    by_attack = {node["attack"]: node for node in summary["nodes"]}
    withheld, swapped = by_attack["withhold_after_merge"]["address"], by_attack["swap_after_merge"]["address"]
    assert "rogue: withholding the file" in logs and "rogue: serving another file" in logs
    assert f"{withheld}'s update taken from the leader's copy" in logs
    assert f"{swapped}'s update taken from the leader's copy" in logs
    assert (f"commit of {withheld}: not served (its committer's store did not answer); the leader's copy opens it"
            in findings)
    assert f"commit of {swapped}: the served file does not open its commitment; the leader's copy opens it" in findings
    honest = [node["earned"] for node in summary["nodes"] if not node["attack"]]
    assert min(honest) > 0 and by_attack["withhold_after_merge"]["earned"] > 0  # its update was merged and scored
