"""The copy check: an update that replays the previous merged step is exposed, honest ones are not."""

from __future__ import annotations

import pytest
import torch

from trainer.params import ShapeMismatchError
from trainer.validity import ValidityError, copies_previous_step, is_copy, step_cosines

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
    updates = [_update(0.5, 0, 0), _update(1, 1, 0), _update(-1, 0, 0), _update(1, 0.1, 0)]
    assert copies_previous_step(updates, PREVIOUS, PRIOR) == [True, False, False, True]
    assert copies_previous_step(updates, PREVIOUS, PRIOR, threshold=0.999) == [True, False, False, False]
    assert is_copy(0.95) and not is_copy(0.9499)


@pytest.mark.parametrize("threshold", [0.0, 1.5, -0.2])
def test_a_threshold_outside_0_1_is_refused(threshold) -> None:
    with pytest.raises(ValidityError, match="threshold must be in"):
        copies_previous_step([_update(1, 0, 0)], PREVIOUS, PRIOR, threshold=threshold)


def test_malformed_updates_are_refused() -> None:
    with pytest.raises(ShapeMismatchError):
        step_cosines([{"w": torch.zeros(2)}], PREVIOUS, PRIOR)
    with pytest.raises(ShapeMismatchError):
        step_cosines([_update(1, 0, 0)], PREVIOUS, {"w": torch.zeros(4)})
