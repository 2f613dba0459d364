"""Attacks: each forged update against its definition, seeding, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.attacks import (
    ATTACKS,
    AttackOptionError,
    UnknownAttackError,
    alie_z,
    apply_attack,
    flip_labels,
    forge_report,
    is_data_attack,
    needs_own,
    needs_peers,
    needs_prior,
    rebase,
)
from trainer.params import NonFiniteError, ShapeMismatchError, flatten

PREVIOUS = {"w": torch.tensor([1.0, 1.0, 1.0]), "n": torch.tensor(2)}
HONEST = {"w": torch.tensor([2.0, 0.0, 1.5]), "n": torch.tensor(3)}
PEERS = [
    {"w": torch.tensor([2.0, 0.0, 1.0]), "n": torch.tensor(3)},
    {"w": torch.tensor([4.0, 2.0, 1.0]), "n": torch.tensor(3)},
]


def _run(name: str, **options) -> dict[str, torch.Tensor]:
    return apply_attack(name, HONEST, previous=PREVIOUS, peers=PEERS, seed=0, **options)


def test_sign_flip_reverses_the_honest_step() -> None:
    assert _run("sign_flip")["w"].tolist() == [0.0, 2.0, 0.5]
    assert _run("sign_flip", scale=2.0)["w"].tolist() == [-1.0, 3.0, 0.0]


def test_scaled_boosts_the_honest_step() -> None:
    assert _run("scaled")["w"].tolist() == [11.0, -9.0, 6.0]


def test_free_rider_sends_the_global_model_back() -> None:
    out = _run("free_rider")
    assert torch.equal(out["w"], PREVIOUS["w"]) and out["w"] is not PREVIOUS["w"]


def test_forged_updates_keep_honest_integer_buffers_and_dtypes() -> None:
    out = _run("sign_flip")
    assert out["n"].item() == 3 and out["w"].dtype == torch.float32


def test_gaussian_noise_is_seeded_and_ignores_the_honest_step() -> None:
    big_prev = {"w": torch.zeros(20_000)}
    honest = {"w": torch.ones(20_000)}
    a = apply_attack("gaussian_noise", honest, previous=big_prev, peers=[], seed=3, sigma=0.5)
    b = apply_attack("gaussian_noise", honest, previous=big_prev, peers=[], seed=3, sigma=0.5)
    c = apply_attack("gaussian_noise", honest, previous=big_prev, peers=[], seed=4, sigma=0.5)
    assert torch.equal(a["w"], b["w"]) and not torch.equal(a["w"], c["w"])
    assert abs(float(a["w"].std()) - 0.5) < 0.01 and abs(float(a["w"].mean())) < 0.01


def test_alie_is_peer_mean_minus_z_std() -> None:
    # peer deltas (1,-1,0) and (3,1,0): mean (2,0,0), population std (1,1,0).
    assert _run("alie", z=1.5)["w"].tolist() == [1.0 + 2 - 1.5, 1.0 - 1.5, 1.0]
    assert _run("alie")["w"].tolist() == [2.0, 0.0, 1.0]  # default z = 1


def test_alie_z_from_the_paper() -> None:
    # n=50, f=24 in Baruch et al.: s = 2, z = Phi^-1(48/50) ~ 1.75.
    assert alie_z(50, 24) == pytest.approx(1.7507, abs=1e-4)
    assert alie_z(8, 2) == pytest.approx(0.3186, abs=1e-4)
    assert _run("alie", n=8, f=2)["w"][0].item() == pytest.approx(1 + 2 - alie_z(8, 2))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("sign_flip", {"scale": 0.0}, "scale must be > 0"),
        ("scaled", {"scale": -1.0}, "scale must be > 0"),
        ("gaussian_noise", {"sigma": float("nan")}, "sigma must be > 0"),
        ("stale_noise", {"fraction": 0.0}, "fraction must be > 0"),
        ("alie", {"z": 1.0, "n": 8, "f": 2}, "either z or"),
        ("alie", {"n": 8}, "together"),
        ("alie", {"n": 8, "f": 5}, "undefined"),
    ],
)
def test_bad_attack_options_are_refused(name, options, message) -> None:
    with pytest.raises(AttackOptionError, match=message):
        _run(name, **options)


def test_alie_needs_two_peers() -> None:
    with pytest.raises(AttackOptionError, match="at least 2 peer"):
        apply_attack("alie", HONEST, previous=PREVIOUS, peers=PEERS[:1], seed=0)


def test_attacks_validate_the_honest_update() -> None:
    broken = {"w": torch.tensor([float("nan"), 0.0, 0.0]), "n": torch.tensor(3)}
    with pytest.raises(NonFiniteError):
        apply_attack("sign_flip", broken, previous=PREVIOUS, peers=PEERS, seed=0)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flip_labels_changes_every_label_consistently(n_classes, seed) -> None:
    y = torch.arange(n_classes).repeat(3)
    flipped = flip_labels(y, n_classes, seed)
    assert flipped.dtype == y.dtype
    assert bool((flipped != y).all())
    assert sorted(flipped[:n_classes].tolist()) == list(range(n_classes))  # a permutation
    assert torch.equal(flipped, flip_labels(y, n_classes, seed))
    assert torch.equal(flipped[:n_classes], flipped[n_classes : 2 * n_classes])


def test_flip_labels_depends_on_the_seed() -> None:
    y = torch.arange(10)
    assert len({tuple(flip_labels(y, 10, s).tolist()) for s in range(5)}) > 1


def test_flip_labels_refuses_bad_labels() -> None:
    with pytest.raises(AttackOptionError, match=r"\[0, 3\)"):
        flip_labels(torch.tensor([0, 3]), 3, 0)
    with pytest.raises(AttackOptionError, match="at least 2 classes"):
        flip_labels(torch.tensor([0]), 1, 0)


def test_registry_kinds() -> None:
    assert {"sign_flip", "gaussian_noise", "scaled", "free_rider", "alie", "label_flip"} <= set(ATTACKS)
    assert is_data_attack("label_flip") and not is_data_attack("alie")
    with pytest.raises(UnknownAttackError, match="known: alie"):
        is_data_attack("backdoor")


def test_apply_attack_refuses_data_attacks_and_unknown_names() -> None:
    with pytest.raises(AttackOptionError, match="flip_labels"):
        _run("label_flip")
    with pytest.raises(UnknownAttackError, match="unknown attack 'nope'"):
        _run("nope")


def test_rebase_carries_the_old_deltas_onto_the_new_model() -> None:
    old = {"w": torch.tensor([1.0, 1.0, 1.0]), "n": torch.tensor(2)}
    new = {"w": torch.tensor([0.0, 2.0, 5.0]), "n": torch.tensor(7)}
    out = rebase(PEERS, old, new)
    # deltas (1,-1,0) and (3,1,0) from old, added to new.
    assert [u["w"].tolist() for u in out] == [[1.0, 1.0, 5.0], [3.0, 3.0, 5.0]]
    assert all(u["n"].item() == 7 and u["w"].dtype == torch.float32 for u in out)
    assert all(u["w"] is not p["w"] and u["n"] is not new["n"] for u, p in zip(out, PEERS))
    assert PEERS[0]["w"].tolist() == [2.0, 0.0, 1.0]  # inputs untouched


def test_rebase_onto_the_same_model_is_the_identity_and_keeps_alie_statistics() -> None:
    same = rebase(PEERS, PREVIOUS, PREVIOUS)
    assert all(torch.equal(a["w"], b["w"]) for a, b in zip(same, PEERS))
    new = {"w": torch.tensor([-3.0, 4.0, 0.5]), "n": torch.tensor(2)}
    # ALIE on rebased peers forges new + (the old deltas' mean - z * std).
    forged = apply_attack("alie", HONEST, previous=new, peers=rebase(PEERS, PREVIOUS, new), seed=0, z=1.5)
    assert forged["w"].tolist() == [-3.0 + 2 - 1.5, 4.0 - 1.5, 0.5]
    assert rebase([], PREVIOUS, new) == []


def test_rebase_refuses_mismatched_layouts() -> None:
    with pytest.raises(ShapeMismatchError):
        rebase(PEERS, PREVIOUS, {"w": torch.zeros(4), "n": torch.tensor(2)})
    with pytest.raises(NonFiniteError) as caught:
        rebase([PEERS[0], {"w": torch.tensor([float("inf"), 0.0, 0.0]), "n": torch.tensor(3)}], PREVIOUS, PREVIOUS)
    assert caught.value.index == 1


def test_only_alie_needs_peers() -> None:
    assert needs_peers("alie")
    assert not any(needs_peers(name) for name in ("sign_flip", "gaussian_noise", "scaled", "free_rider"))
    with pytest.raises(UnknownAttackError):
        needs_peers("nope")


def test_stale_noise_is_the_global_model_plus_seeded_noise_of_a_fraction_of_the_honest_step() -> None:
    previous, honest = {"w": torch.zeros(1000)}, {"w": torch.full((1000,), 2.0)}
    a = apply_attack("stale_noise", honest, previous=previous, peers=[], seed=5, fraction=0.05)
    b = apply_attack("stale_noise", honest, previous=previous, peers=[], seed=5, fraction=0.05)
    c = apply_attack("stale_noise", honest, previous=previous, peers=[], seed=6, fraction=0.05)
    assert torch.equal(a["w"], b["w"]) and not torch.equal(a["w"], c["w"])
    assert float(torch.linalg.vector_norm(a["w"])) == pytest.approx(0.05 * 2.0 * 1000**0.5, rel=1e-5)
    assert abs(float(torch.nn.functional.cosine_similarity(a["w"], honest["w"], dim=0))) < 0.15


def test_extrapolated_replays_the_previous_merged_step() -> None:
    prior = {"w": torch.tensor([0.0, 1.0, 1.0]), "n": torch.tensor(1)}
    assert _run("extrapolated", prior=prior)["w"].tolist() == [2.0, 1.0, 1.0]
    assert _run("extrapolated", prior=prior, c=0.5)["w"].tolist() == [1.5, 1.0, 1.0]
    # epoch 0: no previous step, the copy is the global model itself
    assert torch.equal(_run("extrapolated", prior=PREVIOUS)["w"], PREVIOUS["w"])
    assert needs_prior("extrapolated") and not needs_prior("sign_flip")
    with pytest.raises(AttackOptionError, match="'extrapolated' needs prior="):
        _run("extrapolated")
    with pytest.raises(AttackOptionError, match="c must be > 0"):
        _run("extrapolated", prior=prior, c=0.0)
    # attacks that do not read prior ignore it
    assert _run("sign_flip", prior=prior)["w"].tolist() == [0.0, 2.0, 0.5]


def test_replay_own_commits_its_own_previous_step_again() -> None:
    own = {"w": torch.tensor([1.5, 2.0, 0.0]), "n": torch.tensor(5)}  # previous + (0.5, 1, -1)
    replayed = _run("replay_own", own=own)
    assert replayed["w"].tolist() == [1.5, 2.0, 0.0] and replayed["n"].item() == 3  # the honest integer buffer
    disguised = _run("replay_own", own=own, cosine=0.9)["w"] - PREVIOUS["w"]
    step = own["w"] - PREVIOUS["w"]
    assert float(torch.nn.functional.cosine_similarity(disguised, step, dim=0)) == pytest.approx(0.9, abs=1e-5)
    assert needs_own("replay_own") and not needs_own("extrapolated") and not needs_own("alie")
    with pytest.raises(AttackOptionError, match="'replay_own' needs own="):
        _run("replay_own")
    # attacks that do not read own ignore it
    assert _run("sign_flip", own=own)["w"].tolist() == [0.0, 2.0, 0.5]


def test_a_lying_validator_reports_plus_one_for_itself_and_minus_one_for_the_rest() -> None:
    assert forge_report("lying", np.array([0.1, 0.2, 0.3]), 1).tolist() == [-1.0, 1.0, -1.0]
    assert forge_report("lying", np.array([0.1, 0.2]), None).tolist() == [-1.0, -1.0]


def test_a_boosting_validator_puts_its_whole_vote_on_the_other_node_it_values_most() -> None:
    """Its own update (the highest score) is not the one boosted; a tie goes to the first."""
    assert forge_report("boosting", np.array([0.1, 0.9, 0.3, -0.2]), 1).tolist() == [-1.0, 1.0, 1.0, -1.0]
    assert forge_report("boosting", np.array([0.2, 0.2]), None).tolist() == [1.0, -1.0]
    assert forge_report("boosting", np.array([0.5]), 0).tolist() == [1.0]
    with pytest.raises(UnknownAttackError, match="unknown report attack 'flattering'"):
        forge_report("flattering", np.zeros(2), 0)


def test_alie_z_is_settable() -> None:
    assert _run("alie", z=3.0)["w"].tolist() == [1.0 + 2 - 3.0, 1.0 - 3.0, 1.0]


def test_a_disguised_copy_has_exactly_the_asked_cosine_with_what_it_copies() -> None:
    previous = {"w": torch.zeros(5000, dtype=torch.float64)}
    prior = {"w": -torch.linspace(0.1, 1.0, 5000, dtype=torch.float64)}  # previous merged step: +linspace
    step = flatten(previous) - flatten(prior)
    forged = apply_attack("extrapolated", previous, previous=previous, peers=[], seed=7, prior=prior, cosine=0.9)
    cos = float(torch.nn.functional.cosine_similarity(forged["w"], step, dim=0))
    assert cos == pytest.approx(0.9, abs=1e-9)
    assert float(forged["w"] @ step) == pytest.approx(float(step @ step), rel=1e-9)  # the copy is all there
    again = apply_attack("extrapolated", previous, previous=previous, peers=[], seed=7, prior=prior, cosine=0.9)
    other = apply_attack("extrapolated", previous, previous=previous, peers=[], seed=8, prior=prior, cosine=0.9)
    assert torch.equal(forged["w"], again["w"]) and not torch.equal(forged["w"], other["w"])
    # cosine 1 is the plain copy; epoch 0 (no previous step) stays a free rider
    assert torch.equal(apply_attack("extrapolated", previous, previous=previous, peers=[], seed=7, prior=prior)["w"], step)
    assert torch.equal(apply_attack("extrapolated", previous, previous=previous, peers=[], seed=7, prior=previous,
                                    cosine=0.5)["w"], previous["w"])


def test_alie_with_z_0_is_a_stale_copy_of_the_peers_mean_and_can_be_disguised() -> None:
    assert _run("alie", z=0.0)["w"].tolist() == [3.0, 1.0, 1.0]  # previous + mean (2, 0, 0)
    forged = _run("alie", z=0.0, cosine=0.5)["w"] - PREVIOUS["w"]
    assert float(torch.nn.functional.cosine_similarity(forged.double(), torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64),
                                                       dim=0)) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("cosine", [0.0, -0.5, 1.5, float("nan")])
def test_a_disguise_cosine_outside_0_1_is_refused(cosine) -> None:
    prior = {"w": torch.tensor([0.0, 1.0, 1.0]), "n": torch.tensor(1)}
    with pytest.raises(AttackOptionError, match="cosine must be in"):
        _run("extrapolated", prior=prior, cosine=cosine)
    with pytest.raises(AttackOptionError, match="cosine must be in"):
        _run("alie", cosine=cosine)
