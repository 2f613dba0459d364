"""Each ML benchmark's --quick variant runs end to end and writes the JSON its full run
writes, so a benchmark cannot rot between full runs. (Gas and overhead need chains: their
paths are exercised by the contract and end-to-end tests.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

REQUIRED_KEYS = {
    "accuracy": {"centralized", "local_only_mean", "swarm", "min_node_gain"},
    "robustness": {"clean_mean", "results", "rogue_detection"},
    "shapley": {"n", "exact_n8_seconds"},
    "transfer": set(),
    "validity": {"config", "figures", "targets"},
}


@pytest.mark.parametrize("name", sorted(REQUIRED_KEYS))
def test_quick_benchmark_writes_its_results(tmp_path, name):
    out = tmp_path / f"{name}.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT, env={"OMP_NUM_THREADS": "1",
                                                                                      "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())
    assert REQUIRED_KEYS[name] <= set(results)
    assert results, "empty results"
