"""The learned agents on an environment: their shapes, observation normalisation, acting.

Shared by the trainer (stochastic actions, log-probs, values) and by a trained policy at
evaluation (the mean action), so both act through the same code.

Action modes (what a network's unit outputs mean):
- `ramp`: the environment's own actions: a unit moves by a share of its ramp each step. A policy
  that outputs 0 holds the schedule (do-nothing), the networks' initial behaviour.
- `setpoint`: a unit's output is its target within [pmin, available]; a thin layer turns it into
  the ramp move towards it (`gridrl.agents.actions.unit_moves`). Exploration noise then jitters
  the dispatch around a target instead of random-walking it.
Curtailment, shedding, the safety gate and the emergency shed start switched off (their initial
actions are -1), directives at 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.agents import distributions
from gridrl.agents.actions import move_scale, unit_moves
from gridrl.agents.networks import JOINT, Actor, AgentSpec, Critic, NetworkConfig, group_obs
from gridrl.agents.networks import env_actions as _env_actions
from gridrl.agents.normalize import RunningStats
from gridrl.env.core import GridEnv
from gridrl.env.layout import per_element
from gridrl.env.state import EnvParams, EnvState

Array = jnp.ndarray
ACTION_MODES = ("ramp", "setpoint")


def _initial_actions(env: GridEnv, group: str, action_mode: str) -> np.ndarray:
    layout = env.default_params.layout
    n_region = layout.n_region
    units = 0.0 if action_mode == "ramp" else _reference_position(env)
    if group == "strategic":
        slow = np.broadcast_to(units, (env.default_params.grid.n_gen,))[np.asarray(layout.slow)]
        return np.concatenate([slow, np.zeros(n_region)])
    if group == "operational":
        fast = np.broadcast_to(units, (env.default_params.grid.n_gen,))[np.asarray(layout.fast)]
        # one row shared by the regions: the mean over their (padded) units
        fast = np.mean(np.where(np.asarray(layout.fast_mask), fast, 0.0), axis=0)
        off = -np.ones(layout.renewable.shape[1] + layout.bus.shape[1])
        return np.concatenate([fast, off])
    return -np.ones(2 * n_region)  # safety: gate and emergency shed off


def _reference_position(env: GridEnv) -> np.ndarray:
    """[n_gen] each unit's place in [pmin, pmax] at the case's dispatch, as an action in [-1, 1]."""
    grid = env.default_params.grid
    pmin, pmax, pg = (np.asarray(x, float) for x in (grid.pmin, grid.pmax, grid.pg))
    span = np.maximum(pmax - pmin, 1e-6)
    return np.clip(2.0 * (pg - pmin) / span - 1.0, -1.0, 1.0)


def agent_spec(env: GridEnv, *, joint: bool = False, action_mode: str = "ramp") -> AgentSpec:
    """The agents of `env`: its groups (strategic, operational, safety), or with `joint` one agent
    over the world state and every action (flat PPO)."""
    if action_mode not in ACTION_MODES:
        raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
    groups = env.agent_groups
    initial = {g: _initial_actions(env, g, action_mode) for g in groups}
    world = int(env.observation_space("world_state").shape[0])
    if joint:
        actions = np.concatenate([initial[g] for g in groups for _ in groups[g]])
        return AgentSpec(
            agents=(JOINT,),
            groups=(JOINT,),
            members=((JOINT,),),
            obs_sizes=(world,),
            action_sizes=(actions.size,),
            initial_actions=(tuple(float(a) for a in actions),),
            world_size=world,
        )
    first = {g: members[0] for g, members in groups.items()}
    return AgentSpec(
        agents=tuple(env.agents),
        groups=tuple(groups),
        members=tuple(groups.values()),
        obs_sizes=tuple(int(env.observation_space(a).shape[0]) for a in first.values()),
        action_sizes=tuple(int(env.action_space(a).shape[0]) for a in first.values()),
        initial_actions=tuple(tuple(float(a) for a in initial[g]) for g in groups),
        world_size=world,
    )


@struct.dataclass
class ObsNormalizer:
    """Running statistics of each group's observation and of the world state."""

    groups: tuple[RunningStats, ...]
    world: RunningStats

    @classmethod
    def create(cls, spec: AgentSpec) -> ObsNormalizer:
        return cls(
            tuple(RunningStats.zeros((n,)) for n in spec.obs_sizes),
            RunningStats.zeros((spec.world_size,)),
        )

    def update(self, spec: AgentSpec, obs: dict[str, Array]) -> ObsNormalizer:
        groups = group_obs(spec, obs)
        return ObsNormalizer(
            tuple(s.update(o) for s, o in zip(self.groups, groups, strict=True)),
            self.world.update(obs["world_state"]),
        )

    def apply(self, spec: AgentSpec, obs: dict[str, Array]) -> tuple[tuple[Array, ...], Array]:
        """(normalised per-group observations, normalised world state)."""
        groups = group_obs(spec, obs)
        normalised = tuple(s.normalize(o) for s, o in zip(self.groups, groups, strict=True))
        return normalised, self.world.normalize(obs["world_state"])


class Decision(NamedTuple):
    """One grid's step of the learned agents."""

    raw: tuple[Array, ...]  # per group [n_members, action_size]: pre-squash actions
    log_prob: Array  # [n_agents]
    actions: dict[str, Array]  # the env's actions (after the action mode's layer)
    attention: Array  # [heads, n_agents, n_agents]


def log_probs(spec: AgentSpec, means, log_stds, raw) -> Array:
    """[n_agents] log-prob of each agent's (squashed) action."""
    return jnp.concatenate(
        [distributions.log_prob(m, s, r) for m, s, r in zip(means, log_stds, raw, strict=True)]
    )


def entropies(spec: AgentSpec, means, log_stds) -> Array:
    """[n_agents] entropy of each agent's base Gaussian."""
    return jnp.concatenate(
        [distributions.entropy(m, s) for m, s in zip(means, log_stds, strict=True)]
    )


def policy(spec: AgentSpec, network: NetworkConfig, actor_params, normalizer: ObsNormalizer, obs):
    """(pre-squash means per group, log-stds per group, attention weights) on one grid."""
    group_inputs, _ = normalizer.apply(spec, obs)
    return Actor(spec, network).apply({"params": actor_params}, group_inputs)


def sample_raw(key: jax.Array, means, log_stds) -> tuple[Array, ...]:
    keys = jax.random.split(key, len(means))
    return tuple(
        distributions.sample(k, m, s) for m, s, k in zip(means, log_stds, keys, strict=True)
    )


def decision(
    env: GridEnv, spec: AgentSpec, action_mode: str, outputs, raw, state: EnvState, params
) -> Decision:
    """The decision taking the pre-squash actions `raw` given the policy's `outputs`."""
    means, log_stds, attention = outputs
    squashed = tuple(jnp.tanh(r) for r in raw)
    sizes = {a: int(env.action_space(a).shape[0]) for a in env.agents}
    actions = _env_actions(spec, squashed, env.agents, sizes)
    if action_mode == "setpoint":
        actions = setpoints_to_moves(params, state, actions)
    return Decision(raw, log_probs(spec, means, log_stds, raw), actions, attention)


def act(
    env: GridEnv,
    spec: AgentSpec,
    network: NetworkConfig,
    action_mode: str,
    actor_params,
    normalizer: ObsNormalizer,
    key: jax.Array | None,
    obs: dict[str, Array],
    state: EnvState,
    params: EnvParams,
) -> Decision:
    """The agents' decision on one grid: sampled with `key`, the mean action without."""
    outputs = policy(spec, network, actor_params, normalizer, obs)
    raw = outputs[0] if key is None else sample_raw(key, outputs[0], outputs[1])
    return decision(env, spec, action_mode, outputs, raw, state, params)


def values(spec: AgentSpec, network: NetworkConfig, critic_params, world: Array) -> Array:
    """[n_agents] normalised values of a (normalised) world state."""
    return Critic(spec.n_agents, network.critic_hidden).apply({"params": critic_params}, world)


def _unit_range(params: EnvParams, available: Array) -> tuple[Array, Array]:
    """(lower, span) of each unit's setpoint range [min(pmin, available), available]."""
    lower = jnp.minimum(params.grid.pmin, available)
    return lower, jnp.maximum(available - lower, 0.0)


def setpoints_to_moves(params: EnvParams, state: EnvState, actions: dict[str, Array]) -> dict:
    """Unit outputs read as targets within [pmin, available], turned into the ramp moves towards
    them (strategic: slow units; operational: fast units); everything else unchanged."""
    layout = params.layout
    n_slow, n_fast = int(layout.slow.shape[0]), int(layout.fast.shape[1])
    regions = [f"operational_{r}" for r in range(layout.n_region)]
    slow = actions["strategic"][:n_slow]
    fast = jnp.stack([actions[name][:n_fast] for name in regions])
    position = per_element(layout.unit_move, slow, fast)  # [n_gen]; others 0 (unused)
    lower, span = _unit_range(params, state.available)
    move = unit_moves(params, state.pg, lower + (position + 1.0) / 2.0 * span)
    out = dict(actions)
    out["strategic"] = actions["strategic"].at[:n_slow].set(move[layout.slow])
    fast_moves = jnp.where(layout.fast_mask, move[layout.fast], 0.0)
    for r, name in enumerate(regions):
        out[name] = actions[name].at[:n_fast].set(fast_moves[r])
    return out


def moves_to_setpoints(params: EnvParams, state: EnvState, actions: dict[str, Array]) -> dict:
    """The inverse of `setpoints_to_moves` (behaviour cloning's labels): each unit's ramp move
    read as the target it reaches, expressed as its place in [pmin, available]."""
    layout = params.layout
    n_slow, n_fast = int(layout.slow.shape[0]), int(layout.fast.shape[1])
    regions = [f"operational_{r}" for r in range(layout.n_region)]
    move = per_element(
        layout.unit_move,
        actions["strategic"][:n_slow],
        jnp.stack([actions[name][:n_fast] for name in regions]),
    )
    lower, span = _unit_range(params, state.available)
    reached = state.pg + move * move_scale(params)
    position = jnp.clip(2.0 * (reached - lower) / jnp.maximum(span, 1e-6) - 1.0, -1.0, 1.0)
    out = dict(actions)
    out["strategic"] = actions["strategic"].at[:n_slow].set(position[layout.slow])
    fast = jnp.where(layout.fast_mask, position[layout.fast], 0.0)
    for r, name in enumerate(regions):
        out[name] = actions[name].at[:n_fast].set(fast[r])
    return out
