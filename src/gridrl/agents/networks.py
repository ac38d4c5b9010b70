"""The learned agents: per-role token encoders, attention coordination, action heads, a critic.

One grid at a time (vmap for a batch). Each agent's observation becomes a token (MLP + LayerNorm)
plus a learned embedding of the agent (the four regional operational agents share an encoder and
a head, and are told apart by their embedding). With attention, 8-head self-attention over the
six tokens, a residual and an MLP let every agent condition on the others in the same step (the
weights are returned for inspection); without, each token goes through the same residual MLP
alone. Per-group heads give the pre-squash means of a tanh-Gaussian (gridrl.agents.distributions)
with a state-independent log-std. The critic is centralised: an MLP on the world state with one
value per agent (MAPPO).

`AgentSpec` is the static description of the agents on one environment (hashable, so it can key a
jit): groups, their members, observation and action sizes, and each action's initial value.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gridrl.agents.distributions import bounded_mean

Array = jnp.ndarray

JOINT = "joint"  # the single agent of flat PPO: the world state in, every action out
INITIAL_SQUASHED_LIMIT = 0.96  # initial actions kept off the bounds, where tanh's gradient vanishes


@dataclass(frozen=True)
class NetworkConfig:
    hidden: int = 128  # encoder and head width
    token: int = 64  # token (embedding) width; divisible by heads
    heads: int = 8
    attention: bool = True
    critic_hidden: int = 256
    log_std_init: float = -0.5


@dataclass(frozen=True)
class AgentSpec:
    """The agents' shapes on one environment. Groups are contiguous runs of `agents`."""

    agents: tuple[str, ...]
    groups: tuple[str, ...]
    members: tuple[tuple[str, ...], ...]  # per group, its agents in order
    obs_sizes: tuple[int, ...]  # per group
    action_sizes: tuple[int, ...]  # per group
    initial_actions: tuple[tuple[float, ...], ...]  # per group, in [-1, 1]
    world_size: int

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    def obs_names(self, group: int) -> tuple[str, ...]:
        """The env observation each member of `group` reads (flat PPO reads the world state)."""
        return ("world_state",) if self.groups[group] == JOINT else self.members[group]


def _mlp_token(x: Array, hidden: int, token: int) -> Array:
    x = nn.relu(nn.LayerNorm()(nn.Dense(hidden)(x)))
    return nn.LayerNorm()(nn.Dense(token)(x))


def _attend(q: Array, k: Array, v: Array) -> tuple[Array, Array]:
    """Scaled dot-product attention over a handful of tokens: q, k, v [..., n, heads, head_dim]
    -> (weights [..., heads, n, n], mixed [..., n, heads, head_dim]). Written as broadcast
    products and sums: with six tokens and four-wide heads, XLA on a CPU runs the batched
    matrix products of `nn.dot_product_attention` as thousands of tiny calls (attention was
    two thirds of the actor's gradient time)."""
    logits = jnp.sum(q[..., :, None, :, :] * k[..., None, :, :, :], axis=-1)  # [..., q, k, h]
    weights = jax.nn.softmax(logits / np.sqrt(q.shape[-1]).astype(q.dtype), axis=-2)
    mixed = jnp.sum(weights[..., None] * v[..., None, :, :, :], axis=-3)  # [..., q, h, d]
    return jnp.moveaxis(weights, -1, -3), mixed


class Actor(nn.Module):
    spec: AgentSpec
    config: NetworkConfig

    @nn.compact
    def __call__(
        self, obs: tuple[Array, ...]
    ) -> tuple[tuple[Array, ...], tuple[Array, ...], Array]:
        """obs: per group [n_members, obs_size] (normalised). Returns (pre-squash means per
        group [n_members, action_size], log-stds per group [action_size], attention weights
        [heads, n_agents, n_agents] (uniform zeros without attention))."""
        spec, cfg = self.spec, self.config
        tokens = jnp.concatenate(
            [
                _mlp_token(o, cfg.hidden, cfg.token)
                for o in obs  # one encoder per group, shared by its members
            ]
        )
        role = self.param(
            "role_embedding", nn.initializers.normal(0.02), (spec.n_agents, cfg.token), jnp.float32
        )
        tokens = tokens + role
        n = spec.n_agents
        if cfg.attention:
            head_dim = cfg.token // cfg.heads
            x = nn.LayerNorm()(tokens)
            q, k, v = (nn.DenseGeneral((cfg.heads, head_dim), name=name)(x) for name in "qkv")
            weights, mixed = _attend(q, k, v)
            tokens = tokens + nn.DenseGeneral(cfg.token, axis=(-2, -1), name="out")(mixed)
        else:
            weights = jnp.zeros((cfg.heads, n, n), tokens.dtype)
        x = nn.LayerNorm()(tokens)
        tokens = tokens + nn.Dense(cfg.token)(nn.relu(nn.Dense(2 * cfg.token)(x)))
        means, log_stds, start = [], [], 0
        for g, name in enumerate(spec.groups):
            rows = tokens[start : start + len(spec.members[g])]
            start += len(spec.members[g])
            bias = np.arctanh(np.clip(spec.initial_actions[g], -1, 1) * INITIAL_SQUASHED_LIMIT)
            hidden = nn.relu(nn.Dense(cfg.hidden, name=f"{name}_hidden")(rows))
            raw = nn.Dense(
                spec.action_sizes[g],
                kernel_init=nn.initializers.orthogonal(0.01),  # a small last layer
                bias_init=lambda *_, b=bias: jnp.asarray(b, jnp.float32),
                name=f"{name}_mean",
            )(hidden)
            means.append(bounded_mean(raw))
            log_stds.append(
                self.param(
                    f"{name}_log_std",
                    nn.initializers.constant(cfg.log_std_init),
                    (spec.action_sizes[g],),
                    jnp.float32,  # explicit: under x64 an initializer's default is float64
                )
            )
        return tuple(means), tuple(log_stds), weights


class Critic(nn.Module):
    """Centralised values: one per agent from the (normalised) world state."""

    n_agents: int
    hidden: int

    @nn.compact
    def __call__(self, world: Array) -> Array:
        x = nn.relu(nn.LayerNorm()(nn.Dense(self.hidden)(world)))
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.n_agents, kernel_init=nn.initializers.orthogonal(1.0))(x)


def group_obs(spec: AgentSpec, obs: dict[str, Array]) -> tuple[Array, ...]:
    """The env's observation dict as per-group stacks [..., n_members, obs_size]."""
    return tuple(
        jnp.stack([obs[name] for name in spec.obs_names(g)], axis=-2)
        for g in range(len(spec.groups))
    )


def env_actions(spec: AgentSpec, squashed: tuple[Array, ...], env_agents, sizes) -> dict:
    """Per-group actions [n_members, action_size] as the env's dict (flat PPO's joint action
    split by the env's action sizes `sizes`, in `env_agents` order)."""
    if spec.groups == (JOINT,):
        joint = squashed[0][0]
        split = np.cumsum([sizes[a] for a in env_agents])[:-1]
        return dict(zip(env_agents, jnp.split(joint, split), strict=True))
    return {
        name: squashed[g][j]
        for g in range(len(spec.groups))
        for j, name in enumerate(spec.members[g])
    }


def init_params(spec: AgentSpec, config: NetworkConfig, key: jax.Array) -> dict:
    """{"actor": ..., "critic": ...} for one set of agents."""
    k_actor, k_critic = jax.random.split(key)
    obs = tuple(
        jnp.zeros((len(m), n), jnp.float32)
        for m, n in zip(spec.members, spec.obs_sizes, strict=True)
    )
    return {
        "actor": Actor(spec, config).init(k_actor, obs)["params"],
        "critic": Critic(spec.n_agents, config.critic_hidden).init(
            k_critic, jnp.zeros(spec.world_size, jnp.float32)
        )["params"],
    }
