"""The built-in ieee118 grid: what was added to case118, and the operating properties its
ratings were derived for over the measured year (gridrl.opf.ratings; flows checked against
gridrl.physics, secure dispatches solved by HiGHS)."""

from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph

from gridrl.cases import CaseError, GenType, Grid, ieee118, load, read_matpower
from gridrl.cases.partition import spectral_partition
from gridrl.env.params import SOLAR_SITE_CYCLE, WIND_SITE_CYCLE
from gridrl.opf import ratings
from gridrl.opf.ratings import OperatingPoints
from gridrl.physics import dc_power_flow
from gridrl.timeseries import build_profiles

RENEWABLE = (GenType.WIND, GenType.SOLAR)


@pytest.fixture(scope="module")
def grid() -> Grid:
    return load("ieee118")


@pytest.fixture(scope="module")
def unrated() -> Grid:
    return ieee118.unrated_ieee118()


@pytest.fixture(scope="module")
def profiles():
    return build_profiles()


@pytest.fixture(scope="module")
def hours(grid: Grid, profiles) -> OperatingPoints:
    """The points the ratings were derived from: every hour of the year."""
    cycles = (WIND_SITE_CYCLE, SOLAR_SITE_CYCLE)
    return ratings.profile_points(grid, profiles, *cycles, steps=ratings.HOURLY_STEPS)


@pytest.fixture(scope="module")
def half_hours(grid: Grid, profiles) -> OperatingPoints:
    """Points the ratings never saw: the 5-minute step half-way through every hour."""
    return ratings.profile_points(
        grid, profiles, WIND_SITE_CYCLE, SOLAR_SITE_CYCLE, steps=slice(6, None, 12)
    )


@pytest.fixture(scope="module")
def half_hour_loading(grid: Grid, half_hours: OperatingPoints) -> np.ndarray:
    """[n_point, n_branch] |flow| / rate_a under the environment's start dispatch."""
    pg = ratings.reference_dispatch(grid, half_hours)
    return np.abs(ratings.branch_flows(grid, half_hours, pg)) / grid.rate_a


def _flows(grid: Grid, pg: np.ndarray) -> np.ndarray:
    return np.asarray(dc_power_flow(grid, pg=pg).pf)


def _connected(grid: Grid, buses: np.ndarray) -> bool:
    adjacency = np.zeros((grid.n_bus, grid.n_bus), bool)
    adjacency[grid.f_bus[grid.branch_status], grid.t_bus[grid.branch_status]] = True
    inside = scipy.sparse.csr_array(adjacency[np.ix_(buses, buses)])
    return scipy.sparse.csgraph.connected_components(inside, directed=False)[0] == 1


def test_counts_and_bus_numbers(grid: Grid) -> None:
    assert (grid.n_bus, grid.n_gen, grid.n_branch) == (118, 54 + 16, 186)
    assert grid.bus_ids == tuple(range(1, 119))
    assert grid.name == "ieee118"
    assert grid.bus_ids[grid.ref_bus] == 69
    assert grid.pd.sum() == pytest.approx(4242.0)


def test_load_is_cached_read_only_and_the_default(grid: Grid) -> None:
    assert load() is grid
    with pytest.raises(ValueError, match="read-only"):
        grid.rate_a[0] = 1e9


def test_build_is_deterministic(grid: Grid, unrated: Grid) -> None:
    again = unrated.replace(rate_a=grid.rate_a)
    assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(grid)
    leaves = zip(jax.tree_util.tree_leaves(grid), jax.tree_util.tree_leaves(again), strict=True)
    for ours, theirs in leaves:
        np.testing.assert_array_equal(ours, theirs)


def test_stored_ratings_are_the_derived_ratings(
    grid: Grid, unrated: Grid, hours: OperatingPoints
) -> None:
    assert np.all(np.isinf(unrated.rate_a))
    assert len(hours) == 365 * 24
    np.testing.assert_array_equal(ratings.derive_ratings(unrated, hours), grid.rate_a)


def test_ratings_are_rounded_and_at_least_their_voltage_class_floor(grid: Grid) -> None:
    assert np.all(np.isfinite(grid.rate_a))
    np.testing.assert_array_equal(grid.rate_a % ratings.RATING_STEP_MVA, 0.0)
    kv = np.maximum(grid.base_kv[grid.f_bus], grid.base_kv[grid.t_bus])
    floor = ratings.rating_floor(grid)
    np.testing.assert_array_equal(floor, np.where(kv >= 300, 400.0, 100.0))
    assert np.all(grid.rate_a >= floor)
    # the floors do not decide everything: the busiest branches are rated above them
    assert 10 <= np.sum(grid.rate_a > floor) <= 60


def test_regions_are_four_connected_parts_of_about_30_buses(grid: Grid) -> None:
    assert grid.n_region == 4
    sizes = np.bincount(grid.region)
    assert sizes.sum() == 118 and np.all((sizes >= 25) & (sizes <= 35)), sizes
    for number in range(4):
        assert _connected(grid, np.flatnonzero(grid.region == number)), number


def test_generator_types_and_ramps(grid: Grid) -> None:
    gen_type = grid.gen_type
    counts = {GenType(t).name: int(np.sum(gen_type == t)) for t in np.unique(gen_type)}
    assert counts == {"COAL": 11, "GAS": 35, "NUCLEAR": 2, "HYDRO": 6, "WIND": 8, "SOLAR": 8}
    renewable = np.isin(gen_type, RENEWABLE)
    assert np.all(np.isinf(grid.ramp[renewable]))
    for technology, percent in ieee118.RAMP_PERCENT_PER_MINUTE.items():
        units = gen_type == technology
        np.testing.assert_allclose(grid.ramp[units], percent / 100 * grid.pmax[units])
    assert np.all(grid.ramp[~renewable] > 0)
    # the rule: 40 $/MWh units are gas peakers, and the nuclear units are the largest
    assert np.all(grid.cost_poly[gen_type == GenType.GAS, 1] == 40.0)
    others = ~renewable & (gen_type != GenType.NUCLEAR)
    assert grid.pmax[gen_type == GenType.NUCLEAR].min() > grid.pmax[others].max()


def test_renewables_supply_a_quarter_to_a_third_of_nominal_energy(grid: Grid) -> None:
    renewable = np.isin(grid.gen_type, RENEWABLE)
    factor = np.array([ieee118.CAPACITY_FACTOR[GenType(t)] for t in grid.gen_type[renewable]])
    energy = grid.pmax[renewable] * factor
    np.testing.assert_allclose(grid.pg[renewable], energy)
    assert 0.25 <= energy.sum() / grid.pd.sum() <= 1 / 3
    assert np.all(grid.cost_poly[renewable] == 0.0)
    buses = grid.gen_bus[renewable]
    assert len(set(buses.tolist())) == 16  # one plant per bus, at buses with no other unit
    assert not set(buses.tolist()) & set(grid.gen_bus[~renewable].tolist())
    for technology in RENEWABLE:
        regions = grid.region[grid.gen_bus[grid.gen_type == technology]]
        assert sorted(regions.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
        assert grid.pmax[grid.gen_type == technology].max() <= 400.0  # many small plants
    # big wind connects at 345 kV: every region with two free 345 kV buses uses them
    wind_kv = grid.base_kv[grid.gen_bus[grid.gen_type == GenType.WIND]]
    assert np.sum(wind_kv == 345) == 5, wind_kv


def test_capacity_factors_are_those_of_the_environments_weather(
    grid: Grid, hours: OperatingPoints
) -> None:
    for technology in RENEWABLE:
        units = grid.gen_type == technology
        measured = hours.available[:, units].sum() / len(hours) / grid.pmax[units].sum()
        assert measured == pytest.approx(ieee118.CAPACITY_FACTOR[technology], abs=0.01)


def test_branch_flows_are_the_physics_dc_flows(grid: Grid, half_hours: OperatingPoints) -> None:
    points = half_hours.select(np.arange(0, len(half_hours), 2000))
    pg = ratings.reference_dispatch(grid, points)
    ours = ratings.branch_flows(grid, points, pg)
    for demand, dispatch, flows in zip(points.demand(grid), pg, ours, strict=True):
        # one point at a time, in the shapes the other tests compile dc_power_flow for
        physics = _flows(grid.replace(pd=demand), dispatch)
        np.testing.assert_allclose(flows, physics, rtol=1e-9, atol=1e-7)


def test_reference_dispatch_is_the_environments_start(
    grid: Grid, half_hours: OperatingPoints
) -> None:
    pg = ratings.reference_dispatch(grid, half_hours)
    demand = half_hours.demand(grid).sum(axis=1)
    np.testing.assert_allclose(pg.sum(axis=1), demand, rtol=1e-12)
    assert np.all((pg >= -1e-9) & (pg <= half_hours.available + 1e-9))
    renewable = np.isin(grid.gen_type, RENEWABLE)
    green = half_hours.available[:, renewable]
    surplus = green.sum(axis=1) > demand
    # renewables give what the weather gives unless they alone exceed the load
    np.testing.assert_allclose(pg[~surplus][:, renewable], green[~surplus])
    assert np.all(pg[surplus][:, ~renewable] == 0.0)
    # the dispatchable units keep the grid's own shares
    busy = ~surplus
    shares = pg[busy][:, ~renewable] / pg[busy][:, ~renewable].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        shares,
        np.broadcast_to(grid.pg[~renewable] / grid.pg[~renewable].sum(), shares.shape),
        atol=1e-12,
    )


def test_own_dispatch_is_balanced_and_secure(grid: Grid) -> None:
    assert grid.pg.sum() == pytest.approx(grid.pd.sum(), rel=1e-12)
    assert np.all((grid.pmin <= grid.pg) & (grid.pg <= grid.pmax))
    loading = np.abs(_flows(grid, grid.pg)) / grid.rate_a
    assert loading.max() <= 1.0


def test_economic_dispatch_overloads_several_lines(grid: Grid) -> None:
    dispatch = ratings.economic_dispatch(grid)
    assert dispatch.sum() == pytest.approx(grid.pd.sum(), rel=1e-9)
    assert np.all((grid.pmin - 1e-9 <= dispatch) & (dispatch <= grid.pmax + 1e-9))
    loading = np.abs(_flows(grid, dispatch)) / grid.rate_a
    assert 3 <= np.sum(loading > 1.0) <= 20, np.sort(loading)[-10:]


def test_a_secure_dispatch_exists_at_peak_without_curtailment(grid: Grid) -> None:
    feasible, dispatch = ratings.secure_dispatch(
        grid, ratings.nominal_point(grid), curtailment=False
    )
    assert feasible.tolist() == [True]
    dispatch = dispatch[0]
    renewable = np.isin(grid.gen_type, RENEWABLE)
    np.testing.assert_allclose(dispatch[renewable], grid.pg[renewable])
    assert dispatch.sum() == pytest.approx(grid.pd.sum(), rel=1e-9)
    assert np.all((grid.pmin - 1e-6 <= dispatch) & (dispatch <= grid.pmax + 1e-6))
    assert np.all(np.abs(_flows(grid, dispatch)) <= grid.rate_a * (1 + 1e-9))


def test_the_start_dispatch_is_within_ratings_on_ordinary_points(
    half_hour_loading: np.ndarray,
) -> None:
    worst = half_hour_loading.max(axis=1)
    assert np.median(worst) < 0.8
    assert np.mean(worst > 1.0) < 0.005  # measured: 0.2 % of the year's half hours
    assert worst.max() < 1.1  # measured: 1.08


def test_the_start_dispatch_is_within_ratings_under_ac_too(
    grid: Grid, half_hours: OperatingPoints
) -> None:
    """The ratings hold the AC apparent power too (reactive flow included). With the DC rule
    alone, five reactive-heavy branches were above their rating at the reference dispatch under
    AC most of the year (two by ~30 %), and the AC environment tripped them under do-nothing."""
    pg = ratings.reference_dispatch(grid, half_hours)
    worst = (ratings.branch_apparent_flows(grid, half_hours, pg) / grid.rate_a).max(axis=1)
    # those branches carry an almost constant reactive flow, rated at its 99.5th percentile
    assert np.median(worst) < 0.95  # measured: 0.92 (DC: 0.68)
    assert np.mean(worst > 1.0) < 0.03  # measured: 1.6 % of the half hours (DC: 0.25 %)
    assert worst.max() < 1.2  # measured: 1.15


def test_every_point_of_the_year_has_a_secure_dispatch_with_curtailment(
    grid: Grid, half_hours: OperatingPoints, half_hour_loading: np.ndarray
) -> None:
    # where the start dispatch is within ratings it is itself secure: solve the others
    overloaded = half_hours.select(np.flatnonzero(half_hour_loading.max(axis=1) > 1.0))
    assert len(overloaded) > 0
    feasible, dispatch = ratings.secure_dispatch(grid, overloaded, curtailment=True)
    assert np.all(feasible)
    flows = ratings.branch_flows(grid, overloaded, dispatch)
    assert np.all(np.abs(flows) <= grid.rate_a * (1 + 1e-9))
    assert np.all(dispatch <= overloaded.available + 1e-6)
    np.testing.assert_allclose(dispatch.sum(axis=1), overloaded.demand(grid).sum(axis=1))


def test_secure_dispatch_reports_infeasibility(grid: Grid) -> None:
    tight = grid.replace(rate_a=np.full(grid.n_branch, 1.0))
    feasible, dispatch = ratings.secure_dispatch(
        tight, ratings.nominal_point(grid), curtailment=True
    )
    assert feasible.tolist() == [False]
    assert np.all(dispatch == 0.0)


def test_operating_points_refuse_bad_input(grid: Grid) -> None:
    with pytest.raises(ValueError, match="load must be"):
        OperatingPoints(np.ones(2), np.ones((3, grid.n_gen)))
    with pytest.raises(ValueError, match="finite"):
        OperatingPoints(np.array([np.nan]), np.ones((1, grid.n_gen)))
    with pytest.raises(ValueError, match=">= 0"):
        OperatingPoints(np.ones(1), -np.ones((1, grid.n_gen)))


def test_partition_of_other_networks_is_connected_and_deterministic(pglib_dir: Path) -> None:
    network = read_matpower(pglib_dir / "pglib_opf_case300_ieee.m")
    region = spectral_partition(network)
    np.testing.assert_array_equal(region, spectral_partition(network))
    assert set(region.tolist()) == {0, 1, 2, 3}
    for number in range(4):
        assert _connected(network, np.flatnonzero(region == number)), number


def test_partition_refuses_a_disconnected_network(grid: Grid) -> None:
    cut = np.isin(grid.f_bus, np.flatnonzero(grid.region == 0)) != np.isin(
        grid.t_bus, np.flatnonzero(grid.region == 0)
    )
    with pytest.raises(CaseError, match="not connected"):
        spectral_partition(grid.replace(branch_status=grid.branch_status & ~cut))
