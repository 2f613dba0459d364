"""Datasets, partitions and node data files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.data import (DATASETS, DataFileError, UnknownDatasetError, load_dataset, load_node_file,
                          split_swarm, with_label_noise)
from trainer.partition import PartitionError, partition_indices


@pytest.mark.parametrize("name, n_classes, n_features", [
    ("digits", 10, 64), ("breast_cancer", 2, 30), ("wine", 3, 13), ("fraud", 2, 20)])
def test_bundled_datasets_are_standardised_tables(name, n_classes, n_features):
    data = load_dataset(name)
    assert data.X.dtype == torch.float32 and data.y.dtype == torch.int64
    assert data.n_classes == n_classes and data.n_features == n_features
    assert set(data.y.unique().tolist()) == set(range(n_classes))
    assert torch.allclose(data.X.mean(0), torch.zeros(n_features), atol=1e-4)
    varying = data.X.std(0) > 0
    assert torch.allclose(data.X.std(0, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-3)


def test_fraud_is_rare_positive_and_seeded():
    first, again, other = load_dataset("fraud", seed=1), load_dataset("fraud", seed=1), load_dataset("fraud", seed=2)
    assert 0.01 <= first.y.float().mean().item() <= 0.02
    assert torch.equal(first.X, again.X) and torch.equal(first.y, again.y)
    assert not torch.equal(first.X, other.X)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UnknownDatasetError, match="known datasets: breast_cancer, digits"):
        load_dataset("mnist")
    assert "mnist" not in DATASETS


def _covered(split) -> int:
    return sum(len(node.y_train) + len(node.y_val) for node in split.nodes) + len(split.test[1])


@pytest.mark.parametrize("partition", ["iid", "dirichlet", "quantity"])
def test_split_uses_every_sample_once_and_respects_minimums(partition):
    data = load_dataset("digits")
    split = split_swarm(data, 8, partition=partition, alpha=0.3, min_train=12, min_val=3, seed=4)
    assert _covered(split) == len(data)
    rows = torch.cat([split.test[0]] + [torch.cat([n.X_train, n.X_val]) for n in split.nodes])
    assert len(torch.unique(rows, dim=0)) == len(torch.unique(data.X, dim=0))
    assert all(node.n_train >= 12 and len(node.y_val) >= 3 for node in split.nodes)
    assert len(split.test[1]) == 360


def test_split_is_deterministic_per_seed():
    data = load_dataset("wine")
    one, two = split_swarm(data, 4, seed=3), split_swarm(data, 4, seed=3)
    three = split_swarm(data, 4, seed=4)
    assert all(torch.equal(a.X_train, b.X_train) and torch.equal(a.y_val, b.y_val)
               for a, b in zip(one.nodes, two.nodes))
    assert not all(torch.equal(a.y_train, b.y_train) for a, b in zip(one.nodes, three.nodes))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(method=st.sampled_from(["iid", "dirichlet", "quantity"]), n_nodes=st.integers(1, 10),
       alpha=st.floats(0.5, 50.0), seed=st.integers(0, 2**31), n_classes=st.integers(1, 6))
def test_partitions_are_disjoint_covering_and_meet_the_minimum(method, n_nodes, alpha, seed, n_classes):
    y = np.arange(300) % n_classes
    parts = partition_indices(y, n_nodes, method=method, alpha=alpha, min_size=5, seed=seed)
    assert len(parts) == n_nodes and min(len(p) for p in parts) >= 5
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(300))


def test_dirichlet_alpha_controls_label_skew():
    y = np.repeat(np.arange(10), 200)

    def mean_dominant_share(alpha: float) -> float:
        parts = partition_indices(y, 8, method="dirichlet", alpha=alpha, min_size=10, seed=0)
        return float(np.mean([np.bincount(y[p], minlength=10).max() / len(p) for p in parts]))

    assert mean_dominant_share(0.1) > 0.5 > 0.2 > mean_dominant_share(100.0)


def test_quantity_skew_keeps_labels_mixed_but_sizes_unequal():
    y = np.repeat(np.arange(4), 250)
    parts = partition_indices(y, 5, method="quantity", alpha=0.5, min_size=20, seed=1)
    sizes = [len(p) for p in parts]
    assert min(sizes) >= 20 and max(sizes) > 2 * min(sizes) and sum(sizes) == 1000
    big = max(parts, key=len)
    assert np.bincount(y[big], minlength=4).min() > 0.15 * len(big)


def test_impossible_partition_names_the_constraint():
    y = np.zeros(30, dtype=int)
    with pytest.raises(PartitionError, match="cannot give 8 nodes 5 samples"):
        partition_indices(y, 8, min_size=5)
    with pytest.raises(PartitionError, match="unknown partition 'zipf'"):
        partition_indices(y, 2, method="zipf")
    with pytest.raises(PartitionError, match="alpha must be > 0"):
        partition_indices(y, 2, alpha=0)
    with pytest.raises(PartitionError, match="fewer than 14 samples in 5 draws"):
        partition_indices(np.zeros(30, dtype=int), 2, alpha=0.01, min_size=14, seed=0, max_attempts=5)
    with pytest.raises(PartitionError, match="val_fraction must be in"):
        split_swarm(load_dataset("wine"), 2, val_fraction=1.0)


def test_csv_node_file_round_trip(tmp_path):
    path = tmp_path / "node.csv"
    path.write_text("a,label,b\n1.5,0,2\n-3,2,4e-1\n\n0,1,0\n")
    X, y = load_node_file(path, "label")
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(X, torch.tensor([[1.5, 2.0], [-3.0, 0.4], [0.0, 0.0]]))
    assert y.tolist() == [0, 2, 1]


@pytest.mark.parametrize("content, row, column, message", [
    ("a,b\n1,2\n", 1, None, "label column 'label' not in header"),
    ("a,label\n1,0\n2\n", 3, None, "expected 2 cells, found 1"),
    ("a,label\n1,0\nx,1\n", 3, "a", "expected a number, found 'x'"),
    ("a,label\n1,0\nnan,1\n", 3, "a", "expected a finite number"),
    ("a,label\n1,0\n2,1.5\n", 3, "label", "non-negative integer label, found '1.5'"),
    ("a,label\n1,-1\n", 2, "label", "non-negative integer label"),
    ("a,label\n", 2, None, "no data rows"),
    ("", 1, None, "empty file"),
    ("label\n1\n", 1, None, "no feature columns"),
])
def test_malformed_csv_names_file_row_and_column(tmp_path, content, row, column, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataFileError, match=message) as caught:
        load_node_file(path, "label")
    assert (caught.value.row, caught.value.column) == (row, column)
    assert str(path) in str(caught.value)


def test_npz_node_file_round_trip(tmp_path):
    path = tmp_path / "node.npz"
    np.savez(path, features=np.arange(6.0).reshape(3, 2), y=np.array([1, 0, 1]))
    X, y = load_node_file(path, "y")
    assert X.tolist() == [[0, 1], [2, 3], [4, 5]] and y.tolist() == [1, 0, 1]


@pytest.mark.parametrize("arrays, column, message", [
    ({"X": np.zeros((2, 2))}, None, "label array 'y' not in archive keys"),
    ({"X": np.zeros((2, 2)), "Z": np.zeros((2, 2)), "y": np.zeros(2)}, None, "exactly one feature array"),
    ({"X": np.zeros(2), "y": np.zeros(2)}, "X", "2-D numeric feature array"),
    ({"X": np.zeros((2, 2)), "y": np.zeros(3)}, "y", r"labels of shape \(2,\)"),
    ({"X": np.array([[1.0, np.inf], [0, 0]]), "y": np.zeros(2)}, "X", "non-finite feature in sample 0"),
    ({"X": np.zeros((2, 2)), "y": np.array([0, 0.5])}, "y", "sample 1 has"),
    ({"X": np.zeros((2, 2)), "y": np.array(["a", "b"])}, "y", "expected integer labels"),
])
def test_malformed_npz_names_file_and_key(tmp_path, arrays, column, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFileError, match=message) as caught:
        load_node_file(path, "y")
    assert caught.value.column == column


def test_pickled_npz_and_unknown_suffix_are_refused(tmp_path):
    pickled = tmp_path / "evil.npz"
    np.savez(pickled, X=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(DataFileError):
        load_node_file(pickled, "y")
    other = tmp_path / "data.parquet"
    other.write_bytes(b"PAR1")
    with pytest.raises(DataFileError, match="unsupported file type '.parquet'"):
        load_node_file(other, "y")
    with pytest.raises(DataFileError, match="file does not exist"):
        load_node_file(tmp_path / "missing.csv", "y")


def test_label_noise_moves_exactly_its_fraction_to_other_classes_reproducibly():
    y = torch.arange(200) % 10
    noisy = with_label_noise(y, 0.3, 10, seed=4)
    assert int((noisy != y).sum()) == 60
    assert noisy.min() >= 0 and noisy.max() < 10
    torch.testing.assert_close(with_label_noise(y, 0.3, 10, seed=4), noisy, rtol=0, atol=0)
    torch.testing.assert_close(with_label_noise(y, 0.0, 10, seed=4), y, rtol=0, atol=0)
    assert bool((with_label_noise(y, 1.0, 10, seed=4) != y).all())
    torch.testing.assert_close(y, torch.arange(200) % 10, rtol=0, atol=0)  # the input is left alone


@pytest.mark.parametrize("fraction, n_classes, labels, message", [
    (1.5, 10, [0, 1], r"fraction must be in \[0, 1\], got 1.5"),
    (-0.1, 10, [0, 1], r"fraction must be in \[0, 1\], got -0.1"),
    (0.5, 1, [0, 0], "at least 2 classes, got 1"),
    (0.5, 3, [0, 3], r"labels must lie in \[0, 3\), got 0..3"),
])
def test_label_noise_refuses_impossible_requests(fraction, n_classes, labels, message):
    with pytest.raises(ValueError, match=message):
        with_label_noise(torch.tensor(labels), fraction, n_classes, seed=0)
