"""Gymnasium front ends: the whole grid operated by one agent (docs/adapters.md).

- observation: the world state, every agent's observation concatenated in `env.agents` order
  (gridrl.env.observations), float32;
- action: every agent's action concatenated in `env.agents` order, a Box in [-1, 1];
- reward: the strategic agent's reward (the system-wide one);
- terminated: blackout; truncated: the end of the episode (`episode_steps`);
- info: the step's metrics (MW, $/h, counts, flags) as floats.

`GridGymEnv` is registered as "gridrl/IEEE118-v0" (`gymnasium.make`) and `GridVectorEnv` as its
vector entry point (`gymnasium.make_vec`); keyword arguments go to `gridrl.env.make`.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import gymnasium
import jax
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from gridrl.adapters.shared import (
    Transition,
    advance,
    advance_batch,
    blank_states,
    joint_action,
    metric_names,
    shared_env,
    start,
)
from gridrl.env import GridEnv
from gridrl.env.spaces import Box


def gymnasium_box(space: Box) -> gymnasium.spaces.Box:
    return gymnasium.spaces.Box(space.low, space.high, space.shape, np.float32)


def _single_agent_view(out: Transition) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(world state, strategic reward, metrics) of a transition, on the host."""
    return jax.device_get((out.obs["world_state"], out.rewards["strategic"], out.metrics))


def _no_options(options: dict[str, Any] | None) -> None:
    """Refuse reset options rather than ignore them (a `reset_mask` would reset everything)."""
    if options:
        raise ValueError(f"reset takes no options, got {sorted(options)}")


def joint_action_space(env: GridEnv) -> gymnasium.spaces.Box:
    """Every agent's action, concatenated in `env.agents` order."""
    size = sum(env.action_space(agent).shape[0] for agent in env.agents)
    return gymnasium.spaces.Box(-1.0, 1.0, (size,), np.float32)


class GridGymEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """The grid as a single-agent Gymnasium environment.

    `GridGymEnv(episode_steps=24, scenario="peak_demand")` builds (once per process and set of
    options) `gridrl.env.make(...)`; `GridGymEnv(env=grid_env)` wraps an existing GridEnv.
    `reset(seed=s)` starts the episode `jax.random.key(s)` determines; it takes no options.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, env: GridEnv | None = None, **make_kwargs):
        self.grid_env = shared_env(env, **make_kwargs)
        self.observation_space = gymnasium_box(self.grid_env.observation_space("world_state"))
        self.action_space = joint_action_space(self.grid_env)
        self._key: jax.Array | None = None
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        _no_options(options)
        super().reset(seed=seed)
        if seed is not None:
            self._key = jax.random.key(seed)
        elif self._key is None:
            self._key = jax.random.key(int(self.np_random.integers(2**32)))
        obs, self._state, self._key = start(self.grid_env, self._key, self.grid_env.default_params)
        return np.array(obs["world_state"], np.float32), {}

    def step(self, action: np.ndarray):
        if self._state is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        action = joint_action(self.grid_env, action)
        out = advance(self.grid_env, self._key, self._state, action, self.grid_env.default_params)
        self._state, self._key = out.state, out.key
        obs, reward, metrics = _single_agent_view(out)
        info = dict(zip(metric_names(self.grid_env), metrics.tolist(), strict=True))
        terminated, truncated = info["blackout"] > 0, info["truncated"] > 0
        return np.array(obs, np.float32), float(reward), terminated, truncated, info


class GridVectorEnv(gymnasium.vector.VectorEnv):
    """`num_envs` grids stepped together in one jitted, vmapped call.

    Autoreset is Gymnasium's default next-step mode: an environment that terminates or
    truncates is reset by the following `step` call, which ignores its action and returns its
    first observation with zero reward, terminated = truncated = False and its info entries
    masked out (`info["_name"]` is False). `reset(seed=s)` starts environment i from
    `jax.random.key(s + i)`, the episode `GridGymEnv.reset(seed=s + i)` plays; a list of
    `num_envs` seeds gives each its own.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(self, num_envs: int = 1, env: GridEnv | None = None, **make_kwargs):
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.grid_env = shared_env(env, **make_kwargs)
        self.num_envs = num_envs
        self.single_observation_space = gymnasium_box(
            self.grid_env.observation_space("world_state")
        )
        self.single_action_space = joint_action_space(self.grid_env)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._keys: jax.Array | None = None
        self._states = blank_states(self.grid_env, num_envs)
        self._resetting = np.ones(num_envs, bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        _no_options(options)
        seeds = self._seeds(seed)
        self._keys = jax.numpy.stack([jax.random.key(s) for s in seeds])
        self._resetting[:] = True
        obs, *_ = self._advance(np.zeros(self.action_space.shape, np.float32))
        return obs, {}

    def step(self, actions: np.ndarray):
        if self._keys is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        return self._advance(actions)

    def _seeds(self, seed: int | list[int] | None) -> list[int]:
        if seed is None or isinstance(seed, Integral):
            super().reset(seed=seed)
        if seed is None:
            return [int(s) for s in self.np_random.integers(2**32, size=self.num_envs)]
        if isinstance(seed, Integral):
            return [int(seed) + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"got {len(seed)} seeds for {self.num_envs} environments")
        return [int(s) for s in seed]

    def _advance(self, actions: np.ndarray):
        was_resetting = self._resetting
        out = advance_batch(
            self.grid_env,
            self._keys,
            self._states,
            joint_action(self.grid_env, actions, (self.num_envs,)),
            was_resetting,
            self.grid_env.default_params,
        )
        self._states, self._keys = out.state, out.key
        obs, rewards, metrics = _single_agent_view(out)
        info = dict(zip(metric_names(self.grid_env), metrics.T.astype(np.float64), strict=True))
        terminated, truncated = info["blackout"] > 0, info["truncated"] > 0
        self._resetting = terminated | truncated
        infos: dict[str, Any] = {}
        for name, values in info.items():
            infos[name] = values
            infos[f"_{name}"] = ~was_resetting
        return (
            np.array(obs, np.float32),
            np.asarray(rewards, np.float32),
            terminated,
            truncated,
            infos,
        )
