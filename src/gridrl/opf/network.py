"""The DC network matrices of a Grid in numpy / scipy.sparse, as MATPOWER's `makeBdc` builds them.

The OPF layer is numpy + HiGHS by design (it is never jitted), so it keeps its own small sparse
builder rather than pulling dense arrays out of the JAX physics. Elements follow MATPOWER's
`ext2int`: isolated buses (type 4), out-of-service generators and branches, and generators or
branches touching an isolated bus take no part in the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gridrl.cases.grid import BusType, Grid


class OpfInputError(ValueError):
    """A grid the OPF cannot be built for; the message names the field and the element."""


@dataclass(frozen=True)
class DcNetwork:
    """Per-unit DC network: flows `pf = bf @ va + pfinj`, injections `bbus @ va + pbusinj`."""

    incidence: sp.csr_matrix  # [n_branch, n_bus]: +1 at the from bus, -1 at the to bus
    bbus: sp.csr_matrix  # [n_bus, n_bus]
    bf: sp.csr_matrix  # [n_branch, n_bus]; rows of inactive branches are empty
    pbusinj: np.ndarray  # [n_bus], phase-shifter injections
    pfinj: np.ndarray  # [n_branch]
    bus_active: np.ndarray  # bool [n_bus]
    gen_active: np.ndarray  # bool [n_gen]
    branch_active: np.ndarray  # bool [n_branch]


def host_array(grid: Grid, field: str, dtype=np.float64) -> np.ndarray:
    """One Grid field as a 1-D (or 2-D cost) numpy array, rejecting batched grids."""
    array = np.asarray(getattr(grid, field), dtype=dtype)
    single_ndim = {"cost_poly": 2, "cost_pwl": 3}.get(field, 1)
    if array.ndim != single_ndim:
        raise OpfInputError(
            f"grid.{field} has shape {array.shape}; the OPF takes one grid, not a batch"
        )
    return array


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    index = int(np.flatnonzero(bad)[0])
    return f"element {index} is {values[index]!r}"


def dc_network(grid: Grid) -> DcNetwork:
    """MATPOWER's DC model of `grid`: b = 1/(x·tap), phase shifters as injections."""
    bus_type = host_array(grid, "bus_type", np.int64)
    f_bus = host_array(grid, "f_bus", np.int64)
    t_bus = host_array(grid, "t_bus", np.int64)
    x = host_array(grid, "x")
    tap = host_array(grid, "tap")
    shift = host_array(grid, "shift")
    bus_active = bus_type != BusType.ISOLATED
    gen_active = host_array(grid, "gen_status", bool) & bus_active[host_array(grid, "gen_bus", int)]
    branch_active = host_array(grid, "branch_status", bool) & bus_active[f_bus] & bus_active[t_bus]
    for name, values in (("x", x), ("tap", tap), ("shift", shift)):
        bad = branch_active & ~np.isfinite(values)
        if bad.any():
            raise OpfInputError(f"grid.{name} of an in-service branch: {_first_bad(values, bad)}")
    bad = branch_active & ((x == 0) | (tap == 0))
    if bad.any():
        raise OpfInputError(f"grid.x·tap of an in-service branch is zero: {_first_bad(x, bad)}")

    n_bus, n_branch = len(bus_type), len(x)
    b = np.where(branch_active, 1.0 / np.where(branch_active, x * tap, 1.0), 0.0)
    rows = np.r_[np.arange(n_branch), np.arange(n_branch)]
    incidence = sp.csr_matrix(
        (np.r_[np.ones(n_branch), -np.ones(n_branch)], (rows, np.r_[f_bus, t_bus])),
        shape=(n_branch, n_bus),
    )
    bf = sp.csr_matrix(sp.diags(b) @ incidence)
    bf.eliminate_zeros()
    pfinj = -b * shift
    return DcNetwork(
        incidence=incidence,
        bbus=sp.csr_matrix(incidence.T @ bf),
        bf=bf,
        pbusinj=incidence.T @ pfinj,
        pfinj=pfinj,
        bus_active=bus_active,
        gen_active=gen_active,
        branch_active=branch_active,
    )
