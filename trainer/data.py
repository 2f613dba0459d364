"""Datasets a swarm trains on, and a node's own data files.

Every loader returns a :class:`Dataset` with standardised float32 features and int64
labels ``0 .. n_classes - 1``.  Standardisation is ``x' = (x - mean) / std`` per feature
(a constant feature keeps ``std = 1``), computed over the whole bundled set: the
statistics are public facts of a public benchmark, so using them leaks nothing private.

Bundled sets (scikit-learn ships them, nothing is downloaded):

- ``digits``: 1797 8x8 grey images of handwritten digits, 10 classes (64 features);
- ``breast_cancer``: 569 tumours, 2 classes (30 features);
- ``wine``: 178 wines, 3 classes (13 features);
- ``fraud``: a seeded synthetic card-fraud-like table (``make_classification``) with
  about 1.5 % positives, the class imbalance that makes ROC-AUC the metric that matters;
- ``synthetic_images``: 640 seeded 3x32x32 colour images of 10 classes, given as flat
  3072-feature rows (channel-major), for image models such as ``resnet18``.

:func:`split_swarm` first holds out a stratified global test set (reporting only), then
deals the rest to the nodes with a partitioner of :mod:`trainer.partition`, and finally
cuts each node's share into its private train and validation parts.

A node that brings its own data calls :func:`load_node_file` on a CSV (header row,
numeric cells) or an NPZ (one 2-D feature array plus the label array), and any
malformed file raises :class:`DataFileError` naming the file, the row/column and what
was expected.  NPZ files are read with ``allow_pickle=False``: a peer's file is never
unpickled.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainer.partition import PartitionError, partition_indices

__all__ = [
    "DATASETS",
    "DataFileError",
    "Dataset",
    "NodeData",
    "SwarmSplit",
    "UnknownDatasetError",
    "load_dataset",
    "load_node_file",
    "register_dataset",
    "split_swarm",
    "with_label_noise",
]


@dataclass(frozen=True)
class Dataset:
    """A labelled table: ``X`` is ``(n, d)`` float32, ``y`` is ``(n,)`` int64 in ``[0, n_classes)``."""

    X: torch.Tensor
    y: torch.Tensor
    n_classes: int
    name: str

    @property
    def n_features(self) -> int:
        """Number of feature columns (the model's input width)."""
        return int(self.X.shape[1])

    def __len__(self) -> int:
        return int(self.X.shape[0])


@dataclass(frozen=True)
class NodeData:
    """One node's private data: what it trains on and what it validates others' updates on."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def n_train(self) -> int:
        """Training samples: the volume a node claims on chain and the merge weight."""
        return int(self.X_train.shape[0])


@dataclass(frozen=True)
class SwarmSplit:
    """A dataset dealt out to a swarm: per-node data plus a held-out global ``test`` set."""

    nodes: list[NodeData]
    test: tuple[torch.Tensor, torch.Tensor]
    n_classes: int
    n_features: int
    name: str

    def pooled_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All nodes' training data in one table: what a centralised trainer would see."""
        return (torch.cat([node.X_train for node in self.nodes]),
                torch.cat([node.y_train for node in self.nodes]))


class UnknownDatasetError(ValueError):
    """Raised for a dataset name that is not in :data:`DATASETS`; lists the known names."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")


class DataFileError(ValueError):
    """A node's data file is malformed.

    Attributes say where: ``path`` always, ``row`` (1-based line number of the CSV, header
    is line 1) and ``column`` (CSV column name or NPZ key) when the fault has a place.
    """

    def __init__(self, path: str | Path, message: str, *, row: int | None = None,
                 column: str | None = None) -> None:
        self.path = str(path)
        self.row = row
        self.column = column
        where = "".join([f", line {row}" if row is not None else "",
                         f", column {column!r}" if column is not None else ""])
        super().__init__(f"{self.path}{where}: {message}")


Loader = Callable[[int], tuple[np.ndarray, np.ndarray]]
DATASETS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Register ``loader(seed) -> (X, y)`` under ``name`` so ``load_dataset(name)`` finds it.

    The loader returns raw numpy arrays; :func:`load_dataset` standardises and converts
    them, so a new dataset is one function plus this decorator line.
    """

    def decorate(loader: Loader) -> Loader:
        DATASETS[name] = loader
        return loader

    return decorate


@register_dataset("digits")
def _digits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target


@register_dataset("breast_cancer")
def _breast_cancer(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return bunch.data, bunch.target


@register_dataset("wine")
def _wine(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine

    bunch = load_wine()
    return bunch.data, bunch.target


@register_dataset("fraud")
def _fraud(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """6000 transactions, 20 features (6 informative), ~1.5 % fraud, 0.2 % label noise."""
    from sklearn.datasets import make_classification

    return make_classification(n_samples=6000, n_features=20, n_informative=6, n_redundant=4,
                               n_clusters_per_class=2, weights=[0.985], flip_y=0.002,
                               class_sep=1.5, random_state=seed)


@register_dataset("synthetic_images")
def _synthetic_images(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """640 seeded 3x32x32 colour images (CIFAR-10's shape), 10 classes of 64: flat
    ``(640, 3072)`` rows, channel-major.

    Each class has a smooth random prototype (an 8x8x3 pattern upsampled to 32x32); an image
    is its class's prototype shifted by up to 4 pixels (circularly), scaled by a random
    contrast in [0.6, 1.4], plus unit Gaussian pixel noise. Small on purpose: it exists to
    run image models (``resnet18``) through a swarm at realistic model size, not to be hard.
    """
    rng = np.random.default_rng(seed)
    n_classes, per_class, side = 10, 64, 32
    prototypes = np.kron(rng.normal(0.0, 1.0, (n_classes, 3, 8, 8)), np.ones((1, 1, 4, 4)))
    labels = np.repeat(np.arange(n_classes), per_class)
    shifts = rng.integers(-4, 5, size=(len(labels), 2))
    contrast = rng.uniform(0.6, 1.4, size=len(labels))
    images = np.stack([np.roll(prototypes[c], tuple(shift), axis=(1, 2)) for c, shift in zip(labels, shifts)])
    images = contrast[:, None, None, None] * images + rng.normal(0.0, 1.0, images.shape)
    order = rng.permutation(len(labels))
    return images.reshape(len(labels), 3 * side * side)[order], labels[order]


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """Load a registered dataset with standardised features.

    ``seed`` only matters for synthetic sets (``fraud``); bundled sets are fixed.  Raises
    :class:`UnknownDatasetError` for a name not in :data:`DATASETS`.
    """
    from sklearn.preprocessing import StandardScaler

    if name not in DATASETS:
        raise UnknownDatasetError(name)
    X, y = DATASETS[name](seed)
    X = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))
    y = np.asarray(y, dtype=np.int64)
    return Dataset(X=torch.from_numpy(X.astype(np.float32)), y=torch.from_numpy(y),
                   n_classes=int(y.max()) + 1, name=name)


def split_swarm(dataset: Dataset, n_nodes: int, *, partition: str = "dirichlet", alpha: float = 0.5,
                test_fraction: float = 0.2, val_fraction: float = 0.2, min_train: int = 8,
                min_val: int = 2, seed: int = 0) -> SwarmSplit:
    """Deal ``dataset`` out to ``n_nodes`` nodes, reproducibly for a given ``seed``.

    1. A stratified ``test_fraction`` of the samples becomes the global test set.
    2. The rest is partitioned (``partition`` in ``iid``/``dirichlet``/``quantity``, see
       :mod:`trainer.partition`) so that every node can hold ``min_train`` training and
       ``min_val`` validation samples; draws that cannot are redrawn.
    3. Each node's share is shuffled and cut: ``max(min_val, round(val_fraction * n))``
       samples validate, the rest train.

    Raises :class:`~trainer.partition.PartitionError` for impossible requests.
    """
    from sklearn.model_selection import train_test_split

    for label, fraction in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0 < fraction < 1:
            raise PartitionError(f"{label} must be in (0, 1), got {fraction}")
    if min_train < 1 or min_val < 1:
        raise PartitionError(f"min_train and min_val must be >= 1, got {min_train} and {min_val}")
    labels = dataset.y.numpy()
    pool, test = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                  stratify=labels, random_state=seed)
    min_size = min_train + min_val
    while min_size - _val_count(min_size, val_fraction, min_val) < min_train:
        min_size += 1
    parts = partition_indices(labels[pool], n_nodes, method=partition, alpha=alpha,
                              min_size=min_size, seed=seed)
    rng = np.random.default_rng(seed)
    nodes = []
    for part in parts:
        members = pool[rng.permutation(part)]
        n_val = _val_count(len(members), val_fraction, min_val)
        val, train = np.sort(members[:n_val]), np.sort(members[n_val:])
        nodes.append(NodeData(dataset.X[train], dataset.y[train], dataset.X[val], dataset.y[val]))
    test = np.sort(test)
    return SwarmSplit(nodes=nodes, test=(dataset.X[test], dataset.y[test]), n_classes=dataset.n_classes,
                      n_features=dataset.n_features, name=dataset.name)


def with_label_noise(y: torch.Tensor, fraction: float, n_classes: int, seed: int) -> torch.Tensor:
    """``y`` with a seeded ``fraction`` of its labels moved to another class, chosen uniformly
    (symmetric label noise: how a site whose annotators err at random looks to the swarm).

    Raises :class:`ValueError` for a fraction outside [0, 1], fewer than 2 classes, or a label
    outside [0, n_classes)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label noise fraction must be in [0, 1], got {fraction}")
    if n_classes < 2:
        raise ValueError(f"label noise needs at least 2 classes, got {n_classes}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {int(y.min())}..{int(y.max())}")
    rng = np.random.default_rng(seed)
    out = y.numpy().copy()
    hit = rng.permutation(len(out))[:round(fraction * len(out))]
    out[hit] = (out[hit] + rng.integers(1, n_classes, size=len(hit))) % n_classes
    return torch.from_numpy(out)


def _val_count(n: int, val_fraction: float, min_val: int) -> int:
    return max(min_val, round(val_fraction * n))


def load_node_file(path: str | Path, label_column: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a node's own data: ``X`` float32 ``(n, d)`` and ``y`` int64 ``(n,)``.

    CSV: a header row naming the columns, then one sample per line; ``label_column`` names
    the label column, every other column is a feature.  NPZ: ``label_column`` is the key of
    the 1-D label array, and exactly one other key holds the 2-D ``(n, d)`` features.
    Labels must be non-negative integers (every node of a swarm encodes classes alike);
    features must be finite numbers.  Any violation raises :class:`DataFileError` naming
    the file and the offending line/column.  Features are returned as stored (no scaling):
    a swarm agrees on the preprocessing before it trains.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "file does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        X, y = _read_csv(path, label_column)
    elif suffix == ".npz":
        X, y = _read_npz(path, label_column)
    else:
        raise DataFileError(path, f"unsupported file type {suffix!r}; expected .csv or .npz")
    return torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y)


def _read_csv(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise DataFileError(path, "empty file; expected a header row naming the columns", row=1)
        header = [name.strip() for name in header]
        if label_column not in header:
            raise DataFileError(path, f"label column {label_column!r} not in header {header}", row=1)
        if len(header) < 2:
            raise DataFileError(path, "no feature columns besides the label", row=1)
        label_at = header.index(label_column)
        features, labels = [], []
        for line, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(header):
                raise DataFileError(path, f"expected {len(header)} cells, found {len(cells)}", row=line)
            labels.append(_parse_label(path, cells[label_at], line, label_column))
            features.append([_parse_feature(path, cell, line, name)
                             for at, (cell, name) in enumerate(zip(cells, header)) if at != label_at])
    if not labels:
        raise DataFileError(path, "no data rows after the header", row=2)
    return np.asarray(features, dtype=np.float64), np.asarray(labels, dtype=np.int64)


def _parse_feature(path: Path, cell: str, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataFileError(path, f"expected a number, found {cell!r}", row=line, column=column) from None
    if not math.isfinite(value):
        raise DataFileError(path, f"expected a finite number, found {cell!r}", row=line, column=column)
    return value


def _parse_label(path: Path, cell: str, line: int, column: str) -> int:
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        raise DataFileError(path, f"expected a non-negative integer label, found {cell!r}",
                            row=line, column=column)
    return int(value)


def _read_npz(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = sorted(archive.files)
            if label_column not in keys:
                raise DataFileError(path, f"label array {label_column!r} not in archive keys {keys}")
            others = [key for key in keys if key != label_column]
            if len(others) != 1:
                raise DataFileError(path, f"expected exactly one feature array besides {label_column!r}, "
                                          f"found {others}")
            X, y = archive[others[0]], archive[label_column]
    except DataFileError:
        raise
    except (ValueError, OSError) as error:
        raise DataFileError(path, f"not a readable pickle-free .npz archive ({error})") from None
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise DataFileError(path, f"expected a 2-D numeric feature array, found shape {X.shape} "
                                  f"dtype {X.dtype}", column=others[0])
    if y.shape != (X.shape[0],):
        raise DataFileError(path, f"expected labels of shape ({X.shape[0]},) to match the features, "
                                  f"found {y.shape}", column=label_column)
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1)) if X.size else np.array([], dtype=int)
    if bad_rows.size:
        raise DataFileError(path, f"non-finite feature in sample {int(bad_rows[0])}", column=others[0])
    if not np.issubdtype(y.dtype, np.number):
        raise DataFileError(path, f"expected integer labels, found dtype {y.dtype}", column=label_column)
    bad = np.flatnonzero(~np.isfinite(y) | (y < 0) | (y != np.round(y))) if y.size else []
    if len(bad):
        raise DataFileError(path, f"expected non-negative integer labels, sample {int(bad[0])} "
                                  f"has {y[bad[0]]!r}", column=label_column)
    if not len(y):
        raise DataFileError(path, "archive holds no samples", column=label_column)
    return X.astype(np.float64), y.astype(np.int64)
