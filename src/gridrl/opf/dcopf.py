"""DC optimal power flow with HiGHS, in MATPOWER's formulation (PYPOWER's `dcopf`).

Variables: bus angles Va (rad, reference buses fixed at their case angle), in-service generator
outputs Pg (p.u.) and one cost variable y ($/h) per piecewise-linear generator. Constraints:
nodal balance Bbus·Va + Pbusinj + (Pd + Gs)/baseMVA = Cg·Pg, branch ratings
|Bf·Va + Pfinj| <= rate_a/baseMVA on rated branches, branch angle-difference limits where the case
sets them (as MATPOWER's `makeAang`), Pmin <= Pg <= Pmax, and y above every segment of its
generator's cost curve. Objective: quadratic + linear polynomial costs (a QP when any quadratic
term is non-zero) plus the y's.

HiGHS's QP solver does not scale the problem itself: with angles in radians against branch
susceptances of up to 2e4 p.u. it declares convex problems (case1354 with quadratic costs)
non-convex. The angle columns therefore hold Va times the median bus-susceptance magnitude
(`angle_scale`), the cost variables hold y/baseMVA (per unit, like Pg), and the QP
regularisation is lowered from HiGHS's 1e-7: each of the three otherwise shifts the dispatch of
flat optima by up to hundredths of a MW.

The model is assembled once (`build_dc_opf`, plain numpy/scipy data) and loaded once into a HiGHS
instance (`DcOpfSolver`); loads and generator limits then change by bounds only, and each re-solve
starts from the previous basis. SCED extends the same problem with further columns and rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from gridrl.cases.costs import GenCosts, gen_costs
from gridrl.cases.grid import BusType, Grid
from gridrl.cases.ppc import CaseError
from gridrl.opf.network import DcNetwork, OpfInputError, dc_network, host_array

TWO_PI = 2.0 * np.pi
QP_REGULARIZATION = 1e-10


@dataclass(frozen=True)
class QuadraticProgram:
    """minimize ½·xᵀ·hessian·x + costᵀ·x + offset  s.t.  row_lower <= a·x <= row_upper,
    col_lower <= x <= col_upper (infinite bounds allowed)."""

    cost: np.ndarray
    offset: float
    hessian: sp.csc_matrix | None  # None for a linear program
    a: sp.csc_matrix
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray


@dataclass(frozen=True)
class DcOpfProblem:
    """A DC-OPF as a QuadraticProgram plus where each part of the grid sits in it."""

    program: QuadraticProgram
    network: DcNetwork
    costs: GenCosts
    base_mva: float
    angle_scale: float  # the Va columns hold angle_scale·Va (rad), for the QP solver's sake
    gens: np.ndarray  # int: the generator of each Pg column (in-service generators)
    rated_branches: np.ndarray  # int: the branch of each flow-limit row
    angle_branches: np.ndarray  # int: the branch of each angle-difference row
    va: slice  # columns
    pg: slice
    y: slice
    balance: slice  # rows, one per bus
    flow: slice
    angle: slice
    epigraph: slice


@dataclass(frozen=True)
class DcOpfResult:
    """A DC-OPF solution in MW, $/h, $/MWh and rad. Where `success` is False, `status` says why,
    `cost` is inf and the arrays are zeros (never NaN)."""

    success: bool
    status: str  # HiGHS's model status, e.g. "Optimal", "Infeasible", with a hint where known
    cost: float  # $/h
    pg: np.ndarray  # [n_gen] MW; 0 for generators out of service
    pf: np.ndarray  # [n_branch] MW at the from end; 0 for branches out of service
    va: np.ndarray  # [n_bus] rad
    lmp: np.ndarray  # [n_bus] $/MWh, marginal cost of one more MW of load at each bus
    solve_time: float  # s, HiGHS's run only


def _checked(grid: Grid, field: str, where: np.ndarray, what: str, allow_inf=False) -> np.ndarray:
    """A Grid field, refusing NaN (and, unless allowed, ±inf) on the elements in `where`."""
    values = host_array(grid, field)
    bad = where & (np.isnan(values) if allow_inf else ~np.isfinite(values))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise OpfInputError(f"grid.{field} of {what} {index} is {values[index]}")
    return values


def _bus_injection_rhs(network: DcNetwork, pd: np.ndarray, gs: np.ndarray, base_mva: float):
    """Right-hand side of the balance rows: -(Pbusinj + (Pd + Gs)/baseMVA), 0 at isolated buses."""
    return np.where(network.bus_active, -(network.pbusinj + (pd + gs) / base_mva), 0.0)


def _angle_limits(grid: Grid, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MATPOWER's makeAang: branches whose limits are set (non-zero, inside ±360°), with -inf/inf
    where one side is zero."""
    angmin = _checked(grid, "angmin", active, "branch")
    angmax = _checked(grid, "angmax", active, "branch")
    limited = ((angmin != 0) & (angmin > -TWO_PI)) | ((angmax != 0) & (angmax < TWO_PI))
    branches = np.flatnonzero(active & limited)
    lower = np.where(angmin[branches] != 0, angmin[branches], -np.inf)
    upper = np.where(angmax[branches] != 0, angmax[branches], np.inf)
    return branches, lower, upper


def _epigraph_rows(costs: GenCosts, column_of_gen: np.ndarray, n_gen: int):
    """Blocks [Pg | y/base] of the rows slope·Pg - y/base <= -intercept/base (Pg in p.u.):
    y above every segment."""
    n_segment, n_pwl = len(costs.segment_slope), len(costs.pwl_gens)
    segments = np.arange(n_segment)
    columns = column_of_gen[costs.pwl_gens][costs.segment_gen]
    pg_block = sp.csr_matrix((costs.segment_slope, (segments, columns)), shape=(n_segment, n_gen))
    y_block = sp.csr_matrix(
        (-np.ones(n_segment), (segments, costs.segment_gen)), shape=(n_segment, n_pwl)
    )
    return pg_block, y_block


def opf_costs(grid: Grid, active: np.ndarray) -> GenCosts:
    """`gen_costs`, with cost data the OPF cannot take raised as OpfInputError (same message)."""
    try:
        return gen_costs(grid, active)
    except CaseError as error:
        raise OpfInputError(str(error)) from error


def build_dc_opf(grid: Grid) -> DcOpfProblem:
    """Assemble the DC-OPF of `grid` (sparse, per unit); raises OpfInputError on bad data."""
    network = dc_network(grid)
    base = float(grid.base_mva)
    gens = np.flatnonzero(network.gen_active)
    costs = opf_costs(grid, network.gen_active)
    pd = _checked(grid, "pd", network.bus_active, "bus")
    gs = _checked(grid, "gs", network.bus_active, "bus")
    pmin = _checked(grid, "pmin", network.gen_active, "generator", allow_inf=True)[gens]
    pmax = _checked(grid, "pmax", network.gen_active, "generator", allow_inf=True)[gens]
    rate_a = _checked(grid, "rate_a", network.branch_active, "branch", allow_inf=True)
    rated = np.flatnonzero(network.branch_active & (rate_a > 0) & np.isfinite(rate_a))
    angle_branches, angle_lower, angle_upper = _angle_limits(grid, network.branch_active)
    n_bus, n_gen, n_pwl = len(network.bus_active), len(gens), len(costs.pwl_gens)
    n_segment = len(costs.segment_slope)

    # columns [angle_scale·Va | Pg | y/base], all per unit; reference and isolated buses keep
    # their case angle
    susceptances = np.abs(network.bbus.data)
    angle_scale = float(np.median(susceptances[susceptances > 0])) if susceptances.any() else 1.0
    fixed = (host_array(grid, "bus_type", np.int64) == BusType.REF) | ~network.bus_active
    va_case = host_array(grid, "va") * angle_scale
    col_lower = np.r_[np.where(fixed, va_case, -np.inf), pmin / base, np.full(n_pwl, -np.inf)]
    col_upper = np.r_[np.where(fixed, va_case, np.inf), pmax / base, np.full(n_pwl, np.inf)]

    # rows [balance | flow limits | angle limits | epigraph]
    column_of_gen = np.zeros(len(network.gen_active), np.int64)
    column_of_gen[gens] = np.arange(n_gen)
    cg = sp.csr_matrix(
        (np.ones(n_gen), (host_array(grid, "gen_bus", np.int64)[gens], np.arange(n_gen))),
        shape=(n_bus, n_gen),
    )
    epigraph_pg, epigraph_y = _epigraph_rows(costs, column_of_gen, n_gen)
    a = sp.bmat(
        [
            [network.bbus / angle_scale, -cg, None],
            [network.bf[rated] / angle_scale, None, None],
            [network.incidence[angle_branches] / angle_scale, None, None],
            [None, epigraph_pg, epigraph_y],
        ],
        format="csc",
    )
    balance_rhs = _bus_injection_rhs(network, pd, gs, base)
    flow_limit = rate_a[rated] / base
    row_lower = np.r_[
        balance_rhs, -flow_limit - network.pfinj[rated], angle_lower, np.full(n_segment, -np.inf)
    ]
    row_upper = np.r_[
        balance_rhs, flow_limit - network.pfinj[rated], angle_upper, -costs.segment_intercept / base
    ]

    quadratic = costs.quadratic[gens] * base**2
    hessian = None
    if np.any(quadratic > 0):
        hessian = sp.diags(np.r_[np.zeros(n_bus), 2.0 * quadratic, np.zeros(n_pwl)], format="csc")
    program = QuadraticProgram(
        cost=np.r_[np.zeros(n_bus), costs.linear[gens] * base, np.full(n_pwl, base)],
        offset=float(np.sum(costs.constant[gens])),
        hessian=hessian,
        a=a,
        col_lower=col_lower,
        col_upper=col_upper,
        row_lower=row_lower,
        row_upper=row_upper,
    )
    rows = np.cumsum([0, n_bus, len(rated), len(angle_branches), n_segment]).tolist()
    return DcOpfProblem(
        program=program,
        network=network,
        costs=costs,
        base_mva=base,
        angle_scale=angle_scale,
        gens=gens,
        rated_branches=rated,
        angle_branches=angle_branches,
        va=slice(0, n_bus),
        pg=slice(n_bus, n_bus + n_gen),
        y=slice(n_bus + n_gen, n_bus + n_gen + n_pwl),
        balance=slice(rows[0], rows[1]),
        flow=slice(rows[1], rows[2]),
        angle=slice(rows[2], rows[3]),
        epigraph=slice(rows[3], rows[4]),
    )


class _Highs(highspy.Highs):
    """HiGHS with `time_limit` seconds for each run: HiGHS itself counts the limit against the
    object's whole run time, so re-solves would start failing once their total passed it
    (ERGO-Code/HiGHS#1331, #1477)."""

    def __init__(self, time_limit: float):
        super().__init__()
        self.time_limit = float(time_limit)

    def run(self):
        self.setOptionValue("time_limit", self.getRunTime() + self.time_limit)
        return super().run()


def _highs_model(program: QuadraticProgram, time_limit: float) -> highspy.Highs:
    highs = _Highs(time_limit)
    highs.setOptionValue("output_flag", False)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = program.a.shape[1], program.a.shape[0]
    lp.col_cost_, lp.offset_ = program.cost, program.offset
    lp.col_lower_, lp.col_upper_ = program.col_lower, program.col_upper
    lp.row_lower_, lp.row_upper_ = program.row_lower, program.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = lp.num_col_, lp.num_row_
    lp.a_matrix_.start_ = program.a.indptr
    lp.a_matrix_.index_ = program.a.indices
    lp.a_matrix_.value_ = program.a.data
    highs.passModel(lp)
    if program.hessian is not None:
        highs.setOptionValue("qp_regularization_value", QP_REGULARIZATION)
        lower = sp.csc_matrix(sp.tril(program.hessian))
        lower.eliminate_zeros()
        highs.passHessian(
            lower.shape[0],
            lower.nnz,
            highspy.HessianFormat.kTriangular,
            lower.indptr,
            lower.indices,
            lower.data,
        )
    return highs


class DcOpfSolver:
    """A DC-OPF loaded into HiGHS once. Change loads or generator limits, then `solve()` again:
    only bounds change, so HiGHS restarts from the previous basis (`warm_start=False` discards
    it)."""

    def __init__(self, problem: DcOpfProblem, *, time_limit: float = 60.0):
        self.problem = problem
        self._highs = _highs_model(problem.program, time_limit)
        network = problem.network
        self._balance_rows = np.arange(problem.balance.start, problem.balance.stop, dtype=np.int32)
        self._pg_cols = np.arange(problem.pg.start, problem.pg.stop, dtype=np.int32)
        # demand and capacity, kept for the infeasibility hint
        rhs = problem.program.row_upper[problem.balance]
        self._demand = float(-np.sum(rhs[network.bus_active]) * problem.base_mva)
        self._pmin = problem.program.col_lower[problem.pg] * problem.base_mva
        self._pmax = problem.program.col_upper[problem.pg] * problem.base_mva

    def set_load(self, pd: np.ndarray, gs: np.ndarray | None = None) -> None:
        """New bus loads `pd` (and shunt conductances `gs`), MW [n_bus]."""
        network, base = self.problem.network, self.problem.base_mva
        n_bus = len(network.bus_active)
        pd = np.asarray(pd, np.float64)
        gs = np.zeros(n_bus) if gs is None else np.asarray(gs, np.float64)
        for name, values in (("pd", pd), ("gs", gs)):
            if values.shape != (n_bus,) or not np.all(np.isfinite(values)):
                raise OpfInputError(f"set_load: {name} must be {n_bus} finite values (MW)")
        rhs = _bus_injection_rhs(network, pd, gs, base)
        self._highs.changeRowsBounds(len(rhs), self._balance_rows, rhs, rhs)
        self._demand = float(np.sum((pd + gs)[network.bus_active]))

    def set_gen_limits(self, pmin: np.ndarray, pmax: np.ndarray) -> None:
        """New generator limits, MW [n_gen] (entries of out-of-service generators are ignored)."""
        n_gen = len(self.problem.network.gen_active)
        pmin, pmax = np.asarray(pmin, np.float64), np.asarray(pmax, np.float64)
        for name, values in (("pmin", pmin), ("pmax", pmax)):
            if values.shape != (n_gen,) or np.isnan(values).any():
                raise OpfInputError(f"set_gen_limits: {name} must be {n_gen} numbers (MW)")
        self._pmin, self._pmax = pmin[self.problem.gens], pmax[self.problem.gens]
        base = self.problem.base_mva
        self._highs.changeColsBounds(
            len(self._pg_cols), self._pg_cols, self._pmin / base, self._pmax / base
        )

    def _failure_status(self, status: highspy.HighsModelStatus) -> str:
        text = self._highs.modelStatusToString(status)
        if status in (
            highspy.HighsModelStatus.kInfeasible,
            highspy.HighsModelStatus.kUnboundedOrInfeasible,
        ):
            capacity, minimum = float(np.sum(self._pmax)), float(np.sum(self._pmin))
            if self._demand > capacity:
                text += f": demand {self._demand:.1f} MW exceeds capacity {capacity:.1f} MW"
            elif self._demand < minimum:
                text += f": demand {self._demand:.1f} MW is below minimum output {minimum:.1f} MW"
        return text

    def solve(self, *, warm_start: bool = True) -> DcOpfResult:
        """Solve the current problem; never raises on an infeasible or failed solve."""
        highs, problem = self._highs, self.problem
        if not warm_start:
            highs.clearSolver()
        start = time.perf_counter()
        highs.run()
        elapsed = time.perf_counter() - start
        status = highs.getModelStatus()
        solution = highs.getSolution()
        x = np.asarray(solution.col_value)
        duals = np.asarray(solution.row_dual)
        cost = highs.getInfo().objective_function_value
        network = problem.network
        n_bus, n_gen = len(network.bus_active), len(network.gen_active)
        n_branch = len(network.branch_active)
        solved = status == highspy.HighsModelStatus.kOptimal
        if not (solved and np.all(np.isfinite(x)) and np.all(np.isfinite(duals))):
            status_text = self._failure_status(status) if not solved else "non-finite solution"
            return DcOpfResult(
                success=False,
                status=status_text,
                cost=float("inf"),
                pg=np.zeros(n_gen),
                pf=np.zeros(n_branch),
                va=np.zeros(n_bus),
                lmp=np.zeros(n_bus),
                solve_time=elapsed,
            )
        base = problem.base_mva
        va = x[problem.va] / problem.angle_scale
        pg = np.zeros(n_gen)
        pg[problem.gens] = x[problem.pg] * base
        pf = np.where(network.branch_active, (network.bf @ va + network.pfinj) * base, 0.0)
        # a MW more load at a bus lowers its balance row's bound by 1/base: d(cost) = -dual/base
        lmp = np.where(network.bus_active, -duals[problem.balance] / base, 0.0)
        return DcOpfResult(
            success=True,
            status=highs.modelStatusToString(status),
            cost=float(cost),
            pg=pg,
            pf=pf,
            va=va,
            lmp=lmp,
            solve_time=elapsed,
        )


def dc_opf(grid: Grid, *, time_limit: float = 60.0) -> DcOpfResult:
    """Minimum-cost DC dispatch of `grid` (MATPOWER's DC-OPF), solved by HiGHS (LP or QP)."""
    return DcOpfSolver(build_dc_opf(grid), time_limit=time_limit).solve()
