"""Contingency analysis (`gridrl.physics.contingency`) in float64: the LODF columns of a topology,
base and compensated for outages, against DC power flows solved with each contingency out."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gridrl.cases import load
from gridrl.physics import dc_model, dc_power_flow, energized_buses
from gridrl.physics.contingency import islanding, lodf_after_outages, lodf_columns, near_islanding
from gridrl.physics.dc import outages

# four loaded branches with parallel paths; 164 alone feeds bus 111; with 67 and 40 out, buses 51
# and 52 hang on 69 (and 51 on 68), bus 32 on 44
CONTINGENCIES = np.array([176, 175, 29, 34, 69, 68, 44, 164])
OUT = (67, 40)


@pytest.fixture(scope="module")
def grid():
    return load("ieee118")


@pytest.fixture(scope="module")
def model(grid):
    return dc_model(grid)


def splits(grid, status: np.ndarray, branch: int) -> bool:
    """Whether taking `branch` out of topology `status` de-energises some bus (on the graph)."""
    without = status.copy()
    without[branch] = False
    return bool(np.any(energized_buses(grid, status) & ~energized_buses(grid, without)))


@pytest.mark.parametrize("out", [(), OUT], ids=["base", "two-out"])
def test_lodf_columns_match_solved_outages(grid, model, out) -> None:
    status = np.ones(grid.n_branch, bool)
    status[list(out)] = False
    topology = outages(model, jnp.asarray(status), len(out))
    factors, flagged = (np.asarray(a) for a in lodf_after_outages(model, topology, CONTINGENCIES))
    expected = [splits(grid, status, c) for c in CONTINGENCIES]
    np.testing.assert_array_equal(flagged, expected)
    assert not flagged[:4].any() and flagged[-1]
    assert (flagged[4:-1] if out else ~flagged[4:-1]).all()
    assert np.all(factors[:, flagged] == 0)
    searched = islanding(model.f_bus, model.t_bus, status, model.ref, grid.n_bus, CONTINGENCIES)
    np.testing.assert_array_equal(searched, expected)

    pf = np.asarray(dc_power_flow(grid, status, max_outages=None).pf)
    atol = 1e-9 * np.abs(pf).max()
    for position in np.flatnonzero(~flagged):
        c = CONTINGENCIES[position]
        after = status.copy()
        after[c] = False
        solved = np.asarray(dc_power_flow(grid, after, max_outages=None).pf)
        predicted = pf + factors[:, position] * pf[c]
        predicted[~after] = 0.0  # the contingency and the branches already out carry nothing
        np.testing.assert_allclose(predicted, solved, rtol=0, atol=atol)


def test_numpy_columns_are_the_jax_ones(model) -> None:
    """SCED's float64 numpy path: the same columns and flags, as numpy arrays."""
    transfer = model.susceptance[:, None] * model.branch_gram[:, CONTINGENCIES]
    host = np.asarray(transfer)
    flagged = near_islanding(host, CONTINGENCIES)
    factors = lodf_columns(host, CONTINGENCIES, flagged)
    assert isinstance(factors, np.ndarray) and isinstance(flagged, np.ndarray)
    cont = jnp.asarray(CONTINGENCIES)
    np.testing.assert_array_equal(flagged, near_islanding(transfer, cont))
    expected = lodf_columns(transfer, cont, jnp.asarray(flagged))
    np.testing.assert_allclose(factors, expected, rtol=1e-12, atol=0)
