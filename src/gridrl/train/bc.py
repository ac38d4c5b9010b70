"""Warm start: behaviour cloning from a baseline operator's actions, before PPO fine-tunes.

    state, losses = warm_start(trainer, state, "sced")

The baseline (SCED, or a heuristic) runs `bc_episodes` episodes of each scenario trained on; its
actions are turned into the agents' own action space (in `setpoint` mode a unit's move becomes the
place in [pmin, available] it reaches: `learned.moves_to_setpoints`), and the actor's mean action,
tanh(mean), is fitted to them by least squares (Adam, `bc_lr`, `bc_epochs` passes). The observation
statistics start from the demonstrations. The demonstrations' episodes come from `seed`-derived
keys of their own (`fold_in(key(seed), 1_000_003)`), apart from PPO's rollouts.

With `bc_rounds` > 1 the cloning continues as DAgger (Ross et al., 2011): in each later round the
cloned policy (its mean action) operates `bc_episodes` new episodes of each scenario, the baseline
labels every state the clone visits with the action it would take there, and the actor is refitted
on all the labels so far. A clone alone only ever saw the baseline's states and drifts off them;
the later rounds teach it to recover from its own mistakes.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gridrl.agents import learned
from gridrl.agents.networks import JOINT, Actor, group_obs
from gridrl.agents.policy import HostPolicy, Policy
from gridrl.env import AutoReset, GridEnv
from gridrl.train.ppo import Trainer, TrainState

Array = jnp.ndarray
DEMO_STREAM = 1_000_003  # folded into the training seed's key: the demonstrations' own episodes
MINIBATCH = 256
LABEL_LIMIT = 0.999  # labels at ±1 would ask for an infinite pre-squash mean


class Demonstrations(NamedTuple):
    obs: dict  # the env's observations [n, ...]
    labels: tuple  # per group [n, n_members, action_size], in the agents' action space


def _decider(policy: Policy, env: GridEnv, episodes: int):
    """(key, obs, state) -> batched actions, for a JAX or a host policy."""
    params = env.default_params
    if isinstance(policy, HostPolicy):
        stepper = policy.stepper(env, episodes)
        live = np.ones(episodes, bool)
        return lambda key, obs, state: stepper(params, state, live)
    act = jax.jit(jax.vmap(policy.spec.act(env), in_axes=(None, 0, 0, 0, None)))
    return lambda key, obs, state: act(
        policy.weights, jax.random.split(key, episodes), obs, state, params
    )


def _switched_off(params, actions: dict) -> dict:
    """Curtailment, shedding and the safety agent's controls mean "none" at any value <= 0 (the
    environment reads max(a, 0)); where a baseline does none, the label is -1, the far end of that
    range (the agents' initial action), not its edge at 0, where a clone's small errors would
    switch them on: a little shedding everywhere."""
    n_fast = int(params.layout.fast.shape[1])
    off = lambda a: jnp.where(a <= 0.0, -1.0, a)  # noqa: E731
    out = dict(actions, safety=off(actions["safety"]))
    for r in range(params.layout.n_region):
        name = f"operational_{r}"
        out[name] = actions[name].at[n_fast:].set(off(actions[name][n_fast:]))
    return out


@functools.lru_cache(maxsize=16)
def _episode_fns(trainer: Trainer, env: GridEnv):
    """(reset, step, label, clone) of `env`'s batched episodes, jitted once per trainer and env:
    the clone's weights are an argument, so every DAgger round shares one compilation."""
    config, spec, params = trainer.config, trainer.spec, env.default_params
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(AutoReset(env).step, in_axes=(0, 0, 0, None)))

    @jax.jit
    def label(obs, state, actions):
        def one(state, actions):
            if config.action_mode == "setpoint":
                actions = learned.moves_to_setpoints(params, state, actions)
            actions = _switched_off(params, actions)
            if spec.groups == (JOINT,):
                joint = jnp.concatenate([actions[a] for a in env.agents])
                return (joint[None],)
            return group_obs(spec, actions)  # the same stacking as observations

        return jax.vmap(one)(state, actions)

    @jax.jit
    def clone(actor, normalizer, obs, state):
        """The mean actions of the agents `actor` (DAgger's operator)."""

        def one(o, s):
            mode, network = config.action_mode, trainer.network
            return learned.act(env, spec, network, mode, actor, normalizer, None, o, s, params)

        return jax.vmap(one)(obs, state).actions

    return reset, step, label, clone


def demonstrations(
    trainer: Trainer,
    env: GridEnv,
    policy: Policy,
    key: jax.Array,
    learner: TrainState | None = None,
) -> Demonstrations:
    """`bc_episodes` episodes of `env`, as observations and `policy`'s actions: operated by
    `policy` itself, or by `learner`'s agents (DAgger: `policy` labels the states they visit)."""
    episodes, params = trainer.config.bc_episodes, env.default_params
    reset, step, label, clone = _episode_fns(trainer, env)
    decide = _decider(policy, env, episodes)
    k_reset, k_run = jax.random.split(key)
    obs, state = reset(jax.random.split(k_reset, episodes), params)
    observed, labels = [], []
    for t in range(trainer.config.episode_steps):
        k_act, k_step = jax.random.split(jax.random.fold_in(k_run, t))
        actions = decide(k_act, obs, state)
        observed.append(obs)
        labels.append(label(obs, state, actions))
        if learner is not None:
            actions = clone(learner.params["actor"], learner.obs_norm, obs, state)
        obs, state, _, _, _ = step(jax.random.split(k_step, episodes), state, actions, params)
    join = lambda *xs: jnp.concatenate(xs)  # noqa: E731
    return Demonstrations(jax.tree.map(join, *observed), jax.tree.map(join, *labels))


def fit(trainer: Trainer, state: TrainState, demos: Demonstrations, key: jax.Array):
    """The actor fitted to the demonstrations; (state, per-epoch losses)."""
    config, spec, network = trainer.config, trainer.spec, trainer.network
    obs_norm = learned.ObsNormalizer.create(spec).update(spec, demos.obs)
    inputs = jax.vmap(lambda o: obs_norm.apply(spec, o)[0])(demos.obs)
    labels = jax.tree.map(lambda x: jnp.clip(x, -LABEL_LIMIT, LABEL_LIMIT), demos.labels)
    n = labels[0].shape[0]
    batches = max(1, n // MINIBATCH)
    optimizer = optax.adam(config.bc_lr)

    def loss(actor, x, y):
        means = jax.vmap(lambda o: Actor(spec, network).apply({"params": actor}, o)[0])(x)
        errors = [jnp.mean((jnp.tanh(m) - t) ** 2) for m, t in zip(means, y, strict=True)]
        return sum(errors) / len(errors)

    def epoch(carry, k):
        actor, opt_state = carry
        order = jax.random.permutation(k, n)[: batches * MINIBATCH if n >= MINIBATCH else n]
        split = lambda x: x[order].reshape(batches, -1, *x.shape[1:])  # noqa: E731

        def minibatch(carry, batch):
            actor, opt_state = carry
            value, grads = jax.value_and_grad(loss)(actor, *batch)
            updates, opt_state = optimizer.update(grads, opt_state)
            return (optax.apply_updates(actor, updates), opt_state), value

        carry, values = jax.lax.scan(
            minibatch,
            (actor, opt_state),
            (jax.tree.map(split, inputs), jax.tree.map(split, labels)),
        )
        return carry, jnp.mean(values)

    actor = state.params["actor"]

    @jax.jit
    def run(actor, key):
        keys = jax.random.split(key, config.bc_epochs)
        return jax.lax.scan(epoch, (actor, optimizer.init(actor)), keys)

    (actor, _), losses = run(actor, key)
    params = dict(state.params, actor=actor)
    return state._replace(params=params, obs_norm=obs_norm), np.asarray(losses)


def warm_start(trainer: Trainer, state: TrainState, baseline: str) -> tuple[TrainState, np.ndarray]:
    """Clone `baseline` (a baseline's name) on the scenarios trained on, in `bc_rounds` rounds
    (the later ones DAgger's); (state, the losses of every round's epochs)."""
    from gridrl.evaluate.runner import resolve_policy

    policy = resolve_policy(baseline)
    key = jax.random.fold_in(jax.random.key(trainer.config.seed), DEMO_STREAM)
    join = lambda *xs: jnp.concatenate(xs)  # noqa: E731
    demos, losses = None, []
    for round_ in range(trainer.config.bc_rounds):
        k_round = jax.random.fold_in(key, round_)
        # agents that already act (a run started from another's) are DAgger's from the start
        learner = state if round_ > 0 or trainer.config.init_from else None
        parts = [
            demonstrations(trainer, env, policy, jax.random.fold_in(k_round, i), learner)
            for i, env in enumerate(trainer.envs)
        ]
        demos = jax.tree.map(join, *parts) if demos is None else jax.tree.map(join, demos, *parts)
        state, round_losses = fit(trainer, state, demos, jax.random.fold_in(k_round, len(parts)))
        losses.append(round_losses)
    return state, np.concatenate(losses)
