"""Properties of the environment's step that hold for any actions and any outages (hypothesis).

One environment (`normal`, so no scheduled outage interferes with the bookkeeping checked here)
and one jitted, vmapped step serve every example: the examples vary the actions (random, NaN,
±inf, huge), the set of branches out at the start of the step, the ratings (to provoke trips and
cascades) and the keys, never anything static. The environment and its compiled functions are
the session's shared `normal` ones (conftest.py): 12-step episodes, of which the examples play
the first STEPS, so the horizon is never reached here either (as with episodes of STEPS + 1).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BATCH = 4  # the shared functions' batch (conftest.NormalFns.batch)
STEPS = 3
HOSTILE = (np.nan, np.inf, -np.inf, 1e30, -1e30, 3.0)
examples = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def env(normal_env):
    assert normal_env.config.episode_steps > STEPS  # no example reaches the horizon
    return normal_env


@pytest.fixture(scope="module")
def fns(normal_fns):
    assert normal_fns.batch == BATCH
    return normal_fns.reset, normal_fns.step


@st.composite
def hostile_actions(draw, env):
    """Per agent: uniform in [-1, 1], then some entries replaced by one hostile value (or none)."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    actions, expect_flag = {}, False
    for agent in env.agents:
        size = env.action_space(agent).shape[0]
        action = rng.uniform(-1, 1, (BATCH, size)).astype(np.float32)
        value = draw(st.sampled_from((None, *HOSTILE)))
        if value is not None:
            action[:, rng.random(size) < 0.3] = value
            action[:, 0] = value  # at least one entry per grid
            expect_flag = True
        actions[agent] = jnp.asarray(action)
    return actions, expect_flag


def outage_sets(env):
    """Branches out at the start of a step (up to max_outages), with their remaining cooldowns."""
    n_branch = env.default_params.grid.n_branch
    branch = st.integers(0, n_branch - 1)
    cooldown = st.integers(1, 2 * env.config.protection.reconnect_after_steps)
    return st.lists(
        st.tuples(branch, cooldown), max_size=env.config.max_outages, unique_by=lambda x: x[0]
    )


def leaves_finite(tree) -> bool:
    return all(
        bool(np.all(np.isfinite(np.asarray(x))))
        for x in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)
    )


def start(env, fns, seed, outages, rating_scale):
    reset, _ = fns
    params = env.default_params
    params = params.replace(rating=params.rating * rating_scale)
    _, state = reset(jax.random.split(jax.random.key(seed), BATCH), params)
    down = np.asarray(state.branch_down).copy()
    for branch, cooldown in outages:
        down[:, branch] = cooldown
    return params, state.replace(branch_down=jnp.asarray(down, jnp.int32))


@examples
@given(data=st.data(), seed=st.integers(0, 2**16), rating=st.sampled_from((1.0, 0.7, 0.5)))
def test_any_actions_and_outages_keep_every_output_finite_and_energy_balanced(
    env, fns, data, seed, rating
):
    params, state = start(env, fns, seed, data.draw(outage_sets(env)), rating)
    for t in range(STEPS):
        actions, hostile = data.draw(hostile_actions(env))
        keys = jax.random.split(jax.random.key(seed + 1 + t), BATCH)
        obs, state, rewards, _dones, info = fns[1](keys, state, actions, params)
        assert leaves_finite((obs, state, rewards, info))
        # every grid of the batch got the same kind of actions: flagged exactly when one was bad
        assert np.all(np.asarray(info["action_sanitized"]) == hostile)
        # generation + energy not served = demand + losses (the case has no shunt load)
        assert float(jnp.sum(jnp.abs(params.grid.gs))) == 0.0
        generation = np.asarray(info["generation_mw"], float)
        ens = np.asarray(info["energy_not_served_mw"], float)
        demand = np.asarray(info["demand_mw"], float)
        losses = np.asarray(info["losses_mw"], float)
        np.testing.assert_allclose(generation + ens, demand + losses, rtol=2e-4, atol=0.5)
        assert np.all(ens >= -1e-3) and np.all(ens <= demand + 1e-3)


@examples
@given(data=st.data(), seed=st.integers(0, 2**16), rating=st.sampled_from((1.0, 0.7, 0.5)))
def test_trips_cooldowns_counters_and_islands_stay_consistent(env, fns, data, seed, rating):
    params, state = start(env, fns, seed, data.draw(outage_sets(env)), rating)
    protection, grid = env.config.protection, params.grid
    zero = {a: jnp.zeros((BATCH, *env.action_space(a).shape), jnp.float32) for a in env.agents}
    for t in range(STEPS):
        before = jax.tree_util.tree_map(np.asarray, state)
        keys = jax.random.split(jax.random.key(seed + 1 + t), BATCH)
        _, state, _, dones, info = fns[1](keys, state, zero, params)
        after = jax.tree_util.tree_map(np.asarray, state)
        info = jax.tree_util.tree_map(np.asarray, info)
        counted_down = np.maximum(before.branch_down - 1, 0)
        in_service_at_start = counted_down == 0
        # a trip puts a branch in service at the step's start out for exactly reconnect_after_steps
        tripped = in_service_at_start & (after.branch_down > 0)
        assert np.all(after.branch_down[tripped] == protection.reconnect_after_steps)
        assert np.array_equal(tripped.sum(axis=1), info["line_trips"])
        # a branch already out counts down by one a step (no scheduled outage in this scenario)
        assert np.array_equal(
            after.branch_down[~in_service_at_start], counted_down[~in_service_at_start]
        )
        out = after.branch_down > 0
        assert np.array_equal(out.sum(axis=1), info["branches_out"])
        # overload counters: zero when out, below the trip threshold when in, and they only ever
        # restart at zero or advance by one
        assert np.all(after.overload_count[out] == 0)
        assert np.all(after.overload_count[~out] < protection.trip_after_steps)
        advanced = after.overload_count == before.overload_count + 1
        assert np.all((after.overload_count == 0) | advanced)
        # islands: a de-energised bus serves nothing, its units produce nothing, its branches
        # carry nothing; the lost load is the demand there (no agent shed here)
        dead = ~after.energized
        assert np.all(after.served[dead] == 0.0)
        assert np.all(after.pg[dead[:, np.asarray(grid.gen_bus)]] == 0.0)
        touches_dead = dead[:, np.asarray(grid.f_bus)] | dead[:, np.asarray(grid.t_bus)]
        assert np.all(after.flow[touches_dead] == 0.0)
        lost = np.sum(np.where(dead, after.demand, 0.0), axis=1)
        np.testing.assert_allclose(info["lost_load_mw"], lost, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(info["energized_share"], 1 - dead.mean(axis=1), atol=1e-6)
        # why an episode ends can be read from info
        share = env.config.blackout_share
        lost_too_much = info["energy_not_served_mw"] > share * info["demand_mw"]
        assert np.array_equal(info["outage_limit"], info["branches_out"] > env.config.max_outages)
        collapsed = ~info["converged"] & ~info["outage_limit"]
        assert np.array_equal(info["blackout"], lost_too_much | collapsed)
        horizon = after.step >= env.config.episode_steps
        assert np.array_equal(info["truncated"], horizon | info["outage_limit"])
        assert np.array_equal(dones["__all__"], info["blackout"] | info["truncated"])
        assert np.array_equal(after.terminated, info["blackout"])
