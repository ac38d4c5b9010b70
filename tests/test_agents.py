"""gridrl.agents: the actions encoder and the rule-based baselines, on the environment itself.

One environment and one jitted step serve the module (the session's shared `normal` ones,
conftest.py); each policy is jitted on its own (small), once.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gridrl.agents import HEURISTICS, HeuristicPolicy, JaxPolicy, encode, heuristic
from gridrl.env.dispatch import decode, sanitize, setpoints, step_ramp


@pytest.fixture(scope="module")
def env(normal_env):
    """`make("ieee118", scenario="normal", episode_steps=12)`, shared with other modules."""
    return normal_env


@pytest.fixture(scope="module")
def start(env, normal_fns):
    """The reset of key 3, by the shared batched reset (a batch of that key, sample 0)."""
    keys = jnp.stack([jax.random.key(3)] * normal_fns.batch)
    return jax.tree.map(lambda x: x[0], normal_fns.reset(keys, env.default_params))


@pytest.fixture(scope="module")
def step(normal_fns):
    return normal_fns.single_step


def test_encoded_intent_is_what_the_environment_applies(env, start):
    """encode is the inverse of the environment's decoding, within one step's ramp."""
    params, config = env.default_params, env.config
    _, state = start
    dispatchable = np.asarray(params.layout.dispatchable)
    ramp = np.asarray(step_ramp(params))
    pg = np.asarray(state.pg)
    # half a ramp up for every other unit, a quarter down for the rest (inside the limits)
    sign = np.where(np.arange(pg.size) % 2 == 0, 0.5, -0.25)
    room_ok = (pg + ramp <= np.asarray(state.available)) & (
        pg - ramp >= np.asarray(params.grid.pmin)
    )
    moved = dispatchable & room_ok
    target = np.where(moved, pg + sign * np.where(np.isfinite(ramp), ramp, 0.0), pg)
    curtail = np.where(dispatchable, 0.0, 0.3)
    shed = np.full(params.grid.n_bus, 0.05)
    actions = encode(params, config, state.pg, jnp.asarray(target), curtail, shed)
    assert {a: v.shape for a, v in actions.items()} == {
        a: env.action_space(a).shape for a in env.agents
    }
    clean, touched = sanitize(actions, params.grid.pd.dtype)
    assert not bool(touched)
    unit_on = np.asarray(params.grid.gen_status) > 0
    sp = setpoints(
        params, config, decode(clean, params.layout), state.pg, state.demand, state.available,
        jnp.asarray(unit_on),
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(sp.target)[moved], target[moved], rtol=1e-6, atol=1e-3)
    renewable = ~dispatchable & unit_on
    np.testing.assert_allclose(
        np.asarray(sp.curtailed)[renewable], 0.3 * np.asarray(state.available)[renewable], atol=1e-3
    )
    demand = np.maximum(np.asarray(state.demand), 0.0)
    np.testing.assert_allclose(np.asarray(sp.shed), 0.05 * demand, rtol=1e-5, atol=1e-4)


def _overloaded(env, start, over: float, counter: int):
    """Start state and params where the most loaded branch is at `over` times its rating, with
    its overload counter at `counter`."""
    params = env.default_params
    _, state = start
    flows = np.abs(np.asarray(state.flow))
    branch = int(np.argmax(flows / np.asarray(params.rating)))
    params = params.replace(rating=params.rating.at[branch].set(flows[branch] / over))
    state = state.replace(overload_count=state.overload_count.at[branch].set(counter))
    return params, state, branch


@functools.cache
def _jitted_policy(env, policy_name):
    """The heuristic jitted once per policy (the module's tests reuse each compilation)."""
    obs = None  # the heuristics read the state (an operator's SCADA view), not the observation
    # built inside jit, as the evaluation runner builds it
    return jax.jit(lambda s, p: heuristic(policy_name, env)(jax.random.key(0), obs, s, p))


def _loading_after(env, step, policy_name, params, state, branch):
    act = _jitted_policy(env, policy_name)(state, params)
    # stepped in float32, the action space's dtype (under x64 some policies give float64, which
    # the env casts to float32 as it clips): one compilation of the shared step for all of them
    float32 = {agent: a.astype(jnp.float32) for agent, a in act.items()}
    _, after, _, _, info = step(jax.random.key(7), state, float32, params)
    loading = float(jnp.abs(after.flow[branch]) / params.rating[branch])
    return loading, info, act


def test_proportional_redispatch_relieves_an_overloaded_branch(env, start, step):
    params, state, branch = _overloaded(env, start, over=1.1, counter=0)
    held, _, _ = _loading_after(env, step, "do_nothing", params, state, branch)
    relieved, info, act = _loading_after(env, step, "proportional", params, state, branch)
    assert held > 1.0  # the grid does not fix itself
    assert relieved < held - 0.05
    assert float(info["load_shed_mw"]) == 0.0  # redispatch only
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in act.values())


def test_emergency_operator_sheds_load_before_a_trip(env, start, step):
    trip_after = env.config.protection.trip_after_steps
    params, state, branch = _overloaded(env, start, over=1.3, counter=trip_after - 1)
    redispatched, _, _ = _loading_after(env, step, "proportional", params, state, branch)
    emergency, info, _ = _loading_after(env, step, "emergency", params, state, branch)
    assert float(info["load_shed_mw"]) > 0.0
    assert emergency < redispatched


def test_unknown_heuristic_is_a_clear_error(env):
    assert set(HEURISTICS) == {"do_nothing", "proportional", "emergency"}
    with pytest.raises(ValueError, match="unknown heuristic policy 'greedy'"):
        heuristic("greedy", env)


def test_heuristics_are_jax_policies(env, start):
    """Each heuristic as a JaxPolicy: no weights, a spec equal across constructions (one
    compilation); its act function passes the step through to the bare function."""
    for name in HEURISTICS:
        policy = HeuristicPolicy(name)
        assert isinstance(policy, JaxPolicy)
        assert policy.weights is None
        assert policy.spec == HeuristicPolicy(name).spec
        assert hash(policy.spec) == hash(HeuristicPolicy(name).spec)
    _, state = start
    params, key = env.default_params, jax.random.key(0)
    ours = HeuristicPolicy("proportional").spec.act(env)(None, key, None, state, params)
    theirs = heuristic("proportional", env)(key, None, state, params)
    assert ours.keys() == theirs.keys() == set(env.agents)
    for agent in ours:
        np.testing.assert_array_equal(ours[agent], theirs[agent])
    with pytest.raises(ValueError, match="unknown heuristic policy 'greedy'"):
        HeuristicPolicy("greedy")
