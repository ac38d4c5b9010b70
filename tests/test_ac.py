"""AC power flow against pandapower's Newton-Raphson (float64, tight tolerances), plus batching,
outages, islands, reactive limits, divergence and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from pandapower.pypower.idx_brch import PF, PT, QF, QT
from pandapower.pypower.idx_bus import VA, VM
from pandapower.pypower.idx_gen import PG, QG

from gridrl.cases import from_pandapower
from gridrl.physics.ac import ac_model, ac_power_flow, ac_power_flow_outages
from gridrl.physics.dc import dc_model, outages
from gridrl.physics.ybus import fast_decoupled_matrices, make_ybus

VM_TOL = 1e-6  # p.u.
VA_TOL_DEG = 1e-5
FLOW_TOL = 1e-4  # MW / MVAr
# some lines of case118 whose loss keeps the grid connected and solvable (pandapower order)
CASE118_OUTAGES = (20, 40, 95)
TRAFO_OUTAGE = 2


def run_pandapower(net, **options) -> dict:
    """pandapower's converged result in its internal (= gridrl's) order."""
    pp.runpp(net, init="flat", tolerance_mva=1e-11, calculate_voltage_angles=True, **options)
    ppc = net._ppc
    return {
        "vm": ppc["bus"][:, VM],
        "va": ppc["bus"][:, VA],
        "pf": ppc["branch"][:, PF].real,
        "qf": ppc["branch"][:, QF].real,
        "pt": ppc["branch"][:, PT].real,
        "qt": ppc["branch"][:, QT].real,
        "pg": ppc["gen"][:, PG],
        "qg": ppc["gen"][:, QG],
    }


def assert_matches(result, expected, sample=()) -> None:
    assert bool(result.converged[sample])
    np.testing.assert_allclose(result.vm[sample], expected["vm"], rtol=0, atol=VM_TOL)
    va = np.rad2deg(np.asarray(result.va[sample]))
    np.testing.assert_allclose(va, expected["va"], rtol=0, atol=VA_TOL_DEG)
    for name in ("pf", "qf", "pt", "qt", "pg", "qg"):
        got = np.asarray(getattr(result, name)[sample])
        np.testing.assert_allclose(got, expected[name], rtol=0, atol=FLOW_TOL, err_msg=name)


@pytest.fixture(scope="module")
def net118():
    return pn.case118()


@pytest.fixture(scope="module")
def grid118(net118):
    return from_pandapower(net118)


@pytest.fixture(scope="module")
def model118(grid118):
    return ac_model(grid118)


@pytest.fixture(scope="module")
def expected118(net118):
    return run_pandapower(net118)


def test_ybus_and_fdlf_matrices_match_pandapower(net118, grid118, expected118):
    from pandapower.pypower.makeB import makeB

    internal = net118._ppc["internal"]
    ybus, yf, yt = make_ybus(grid118)
    np.testing.assert_allclose(ybus, internal["Ybus"].toarray(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(yf, internal["Yf"].toarray(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(yt, internal["Yt"].toarray(), rtol=0, atol=1e-10)
    b_prime, b_double_prime = makeB(internal["baseMVA"], internal["bus"], internal["branch"], 2)
    ours = fast_decoupled_matrices(grid118)
    np.testing.assert_allclose(ours[0], b_prime.toarray(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours[1], b_double_prime.toarray(), rtol=0, atol=1e-9)


def test_ybus_line_status_drops_branches_and_batches(grid118):
    status = np.ones((2, grid118.n_branch), bool)
    status[1, 3] = False
    ybus, yf, _ = make_ybus(grid118, status)
    assert ybus.shape == (2, grid118.n_bus, grid118.n_bus)
    assert np.all(yf[1, 3] == 0) and np.any(yf[0, 3] != 0)
    f, t = int(grid118.f_bus[3]), int(grid118.t_bus[3])
    assert ybus[1, f, t] == 0 and ybus[0, f, t] != 0


def test_case118_matches_pandapower(grid118, model118, expected118):
    result = ac_power_flow(grid118, model=model118)
    assert_matches(result, expected118)
    assert result.iterations < 30
    assert bool(jnp.all(result.energized)) and float(result.lost_load_mw) == 0.0


@pytest.mark.parametrize("case", ["case300", "case1354pegase"])
def test_larger_cases_match_pandapower(case):
    net = getattr(pn, case)()
    expected = run_pandapower(net)
    result = ac_power_flow(from_pandapower(net))
    assert_matches(result, expected)


def leaf_line(grid):
    """(branch, bus): a branch whose loss cuts off one loaded bus and nothing else."""
    f_bus, t_bus = np.asarray(grid.f_bus), np.asarray(grid.t_bus)
    degree = np.bincount(np.r_[f_bus, t_bus], minlength=grid.n_bus)
    leaf = next(b for b in np.flatnonzero(degree == 1) if grid.pd[b] > 0 and b != grid.ref_bus)
    return int(np.flatnonzero((f_bus == leaf) | (t_bus == leaf))[0]), int(leaf)


@pytest.fixture(scope="module")
def outage_cases(net118, grid118):
    """Branches out per sample: one line, two lines, one transformer, an islanding line."""
    n_line = len(net118.line)
    return [
        [CASE118_OUTAGES[0]],
        list(CASE118_OUTAGES[1:3]),
        [n_line + TRAFO_OUTAGE],
        [leaf_line(grid118)[0]],
    ]


@pytest.fixture(scope="module")
def outage_results(grid118, model118, outage_cases):
    """One batched solve (one compilation) for all the outage tests."""
    status = np.ones((len(outage_cases), grid118.n_branch), bool)
    for sample, out in enumerate(outage_cases):
        status[sample, out] = False
    return ac_power_flow(grid118, status, model=model118)


@pytest.mark.parametrize("sample", [0, 1, 2])
def test_outages_match_pandapower(net118, outage_cases, outage_results, sample):
    net = pn.case118()
    n_line = len(net118.line)
    for branch in outage_cases[sample]:
        table, row = ("line", branch) if branch < n_line else ("trafo", branch - n_line)
        frame = getattr(net, table)
        frame.loc[frame.index[row], "in_service"] = False
    assert_matches(outage_results, run_pandapower(net), sample)


def test_islanded_bus_is_dead_and_its_load_lost(grid118, outage_results):
    branch, leaf = leaf_line(grid118)
    result = jax.tree_util.tree_map(lambda a: a[3], outage_results)
    assert bool(result.converged)
    assert not bool(result.energized[leaf]) and int(jnp.sum(~result.energized)) == 1
    assert float(result.vm[leaf]) == 0.0 and float(result.va[leaf]) == 0.0
    assert float(result.pf[branch]) == 0.0 and float(result.qt[branch]) == 0.0
    np.testing.assert_allclose(result.lost_load_mw, grid118.pd[leaf], rtol=1e-12)
    # the rest still balances: generation = load served + losses + shunts
    served = float(np.sum(np.where(result.energized, grid118.pd, 0.0)))
    losses = float(jnp.sum(result.pf + result.pt))
    shunts = float(jnp.sum(jnp.where(result.energized, grid118.gs * result.vm**2, 0.0)))
    assert abs(float(jnp.sum(result.pg)) - served - losses - shunts) < 1e-6


def test_the_outage_form_of_a_topology_solves_as_its_line_status(
    grid118, model118, outage_cases, outage_results
):
    status = np.ones((len(outage_cases), grid118.n_branch), bool)
    for sample, out in enumerate(outage_cases):
        status[sample, out] = False
    pd = jnp.broadcast_to(jnp.asarray(grid118.pd), (len(outage_cases), grid118.n_bus))
    qd, pg = jnp.broadcast_to(jnp.asarray(grid118.qd), pd.shape), jnp.asarray(grid118.pg)
    pg = jnp.broadcast_to(pg, (len(outage_cases), grid118.n_gen))
    for k, expected in ((4, outage_results), (0, ac_power_flow(grid118, model=model118))):
        topology = outages(dc_model(grid118), jnp.asarray(status), k)
        result = ac_power_flow_outages(grid118, model118, topology, pd=pd, qd=qd, pg=pg)
        for sample in range(len(outage_cases) if k else 1):
            assert bool(result.converged[sample])
            ours = jax.tree.map(lambda a: a[sample], result)  # noqa: B023
            theirs = expected if k == 0 else jax.tree.map(lambda a: a[sample], expected)  # noqa: B023
            np.testing.assert_allclose(ours.vm, theirs.vm, rtol=0, atol=1e-12)
            np.testing.assert_allclose(ours.pf, theirs.pf, rtol=0, atol=1e-9)
            assert np.array_equal(ours.energized, theirs.energized)


def test_a_warm_start_reaches_the_flat_starts_solution_in_fewer_iterations(grid118, model118):
    scale = jnp.array([[1.0], [1.03], [0.97]])  # the solution's loads, then 5-minute-like moves
    pd, qd = scale * jnp.asarray(grid118.pd), scale * jnp.asarray(grid118.qd)
    solution = ac_power_flow(grid118, model=model118)
    init = (jnp.broadcast_to(solution.vm, pd.shape), jnp.broadcast_to(solution.va, pd.shape))
    flat = ac_power_flow(grid118, pd=pd, qd=qd, model=model118)
    warm = ac_power_flow(grid118, pd=pd, qd=qd, model=model118, init=init)
    assert bool(jnp.all(warm.converged))
    assert int(warm.iterations[0]) == 0  # started at its own solution
    assert bool(jnp.all(warm.iterations < flat.iterations))
    np.testing.assert_allclose(warm.vm, flat.vm, rtol=0, atol=VM_TOL)
    np.testing.assert_allclose(np.rad2deg(warm.va), np.rad2deg(flat.va), rtol=0, atol=VA_TOL_DEG)
    np.testing.assert_allclose(warm.pf, flat.pf, rtol=0, atol=FLOW_TOL)
    # a bus at 0 p.u. in the start (dead in the earlier solve) starts flat
    dead = init[0].at[:, 5].set(0.0)
    np.testing.assert_allclose(
        ac_power_flow(grid118, pd=pd, qd=qd, model=model118, init=(dead, init[1])).vm,
        flat.vm,
        rtol=0,
        atol=VM_TOL,
    )


def test_batch_equals_samples_and_broadcasts(grid118, model118):
    scale = jnp.array([[0.9], [1.0], [1.1]])
    pd = scale * jnp.asarray(grid118.pd)
    batch = ac_power_flow(grid118, pd=pd, model=model118)
    assert batch.vm.shape == (3, grid118.n_bus) and batch.converged.shape == (3,)
    for i in range(3):
        single = ac_power_flow(grid118, pd=pd[i], model=model118)
        np.testing.assert_allclose(batch.vm[i], single.vm, rtol=0, atol=1e-12)
        np.testing.assert_allclose(batch.pf[i], single.pf, rtol=0, atol=1e-9)
    # [2] setpoints x [3, 1] loads -> [3, 2]
    vg = jnp.stack([jnp.asarray(grid118.vg), jnp.asarray(grid118.vg) * 1.01])
    grid_batch = ac_power_flow(grid118, pd=pd[:, None, :], vg=vg, model=model118)
    assert grid_batch.vm.shape == (3, 2, grid118.n_bus)
    np.testing.assert_allclose(grid_batch.vm[:, 0], batch.vm, rtol=0, atol=1e-12)


def test_q_limits_match_pandapower(grid118, model118):
    expected = run_pandapower(pn.case118(), enforce_q_lims=True)
    result = ac_power_flow(grid118, model=model118, q_limits=True)
    assert_matches(result, expected)
    limited = np.asarray(result.qg >= grid118.qmax - 1e-9) | np.asarray(
        result.qg <= grid118.qmin + 1e-9
    )
    assert limited.any()  # the case does hit limits, so the test means something


def test_divergent_sample_is_flagged_and_finite(grid118, model118):
    scale = jnp.array([[1.0], [10.0], [1.0]])  # batch of 3: shares a compilation
    pd, qd = scale * jnp.asarray(grid118.pd), scale * jnp.asarray(grid118.qd)
    result = ac_power_flow(grid118, pd=pd, qd=qd, model=model118)
    assert bool(result.converged[0]) and not bool(result.converged[1])
    assert bool(result.converged[2])  # a divergent neighbour does not spoil a sample
    for leaf in jax.tree_util.tree_leaves(result):
        assert bool(jnp.all(jnp.isfinite(leaf)))


def test_float32_error_is_reported(grid118, expected118, record_property):
    grid32 = grid118.astype(jnp.float32)
    result = ac_power_flow(grid32)
    assert result.vm.dtype == jnp.float32 and bool(result.converged)
    errors = {
        "vm_pu": float(np.max(np.abs(result.vm - expected118["vm"]))),
        "va_deg": float(np.max(np.abs(np.rad2deg(result.va) - expected118["va"]))),
        "pf_mw": float(np.max(np.abs(result.pf - expected118["pf"]))),
        "qf_mvar": float(np.max(np.abs(result.qf - expected118["qf"]))),
    }
    for name, value in errors.items():
        record_property(f"float32_max_error_{name}", value)
    print(f"case118 float32 vs pandapower float64: {errors}, iterations {int(result.iterations)}")
    # the float32 tolerance (1e-4 p.u. mismatch) bounds these; far looser would mean a bug
    assert errors["vm_pu"] < 1e-5 and errors["va_deg"] < 1e-2 and errors["pf_mw"] < 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pd": np.zeros(5)}, "pd must have shape"),
        ({"vg": np.ones((2, 7))}, "vg must have shape"),
        ({"line_status": np.ones(3, bool)}, "line_status must have shape"),
        ({"pd": np.zeros((2, 118)), "pg": np.zeros((3, 54))}, "do not broadcast"),
        ({"max_iter": 0}, "max_iter"),
        ({"init": (np.ones(5), np.zeros(118))}, "init vm must have shape"),
    ],
)
def test_bad_input_is_a_clear_error(grid118, model118, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ac_power_flow(grid118, model=model118, **kwargs)
