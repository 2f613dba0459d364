"""The gas benchmark runs on a chain of its own and gives the same gas twice: its anvil
starts from a fixed genesis timestamp and steps a fixed time per block, so the block hashes
that draw the leaders (and so who forfeits in the fail-over epoch) repeat."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _quick_run(out: Path) -> dict:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gas.py"), "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    report.pop("runtime_seconds")
    return report


def test_two_quick_gas_runs_agree_to_the_gas(tmp_path):
    first = _quick_run(tmp_path / "first.json")
    second = _quick_run(tmp_path / "second.json")
    # Drawn from block hashes: with wall-clock timestamps they differ from run to run.
    assert first["leaders_drawn"] == second["leaders_drawn"]
    assert [len(drawn) for drawn in first["leaders_drawn"].values()] == [3, 3]
    assert first == second
    assert set(first["settle_gas"]) == {"4", "8"} and all(gas > 100_000 for gas in first["settle_gas"].values())
    assert first["claim_first_gas"] > first["claim_gas"] > 0
