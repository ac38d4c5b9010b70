"""DC power flow, PTDF/LODF and the Woodbury solve, against pandapower in float64.

pandapower's `rundcpp` is MATPOWER's DC power flow (makeBdc/dcpf); gridrl reads the same network
through `from_pandapower`, whose branch order is pandapower's internal one: lines, then
transformers. Compiled functions are shared per case (module fixtures), batches stay small.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from pandapower.pypower.makeLODF import makeLODF
from pandapower.pypower.makePTDF import makePTDF

from gridrl.cases import Grid, from_pandapower
from gridrl.physics import (
    DCModel,
    dc_model,
    dc_power_flow,
    energized_buses,
    lodf,
    ptdf,
    woodbury_solve,
)
from gridrl.physics.lowrank import capacitance_solve

MW_ATOL = 1e-6
RAD_ATOL = 1e-9


@dataclass(frozen=True)
class Case:
    net: object  # the pandapower network, unsolved
    grid: Grid
    model: DCModel

    def reference(self, out: tuple[int, ...] = ()) -> dict:
        """pandapower's DC power flow with branches `out` (gridrl branch indices) out of service."""
        net = copy.deepcopy(self.net)
        n_line = len(net.line)
        for branch in out:
            table, row = (net.line, branch) if branch < n_line else (net.trafo, branch - n_line)
            table.loc[table.index[row], "in_service"] = False
        pp.rundcpp(net)
        buses = list(self.grid.bus_ids)
        va = np.deg2rad(net.res_bus.va_degree.loc[buses].to_numpy())
        at_ref = net.gen.bus.isin([buses[self.grid.ref_bus]]) & net.gen.in_service
        return {
            "pf": np.r_[net.res_line.p_from_mw.to_numpy(), net.res_trafo.p_hv_mw.to_numpy()],
            "va": va,
            "energized": ~np.isnan(va),
            "slack": net.res_ext_grid.p_mw.sum() + net.res_gen.p_mw[at_ref].sum(),
        }


def load_case(name: str) -> Case:
    net = getattr(pn, name)()
    grid = from_pandapower(net)
    pp.rundcpp(net)  # to read the internal branch order
    lookup = net._pd2ppc_lookups["branch"]
    assert lookup["line"] == (0, len(net.line))
    assert lookup["trafo"] == (len(net.line), len(net.line) + len(net.trafo))
    return Case(net=getattr(pn, name)(), grid=grid, model=dc_model(grid))


CASES = ["case118", "case300", "case1354pegase"]


@pytest.fixture(scope="module", params=CASES)
def case(request) -> Case:
    return load_case(request.param)


@pytest.fixture(scope="module")
def case118() -> Case:
    return load_case("case118")


def solve(case: Case, *args, **kwargs):
    return dc_power_flow(case.grid, *args, model=case.model, **kwargs)


def assert_matches(result, expected: dict) -> None:
    energized = expected["energized"]
    np.testing.assert_array_equal(np.asarray(result.energized), energized)
    np.testing.assert_allclose(
        np.asarray(result.pf), np.nan_to_num(expected["pf"]), rtol=0, atol=MW_ATOL
    )
    np.testing.assert_allclose(
        np.asarray(result.va)[energized], expected["va"][energized], rtol=0, atol=RAD_ATOL
    )
    assert np.all(np.asarray(result.va)[~energized] == 0)
    assert float(result.pg_slack) == pytest.approx(expected["slack"], abs=MW_ATOL)
    for field in ("va", "pf", "p_bus", "pg_slack", "lost_load_mw"):
        assert np.isfinite(np.asarray(getattr(result, field))).all(), field


def test_base_case_matches_pandapower(case):
    result = solve(case)
    assert_matches(result, case.reference())
    assert float(result.lost_load_mw) == 0
    assert float(jnp.sum(result.p_bus)) == pytest.approx(0, abs=1e-6)  # DC is lossless


def outage_sets(case: Case) -> list[tuple[int, ...]]:
    """Three branches out (seeded), and an outage that islands buses (a branch to a leaf bus)."""
    rng = np.random.default_rng(0)
    tree_child = np.asarray(case.model.tree.tree_child)
    degree = np.bincount(np.r_[case.grid.f_bus, case.grid.t_bus], minlength=case.grid.n_bus)
    leaf_branches = [b for b in np.flatnonzero(tree_child >= 0) if degree[tree_child[b]] == 1]
    meshed = tuple(int(b) for b in rng.choice(np.flatnonzero(tree_child < 0), 3, replace=False))
    return [meshed, (int(leaf_branches[0]), meshed[0], int(leaf_branches[-1]))]


@pytest.mark.parametrize("max_outages", [None, 3])
def test_outages_match_pandapower(case, max_outages):
    for out in outage_sets(case):
        status = np.ones(case.grid.n_branch, bool)
        status[list(out)] = False
        expected = case.reference(out)
        result = solve(case, status, max_outages=max_outages)
        assert_matches(result, expected)
        dead = ~expected["energized"]
        lost = np.maximum(np.asarray(case.grid.pd), 0)[dead].sum()
        assert float(result.lost_load_mw) == pytest.approx(lost, abs=1e-9)
    assert dead.any(), "the second outage set should island buses"


def random_batch(case: Case, rng, batch: int, most: int):
    grid = case.grid
    status = np.ones((batch, grid.n_branch), bool)
    tree_branches = np.flatnonzero(np.asarray(case.model.tree.tree_child) >= 0)
    for row in status:
        pool = tree_branches if rng.random() < 0.5 else np.arange(grid.n_branch)
        row[rng.choice(pool, rng.integers(0, most + 1), replace=False)] = False
    pd = np.asarray(grid.pd) * rng.uniform(0.7, 1.3, (batch, grid.n_bus))
    pg = np.asarray(grid.pg) * rng.uniform(0.7, 1.3, (batch, grid.n_gen))
    return status, pd, pg


def assert_same(a, b, atol=1e-8) -> None:
    for field in ("va", "pf", "p_bus", "pg_slack", "lost_load_mw"):
        np.testing.assert_allclose(
            np.asarray(getattr(a, field)),
            np.asarray(getattr(b, field)),
            rtol=0,
            atol=atol,
            err_msg=field,
        )
    np.testing.assert_array_equal(np.asarray(a.energized), np.asarray(b.energized))


def test_batched_equals_per_sample(case118):
    status, pd, pg = random_batch(case118, np.random.default_rng(4), batch=24, most=3)
    fast = solve(case118, status, pd=pd, pg=pg, max_outages=3)
    dense = solve(case118, status, pd=pd, pg=pg, max_outages=None)
    assert_same(fast, dense)
    assert (~np.asarray(fast.energized)).any()
    for i in (0, 5, 17):
        one = solve(case118, status[i], pd=pd[i], pg=pg[i])
        assert one.va.shape == (case118.grid.n_bus,)
        assert_same(one, jax.tree_util.tree_map(lambda x, i=i: x[i], dense))
    # two leading dimensions, and inputs that broadcast against each other
    grid_shaped = solve(case118, status.reshape(4, 6, -1), pd=pd.reshape(4, 6, -1), pg=pg[0])
    flat = solve(case118, status, pd=pd, pg=np.broadcast_to(pg[0], pg.shape))
    assert grid_shaped.pf.shape == (4, 6, case118.grid.n_branch)
    assert_same(jax.tree_util.tree_map(lambda x: x.reshape(24, *x.shape[2:]), grid_shaped), flat)


def test_more_outages_than_max_falls_back_to_exact(case118):
    status, pd, pg = random_batch(case118, np.random.default_rng(5), batch=24, most=3)
    status[2, :8] = False  # eight branches out in one sample
    dense = solve(case118, status, pd=pd, pg=pg, max_outages=None)
    assert_same(solve(case118, status, pd=pd, pg=pg, max_outages=3), dense)
    assert_same(solve(case118, status, pd=pd, pg=pg), dense)  # the default: the same fast path


def test_load_and_generation_override_matches_pandapower(case118):
    net = copy.deepcopy(case118.net)
    net.load["p_mw"] *= 1.1
    net.gen["p_mw"] *= 0.9
    pp.rundcpp(net)
    grid = case118.grid
    scaled_gen = np.asarray(grid.pg) * 0.9  # the ext_grid's setpoint is 0: the slack takes it all
    result = solve(case118, pd=np.asarray(grid.pd) * 1.1, pg=scaled_gen)
    pf = np.r_[net.res_line.p_from_mw.to_numpy(), net.res_trafo.p_hv_mw.to_numpy()]
    np.testing.assert_allclose(np.asarray(result.pf), pf, rtol=0, atol=MW_ATOL)


def test_jit_with_grid_argument_and_vmap(case118):
    grid = case118.grid
    status, pd, pg = random_batch(case118, np.random.default_rng(6), batch=24, most=3)
    jitted = jax.jit(lambda g, pd: dc_power_flow(g, pd=pd))
    assert_same(jitted(grid, pd[:2]), solve(case118, pd=pd[:2]))
    mapped = jax.vmap(lambda s, pd, pg: solve(case118, s, pd=pd, pg=pg, max_outages=3))
    assert_same(mapped(status, pd, pg), solve(case118, status, pd=pd, pg=pg, max_outages=3))
    # without the batch-level fallback (callers that bound the outage count): the same answer
    unchecked = jax.vmap(
        lambda s, pd, pg: solve(case118, s, pd=pd, pg=pg, max_outages=3, fallback=False)
    )
    assert_same(unchecked(status, pd, pg), solve(case118, status, pd=pd, pg=pg, max_outages=None))


def test_float32_error_is_reported(case118, record_property):
    """float32 is for speed; its error against float64 is measured and recorded."""
    grid32 = case118.grid.astype(jnp.float32)
    with jax.enable_x64(False):
        model32 = dc_model(grid32)
        status, pd, pg = random_batch(case118, np.random.default_rng(7), batch=24, most=3)
        fast = dc_power_flow(grid32, status, pd=pd, pg=pg, model=model32, max_outages=3)
        full = dc_power_flow(grid32, pd=pd, pg=pg, model=model32)
    assert fast.pf.dtype == jnp.float32
    exact = solve(case118, status, pd=pd, pg=pg, max_outages=None)
    exact_full = solve(case118, pd=pd, pg=pg)
    errors = {
        "float32_pf_mw_all_in": float(
            np.abs(np.asarray(full.pf) - np.asarray(exact_full.pf)).max()
        ),
        "float32_pf_mw_outages": float(np.abs(np.asarray(fast.pf) - np.asarray(exact.pf)).max()),
        "float32_va_rad_outages": float(np.abs(np.asarray(fast.va) - np.asarray(exact.va)).max()),
    }
    for name, value in errors.items():
        record_property(name, value)
    print("float32 vs float64, case118:", errors)
    np.testing.assert_array_equal(np.asarray(fast.energized), np.asarray(exact.energized))
    assert errors["float32_pf_mw_all_in"] < 1e-2
    assert errors["float32_pf_mw_outages"] < 1e-2
    assert errors["float32_va_rad_outages"] < 1e-5


def test_bad_inputs_raise_clear_errors(case118):
    grid = case118.grid
    with pytest.raises(ValueError, match=r"line_status must have shape \[\.\.\., 186\]"):
        dc_power_flow(grid, np.ones(185, bool))
    with pytest.raises(ValueError, match=r"pd must have shape \[\.\.\., 118\]"):
        dc_power_flow(grid, pd=np.ones((3, 117)))
    with pytest.raises(ValueError, match=r"pg must have shape \[\.\.\., 54\]"):
        dc_power_flow(grid, pg=5.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        dc_power_flow(grid, np.ones((3, 186), bool), pd=np.ones((4, 118)))
    with pytest.raises(ValueError, match="pd has a NaN"):
        dc_power_flow(grid, pd=np.full(118, np.nan))
    with pytest.raises(ValueError, match="max_outages"):
        dc_power_flow(grid, np.ones(186, bool), max_outages=0)
    with pytest.raises(ValueError, match="zero reactance"):
        dc_model(grid.replace(x=np.where(np.arange(grid.n_branch) == 7, 0.0, grid.x)))


def test_woodbury_solve_matches_dense_with_padded_columns():
    rng = np.random.default_rng(8)
    n, m, batch = 12, 4, 5
    a = rng.normal(size=(n, n))
    a = a @ a.T + n * np.eye(n)
    u = rng.normal(size=(batch, n, m))
    coeff = rng.normal(size=(batch, m))
    coeff[:, -1] = 0.0  # a padded column
    coeff[1] = 0.0  # a sample without update
    rhs = rng.normal(size=(batch, n))
    got = woodbury_solve(jnp.linalg.inv(a), u, coeff, rhs)
    for i in range(batch):
        expected = np.linalg.solve(a + u[i] @ np.diag(coeff[i]) @ u[i].T, rhs[i])
        np.testing.assert_allclose(np.asarray(got[i]), expected, rtol=1e-10, atol=1e-10)
    gram = np.einsum("bim,bik->bmk", u, np.linalg.solve(a, u))
    u_base = rng.normal(size=(batch, m))
    np.testing.assert_allclose(
        np.asarray(capacitance_solve(gram, u_base, coeff, pivoting=False)),
        np.asarray(capacitance_solve(gram, u_base, coeff, pivoting=True)),
        rtol=1e-9,
        atol=1e-12,
    )


def internal_case(case: Case):
    net = copy.deepcopy(case.net)
    pp.rundcpp(net)
    ppci = net._ppc  # pandapower's internal case, buses and branches in gridrl's order
    return ppci


@pytest.mark.parametrize("name", ["case118", "case300"])
def test_ptdf_and_lodf_match_pandapower(name, case118):
    case = case118 if name == "case118" else load_case(name)
    ppc = internal_case(case)
    expected_ptdf = makePTDF(ppc["baseMVA"], ppc["bus"], ppc["branch"])
    got_ptdf = np.asarray(ptdf(case.grid, model=case.model))
    np.testing.assert_allclose(got_ptdf, expected_ptdf, rtol=0, atol=1e-9)
    with np.errstate(all="ignore"):
        expected_lodf = makeLODF(ppc["branch"], expected_ptdf)
    got_lodf = np.asarray(lodf(case.grid, model=case.model))
    assert np.isfinite(got_lodf).all()
    # MATPOWER divides by ~0 for a branch whose outage islands buses; gridrl zeroes that column
    self_share = np.diag(expected_ptdf @ _incidence(case.grid).T)
    islanding = np.abs(1 - self_share) < 1e-6
    assert islanding.any()
    np.testing.assert_allclose(
        got_lodf[:, ~islanding], expected_lodf[:, ~islanding], rtol=0, atol=1e-7
    )
    off_diagonal = ~np.eye(case.grid.n_branch, dtype=bool)
    assert np.all(got_lodf[:, islanding][off_diagonal[:, islanding]] == 0)
    assert np.all(np.diag(got_lodf) == -1)


def _incidence(grid: Grid) -> np.ndarray:
    """Cft [n_branch, n_bus]: +1 at the from bus, -1 at the to bus."""
    cft = np.zeros((grid.n_branch, grid.n_bus))
    rows = np.arange(grid.n_branch)
    cft[rows, np.asarray(grid.f_bus)] = 1
    cft[rows, np.asarray(grid.t_bus)] -= 1
    return cft


def test_sensitivities_predict_post_outage_flows(case118):
    """LODF on the base flows, and PTDF of a post-outage topology, against solved flows."""
    grid, model = case118.grid, case118.model
    base = solve(case118)
    factors = np.asarray(lodf(grid, model=model))
    self_islanding = ~np.asarray(energized_buses(grid, ~np.eye(grid.n_branch, dtype=bool))).all(-1)
    injection = np.asarray(base.p_bus)
    statuses = np.ones((3, grid.n_branch), bool)
    for row, branch in zip(statuses, np.flatnonzero(~self_islanding)[[0, 40, 90]], strict=True):
        row[branch] = False
        predicted = np.asarray(base.pf) + factors[:, branch] * float(base.pf[branch])
        predicted[branch] = 0.0
        np.testing.assert_allclose(predicted, np.asarray(solve(case118, row).pf), rtol=0, atol=1e-6)
    # case118 has no phase shifters, so flows are PTDF times injections
    post = np.asarray(ptdf(grid, statuses, model=model))
    assert post.shape == (3, grid.n_branch, grid.n_bus)
    solved = np.asarray(solve(case118, statuses).pf)
    np.testing.assert_allclose(np.einsum("bln,n->bl", post, injection), solved, rtol=0, atol=1e-6)
