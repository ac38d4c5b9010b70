"""Generalised advantage estimation with per-agent discounts, truncation and options.

For each agent i (its own γ_i and λ_i: the strategic agent plans far, the operational ones near):

    δ_t = r_t + γ_i · (1 − terminated_t) · V(s'_t) − V(s_t)
    A_t = δ_t + γ_i · λ_t · (1 − done_t) · A_{t+1}

where s'_t is the state the step reached before any reset: a truncated episode (the horizon, the
outage limit) bootstraps from its value, a terminated one (blackout) does not, and nothing
flows across an episode's end. An agent deciding only every few steps (the strategic agent with
`strategic_interval`) holds its action in between: its λ is 1 inside the hold, so the advantage
at a decision point is the semi-MDP one (the discounted rewards until the next decision, then
that decision's value and GAE).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jnp.ndarray


def advantages(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    done: Array,
    gamma: Array,
    lam: Array,
) -> tuple[Array, Array]:
    """(advantages, returns), each like `rewards` [T, ..., n_agents].

    values: V(s_t); next_values: V(s'_t) of the state each step reached (before a reset);
    terminated, done: [T, ...] (done = terminated or truncated); gamma: [n_agents];
    lam: [n_agents] or [T, ..., n_agents] (λ per step: 1 inside an option's hold)."""
    lam = jnp.broadcast_to(lam, rewards.shape)
    not_terminated = 1.0 - terminated[..., None].astype(rewards.dtype)
    continues = 1.0 - done[..., None].astype(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def backwards(carry, inputs):
        delta, cont, lam_t = inputs
        advantage = delta + gamma * lam_t * cont * carry
        return advantage, advantage

    _, adv = jax.lax.scan(
        backwards, jnp.zeros_like(rewards[0]), (deltas, continues, lam), reverse=True
    )
    return adv, adv + values
