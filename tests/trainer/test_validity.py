"""The validity checks: an update that replays the previous merged step, or whose step is
one-sided (the "mean +- z * std" family), is exposed; honest ones are not."""

from __future__ import annotations

import pytest
import torch

from trainer.params import ShapeMismatchError
from trainer.attacks import alie, rebase
from trainer.validity import (DEFAULT_COPY_COSINE, DEFAULT_COPY_SINE_RATIO, DEFAULT_SIGN_BALANCE, ValidityError,
                              balance_deviations, copies, copies_previous_step, is_one_sided, one_sided_steps,
                              step_balances, step_cosines, step_sines)

PRIOR = {"w": torch.tensor([0.0, 0.0, 0.0])}
PREVIOUS = {"w": torch.tensor([1.0, 0.0, 0.0])}  # the previous merged step is (1, 0, 0)


def _update(*step: float) -> dict[str, torch.Tensor]:
    return {"w": PREVIOUS["w"] + torch.tensor(step)}


def test_cosines_with_the_previous_merged_step() -> None:
    got = step_cosines([_update(2, 0, 0), _update(0, 1, 0), _update(1, 1, 0), _update(0, 0, 0)], PREVIOUS, PRIOR)
    assert got == pytest.approx([1.0, 0.0, 2**-0.5, 0.0])
    # epoch 0: no previous step, nothing is a copy
    assert step_cosines([_update(1, 0, 0)], PREVIOUS, PREVIOUS) == [0.0]
    assert step_cosines([], PREVIOUS, PRIOR) == []


def test_copies_are_the_updates_at_or_above_the_threshold() -> None:
    # judged on the cosine alone: (1, 0.1, 0) has cosine 0.995
    updates = [_update(0.5, 0, 0), _update(1, 1, 0), _update(-1, 0, 0), _update(1, 0.1, 0)]
    assert copies_previous_step(updates, PREVIOUS, PRIOR, sine_ratio=None) == [True, False, False, True]
    assert copies_previous_step(updates, PREVIOUS, PRIOR, threshold=0.999,
                                sine_ratio=None) == [True, False, False, False]
    assert copies([DEFAULT_COPY_COSINE], sine_ratio=None) == [True]
    assert copies([DEFAULT_COPY_COSINE - 1e-4], sine_ratio=None) == [False]
    assert copies([]) == []


def test_sines_of_the_steps() -> None:
    assert step_sines([1.0, 0.6, 0.0, -0.5]) == pytest.approx([0.0, 0.8, 1.0, 1.0])


def test_a_copy_must_also_lie_far_closer_to_the_line_than_the_epochs_other_steps() -> None:
    """Slow training keeps honest steps within a few degrees of the last merged step (cosine
    0.95-0.99 on two-class tables): aligned like the rest of the epoch, they are fresh work.
    A step on the line (sine 0), or well inside the others' angle, is a copy."""
    honest = [0.96, 0.97, 0.955, 0.975, 0.965]
    assert copies(honest) == [False] * 5
    assert copies(honest, sine_ratio=None) == [True] * 5
    assert copies([*honest, 1.0]) == [False] * 5 + [True]
    # 0.4 of the median of the others' sines: cosine 0.96 has sine 0.28, so the bar is 0.112
    bar = DEFAULT_COPY_SINE_RATIO * 0.28
    assert copies([0.96] * 5 + [(1 - (bar - 1e-3) ** 2) ** 0.5]) == [False] * 5 + [True]
    assert copies([0.96] * 5 + [(1 - (bar + 1e-3) ** 2) ** 0.5]) == [False] * 6
    # on digits honest steps point elsewhere (cosine < 0.92): any step past 0.95 stands out
    assert copies([0.3, 0.5, -0.2, 0.7, 0.96]) == [False] * 4 + [True]


def test_a_step_judged_alone_is_judged_by_its_cosine() -> None:
    assert copies([0.96]) == [True] and copies([0.9]) == [False]
    assert copies([0.999, 0.96]) == [True, False]  # each is judged against the other


@pytest.mark.parametrize("threshold", [0.0, 1.5, -0.2])
def test_a_threshold_outside_0_1_is_refused(threshold) -> None:
    with pytest.raises(ValidityError, match="threshold must be in"):
        copies_previous_step([_update(1, 0, 0)], PREVIOUS, PRIOR, threshold=threshold)


def test_a_negative_sine_ratio_is_refused() -> None:
    with pytest.raises(ValidityError, match="sine_ratio must be >= 0"):
        copies_previous_step([_update(1, 0, 0)], PREVIOUS, PRIOR, sine_ratio=-0.1)


def test_malformed_updates_are_refused() -> None:
    with pytest.raises(ShapeMismatchError):
        step_cosines([{"w": torch.zeros(2)}], PREVIOUS, PRIOR)
    with pytest.raises(ShapeMismatchError):
        step_cosines([_update(1, 0, 0)], PREVIOUS, {"w": torch.zeros(4)})


def test_sign_balances_of_the_steps() -> None:
    got = step_balances([_update(1, -1, 0), _update(1, 1, 1), _update(-2, -1, 1), _update(0, 0, 0)], PREVIOUS)
    assert got == pytest.approx([0.0, 1.0, -0.5, 0.0])
    assert step_balances([], PREVIOUS) == []


def test_balance_deviations_are_taken_from_the_median_balance() -> None:
    # balances 0.2, 1, -0.6, 0 (median 0.1); and 0.2, 1/3, 1 (median 1/3)
    updates = [_update(1, -1, 0.5), _update(1, 1, 1), _update(-1, -1, 0.5), _update(0, 0, 0)]
    assert balance_deviations(updates, PREVIOUS) == pytest.approx([0.1, 0.9, 0.7, 0.1])
    assert balance_deviations(updates[:1], PREVIOUS) == [0.0]
    assert balance_deviations([], PREVIOUS) == []
    assert balance_deviations([_update(1, -1, 0.5), _update(1, -1, 1), _update(1, 1, 1)], PREVIOUS) == pytest.approx(
        [2 / 15, 0.0, 2 / 3])


def test_two_updates_are_not_judged_by_their_median() -> None:
    """The median of two is their mean, equally far from both: an honest step would fall with
    a one-sided one, so with fewer than three updates nothing is one-sided."""
    honest, forged = _update(1, -1, 0.1), _update(1, 1, 1)
    assert balance_deviations([honest, forged], PREVIOUS) == [0.0, 0.0]
    assert one_sided_steps([honest, forged], PREVIOUS) == [False, False]
    assert one_sided_steps([honest, _update(-1, 1, 0.2), forged], PREVIOUS) == [False, False, True]


def test_one_sided_steps_are_those_at_or_above_the_threshold_either_way() -> None:
    updates = [_update(1, -1, 0.5), _update(1, 1, 1), _update(-1, -1, 0.5), _update(0, 0, 0)]
    assert one_sided_steps(updates, PREVIOUS) == [False, True, True, False]
    assert one_sided_steps(updates, PREVIOUS, threshold=0.05) == [True, True, True, True]
    assert one_sided_steps(updates, PREVIOUS, threshold=0.8) == [False, True, False, False]
    assert is_one_sided(DEFAULT_SIGN_BALANCE) and not is_one_sided(DEFAULT_SIGN_BALANCE - 1e-4)


def test_a_shared_sign_bias_of_honest_steps_is_not_one_sided() -> None:
    """Steps that all lean the same way (inputs and model can give them one) are judged
    against each other, not against 0."""
    updates = [_update(1, 1, -0.5), _update(1, 1, -0.4), _update(1, 1, -0.6), _update(1, 1, -0.3)]
    assert min(step_balances(updates, PREVIOUS)) > 0.3
    assert one_sided_steps(updates, PREVIOUS) == [False] * 4


def test_a_mean_minus_z_std_step_is_one_sided_and_noisy_steps_are_not() -> None:
    """ALIE built from peers' steps that move coordinates both ways is one-sided: the
    coordinate-wise std is >= 0 everywhere; the peers' own steps are balanced."""
    gen = torch.Generator().manual_seed(0)
    previous = {"w": torch.randn(2000, generator=gen)}
    peers = [{"w": previous["w"] + 0.1 * torch.randn(2000, generator=gen)} for _ in range(6)]
    forged = alie(peers[0], previous=previous, peers=rebase(peers, previous, previous), seed=0, z=1.0)
    balances = step_balances([*peers, forged], previous)
    assert max(abs(b) for b in balances[:-1]) < 0.1 and balances[-1] < -0.5
    assert one_sided_steps([*peers, forged], previous) == [False] * 6 + [True]
    assert balance_deviations([*peers, forged], previous)[-1] > 0.5


@pytest.mark.parametrize("threshold", [0.0, 2.5, -0.2])
def test_a_sign_balance_threshold_outside_0_2_is_refused(threshold) -> None:
    with pytest.raises(ValidityError, match="threshold must be in"):
        one_sided_steps([_update(1, 0, 0)], PREVIOUS, threshold=threshold)
    with pytest.raises(ValidityError, match=r"threshold must be in \(0, 2\]"):
        is_one_sided(0.5, threshold)


def test_malformed_updates_are_refused_by_the_sign_balance() -> None:
    with pytest.raises(ShapeMismatchError):
        step_balances([{"w": torch.zeros(2)}], PREVIOUS)
    with pytest.raises(ShapeMismatchError):
        one_sided_steps([_update(1, 0, 0), {"w": torch.zeros(4)}], PREVIOUS)
