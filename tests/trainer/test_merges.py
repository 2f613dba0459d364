"""Merge rules: hand-computed cases, properties, determinism, preconditions, bad input."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.merges import (
    MERGES,
    InvalidAnchorError,
    InvalidWeightsError,
    MergeOptionError,
    PreconditionError,
    RobustnessWarning,
    UnknownRuleError,
    merge,
)
from trainer.params import NonFiniteError, ShapeMismatchError

ZERO = {"w": torch.zeros(2, dtype=torch.float64)}


def _ups(*rows: tuple[float, ...]) -> list[dict[str, torch.Tensor]]:
    return [{"w": torch.tensor(row, dtype=torch.float64)} for row in rows]


def _w(rule: str, rows, **kwargs) -> list[float]:
    return merge(rule, _ups(*rows), previous=ZERO, **kwargs)["w"].tolist()


# --- hand-computed cases -----------------------------------------------------------------


def test_mean_hand_case() -> None:
    assert _w("mean", [(1, 2), (3, 4), (5, 12)], weights=[1, 1, 100]) == [3.0, 6.0]


def test_weighted_mean_hand_case() -> None:
    assert _w("weighted_mean", [(1, 2), (3, 4), (5, 12)], weights=[1, 1, 2]) == [3.5, 7.5]


def test_weighted_mean_without_weights_is_mean() -> None:
    assert _w("weighted_mean", [(1, 2), (3, 4), (5, 12)]) == [3.0, 6.0]


def test_median_hand_cases_odd_and_even() -> None:
    assert _w("median", [(1, 9), (3, -4), (100, 0)]) == [3.0, 0.0]
    assert _w("median", [(1, 0), (2, 0), (3, 0), (10, 0)]) == [2.5, 0.0]


def test_trimmed_mean_hand_case() -> None:
    assert _w("trimmed_mean", [(1, 0), (2, 0), (3, 0), (100, -50)], beta=0.25) == [2.5, 0.0]
    assert _w("trimmed_mean", [(1, 5), (2, 5), (3, 5), (4, 5), (-90, 5)], beta=0.2) == [2.0, 5.0]


def test_geometric_median_is_the_median_on_a_line_and_respects_weights() -> None:
    got = _w("geometric_median", [(0, 0), (1, 0), (10, 0)])
    assert got == pytest.approx([1.0, 0.0], abs=1e-5)
    heavy = _w("geometric_median", [(0, 0), (1, 0), (10, 0)], weights=[1, 1, 3])
    assert heavy == pytest.approx([10.0, 0.0], abs=1e-5)


def test_geometric_median_of_a_square_is_its_centre() -> None:
    got = _w("geometric_median", [(1, 1), (1, 3), (3, 1), (3, 3), (2, 2)])
    assert got == pytest.approx([2.0, 2.0], abs=1e-9)


def test_multi_krum_hand_case() -> None:
    # f=1, n=5: scores sum the 2 nearest squared distances: 5, 2, 2, 5, 9409+9604.
    rows = [(0, 0), (1, 0), (2, 0), (3, 0), (100, 0)]
    assert _w("multi_krum", rows, f=1) == [1.5, 0.0]
    assert _w("multi_krum", rows, f=1, m=1) == [1.0, 0.0]  # tie 1 vs 2: lower index wins
    assert _w("multi_krum", rows, f=1, m=2, weights=[1, 1, 3, 1, 1]) == [1.75, 0.0]


def test_centered_clipping_hand_case() -> None:
    rows = [(1, 0), (1, 0), (10, 0)]
    assert _w("centered_clipping", rows, tau=2.0, iters=1) == pytest.approx([4 / 3, 0.0], abs=1e-15)
    assert _w("centered_clipping", rows, tau=2.0, iters=2) == pytest.approx([16 / 9, 0.0], abs=1e-15)


def test_centered_clipping_default_radius_is_median_norm() -> None:
    # norms 1, 1, 10 -> tau = 1; one round: offsets clipped to 1, 1, 1 -> v = 1.
    assert _w("centered_clipping", [(1, 0), (1, 0), (10, 0)], iters=1) == [1.0, 0.0]


FLTRUST_ROWS = [(1, 0), (2, 2), (-1, 0)]
# trust: 1, cos 45 deg = 1/sqrt2, 0 ; rescaled to norm 1: (1,0), (1/sqrt2, 1/sqrt2).
FLTRUST_EXPECTED = [1.5 / (1 + 1 / math.sqrt(2)), 0.5 / (1 + 1 / math.sqrt(2))]


def test_fltrust_hand_case() -> None:
    assert _w("fltrust", FLTRUST_ROWS, anchor=0) == pytest.approx(FLTRUST_EXPECTED, abs=1e-15)


def test_fltrust_median_hand_case() -> None:
    # median delta (1, 0), median norm 1: same reference as anchoring at update 0.
    assert _w("fltrust_median", FLTRUST_ROWS) == pytest.approx(FLTRUST_EXPECTED, abs=1e-15)


def test_fltrust_median_counts_trusted_updates_by_sample_weight() -> None:
    # trust 1, 1/sqrt2, 0 as above, now times weights 3, 1, 1; the target norm is the weighted
    # lower median of the trusted norms 1 (weight 3) and 2 sqrt2 (weight 1): 1.
    got = _w("fltrust_median", FLTRUST_ROWS, weights=[3, 1, 1])
    assert got == pytest.approx([3.5 / (3 + 1 / math.sqrt(2)), 0.5 / (3 + 1 / math.sqrt(2))], abs=1e-15)


def test_fltrust_median_step_length_ignores_untrusted_updates() -> None:
    """A reversed or huge update gets trust 0 and no say in the step's length either."""
    honest = [(1.0, 0.0), (2.0, 0.2), (3.0, -0.2)]
    clean = torch.tensor(_w("fltrust_median", honest))
    for rogue in [(-50.0, 0.0), (-0.001, 0.0)]:
        attacked = torch.tensor(_w("fltrust_median", [*honest, rogue, rogue]))
        assert float(torch.linalg.vector_norm(attacked)) == pytest.approx(float(torch.linalg.vector_norm(clean)))


def test_weighted_lower_median_hand_cases() -> None:
    from trainer.merges import _weighted_lower_median

    values = torch.tensor([[3.0], [1.0], [2.0], [10.0]], dtype=torch.float64)
    assert _weighted_lower_median(values, torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64)).item() == 2.0
    assert _weighted_lower_median(values, torch.tensor([1.0, 1.0, 1.0, 5.0], dtype=torch.float64)).item() == 10.0
    # a subset weighing exactly half reaches it (lower median), whatever the summation order
    assert _weighted_lower_median(values, torch.tensor([0.3, 0.1, 0.2, 0.4], dtype=torch.float64)).item() == 3.0


def test_fltrust_follows_a_rogue_anchor_but_fltrust_median_does_not() -> None:
    honest = [(1.0, 0.1), (0.9, -0.1), (1.1, 0.0)]
    rogues = [(-1.0, 0.0), (-1.0, 0.0)]
    rows = honest + rogues
    rogue_led = _w("fltrust", rows, anchor=3)
    assert rogue_led[0] < 0  # the rogue leader's reference wins
    assert _w("fltrust_median", rows, anchor=3)[0] > 0.9


def test_fltrust_gives_free_riders_no_trust_and_keeps_previous_without_trust() -> None:
    assert _w("fltrust", [(2, 0), (0, 0)], anchor=0) == [2.0, 0.0]
    assert _w("fltrust", [(0, 0), (2, 0)], anchor=0) == [0.0, 0.0]
    assert _w("fltrust", [(1, 0), (-1, 0)], anchor=1) == [-1.0, 0.0]


def test_merge_adds_the_delta_to_previous_and_keeps_dtypes() -> None:
    previous = {"w": torch.tensor([1.0, 1.0]), "n": torch.tensor(4)}
    updates = [{"w": torch.tensor([2.0, 3.0]), "n": torch.tensor(5)}, {"w": torch.tensor([4.0, 1.0]), "n": torch.tensor(6)}]
    out = merge("mean", updates, previous=previous)
    assert out["w"].dtype == torch.float32 and out["w"].tolist() == [3.0, 2.0]


def test_integer_buffers_take_the_lower_median() -> None:
    previous = {"w": torch.zeros(1), "num_batches_tracked": torch.tensor(10)}
    counts = [12, 10_000_000, 11, 13]
    updates = [{"w": torch.zeros(1), "num_batches_tracked": torch.tensor(c)} for c in counts]
    out = merge("mean", updates, previous=previous)
    assert out["num_batches_tracked"].item() == 12
    assert out["num_batches_tracked"].dtype == torch.int64


# --- properties ----------------------------------------------------------------------------

vectors = st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=6)


@settings(max_examples=30, deadline=None)
@given(row=vectors, n=st.integers(1, 7))
def test_median_and_trimmed_mean_of_identical_updates_is_that_update(row, n) -> None:
    update = {"w": torch.tensor(row, dtype=torch.float32)}
    previous = {"w": torch.zeros(len(row), dtype=torch.float32)}
    for rule, options in [("median", {}), ("trimmed_mean", {"beta": 0.2}), ("geometric_median", {})]:
        out = merge(rule, [update] * n, previous=previous, **options)
        assert torch.equal(out["w"], update["w"]), rule


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.lists(st.floats(-1e3, 1e3, width=32), min_size=3, max_size=3), min_size=1, max_size=6))
def test_trimmed_mean_with_beta_zero_is_mean(rows) -> None:
    updates = _ups(*rows)
    previous = {"w": torch.zeros(3, dtype=torch.float64)}
    trimmed = merge("trimmed_mean", updates, previous=previous, beta=0.0)["w"]
    plain = merge("mean", updates, previous=previous)["w"]
    assert torch.allclose(trimmed, plain, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("rule", sorted(MERGES))
def test_every_rule_keeps_a_unanimous_update(rule) -> None:
    same = {"w": torch.tensor([0.5, -2.0], dtype=torch.float64)}
    out = merge(rule, [same] * 5, previous=ZERO, anchor=0)
    assert torch.allclose(out["w"], same["w"], atol=1e-12)


# --- determinism ---------------------------------------------------------------------------


def _random_updates(seed: int, n: int = 7) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(seed)
    previous = {"a": torch.randn(33, 17, generator=g), "b": torch.randn(5, generator=g), "n": torch.tensor(3)}
    updates = [
        {"a": previous["a"] + 0.1 * torch.randn(33, 17, generator=g), "b": previous["b"] + torch.randn(5, generator=g), "n": torch.tensor(4 + i)}
        for i in range(n)
    ]
    return previous, updates


def _bytes(sd: dict[str, torch.Tensor]) -> bytes:
    return b"".join(sd[k].numpy().tobytes() for k in sorted(sd))


@pytest.mark.parametrize("rule", sorted(MERGES))
def test_same_inputs_give_bit_identical_outputs_across_thread_counts(rule) -> None:
    previous, updates = _random_updates(1)
    weights = [3, 1, 4, 1, 5, 9, 2]
    first = merge(rule, updates, previous=previous, weights=weights, anchor=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        copies = [{k: v.clone() for k, v in u.items()} for u in updates]
        second = merge(rule, copies, previous={k: v.clone() for k, v in previous.items()}, weights=weights, anchor=2)
    finally:
        torch.set_num_threads(threads)
    assert _bytes(first) == _bytes(second)


def test_merge_does_not_modify_its_inputs() -> None:
    previous, updates = _random_updates(2)
    before = [_bytes(u) for u in updates], _bytes(previous)
    merge("fltrust_median", updates, previous=previous)
    assert ([_bytes(u) for u in updates], _bytes(previous)) == before


# --- preconditions -------------------------------------------------------------------------


def test_median_warns_when_f_reaches_half() -> None:
    with pytest.warns(RobustnessWarning, match="2f < n"):
        merge("median", _ups((1, 0), (2, 0), (3, 0), (4, 0)), previous=ZERO, f=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merge("median", _ups((1, 0), (2, 0), (3, 0), (4, 0), (5, 0)), previous=ZERO, f=2)


def test_trimmed_mean_warns_when_it_trims_fewer_than_f() -> None:
    with pytest.warns(RobustnessWarning, match="raise beta"):
        merge("trimmed_mean", _ups(*[(i, 0) for i in range(8)]), previous=ZERO, beta=0.125, f=2)


def test_trimmed_mean_warns_when_f_reaches_half() -> None:
    with pytest.warns(RobustnessWarning, match="2f < n"):
        merge("trimmed_mean", _ups((1, 0), (2, 0), (3, 0), (4, 0)), previous=ZERO, beta=0.25, f=2)


def test_krum_refuses_n_at_most_2f_plus_2() -> None:
    with pytest.raises(PreconditionError, match=r"n > 2f \+ 2, got n=6 updates with f=2"):
        merge("multi_krum", _ups(*[(i, 0) for i in range(6)]), previous=ZERO, f=2)
    with pytest.raises(PreconditionError, match="n=2"):
        merge("multi_krum", _ups((1, 0), (2, 0)), previous=ZERO)


@pytest.mark.parametrize(
    ("rule", "options", "message"),
    [
        ("trimmed_mean", {"beta": 0.5}, "beta must be in"),
        ("trimmed_mean", {"beta": -0.1}, "beta must be in"),
        ("median", {"f": -1}, "non-negative int"),
        ("multi_krum", {"m": 0}, "m must be an int"),
        ("centered_clipping", {"tau": 0.0}, "tau > 0"),
        ("geometric_median", {"max_iter": 0}, "max_iter >= 1"),
        ("mean", {"beta": 0.1}, "has no option 'beta'; accepted: none"),
        ("median", {"bta": 0.1}, r"accepted: \['f'\]"),
    ],
)
def test_bad_options_are_refused(rule, options, message) -> None:
    with pytest.raises(MergeOptionError, match=message):
        merge(rule, _ups(*[(i, 0) for i in range(5)]), previous=ZERO, **options)


# --- bad input -----------------------------------------------------------------------------


def test_unknown_rule_lists_known_names() -> None:
    with pytest.raises(UnknownRuleError, match="known: .*fltrust_median.*median") as err:
        merge("avg", _ups((1, 0)), previous=ZERO)
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)


def test_bad_update_is_named_before_merging() -> None:
    updates = _ups((1, 0), (2, 0), (3, 0))
    updates[1]["w"][0] = float("nan")
    with pytest.raises(NonFiniteError) as err:
        merge("median", updates, previous=ZERO)
    assert (err.value.index, err.value.key) == (1, "w")
    updates[1] = {"w": torch.zeros(3, dtype=torch.float64)}
    with pytest.raises(ShapeMismatchError, match="update 1"):
        merge("median", updates, previous=ZERO)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1, 2], "got 2 weights for 3 updates"),
        ([1, -1, 2], "weight 1"),
        ([1, float("nan"), 2], "weight 1"),
        ([1, 2, float("inf")], "weight 2"),
        ([0, 0, 0], "all weights are zero"),
    ],
)
def test_bad_weights_are_refused(weights, message) -> None:
    with pytest.raises(InvalidWeightsError, match=message):
        merge("weighted_mean", _ups((1, 0), (2, 0), (3, 0)), previous=ZERO, weights=weights)


@pytest.mark.parametrize("anchor", [3, -1, True, 1.0])
def test_bad_anchor_is_refused(anchor) -> None:
    with pytest.raises(InvalidAnchorError, match="anchor"):
        merge("fltrust", _ups((1, 0), (2, 0), (3, 0)), previous=ZERO, anchor=anchor)


def test_fltrust_needs_an_anchor() -> None:
    with pytest.raises(InvalidAnchorError, match="leader's own update"):
        merge("fltrust", _ups((1, 0), (2, 0)), previous=ZERO)
