"""Wrappers over `GridEnv` with the same functional interface."""

from __future__ import annotations

import jax

from gridrl.env.core import GridEnv
from gridrl.env.sparse import where_needed
from gridrl.env.state import EnvParams, EnvState


class AutoReset:
    """`env` whose episodes restart by themselves, as gymnax's and JaxMARL's auto-reset wrappers
    do: where a step ends the episode (`dones["__all__"]`), the observation and state returned
    are those of a new episode, reset with a key split from the step's key; the rewards, dones
    and info are the finished step's. Under vmap only the finished samples pay for the reset
    (`where_needed`). Everything else (agents, spaces, default_params) is the env's own.

    With `final_obs=True`, `info["final_obs"]` holds the observation the step reached before
    any reset (Gymnasium's `final_obs`): a learner bootstraps a truncated episode from it."""

    def __init__(self, env: GridEnv, final_obs: bool = False):
        self.env = env
        self.final_obs = final_obs

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self, key: jax.Array, params: EnvParams | None = None):
        return self.env.reset(key, params)

    def step(self, key: jax.Array, state: EnvState, actions: dict, params: EnvParams | None = None):
        params = self.env.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs, state, rewards, dones, info = self.env.step(key_step, state, actions, params)
        if self.final_obs:
            info = info | {"final_obs": obs}
        obs, state = where_needed(
            dones["__all__"],
            (obs, state),
            lambda operands: self.env.reset(*operands),
            (key_reset, params),
            share=1 / 64,
        )
        return obs, state, rewards, dones, info
