"""The environment charges the grid's own cost curves, exactly those the OPF optimises against
(gridrl.cases.costs): polynomial and piecewise-linear alike, nothing for a unit at 0 MW."""

import jax.numpy as jnp
import numpy as np
import pytest

from gridrl.cases import CaseError, CostModel, cost_per_gen, gen_costs, load
from gridrl.env import rewards
from gridrl.env.config import EnvConfig
from gridrl.env.params import _costs, build_params

# Two dispatchable units of ieee118 given piecewise-linear costs: breakpoints as shares of pmax,
# the second with fewer points (padded by repeating its last one, as the case readers do).
PWL_UNITS = {4: ((0.1, 0.4, 0.7, 1.0), (20.0, 25.0, 40.0)), 10: ((0.2, 0.6, 1.0), (30.0, 31.5))}


def _piecewise_grid():
    grid = load("ieee118")
    model = np.asarray(grid.cost_model).copy()
    pwl = np.zeros((grid.n_gen, 4, 2))
    for gen, (shares, slopes) in PWL_UNITS.items():
        mw = np.asarray(shares) * float(grid.pmax[gen])
        cost = 500.0 + np.concatenate([[0.0], np.cumsum(np.diff(mw) * slopes)])
        points = np.stack([mw, cost], axis=-1)
        pwl[gen] = np.concatenate([points, np.repeat(points[-1:], 4 - len(points), axis=0)])
        model[gen] = CostModel.PIECEWISE_LINEAR
    return grid.replace(cost_model=model, cost_pwl=pwl)


@pytest.fixture(scope="module")
def grid():
    return _piecewise_grid()


@pytest.fixture(scope="module")
def params(grid):
    return build_params(grid, EnvConfig())


def _outputs(grid) -> np.ndarray:
    """[k, n_gen] MW: the piecewise-linear units at their breakpoints, between them and beyond
    the last; every other unit at a positive output of its own."""
    pmax = np.asarray(grid.pmax, float)
    shares = np.array([0.1, 0.2, 0.25, 0.4, 0.55, 0.6, 0.7, 0.9, 1.0, 1.1, 0.03])
    return shares[:, None] * np.maximum(pmax, 1.0)[None, :]


def test_env_cost_equals_the_opf_cost_exactly(grid, params):
    quadratic, linear, constant, slope, intercept = _costs(grid)
    assert slope.shape == (grid.n_gen, 3)  # the longest curve's segments, the others padded
    for name, exact in [
        ("cost_quadratic", quadratic),
        ("cost_linear", linear),
        ("cost_constant", constant),
        ("cost_slope", slope),
        ("cost_intercept", intercept),
    ]:
        np.testing.assert_array_equal(getattr(params, name), exact.astype(np.float32), name)
    params64 = params.replace(
        cost_quadratic=jnp.asarray(quadratic),
        cost_linear=jnp.asarray(linear),
        cost_constant=jnp.asarray(constant),
        cost_slope=jnp.asarray(slope),
        cost_intercept=jnp.asarray(intercept),
    )
    pg = _outputs(grid)
    charged = np.asarray(rewards.generation_cost(params64, jnp.asarray(pg)))
    assert charged.dtype == np.float64
    exact = gen_costs(grid, np.asarray(grid.gen_status) > 0)
    expected = np.stack([cost_per_gen(exact, row) for row in pg])
    np.testing.assert_allclose(charged, expected, rtol=1e-13, atol=1e-9)
    for gen, (shares, _) in PWL_UNITS.items():  # breakpoints: the curve's own points, exactly
        points = np.asarray(grid.cost_pwl)[gen, : len(shares)]
        at = np.zeros((len(points), grid.n_gen))
        at[:, gen] = points[:, 0]
        cost = np.asarray(rewards.generation_cost(params64, jnp.asarray(at)))[:, gen]
        np.testing.assert_allclose(cost, points[:, 1], rtol=1e-13)


def test_a_unit_at_zero_mw_costs_nothing(grid, params):
    zero = np.asarray(rewards.generation_cost(params, jnp.zeros(grid.n_gen, jnp.float32)))
    np.testing.assert_array_equal(zero, 0.0)
    # ... though a curve has a value there (a constant term, a first segment's extension)
    exact = cost_per_gen(gen_costs(grid, np.asarray(grid.gen_status) > 0), np.zeros(grid.n_gen))
    assert all(exact[gen] != 0 for gen in PWL_UNITS)


def test_a_non_convex_curve_is_refused_before_anything_is_built(grid):
    pwl = np.asarray(grid.cost_pwl).copy()
    pwl[4, 1, 1] = pwl[4, 0, 1] + 0.9 * (pwl[4, 2, 1] - pwl[4, 0, 1])  # steep, then flat
    with pytest.raises(CaseError, match="generator 4 is not convex"):
        build_params(grid.replace(cost_pwl=pwl), EnvConfig())
