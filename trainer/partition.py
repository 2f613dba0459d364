"""How a labelled pool is dealt out to the nodes of a simulated swarm.

A partitioner maps labels ``y`` (length ``m``) to ``n`` disjoint index arrays.  Three kinds
of heterogeneity, the ones federated-learning benchmarks use:

- ``iid``: a seeded shuffle cut into ``n`` nearly equal parts; every node sees the same
  label distribution.
- ``dirichlet`` (label skew): for every class ``c`` draw ``p_c ~ Dir(alpha * 1_n)`` and give
  node ``k`` the fraction ``p_c[k]`` of the class-``c`` samples.  Small ``alpha`` (0.1-0.5)
  leaves each node with a few dominant classes; ``alpha -> inf`` tends to IID.
- ``quantity`` (size skew): draw node shares ``q ~ Dir(alpha * 1_n)``; node ``k`` gets
  ``min_size + floor(q[k] * (m - n * min_size))`` samples of a seeded shuffle (the last
  node takes the rounding rest): label mix is IID, data volume is not.

A label-skew draw that leaves some node with fewer than ``min_size`` samples is rejected
and the generator draws again (the usual "minimum size" rule of non-IID benchmarks), so
every node can train and validate; the quantity partition meets the minimum by
construction, since redrawing a Dirichlet over sizes until all of them are large would
mostly undo the skew that was asked for.  The draws come from one ``numpy.random.Generator`` seeded
once, so the whole sequence of attempts, and the result, is a function of the seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["PARTITIONS", "PartitionError", "partition_indices", "register_partition"]

Partitioner = Callable[[np.ndarray, int, float, int, np.random.Generator], list[np.ndarray]]
PARTITIONS: dict[str, Partitioner] = {}


class PartitionError(ValueError):
    """A partition was asked for that cannot be made (unknown kind, bad argument, or no
    draw within the attempt budget gives every node its minimum number of samples)."""


def register_partition(name: str) -> Callable[[Partitioner], Partitioner]:
    """Register ``partitioner(y, n_nodes, alpha, min_size, rng) -> index arrays`` as ``name``.

    A partitioner may ignore ``min_size``: :func:`partition_indices` redraws any result
    that misses it.
    """

    def decorate(partitioner: Partitioner) -> Partitioner:
        PARTITIONS[name] = partitioner
        return partitioner

    return decorate


@register_partition("iid")
def _iid(y: np.ndarray, n_nodes: int, alpha: float, min_size: int,
         rng: np.random.Generator) -> list[np.ndarray]:
    return np.array_split(rng.permutation(len(y)), n_nodes)


@register_partition("dirichlet")
def _dirichlet(y: np.ndarray, n_nodes: int, alpha: float, min_size: int,
         rng: np.random.Generator) -> list[np.ndarray]:
    parts: list[list[np.ndarray]] = [[] for _ in range(n_nodes)]
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        shares = rng.dirichlet(np.full(n_nodes, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for node, chunk in enumerate(np.split(members, cuts)):
            parts[node].append(chunk)
    return [np.sort(np.concatenate(chunks)) for chunks in parts]


@register_partition("quantity")
def _quantity(y: np.ndarray, n_nodes: int, alpha: float, min_size: int,
         rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(len(y))
    spare = len(y) - n_nodes * min_size
    sizes = min_size + np.floor(rng.dirichlet(np.full(n_nodes, alpha)) * spare).astype(int)
    cuts = np.cumsum(sizes)[:-1]
    return [np.sort(part) for part in np.split(order, cuts)]


def partition_indices(y: np.ndarray, n_nodes: int, *, method: str = "dirichlet", alpha: float = 0.5,
                      min_size: int = 1, seed: int = 0, max_attempts: int = 1000) -> list[np.ndarray]:
    """Split ``range(len(y))`` into ``n_nodes`` disjoint sorted index arrays.

    Every node is guaranteed at least ``min_size`` indices: a draw that misses this is
    redrawn from the same seeded generator, up to ``max_attempts`` times, after which
    :class:`PartitionError` says which constraint could not be met.
    """
    if method not in PARTITIONS:
        raise PartitionError(f"unknown partition {method!r}; known partitions: {', '.join(sorted(PARTITIONS))}")
    if n_nodes < 1:
        raise PartitionError(f"n_nodes must be >= 1, got {n_nodes}")
    if not alpha > 0:
        raise PartitionError(f"alpha must be > 0, got {alpha}")
    if n_nodes * min_size > len(y):
        raise PartitionError(f"{len(y)} samples cannot give {n_nodes} nodes {min_size} samples each")
    rng = np.random.default_rng(seed)
    for _ in range(max_attempts):
        parts = PARTITIONS[method](np.asarray(y), n_nodes, alpha, min_size, rng)
        if min(len(part) for part in parts) >= min_size:
            return parts
    raise PartitionError(f"{method} partition (alpha={alpha}) of {len(y)} samples gave some node fewer "
                         f"than {min_size} samples in {max_attempts} draws; raise alpha or lower n_nodes")
