"""Deterministic partition of a network into regions of connected buses.

Recursive spectral bisection: each part is split in two at the median of the Fiedler vector of
its susceptance-weighted graph Laplacian (Fiedler 1973; Pothen, Simon & Liou 1990), choosing
along that order the near-even cut that keeps both halves connected and crosses the least
electrical coupling, so each region is a connected, tightly coupled piece of the network.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph

from gridrl.cases.grid import Grid
from gridrl.cases.ppc import CaseError


def coupling_matrix(grid: Grid) -> np.ndarray:
    """Symmetric bus-by-bus weights: summed |1 / (x·tap)| of the in-service branches between
    two buses, p.u. (the DC susceptance, MATPOWER convention)."""
    status = np.asarray(grid.branch_status, bool)
    f_bus = np.asarray(grid.f_bus)[status]
    t_bus = np.asarray(grid.t_bus)[status]
    susceptance = np.abs(1.0 / (np.asarray(grid.x) * np.asarray(grid.tap)))[status]
    weights = np.zeros((grid.n_bus, grid.n_bus))
    np.add.at(weights, (f_bus, t_bus), susceptance)
    np.add.at(weights, (t_bus, f_bus), susceptance)
    np.fill_diagonal(weights, 0.0)
    return weights


def _components(weights: np.ndarray, buses: np.ndarray) -> list[np.ndarray]:
    """Connected components of the subgraph on `buses`, largest first."""
    sub = scipy.sparse.csr_array(weights[np.ix_(buses, buses)] > 0)
    count, labels = scipy.sparse.csgraph.connected_components(sub, directed=False)
    parts = [buses[labels == label] for label in range(count)]
    return sorted(parts, key=lambda part: (-len(part), part[0]))


def _fiedler_vector(weights: np.ndarray) -> np.ndarray:
    laplacian = np.diag(weights.sum(axis=1)) - weights
    _, vectors = scipy.linalg.eigh(laplacian, subset_by_index=[1, 1])
    vector = vectors[:, 0]
    # an eigenvector's sign is arbitrary: fix it so the first bus is on the non-positive side
    return -vector if vector[0] > 0 else vector


def _reconnect(weights: np.ndarray, halves: list[np.ndarray]) -> list[np.ndarray]:
    """Move every piece cut off from its half into the other half (which it must touch, the
    parent being connected), until both halves are connected."""
    halves = [np.sort(half) for half in halves]
    moved = True
    while moved:
        moved = False
        for index, half in enumerate(halves):
            pieces = _components(weights, half)
            if len(pieces) > 1:
                halves[index] = np.setdiff1d(half, pieces[-1])
                halves[1 - index] = np.union1d(halves[1 - index], pieces[-1])
                moved = True
    return halves


def _bisect(weights: np.ndarray, buses: np.ndarray, balance: float) -> list[np.ndarray]:
    """Split `buses` along its Fiedler order: among the cuts that leave both halves connected
    and within `balance` of an even split, the one of least ratio cut (cut weight times
    1/|A| + 1/|B|); failing any, the median cut, reconnected."""
    order = buses[np.argsort(_fiedler_vector(weights[np.ix_(buses, buses)]), kind="stable")]
    n = len(buses)
    best: tuple[float, int] | None = None
    for size in range(int(np.ceil(n * (0.5 - balance))), int(n * (0.5 + balance)) + 1):
        first, second = order[:size], order[size:]
        if len(_components(weights, first)) == 1 and len(_components(weights, second)) == 1:
            ratio_cut = weights[np.ix_(first, second)].sum() * (1 / size + 1 / (n - size))
            best = min(best or (ratio_cut, size), (ratio_cut, size))
    if best is None:
        return _reconnect(weights, [order[: n // 2], order[n // 2 :]])
    return [np.sort(order[: best[1]]), np.sort(order[best[1] :])]


def spectral_partition(grid: Grid, levels: int = 2, balance: float = 0.05) -> np.ndarray:
    """Region index per bus (0 .. 2**levels - 1) by recursive spectral bisection; each split
    leaves halves of (0.5 ± balance) of their parent where a connected such split exists.

    The network must be connected. Regions are numbered in order of their lowest bus index.
    """
    weights = coupling_matrix(grid)
    everything = np.arange(grid.n_bus)
    if len(_components(weights, everything)) > 1:
        raise CaseError(f"grid {grid.name!r} is not connected; partition each island apart")
    parts = [everything]
    for _ in range(levels):
        parts = [half for part in parts for half in _bisect(weights, part, balance)]
    region = np.empty(grid.n_bus, np.int32)
    for number, part in enumerate(sorted(parts, key=lambda part: part.min())):
        region[part] = number
    return region
