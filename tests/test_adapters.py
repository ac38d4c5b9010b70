"""Gymnasium and PettingZoo front ends: the libraries' own API checkers, the registry, the
vector env's batch and autoreset, and agreement between the batched and single views.

One environment (short episodes) is built for the module; every adapter shares it and its
compiled functions (gridrl.adapters.shared)."""

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

import gridrl  # noqa: F401  (registers the Gymnasium id)
from gridrl.adapters.gymnasium import GridGymEnv, GridVectorEnv
from gridrl.adapters.pettingzoo import parallel_env
from gridrl.adapters.shared import shared_env

ENV_ID = "gridrl/IEEE118-v0"
OPTIONS = {"episode_steps": 8}
NUM_ENVS = 4
TIME_FRACTION = 2  # world_state[2] is the step / episode_steps (strategic time features first)
# The batched and the single programs sum in different orders in float32: a branch loading
# carries about eps32 x system MW (~4e3) / rating (~2e2) ~ 2e-6 of rounding.
FLOAT32_PROGRAMS = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def grid_env():
    return shared_env(**OPTIONS)


@pytest.fixture(scope="module")
def gym_env(grid_env):
    env = gymnasium.make(ENV_ID, **OPTIONS)
    assert env.unwrapped.grid_env is grid_env  # the options reached gridrl.env.make, once
    return env


@pytest.fixture(scope="module")
def vector_env(grid_env):
    env = gymnasium.make_vec(ENV_ID, num_envs=NUM_ENVS, **OPTIONS)
    assert isinstance(env, GridVectorEnv) and env.grid_env is grid_env
    return env


def _recorded(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught]


def test_registry_builds_the_configured_environment(gym_env, grid_env):
    assert grid_env.config.episode_steps == OPTIONS["episode_steps"]
    world = grid_env.observation_space("world_state").shape
    actions = sum(grid_env.action_space(a).shape[0] for a in grid_env.agents)
    assert gym_env.observation_space.shape == world
    assert gym_env.action_space.shape == (actions,)
    assert gym_env.action_space.dtype == np.float32
    assert np.all(gym_env.action_space.low == -1) and np.all(gym_env.action_space.high == 1)


def test_gymnasium_checker_passes(gym_env):
    messages = _recorded(lambda: check_env(gym_env.unwrapped))
    # the world state is normalised to order 1 but not bounded, which the checker notes
    unexpected = [m for m in messages if "infinity" not in m]
    assert unexpected == []


def test_gymnasium_episode_ends_and_outputs_are_clean(gym_env):
    obs, info = gym_env.reset(seed=1)
    assert info == {}
    gym_env.action_space.seed(1)
    for step in range(1, OPTIONS["episode_steps"] + 1):
        obs, reward, terminated, truncated, info = gym_env.step(gym_env.action_space.sample())
        assert obs.dtype == np.float32 and obs in gym_env.observation_space
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
        assert all(type(v) is float for v in info.values())
        assert terminated == (info["blackout"] == 1.0)
        assert truncated == (step == OPTIONS["episode_steps"])
        if terminated or truncated:
            break
    assert terminated or truncated


def test_vector_env_batch_shapes_and_dtypes(vector_env):
    obs, _ = vector_env.reset(seed=0)
    world = vector_env.single_observation_space.shape
    assert obs.shape == (NUM_ENVS, *world) and obs.dtype == np.float32
    assert np.all(obs[:, TIME_FRACTION] == 0.0)
    actions = vector_env.action_space.sample()
    assert actions.shape == (NUM_ENVS, vector_env.single_action_space.shape[0])
    obs, rewards, terminated, truncated, infos = vector_env.step(actions)
    assert obs.shape == (NUM_ENVS, *world) and obs.dtype == np.float32
    assert rewards.shape == (NUM_ENVS,) and rewards.dtype == np.float32
    assert terminated.shape == truncated.shape == (NUM_ENVS,)
    assert terminated.dtype == truncated.dtype == np.bool_
    assert infos["demand_mw"].shape == (NUM_ENVS,) and np.all(infos["_demand_mw"])
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rewards))


def test_vector_env_autoresets_finished_envs_on_the_next_step(vector_env):
    vector_env.reset(seed=10)
    zero = np.zeros(vector_env.action_space.shape, np.float32)
    finished = np.zeros(NUM_ENVS, bool)
    for _ in range(OPTIONS["episode_steps"]):
        _, _, terminated, truncated, _ = vector_env.step(zero)
        finished = terminated | truncated
        if finished.any():
            break
    assert finished.any()
    obs, rewards, terminated, truncated, infos = vector_env.step(zero)
    # the finished envs started over: first observation, zero reward, masked info
    assert np.all(obs[finished, TIME_FRACTION] == 0.0)
    assert np.all(rewards[finished] == 0.0)
    assert not terminated[finished].any() and not truncated[finished].any()
    assert np.array_equal(infos["_demand_mw"], ~finished)
    assert np.all(infos["demand_mw"][finished] == 0.0)


def test_vector_env_resets_only_the_finished_envs(vector_env):
    """With equal horizons and no blackout the envs finish together, so two are flagged
    mid-episode the way a finished episode flags them, to see the others go on."""
    vector_env.reset(seed=30)
    zero = np.zeros(vector_env.action_space.shape, np.float32)
    vector_env.step(zero)
    flagged = np.array([True, False, True, False])
    vector_env._resetting = flagged.copy()
    obs, rewards, _, _, infos = vector_env.step(zero)
    assert np.all(obs[flagged, TIME_FRACTION] == 0.0)
    assert np.all(obs[~flagged, TIME_FRACTION] == 2 / OPTIONS["episode_steps"])
    assert np.all(rewards[flagged] == 0.0) and np.all(rewards[~flagged] != 0.0)
    assert np.array_equal(infos["_demand_mw"], ~flagged)
    assert np.all(infos["demand_mw"][~flagged] > 0.0)
    obs, *_ = vector_env.step(zero)
    assert np.allclose(obs[:, TIME_FRACTION], [1, 3, 1, 3] / np.float32(OPTIONS["episode_steps"]))


def test_vector_env_plays_the_single_env_episodes(vector_env, grid_env):
    """Environment i of reset(seed=s) is GridGymEnv.reset(seed=s + i), step by step."""
    seed = 20
    batch_obs, _ = vector_env.reset(seed=seed)
    actions = np.random.default_rng(0).uniform(-1, 1, vector_env.action_space.shape)
    batch_step = vector_env.step(actions.astype(np.float32))
    single = GridGymEnv(env=grid_env)
    for i in range(NUM_ENVS):
        obs, _ = single.reset(seed=seed + i)
        np.testing.assert_allclose(batch_obs[i], obs, **FLOAT32_PROGRAMS)
        obs, reward, terminated, truncated, _ = single.step(actions[i])
        np.testing.assert_allclose(batch_step[0][i], obs, **FLOAT32_PROGRAMS)
        np.testing.assert_allclose(batch_step[1][i], reward, **FLOAT32_PROGRAMS)
        assert (batch_step[2][i], batch_step[3][i]) == (terminated, truncated)


def test_pettingzoo_api_test_passes(grid_env):
    env = parallel_env(**OPTIONS)
    assert env.grid_env is grid_env
    messages = _recorded(lambda: parallel_api_test(env, num_cycles=OPTIONS["episode_steps"] + 2))
    assert messages == []
    parallel_seed_test(lambda: parallel_env(**OPTIONS), num_cycles=OPTIONS["episode_steps"])


def test_pettingzoo_state_is_the_world_state(grid_env):
    env = parallel_env(env=grid_env)
    obs, infos = env.reset(seed=5)
    assert set(obs) == set(infos) == set(grid_env.agents) == set(env.agents)
    state = env.state()
    assert state in env.state_space
    np.testing.assert_array_equal(state, np.concatenate([obs[a] for a in env.possible_agents]))
    np.testing.assert_array_equal(state, GridGymEnv(env=grid_env).reset(seed=5)[0])
    for agent in env.agents:
        assert obs[agent] in env.observation_space(agent)
        assert env.action_space(agent).shape == grid_env.action_space(agent).shape


def test_bad_input_is_rejected_clearly(grid_env):
    single = GridGymEnv(env=grid_env)
    with pytest.raises(gymnasium.error.ResetNeeded):
        single.step(single.action_space.sample())
    single.reset(seed=0)
    with pytest.raises(ValueError, match=r"action has shape \(3,\)"):
        single.step(np.zeros(3))
    with pytest.raises(ValueError, match=r"reset takes no options, got \['reset_mask'\]"):
        single.reset(options={"reset_mask": np.ones(1, bool)})
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        GridVectorEnv(0, env=grid_env)
    with pytest.raises(TypeError, match=r"either a GridEnv or gridrl\.env\.make options"):
        GridGymEnv(env=grid_env, episode_steps=8)
    multi = parallel_env(env=grid_env)
    with pytest.raises(RuntimeError, match="call reset"):
        multi.step({})
    multi.reset(seed=0)
    actions = {a: multi.action_space(a).sample() for a in multi.agents}
    with pytest.raises(ValueError, match=r"unknown: \['intruder'\], missing: \[\]"):
        multi.step(actions | {"intruder": np.zeros(1)})
    with pytest.raises(ValueError, match="action of 'safety' has shape"):
        multi.step(actions | {"safety": np.zeros(1)})
    with pytest.raises(KeyError, match="unknown agent"):
        multi.observation_space("intruder")
