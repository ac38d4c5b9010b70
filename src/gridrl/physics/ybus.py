"""Admittance matrices, MATPOWER's makeYbus / makeB conventions (as pandapower's own copies).

A branch is a π model: series admittance ys = 1/(r + jx), total shunt admittance g + jb split
between its ends, and an ideal transformer of complex ratio a = tap·e^{j·shift} at the from end:

    | If |   | (ys + (g+jb)/2)/|a|²   −ys/conj(a)      | | Vf |
    | It | = | −ys/a                  ys + (g+jb)/2    | | Vt |

Bus shunts add (gs + j·bs)/base_mva to the diagonal. Matrices are dense (these grids have at most
a few thousand buses); a leading batch dimension of `line_status` gives a batch of matrices.
"""

from __future__ import annotations

import jax
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
    x = jnp.asarray(grid.x, dtype)
    # real arithmetic then one complex per block: XLA compiles complex division slowly
    on = jnp.asarray(status, dtype) / (r * r + x * x)
    series = jax.lax.complex(on * r, -on * x)
    shunt = jax.lax.complex(jnp.asarray(grid.g, dtype), jnp.asarray(grid.b, dtype)) * (
        jnp.asarray(status, dtype) * charging / 2
    )
    tap = jnp.where(taps, jnp.asarray(grid.tap, dtype), 1.0)
    shift = jnp.asarray(grid.shift, dtype) * shifts
    ratio = jax.lax.complex(tap * jnp.cos(shift), tap * jnp.sin(shift))  # a = tap·e^{j·shift}
    tap_squared = tap * tap
    return (
        (series + shunt) / tap_squared,
        -series * ratio / tap_squared,  # −ys/conj(a) = −ys·a/|a|²
        -series * jnp.conj(ratio) / tap_squared,
        series + shunt,
    )


def assemble(grid: Grid, blocks: tuple[Array, Array, Array, Array], bus_shunt: Array) -> Array:
    """Dense nodal matrix [..., n_bus, n_bus] from branch blocks and a bus diagonal [n_bus]
    (scatter-added: O(n_branch) work per matrix on top of the zeros)."""
    yff, yft, ytf, ytt = blocks
    f, t = jnp.asarray(grid.f_bus), jnp.asarray(grid.t_bus)
    n = grid.n_bus
    matrix = jnp.zeros((*yff.shape[:-1], n, n), yff.dtype).at[..., f, f].add(yff)
    matrix = matrix.at[..., f, t].add(yft).at[..., t, f].add(ytf).at[..., t, t].add(ytt)
    return matrix + jnp.eye(n, dtype=yff.dtype) * bus_shunt


def bus_shunt(grid: Grid) -> Array:
    """(gs + j·bs)/base_mva [n_bus], complex p.u."""
    return (jnp.asarray(grid.gs) + 1j * jnp.asarray(grid.bs)) / grid.base_mva


def make_ybus(grid: Grid, line_status: Array | None = None) -> tuple[Array, Array, Array]:
    """(Ybus [..., n_bus, n_bus], Yf [..., n_branch, n_bus], Yt [..., n_branch, n_bus]), dense
    complex p.u., as MATPOWER's makeYbus: Yf·V and Yt·V are the currents injected into each
    branch at its from and to ends. Branches out of service contribute nothing."""
    blocks = branch_blocks(grid, in_service(grid, line_status))
    yff, yft, ytf, ytt = blocks
    identity = jnp.eye(grid.n_bus, dtype=yff.dtype)
    at_from, at_to = identity[jnp.asarray(grid.f_bus)], identity[jnp.asarray(grid.t_bus)]
    yf = yff[..., None] * at_from + yft[..., None] * at_to
    yt = ytf[..., None] * at_from + ytt[..., None] * at_to
    return assemble(grid, blocks, bus_shunt(grid)), yf, yt


def fast_decoupled_matrices(grid: Grid, line_status: Array | None = None) -> tuple[Array, Array]:
    """(B', B'') [..., n_bus, n_bus] of the XB fast-decoupled method, as MATPOWER's makeB
    (alg=2): B' = −Im Ybus without resistance, line charging, bus shunts and tap ratios;
    B'' = −Im Ybus without phase shifts. Full size: rows of PV and slack buses are kept."""
    status = in_service(grid, line_status)
    b_prime, b_double_prime = fast_decoupled_blocks(grid, status)
    no_shunt = jnp.zeros(grid.n_bus, b_prime[0].dtype)
    return (
        assemble(grid, b_prime, no_shunt),
        assemble(grid, b_double_prime, -bus_shunt(grid).imag),
    )


def fast_decoupled_blocks(grid: Grid, status: Array):
    """The branch blocks (real, −Im y) of B' and B'' [..., n_branch] each, as makeB (alg=2)."""
    b_prime = branch_blocks(grid, status, resistance=False, charging=False, taps=False)
    b_double_prime = branch_blocks(grid, status, shifts=False)
    return tuple(-y.imag for y in b_prime), tuple(-y.imag for y in b_double_prime)
