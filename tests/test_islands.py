"""Energised buses: propagation (`energized_buses`) against scipy's connected components, and the
spanning-tree shortcut used by the fast DC path against propagation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandapower.networks as pn
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridrl.cases import BusType, from_pandapower
from gridrl.physics import dc_model, dc_power_flow, energized_buses
from gridrl.physics.dc import first_true
from gridrl.physics.islands import islands_after_outages


@pytest.fixture(scope="module", params=["case118", "case300"])
def grid(request):
    return from_pandapower(getattr(pn, request.param)())


def scipy_energized(grid, status: np.ndarray) -> np.ndarray:
    """Buses in the reference bus's connected component, by scipy."""
    f, t = np.asarray(grid.f_bus)[status], np.asarray(grid.t_bus)[status]
    graph = coo_matrix((np.ones(len(f)), (f, t)), shape=(grid.n_bus, grid.n_bus))
    _, labels = connected_components(graph, directed=False)
    return labels == labels[grid.ref_bus]


def random_outages(grid, rng, batch: int, most: int, tree_share: float = 0.7) -> np.ndarray:
    """Masks with up to `most` branches out; mostly spanning-tree branches, so that outages
    island parts of the grid and cuts nest."""
    tree_branches = np.flatnonzero(np.asarray(dc_model(grid).tree.tree_child) >= 0)
    status = np.ones((batch, grid.n_branch), bool)
    for row in status:
        count = rng.integers(0, most + 1)
        pool = tree_branches if rng.random() < tree_share else np.arange(grid.n_branch)
        row[rng.choice(pool, count, replace=False)] = False
    return status


def test_energized_buses_match_connected_components(grid):
    rng = np.random.default_rng(1)
    status = random_outages(grid, rng, batch=64, most=12)
    got = np.asarray(jax.jit(energized_buses)(grid, status))
    expected = np.stack([scipy_energized(grid, row) for row in status])
    assert got.shape == (64, grid.n_bus)
    np.testing.assert_array_equal(got, expected)
    assert (~got).any(), "the sample should island some buses"


def test_all_in_service_energizes_everything(grid):
    assert np.asarray(energized_buses(grid)).all()


def test_tree_shortcut_matches_propagation(grid):
    model = dc_model(grid)
    rng = np.random.default_rng(2)
    status = random_outages(grid, rng, batch=256, most=3)
    branch = first_true(model.usable & ~status, 3)
    valid = branch < grid.n_branch

    @jax.jit
    def shortcut(branch, valid):
        return islands_after_outages(
            model.tree,
            model.energized,
            model.f_bus,
            model.t_bus,
            jnp.where(valid, branch, 0),
            valid,
        )

    got, reconnect = shortcut(branch, valid)
    expected = np.asarray(energized_buses(grid, status))
    np.testing.assert_array_equal(np.asarray(got), expected)
    # exactly one removed branch per island is chosen to hang it back on the grid
    reconnect, branch = np.asarray(reconnect), np.asarray(branch)
    for row in np.flatnonzero(reconnect.any(axis=1))[:40]:
        dead = ~expected[row] & np.asarray(model.energized)
        f, t = (
            np.asarray(grid.f_bus)[np.asarray(status[row])],
            np.asarray(grid.t_bus)[np.asarray(status[row])],
        )
        graph = coo_matrix((np.ones(len(f)), (f, t)), shape=(grid.n_bus, grid.n_bus))
        _, labels = connected_components(graph, directed=False)
        assert reconnect[row].sum() == len(np.unique(labels[dead]))
        back = status[row].copy()
        back[branch[row][reconnect[row]]] = True
        assert scipy_energized(grid, back)[np.asarray(model.energized)].all()
    assert reconnect.sum() > 10


def test_vmap_equals_batch(grid):
    status = random_outages(grid, np.random.default_rng(3), batch=8, most=5)
    batched = energized_buses(grid, status)
    mapped = jax.vmap(lambda s: energized_buses(grid, s))(status)
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(mapped))


def test_isolated_bus_type_is_never_energized():
    grid = from_pandapower(pn.case118())
    bus = 5  # an ordinary PQ/PV bus with branches to it
    grid = grid.replace(
        bus_type=np.where(np.arange(grid.n_bus) == bus, BusType.ISOLATED, grid.bus_type)
    )
    energized = np.asarray(energized_buses(grid))
    assert not energized[bus]
    assert energized.sum() == grid.n_bus - 1
    result = dc_power_flow(grid)
    touching = (np.asarray(grid.f_bus) == bus) | (np.asarray(grid.t_bus) == bus)
    assert np.all(np.asarray(result.pf)[touching] == 0)
    assert float(result.lost_load_mw) == pytest.approx(max(float(grid.pd[bus]), 0.0))
    assert np.isfinite(np.asarray(result.va)).all()


def test_island_with_generators_is_dead_and_its_output_dropped():
    """An island holding generation but no reference bus is lost, generators included."""
    grid = from_pandapower(pn.case118())
    gen_bus = np.asarray(grid.gen_bus)
    # a single branch whose outage cuts off a generator bus
    singles = ~np.eye(grid.n_branch, dtype=bool)
    after = np.asarray(energized_buses(grid, singles))
    cuts_gen = (~after[:, gen_bus] & np.asarray(grid.gen_status)).any(axis=1)
    assert cuts_gen.any(), "case118 has no single outage that islands a generator"
    branch = int(np.flatnonzero(cuts_gen)[0])
    status, energized = singles[branch], after[branch]
    dead_gens = ~energized[gen_bus] & np.asarray(grid.gen_status)
    for max_outages in (None, 3):
        result = dc_power_flow(grid, status, max_outages=max_outages)
        np.testing.assert_array_equal(np.asarray(result.energized), energized)
        live_gen = np.asarray(grid.pg)[~dead_gens & np.asarray(grid.gen_status)]
        live_gen_buses = gen_bus[~dead_gens & np.asarray(grid.gen_status)]
        at_ref = live_gen[live_gen_buses == grid.ref_bus].sum()
        others = live_gen[live_gen_buses != grid.ref_bus].sum()
        load = np.asarray(grid.pd + grid.gs)[energized].sum()
        assert float(result.pg_slack) == pytest.approx(load - others, abs=1e-6)
        assert at_ref != float(result.pg_slack)  # the slack did take up the imbalance
        assert float(result.lost_load_mw) == pytest.approx(
            np.maximum(np.asarray(grid.pd), 0)[~energized].sum()
        )
