"""The safety layer's projection (gridrl.agents.shield): balanced, within bounds, relieving."""

import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from gridrl.agents.shield import balanced_projection, relieve


def test_balanced_projection_is_the_nearest_balanced_point_within_bounds():
    rng = np.random.default_rng(0)
    y = rng.normal(size=12) * 5
    lower, upper = -rng.uniform(0, 4, 12), rng.uniform(0, 4, 12)
    x = np.asarray(balanced_projection(jnp.asarray(y), jnp.asarray(lower), jnp.asarray(upper)))
    assert abs(x.sum()) < 1e-4
    assert np.all(x >= lower - 1e-6) and np.all(x <= upper + 1e-6)
    ref = minimize(
        lambda z: 0.5 * np.sum((z - y) ** 2), np.zeros(12), jac=lambda z: z - y,
        bounds=list(zip(lower, upper, strict=True)),
        constraints=[{"type": "eq", "fun": np.sum}], method="SLSQP",
    )  # fmt: skip
    np.testing.assert_allclose(x, ref.x, atol=1e-3)


def test_relieve_brings_an_overloaded_branch_within_its_limit():
    # one branch at 120 MW with a limit of 100: unit 0 pushes it, unit 1 relieves it
    shift = jnp.asarray([[0.5, -0.3, 0.0], [0.1, 0.1, -0.2]])
    flow, limit = jnp.asarray([120.0, 10.0]), jnp.asarray([100.0, 100.0])
    lower, upper = jnp.full(3, -50.0), jnp.full(3, 50.0)
    move = np.asarray(relieve(flow, shift, limit, lower, upper))
    after = np.asarray(flow + shift @ move)
    assert abs(move.sum()) < 1e-3
    assert np.all(np.abs(after) <= np.asarray(limit) + 1e-3)
    assert move[0] < 0 < move[1]


def test_relieve_leaves_a_secure_dispatch_alone():
    shift = jnp.asarray([[0.5, -0.3]])
    move = relieve(jnp.asarray([50.0]), shift, jnp.asarray([100.0]), -jnp.ones(2), jnp.ones(2))
    np.testing.assert_allclose(np.asarray(move), 0.0, atol=1e-9)
