"""Hierarchical multi-agent PPO, PureJaxRL / JaxMARL style.

    trainer = Trainer(config)                       # mesh=data_mesh(4): 4 devices, same program
    state = trainer.init(key)
    state, metrics = trainer.updates(state, n)     # n updates, one jitted call
    final, metrics = make_train(config)(key)        # the whole run, pure (vmap it over seeds)

One update: a rollout of `rollout_steps` steps on `num_envs` auto-resetting grids (a `lax.scan`;
with a scenario mix, each scenario's grids step their own environment and the transitions are
joined), per-agent GAE (gridrl.train.gae), then `epochs` passes of `minibatches` PPO steps
(clipped surrogate per agent with a per-role ε, clipped value loss on normalised returns, entropy
bonus, global gradient-norm clipping, Adam with a schedule). Observations are normalised with
running statistics frozen during a rollout and its update; per-agent returns are normalised
for the critic (MAPPO's value normalisation). Per-update metrics are scalars reduced inside the
graph, so memory does not grow with the run.

Devices (gridrl.train.sharding): the updates run under `jax.shard_map` over a 1-axis mesh
`data`; the grids (`num_envs`, the global batch) are split in equal blocks over its devices, each
device steps its block and keeps its part of the rollout; parameters, optimiser state and
normalisers are replicated. Gradients are summed over the devices (each device's loss is its
share of the global loss: per-agent means divide by the global decision counts), and every
statistic of the batch (observation and value normalisers, advantage normalisation, logged
metrics) is reduced across the axis. A grid's random keys are split for the whole batch and
sliced, and the minibatches are defined per grid: each epoch shuffles every grid's
`rollout_steps` steps (a key per grid) and minibatch m takes the m-th `rollout_steps /
minibatches` of each grid's shuffled steps. A minibatch is thus the same set of samples on 1
device and on N (the union of the devices' shares), and 1 device and N devices compute the same
update up to the order of floating-point sums. One device is the same program on a mesh of one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gridrl.agents import learned
from gridrl.agents.networks import Actor, AgentSpec, group_obs, init_params
from gridrl.agents.normalize import RunningStats
from gridrl.env import AutoReset, GridEnv
from gridrl.train import gae, sharding
from gridrl.train.config import GridRLConfig
from gridrl.train.sharding import REPLICATED, SHARDED, local_rows, pmean, psum

Array = jnp.ndarray
# a truncated episode bootstraps from its final state: up to one grid in this many per step
# is valued in a small extra critic pass (more at once, a horizon shared by all: a full pass)
GRIDS_PER_END_SLOT = 16

# environment totals logged per update (means over the rollout's env-steps)
INFO_KEYS = (
    "operating_cost",
    "energy_not_served_mw",
    "overloaded_branches",
    "line_trips",
    "blackout",
    "truncated",
)


class TrainState(NamedTuple):
    params: dict  # {"actor", "critic"}
    opt_state: optax.OptState
    obs_norm: learned.ObsNormalizer
    value_norm: RunningStats  # [n_agents] returns
    env_states: tuple  # per scenario, [envs, ...]
    obs: tuple  # per scenario, the env's observation dicts
    held: tuple  # per scenario [envs, ...]: the strategic agent's held pre-squash action
    episode_return: tuple  # per scenario [envs, n_agents]: rewards so far this episode
    key: jax.Array
    update: Array  # int32: updates done


# how each part of the state lies on the mesh: the grids' parts split on their leading axis
STATE_SPECS = TrainState(
    params=REPLICATED,
    opt_state=REPLICATED,
    obs_norm=REPLICATED,
    value_norm=REPLICATED,
    env_states=SHARDED,
    obs=SHARDED,
    held=SHARDED,
    episode_return=SHARDED,
    key=REPLICATED,
    update=REPLICATED,
)


class Transition(NamedTuple):
    obs: tuple  # per group [n_members, obs_size], as observed (normalised in the update)
    world: Array  # the world state, as observed
    raw: tuple  # per group [n_members, action_size]
    log_prob: Array  # [n_agents]
    value: Array  # [n_agents] normalised prediction
    end_value: Array  # [n_agents] where a step truncated its episode: the value of the state it
    # reached, before the reset (returns' scale); 0 elsewhere (the next step's value serves)
    reward: Array  # [n_agents]
    terminated: Array
    done: Array
    decides: Array  # bool [n_agents]: the agent chose this step's action (not a held one)
    hold_next: Array  # bool [n_agents]: the next step continues this step's hold


def build_envs(config: GridRLConfig) -> tuple[GridEnv, ...]:
    """One environment per scenario trained on (a mix steps several)."""
    from gridrl.evaluate.runner import environment  # shared, cached per process

    return tuple(
        environment(config.case, name, config.physics, config.episode_steps)
        for name in config.scenarios
    )


class Trainer:
    """The pure functions of a training run for `config` on the devices of `mesh` (default: all
    of them, `sharding.data_mesh()`); their jitted forms are cached."""

    def __init__(
        self,
        config: GridRLConfig,
        envs: tuple[GridEnv, ...] | None = None,
        mesh: jax.sharding.Mesh | None = None,
    ):
        self.config = config.validate()
        self.mesh = mesh if mesh is not None else sharding.data_mesh()
        self.n_devices = self.mesh.devices.size
        sharding.check_divisible(config.envs_per_scenario(), self.n_devices)
        self.envs = envs if envs is not None else build_envs(config)
        self.env = self.envs[0]
        self.spec = learned.agent_spec(self.env, joint=config.joint, action_mode=config.action_mode)
        self.network = config.network
        self.counts = config.envs_per_scenario()
        self.params = tuple(env.default_params for env in self.envs)
        self.gamma, self.lam, self.clip, self.weight = _per_agent(config, self.spec)
        self.holds = config.hierarchical and config.strategic_interval > 1 and not config.joint
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm),
            optax.adam(_schedule(config), eps=1e-5),
        )
        self.shardings = sharding.shardings(self.mesh, STATE_SPECS)
        replicated = jax.sharding.NamedSharding(self.mesh, REPLICATED)
        # init and updates give the state the same shardings: a chunk's output state is the next
        # chunk's input without a new compilation
        self.updates = jax.jit(
            self._updates, static_argnums=(1,), out_shardings=(self.shardings, replicated)
        )
        self.init = jax.jit(self._init, in_shardings=replicated, out_shardings=self.shardings)

    def on_mesh(self, fn: Callable, out_specs) -> Callable:
        """`fn(state)` of a device's share of the state, as a function of the global state."""
        return jax.shard_map(
            fn, mesh=self.mesh, in_specs=(STATE_SPECS,), out_specs=out_specs, check_vma=False
        )

    # --- the state -----------------------------------------------------------------------

    def _init(self, key: jax.Array) -> TrainState:
        k_params, k_reset, k_run = jax.random.split(key, 3)
        params = init_params(self.spec, self.network, k_params)
        states, obs, held, returns = [], [], [], []
        for env, count, p, k in zip(
            self.envs,
            self.counts,
            self.params,
            jax.random.split(k_reset, len(self.envs)),
            strict=True,
        ):
            o, s = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k, count), p)
            states.append(s)
            obs.append(o)
            held.append(
                jnp.zeros(
                    (count, len(self.spec.members[0]), self.spec.action_sizes[0]), jnp.float32
                )
            )
            returns.append(jnp.zeros((count, self.spec.n_agents), jnp.float32))
        obs_norm = learned.ObsNormalizer.create(self.spec)
        for o in obs:  # start the statistics from the first observations
            obs_norm = obs_norm.update(self.spec, o)
        state = TrainState(
            params=params,
            opt_state=self.optimizer.init(params),
            obs_norm=obs_norm,
            value_norm=RunningStats.zeros((self.spec.n_agents,)),
            env_states=tuple(states),
            obs=tuple(obs),
            held=tuple(held),
            episode_return=tuple(returns),
            key=k_run,
            update=jnp.int32(0),
        )
        return state

    # --- rollout -------------------------------------------------------------------------

    def _rewards(self, env: GridEnv, rewards: dict) -> Array:
        """[n_agents] the learner's rewards: operational ones mixed with the global reward."""
        global_reward = rewards["strategic"]
        if self.config.joint:
            return (global_reward[None] * self.config.reward_scale).astype(jnp.float32)
        share = self.config.shared_reward
        mixed = [
            (1 - share) * rewards[a] + share * global_reward
            if a in env.agent_groups["operational"]
            else rewards[a]
            for a in env.agents
        ]
        return (jnp.stack(mixed) * self.config.reward_scale).astype(jnp.float32)

    def _scenario_step(self, train: TrainState, s: int, key: jax.Array):
        """One step of scenario `s`'s grids: decide, step, bootstrap values."""
        env, params, spec = self.envs[s], self.params[s], self.spec
        wrapped = AutoReset(env, final_obs=True)
        obs, env_state = train.obs[s], train.env_states[s]
        count = self.counts[s] // self.n_devices  # this device's grids of the scenario
        k_act, k_env = jax.random.split(key)
        # a key per grid of the whole batch, this device's block of them
        grid_keys = lambda k: local_rows(jax.random.split(k, self.counts[s]), self.n_devices)  # noqa: E731

        def decide(k, o, st, held):
            outputs = learned.policy(spec, self.network, train.params["actor"], train.obs_norm, o)
            raw = learned.sample_raw(k, outputs[0], outputs[1])
            decides = jnp.ones(spec.n_agents, bool)
            hold_next = jnp.zeros(spec.n_agents, bool)
            if self.holds:  # the strategic agent decides every `strategic_interval` steps
                interval = self.config.strategic_interval
                now = st.step % interval == 0
                raw = (jnp.where(now, raw[0], held), *raw[1:])
                decides = decides.at[0].set(now)
                hold_next = hold_next.at[0].set((st.step + 1) % interval != 0)
            d = learned.decision(env, spec, self.config.action_mode, outputs, raw, st, params)
            return d, decides, hold_next

        decision, decides, hold_next = jax.vmap(decide)(
            grid_keys(k_act), obs, env_state, train.held[s]
        )
        groups = jax.vmap(lambda o: group_obs(spec, o))(obs)
        world = obs["world_state"]
        value = self._values(train, train.params["critic"], world)
        next_obs, next_state, rewards, dones, info = jax.vmap(
            wrapped.step, in_axes=(0, 0, 0, None)
        )(grid_keys(k_env), env_state, decision.actions, params)
        reward = jax.vmap(lambda r: self._rewards(env, r))(rewards)
        done = dones["__all__"]
        terminated = info["blackout"]
        end_value = values_where(
            lambda w: train.value_norm.denormalize(self._values(train, train.params["critic"], w)),
            info["final_obs"]["world_state"],
            done & ~terminated,  # a terminated episode does not bootstrap
            slots=max(1, count // GRIDS_PER_END_SLOT),
        )
        transition = Transition(
            obs=groups,
            world=world,
            raw=decision.raw,
            log_prob=decision.log_prob,
            value=value,
            end_value=end_value,
            reward=reward,
            terminated=terminated,
            done=done,
            decides=decides,
            hold_next=hold_next & ~done[:, None],
        )
        episode_return = train.episode_return[s] + reward
        finished = jnp.where(done[:, None], episode_return, 0.0)
        stats = {k: jnp.mean(info[k].astype(jnp.float32)) for k in INFO_KEYS}
        stats |= {"episodes": jnp.sum(done), "return_sum": jnp.sum(finished, axis=0)}
        carry = (
            next_state,
            next_obs,
            decision.raw[0],
            jnp.where(done[:, None], 0.0, episode_return),
        )
        return carry, transition, stats

    def _values(self, train: TrainState, critic_params, world: Array) -> Array:
        """[batch, n_agents] normalised values of raw world states."""
        normalised = train.obs_norm.world.normalize(world)
        return jax.vmap(lambda w: learned.values(self.spec, self.network, critic_params, w))(
            normalised
        )

    def _rollout(self, train: TrainState):
        def body(carry, key):
            train = carry
            keys = jax.random.split(key, len(self.envs))
            results = [self._scenario_step(train, s, keys[s]) for s in range(len(self.envs))]
            carries, transitions, stats = zip(*results, strict=True)
            train = train._replace(
                env_states=tuple(c[0] for c in carries),
                obs=tuple(c[1] for c in carries),
                held=tuple(c[2] for c in carries),
                episode_return=tuple(c[3] for c in carries),
            )
            joined = jax.tree.map(lambda *xs: jnp.concatenate(xs), *transitions)
            weights = np.asarray(self.counts, np.float32) / sum(self.counts)
            step_stats = {
                k: sum(w * st[k] for w, st in zip(weights, stats, strict=True)) for k in INFO_KEYS
            }
            step_stats["episodes"] = sum(st["episodes"] for st in stats)
            step_stats["return_sum"] = sum(st["return_sum"] for st in stats)
            return train, (joined, step_stats)

        key, k_roll = jax.random.split(train.key)
        keys = jax.random.split(k_roll, self.config.rollout_steps)
        train, (traj, stats) = jax.lax.scan(body, train, keys)
        last_value = jnp.concatenate(
            [self._values(train, train.params["critic"], o["world_state"]) for o in train.obs]
        )
        return train._replace(key=key), traj, stats, last_value

    # --- update --------------------------------------------------------------------------

    def _advantages(self, train: TrainState, traj: Transition, last_value: Array):
        """GAE; the state a step reached is the next step's (one critic pass per step), or the
        episode's end where it was truncated (`end_value`), or nothing where terminated."""
        values = train.value_norm.denormalize(traj.value)
        following = jnp.concatenate([values[1:], train.value_norm.denormalize(last_value)[None]])
        next_values = jnp.where(traj.done[..., None], traj.end_value, following)
        lam = jnp.where(traj.hold_next, 1.0, self.lam)
        return gae.advantages(
            traj.reward, values, next_values, traj.terminated, traj.done, self.gamma, lam
        )

    def _loss(self, params, batch, train: TrainState, value_norm: RunningStats):
        """This device's share of the minibatch's loss (the shares sum to the global loss:
        per-agent means divide by the global decision counts, the value loss by the global
        minibatch's size), and its shares of the diagnostics."""
        traj, adv, targets = batch
        spec, cfg = self.spec, self.config
        norm = train.obs_norm

        def agent_terms(obs, raw):
            obs = tuple(s.normalize(o) for s, o in zip(norm.groups, obs, strict=True))
            means, log_stds, _ = Actor(spec, self.network).apply({"params": params["actor"]}, obs)
            return (
                learned.log_probs(spec, means, log_stds, raw),
                learned.entropies(spec, means, log_stds),
            )

        log_prob, entropy = jax.vmap(agent_terms)(traj.obs, traj.raw)
        mask = traj.decides.astype(jnp.float32)
        decisions = jnp.maximum(psum(jnp.sum(mask, 0)), 1.0)  # the global minibatch's
        ratio = jnp.exp(log_prob - traj.log_prob)
        clipped = jnp.clip(ratio, 1.0 - self.clip, 1.0 + self.clip)
        surrogate = -jnp.minimum(ratio * adv, clipped * adv)
        per_agent = lambda x: jnp.sum(x * mask, 0) / decisions  # noqa: E731
        # a warm-started actor waits while the critic learns its values (no noisy advantages)
        acting = (train.update >= cfg.critic_warmup_updates).astype(jnp.float32)
        policy_loss = acting * jnp.sum(self.weight * per_agent(surrogate))
        entropy_term = acting * jnp.sum(self.weight * per_agent(entropy))
        value = self._values(train, params["critic"], traj.world)
        normalised_targets = value_norm.normalize(targets)
        value_clipped = traj.value + jnp.clip(
            value - traj.value, -cfg.value_clip_eps, cfg.value_clip_eps
        )
        value_loss = (
            0.5
            * jnp.sum(
                jnp.maximum(
                    (value - normalised_targets) ** 2, (value_clipped - normalised_targets) ** 2
                )
            )
            / (value.size * self.n_devices)
        )
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.entropy_coef * entropy_term
        log_ratio = log_prob - traj.log_prob
        diagnostics = {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": jnp.mean(per_agent(entropy)),
            "approx_kl": jnp.mean(per_agent((ratio - 1.0) - log_ratio)),
            "clip_fraction": jnp.mean(
                per_agent((jnp.abs(ratio - 1.0) > self.clip).astype(jnp.float32))
            ),
        }
        return loss, diagnostics

    def _minibatches(self, key: jax.Array, samples):
        """[minibatches, samples of each, ...] of a device's share `samples` ([T, grids, ...]):
        each grid's steps shuffled by its own key (split for the global batch: the same
        shuffles on any number of devices), minibatch m the m-th slice of every grid's."""
        cfg = self.config
        grids = jax.tree.leaves(samples)[0].shape[1]
        keys = local_rows(jax.random.split(key, cfg.num_envs), self.n_devices)
        order = jax.vmap(lambda k: jax.random.permutation(k, cfg.rollout_steps))(keys)
        per = cfg.rollout_steps // cfg.minibatches

        def split(x):  # [T, grids, ...] -> [minibatches, grids * per, ...]
            shuffled = jax.vmap(lambda xs, o: xs[o], in_axes=(1, 0))(x, order)  # [grids, T, ...]
            parts = shuffled.reshape(grids, cfg.minibatches, per, *x.shape[2:])
            return jnp.swapaxes(parts, 0, 1).reshape(cfg.minibatches, grids * per, *x.shape[2:])

        return jax.tree.map(split, samples)

    def _update(self, train: TrainState, _):
        cfg = self.config
        train, traj, stats, last_value = self._rollout(train)
        adv, returns = self._advantages(train, traj, last_value)
        value_norm = sharding.merged(train.value_norm, returns)
        # advantage normalisation per agent, over the decisions of the (global) batch
        mask = traj.decides.astype(jnp.float32)
        count = jnp.maximum(psum(jnp.sum(mask, (0, 1))), 1.0)
        mean = psum(jnp.sum(adv * mask, (0, 1))) / count
        std = jnp.sqrt(psum(jnp.sum(((adv - mean) * mask) ** 2, (0, 1))) / count) + 1e-8
        adv_normalised = (adv - mean) / std
        grad_fn = jax.value_and_grad(self._loss, has_aux=True)

        def epoch(carry, key):
            params, opt_state = carry

            def minibatch(carry, batch):
                params, opt_state = carry
                (_, diagnostics), grads = grad_fn(params, batch, train, value_norm)
                grads, diagnostics = psum((grads, diagnostics))  # the shares' sums: global
                updates, opt_state = self.optimizer.update(grads, opt_state, params)
                diagnostics["grad_norm"] = optax.global_norm(grads)
                return (optax.apply_updates(params, updates), opt_state), diagnostics

            batches = self._minibatches(key, (traj, adv_normalised, returns))
            return jax.lax.scan(minibatch, (params, opt_state), batches)

        key, k_epochs = jax.random.split(train.key)
        (params, opt_state), diagnostics = jax.lax.scan(
            epoch, (train.params, train.opt_state), jax.random.split(k_epochs, cfg.epochs)
        )
        # the statistics take in the rollout's observations, for the next rollout
        obs_norm = learned.ObsNormalizer(
            tuple(
                sharding.merged(s, o) for s, o in zip(train.obs_norm.groups, traj.obs, strict=True)
            ),
            sharding.merged(train.obs_norm.world, traj.world),
        )
        values = value_norm.denormalize(traj.value)
        n_agents = (self.spec.n_agents,)
        explained = 1.0 - sharding.moments(returns - values, n_agents)[1] / jnp.maximum(
            sharding.moments(returns, n_agents)[1], 1e-8
        )
        episodes = psum(jnp.sum(stats["episodes"]))
        reward = pmean(jnp.mean(traj.reward, (0, 1)))  # [n_agents]
        metrics = {k: jnp.mean(v) for k, v in diagnostics.items()}
        metrics |= {k: pmean(jnp.mean(stats[k])) for k in INFO_KEYS}
        metrics |= {
            "episodes": episodes,
            "explained_variance": jnp.mean(explained),
            "reward_mean": jnp.mean(reward),
        }
        episode_returns = psum(jnp.sum(stats["return_sum"], 0)) / jnp.maximum(episodes, 1)
        for i, agent in enumerate(self.spec.agents):
            metrics[f"return/{agent}"] = jnp.where(episodes > 0, episode_returns[i], jnp.nan)
            metrics[f"reward/{agent}"] = reward[i]
        train = train._replace(
            params=params,
            opt_state=opt_state,
            obs_norm=obs_norm,
            value_norm=value_norm,
            key=key,
            update=train.update + 1,
        )
        return train, metrics

    def _updates(self, train: TrainState, n: int):
        """`n` updates of the global state: each device runs them on its share."""
        run = lambda t: jax.lax.scan(self._update, t, None, length=n)  # noqa: E731
        return self.on_mesh(run, (STATE_SPECS, REPLICATED))(train)


def values_where(
    value_fn: Callable[[Array], Array], worlds: Array, mask: Array, slots: int
) -> Array:
    """`value_fn` of the rows of `worlds` [batch, ...] where `mask`, zeros elsewhere [batch, n].
    A step ends few episodes: the rows are gathered into `slots` places and valued in one small
    pass; when more end at once (a horizon shared by every grid), every row is valued."""
    batch = mask.shape[0]

    def few() -> Array:
        rows = jnp.nonzero(mask, size=slots, fill_value=batch)[0]  # batch: out of range
        values = value_fn(worlds.at[rows].get(mode="fill", fill_value=0))
        return jnp.zeros((batch, *values.shape[1:]), values.dtype).at[rows].set(values, mode="drop")

    def every() -> Array:
        return jnp.where(mask[:, None], value_fn(worlds), 0.0)

    return jax.lax.cond(jnp.sum(mask) > slots, every, few)


def _per_agent(config: GridRLConfig, spec: AgentSpec):
    """(γ, λ, clip ε, loss weight), each [n_agents], from the roles' settings."""
    if config.joint:
        role_of = {"joint": "operational"}
    else:
        role_of = {
            a: g for g, members in zip(spec.groups, spec.members, strict=True) for a in members
        }

    def role_value(prefix: str, role: str) -> float:
        if not config.hierarchical and prefix in ("gamma", "lambda"):
            role = "operational"  # flat: one discount for every agent
        return getattr(config, f"{prefix}_{role}")

    def vector(prefix: str) -> Array:
        return jnp.asarray([role_value(prefix, role_of[a]) for a in spec.agents], jnp.float32)

    clip = jnp.asarray(
        [
            config.safety_clip_eps if role_of[a] == "safety" else config.clip_eps
            for a in spec.agents
        ],
        jnp.float32,
    )
    # a group's loss weight is shared by its members (four operational agents weigh as one role)
    sizes = {g: len(m) for g, m in zip(spec.groups, spec.members, strict=True)}
    weight = jnp.asarray(
        [
            (getattr(config, f"loss_weight_{role_of[a]}") if not config.joint else 1.0)
            / sizes.get(role_of[a], 1)
            for a in spec.agents
        ],
        jnp.float32,
    )
    return vector("gamma"), vector("lambda"), clip, weight


def _schedule(config: GridRLConfig) -> optax.Schedule:
    if config.lr_schedule == "constant":
        return optax.constant_schedule(config.lr)
    steps = config.num_updates * config.epochs * config.minibatches
    return optax.linear_schedule(config.lr, 0.0, steps)


def trainer_for(config: GridRLConfig, mesh: jax.sharding.Mesh | None = None) -> Trainer:
    """The trainer of `config` on `mesh` (default: every device), built once per process: runs
    of one config (a resume, the tests) share its compiled functions."""
    return _cached_trainer(config, mesh if mesh is not None else sharding.data_mesh())


@functools.lru_cache(maxsize=4)
def _cached_trainer(config: GridRLConfig, mesh: jax.sharding.Mesh) -> Trainer:
    return Trainer(config, mesh=mesh)


def make_train(
    config: GridRLConfig, mesh: jax.sharding.Mesh | None = None
) -> Callable[[jax.Array], tuple[TrainState, dict]]:
    """A pure `train(key) -> (final state, per-update metrics)` for the whole run; jit it, or vmap
    it over seeds (`jax.vmap(make_train(config))(keys)`)."""
    trainer = Trainer(config, mesh=mesh)

    def train(key: jax.Array):
        return trainer._updates(trainer._init(key), config.num_updates)

    return train


__all__ = ["INFO_KEYS", "TrainState", "Trainer", "Transition", "make_train", "trainer_for"]
