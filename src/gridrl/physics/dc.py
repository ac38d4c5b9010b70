"""DC power flow, MATPOWER conventions (makeBdc / dcpf), batched and pure JAX.

Branch susceptance b = 1/(x·tap) (r ignored); a phase shifter is the injection Pfinj = −b·shift
at its from end and −Pfinj at its to end; bus shunt conductance is a load Gs; the reference bus
keeps its case angle and takes all the imbalance. Branch flows are MW at the from end (the to end
carries the opposite), as pandapower's `rundcpp` reports them.

How it is fast: the reference bus (and any bus the base topology leaves de-energised) is
decoupled from the nodal matrix, B_g = M·B·M + (I − M), so B_g is nonsingular and its inverse X
is computed once per grid (`dc_model`). With all branches in, angles are one matrix product
P·X for the whole batch. A sample with at most K branches out differs from B_g by a rank-K
update, and each island those outages create is grounded at one bus (another rank ≤ K update);
both are solved with the Woodbury identity in O(n·K) per sample (`max_outages=K`). Islands are
found from a spanning tree of the base topology (`islands.islands_after_outages`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.cases.grid import Grid
from gridrl.physics import islands
from gridrl.physics.lowrank import woodbury_correct

Array = jnp.ndarray


@struct.dataclass
class DCModel:
    """Everything about a grid's DC physics that does not change with injections or outages."""

    f_bus: Array  # int [n_branch]
    t_bus: Array  # int [n_branch]
    gen_bus: Array  # int [n_gen]
    gen_status: Array  # bool [n_gen]
    gs: Array  # bus shunt conductance, MW at 1 p.u. [n_bus]
    ref: Array  # int []: the reference bus
    va_ref: Array  # the reference bus's case angle, rad []
    susceptance: Array  # b = 1/(x·tap) p.u., zero for branches out in the base [n_branch]
    shift_injection: Array  # Pfinj = −b·shift p.u. at the from end [n_branch]
    usable: Array  # bool [n_branch]: branches in service in the base topology
    energized: Array  # bool [n_bus]: buses energised in the base topology
    inverse: Array  # X = B_g⁻¹ [n_bus, n_bus], symmetric
    shift_angles: Array  # X·Pbusinj of the base topology [n_bus]
    tree: islands.RefTree  # spanning tree of the base topology, for islands after outages
    base_mva: float = struct.field(pytree_node=False, default=100.0)

    @property
    def n_bus(self) -> int:
        return int(self.inverse.shape[-1])

    @property
    def n_branch(self) -> int:
        return int(self.f_bus.shape[-1])


@struct.dataclass
class DCResult:
    """A DC power flow's outcome; every field has the batch dimensions of the inputs."""

    va: Array  # bus voltage angle, rad [..., n_bus]; 0 at de-energised buses
    pf: Array  # branch flow at the from end, MW [..., n_branch]; 0 for branches out or dead
    p_bus: Array  # net injection (generation − load − shunt), MW [..., n_bus]; 0 when dead
    pg_slack: Array  # total generation at the reference bus after balancing, MW [...]
    energized: Array  # bool [..., n_bus]
    lost_load_mw: Array  # positive load at de-energised buses, MW [...]


def grounded_matrix(model: DCModel, usable: Array, energized: Array) -> Array:
    """Dense B_g = M·B·M + (I − M) [..., n_bus, n_bus] for a branch mask, where M marks the
    energised buses other than the reference bus (so B_g is nonsingular)."""
    n = model.n_bus
    b = jnp.where(usable, model.susceptance, 0.0)
    f, t = model.f_bus, model.t_bus
    nodal = (
        jnp.zeros((*b.shape[:-1], n, n), b.dtype)
        .at[..., f, f]
        .add(b)
        .at[..., t, t]
        .add(b)
        .at[..., f, t]
        .add(-b)
        .at[..., t, f]
        .add(-b)
    )
    keep = energized & (jnp.arange(n) != model.ref)
    grounded = nodal * keep[..., :, None] * keep[..., None, :]
    return grounded + jnp.eye(n, dtype=b.dtype) * ~keep[..., None, :]


def _bus_shift_injection(model: DCModel, usable: Array) -> Array:
    """Pbusinj [..., n_bus] p.u.: the phase shifters' equivalent bus injections."""
    shift = jnp.where(usable, model.shift_injection, 0.0)
    zeros = jnp.zeros((*shift.shape[:-1], model.n_bus), shift.dtype)
    return zeros.at[..., model.f_bus].add(shift).at[..., model.t_bus].add(-shift)


def dc_model(grid: Grid) -> DCModel:
    """Precompute the DC model of `grid` (jittable; the O(n³) inverse is done here, once)."""
    _check_grid(grid)
    return _build_model(grid)


@jax.jit
def _build_model(grid: Grid) -> DCModel:
    dtype = jnp.asarray(grid.pd).dtype
    f_bus, t_bus = jnp.asarray(grid.f_bus), jnp.asarray(grid.t_bus)
    ref = islands.reference_bus(grid)
    usable = islands.usable_branches(grid)
    energized = islands.reachable(f_bus, t_bus, usable, ref, grid.n_bus)
    ratio = jnp.asarray(grid.x, dtype) * jnp.asarray(grid.tap, dtype)
    susceptance = jnp.where(usable & (ratio != 0), 1.0 / jnp.where(ratio != 0, ratio, 1.0), 0.0)
    partial_model = DCModel(
        f_bus=f_bus,
        t_bus=t_bus,
        gen_bus=jnp.asarray(grid.gen_bus),
        gen_status=jnp.asarray(grid.gen_status, bool),
        gs=jnp.asarray(grid.gs, dtype),
        ref=ref,
        va_ref=jnp.asarray(grid.va, dtype)[ref],
        susceptance=susceptance,
        shift_injection=-susceptance * jnp.asarray(grid.shift, dtype),
        usable=usable,
        energized=energized,
        inverse=jnp.zeros((grid.n_bus, grid.n_bus), dtype),
        shift_angles=jnp.zeros(grid.n_bus, dtype),
        tree=islands.ref_tree(f_bus, t_bus, usable, ref, grid.n_bus),
        base_mva=float(grid.base_mva),
    )
    inverse = jnp.linalg.inv(grounded_matrix(partial_model, usable, energized))
    inverse = 0.5 * (inverse + inverse.T)
    shift_angles = inverse @ _bus_shift_injection(partial_model, usable)
    return partial_model.replace(inverse=inverse, shift_angles=shift_angles)


def _check_grid(grid: Grid) -> None:
    """Reject, before tracing, a grid whose in-service branch has zero reactance."""
    try:
        x, tap, status = (np.asarray(a) for a in (grid.x, grid.tap, grid.branch_status))
    except jax.errors.TracerArrayConversionError:
        return  # inside a trace: the caller checked the concrete grid
    bad = np.flatnonzero(status & (x * tap == 0))
    if bad.size:
        raise ValueError(
            f"grid {grid.name!r}: in-service branch {int(bad[0])} has zero reactance (x·tap = 0); "
            "the DC model needs x ≠ 0"
        )


def _batch_shape(name: str, value, size: int, what: str) -> tuple[int, ...]:
    shape = jnp.shape(value)
    if len(shape) == 0 or shape[-1] != size:
        raise ValueError(
            f"dc_power_flow: {name} must have shape [..., {size}] ({what}), got {shape}"
        )
    return tuple(shape[:-1])


def dc_power_flow(
    grid: Grid,
    line_status: Array | None = None,
    *,
    pd: Array | None = None,
    pg: Array | None = None,
    model: DCModel | None = None,
    max_outages: int | None = None,
) -> DCResult:
    """Solve DC power flows of `grid`, batched over the leading dimensions of the inputs.

    line_status: bool [..., n_branch], AND-ed with the grid's branch status (None: the case's
    topology). pd: MW [..., n_bus] (None: the case's loads). pg: MW [..., n_gen] (None: the
    case's setpoints); only in-service generators on energised buses produce. The batch
    dimensions of the three broadcast together. model: `dc_model(grid)`, to reuse across calls.

    max_outages: None solves every topology with a dense factorisation per sample (general,
    O(n³) each). An int K uses the fast path: each sample may have up to K base branches out;
    if any sample of the batch has more, the whole batch falls back to the dense path, so the
    answer is always exact (only slower).
    """
    n_bus, n_gen, n_branch = grid.n_bus, grid.n_gen, grid.n_branch
    shapes = []
    if line_status is not None:
        shapes.append(_batch_shape("line_status", line_status, n_branch, "one flag per branch"))
    if pd is not None:
        shapes.append(_batch_shape("pd", pd, n_bus, "MW per bus"))
    if pg is not None:
        shapes.append(_batch_shape("pg", pg, n_gen, "MW per generator"))
    try:
        batch = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"dc_power_flow: batch dimensions {shapes} do not broadcast") from None
    if max_outages is not None and (not isinstance(max_outages, int) or max_outages < 1):
        raise ValueError(f"dc_power_flow: max_outages must be a positive int, got {max_outages!r}")
    dtype = jnp.asarray(grid.pd).dtype
    pd = jnp.broadcast_to(jnp.asarray(grid.pd if pd is None else pd, dtype), (*batch, n_bus))
    pg = jnp.broadcast_to(jnp.asarray(grid.pg if pg is None else pg, dtype), (*batch, n_gen))
    if line_status is not None:
        line_status = jnp.broadcast_to(jnp.asarray(line_status, bool), (*batch, n_branch))
    if model is None:
        model = dc_model(grid)
    return _solve(model, line_status, pd, pg, max_outages)


@partial(jax.jit, static_argnums=(4,))
def _solve(model: DCModel, line_status, pd: Array, pg: Array, max_outages: int | None) -> DCResult:
    injection = _injection(model, pd, pg)
    if line_status is None:
        angles = injection @ model.inverse - model.shift_angles
        energized = jnp.broadcast_to(model.energized, injection.shape)
        return _result(model, angles, energized, model.usable, pd, injection)
    usable = model.usable & line_status
    if max_outages is None:
        return _dense(model, usable, pd, injection)
    outages = jnp.sum(model.usable & ~usable, axis=-1)
    return jax.lax.cond(
        jnp.any(outages > max_outages),
        lambda: _dense(model, usable, pd, injection),
        lambda: _low_rank(model, usable, pd, injection, max_outages),
    )


def _injection(model: DCModel, pd: Array, pg: Array) -> Array:
    """Net bus injection before shifters, p.u. [..., n_bus]: in-service generation − load − Gs."""
    generation = jnp.zeros_like(pd).at[..., model.gen_bus].add(jnp.where(model.gen_status, pg, 0.0))
    return (generation - pd - model.gs) / model.base_mva


def _dense(model: DCModel, usable: Array, pd: Array, injection: Array) -> DCResult:
    """Any topology: energised buses by propagation, then one dense solve per sample."""
    energized = islands.reachable(model.f_bus, model.t_bus, usable, model.ref, model.n_bus)
    rhs = injection - _bus_shift_injection(model, usable)
    matrix = grounded_matrix(model, usable, energized)
    angles = jnp.linalg.solve(matrix, rhs[..., None])[..., 0]
    return _result(model, angles, energized, usable, pd, injection)


def _low_rank(model: DCModel, usable: Array, pd: Array, injection: Array, k: int) -> DCResult:
    """At most k base branches out per sample: Woodbury update of the shared inverse."""
    outaged = model.usable & ~usable
    flags, branch = jax.lax.top_k(outaged.astype(jnp.int32), k)
    valid = flags > 0
    energized, cut_bus, islanded = islands.islands_after_outages(
        model.tree, model.energized, model.f_bus, model.t_bus, usable, branch, valid
    )
    # update columns as two-point vectors w_p·e_p + w_q·e_q; the island groundings come first,
    # so that every leading minor of the capacitance matrix is nonsingular (no pivoting needed)
    keep = (model.energized & (jnp.arange(model.n_bus) != model.ref)).astype(injection.dtype)
    f, t = model.f_bus[branch], model.t_bus[branch]
    ground = jnp.maximum(cut_bus, 0)
    p = jnp.concatenate([ground, f], axis=-1)
    q = jnp.concatenate([ground, t], axis=-1)
    w_p = jnp.concatenate([jnp.ones_like(valid, injection.dtype), keep[f]], axis=-1)
    w_q = jnp.concatenate([jnp.zeros_like(valid, injection.dtype), -keep[t]], axis=-1)
    coeff = jnp.concatenate(
        [islanded.astype(injection.dtype), -jnp.where(valid, model.susceptance[branch], 0.0)],
        axis=-1,
    )
    inverse_u = w_p[..., None] * model.inverse[p] + w_q[..., None] * model.inverse[q]  # [..., m, n]
    # gram[i, j] = U_iᵀ X U_j, read off the rows X U_j at the two points of column i
    m = 2 * k
    at_p = jnp.take_along_axis(inverse_u, jnp.broadcast_to(p[..., None, :], (*p.shape, m)), -1)
    at_q = jnp.take_along_axis(inverse_u, jnp.broadcast_to(q[..., None, :], (*q.shape, m)), -1)
    gram = w_p[..., None, :] * at_p + w_q[..., None, :] * at_q
    # the base angles, minus the injections of shifters now out of service
    removed_shift = jnp.where(valid, model.shift_injection[branch], 0.0)
    base = injection @ model.inverse - model.shift_angles
    base = base + jnp.einsum("...k,...ki->...i", removed_shift, inverse_u[..., k:, :])
    u_base = w_p * jnp.take_along_axis(base, p, -1) + w_q * jnp.take_along_axis(base, q, -1)
    angles = woodbury_correct(base, inverse_u.swapaxes(-1, -2), gram, u_base, coeff, pivoting=False)
    return _result(model, angles, energized, usable, pd, injection)


def _result(
    model: DCModel, angles: Array, energized: Array, usable: Array, pd: Array, injection: Array
) -> DCResult:
    """Mask dead buses and branches, add the reference angle, balance at the reference bus."""
    live = energized & (jnp.arange(model.n_bus) != model.ref)
    va = jnp.where(energized, jnp.where(live, angles, 0.0) + model.va_ref, 0.0)
    carries = usable & energized[..., model.f_bus]
    difference = va[..., model.f_bus] - va[..., model.t_bus]
    flow = model.susceptance * difference + model.shift_injection
    pf = jnp.where(carries, flow, 0.0) * model.base_mva
    p_bus = jnp.where(live, injection, 0.0) * model.base_mva
    p_ref = -jnp.sum(p_bus, axis=-1)
    p_bus = jnp.where(jnp.arange(model.n_bus) == model.ref, p_ref[..., None], p_bus)
    pg_slack = p_ref + pd[..., model.ref] + model.gs[model.ref]
    lost = jnp.sum(jnp.where(energized, 0.0, jnp.maximum(pd, 0.0)), axis=-1)
    return DCResult(
        va=va, pf=pf, p_bus=p_bus, pg_slack=pg_slack, energized=energized, lost_load_mw=lost
    )
