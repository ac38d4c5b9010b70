"""What every adapter shares: one GridEnv per configuration and jitted functions over it.

Building an environment (`gridrl.env.make`) and compiling its step take tens of seconds, so an
environment is built once per distinct set of options and reused by every adapter that asks
for it (`gymnasium.make` twice, `gymnasium.make_vec`, two PettingZoo envs for a seed test...).
The jitted functions take the GridEnv as a static argument: every adapter over the same GridEnv
shares their compiled code.

Each adapter carries a JAX key chain: an episode starts with `start(env, key, params)` and every
step splits the chain once more (`advance`), so a seed fixes the whole trajectory.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gridrl.env import EnvParams, EnvState, GridEnv, make

_ENVS: dict[Any, GridEnv] = {}


def _frozen(value: Any) -> Any:
    """A hashable form of make() options (nested option dicts become sorted tuples)."""
    if isinstance(value, dict):
        return tuple(sorted((name, _frozen(v)) for name, v in value.items()))
    return value


def shared_env(env: GridEnv | None = None, **make_kwargs) -> GridEnv:
    """`env` itself, or the environment `gridrl.env.make(**make_kwargs)` built once per process
    for these options (options that cannot be hashed, such as a Grid, build a fresh one)."""
    if env is not None:
        if make_kwargs:
            raise TypeError(
                f"pass either a GridEnv or gridrl.env.make options, not both: {sorted(make_kwargs)}"
            )
        if not isinstance(env, GridEnv):
            raise TypeError(f"env must be a gridrl.env.GridEnv, got {type(env).__name__}")
        return env
    key = _frozen(make_kwargs)
    try:
        cached = _ENVS.get(key)
    except TypeError:  # unhashable options: nothing to share
        return make(**make_kwargs)
    if cached is None:
        cached = _ENVS[key] = make(**make_kwargs)
    return cached


class Transition(NamedTuple):
    obs: dict[str, jax.Array]
    state: EnvState
    key: jax.Array
    rewards: dict[str, jax.Array]
    metrics: jax.Array  # [..., n_metrics] float32, in `metric_names(env)` order


def action_sizes(env: GridEnv) -> list[int]:
    return [env.action_space(agent).shape[0] for agent in env.agents]


def _split(env: GridEnv, flat: jax.Array) -> dict[str, jax.Array]:
    """The joint action (every agent's, concatenated in `env.agents` order) as a dict."""
    parts = jnp.split(flat, np.cumsum(action_sizes(env))[:-1], axis=-1)
    return dict(zip(env.agents, parts, strict=True))


def _start(env: GridEnv, key: jax.Array, params: EnvParams):
    key, reset_key = jax.random.split(key)
    obs, state = env.reset(reset_key, params)
    return obs, state, key


def _advance(env: GridEnv, key, state: EnvState, flat: jax.Array, params) -> Transition:
    # the metrics travel as one array: one transfer to the host instead of one per metric
    key, step_key = jax.random.split(key)
    obs, state, rewards, _, info = env.step(step_key, state, _split(env, flat), params)
    metrics = jnp.stack([jnp.asarray(info[name], jnp.float32) for name in sorted(info)])
    return Transition(obs, state, key, rewards, metrics)


start = jax.jit(_start, static_argnums=0)
advance = jax.jit(_advance, static_argnums=0)


@cache
def metric_names(env: GridEnv) -> tuple[str, ...]:
    """The names of a transition's metrics (the keys of the env's `info`), in order."""
    key, params = jax.random.key(0), env.default_params
    _, state = jax.eval_shape(env.reset, key, params)
    flat = jax.ShapeDtypeStruct((sum(action_sizes(env)),), jnp.float32)
    info = jax.eval_shape(lambda s, f: env.step(key, s, _split(env, f), params)[-1], state, flat)
    return tuple(sorted(info))


def _zeros(shapes: Any) -> Any:
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


@partial(jax.jit, static_argnums=0)
def advance_batch(
    env: GridEnv, keys, states: EnvState, flat: jax.Array, resetting: jax.Array, params
) -> Transition:
    """One step of a batch in Gymnasium's next-step autoreset mode: the environments flagged in
    `resetting` (those that finished on the previous call) start a new episode instead of
    stepping, with zero reward and zero metrics.

    Stepping is skipped when every environment resets and resetting when none does; so a
    batch reset is this function with every flag set (`states` and `flat` are then unused),
    and the batch needs a single compilation."""

    def step_all():
        return jax.vmap(partial(_advance, env), in_axes=(0, 0, 0, None))(keys, states, flat, params)

    def start_all():
        return jax.vmap(partial(_start, env), in_axes=(0, None))(keys, params)

    step_shapes, start_shapes = jax.eval_shape(step_all), jax.eval_shape(start_all)
    no_step = Transition(
        obs=_zeros(step_shapes.obs),
        state=_zeros(step_shapes.state),
        key=keys,
        rewards=_zeros(step_shapes.rewards),
        metrics=_zeros(step_shapes.metrics),
    )
    stepped = jax.lax.cond(jnp.all(resetting), lambda: no_step, step_all)
    no_start = (_zeros(start_shapes[0]), _zeros(start_shapes[1]), keys)
    obs, state, key = jax.lax.cond(jnp.any(resetting), start_all, lambda: no_start)

    def pick(fresh, old):
        mask = resetting.reshape(resetting.shape + (1,) * (old.ndim - 1))
        return jnp.where(mask, fresh, old)

    return Transition(
        obs=jax.tree.map(pick, obs, stepped.obs),
        state=jax.tree.map(pick, state, stepped.state),
        key=pick(key, stepped.key),
        rewards={a: jnp.where(resetting, 0, r) for a, r in stepped.rewards.items()},
        metrics=jnp.where(resetting[:, None], 0.0, stepped.metrics),
    )


def blank_states(env: GridEnv, num_envs: int) -> EnvState:
    """Zero states of the right shapes, standing in before a batch's first reset."""
    keys = jax.eval_shape(lambda: jax.random.split(jax.random.key(0), num_envs))
    shapes = jax.eval_shape(
        jax.vmap(partial(_start, env), in_axes=(0, None)), keys, env.default_params
    )
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes[1])


def joint_action(env: GridEnv, flat: Any, batch_shape: tuple[int, ...] = ()) -> np.ndarray:
    """`flat` as float32 of shape batch_shape + (n,): every agent's action concatenated in
    `env.agents` order; a clear error for any other shape."""
    sizes = action_sizes(env)
    flat = np.asarray(flat, dtype=np.float32)
    expected = (*batch_shape, sum(sizes))
    if flat.shape != expected:
        raise ValueError(
            f"action has shape {flat.shape}, expected {expected}: the actions of "
            f"{list(env.agents)} (sizes {sizes}) concatenated"
        )
    return flat
