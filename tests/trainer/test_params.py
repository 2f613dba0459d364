"""Validation of committed updates and the flat parameter view."""

from __future__ import annotations

import pytest
import torch

from trainer.params import (
    DTypeMismatchError,
    KeyMismatchError,
    NonFiniteError,
    ShapeMismatchError,
    UpdateError,
    flatten,
    unflatten,
    validate_updates,
)


def _model() -> dict[str, torch.Tensor]:
    return {
        "w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
        "b": torch.tensor([0.5], dtype=torch.float64),
        "steps": torch.tensor(7),
    }


def test_valid_updates_pass() -> None:
    validate_updates([_model(), _model()], _model())


def test_empty_list_is_refused() -> None:
    with pytest.raises(UpdateError, match="empty") as err:
        validate_updates([], _model())
    assert err.value.index is None


@pytest.mark.parametrize(
    ("mutate", "error", "key", "message"),
    [
        (lambda sd: sd.pop("b"), KeyMismatchError, "b", "missing key 'b'"),
        (lambda sd: sd.__setitem__("extra", torch.zeros(1)), KeyMismatchError, "extra", "unexpected key"),
        (lambda sd: sd.__setitem__("w", torch.zeros(4)), ShapeMismatchError, "w", r"shape \(4,\)"),
        (lambda sd: sd.__setitem__("w", torch.zeros(2, 2, dtype=torch.float16)), DTypeMismatchError, "w", "float16"),
        (lambda sd: sd.__setitem__("steps", torch.tensor(7.0)), DTypeMismatchError, "steps", "dtype"),
        (lambda sd: sd.__setitem__("w", [[1.0, 2.0], [3.0, 4.0]]), DTypeMismatchError, "w", "list"),
        (lambda sd: sd["w"].__setitem__((0, 1), float("nan")), NonFiniteError, "w", "non-finite"),
        (lambda sd: sd["b"].__setitem__(0, float("-inf")), NonFiniteError, "b", "non-finite"),
    ],
)
def test_each_bad_update_gets_its_typed_error_naming_index_and_key(mutate, error, key, message) -> None:
    bad = _model()
    mutate(bad)
    with pytest.raises(error, match=message) as err:
        validate_updates([_model(), _model(), bad], _model())
    assert err.value.index == 2
    assert err.value.key == key
    assert "update 2" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_non_dict_update_is_refused() -> None:
    with pytest.raises(UpdateError, match="update 1 is a list") as err:
        validate_updates([_model(), [1, 2]], _model())  # type: ignore[list-item]
    assert err.value.index == 1


def test_non_finite_reference_is_refused_with_index_none() -> None:
    reference = _model()
    reference["w"][1, 1] = float("inf")
    with pytest.raises(NonFiniteError, match="reference model") as err:
        validate_updates([_model()], reference)
    assert err.value.index is None
    assert err.value.key == "w"


def test_flatten_is_float64_sorted_and_skips_integer_buffers() -> None:
    vec = flatten(_model())
    assert vec.dtype == torch.float64
    assert vec.tolist() == [0.5, 1.0, 2.0, 3.0, 4.0]  # "b" sorts before "w"


def test_unflatten_restores_dtypes_shapes_and_copies_integer_buffers() -> None:
    like = _model()
    out = unflatten(torch.tensor([1.5, 10.0, 20.0, 30.0, 40.0], dtype=torch.float64), like)
    assert out["w"].dtype == torch.float32 and out["w"].shape == (2, 2)
    assert out["w"].tolist() == [[10.0, 20.0], [30.0, 40.0]]
    assert out["b"].dtype == torch.float64 and out["b"].tolist() == [1.5]
    assert out["steps"].item() == 7 and out["steps"].dtype == torch.int64
    out["steps"] += 1
    assert like["steps"].item() == 7  # a copy, not the same tensor


def test_unflatten_roundtrip_is_exact() -> None:
    torch.manual_seed(0)
    sd = {"a": torch.randn(3, 4), "c": torch.randn(5, dtype=torch.float64), "n": torch.tensor(3)}
    back = unflatten(flatten(sd), sd)
    for key in sd:
        assert torch.equal(back[key], sd[key])


def test_unflatten_refuses_wrong_length() -> None:
    with pytest.raises(ShapeMismatchError, match=r"expected \(5,\)"):
        unflatten(torch.zeros(4, dtype=torch.float64), _model())
