"""PettingZoo front end: one PettingZoo agent per gridrl agent, acting at once (docs/adapters.md).

Observations, actions and rewards are each agent's own (gridrl.env.observations,
gridrl.env.dispatch, gridrl.env.rewards); `state()` is the world state for centralised critics.
Every agent terminates on a blackout and truncates at the end of the episode, together, and
leaves `agents` then. Each agent's info holds the step's metrics as floats.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import jax
import numpy as np
from pettingzoo import ParallelEnv

from gridrl.adapters.gymnasium import gymnasium_box
from gridrl.adapters.shared import advance, metric_names, shared_env, start
from gridrl.env import GridEnv


class GridParallelEnv(ParallelEnv[str, np.ndarray, np.ndarray]):
    """The grid-operation environment as a PettingZoo ParallelEnv.

    `reset(seed=s)` starts the episode `jax.random.key(s)` determines (the same one as the
    Gymnasium adapter's `reset(seed=s)`); `options` are ignored.
    """

    metadata: ClassVar[dict[str, Any]] = {"name": "gridrl_ieee118_v0", "render_modes": []}

    def __init__(self, env: GridEnv | None = None, **make_kwargs):
        self.grid_env = shared_env(env, **make_kwargs)
        self.possible_agents = list(self.grid_env.agents)
        self.agents: list[str] = []
        self.observation_spaces = {
            a: gymnasium_box(self.grid_env.observation_space(a)) for a in self.possible_agents
        }
        self.action_spaces = {
            a: gymnasium_box(self.grid_env.action_space(a)) for a in self.possible_agents
        }
        self.state_space = gymnasium_box(self.grid_env.observation_space("world_state"))
        self._rng = np.random.default_rng()
        self._key: jax.Array | None = None
        self._state = None
        self._world_state: np.ndarray | None = None

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        return self.observation_spaces[self._known(agent)]

    def action_space(self, agent: str) -> gymnasium.spaces.Box:
        return self.action_spaces[self._known(agent)]

    def _known(self, agent: str) -> str:
        if agent not in self.observation_spaces:
            raise KeyError(f"unknown agent {agent!r}; agents are {self.possible_agents}")
        return agent

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._key = jax.random.key(seed)
        elif self._key is None:
            self._key = jax.random.key(int(self._rng.integers(2**32)))
        obs, self._state, self._key = start(self.grid_env, self._key, self.grid_env.default_params)
        self.agents = list(self.possible_agents)
        return self._observations(jax.device_get(obs)), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("no live agents: call reset() to start an episode")
        out = advance(
            self.grid_env,
            self._key,
            self._state,
            self._checked(actions),
            self.grid_env.default_params,
        )
        self._state, self._key = out.state, out.key
        obs, rewards, metrics = jax.device_get((out.obs, out.rewards, out.metrics))
        agents = self.agents
        info = dict(zip(metric_names(self.grid_env), metrics.tolist(), strict=True))
        terminated, truncated = info["blackout"] > 0, info["truncated"] > 0
        if terminated or truncated:
            self.agents = []
        return (
            self._observations(obs, agents),
            {a: float(rewards[a]) for a in agents},
            dict.fromkeys(agents, terminated),
            dict.fromkeys(agents, truncated),
            {a: dict(info) for a in agents},
        )

    def state(self) -> np.ndarray:
        if self._world_state is None:
            raise RuntimeError("call reset() before state()")
        return self._world_state.copy()

    def _observations(self, obs: dict, agents: list[str] | None = None) -> dict[str, np.ndarray]:
        """Copies of the agents' observations; keeps the world state for `state()`."""
        self._world_state = np.array(obs["world_state"], np.float32)
        return {a: np.array(obs[a], np.float32) for a in agents or self.agents}

    def _checked(self, actions: dict[str, Any]) -> np.ndarray:
        """The live agents' actions as the joint action (concatenated in agent order), or a
        clear error."""
        unknown = sorted(set(actions) - set(self.agents))
        missing = sorted(set(self.agents) - set(actions))
        if unknown or missing:
            raise ValueError(
                f"actions must be given for exactly the live agents {self.agents}; "
                f"unknown: {unknown}, missing: {missing}"
            )
        parts = []
        for agent in self.agents:
            action = np.asarray(actions[agent], np.float32)
            shape = self.action_spaces[agent].shape
            if action.shape != shape:
                raise ValueError(f"action of {agent!r} has shape {action.shape}, expected {shape}")
            parts.append(action)
        return np.concatenate(parts)


def parallel_env(env: GridEnv | None = None, **make_kwargs) -> GridParallelEnv:
    """The PettingZoo ParallelEnv over `gridrl.env.make(**make_kwargs)` (or over `env`)."""
    return GridParallelEnv(env, **make_kwargs)
