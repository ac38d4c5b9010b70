"""AC power flow, MATPOWER conventions (runpf), batched and pure JAX: fast-decoupled (XB).

Bus types as MATPOWER's: the reference buses hold their case voltage and angle and take the
imbalance; a bus with an in-service generator is PV (|V| = the generator's setpoint); the rest
are PQ. De-energised buses (cut off from the reference bus) are left out: |V| = 0, no flows on
their branches, their load is lost.

How it is fast. An iteration is two half-steps, Δθ = −B'⁻¹ ΔP/|V| and Δ|V| = −B''⁻¹ ΔQ/|V|, each
followed by the mismatch S = V·conj(Ybus·V) − S_spec. B' and B'' are constant for a topology,
so their inverses are computed once per grid (`ac_model`) and a step is one matrix product for
the whole batch, as is the mismatch (dense Ybus in real block form). A sample with branches out
takes them out of the mismatch branch by branch (exactly, however many) and out of B' and B''
by a low-rank (Woodbury) update of the shared inverses, for up to `max_outages` of them.
With q_limits, B'' (whose PQ rows then differ per sample) is built and inverted per sample:
that path is much slower (XLA's batched inverse on a CPU is), meant for validation and studies.

Precision. In float64 the iteration converges to ~1e-10 p.u. mismatch. In float32 the state
itself is the limit: one ulp of an angle near 0.5 rad moves a strongly connected bus's injection
by ~1e-5 p.u., so the float32 default tolerance is 1e-4 p.u. (0.01 MW on a 100 MVA base), where
voltages agree with a float64 solution to ~1e-6 p.u.

A sample whose iterate stops being finite or leaves 0 < |V| < 10 p.u. is frozen at its last
good iterate and flagged converged=False, as is one whose mismatch has not reached a new low in
8 iterations (it oscillates far from any solution: a batch would otherwise iterate to max_iter
for it); outputs are always finite.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.cases.grid import BusType, Grid
from gridrl.physics.dc import Outages, first_true
from gridrl.physics.inputs import batch_shape
from gridrl.physics.islands import energized_buses
from gridrl.physics.lowrank import capacitance_solve
from gridrl.physics.ybus import (
    assemble,
    branch_blocks,
    bus_shunt,
    fast_decoupled_blocks,
    fast_decoupled_matrices,
    in_service,
)

Array = jnp.ndarray

DEFAULT_TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
MAX_Q_LIMIT_ROUNDS = 10  # PV→PQ switching rounds; MATPOWER needs one or two on real cases
VM_BOUND = 10.0  # |V| beyond this p.u. (or ≤ 0) is divergence, not a solution
# iterations without a new smallest mismatch after which a sample is given up: the iteration
# contracts every step where it converges, so this is an oscillation far from any solution
STALL_ITERATIONS = 8


@struct.dataclass
class ACModel:
    """What the AC power flow of a grid needs that depends neither on injections nor outages."""

    ybus: Array  # base Ybus in real block form [2n, 2n]: [Re V, Im V] @ ybus = [Re I, Im I]
    b_prime_inverse: Array  # grounded B'⁻¹ of the base topology [n, n]
    b_double_prime_inverse: Array  # grounded B''⁻¹ of the base topology (PQ rows) [n, n]
    usable: Array  # bool [n_branch]: branches in service in the base topology
    energized: Array  # bool [n_bus]: buses energised in the base topology
    ref: Array  # bool [n_bus]: reference buses
    pv: Array  # bool [n_bus]: buses with an in-service generator, other than reference buses
    voltage_gen: Array  # int [n_bus]: the generator whose setpoint holds the bus (n_gen: none)

    @property
    def pq(self) -> Array:
        return ~self.ref & ~self.pv


@struct.dataclass
class ACResult:
    """An AC power flow's outcome; every field has the batch dimensions of the inputs."""

    vm: Array  # voltage magnitude, p.u. [..., n_bus]; 0 at de-energised buses
    va: Array  # voltage angle, rad [..., n_bus]; 0 at de-energised buses
    pf: Array  # active power into the branch at its from end, MW [..., n_branch]
    qf: Array  # reactive power into the branch at its from end, MVAr [..., n_branch]
    pt: Array  # active power into the branch at its to end, MW [..., n_branch]
    qt: Array  # reactive power into the branch at its to end, MVAr [..., n_branch]
    pg: Array  # generator active output, MW [..., n_gen] (the slack's as solved)
    qg: Array  # generator reactive output, MVAr [..., n_gen] (as solved)
    converged: Array  # bool [...]
    iterations: Array  # int [...]: fast-decoupled iterations (both half-steps)
    energized: Array  # bool [..., n_bus]
    lost_load_mw: Array  # positive load at de-energised buses, MW [...]

    @property
    def apparent_mva(self) -> Array:
        """|S| at the more loaded end of each branch, MVA [..., n_branch]: what a rating limits."""
        return jnp.maximum(jnp.hypot(self.pf, self.qf), jnp.hypot(self.pt, self.qt))


def _grounded(matrix: Array, keep: Array) -> Array:
    """The matrix on the `keep` rows and columns, identity elsewhere (always invertible)."""
    n = matrix.shape[-1]
    kept = matrix * keep[..., :, None] * keep[..., None, :]
    return kept + jnp.eye(n, dtype=matrix.dtype) * ~keep[..., None, :]


def _real_block(ybus: Array) -> Array:
    """[[Re Yᵀ, Im Yᵀ], [−Im Yᵀ, Re Yᵀ]] so that [e, f] @ it = [Re(Y·V), Im(Y·V)]."""
    g, b = ybus.real.T, ybus.imag.T
    return jnp.block([[g, b], [-b, g]])


def ac_model(grid: Grid) -> ACModel:
    """Precompute the AC model of `grid` (jittable; the O(n³) inverses are done here, once)."""
    _check_grid(grid)
    return _build_model(grid)


@jax.jit
def _build_model(grid: Grid) -> ACModel:
    usable = in_service(grid)
    energized = energized_buses(grid)
    ref = (jnp.asarray(grid.bus_type) == BusType.REF) & energized
    gen_on = jnp.asarray(grid.gen_status, bool)
    gen_bus = jnp.asarray(grid.gen_bus)
    gen_index = jnp.where(gen_on, jnp.arange(grid.n_gen), grid.n_gen)
    voltage_gen = jax.ops.segment_min(gen_index, gen_bus, num_segments=grid.n_bus)
    voltage_gen = jnp.minimum(voltage_gen, grid.n_gen)  # segment_min of nothing is INT_MAX
    pv = (voltage_gen < grid.n_gen) & ~ref & energized
    b_prime, b_double_prime = fast_decoupled_matrices(grid)
    ybus = assemble(grid, branch_blocks(grid, usable), bus_shunt(grid))
    return ACModel(
        ybus=_real_block(ybus),
        b_prime_inverse=jnp.linalg.inv(_grounded(b_prime, ~ref & energized)),
        b_double_prime_inverse=jnp.linalg.inv(_grounded(b_double_prime, ~ref & ~pv & energized)),
        usable=usable,
        energized=energized,
        ref=ref,
        pv=pv,
        voltage_gen=voltage_gen,
    )


def _check_grid(grid: Grid) -> None:
    """Reject, before tracing, a grid whose in-service branch has zero impedance."""
    try:
        r, x, status = (np.asarray(a) for a in (grid.r, grid.x, grid.branch_status))
    except jax.errors.TracerArrayConversionError:
        return  # inside a trace: the caller checked the concrete grid
    bad = np.flatnonzero(status & (r == 0) & (x == 0))
    if bad.size:
        raise ValueError(
            f"grid {grid.name!r}: in-service branch {int(bad[0])} has zero impedance (r = x = 0)"
        )


def ac_power_flow(
    grid: Grid,
    line_status: Array | None = None,
    *,
    pd: Array | None = None,
    qd: Array | None = None,
    pg: Array | None = None,
    vg: Array | None = None,
    model: ACModel | None = None,
    q_limits: bool = False,
    tol: float | None = None,
    max_iter: int = 50,
    max_outages: int = 4,
    init: tuple[Array, Array] | None = None,
) -> ACResult:
    """Solve AC power flows of `grid`, batched over the leading dimensions of the inputs.

    With no optional argument, the case as given (its loads, setpoints and topology), as
    pandapower's runpp / MATPOWER's runpf. line_status: bool [..., n_branch], AND-ed with the
    grid's branch status. pd, qd: MW, MVAr [..., n_bus]; pg: MW, vg: p.u. [..., n_gen]. The
    batch dimensions of all of them broadcast together. model: `ac_model(grid)`, to reuse.
    q_limits: enforce generator reactive limits by PV→PQ switching, as pandapower's
    enforce_q_lims (slower: the B'' matrix is then built and inverted per sample).
    tol: largest |ΔP|, |ΔQ| mismatch in p.u. (default 1e-10 in float64, 1e-4 in float32).
    max_iter: fast-decoupled iterations (per PV→PQ round with q_limits).
    max_outages: how many base branches out per sample the iteration matrices follow exactly
    (low-rank updates, cost O(n·max_outages) per step; static, part of the compiled shape).
    The mismatch is always exact, so a sample with more outages has a correct fixed point but
    converges slowly or not within max_iter (on case118, 6 out with max_outages=2: not within
    50); it is then flagged converged=False. Raise max_outages for such batches.
    init: (vm p.u., va rad) [..., n_bus] to start from instead of a flat start, e.g. an earlier
    solution (pandapower's init="results"): the PQ buses' magnitudes and the angles of all but
    the reference buses; a bus with vm outside (0, 10) there starts flat.
    """
    n_bus, n_gen, n_branch = grid.n_bus, grid.n_gen, grid.n_branch
    init_vm, init_va = (None, None) if init is None else init
    given = {"line_status": line_status, "pd": pd, "qd": qd, "pg": pg, "vg": vg}
    given |= {"init vm": init_vm, "init va": init_va}
    sizes = {
        "line_status": (n_branch, "one flag per branch"),
        "pd": (n_bus, "MW per bus"),
        "qd": (n_bus, "MVAr per bus"),
        "pg": (n_gen, "MW per generator"),
        "vg": (n_gen, "p.u. per generator"),
        "init vm": (n_bus, "p.u. per bus"),
        "init va": (n_bus, "rad per bus"),
    }
    shapes = [
        batch_shape("ac_power_flow", k, v, *sizes[k]) for k, v in given.items() if v is not None
    ]
    try:
        batch = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"ac_power_flow: batch dimensions {shapes} do not broadcast") from None
    for name, value in (("max_iter", max_iter), ("max_outages", max_outages)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"ac_power_flow: {name} must be a positive int, got {value!r}")
    dtype = jnp.asarray(grid.pd).dtype
    if tol is None:
        tol = DEFAULT_TOL.get(np.dtype(dtype), 1e-4)
    size = int(np.prod(batch))

    def flat(value, default, width, kind):
        value = default if value is None else value
        return jnp.broadcast_to(jnp.asarray(value, kind), (*batch, width)).reshape(size, width)

    inputs = (
        flat(pd, grid.pd, n_bus, dtype),
        flat(qd, grid.qd, n_bus, dtype),
        flat(pg, grid.pg, n_gen, dtype),
        flat(vg, grid.vg, n_gen, dtype),
    )
    status = None if line_status is None else flat(line_status, None, n_branch, bool)
    if init is not None:
        init = (flat(init_vm, None, n_bus, dtype), flat(init_va, None, n_bus, dtype))
    if model is None:
        model = ac_model(grid)
    tol = jnp.asarray(tol, dtype)
    result = _solve(grid, model, status, max_outages, inputs, init, tol, max_iter, q_limits)
    return jax.tree_util.tree_map(lambda a: a.reshape(*batch, *a.shape[1:]), result)


def ac_power_flow_outages(
    grid: Grid,
    model: ACModel,
    topology: Outages,
    *,
    pd: Array,
    qd: Array,
    pg: Array,
    init: tuple[Array, Array] | None = None,
    tol: float | None = None,
    max_iter: int = 50,
) -> ACResult:
    """`ac_power_flow` of a topology in the DC solver's low-rank form (`physics.dc.outages`),
    for callers that already have it: its energised buses and its K branch slots are taken as
    given, not found again. K = 0 is the base topology: the shared inverses alone, no
    per-sample update (the cheap path for the samples of a batch with every branch in).
    Inputs have one batch shape [..., n]; generator voltage setpoints are the case's."""
    batch = pd.shape[:-1]
    size = int(np.prod(batch))
    dtype = pd.dtype

    def flat(value):
        return jnp.reshape(value, (size, *value.shape[len(batch) :]))

    if tol is None:
        tol = DEFAULT_TOL.get(np.dtype(dtype), 1e-4)
    vg = jnp.broadcast_to(jnp.asarray(grid.vg, dtype), (size, grid.n_gen))
    topology = jax.tree.map(flat, topology)
    init = None if init is None else tuple(flat(v) for v in init)
    inputs = (flat(pd), flat(qd), flat(pg), vg)
    tol = jnp.asarray(tol, dtype)
    result = _solve_topology(grid, model, topology, inputs, init, tol, max_iter, False)
    return jax.tree.map(lambda a: a.reshape(*batch, *a.shape[1:]), result)


@partial(jax.jit, static_argnums=(3, 7, 8))
def _solve(grid: Grid, model: ACModel, status: Array | None, max_outages: int, inputs, *rest):
    """`_solve_topology` (same arguments after the topology) of the topology `status`
    [B, n_branch] (None: the base), the batch flattened to one leading dimension."""
    topology = _topology(grid, model, status, max_outages, inputs[0].shape[0])
    return _solve_topology(grid, model, topology, inputs, *rest)


def _topology(
    grid: Grid, model: ACModel, status: Array | None, max_outages: int, size: int
) -> Outages:
    """The topology `status` [B, n_branch] (None: the base) with its first `max_outages`
    branches out in slots and its energised buses (coeff, a DC quantity, is left at 0)."""
    if status is None:
        usable = jnp.broadcast_to(model.usable, (size, grid.n_branch))
        slots = jnp.zeros((size, 0), jnp.int32)
        energized = jnp.broadcast_to(model.energized, (size, grid.n_bus))
    else:
        usable = model.usable & status
        slots = first_true(model.usable & ~usable, max_outages)
        energized = energized_buses(grid, usable)
    valid = slots < grid.n_branch
    coeff = jnp.zeros(slots.shape, jnp.asarray(grid.pd).dtype)
    branch = jnp.where(valid, slots, 0)
    return Outages(usable=usable, branch=branch, valid=valid, coeff=coeff, energized=energized)


def _solve_topology(
    grid: Grid,
    model: ACModel,
    topology: Outages,
    inputs: tuple[Array, Array, Array, Array],
    init: tuple[Array, Array] | None,
    tol: Array,
    max_iter: int,
    q_limits: bool,
) -> ACResult:
    """The batch, flattened to one leading dimension [B, ...], on a given topology; inputs:
    (pd, qd, pg, vg)."""
    pd, qd, pg, vg = inputs
    base = topology.branch.shape[-1] == 0  # the base topology, whatever `usable` says
    usable = jnp.broadcast_to(model.usable, topology.usable.shape) if base else topology.usable
    energized = topology.energized
    outaged = None if base else model.usable & ~usable
    ref, pv = model.ref & energized, model.pv & energized
    gen_on = jnp.asarray(grid.gen_status, bool) & (_at_gens(grid, energized.astype(pd.dtype)) > 0)
    generation = _at_buses(grid, jnp.where(gen_on, pg, 0.0))
    p_spec = (generation - pd) / grid.base_mva
    setpoint = vg @ jax.nn.one_hot(model.voltage_gen, grid.n_gen, dtype=vg.dtype).T
    vm = jnp.where(ref | pv, setpoint, 1.0)
    case_va = jnp.asarray(grid.va, pd.dtype)
    va = jnp.broadcast_to(jnp.where(ref, case_va, case_va[jnp.argmax(model.ref)]), vm.shape)
    if init is not None:
        known = (init[0] > 0) & (init[0] < VM_BOUND) & jnp.isfinite(init[1])
        vm = jnp.where(known & ~ref & ~pv, init[0], vm)
        va = jnp.where(known & ~ref, init[1], va)
    injections = partial(_injections, grid, model, outaged)
    if base:
        solve_p = partial(_shared_solve, model.b_prime_inverse)
        base_solve_q = partial(_shared_solve, model.b_double_prime_inverse)
    else:
        blocks = fast_decoupled_blocks(grid, jnp.ones(grid.n_branch, bool))
        slots = (topology.branch, topology.valid, energized)
        prime_rows, double_prime_rows = ~model.ref & model.energized, model.pq & model.energized
        solve_p = _low_rank_solver(grid, model.b_prime_inverse, prime_rows, blocks[0], *slots)
        base_solve_q = _low_rank_solver(
            grid, model.b_double_prime_inverse, double_prime_rows, blocks[1], *slots
        )

    def flow(pq, q_spec, va, vm):
        solve_q = _dense_solver(grid, usable, pq) if q_limits else base_solve_q
        return _iterate(
            injections,
            solve_p,
            solve_q,
            p_spec,
            q_spec,
            ~ref & energized,
            pq,
            va,
            vm,
            tol,
            max_iter,
        )

    pq = ~ref & ~pv & energized
    if not q_limits:
        va, vm, p, q, iterations, converged = flow(pq, -qd / grid.base_mva, va, vm)
        qg = _reactive_output(grid, q, qd, gen_on)
    else:
        va, vm, p, q, iterations, converged, qg = _q_limited(
            grid, model, flow, gen_on, ref, pv, energized, qd, va, vm
        )
    return _result(
        grid, model, usable, energized, gen_on, pd, pg, qg, va, vm, p, iterations, converged
    )


def _at_buses(grid: Grid, per_gen: Array) -> Array:
    """Sum a [B, n_gen] quantity over the generators of each bus: [B, n_bus] (a product with
    the one-hot incidence: faster on a CPU than a scatter along the minor axis)."""
    return per_gen @ jax.nn.one_hot(jnp.asarray(grid.gen_bus), grid.n_bus, dtype=per_gen.dtype)


def _at_gens(grid: Grid, per_bus: Array) -> Array:
    """Each generator's value of a [B, n_bus] quantity at its bus: [B, n_gen]."""
    return jnp.take(per_bus, jnp.asarray(grid.gen_bus), axis=1)


def _sin_cos(angle: Array) -> tuple[Array, Array]:
    """(sin, cos). In float32, by quadrant reduction and Taylor polynomials (error < 1e-7, the
    float32 noise), several times faster than XLA's CPU sin and cos, which dominated a step."""
    if angle.dtype != jnp.float32:
        return jnp.sin(angle), jnp.cos(angle)
    quadrant = jnp.round(angle * (2 / np.pi))
    # π/2 split in two floats (Cody–Waite) so that the reduced angle keeps its precision
    r = angle - quadrant * np.float32(1.5707963705062866) - quadrant * np.float32(-4.37113900e-08)
    r2 = r * r
    sin = r + r * r2 * (-1 / 6 + r2 * (1 / 120 + r2 * (-1 / 5040 + r2 * (1 / 362880))))
    cos = 1 + r2 * (-1 / 2 + r2 * (1 / 24 + r2 * (-1 / 720 + r2 * (1 / 40320))))
    q = quadrant.astype(jnp.int32) & 3
    return (
        jnp.where(q == 0, sin, jnp.where(q == 1, cos, jnp.where(q == 2, -sin, -cos))),
        jnp.where(q == 0, cos, jnp.where(q == 1, -sin, jnp.where(q == 2, -cos, sin))),
    )


def _injections(grid: Grid, model: ACModel, outaged: Array | None, rotation, vm: Array):
    """Computed bus injections (P, Q) p.u. [B, n_bus] = V·conj(Ybus·V) at V = vm·(cos + j·sin)
    (rotation = (sin, cos) of the angles), with the branches `outaged` from the base topology
    taken out of the base Ybus."""
    e, f = vm * rotation[1], vm * rotation[0]
    current = jnp.concatenate([e, f], axis=-1) @ model.ybus
    n = grid.n_bus
    i_re, i_im = current[:, :n], current[:, n:]
    if outaged is not None:
        currents = _branch_currents(grid, e, f)
        f_bus, t_bus = jnp.asarray(grid.f_bus), jnp.asarray(grid.t_bus)
        removed_re = jnp.zeros_like(e).at[:, f_bus].add(outaged * currents[0])
        removed_im = jnp.zeros_like(e).at[:, f_bus].add(outaged * currents[1])
        removed_re = removed_re.at[:, t_bus].add(outaged * currents[2])
        removed_im = removed_im.at[:, t_bus].add(outaged * currents[3])
        i_re, i_im = i_re - removed_re, i_im - removed_im
    return e * i_re + f * i_im, f * i_re - e * i_im


def _branch_currents(grid: Grid, e: Array, f: Array) -> tuple[Array, Array, Array, Array]:
    """(Re If, Im If, Re It, Im It) [B, n_branch]: currents into every branch (as if in
    service) at its from and to ends, for bus voltages e + j·f [B, n_bus]. Real arithmetic:
    XLA's complex elementwise code is slow on a CPU."""
    yff, yft, ytf, ytt = branch_blocks(grid, jnp.ones(grid.n_branch, bool))
    ends = [
        jnp.take(v, jnp.asarray(bus), axis=1) for bus in (grid.f_bus, grid.t_bus) for v in (e, f)
    ]
    e_from, f_from, e_to, f_to = ends

    def current(y_own, y_other, e_own, f_own, e_other, f_other):
        real = y_own.real * e_own - y_own.imag * f_own + y_other.real * e_other
        imag = y_own.real * f_own + y_own.imag * e_own + y_other.real * f_other
        return real - y_other.imag * f_other, imag + y_other.imag * e_other

    return (
        *current(yff, yft, e_from, f_from, e_to, f_to),
        *current(ytt, ytf, e_to, f_to, e_from, f_from),
    )


def _shared_solve(inverse: Array, rhs: Array) -> Array:
    """x = M⁻¹·rhs [B, n] with one inverse for the whole batch: a matrix product."""
    return rhs @ inverse.T


def _dense_solver(grid: Grid, usable: Array, rows: Array):
    """x = B''⁻¹·rhs with B'' built and inverted per sample, grounded outside `rows` [B, n]
    (the slow path, for PQ sets that change per sample)."""
    inverse = jnp.linalg.inv(_grounded(fast_decoupled_matrices(grid, usable)[1], rows))
    return lambda rhs: jnp.einsum("bij,bj->bi", inverse, rhs)


def _low_rank_solver(grid, inverse, rows, blocks, slots, valid, energized):
    """x = M⁻¹·rhs where M is the base matrix (`inverse`: its grounded inverse, `rows`: the
    rows it keeps) without the branches `slots` [B, K] (where `valid`), by the Woodbury
    identity. A removed branch with one end de-energised is replaced by a unit ground at
    that end, so that every dead island stays grounded (nonsingular) and apart from the live
    grid; one with both ends dead is left in (its island is grounded elsewhere)."""
    f_bus, t_bus = jnp.asarray(grid.f_bus)[slots], jnp.asarray(grid.t_bus)[slots]
    live_f = jnp.take_along_axis(energized, f_bus, -1)
    live_t = jnp.take_along_axis(energized, t_bus, -1)
    removed = valid & (live_f | live_t)
    keep_f, keep_t = rows[f_bus] & removed, rows[t_bus] & removed
    # the branch's symmetric 2×2 block [[a, c], [c, d]] on its kept ends, diagonalised
    a, c = blocks[0][slots] * keep_f, blocks[1][slots] * keep_f * keep_t
    d = blocks[3][slots] * keep_t
    angle = 0.5 * jnp.arctan2(2 * c, a - d)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    low = a * cos * cos + 2 * c * sin * cos + d * sin * sin
    high = a * sin * sin - 2 * c * sin * cos + d * cos * cos
    dead_end = jnp.where(live_f, t_bus, f_bus)
    grounded = removed & (live_f != live_t) & rows[dead_end]
    # columns w_p·e_p + w_q·e_q: groundings first, so that no leading minor of the small
    # system is singular (the unpivoted solve needs that)
    p = jnp.concatenate([dead_end, f_bus, f_bus], -1)
    q = jnp.concatenate([dead_end, t_bus, t_bus], -1)
    one, zero = jnp.ones_like(a), jnp.zeros_like(a)
    w_p = jnp.concatenate([one, cos, -sin], -1)
    w_q = jnp.concatenate([zero, sin, cos], -1)
    coeff = jnp.concatenate([grounded.astype(a.dtype), -low, -high], -1)
    inverse_u = w_p[..., None] * inverse[p] + w_q[..., None] * inverse[q]  # [B, m, n]
    m = p.shape[-1]
    at_p = jnp.take_along_axis(inverse_u, jnp.broadcast_to(p[..., None, :], (*p.shape, m)), -1)
    at_q = jnp.take_along_axis(inverse_u, jnp.broadcast_to(q[..., None, :], (*q.shape, m)), -1)
    gram = w_p[..., None, :] * at_p + w_q[..., None, :] * at_q

    def solve(rhs):
        base = rhs @ inverse.T
        u_base = w_p * jnp.take_along_axis(base, p, -1) + w_q * jnp.take_along_axis(base, q, -1)
        weights = capacitance_solve(gram, u_base, coeff, pivoting=False)
        return base - jnp.einsum("bmi,bm->bi", inverse_u, weights)

    return solve


class _Iterate(NamedTuple):
    """An iterate of the fast-decoupled method and its mismatch [B, n_bus] ([B] for error)."""

    va: Array  # rad
    vm: Array  # p.u.
    p: Array  # computed injections at (va, vm), p.u.
    q: Array
    dp: Array  # mismatches on the rows iterated on, p.u. (0 elsewhere)
    dq: Array
    error: Array  # largest |dp|, |dq|


class _Iteration(NamedTuple):
    """The loop state of `_iterate`: the batch's last good iterates and each sample's progress."""

    count: Array  # iterations the batch has run (int)
    at: _Iterate  # each sample's last good iterate
    best: Array  # smallest error so far [B]
    since: Array  # iterations since the error was last at its smallest, int [B]
    iterations: Array  # iterations taken, int [B]
    active: Array  # bool [B]: still iterating
    failed: Array  # bool [B]: left the finite, 0 < |V| < VM_BOUND region


def _iterate(injections, solve_p, solve_q, p_spec, q_spec, p_rows, q_rows, va, vm, tol, max_iter):
    """Fast-decoupled iterations from (va, vm) until every sample's largest mismatch is below
    `tol` or fails; returns (va, vm, P, Q, iterations, converged) with P, Q the computed
    injections at the returned state."""

    def evaluated(va, rotation, vm) -> _Iterate:
        p, q = injections(rotation, vm)
        dp, dq = jnp.where(p_rows, p - p_spec, 0.0), jnp.where(q_rows, q - q_spec, 0.0)
        error = jnp.maximum(jnp.max(jnp.abs(dp), -1), jnp.max(jnp.abs(dq), -1))
        return _Iterate(va, vm, p, q, dp, dq, error)

    def step(state: _Iteration) -> _Iteration:
        at = state.at
        va = at.va - jnp.where(p_rows, solve_p(at.dp / at.vm), 0.0)
        rotation = _sin_cos(va)  # shared by both half-steps: the Q step keeps the angles
        dq_half = evaluated(va, rotation, at.vm).dq
        new = evaluated(va, rotation, at.vm - jnp.where(q_rows, solve_q(dq_half / at.vm), 0.0))
        good = jnp.isfinite(new.error) & jnp.all((new.vm > 0) & (new.vm < VM_BOUND), -1)
        take = state.active & good
        at = jax.tree.map(
            lambda fresh, old: jnp.where(take.reshape(-1, *[1] * (old.ndim - 1)), fresh, old),
            new,
            at,
        )
        since = jnp.where(at.error < state.best, 0, state.since + 1)
        return _Iteration(
            count=state.count + 1,
            at=at,
            best=jnp.minimum(at.error, state.best),
            since=since,
            iterations=state.iterations + take,
            active=take & (at.error >= tol) & (since < STALL_ITERATIONS),
            failed=state.failed | (state.active & ~good),
        )

    def unfinished(state: _Iteration) -> Array:
        return jnp.any(state.active) & (state.count < max_iter)

    at = evaluated(va, _sin_cos(va), vm)
    zeros = jnp.zeros(va.shape[0], jnp.int32)
    start = _Iteration(
        count=jnp.asarray(0),
        at=at,
        best=at.error,
        since=zeros,
        iterations=zeros,
        active=at.error >= tol,
        failed=jnp.zeros(va.shape[0], bool),
    )
    end = jax.lax.while_loop(unfinished, step, start)
    at = end.at
    return at.va, at.vm, at.p, at.q, end.iterations, (at.error < tol) & ~end.failed


def _reactive_output(
    grid: Grid,
    q: Array,
    qd: Array,
    gen_on: Array,
    limited: Array | None = None,
    fixed_q: Array | None = None,
) -> Array:
    """Generator reactive output, MVAr [B, n_gen], as MATPOWER's pfsoln: a bus's generation
    (computed injection + load) is shared by its generators in proportion to their reactive
    ranges (equally where the range is empty or unbounded); limited generators hold fixed_q."""
    qmin, qmax = jnp.asarray(grid.qmin, q.dtype), jnp.asarray(grid.qmax, q.dtype)
    if limited is None:
        limited, fixed_q = jnp.zeros_like(gen_on), jnp.zeros_like(q[:, :1])
    held = jnp.where(limited & gen_on, fixed_q, 0.0)
    free = gen_on & ~limited
    total = q * grid.base_mva + qd - _at_buses(grid, held)
    count = _at_gens(grid, _at_buses(grid, free.astype(q.dtype)))
    low = _at_gens(grid, _at_buses(grid, jnp.where(free, qmin, 0.0)))
    span = _at_gens(grid, _at_buses(grid, jnp.where(free, qmax - qmin, 0.0)))
    share = jnp.isfinite(span) & (span > 0)
    total = _at_gens(grid, total)
    proportional = qmin + (total - low) / jnp.where(share, span, 1.0) * (qmax - qmin)
    equal = total / jnp.maximum(count, 1.0)
    return jnp.where(free, jnp.where(share, proportional, equal), held)


class _QLimitRounds(NamedTuple):
    """The loop state of `_q_limited`: the last round's power flow and the limits held."""

    rounds: Array  # rounds run (int)
    va: Array  # rad [B, n_bus]
    vm: Array  # p.u. [B, n_bus]
    p: Array  # computed injections, p.u. [B, n_bus]
    q: Array
    limited: Array  # bool [B, n_gen]: generators held at a reactive limit
    fixed_q: Array  # MVAr [B, n_gen]: the limit each limited generator holds
    qg: Array  # generator reactive output, MVAr [B, n_gen]
    iterations: Array  # fast-decoupled iterations over all rounds, int [B]
    converged: Array  # bool [B]: the last round's power flow converged
    violated: Array  # bool [B]: the last round found a limit violated


def _q_limited(grid, model, flow, gen_on, ref, pv, energized, qd, va, vm):
    """Rounds of power flow; after each, generators beyond a reactive limit are held at it and
    their buses become PQ (pandapower's enforce_q_lims, all violations at once), until none is
    violated. Reference-bus generators are never limited."""
    gen_bus = jnp.asarray(grid.gen_bus)
    qmin, qmax = jnp.asarray(grid.qmin, va.dtype), jnp.asarray(grid.qmax, va.dtype)
    limitable = gen_on & ~model.ref[gen_bus]
    samples = va.shape[0]

    def one_round(state: _QLimitRounds) -> _QLimitRounds:
        dtype = state.va.dtype
        converted = _at_buses(grid, state.limited.astype(dtype)) > 0
        pq = ~ref & energized & (~pv | converted)
        # at a converted bus, generators still free keep their last output
        injected = jnp.where(
            state.limited,
            state.fixed_q,
            jnp.where(_at_gens(grid, converted.astype(dtype)) > 0, state.qg, 0.0),
        )
        q_spec = _at_buses(grid, jnp.where(gen_on, injected, 0.0)) - qd
        va, vm, p, q, steps, converged = flow(pq, q_spec / grid.base_mva, state.va, state.vm)
        qg = _reactive_output(grid, q, qd, gen_on, state.limited, state.fixed_q)
        violated = limitable & ~state.limited & ((qg > qmax) | (qg < qmin))
        return _QLimitRounds(
            rounds=state.rounds + 1,
            va=va,
            vm=vm,
            p=p,
            q=q,
            limited=state.limited | violated,
            fixed_q=jnp.where(violated, jnp.clip(qg, qmin, qmax), state.fixed_q),
            qg=qg,
            iterations=state.iterations + steps,
            converged=converged,
            violated=jnp.any(violated, -1),
        )

    def unfinished(state: _QLimitRounds) -> Array:
        return (state.rounds == 0) | (jnp.any(state.violated) & (state.rounds < MAX_Q_LIMIT_ROUNDS))

    zeros_gen = jnp.zeros((samples, grid.n_gen), va.dtype)
    no = jnp.zeros(samples, bool)
    start = _QLimitRounds(
        rounds=jnp.asarray(0),
        va=va,
        vm=vm,
        p=va,
        q=va,
        limited=jnp.zeros_like(gen_on),
        fixed_q=zeros_gen,
        qg=zeros_gen,
        iterations=jnp.zeros(samples, jnp.int32),
        converged=no,
        violated=no,
    )
    end = jax.lax.while_loop(unfinished, one_round, start)
    return end.va, end.vm, end.p, end.q, end.iterations, end.converged & ~end.violated, end.qg


def _result(grid, model, usable, energized, gen_on, pd, pg, qg, va, vm, p, iterations, converged):
    """Outputs in MW / MVAr, with de-energised buses and their branches zeroed."""
    base = grid.base_mva
    vm, va = jnp.where(energized, vm, 0.0), jnp.where(energized, va, 0.0)
    sin, cos = _sin_cos(va)
    e, f = vm * cos, vm * sin
    if_re, if_im, it_re, it_im = _branch_currents(grid, e, f)
    e_from, f_from = (jnp.take(v, jnp.asarray(grid.f_bus), axis=1) for v in (e, f))
    e_to, f_to = (jnp.take(v, jnp.asarray(grid.t_bus), axis=1) for v in (e, f))
    scale = usable * base
    gen_bus = jnp.asarray(grid.gen_bus)
    pg = jnp.where(gen_on, pg, 0.0)
    # the first in-service generator at a reference bus takes what the others do not give
    first = model.voltage_gen[gen_bus] == jnp.arange(grid.n_gen)
    slack = gen_on & model.ref[gen_bus] & first
    others = _at_buses(grid, jnp.where(slack, 0.0, pg))
    slack_p = _at_gens(grid, p * base + pd - others)
    return ACResult(
        vm=vm,
        va=va,
        pf=(e_from * if_re + f_from * if_im) * scale,
        qf=(f_from * if_re - e_from * if_im) * scale,
        pt=(e_to * it_re + f_to * it_im) * scale,
        qt=(f_to * it_re - e_to * it_im) * scale,
        pg=jnp.where(slack, slack_p, pg),
        qg=jnp.where(gen_on, qg, 0.0),
        converged=converged,
        iterations=iterations,
        energized=energized,
        lost_load_mw=jnp.sum(jnp.where(energized, 0.0, jnp.maximum(pd, 0.0)), -1),
    )
