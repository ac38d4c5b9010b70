"""The built-in ieee118 grid: what was added to case118 and the operating properties the
ratings were derived for (flows from gridrl.physics, the LP solved by HiGHS)."""

from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph

from gridrl.cases import CaseError, GenType, Grid, ieee118, load, read_matpower
from gridrl.cases.partition import spectral_partition
from gridrl.physics import dc_power_flow

RENEWABLE = (GenType.WIND, GenType.SOLAR)


@pytest.fixture(scope="module")
def grid() -> Grid:
    return load("ieee118")


@pytest.fixture(scope="module")
def unrated() -> Grid:
    return ieee118.unrated_ieee118()


def _flows(grid: Grid, pg: np.ndarray) -> np.ndarray:
    return np.asarray(dc_power_flow(grid, pg=pg).pf)


def _connected(grid: Grid, buses: np.ndarray) -> bool:
    adjacency = np.zeros((grid.n_bus, grid.n_bus), bool)
    adjacency[grid.f_bus[grid.branch_status], grid.t_bus[grid.branch_status]] = True
    inside = scipy.sparse.csr_array(adjacency[np.ix_(buses, buses)])
    return scipy.sparse.csgraph.connected_components(inside, directed=False)[0] == 1


def test_counts_and_bus_numbers(grid: Grid) -> None:
    assert (grid.n_bus, grid.n_gen, grid.n_branch) == (118, 54 + 8, 186)
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


def test_stored_ratings_are_the_derived_ratings(grid: Grid, unrated: Grid) -> None:
    assert np.all(np.isinf(unrated.rate_a))
    np.testing.assert_array_equal(ieee118.derive_ratings(unrated), grid.rate_a)


def test_every_branch_is_rated(grid: Grid) -> None:
    assert np.all(np.isfinite(grid.rate_a))
    assert np.all(grid.rate_a >= ieee118.RATING_FLOOR_MVA)


def test_regions_are_four_connected_parts_of_about_30_buses(grid: Grid) -> None:
    assert grid.n_region == 4
    sizes = np.bincount(grid.region)
    assert sizes.sum() == 118 and np.all((sizes >= 25) & (sizes <= 35)), sizes
    for number in range(4):
        assert _connected(grid, np.flatnonzero(grid.region == number)), number


def test_generator_types_and_ramps(grid: Grid) -> None:
    gen_type = grid.gen_type
    counts = {GenType(t).name: int(np.sum(gen_type == t)) for t in np.unique(gen_type)}
    assert counts == {"COAL": 11, "GAS": 35, "NUCLEAR": 2, "HYDRO": 6, "WIND": 4, "SOLAR": 4}
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
    assert np.all(grid.bus_type[grid.gen_bus[renewable]] == 1)  # at buses with no other unit
    for technology in RENEWABLE:
        regions = grid.region[grid.gen_bus[grid.gen_type == technology]]
        assert sorted(regions.tolist()) == [0, 1, 2, 3]


def test_own_dispatch_is_balanced_and_secure(grid: Grid) -> None:
    assert grid.pg.sum() == pytest.approx(grid.pd.sum(), rel=1e-12)
    assert np.all((grid.pmin <= grid.pg) & (grid.pg <= grid.pmax))
    loading = np.abs(_flows(grid, grid.pg)) / grid.rate_a
    assert loading.max() <= 1 / ieee118.RATING_MARGIN + 1e-12


def test_economic_dispatch_overloads_several_lines(grid: Grid) -> None:
    dispatch = ieee118.economic_dispatch(grid)
    assert dispatch.sum() == pytest.approx(grid.pd.sum(), rel=1e-9)
    assert np.all((grid.pmin - 1e-9 <= dispatch) & (dispatch <= grid.pmax + 1e-9))
    loading = np.abs(_flows(grid, dispatch)) / grid.rate_a
    assert 3 <= np.sum(loading > 1.0) <= 20, np.sort(loading)[-10:]


def test_a_secure_dispatch_exists_without_curtailment(grid: Grid) -> None:
    dispatch = ieee118.secure_dispatch(grid)
    assert dispatch is not None
    renewable = np.isin(grid.gen_type, RENEWABLE)
    np.testing.assert_allclose(dispatch[renewable], grid.pg[renewable])
    assert dispatch.sum() == pytest.approx(grid.pd.sum(), rel=1e-9)
    assert np.all((grid.pmin - 1e-6 <= dispatch) & (dispatch <= grid.pmax + 1e-6))
    assert np.all(np.abs(_flows(grid, dispatch)) <= grid.rate_a * (1 + 1e-9))


def test_secure_dispatch_reports_infeasibility(grid: Grid) -> None:
    tight = grid.replace(rate_a=np.full(grid.n_branch, 1.0))
    assert ieee118.secure_dispatch(tight) is None


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
