"""DC power flow, MATPOWER conventions (makeBdc / dcpf), batched and pure JAX.

Branch susceptance b = 1/(x·tap) (r ignored); a phase shifter is the injection Pfinj = −b·shift
at its from end and −Pfinj at its to end; bus shunt conductance is a load Gs; the reference bus
keeps its case angle and takes all the imbalance (with several buses of type REF, the first
is the reference and the others count as PV buses). Branch flows are MW at the from end (the to end
carries the opposite), as pandapower's `rundcpp` reports them.

How it is fast: the reference bus (and any bus the base topology leaves de-energised) is
decoupled from the nodal matrix, B_g = M·B·M + (I − M), so B_g is nonsingular and its inverse X
is computed once per grid (`dc_model`). With all branches in, angles are one matrix product
P·X for the whole batch, and flows another. A sample with at most K branches out differs from
B_g by a rank-K update, solved with the Woodbury identity (`max_outages=K`): one product with
X·Aᵀ (the angle difference across each branch per unit injection) for the whole batch gives
the base flows, whose K values at the removed branches give compensating injections at their
2K ends; a second product turns the corrected injections into the flows. Islands
are found from a spanning tree of the base topology (`islands.islands_after_outages`); each
island keeps one of its removed branches in the matrix (so it stays nonsingular) and has its
injections zeroed (so that branch carries nothing).

De-energised buses (cut off from the reference bus, even with generators: gridrl has no island
frequency control) get angle 0, their load counts as lost, their generators produce nothing, and
branches touching them carry 0.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.cases.grid import Grid
from gridrl.physics import islands
from gridrl.physics.inputs import batch_shape
from gridrl.physics.lowrank import solve_unpivoted

Array = jnp.ndarray


@struct.dataclass
class DCModel:
    """Everything about a grid's DC physics that does not change with injections or outages."""

    f_bus: Array  # int [n_branch]
    t_bus: Array  # int [n_branch]
    gen_matrix: Array  # [n_gen, n_bus]: 1 at each in-service generator's bus
    gs: Array  # bus shunt conductance, MW at 1 p.u. [n_bus]
    ref: Array  # int []: the reference bus
    va_ref: Array  # the reference bus's case angle, rad []
    susceptance: Array  # b = 1/(x·tap) p.u., zero for branches out in the base [n_branch]
    shift_injection: Array  # Pfinj = −b·shift p.u. at the from end [n_branch]
    usable: Array  # bool [n_branch]: branches in service in the base topology
    energized: Array  # bool [n_bus]: buses energised in the base topology
    flow_matrix: Array  # (b·Cft)ᵀ [n_bus, n_branch]: from-end flows per unit of angle
    inverse: Array  # X = B_g⁻¹ [n_bus, n_bus], symmetric
    # A: branch-bus incidence, e_f − e_t per branch with the grounded buses' entries zeroed
    branch_angles: Array  # X·Aᵀ [n_bus, n_branch]: angle difference across each branch per p.u.
    branch_gram: Array  # A·X·Aᵀ [n_branch, n_branch], symmetric
    shift_buses: Array  # Pbusinj of the base topology, p.u. [n_bus]
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
        gen_matrix=jax.nn.one_hot(grid.gen_bus, grid.n_bus, dtype=dtype)
        * jnp.asarray(grid.gen_status, bool)[:, None],
        gs=jnp.asarray(grid.gs, dtype),
        ref=ref,
        va_ref=jnp.asarray(grid.va, dtype)[ref],
        susceptance=susceptance,
        shift_injection=-susceptance * jnp.asarray(grid.shift, dtype),
        usable=usable,
        energized=energized,
        flow_matrix=(
            susceptance[:, None]
            * (
                jax.nn.one_hot(f_bus, grid.n_bus, dtype=dtype)
                - jax.nn.one_hot(t_bus, grid.n_bus, dtype=dtype)
            )
        ).T,
        inverse=jnp.zeros((grid.n_bus, grid.n_bus), dtype),
        branch_angles=jnp.zeros((grid.n_bus, grid.n_branch), dtype),
        branch_gram=jnp.zeros((grid.n_branch, grid.n_branch), dtype),
        shift_buses=jnp.zeros(grid.n_bus, dtype),
        tree=islands.ref_tree(f_bus, t_bus, usable, ref, grid.n_bus),
        base_mva=float(grid.base_mva),
    )
    inverse = jnp.linalg.inv(grounded_matrix(partial_model, usable, energized))
    inverse = 0.5 * (inverse + inverse.T)
    shift_buses = _bus_shift_injection(partial_model, usable)
    # incidence columns gathered, not multiplied: sparse, and exact in any precision
    keep = (energized & (jnp.arange(grid.n_bus) != ref)).astype(dtype)
    branch_angles = inverse[:, f_bus] * keep[f_bus] - inverse[:, t_bus] * keep[t_bus]
    gram = branch_angles[f_bus] * keep[f_bus, None] - branch_angles[t_bus] * keep[t_bus, None]
    return partial_model.replace(
        inverse=inverse,
        shift_buses=shift_buses,
        branch_angles=branch_angles,
        branch_gram=0.5 * (gram + gram.T),
    )


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


# the fast path's outage budget per sample by default: N-1 to N-3 studies stay on it
DEFAULT_MAX_OUTAGES = 3


def dc_power_flow(
    grid: Grid,
    line_status: Array | None = None,
    *,
    pd: Array | None = None,
    pg: Array | None = None,
    model: DCModel | None = None,
    max_outages: int | None = DEFAULT_MAX_OUTAGES,
    fallback: bool = True,
) -> DCResult:
    """Solve DC power flows of `grid`, batched over the leading dimensions of the inputs.

    line_status: bool [..., n_branch], AND-ed with the grid's branch status (None: the case's
    topology). pd: MW [..., n_bus] (None: the case's loads). pg: MW [..., n_gen] (None: the
    case's setpoints); only in-service generators on energised buses produce. The batch
    dimensions of the three broadcast together. model: `dc_model(grid)`, to reuse across calls.

    max_outages: an int K (default 3) uses the fast path: each sample may have up to K base
    branches out, solved by a rank-K update of the base factorisation; if any sample of the
    batch has more, the whole batch falls back to the dense path, so the answer is always exact
    (only slower). None always takes the dense path (a factorisation per sample, O(n³) each).
    fallback=False drops that check, for callers that bound the number of outages themselves
    (the environment ends an episode when more than K branches are out): a sample beyond K is
    then solved with only its first K outages, and no batch-level branch remains, which keeps
    the function cheap to compile and to vmap.
    """
    n_bus, n_gen, n_branch = grid.n_bus, grid.n_gen, grid.n_branch
    shapes = []
    if line_status is not None:
        shapes.append(
            batch_shape("dc_power_flow", "line_status", line_status, n_branch, "a flag per branch")
        )
    if pd is not None:
        shapes.append(batch_shape("dc_power_flow", "pd", pd, n_bus, "MW per bus"))
    if pg is not None:
        shapes.append(batch_shape("dc_power_flow", "pg", pg, n_gen, "MW per generator"))
    try:
        batch = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"dc_power_flow: batch dimensions {shapes} do not broadcast") from None
    if max_outages is not None and (not isinstance(max_outages, int) or max_outages < 1):
        raise ValueError(f"dc_power_flow: max_outages must be a positive int, got {max_outages!r}")
    dtype = jnp.asarray(grid.pd).dtype
    pd = jnp.broadcast_to(jnp.asarray(grid.pd if pd is None else pd, dtype), (*batch, n_bus))
    # pg keeps its own batch shape: an unbatched dispatch is turned into injections once, not
    # once per sample (the injection then broadcasts against the batched loads)
    pg = jnp.asarray(grid.pg if pg is None else pg, dtype)
    if line_status is not None:
        line_status = jnp.broadcast_to(jnp.asarray(line_status, bool), (*batch, n_branch))
    if model is None:
        model = dc_model(grid)
    return _solve(model, line_status, pd, pg, max_outages, fallback)


@partial(jax.jit, static_argnums=(4, 5))
def _solve(
    model: DCModel, line_status, pd: Array, pg: Array, max_outages: int | None, fallback: bool
) -> DCResult:
    if line_status is None:
        return _base_flow(model, _injection(model, pd, pg), model.energized, model.usable, pd)
    usable = model.usable & line_status
    if max_outages is None:
        return _dense(model, usable, pd, pg)
    branch = first_true(model.usable & ~usable, max_outages + 1)
    if not fallback:
        return low_rank_flow(model, _outages(model, usable, branch[..., :-1]), pd, pg)
    # the fast path runs outside the conditional (XLA's CPU backend runs the ops inside a
    # conditional's branches on one thread); the dense one replaces it only when needed
    fast = low_rank_flow(model, _outages(model, usable, branch[..., :-1]), pd, pg)
    return jax.lax.cond(
        jnp.any(branch[..., -1] < model.n_branch),  # some sample has more than max_outages out
        lambda: _dense(model, usable, pd, pg),
        lambda: fast,
    )


def first_true(mask: Array, k: int) -> Array:
    """int [..., k]: the indices of the first k True entries of `mask` [..., n], padded with n.
    (k passes of a min-reduction: much faster on CPU than top_k or a sort.)"""
    n = mask.shape[-1]
    ids = jnp.arange(n, dtype=jnp.int32)
    found = []
    last = jnp.full(mask.shape[:-1], -1, jnp.int32)
    for _ in range(k):
        last = jnp.min(jnp.where(mask & (ids > last[..., None]), ids, n), axis=-1)
        found.append(last)
    return jnp.stack(found, axis=-1)


def _injection(model: DCModel, pd: Array, pg: Array) -> Array:
    """Net bus injection before shifters, p.u. [..., n_bus]: in-service generation − load − Gs."""
    return (pg @ model.gen_matrix - pd - model.gs) / model.base_mva


def _dense(model: DCModel, usable: Array, pd: Array, pg: Array) -> DCResult:
    """Any topology: energised buses by propagation, then one dense solve per sample."""
    injection = _injection(model, pd, pg)
    energized = islands.reachable(model.f_bus, model.t_bus, usable, model.ref, model.n_bus)
    rhs = injection - _bus_shift_injection(model, usable)
    matrix = grounded_matrix(model, usable, energized)
    angles = jnp.linalg.solve(matrix, rhs[..., None])[..., 0]
    return _result(model, angles, energized, usable, pd, injection)


@struct.dataclass
class Outages:
    """A topology as at most K base branches out, in the form the low-rank solver uses."""

    usable: Array  # bool [..., n_branch]: branches in service
    branch: Array  # int [..., K]: the base branches out (0 in unused slots)
    valid: Array  # bool [..., K]: used slots
    coeff: Array  # [..., K]: −b of each removed branch; 0 in unused slots and for the one
    #   removed branch per island that stays in the matrix (islands_after_outages)
    energized: Array  # bool [..., n_bus]


def outages(model: DCModel, line_status: Array, max_outages: int) -> Outages:
    """The topology `line_status` [..., n_branch] for `low_rank_flow`, for callers that bound the
    number of branches out themselves: beyond `max_outages`, only the first ones count (with
    `max_outages=0`, none: the base topology, which costs nothing to solve beyond the base)."""
    usable = model.usable & line_status
    if max_outages == 0:
        empty = jnp.zeros((*usable.shape[:-1], 0), jnp.int32)
        energized = jnp.broadcast_to(model.energized, (*usable.shape[:-1], model.n_bus))
        coeff = empty.astype(model.susceptance.dtype)
        return Outages(usable, branch=empty, valid=empty > 0, coeff=coeff, energized=energized)
    return _outages(model, usable, first_true(model.usable & ~usable, max_outages))


def _outages(model: DCModel, usable: Array, branch: Array) -> Outages:
    valid = branch < model.n_branch
    branch = jnp.where(valid, branch, 0)
    energized, reconnect = islands.islands_after_outages(
        model.tree, model.energized, model.f_bus, model.t_bus, branch, valid
    )
    coeff = -jnp.where(valid & ~reconnect, model.susceptance[branch], 0.0)
    return Outages(usable=usable, branch=branch, valid=valid, coeff=coeff, energized=energized)


def capacitance_weights(model: DCModel, out: Outages, rhs: Array) -> Array:
    """Woodbury weights [..., K, C] for right-hand sides `rhs` [..., K, C] given in branch space
    (A·X·r at the removed branches): the update's columns are the removed branches' rows of A,
    so its gram A·X·Aᵀ is a gather from the model. Any order of the columns has nonsingular
    leading minors (each subset of removals leaves the grid connected, one branch per island
    staying in), so the K×K system is solved without pivoting, unrolled and batch-last."""
    gram = model.branch_gram[out.branch[..., :, None], out.branch[..., None, :]]
    k = out.branch.shape[-1]
    capacitance = jnp.eye(k, dtype=gram.dtype) + out.coeff[..., :, None] * gram
    matrix = jnp.moveaxis(capacitance, (-2, -1), (0, 1))[..., None]  # [K, K, ..., 1]
    scaled = jnp.moveaxis(out.coeff[..., None] * rhs, -2, 0)  # [K, ..., C]
    return jnp.moveaxis(solve_unpivoted(matrix, scaled), 0, -2)


def low_rank_flow(model: DCModel, out: Outages, pd: Array, pg: Array) -> DCResult:
    """The power flow of the topology `out` (loads `pd`, dispatch `pg` in MW, as in
    `dc_power_flow`) by a rank-K update of the base, worked as compensating injections: the
    base topology's flows (one product with X·Aᵀ for the whole batch) give the Woodbury weights,
    which are injections at the removed branches' ends; a second product with X·Aᵀ turns the
    corrected injections into the flows. Both products are dense GEMMs over the batch; per
    sample only K values are gathered and 2K scattered (gathering rows of X·Aᵀ per sample
    instead moves 2K·n_branch values and is several times slower on CPU).

    Each removed branch is a column of Aᵀ with coefficient −b (one per island stays in, with
    coefficient 0 and the island's injections zeroed, so it carries nothing). Removing a phase
    shifter also removes its injections: they are put back at the removed branches' live ends.
    """
    injection = _injection(model, pd, pg)
    dtype = injection.dtype
    n_bus = model.n_bus
    energized = out.energized
    if out.branch.shape[-1] == 0:  # the base topology
        return _base_flow(model, injection, energized, out.usable, pd)
    p, q = model.f_bus[out.branch], model.t_bus[out.branch]
    live = energized.astype(dtype)
    shift = jnp.where(out.valid, model.shift_injection[out.branch], 0.0)
    ends = jnp.concatenate([p, q], -1)  # [..., 2K]
    restored = jnp.concatenate(
        [shift * jnp.take_along_axis(live, p, -1), -shift * jnp.take_along_axis(live, q, -1)], -1
    )
    rhs = jnp.where(energized, injection - model.shift_buses, 0.0)
    across = rhs @ model.branch_angles  # [..., n_branch] angle differences, base topology
    at_removed = model.branch_angles[ends[..., :, None], out.branch[..., None, :]]  # [..., 2K, K]
    u_base = jnp.take_along_axis(across, out.branch, -1) + jnp.sum(
        restored[..., :, None] * at_removed, -2
    )
    weights = capacitance_weights(model, out, u_base[..., None])[..., 0]
    # the shifters' restored injections and the Woodbury correction, at the removed branches' ends
    keep = (model.energized & (jnp.arange(n_bus) != model.ref)).astype(dtype)
    factor = restored - jnp.concatenate([keep[p] * weights, -keep[q] * weights], -1)
    corrected = rhs + _scatter_add(ends, factor, n_bus)
    flow = model.susceptance * (corrected @ model.branch_angles) + model.shift_injection
    # angles only for callers that read them (XLA drops this where they are unused)
    angles = corrected @ model.inverse
    return _result(model, angles, energized, out.usable, pd, injection, flow)


def _base_flow(
    model: DCModel, injection: Array, energized: Array, usable: Array, pd: Array
) -> DCResult:
    """The base topology's flows and angles: two independent products over the batch, with
    X·Aᵀ and with X (flows from the angles instead wait for the first product, and a dense
    product with the incidence is ~30 % slower on CPU)."""
    rhs = jnp.where(energized, injection - model.shift_buses, 0.0)
    flow = model.susceptance * (rhs @ model.branch_angles) + model.shift_injection
    return _result(model, rhs @ model.inverse, energized, usable, pd, injection, flow)


def _scatter_add(index: Array, values: Array, size: int) -> Array:
    """[..., size]: zeros with `values` [..., m] added at `index` [..., m] (a scatter per sample,
    vmapped: faster on CPU than comparing every index with every position)."""

    def add(i: Array, v: Array) -> Array:
        return jnp.zeros(size, v.dtype).at[i].add(v)

    for _ in range(index.ndim - 1):
        add = jax.vmap(add)
    return add(index, values)


def _result(
    model: DCModel,
    angles: Array,
    energized: Array,
    usable: Array,
    pd: Array,
    injection: Array,
    flow: Array | None = None,
) -> DCResult:
    """Mask dead buses and branches, add the reference angle, balance at the reference bus.
    `flow` (p.u., from end) when the caller has it, else from the angles."""
    live = energized & (jnp.arange(model.n_bus) != model.ref)
    angles = jnp.where(live, angles, 0.0)
    # flows from angles relative to the reference bus: adding its angle first costs float32 digits
    carries = usable & energized[..., model.f_bus]
    if flow is None:
        flow = angles @ model.flow_matrix + model.shift_injection
    pf = jnp.where(carries, flow, 0.0) * model.base_mva
    va = jnp.where(energized, angles + model.va_ref, 0.0)
    p_bus = jnp.where(live, injection, 0.0) * model.base_mva
    p_ref = -jnp.sum(p_bus, axis=-1)
    p_bus = jnp.where(jnp.arange(model.n_bus) == model.ref, p_ref[..., None], p_bus)
    pg_slack = p_ref + pd[..., model.ref] + model.gs[model.ref]
    lost = jnp.sum(jnp.where(energized, 0.0, jnp.maximum(pd, 0.0)), axis=-1)
    return DCResult(
        va=va,
        pf=pf,
        p_bus=p_bus,
        pg_slack=pg_slack,
        energized=jnp.broadcast_to(energized, va.shape),
        lost_load_mw=lost,
    )
