"""benchmarks/fairness.py --quick writes the report its full run writes, with sane numbers
(the targets are for the full run: 2 epochs say nothing about them)."""

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
ONLY = ["base", "lying", "sybil", "quality", "small", "long", "sign_flip", "extrapolated_c1", "alie_z1", "scaled_x3", "replay_own"]


def test_quick_fairness_report(tmp_path):
    out = tmp_path / "fairness.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fairness.py"), "--quick", "--out", str(out),
                          "--partitions", "dirichlet", "--only", *ONLY], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["config"]["epochs"] == 2 and report["config"]["seeds"] == [0]
    assert set(report["figures"]) == {"dirichlet", "quality", "small", "long"}
    small = report["figures"]["small"]
    names = ("honest_suspended", "worst_payout_to_data", "honest_suspended_with_rogue",
             "rogue_sign_flip", "rogue_gaussian_noise", "rogue_label_flip")
    assert set(small) == {f"n{n}_{name}" for n in (3, 4, 5) for name in names}
    assert report["config"]["small_epochs"] == 4 and all(small[f"n{n}_honest_suspended"]["mean"] >= 0 for n in (3, 4, 5))
    assert report["targets"]["small.n3_worst_payout_to_data"]["threshold"] == [">=", 0.5]
    assert report["targets"]["small.n4_rogue_label_flip"]["threshold"] == ["<=", 0.05]
    assert report["targets"]["small.n5_honest_suspended_with_rogue"]["threshold"] == ["<=", 0]
    long = report["figures"]["long"]
    lies = {f"{p}_{lie}_{count}" for p in ("dirichlet", "iid") for lie in ("lying", "boosting") for count in (1, 2)}
    honest = {f"{p}_{name}" for p in ("dirichlet", "iid")
              for name in ("honest_suspended", "worst_payout_to_data", "honest_suspended_with_rogue")}
    assert set(long) == lies | honest
    assert report["config"]["long_epochs"] == 4 and all(0 <= long[name]["mean"] <= 1 for name in lies)
    assert report["targets"]["long.iid_boosting_1"]["threshold"] == ["<=", 0.02]
    assert report["targets"]["long.dirichlet_lying_2"]["threshold"] == ["<=", 0.05]
    assert report["targets"]["long.dirichlet_honest_suspended"]["threshold"] == ["<=", 0]
    assert report["targets"]["long.iid_honest_suspended_with_rogue"]["threshold"] == ["<=", 0]
    assert report["targets"]["long.iid_worst_payout_to_data"]["threshold"] == [">=", 0.85]
    assert long["dirichlet_honest_suspended"]["mean"] >= 0 and long["iid_worst_payout_to_data"]["mean"] >= 0
    expected = {"honest_zero_pairs", "honest_suspended", "worst_payout_to_data", "accuracy", "copy_cosine_max",
                "balance_deviation_max", "lying_1", "lying_2", "boosting_1", "boosting_2", "sybil_split", "sybil_pool",
                "rogue_sign_flip", "rogue_extrapolated_c1",
                "rogue_alie_z1", "rogue_alie_z1_forged", "rogue_scaled_x3", "rogue_scaled_x3_vs_self",
                "rogue_replay_own", "rogue_replay_own_forged", "rogue_replay_own_vs_self",
                "honest_suspended_beside_rogues", "worst_payout_to_data_beside_rogues"}
    for partition in ("dirichlet",):
        figures = report["figures"][partition]
        assert set(figures) == expected
        for figure in figures.values():
            assert set(figure) == {"mean", "worst", "per_seed", "seeds"} and len(figure["per_seed"]) <= 1
            assert all(math.isfinite(v) for v in figure["per_seed"]) and len(figure["seeds"]) == len(figure["per_seed"])
        assert 0 <= figures["honest_zero_pairs"]["mean"] <= 1 and 0 <= figures["lying_1"]["mean"] <= 1
        assert 0.3 < figures["accuracy"]["mean"] <= 1 and -1 <= figures["copy_cosine_max"]["mean"] < 0.95
        assert 0 <= figures["balance_deviation_max"]["mean"] < 0.3  # no honest step judged one-sided
        assert figures["sybil_split"]["mean"] > 0 and figures["sybil_pool"]["mean"] > 0
        assert figures["rogue_extrapolated_c1"]["mean"] >= 0 and figures["worst_payout_to_data"]["mean"] >= 0
        # ALIE trains honestly in epoch 0 (no peers yet) and is paid for it; its forgery in
        # epoch 1 is one-sided, rejected and paid nothing
        assert figures["rogue_alie_z1"]["mean"] > 0 and figures["rogue_alie_z1_forged"]["mean"] == 0
        assert figures["rogue_scaled_x3_vs_self"]["mean"] > 0
        # epoch 0 honest, epoch 1 its epoch-0 step again: real (stale) work, paid
        assert figures["rogue_replay_own_forged"]["mean"] > 0 and figures["rogue_replay_own_vs_self"]["mean"] > 0
    quality = report["figures"]["quality"]
    assert -1 <= quality["quality_spearman"]["mean"] <= 1 and -1 <= quality["quality_spearman_by_samples"]["mean"] <= 1
    assert quality["quality_noise_credit_factor"]["mean"] > 0
    assert "quality.quality_noise_credit_factor" not in report["targets"]
    targets = report["targets"]
    assert {"dirichlet.lying_1", "dirichlet.worst_payout_to_data", "quality.quality_spearman"} <= set(targets)
    assert all(isinstance(t["pass"], bool) and isinstance(t["pass_mean"], bool) for t in targets.values())
    assert targets["dirichlet.worst_payout_to_data"]["threshold"] == [">=", 0.5]
    assert targets["dirichlet.sybil_pool"]["threshold"] == [0.95, 1.05]
    assert targets["dirichlet.honest_suspended_beside_rogues"]["threshold"] == ["<=", 0]
    assert targets["dirichlet.worst_payout_to_data_beside_rogues"]["threshold"] == [">=", 0.5]
    assert 0 <= figures["worst_payout_to_data_beside_rogues"]["mean"] and figures["honest_suspended_beside_rogues"]["mean"] >= 0
    assert targets["dirichlet.boosting_1"]["threshold"] == ["<=", 0.02]
    assert "dirichlet.rogue_alie_z1" in targets and "dirichlet.rogue_alie_z1_forged" not in targets


def test_noise_credit_factor_recovers_what_noise_does_to_credit():
    """Credits that grow as samples^0.6 and halve from noise 0 to 0.5 (over two epochs, one
    node absent from one) give a factor of 0.5; credits blind to the noise give 1."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fairness import noise_credit_factor

    samples, noise = [50, 80, 120, 200, 60, 90, 150, 300], [0.0, 0.0, 0.1, 0.1, 0.3, 0.3, 0.5, 0.5]

    def result(halving):
        credit = [round(1e6 * d**0.6 * halving ** (2 * level)) for d, level in zip(samples, noise)]
        epochs = [SimpleNamespace(money=SimpleNamespace(participants=tuple(nodes),
                                                        settlement=SimpleNamespace(scores=tuple(credit[i] for i in nodes))))
                  for nodes in (range(8), range(1, 8))]
        return SimpleNamespace(n_train=samples, epochs=epochs)

    assert noise_credit_factor(result(0.5), noise) == pytest.approx(0.5, rel=1e-4)
    assert noise_credit_factor(result(1.0), noise) == pytest.approx(1.0, rel=1e-4)
