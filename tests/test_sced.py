"""SCED (`gridrl.opf.Sced`) in float64: against `dc_opf` where the two problems coincide, and
ramps, curtailment, shedding, soft ratings, outages, islands and N-1 on their own terms."""

from __future__ import annotations

import numpy as np
import pytest

from gridrl.cases import GenType, load
from gridrl.opf import Sced, dc_opf
from gridrl.opf.sced import FALLBACK_SEGMENTS, N1_TOLERANCE_MW
from gridrl.physics import dc_power_flow, lodf

MW_ATOL = 1e-6
OBJECTIVE_RTOL = 1e-8


@pytest.fixture(scope="module")
def grid():
    return load("ieee118")


def renewable(grid) -> np.ndarray:
    return np.isin(np.asarray(grid.gen_type), (GenType.WIND, GenType.SOLAR))


def radial_branch(grid, bus: int) -> int:
    """The one branch at `bus` (the test picks buses with a single branch)."""
    at_bus = (np.asarray(grid.f_bus) == bus) | (np.asarray(grid.t_bus) == bus)
    (branch,) = np.flatnonzero(at_bus)
    return int(branch)


def assert_flows_match_physics(grid, result, pd, line_status=None) -> None:
    """pf is the DC power flow of the solved injections (load less what was shed)."""
    flows = dc_power_flow(grid, line_status, pd=pd - result.shed, pg=result.pg)
    np.testing.assert_allclose(result.pf, np.asarray(flows.pf), atol=MW_ATOL)


@pytest.mark.parametrize("name", ["ieee118", "case30"])
def test_loose_sced_is_the_dc_opf(name: str) -> None:
    case = load(name)
    reference = dc_opf(case)
    result = Sced(case).solve(np.asarray(case.pd), np.asarray(case.pmax))
    assert result.success, result.status
    assert result.objective == pytest.approx(reference.cost, rel=OBJECTIVE_RTOL)
    assert result.cost == pytest.approx(reference.cost, rel=OBJECTIVE_RTOL)
    np.testing.assert_allclose(result.pg, reference.pg, atol=MW_ATOL)
    np.testing.assert_allclose(result.pf, reference.pf, atol=MW_ATOL)
    assert result.shed.max() < MW_ATOL and result.overload.max() < MW_ATOL


def test_ramp_limits_hold_and_bind(grid) -> None:
    sced = Sced(grid, step_minutes=1.0)
    pd, pmax = np.asarray(grid.pd), np.asarray(grid.pmax)
    first = sced.solve(pd, pmax)
    second = sced.solve(1.1 * pd, pmax, pg_prev=first.pg)
    assert second.success and second.shed.max() < MW_ATOL
    ramp = np.asarray(grid.ramp) * 1.0
    limited = ~renewable(grid) & np.isfinite(ramp)
    step = np.abs(second.pg - first.pg)[limited]
    assert np.all(step <= ramp[limited] + MW_ATOL)
    assert np.any(np.isclose(step, ramp[limited], atol=MW_ATOL))  # some unit is held back
    free = Sced(grid).solve(1.1 * pd, pmax)
    assert second.cost > free.cost + 1.0  # the ramps cost something


def test_unit_below_pmin_moves_to_pmin(grid) -> None:
    unit = int(np.flatnonzero(~renewable(grid))[0])
    pmin = np.asarray(grid.pmin).copy()
    pmin[unit] = 50.0
    ramp = np.asarray(grid.ramp).copy()
    ramp[unit] = 1.0  # 5 MW per step: 0 ± 5 never reaches pmin
    case = grid.replace(pmin=pmin, ramp=ramp)
    pg_prev = np.asarray(Sced(case).solve(np.asarray(case.pd), np.asarray(case.pmax)).pg)
    pg_prev[unit] = 0.0
    result = Sced(case).solve(np.asarray(case.pd), np.asarray(case.pmax), pg_prev=pg_prev)
    assert result.success
    assert result.pg[unit] == pytest.approx(50.0, abs=MW_ATOL)


def test_curtails_what_the_grid_cannot_take(grid) -> None:
    pd = 0.3 * np.asarray(grid.pd)
    available = np.asarray(grid.pmax)  # 4000 MW of wind and solar against 1273 MW of load
    green = renewable(grid)
    result = Sced(grid, curtailment_price=5.0).solve(pd, available)
    assert result.success
    np.testing.assert_allclose(result.curtailed[green], available[green] - result.pg[green])
    assert np.all(result.curtailed[~green] == 0)
    assert result.curtailed.sum() == pytest.approx(available[green].sum() - pd.sum(), abs=1e-5)
    assert np.all(result.pg[~green] < MW_ATOL)  # free energy first
    assert result.objective == pytest.approx(5.0 * result.curtailed.sum(), rel=1e-9)


def test_sheds_exactly_the_missing_generation_at_voll(grid) -> None:
    pd = np.asarray(grid.pd)
    available = np.asarray(grid.pmax) * 0.3  # 4190 MW of 13966 for 4242 MW of load
    sced = Sced(grid, value_of_lost_load=5000.0)
    short = sced.solve(pd, available)
    missing = pd.sum() - available.sum()
    assert short.success and missing > 0
    assert short.shed.sum() == pytest.approx(missing, abs=1e-5)
    assert np.all(short.shed <= pd + MW_ATOL)
    assert short.objective == pytest.approx(short.cost + 5000.0 * missing, rel=1e-9)
    enough = sced.solve(pd, available * 1.1)  # 4609 MW: covers the load again
    assert enough.success and enough.shed.sum() < MW_ATOL


def test_unavoidable_overload_is_reported_not_infeasible(grid) -> None:
    # bus 9 (0-based) has one branch (rated 400 MW), generator 5 (550 MW) and no load
    unit, branch = 5, radial_branch(grid, 9)
    ramp = np.asarray(grid.ramp).copy()
    ramp[unit] = 1.0
    case = grid.replace(ramp=ramp)
    pg_prev = np.asarray(grid.pg).copy()
    pg_prev[unit] = 500.0  # 495 MW at least this step
    result = Sced(case).solve(np.asarray(case.pd), np.asarray(case.pmax), pg_prev=pg_prev)
    assert result.success
    assert result.pg[unit] == pytest.approx(495.0, abs=MW_ATOL)
    assert result.overload[branch] == pytest.approx(95.0, abs=MW_ATOL)
    assert abs(result.pf[branch]) == pytest.approx(495.0, abs=MW_ATOL)
    above = np.maximum(np.abs(result.pf) - np.asarray(case.rate_a), 0.0)
    np.testing.assert_allclose(result.overload, above, atol=MW_ATOL)


def test_branch_outage_and_back(grid) -> None:
    sced = Sced(grid)
    pd, pmax = np.asarray(grid.pd), np.asarray(grid.pmax)
    before = sced.solve(pd, pmax)
    status = np.ones(grid.n_branch, bool)
    status[np.argmax(np.abs(before.pf))] = False  # the most loaded branch
    out = sced.solve(pd, pmax, line_status=status)
    assert out.success and out.pf[~status] == 0
    assert_flows_match_physics(grid, out, pd, status)
    fresh = Sced(grid.replace(branch_status=status)).solve(pd, pmax)
    assert out.objective == pytest.approx(fresh.objective, rel=OBJECTIVE_RTOL)
    back = sced.solve(pd, pmax)
    np.testing.assert_allclose(back.pg, before.pg, atol=MW_ATOL)
    np.testing.assert_allclose(back.pf, before.pf, atol=MW_ATOL)


def test_islanding_outage_sheds_the_island(grid) -> None:
    # bus 111 (0-based): one branch, 68 MW of load and generator 51
    island, unit = 111, 51
    status = np.ones(grid.n_branch, bool)
    status[radial_branch(grid, island)] = False
    pd = np.asarray(grid.pd)
    sced = Sced(grid)
    result = sced.solve(pd, np.asarray(grid.pmax), line_status=status)
    assert result.success
    assert result.shed[island] == pytest.approx(pd[island])
    assert np.delete(result.shed, island).max() < MW_ATOL
    assert result.pg[unit] == 0
    assert_flows_match_physics(grid, result, pd, status)
    assert result.objective == pytest.approx(result.cost + 1e4 * pd[island], rel=1e-9)
    again = sced.solve(pd, np.asarray(grid.pmax))
    assert again.shed.sum() < MW_ATOL and again.pf[radial_branch(grid, island)] != 0


def test_unit_out_of_service_is_forced_off(grid) -> None:
    available = np.asarray(grid.pmax).copy()
    cheapest = int(np.argmax(Sced(grid).solve(np.asarray(grid.pd), available).pg))
    available[cheapest] = 0.0
    result = Sced(grid).solve(np.asarray(grid.pd), available)
    assert result.success and result.pg[cheapest] == 0


def post_contingency_excess(grid, result, contingencies, line_status=None, margin=1.0):
    """[n_branch, n_contingency] MW above rating after each contingency (physics.lodf; a
    contingency's own branch and islanding contingencies, whose LODF column is 0, give 0)."""
    factors = np.asarray(lodf(grid, line_status))[:, contingencies]
    post = result.pf[:, None] + factors * result.pf[contingencies][None, :]
    excess = np.maximum(np.abs(post) - margin * np.asarray(grid.rate_a)[:, None], 0.0)
    excess[contingencies, np.arange(len(contingencies))] = 0.0
    return excess


@pytest.fixture(scope="module")
def loaded_branches(grid) -> np.ndarray:
    """The 8 most loaded branches of the plain dispatch whose outage islands nothing."""
    flows = np.abs(Sced(grid).solve(np.asarray(grid.pd), np.asarray(grid.pmax)).pf)
    factors = np.array(lodf(grid))
    np.fill_diagonal(factors, 0.0)
    islanding = np.all(factors == 0, axis=0)
    ranked = [int(k) for k in np.argsort(-flows) if not islanding[k]]
    return np.array(ranked[:8])


def test_n1_holds_exactly_and_costs(grid, loaded_branches) -> None:
    pd, pmax = np.asarray(grid.pd), np.asarray(grid.pmax)
    plain = Sced(grid).solve(pd, pmax)
    assert post_contingency_excess(grid, plain, loaded_branches).max() > 1.0  # binds
    secure = Sced(grid, n1_contingencies=loaded_branches).solve(pd, pmax)
    assert secure.success, secure.status
    assert post_contingency_excess(grid, secure, loaded_branches).max() <= N1_TOLERANCE_MW
    assert secure.objective == pytest.approx(secure.cost, rel=1e-9)  # no penalty paid
    assert secure.cost > plain.cost + 1.0


def test_n1_follows_outages_and_skips_islanding(grid, loaded_branches) -> None:
    islanding = radial_branch(grid, 111)
    contingencies = np.r_[loaded_branches, islanding]
    sced = Sced(grid, n1_contingencies=contingencies, cost_segments=20)
    pd, pmax = np.asarray(grid.pd), np.asarray(grid.pmax)
    status = np.ones(grid.n_branch, bool)
    for out in (loaded_branches[0], loaded_branches[3]):  # also a contingency going out
        status[out] = False
        result = sced.solve(pd, pmax, line_status=status)
        assert result.success and result.shed.max() < MW_ATOL
        excess = post_contingency_excess(grid, result, contingencies, status)
        assert excess.max() <= N1_TOLERANCE_MW
        assert_flows_match_physics(grid, result, pd, status)
    assert sced.solve(pd, pmax).success
    fresh = Sced(grid, n1_contingencies=contingencies, cost_segments=20).solve(pd, pmax)
    assert sced.solve(pd, pmax).objective == pytest.approx(fresh.objective, rel=1e-9)


def test_n1_violation_is_paid_not_shed(grid) -> None:
    # bus 51 (0-based) hangs on branches 67 and 68 (100 MW each, 68 via bus 52 and branch 69):
    # with 150 MW there, losing 67 overloads 68 and 69 whatever the dispatch
    pd = np.asarray(grid.pd).copy()
    pd[51] = 150.0
    contingencies = np.array([67, 68, 69])
    sced = Sced(grid, n1_contingencies=contingencies, cost_segments=20)
    result = sced.solve(pd, np.asarray(grid.pmax))
    assert result.success and result.shed.max() < MW_ATOL and result.overload.max() < MW_ATOL
    excess = post_contingency_excess(grid, result, contingencies).sum()
    assert excess > 50.0
    paid = result.objective - result.cost
    assert paid == pytest.approx(sced.n1_penalty * excess, abs=sced.n1_penalty * 1e-2)
    assert sced.n1_penalty < sced.value_of_lost_load


def test_cost_segments_bound_the_cost_gap(grid) -> None:
    pd, pmax = np.asarray(grid.pd), np.asarray(grid.pmax)
    exact = Sced(grid).solve(pd, pmax)
    poly, pmin = np.asarray(grid.cost_poly), np.asarray(grid.pmin)
    for segments in (10, 40):
        result = Sced(grid, cost_segments=segments).solve(pd, pmax)
        bound = np.sum(poly[:, 0] * ((pmax - pmin) / segments / 2) ** 2)
        assert exact.cost - 1e-6 <= result.cost <= exact.cost + bound
        assert result.objective == pytest.approx(result.cost, rel=1e-12)
        assert_flows_match_physics(grid, result, pd)


def test_failed_qp_falls_back_to_the_lp(grid, monkeypatch) -> None:
    monkeypatch.setattr("gridrl.opf.sced.QP_ITERATION_LIMIT", 1)
    pd, pmax = np.asarray(grid.pd), np.asarray(grid.pmax)
    result = Sced(grid).solve(pd, pmax)
    assert result.success
    assert result.status == "Optimal (piecewise-linear fallback; QP: Iteration limit reached)"
    lp = Sced(grid, cost_segments=FALLBACK_SEGMENTS).solve(pd, pmax)
    np.testing.assert_allclose(result.pg, lp.pg, atol=MW_ATOL)
    assert result.objective == pytest.approx(lp.objective, rel=1e-12)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"pd": np.zeros(5)}, "pd must have shape"),
        ({"pd": np.full(118, np.nan)}, r"pd\[0\] is nan"),
        ({"available": -np.ones(70)}, r"available\[0\] is -1.0"),
        ({"available": np.ones((70, 1))}, "available must have shape"),
        ({"pg_prev": np.full(70, np.inf)}, r"pg_prev\[0\] is inf"),
        ({"line_status": np.full(186, 0.5)}, "line_status must be booleans"),
        ({"line_status": np.ones(10, bool)}, "line_status must have shape"),
    ],
)
def test_bad_solve_input_names_the_argument(grid, arguments, message) -> None:
    values = {"pd": np.asarray(grid.pd), "available": np.asarray(grid.pmax)} | arguments
    pd, available = values.pop("pd"), values.pop("available")
    with pytest.raises(ValueError, match=message):
        Sced(grid).solve(pd, available, **values)


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("value_of_lost_load", -1.0, "value_of_lost_load"),
        ("step_minutes", 0.0, "step_minutes"),
        ("rating_margin", np.nan, "rating_margin"),
        ("curtailment_price", 2e4, "curtailment_price"),
        ("n1_contingencies", [999], "n1_contingencies"),
        ("n1_contingencies", [1.5], "n1_contingencies"),
        ("cost_segments", 0, "cost_segments"),
    ],
)
def test_bad_settings_name_the_setting(grid, keyword, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        Sced(grid, **{keyword: value})
