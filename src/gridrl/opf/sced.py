"""Security-constrained economic dispatch (SCED): the DC-OPF an operator solves every step.

The DC-OPF of `build_dc_opf` (angles, outputs, piecewise-linear cost variables, nodal balance,
branch ratings, angle-difference limits) is extended with further columns and loaded into HiGHS
once; each `Sced.solve` then changes bounds (loads, availability, ramp windows) and, when the
topology changed, the coefficients of the branches that went out or came back (`changeCoeff`),
and re-solves from the previous basis.

- Wind and solar: 0 <= Pg <= available; what is left unused is curtailed, at
  `curtailment_price` $/MWh.
- Other units: within [min(pmin, available), available] and, given the previous dispatch, within
  pg_prev ± ramp·step_minutes. Physical limits win over ramp limits: the ramp window is clipped
  into the unit's range, so a unit outside it (below pmin, say, or above a derated availability)
  moves to the nearest end of the range in one step. The bounds are therefore never empty.
- Load shedding at every bus, up to its load, at `value_of_lost_load` $/MWh.
- Branch ratings (rate_a · rating_margin) are soft: a ranged row per rated branch carries two
  slack columns (MW above the rating either way), priced above the value of lost load, so the
  problem is always feasible and what cannot be avoided is reported as `overload`.
- Islands: a bus cut off from the reference bus by outages takes no part (its angle is fixed,
  its units stop, its load is shed and reported in `shed`).
- Preventive N-1 (`n1_contingencies`): for each listed branch k, the post-contingency flows
  pf + LODF[:, k]·pf[k] of the other rated branches stay within their ratings, as soft rows priced
  below the value of lost load. Rows are generated lazily: solve, add a row (and its two slacks)
  for every pair (branch, contingency) the solution violates, re-solve, until none is violated.
  The rows stay in the model while the topology stays, so a step usually needs one solve.
  Contingencies that are out, or whose outage would island buses, are skipped.

Speed: HiGHS's QP solver restarts from scratch on every solve (~25 ms for the plain ieee118
DC-OPF, several times that with SCED's columns and N-1 rows), while its dual simplex restarts an LP
from the previous basis in about a millisecond. `cost_segments=n` therefore replaces each
quadratic cost by its piecewise-linear interpolation on n equal pieces of [pmin, pmax] (an LP);
the dispatch then costs at most Σ c2·(Δ/2)² $/h more than the exact one (Δ = (pmax − pmin)/n),
and `cost` is always the exact polynomial cost of the dispatch.

Penalty order ($/MWh): curtailment_price < N-1 violation (0.1 × VoLL) < load shed (VoLL) < base-case
overload (2 × VoLL). A post-contingency overload is a risk that materialises only if that outage
happens, and the operator can still act after it (redispatch, shedding then); shedding load now to
cover it would trade certain energy not served for a possible one. A base-case overload is real:
protection trips the branch and may start a cascade, which sheds more than the load it saves.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from gridrl.cases.costs import cost_per_gen
from gridrl.cases.grid import BusType, CostModel, Grid
from gridrl.opf.dcopf import (
    QuadraticProgram,
    _bus_injection_rhs,
    _highs_model,
    build_dc_opf,
    opf_costs,
)
from gridrl.opf.network import DcNetwork, dc_network, host_array
from gridrl.opf.ratings import renewable
from gridrl.physics.contingency import islanding, lodf_columns, near_islanding

# Penalties per MW, as multiples of the value of lost load: a base-case overload is a real one
# (protection trips the branch and may start a cascade), so it costs more than shedding.
OVERLOAD_PENALTY_FACTOR = 2.0
N1_PENALTY_FACTOR = 0.1
# A post-contingency flow this far (MW) above its rating gets a row of its own.
N1_TOLERANCE_MW = 1e-3
# HiGHS's QP solver fails ("Solve error") on some steps when penalty costs reach ~1e6 per unit
# (it warns of excessively large costs); the objective is scaled by a power of two that brings
# the largest cost below this.
LARGEST_COST = 1e5
# HiGHS's QP solver sometimes ends "optimal" with a residual of ~3e-5 p.u. on one row, which HiGHS
# then reports as a solve error against its 1e-7 tolerance; such a solve is retried once from
# scratch with this primal feasibility tolerance (p.u., i.e. 0.01 MW on a 100 MVA base).
RETRY_FEASIBILITY_TOLERANCE = 1e-4
# HiGHS's QP solver can also cycle on degenerate steps (tens of thousands of iterations at one
# objective value, where ~400 usually do); it is stopped here, and a step whose QP fails is then
# solved by the same SCED with FALLBACK_SEGMENTS linear pieces per quadratic cost (an LP).
QP_ITERATION_LIMIT = 5_000
FALLBACK_SEGMENTS = 20


@dataclass(frozen=True)
class ScedResult:
    """One SCED solve in MW and $/h. Where `success` is False, `status` says why, `cost` and
    `objective` are inf and the arrays are zeros (never NaN)."""

    success: bool
    status: str
    pg: np.ndarray  # [n_gen] MW (0 for units out of service)
    curtailed: np.ndarray  # [n_gen] MW of renewable availability not used (0 for other units)
    shed: np.ndarray  # [n_bus] MW of load shed
    pf: np.ndarray  # [n_branch] MW at the from end (0 for branches out)
    overload: np.ndarray  # [n_branch] MW above the (margin-scaled) rating left by the solve
    cost: float  # $/h generation cost of pg
    objective: float  # $/h incl. value of lost load x shed, curtailment price, penalties
    solve_seconds: float


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"Sced: {name} must be a positive finite number, got {value!r}")
    return value


def _vector(name: str, value, size: int, what: str) -> np.ndarray:
    """A finite float64 vector of `size`, or a ValueError naming the argument."""
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(
            f"Sced.solve: {name} must have shape ({size},) ({what}), got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        index = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"Sced.solve: {name}[{index}] is {array[index]}; {what} must be finite")
    return array


def _line_status(value, size: int) -> np.ndarray:
    if value is None:
        return np.ones(size, bool)
    array = np.asarray(value)
    if array.shape != (size,):
        raise ValueError(f"Sced.solve: line_status must have shape ({size},), got {array.shape}")
    if array.dtype != bool and not np.all((array == 0) | (array == 1)):
        raise ValueError("Sced.solve: line_status must be booleans (True: branch in service)")
    return array.astype(bool)


def _contingencies(branches: Sequence[int], in_service: np.ndarray) -> np.ndarray:
    """The N-1 branch indices, checked: integers naming distinct in-service branches."""
    array = np.asarray(branches)
    if array.size == 0:
        return np.zeros(0, np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"Sced: n1_contingencies must be branch indices, got {branches!r}")
    bad = (array < 0) | (array >= len(in_service))
    if bad.any():
        raise ValueError(f"Sced: n1_contingencies has {array[bad][0]}, not a branch index")
    if not in_service[array].all() or len(np.unique(array)) != len(array):
        raise ValueError("Sced: n1_contingencies must be distinct branches in service")
    return array.astype(np.int64)


def piecewise_costs(grid: Grid, segments: int) -> Grid:
    """`grid` with each quadratic polynomial cost (c2 > 0, finite pmin < pmax) replaced by its
    piecewise-linear interpolation on `segments` equal pieces of [pmin, pmax]; other costs stay."""
    if not isinstance(segments, int | np.integer) or segments < 1:
        raise ValueError(f"Sced: cost_segments must be a positive int or None, got {segments!r}")
    poly = host_array(grid, "cost_poly")
    pmin, pmax = host_array(grid, "pmin"), host_array(grid, "pmax")
    model = host_array(grid, "cost_model", np.int64)
    quadratic = (
        (model == CostModel.POLYNOMIAL)
        & (poly[:, 0] > 0 if poly.shape[1] >= 3 else False)
        & np.isfinite(pmin)
        & np.isfinite(pmax)
        & (pmax > pmin)
    )
    ends = np.where(quadratic, pmin, 0.0), np.where(quadratic, pmax, 1.0)
    mw = np.linspace(*ends, segments + 1).T  # [n_gen, segments + 1]
    dollars = np.zeros_like(mw)
    for coefficient in poly.T:  # Horner, highest order first
        dollars = dollars * mw + coefficient[:, None]
    pwl = host_array(grid, "cost_pwl")
    n_points = max(pwl.shape[1], segments + 1)

    def padded(points: np.ndarray) -> np.ndarray:  # repeating the last point, as readers do
        return np.concatenate([points, np.repeat(points[:, -1:], n_points - points.shape[1], 1)], 1)

    converted = padded(np.stack([mw, dollars], axis=-1))
    return grid.replace(
        cost_model=np.where(quadratic, CostModel.PIECEWISE_LINEAR, model),
        cost_pwl=np.where(quadratic[:, None, None], converted, padded(pwl)),
    )


def _extended_program(
    program: QuadraticProgram, balance: slice, flow: slice, shed_cost: float, over_cost: float
) -> QuadraticProgram:
    """`program` with columns [shed (one per bus) | above rating | below -rating] appended, all
    per unit: shed enters each balance row as negative load, the two slacks widen each flow row."""
    n_row = program.a.shape[0]
    n_bus, n_rated = balance.stop - balance.start, flow.stop - flow.start
    rows = np.r_[
        np.arange(balance.start, balance.stop), np.tile(np.arange(flow.start, flow.stop), 2)
    ]
    cols = np.arange(n_bus + 2 * n_rated)
    values = np.r_[-np.ones(n_bus), -np.ones(n_rated), np.ones(n_rated)]
    extra = sp.csc_matrix((values, (rows, cols)), shape=(n_row, len(cols)))
    n_extra = len(cols)
    hessian = program.hessian
    if hessian is not None:
        hessian = sp.block_diag([hessian, sp.csc_matrix((n_extra, n_extra))], format="csc")
    return QuadraticProgram(
        cost=np.r_[program.cost, np.full(n_bus, shed_cost), np.full(2 * n_rated, over_cost)],
        offset=program.offset,
        hessian=hessian,
        a=sp.hstack([program.a, extra], format="csc"),
        col_lower=np.r_[program.col_lower, np.zeros(n_extra)],
        col_upper=np.r_[program.col_upper, np.zeros(n_bus), np.full(2 * n_rated, np.inf)],
        row_lower=program.row_lower,
        row_upper=program.row_upper,
    )


def _energized(network: DcNetwork, f_bus, t_bus, status: np.ndarray, ref: int) -> np.ndarray:
    """bool [n_bus]: buses connected to the reference bus through branches in `status`."""
    n_bus = len(network.bus_active)
    graph = sp.csr_matrix(
        (np.ones(int(status.sum())), (f_bus[status], t_bus[status])), (n_bus, n_bus)
    )
    _, label = connected_components(graph, directed=False)
    return network.bus_active & (label == label[ref])


class Sced:
    """SCED of `grid`, built and loaded into HiGHS once; call `solve` every step (see the module
    notes for the formulation and docs/opf.md for the choices). `cost_segments`: None solves the
    exact costs (a QP where any is quadratic); n, quadratic costs as n linear pieces (an LP)."""

    def __init__(
        self,
        grid: Grid,
        *,
        value_of_lost_load: float = 10_000.0,
        curtailment_price: float = 0.0,
        step_minutes: float = 5.0,
        rating_margin: float = 1.0,
        n1_contingencies: Sequence[int] = (),
        time_limit: float = 10.0,
        cost_segments: int | None = None,
    ):
        self.value_of_lost_load = _positive("value_of_lost_load", value_of_lost_load)
        self.step_minutes = _positive("step_minutes", step_minutes)
        self.rating_margin = _positive("rating_margin", rating_margin)
        time_limit = _positive("time_limit", time_limit)
        self.curtailment_price = float(curtailment_price)
        self.overload_penalty = OVERLOAD_PENALTY_FACTOR * self.value_of_lost_load
        self.n1_penalty = N1_PENALTY_FACTOR * self.value_of_lost_load
        if not 0.0 <= self.curtailment_price < self.n1_penalty:
            raise ValueError(
                "Sced: curtailment_price must be in [0, N1_PENALTY_FACTOR × value_of_lost_load = "
                f"{self.n1_penalty}), got {curtailment_price!r}"
            )
        self.grid = grid
        priced = grid if cost_segments is None else piecewise_costs(grid, cost_segments)
        problem = build_dc_opf(priced)
        self._costs = opf_costs(grid, problem.network.gen_active)  # the exact ones, for `cost`
        self.contingencies = _contingencies(n1_contingencies, problem.network.branch_active)
        self.problem = problem
        base = problem.base_mva
        self._base = base
        network = problem.network
        self._network = network
        self._n_bus, self._n_gen = len(network.bus_active), len(network.gen_active)
        self._n_branch = len(network.branch_active)
        self._f_bus = host_array(grid, "f_bus", np.int64)
        self._t_bus = host_array(grid, "t_bus", np.int64)
        self._gen_bus = host_array(grid, "gen_bus", np.int64)
        self._ref = int(np.flatnonzero(host_array(grid, "bus_type", np.int64) == BusType.REF)[0])
        self._fixed_angle = host_array(grid, "bus_type", np.int64) == BusType.REF
        self._case_angle = host_array(grid, "va") * problem.angle_scale
        self._gs = host_array(grid, "gs")
        self._pmin = host_array(grid, "pmin")
        ramp = host_array(grid, "ramp")
        if np.any(np.isnan(ramp) | (ramp < 0)):
            raise ValueError("Sced: grid.ramp must be >= 0 MW/min (inf where unlimited)")
        self._ramp_mw = ramp * self.step_minutes
        self._renewable = renewable(grid)
        rate_a = host_array(grid, "rate_a")
        self._rated = problem.rated_branches
        self._limit = rate_a[self._rated] * self.rating_margin / base  # p.u.

        # columns and rows of the extended program
        n_col = problem.program.a.shape[1]
        n_rated = len(self._rated)
        self._va_cols = np.arange(problem.va.start, problem.va.stop)
        self._pg_cols = np.arange(problem.pg.start, problem.pg.stop, dtype=np.int32)
        self._shed_cols = np.arange(n_col, n_col + self._n_bus, dtype=np.int32)
        self._up_cols = np.arange(n_col + self._n_bus, n_col + self._n_bus + n_rated)
        self._down_cols = self._up_cols + n_rated
        self._balance_rows = np.arange(problem.balance.start, problem.balance.stop, dtype=np.int32)
        self._flow_rows = np.arange(problem.flow.start, problem.flow.stop, dtype=np.int32)
        self._flow_row_of = np.full(self._n_branch, -1)
        self._flow_row_of[self._rated] = self._flow_rows
        self._angle_row_of = np.full(self._n_branch, -1)
        self._angle_row_of[problem.angle_branches] = np.arange(
            problem.angle.start, problem.angle.stop
        )
        self._angle_bounds = (
            problem.program.row_lower[problem.angle].copy(),
            problem.program.row_upper[problem.angle].copy(),
        )
        program = _extended_program(
            problem.program,
            problem.balance,
            problem.flow,
            self.value_of_lost_load * base,
            self.overload_penalty * base,
        )
        renewable_cols = self._pg_cols[self._renewable[problem.gens]]
        program.cost[renewable_cols] -= self.curtailment_price * base
        self._highs = _highs_model(program, time_limit)
        self._fallback: Sced | None = None
        self._settings = {
            "value_of_lost_load": value_of_lost_load,
            "curtailment_price": curtailment_price,
            "step_minutes": step_minutes,
            "rating_margin": rating_margin,
            "n1_contingencies": n1_contingencies,
            "time_limit": time_limit,
            "cost_segments": FALLBACK_SEGMENTS,
        }
        self._is_qp = program.hessian is not None
        if self._is_qp:
            self._highs.setOptionValue("qp_iteration_limit", QP_ITERATION_LIMIT)
        self._base_shape = program.a.shape  # N-1 rows and their slack columns come after
        self._n1_pairs: list[tuple[int, int]] = []  # (branch, position in contingencies)
        largest = float(np.max(np.abs(program.cost)))
        if largest > LARGEST_COST:
            exponent = -int(np.ceil(np.log2(largest / LARGEST_COST)))
            self._highs.setOptionValue("user_objective_scale", exponent)

        # the topology loaded in the model: the case's, until a solve asks for another
        self._usable = network.branch_active.copy()
        self._energized = network.bus_active.copy()
        self._current = network
        self._apply_topology(np.ones(self._n_branch, bool), force=True)

    @property
    def n1_rows(self) -> int:
        """N-1 rows in the model now (they persist until the topology changes)."""
        return len(self._n1_pairs)

    # --- topology ---------------------------------------------------------------------------

    def _apply_topology(self, line_status: np.ndarray, force: bool = False) -> None:
        """Make the model's branch coefficients and angle bounds those of `line_status` (AND the
        case's), touching only the branches whose state changed (`force`: redo the bounds and
        outage factors even if none did)."""
        wanted = self._network.branch_active & line_status
        energized = _energized(self._network, self._f_bus, self._t_bus, wanted, self._ref)
        usable = wanted & energized[self._f_bus] & energized[self._t_bus]
        changed = np.flatnonzero(usable != self._usable)
        if not force and changed.size == 0 and np.array_equal(energized, self._energized):
            return
        network = dc_network(self.grid.replace(branch_status=usable))
        bbus = network.bbus.toarray() / self.problem.angle_scale
        bf = network.bf.toarray() / self.problem.angle_scale
        highs, rows, cols = self._highs, self._balance_rows, self._va_cols
        for k in changed:
            f, t = self._f_bus[k], self._t_bus[k]
            for i, j in ((f, f), (t, t), (f, t), (t, f)):
                highs.changeCoeff(int(rows[i]), int(cols[j]), float(bbus[i, j]))
            if self._flow_row_of[k] >= 0:
                for j in (f, t):
                    highs.changeCoeff(int(self._flow_row_of[k]), int(cols[j]), float(bf[k, j]))
            if self._angle_row_of[k] >= 0:
                position = self._angle_row_of[k] - self.problem.angle.start
                lower, upper = self._angle_bounds[0][position], self._angle_bounds[1][position]
                if not usable[k]:
                    lower, upper = -np.inf, np.inf
                highs.changeRowBounds(int(self._angle_row_of[k]), float(lower), float(upper))
        # flow limits (phase shifters move them) and angles: fixed at the reference and on
        # de-energised buses, free elsewhere
        rated = usable[self._rated]
        pfinj = network.pfinj[self._rated]
        lower = np.where(rated, -self._limit - pfinj, -np.inf)
        upper = np.where(rated, self._limit - pfinj, np.inf)
        highs.changeRowsBounds(len(self._flow_rows), self._flow_rows, lower, upper)
        fixed = self._fixed_angle | ~energized
        angle = np.where(self._fixed_angle & energized, self._case_angle, 0.0)
        highs.changeColsBounds(
            len(cols),
            cols.astype(np.int32),
            np.where(fixed, angle, -np.inf),
            np.where(fixed, angle, np.inf),
        )
        self._usable, self._energized, self._current = usable, energized, network
        self._bf = bf
        self._reset_contingencies()

    def _reset_contingencies(self) -> None:
        """Drop the N-1 rows of the previous topology; outage factors for the current one."""
        if self._n1_pairs:
            n_row, n_col = self._base_shape
            rows = np.arange(n_row, self._highs.getNumRow(), dtype=np.int32)
            cols = np.arange(n_col, self._highs.getNumCol(), dtype=np.int32)
            self._highs.deleteRows(len(rows), rows)
            self._highs.deleteCols(len(cols), cols)
            self._n1_pairs = []
        self._n1_set: set[tuple[int, int]] = set()
        if self.contingencies.size:
            self._lodf, self._n1_valid = self._outage_factors()

    def _outage_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """(LODF [n_branch, n_contingency], valid [n_contingency]) of the current topology;
        invalid (zero) columns for contingencies out of service or islanding."""
        branches, n = self.contingencies, len(self.contingencies)
        keep = self._energized.copy()
        keep[self._ref] = False
        buses = np.flatnonzero(keep)
        # angles per unit sent from the from to the to end of each contingency (sparse LU: a
        # dense inverse costs ~100x more on a busy machine)
        sent = np.zeros((self._n_bus, n))
        sent[self._f_bus[branches], np.arange(n)] += 1.0
        sent[self._t_bus[branches], np.arange(n)] -= 1.0
        angles = np.zeros((self._n_bus, n))
        reduced = sp.csc_matrix(self._current.bbus[buses][:, buses])
        angles[buses] = splu(reduced).solve(sent[buses])
        transfer = self._current.bf @ angles  # [n_branch, n]: flow on l per unit sent over k
        # a near-zero remainder is checked on the graph: a long parallel path also gives one
        splits = near_islanding(transfer, branches)
        if splits.any():
            found = islanding(
                self._f_bus, self._t_bus, self._usable, self._ref, self._n_bus, branches
            )
            splits &= np.asarray(found)
        valid = self._usable[branches] & ~splits
        return np.where(valid, lodf_columns(transfer, branches, splits), 0.0), valid

    def _add_violated_pairs(self, x: np.ndarray) -> bool:
        """Add a soft N-1 row for every (branch, contingency) that `x` violates and that has
        none yet; False when there is none."""
        branches = self.contingencies
        pf = self._current.bf @ (x[self._va_cols] / self.problem.angle_scale) + self._current.pfinj
        post = pf[:, None] + self._lodf * pf[branches][None, :]  # p.u.
        limit = np.full(self._n_branch, np.inf)
        limit[self._rated] = np.where(self._usable[self._rated], self._limit, np.inf)
        over = np.abs(post) - limit[:, None] > N1_TOLERANCE_MW / self._base
        over &= self._n1_valid[None, :]
        over[branches, np.arange(len(branches))] = False
        pairs = [pair for pair in zip(*np.nonzero(over), strict=True) if pair not in self._n1_set]
        if not pairs:
            return False
        highs, n = self._highs, len(pairs)
        first_col = highs.getNumCol()
        cost = np.full(2 * n, self.n1_penalty * self._base)
        empty = np.zeros(0, np.int32)
        highs.addCols(2 * n, cost, np.zeros(2 * n), np.full(2 * n, np.inf), 0, empty, empty, [])
        starts, indices, values, lower, upper = [], [], [], [], []
        for i, (branch, position) in enumerate(pairs):
            outage = branches[position]
            factor = self._lodf[branch, position]
            row = self._bf[branch] + factor * self._bf[outage]
            columns = np.flatnonzero(row)
            starts.append(len(indices))
            indices += [*self._va_cols[columns], first_col + i, first_col + n + i]
            values += [*row[columns], -1.0, 1.0]
            shift = self._current.pfinj[branch] + factor * self._current.pfinj[outage]
            lower.append(-limit[branch] - shift)
            upper.append(limit[branch] - shift)
        highs.addRows(
            n,
            np.array(lower),
            np.array(upper),
            len(indices),
            np.array(starts, np.int32),
            np.array(indices, np.int32),
            np.array(values),
        )
        self._n1_pairs += pairs
        self._n1_set.update(pairs)
        return True

    # --- bounds of one step -----------------------------------------------------------------

    def _gen_bounds(self, available: np.ndarray, pg_prev: np.ndarray | None):
        """(lower, upper) MW per generator: see the module notes for the rule."""
        floor = np.where(self._renewable, 0.0, np.minimum(self._pmin, available))
        lower, upper = floor, available
        if pg_prev is not None:
            limited = ~self._renewable & np.isfinite(self._ramp_mw)
            ramp = np.where(limited, self._ramp_mw, 0.0)
            lower = np.where(limited, np.clip(pg_prev - ramp, floor, available), lower)
            upper = np.where(limited, np.clip(pg_prev + ramp, floor, available), upper)
        on = self._network.gen_active & (available > 0) & self._energized[self._gen_bus]
        return np.where(on, lower, 0.0), np.where(on, upper, 0.0), on

    def solve(
        self,
        pd: np.ndarray,
        available: np.ndarray,
        *,
        pg_prev: np.ndarray | None = None,
        line_status: np.ndarray | None = None,
    ) -> ScedResult:
        """Least-cost dispatch for one step: `pd` MW per bus, `available` MW per unit (0 for a
        unit out of service), `pg_prev` MW per unit for ramp limits (None: none), `line_status`
        bool per branch (None: all in). Never raises on a failed solve (see ScedResult)."""
        pd = _vector("pd", pd, self._n_bus, "MW per bus")
        available = _vector("available", available, self._n_gen, "MW per generator")
        if np.any(available < 0):
            index = int(np.flatnonzero(available < 0)[0])
            raise ValueError(f"Sced.solve: available[{index}] is {available[index]}; must be >= 0")
        if pg_prev is not None:
            pg_prev = _vector("pg_prev", pg_prev, self._n_gen, "MW per generator")
        self._apply_topology(_line_status(line_status, self._n_branch))

        base, highs = self._base, self._highs
        lower, upper, on = self._gen_bounds(available, pg_prev)
        gens = self.problem.gens
        highs.changeColsBounds(
            len(self._pg_cols), self._pg_cols, lower[gens] / base, upper[gens] / base
        )
        live = self._energized
        rhs = np.where(live, _bus_injection_rhs(self._current, pd, self._gs, base), 0.0)
        highs.changeRowsBounds(len(rhs), self._balance_rows, rhs, rhs)
        sheddable = np.where(live, np.maximum(pd, 0.0), 0.0) / base
        highs.changeColsBounds(len(sheddable), self._shed_cols, np.zeros(self._n_bus), sheddable)

        start = time.perf_counter()
        status, x = self._run()
        while status is None and self.contingencies.size and self._add_violated_pairs(x):
            status, x = self._run()
        elapsed = time.perf_counter() - start
        if status is not None and self._is_qp:
            if self._fallback is None:
                self._fallback = Sced(self.grid, **self._settings)
            result = self._fallback.solve(pd, available, pg_prev=pg_prev, line_status=line_status)
            return replace(
                result,
                status=f"{result.status} (piecewise-linear fallback; QP: {status})",
                solve_seconds=elapsed + result.solve_seconds,
            )
        if status is not None:
            return self._failure(status, elapsed)
        return self._result(x, pd, available, on, elapsed)

    def _run(self) -> tuple[str | None, np.ndarray]:
        """(None, x) after an optimal solve, else (HiGHS's status, zeros)."""
        highs = self._highs
        highs.run()
        if highs.getModelStatus() == highspy.HighsModelStatus.kSolveError:
            _, tolerance = highs.getOptionValue("primal_feasibility_tolerance")
            highs.clearSolver()
            highs.setOptionValue("primal_feasibility_tolerance", RETRY_FEASIBILITY_TOLERANCE)
            highs.run()
            highs.setOptionValue("primal_feasibility_tolerance", tolerance)
        status = highs.getModelStatus()
        x = np.asarray(highs.getSolution().col_value)
        if status != highspy.HighsModelStatus.kOptimal or not np.all(np.isfinite(x)):
            return highs.modelStatusToString(status), np.zeros(0)
        return None, x

    def _failure(self, status: str, elapsed: float) -> ScedResult:
        return ScedResult(
            success=False,
            status=status,
            pg=np.zeros(self._n_gen),
            curtailed=np.zeros(self._n_gen),
            shed=np.zeros(self._n_bus),
            pf=np.zeros(self._n_branch),
            overload=np.zeros(self._n_branch),
            cost=float("inf"),
            objective=float("inf"),
            solve_seconds=elapsed,
        )

    def _result(self, x, pd, available, on, elapsed) -> ScedResult:
        base, problem, network = self._base, self.problem, self._current
        va = x[self._va_cols] / problem.angle_scale
        pg = np.zeros(self._n_gen)
        pg[problem.gens] = x[self._pg_cols] * base
        pg = np.where(on, pg, 0.0)
        # the LP meets its bounds to HiGHS's tolerance (seen: 2e-12 MW above a plant's
        # availability): report a renewable's output within what the weather gives
        pg = np.where(self._renewable, np.minimum(pg, available), pg)
        pf = np.where(self._usable, (network.bf @ va + network.pfinj) * base, 0.0)
        islanded = self._network.bus_active & ~self._energized
        shed = np.where(islanded, np.maximum(pd, 0.0), x[self._shed_cols] * base)
        curtailed = np.where(self._renewable & self._network.gen_active, available - pg, 0.0)
        overload = np.zeros(self._n_branch)
        overload[self._rated] = (x[self._up_cols] + x[self._down_cols]) * base
        n1_overload = float(np.sum(x[self._base_shape[1] :])) * base
        cost = float(np.sum(np.where(on, cost_per_gen(self._costs, pg), 0.0)))
        objective = (
            cost
            + self.value_of_lost_load * float(shed.sum())
            + self.curtailment_price * float(curtailed.sum())
            + self.overload_penalty * float(overload.sum())
            + self.n1_penalty * n1_overload
        )
        return ScedResult(
            success=True,
            status="Optimal",
            pg=pg,
            curtailed=curtailed,
            shed=shed,
            pf=pf,
            overload=overload,
            cost=cost,
            objective=objective,
            solve_seconds=elapsed,
        )
