"""``benchmarks/large_model.py`` needs a chain and minutes of a 4-node swarm, so its run is
not a test; what is checked here is what it computes from a run: the model facts it
reports and the per-epoch summary (timings, bytes attributed to epochs by settlement
time, peak memory, the score-below-train verdict), on a fabricated run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("large_model", ROOT / "benchmarks" / "large_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_facts_are_a_resnet18_class_model():
    facts = _module().model_facts()
    assert facts["model"] == "resnet18" and 11_000_000 < facts["parameters"] < 11_500_000
    assert facts["file_bytes"] > 4 * facts["parameters"]  # float32 plus the safetensors header
    assert facts["n_features"] == 3072 and facts["n_classes"] == 10


def test_summary_of_a_fabricated_run():
    lm = _module()
    timing = {"train": 10.0, "transfer": 1.0, "merge": 2.0, "score": 6.0, "chain": 0.5, "settle": 0.1, "wall": 30.0}
    raw = {
        "timings": {i: [{"epoch": e, **timing, "score": 6.0 if e > 1 else 12.0} for e in (1, 2)] for i in range(4)},
        "peaks_kib": {i: 2048 * 1024 for i in range(4)},
        "downloads": {i: [{"t": 100.0, "bytes": 7}, {"t": 101.5, "bytes": 5}, {"t": 150.0, "bytes": 3}]
                      for i in range(4)},
        "settle_time": {1: 100, 2: 160},
        "wall_s": 60.0,
        "estimator": lm.estimator_used("auto", 4),
    }
    result = lm.summarise(raw, 2, {"model": "resnet18"})
    first, second = result["per_epoch"]
    assert first["train_s"] == 10.0 and first["score_s"] == 12.0 and not first["score_below_train"]
    assert second["score_s"] == 6.0 and second["score_below_train"]
    # block timestamps are whole seconds: a download up to 1 s after the settling block's
    # timestamp may still precede it; one at 101.5 s cannot precede a settlement stamped 100.
    assert first["transfer_bytes_per_node"] == 7 and second["transfer_bytes_per_node"] == 8
    assert first["files_fetched_per_node"] == 1 and second["files_fetched_per_node"] == 2
    assert first["estimator"].startswith("exact_shapley")
    assert result["peak_memory_mib"] == {str(i): 2048.0 for i in range(4)}
    assert result["score_below_train_every_epoch"] is False and result["score_below_train_after_first"] is True
