"""Grid2Op interoperability: the bundled 118-bus datasets as a Grid, their chronics, and DC flows
against Grid2Op's own (pandapower backend) flows at the first step."""

import datetime as dt
import shutil
import warnings

import numpy as np
import pytest

grid2op = pytest.importorskip("grid2op")

from grid2op.Backend import PandaPowerBackend  # noqa: E402

from gridrl.cases import CaseError  # noqa: E402
from gridrl.cases.grid2op import (  # noqa: E402
    BUNDLED_118,
    dataset_path,
    from_grid2op,
    grid2op_mapping,
)
from gridrl.physics import dc_power_flow  # noqa: E402
from gridrl.timeseries.chronics import read_chronics  # noqa: E402

DATASET = "l2rpn_wcci_2022_dev"  # rated, one short scenario: the quickest to make


@pytest.fixture(scope="module")
def env():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a folder, so nothing downloads; without numba, pandapower skips ~15 s of compilation
        backend = PandaPowerBackend(with_numba=False)
        environment = grid2op.make(str(dataset_path(DATASET)), backend=backend)
    environment.set_id(0)
    environment.reset()
    yield environment
    environment.close()


@pytest.fixture(scope="module")
def obs(env):
    return env.get_obs()


@pytest.fixture(scope="module")
def grid(env):
    return from_grid2op(env)


@pytest.fixture(scope="module")
def mapping(env):
    return grid2op_mapping(env)


@pytest.fixture(scope="module")
def chronics(env):
    return read_chronics(env)


def _bus_ids(grid, index) -> np.ndarray:
    return np.asarray(grid.bus_ids)[np.asarray(index)]


def test_counts_match_env(env, grid, mapping):
    assert grid.n_bus == env.n_sub
    assert grid.n_branch == env.n_line
    assert grid.n_gen == env.n_gen
    assert (mapping.n_line, mapping.n_load, mapping.n_gen) == (env.n_line, env.n_load, env.n_gen)
    assert len(mapping.storage_bus) == env.n_storage
    assert sorted(mapping.line_branch) == list(range(grid.n_branch))
    assert sorted(mapping.gen_index) == list(range(grid.n_gen))


def test_mapping_puts_elements_at_grid2op_substations(env, grid, mapping):
    """Substation ids are the pandapower bus numbers in these datasets (grid.bus_ids)."""
    f_bus, t_bus = np.asarray(grid.f_bus), np.asarray(grid.t_bus)
    np.testing.assert_array_equal(_bus_ids(grid, f_bus[mapping.line_branch]), env.line_or_to_subid)
    np.testing.assert_array_equal(_bus_ids(grid, t_bus[mapping.line_branch]), env.line_ex_to_subid)
    np.testing.assert_array_equal(_bus_ids(grid, mapping.load_bus), env.load_to_subid)
    gen_bus = np.asarray(grid.gen_bus)[mapping.gen_index]
    np.testing.assert_array_equal(_bus_ids(grid, gen_bus), env.gen_to_subid)
    np.testing.assert_array_equal(_bus_ids(grid, mapping.storage_bus), env.storage_to_subid)


def test_ratings_finite_and_consistent_with_rho(grid, mapping, obs):
    """rho = a_or / limit and a_or = S_or / (√3·V_or), so S_or / rate_a = rho·V_or / V_nominal:
    checks the units, the origin-side voltage and the order of the ratings at once (float32)."""
    rate = np.asarray(grid.rate_a)[mapping.line_branch]
    assert np.all(np.isfinite(rate)) and np.all(rate > 0)
    s_or = np.hypot(obs.p_or, obs.q_or)
    v_nominal = np.asarray(grid.base_kv)[np.asarray(grid.f_bus)[mapping.line_branch]]
    np.testing.assert_allclose(s_or / rate, obs.rho * obs.v_or / v_nominal, rtol=1e-4, atol=1e-6)


def test_unrated_dataset_keeps_transformer_ratings():
    """rte_case118_example has no thermal limits: Grid2Op falls back to pandapower's, i.e. the
    99999 kA "no limit" placeholder on lines and each transformer's sn_mva (9900 MVA)."""
    grid, mapping = from_grid2op("rte_case118_example"), grid2op_mapping("rte_case118_example")
    rate = np.asarray(grid.rate_a)[mapping.line_branch]
    n_lines = 173
    assert np.all(np.isinf(rate[:n_lines]))
    np.testing.assert_allclose(rate[n_lines:], 9900.0, rtol=1e-12)


def test_chronics_shapes_and_timestep(env, chronics, mapping, grid):
    n_steps = env.chronics_handler.max_timestep() + 1  # reset shows row 0
    assert chronics.load_p.shape == chronics.load_q.shape == (n_steps, env.n_load)
    assert chronics.prod_p.shape == (n_steps, grid.n_gen)
    assert chronics.pd.shape == chronics.qd.shape == (n_steps, grid.n_bus)
    assert chronics.timestep == dt.timedelta(minutes=5)
    assert chronics.timestep.total_seconds() == env.delta_time_seconds
    assert chronics.start == dt.datetime(2050, 2, 13, 23, 55)
    assert chronics.prod_v is None and chronics.maintenance is None  # drawn at random here
    np.testing.assert_allclose(chronics.pd.sum(axis=1), chronics.load_p.sum(axis=1), rtol=1e-12)


def test_first_row_is_grid2op_reset_state(grid, chronics, mapping, obs):
    """Grid2Op stores injections in float32; AC losses move only the slack generator."""
    np.testing.assert_allclose(chronics.load_p[0], obs.load_p, atol=1e-4)
    np.testing.assert_allclose(chronics.load_q[0], obs.load_q, atol=1e-4)
    prod = chronics.prod_p[0][mapping.gen_index]
    not_slack = np.asarray(grid.gen_bus)[mapping.gen_index] != grid.ref_bus
    assert np.sum(~not_slack) == 1
    np.testing.assert_allclose(prod[not_slack], obs.gen_p[not_slack], atol=1e-4)


@pytest.fixture(scope="module")
def dc_flows(grid, mapping, chronics, obs):
    status = np.zeros(grid.n_branch, bool)
    status[mapping.line_branch] = obs.line_status
    storage = np.zeros(grid.n_bus)
    np.add.at(storage, mapping.storage_bus, obs.storage_power)  # consumption, MW
    result = dc_power_flow(grid, status, pd=chronics.pd[0] + storage, pg=chronics.prod_p[0])
    return np.asarray(result.pf)[mapping.line_branch]


def test_dc_flows_match_grid2op_dc(env, dc_flows):
    """The same injections through Grid2Op's pandapower backend in DC mode (rundcpp). Grid2Op
    rounds injections and flows to float32: a few ulps of flows of several hundred MW."""
    backend = env.backend.copy()
    converged, error = backend.runpf(is_dc=True)
    assert converged, error
    p_or = backend.lines_or_info()[0]
    np.testing.assert_allclose(dc_flows, p_or, atol=1e-4, rtol=0)


def test_dc_flows_close_to_grid2op_ac(obs, dc_flows):
    """DC neglects losses, reactive flows and voltage magnitudes. The losses it leaves out
    (generation − load in the AC solution, ~3% here) bound how far any flow moves; the flow
    pattern must stay the same."""
    losses = float(np.sum(obs.gen_p) - np.sum(obs.load_p))
    assert 0 < losses < 0.05 * np.sum(obs.load_p)
    assert np.max(np.abs(dc_flows - obs.p_or)) < losses
    assert np.corrcoef(dc_flows, obs.p_or)[0, 1] > 0.99


@pytest.mark.parametrize("dataset", BUNDLED_118)
def test_bundled_118_datasets_import(dataset):
    grid = from_grid2op(dataset)
    assert (grid.n_bus, grid.n_branch, grid.n_gen) == (118, 186, 62)
    assert np.all(np.asarray(grid.rate_a) > 0)


OUT_LINE = 180  # a Grid2Op powerline the hand-made maintenance table takes out at rows 1 and 2


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory, mapping):
    """A dataset folder without config.py: the wcci grid, scenario "0" with the first 4 rows of
    its chronics and a maintenance table, and scenario "1" whose prod_p names no generator."""
    import pandas as pd

    source, root = dataset_path(DATASET), tmp_path_factory.mktemp("dataset")
    shutil.copy(source / "grid.json", root / "grid.json")
    folder = root / "chronics" / "0"
    folder.mkdir(parents=True)
    for name in ("load_p", "load_q", "prod_p"):
        table = pd.read_csv(source / "chronics" / "2050-02-14_0" / f"{name}.csv.bz2", sep=";")
        table.head(4).to_csv(folder / f"{name}.csv", sep=";", index=False)
    out = np.zeros((4, mapping.n_line), int)
    out[[1, 2], OUT_LINE] = 1
    maintenance = pd.DataFrame(out, columns=list(mapping.line_names))
    maintenance.to_csv(folder / "maintenance.csv", sep=";", index=False)
    shutil.copytree(folder, root / "chronics" / "1")
    (root / "chronics" / "1" / "prod_p.csv").write_text("gen_a;gen_b\n1;2\n2;3\n3;4\n4;5\n")
    return root


def test_maintenance_table_in_grid_branch_order(small_dataset, mapping):
    chronics = read_chronics(small_dataset)
    assert chronics.maintenance.shape == (4, 186)
    assert chronics.timestep == dt.timedelta(minutes=5) and chronics.start is None
    expected = np.zeros((4, 186), bool)
    expected[[1, 2], mapping.line_branch[OUT_LINE]] = True
    np.testing.assert_array_equal(chronics.maintenance, expected)


def test_dataset_without_config_uses_pandapower_limits(small_dataset):
    rate = np.asarray(from_grid2op(small_dataset).rate_a)
    assert np.all(np.isinf(rate[:173]))  # the grid.json lines carry pandapower's placeholder


def test_bad_inputs_raise_clear_errors(tmp_path, small_dataset):
    with pytest.raises(CaseError, match="not a Grid2Op dataset"):
        from_grid2op(tmp_path)
    with pytest.raises(CaseError, match="expected a grid2op environment"):
        from_grid2op(3.5)
    with pytest.raises(CaseError, match="out of range"):
        read_chronics(small_dataset, scenario=2)
    with pytest.raises(CaseError, match="no scenario 'x'"):
        read_chronics(small_dataset, scenario="x")
    with pytest.raises(CaseError, match="no column for"):
        read_chronics(small_dataset, scenario="1")
