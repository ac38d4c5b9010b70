"""Admittance matrices, MATPOWER's makeYbus / makeB conventions (as pandapower's own copies).

A branch is a π model: series admittance ys = 1/(r + jx), total shunt admittance g + jb split
between its ends, and an ideal transformer of complex ratio a = tap·e^{j·shift} at the from end:

    | If |   | (ys + (g+jb)/2)/|a|²   −ys/conj(a)      | | Vf |
    | It | = | −ys/a                  ys + (g+jb)/2    | | Vt |

Bus shunts add (gs + j·bs)/base_mva to the diagonal. Matrices are dense (these grids have at most
a few thousand buses); a leading batch dimension of `line_status` gives a batch of matrices.
"""

from __future__ import annotations

import jax.numpy as jnp

from gridrl.cases.grid import Grid

Array = jnp.ndarray


def in_service(grid: Grid, line_status: Array | None = None) -> Array:
    """bool [..., n_branch]: the grid's branch status AND-ed with `line_status`."""
    status = jnp.asarray(grid.branch_status, bool)
    if line_status is not None:
        status = status & jnp.asarray(line_status, bool)
    return status


def branch_blocks(
    grid: Grid,
    status: Array,
    *,
    resistance: bool = True,
    charging: bool = True,
    taps: bool = True,
    shifts: bool = True,
) -> tuple[Array, Array, Array, Array]:
    """(yff, yft, ytf, ytt) [..., n_branch] complex, zero for branches out of service.

    The flags drop parts of the model, as makeB does for the fast-decoupled matrices."""
    dtype = jnp.asarray(grid.r).dtype
    r = jnp.asarray(grid.r, dtype) * resistance
    charge = (jnp.asarray(grid.g, dtype) + 1j * jnp.asarray(grid.b, dtype)) * charging
    ratio = jnp.where(taps, jnp.asarray(grid.tap, dtype), 1.0)
    ratio = ratio * jnp.exp(1j * jnp.asarray(grid.shift, dtype) * shifts)
    series = status / (r + 1j * jnp.asarray(grid.x, dtype))
    shunt = status * charge / 2
    return (
        (series + shunt) / (ratio * jnp.conj(ratio)),
        -series / jnp.conj(ratio),
        -series / ratio,
        series + shunt,
    )


def assemble(grid: Grid, blocks: tuple[Array, Array, Array, Array], bus_shunt: Array) -> Array:
    """Dense nodal matrix [..., n_bus, n_bus] from branch blocks and a diagonal [n_bus]."""
    yff, yft, ytf, ytt = blocks
    f, t = jnp.asarray(grid.f_bus), jnp.asarray(grid.t_bus)
    n = grid.n_bus
    batch = jnp.broadcast_shapes(yff.shape[:-1], bus_shunt.shape[:-1])
    matrix = jnp.zeros((*batch, n, n), yff.dtype)
    matrix = matrix.at[..., f, f].add(yff).at[..., f, t].add(yft)
    matrix = matrix.at[..., t, f].add(ytf).at[..., t, t].add(ytt)
    diagonal = jnp.arange(n)
    return matrix.at[..., diagonal, diagonal].add(bus_shunt)


def bus_shunt(grid: Grid) -> Array:
    """(gs + j·bs)/base_mva [n_bus], complex p.u."""
    return (jnp.asarray(grid.gs) + 1j * jnp.asarray(grid.bs)) / grid.base_mva


def make_ybus(grid: Grid, line_status: Array | None = None) -> tuple[Array, Array, Array]:
    """(Ybus [..., n_bus, n_bus], Yf [..., n_branch, n_bus], Yt [..., n_branch, n_bus]), dense
    complex p.u., as MATPOWER's makeYbus: Yf·V and Yt·V are the currents injected into each
    branch at its from and to ends. Branches out of service contribute nothing."""
    blocks = branch_blocks(grid, in_service(grid, line_status))
    yff, yft, ytf, ytt = blocks
    at_from = jnp.eye(grid.n_bus, dtype=yff.dtype)[jnp.asarray(grid.f_bus)]
    at_to = jnp.eye(grid.n_bus, dtype=yff.dtype)[jnp.asarray(grid.t_bus)]
    yf = yff[..., None] * at_from + yft[..., None] * at_to
    yt = ytf[..., None] * at_from + ytt[..., None] * at_to
    return assemble(grid, blocks, bus_shunt(grid)), yf, yt


def fast_decoupled_matrices(grid: Grid, line_status: Array | None = None) -> tuple[Array, Array]:
    """(B', B'') [..., n_bus, n_bus] of the XB fast-decoupled method, as MATPOWER's makeB
    (alg=2): B' = −Im Ybus without resistance, line charging, bus shunts and tap ratios;
    B'' = −Im Ybus without phase shifts. Full size: rows of PV and slack buses are kept."""
    status = in_service(grid, line_status)
    no_shunt = jnp.zeros(grid.n_bus, bus_shunt(grid).dtype)
    b_prime = assemble(
        grid, branch_blocks(grid, status, resistance=False, charging=False, taps=False), no_shunt
    )
    b_double_prime = assemble(grid, branch_blocks(grid, status, shifts=False), bus_shunt(grid))
    return -b_prime.imag, -b_double_prime.imag
