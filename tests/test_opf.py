"""DC-OPF against PYPOWER's `rundcopf` (MATPOWER's DC-OPF, solved by PIPS), in float64.

The reference is PYPOWER 5.1.21 itself, run on the same case arrays (the Grid written back as a
MATPOWER version-2 case), so that synthetic variants (piecewise-linear costs, elements out of
service, tight ratings) are checked against the same formulation as the PGLib files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridrl.cases import CostModel, Grid, read_matpower
from gridrl.opf import DcOpfSolver, OpfInputError, build_dc_opf, cost_per_gen, dc_opf, gen_costs

OBJECTIVE_RTOL = 1e-4  # the 0.01%
MW_ATOL = 1e-5  # PIPS stops at a relative gap of ~1e-8 of the objective
PRICE_ATOL = 1e-5  # $/MWh


def pypower():
    """PYPOWER's API; the tests that compare with it skip where it is not installed."""
    return pytest.importorskip("pypower.api", reason="PYPOWER is the DC-OPF reference")


def to_ppc(grid: Grid) -> dict:
    """The Grid as MATPOWER version-2 arrays, for PYPOWER."""
    a = {name: np.asarray(getattr(grid, name)) for name in grid.__dataclass_fields__}
    ids = np.asarray(grid.bus_ids, float)
    n_bus, n_gen, n_branch = grid.n_bus, grid.n_gen, grid.n_branch
    bus = np.c_[
        ids, a["bus_type"], a["pd"], a["qd"], a["gs"], a["bs"], np.ones(n_bus), a["vm"],
        np.rad2deg(a["va"]), a["base_kv"], np.ones(n_bus), a["vmax"], a["vmin"],
    ]  # fmt: skip
    # PYPOWER's loadcase takes a dict with fewer than 21 gen columns for a version-1 case and
    # then overwrites every branch angle limit with ±360°: give it all 21 columns
    gen = np.zeros((n_gen, 21))
    gen[:, :10] = np.c_[
        ids[a["gen_bus"]], a["pg"], a["qg"], a["qmax"], a["qmin"], a["vg"],
        np.full(n_gen, grid.base_mva), a["gen_status"], a["pmax"], a["pmin"],
    ]  # fmt: skip
    branch = np.c_[
        ids[a["f_bus"]], ids[a["t_bus"]], a["r"], a["x"], a["b"],
        np.where(np.isinf(a["rate_a"]), 0.0, a["rate_a"]), np.zeros((n_branch, 2)), a["tap"],
        np.rad2deg(a["shift"]), a["branch_status"], np.rad2deg(a["angmin"]),
        np.rad2deg(a["angmax"]),
    ]  # fmt: skip
    n_poly, n_points = a["cost_poly"].shape[1], a["cost_pwl"].shape[1]
    gencost = np.zeros((n_gen, 4 + max(n_poly, 2 * n_points)))
    pwl = a["cost_model"] == CostModel.PIECEWISE_LINEAR
    gencost[:, 0] = a["cost_model"]
    gencost[:, 3] = np.where(pwl, n_points, n_poly)
    gencost[~pwl, 4 : 4 + n_poly] = a["cost_poly"][~pwl]
    gencost[pwl, 4 : 4 + 2 * n_points] = a["cost_pwl"][pwl].reshape(-1, 2 * n_points)
    return {"version": "2", "baseMVA": grid.base_mva, "bus": bus, "gen": gen, "branch": branch,
            "gencost": gencost}  # fmt: skip


def pypower_dcopf(grid: Grid, *, tight: bool = False) -> dict:
    """PYPOWER's rundcopf. `tight`: PIPS to 1e-9 instead of its defaults, which leave ~1e-5 MW in
    the dispatch of degenerate (piecewise-linear) problems; some PGLib cases fail to converge that
    tightly, so the PGLib comparisons run rundcopf as it comes."""
    options = (
        {f"PDIPM_{name}TOL": 1e-9 for name in ("FEAS", "GRAD", "COMP", "COST")} if tight else {}
    )
    api = pypower()
    return api.rundcopf(to_ppc(grid), api.ppoption(VERBOSE=0, OUT_ALL=0, **options))


def assert_matches_reference(result, reference: dict) -> None:
    assert reference["success"], "the PYPOWER reference did not solve"
    assert result.success, result.status
    assert result.cost == pytest.approx(reference["f"], rel=OBJECTIVE_RTOL)
    np.testing.assert_allclose(result.pg, reference["gen"][:, 1], atol=MW_ATOL)
    np.testing.assert_allclose(result.pf, reference["branch"][:, 13], atol=MW_ATOL)
    np.testing.assert_allclose(result.lmp, reference["bus"][:, 13], atol=PRICE_ATOL)


@pytest.fixture(scope="session")
def pglib_solved(pglib_dir: Path) -> dict[str, tuple[Grid, object, dict]]:
    """Every PGLib case of the reference folder: (grid, our result, PYPOWER's result)."""
    solved = {}
    for path in sorted(pglib_dir.glob("*.m")):
        grid = read_matpower(path)
        solved[path.stem] = (grid, dc_opf(grid), pypower_dcopf(grid))
    assert solved, f"no .m case in {pglib_dir}"
    return solved


@pytest.fixture(scope="module")
def case118(pglib_dir: Path) -> Grid:
    return read_matpower(pglib_dir / "pglib_opf_case118_ieee.m")


def test_objective_matches_pypower_on_every_pglib_case(pglib_solved):
    for name, (_, result, reference) in pglib_solved.items():
        if reference["success"]:
            assert result.success, f"{name}: {result.status}"
            assert result.cost == pytest.approx(reference["f"], rel=OBJECTIVE_RTOL), name
        else:  # no DC solution (the small-angle-difference variants): infeasible for both
            assert not result.success, f"{name}: PYPOWER fails but we found {result.cost}"
            assert result.status.startswith("Infeasible"), f"{name}: {result.status}"


def test_dispatch_flows_and_prices_match_pypower(pglib_solved):
    for name, (_, result, reference) in pglib_solved.items():
        if not reference["success"]:
            continue
        np.testing.assert_allclose(result.pg, reference["gen"][:, 1], atol=MW_ATOL, err_msg=name)
        np.testing.assert_allclose(result.pf, reference["branch"][:, 13], atol=MW_ATOL)
        np.testing.assert_allclose(result.lmp, reference["bus"][:, 13], atol=PRICE_ATOL)


def test_solution_respects_limits_and_balances(pglib_solved):
    for name, (grid, result, _) in pglib_solved.items():
        if not result.success:
            continue
        tol = 1e-6
        assert np.all(result.pg >= np.asarray(grid.pmin) - tol), name
        assert np.all(result.pg <= np.asarray(grid.pmax) + tol), name
        assert np.all(np.abs(result.pf) <= np.asarray(grid.rate_a) + tol), name
        angle = result.va[np.asarray(grid.f_bus)] - result.va[np.asarray(grid.t_bus)]
        assert np.all(angle >= np.asarray(grid.angmin) - tol), name
        assert np.all(angle <= np.asarray(grid.angmax) + tol), name
        demand = np.sum(np.asarray(grid.pd) + np.asarray(grid.gs))
        assert np.sum(result.pg) == pytest.approx(demand, abs=tol), name


def test_cost_is_the_cost_of_the_dispatch(pglib_solved):
    for name, (grid, result, _) in pglib_solved.items():
        if not result.success:
            continue
        costs = gen_costs(grid, np.asarray(grid.gen_status))
        assert np.sum(cost_per_gen(costs, result.pg)) == pytest.approx(result.cost, rel=1e-9), name


def test_flows_are_the_dc_power_flow_of_the_dispatch(pglib_solved):
    for name, (grid, result, _) in pglib_solved.items():
        if not result.success:
            continue
        ppc = to_ppc(grid)
        ppc["gen"][:, 1] = result.pg
        flow, success = pypower().rundcpf(ppc, pypower().ppoption(VERBOSE=0, OUT_ALL=0))
        assert success, name
        np.testing.assert_allclose(result.pf, flow["branch"][:, 13], atol=1e-6, err_msg=name)
        np.testing.assert_allclose(result.va, np.deg2rad(flow["bus"][:, 8]), atol=1e-9)


def with_quadratic_costs(grid: Grid) -> Grid:
    """`grid` with quadratic terms added to its costs (the PGLib files' are zero, so their
    DC-OPFs are LPs), growing with the generator index so that no two units tie."""
    poly = np.asarray(grid.cost_poly).copy()
    poly[:, -3] += 0.002 + 0.0005 * np.arange(grid.n_gen)
    return grid.replace(cost_poly=poly)


def piecewise_linear(grid: Grid, n_points: int) -> Grid:
    """`grid` with the quadratic costs of most of its dispatchable generators sampled at
    `n_points` breakpoints over [pmin, pmax]."""
    pmin, pmax = np.asarray(grid.pmin), np.asarray(grid.pmax)
    mw = pmin[:, None] + (pmax - pmin)[:, None] * np.linspace(0, 1, n_points)
    poly = np.asarray(grid.cost_poly)
    cost = sum(poly[:, [k]] * mw ** (poly.shape[1] - 1 - k) for k in range(poly.shape[1]))
    model = np.where(pmax > pmin, CostModel.PIECEWISE_LINEAR, CostModel.POLYNOMIAL)
    model[::3] = CostModel.POLYNOMIAL  # a mix: both cost forms in one problem
    return grid.replace(cost_model=model, cost_pwl=np.stack([mw, cost], axis=-1))


def test_piecewise_linear_costs_match_pypower(case118):
    grid = piecewise_linear(with_quadratic_costs(case118), n_points=6)
    assert_matches_reference(dc_opf(grid), pypower_dcopf(grid, tight=True))


@pytest.mark.parametrize("case", ["pglib_opf_case118_ieee", "pglib_opf_case1354_pegase"])
def test_quadratic_costs_solve_as_a_qp_and_match_pypower(pglib_dir, case):
    # case1354 is the one where unscaled angles made HiGHS's QP solver fail (see dcopf.py)
    grid = with_quadratic_costs(read_matpower(pglib_dir / f"{case}.m"))
    assert build_dc_opf(grid).program.hessian is not None
    assert_matches_reference(dc_opf(grid), pypower_dcopf(grid, tight=True))


def test_elements_out_of_service_and_unrated_match_pypower(case118):
    grid = case118
    gen_status = np.asarray(grid.gen_status).copy()
    gen_status[11] = False
    branch_status = np.asarray(grid.branch_status).copy()
    branch_status[[5, 20]] = False
    rate_a = np.asarray(grid.rate_a).copy()
    rate_a[::4] = np.inf
    bus_type = np.asarray(grid.bus_type).copy()
    leaf = grid.bus_index(117)  # hangs on one branch (12-117), no generator
    bus_type[leaf] = 4
    pd = np.asarray(grid.pd).copy()
    pd[leaf] = 0.0  # an isolated bus is out of the problem; its load is not served
    grid = grid.replace(
        gen_status=gen_status, branch_status=branch_status, rate_a=rate_a, bus_type=bus_type, pd=pd
    )
    result = dc_opf(grid)
    assert_matches_reference(result, pypower_dcopf(grid, tight=True))
    assert result.pg[11] == 0.0
    assert np.all(result.pf[[5, 20]] == 0.0)


def assert_clean_failure(result) -> None:
    assert not result.success
    assert result.cost == np.inf
    for values in (result.pg, result.pf, result.va, result.lmp):
        assert np.all(values == 0.0)


def test_load_beyond_capacity_is_reported_infeasible(case118):
    grid = case118.replace(pd=np.asarray(case118.pd) * 3.0)
    result = dc_opf(grid)
    assert_clean_failure(result)
    assert result.status.startswith("Infeasible: demand")
    assert "exceeds capacity" in result.status


def test_too_tight_ratings_are_reported_infeasible(case118):
    result = dc_opf(case118.replace(rate_a=np.full(case118.n_branch, 1.0)))
    assert_clean_failure(result)
    assert result.status == "Infeasible"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda g: g.replace(pd=np.where(np.arange(g.n_bus) == 3, np.nan, g.pd)),
            "grid.pd of bus 3",
        ),
        (lambda g: g.replace(x=np.where(np.arange(g.n_branch) == 7, 0.0, g.x)), "x·tap"),
        (
            lambda g: g.replace(cost_poly=np.c_[np.ones(g.n_gen), g.cost_poly]),
            "of order 3",
        ),
        (lambda g: g.replace(pd=np.stack([g.pd, g.pd])), "not a batch"),
    ],
    ids=["nan-load", "zero-reactance", "cubic-cost", "batched-grid"],
)
def test_bad_input_raises_a_clear_error(case118, change, message):
    with pytest.raises(OpfInputError, match=message):
        dc_opf(change(case118))


def test_non_convex_piecewise_linear_cost_is_refused(case118):
    grid = piecewise_linear(with_quadratic_costs(case118), n_points=3)
    pwl = np.asarray(grid.cost_pwl).copy()
    gen = 4  # dispatchable, with a piecewise-linear cost
    assert grid.cost_model[gen] == CostModel.PIECEWISE_LINEAR
    pwl[gen, 1, 1] = pwl[gen, 0, 1] + 0.9 * (pwl[gen, 2, 1] - pwl[gen, 0, 1])  # steep, then flat
    with pytest.raises(OpfInputError, match="generator 4 is not convex"):
        dc_opf(grid.replace(cost_pwl=pwl))


def test_warm_resolve_after_bound_changes_equals_a_fresh_solve(case118):
    solver = DcOpfSolver(build_dc_opf(case118))
    first = solver.solve()
    pd = np.asarray(case118.pd) * 1.1
    pmax = np.asarray(case118.pmax) * np.where(np.arange(case118.n_gen) % 2, 0.9, 1.0)
    solver.set_load(pd, np.asarray(case118.gs))
    solver.set_gen_limits(np.asarray(case118.pmin), pmax)
    changed = case118.replace(pd=pd, pmax=pmax)
    fresh = dc_opf(changed)
    for warm_start in (True, False):
        again = solver.solve(warm_start=warm_start)
        assert again.success, again.status
        assert again.cost == pytest.approx(fresh.cost, rel=1e-9)
        np.testing.assert_allclose(again.pg, fresh.pg, atol=1e-6)
        np.testing.assert_allclose(again.lmp, fresh.lmp, atol=1e-6)
    assert fresh.cost > first.cost


def test_solver_recovers_after_an_infeasible_solve(case118):
    solver = DcOpfSolver(build_dc_opf(case118))
    first = solver.solve()
    pd, gs = np.asarray(case118.pd), np.asarray(case118.gs)
    solver.set_load(pd * 3.0, gs)
    assert_clean_failure(solver.solve())
    solver.set_load(pd, gs)
    again = solver.solve()
    assert again.success, again.status
    assert again.cost == pytest.approx(first.cost, rel=1e-9)


def test_time_limit_applies_to_each_solve(case118):
    """HiGHS counts its time limit over all runs of one model; re-solves whose total passes it
    must still succeed."""
    solver = DcOpfSolver(build_dc_opf(case118), time_limit=0.05)
    statuses = set()
    for _ in range(1000):
        statuses.add(solver.solve(warm_start=False).status)
        if solver._highs.getRunTime() > 0.2:
            break
    assert solver._highs.getRunTime() > 0.2  # four times the limit, in total
    assert statuses == {"Optimal"}


def test_solver_updates_refuse_wrong_shapes_and_nan(case118):
    solver = DcOpfSolver(build_dc_opf(case118))
    with pytest.raises(OpfInputError, match="pd must be 118 finite values"):
        solver.set_load(np.ones(117))
    with pytest.raises(OpfInputError, match="pmax must be 54 numbers"):
        solver.set_gen_limits(np.asarray(case118.pmin), np.full(case118.n_gen, np.nan))
