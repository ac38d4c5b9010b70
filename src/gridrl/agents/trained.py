"""Trained agents as a policy (`gridrl.agents.policy.JaxPolicy`): loaded from a training run's
checkpoint, or taken from a trainer's state for a periodic evaluation.

    policy = load_policy("runs/quick")                   # the run's latest checkpoint
    policy = load_policy("runs/quick/checkpoints/40")    # a given one

The policy acts with the mean action of each agent (deterministic), through the same code as the
trainer's rollouts (gridrl.agents.learned). Its `spec` is the architecture only, so every
checkpoint of a run shares one compiled evaluation; its `weights` are the actor's parameters and
the observation statistics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from gridrl.agents import checkpoint, learned
from gridrl.agents.networks import JOINT, AgentSpec, NetworkConfig, init_params
from gridrl.agents.policy import PRETRAINED, ActFn
from gridrl.env.core import GridEnv

Array = jax.Array
POLICY = "policy"  # the checkpoint's subtree (and meta key) a policy needs


@dataclass(frozen=True)
class LearnedSpec:
    """The static half of a trained policy: the agents' architecture and shapes."""

    network: NetworkConfig
    action_mode: str
    agents: AgentSpec

    def act(self, env: GridEnv) -> ActFn:
        spec = self.agents
        joint = spec.groups == (JOINT,)
        fits = learned.agent_spec(env, joint=joint, action_mode=self.action_mode)
        if (fits.obs_sizes, fits.action_sizes) != (spec.obs_sizes, spec.action_sizes):
            raise ValueError(
                f"the trained agents observe {spec.obs_sizes} and act {spec.action_sizes}, "
                f"but {env.name} has {fits.obs_sizes} and {fits.action_sizes}"
            )

        def act_fn(weights, key, obs, state, params):
            return learned.act(
                env, spec, self.network, self.action_mode, weights["actor"],
                weights["obs_norm"], None, obs, state, params,
            ).actions  # fmt: skip

        return act_fn

    def abstract_weights(self) -> dict:
        """The weights' structure, shapes and dtypes (a checkpoint's restore target)."""
        return jax.eval_shape(
            lambda key: policy_weights(
                init_params(self.agents, self.network, key)["actor"],
                learned.ObsNormalizer.create(self.agents),
            ),
            jax.random.key(0),
        )

    def to_dict(self) -> dict:
        return {
            "network": dataclasses.asdict(self.network),
            "action_mode": self.action_mode,
            "agents": dataclasses.asdict(self.agents),
        }

    @classmethod
    def from_dict(cls, data: dict) -> LearnedSpec:
        agents = data["agents"]
        return cls(
            network=NetworkConfig(**data["network"]),
            action_mode=data["action_mode"],
            agents=AgentSpec(**{k: _tuples(v) for k, v in agents.items()}),
        )


def _tuples(value):
    """JSON lists back to the tuples a hashable spec needs."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def policy_weights(actor_params, obs_norm: learned.ObsNormalizer) -> dict:
    """What a trained policy reads: the actor's parameters and the observation statistics."""
    return {"actor": actor_params, "obs_norm": obs_norm}


@dataclass(frozen=True, eq=False)
class TrainedPolicy:
    name: str
    spec: LearnedSpec
    weights: Any = field(repr=False)
    checkpoint: Path | None = None  # the folder it was loaded from (None: built in memory)

    def owned_files(self) -> list[Path]:
        """The files of its checkpoint and run that an output must never overwrite."""
        if self.checkpoint is None:
            return []
        run = self.checkpoint.parents[1]  # RUN_DIR/checkpoints/<update>; train/run.py names these
        return [self.checkpoint / checkpoint.META, run / "config.json", run / "metrics.jsonl"]


def load_policy(path: str | Path, name: str | None = None) -> TrainedPolicy:
    """The trained policy of a checkpoint (a run folder: its latest checkpoint), named `name`
    (by default `<run>@<update>`)."""
    folder = checkpoint.resolve(path)
    meta = checkpoint.read_meta(folder)
    try:
        spec = LearnedSpec.from_dict(meta[POLICY])
    except (KeyError, TypeError) as error:
        raise checkpoint.CheckpointError(
            f"{folder / 'meta.json'}: not a gridrl training checkpoint (no policy {error})"
        ) from None
    weights, _ = checkpoint.restore(folder, {POLICY: spec.abstract_weights()}, subtree=True)
    run = folder.parents[1].name  # RUN_DIR/checkpoints/<step>
    return TrainedPolicy(
        name or f"{run}@{meta['step']}", spec, _as_jax(weights[POLICY]), checkpoint=folder
    )


def export_policy(source: str | Path, out_dir: str | Path) -> Path:
    """A checkpoint of the policy alone (the actor's parameters and the observation statistics,
    with the run's config in its meta) from `source` (a run folder or one of its checkpoints),
    as `out_dir/checkpoints/<update>`: what a shipped agent needs, without the critic and the
    optimiser's state. Returns its folder."""
    folder = checkpoint.resolve(source)
    meta = checkpoint.read_meta(folder)
    policy = load_policy(folder)
    names = ("run_format", "config", POLICY, "updates", "env_steps")
    kept = {k: meta[k] for k in names if k in meta}
    return checkpoint.save(out_dir, int(meta["step"]), {POLICY: policy.weights}, kept, keep=1)


def pretrained_path() -> Path:
    """The folder of the agents shipped with the package (docs/results.md: how they were made)."""
    return Path(__file__).parent / PRETRAINED / "hmappo"


def load_pretrained() -> TrainedPolicy:
    """The shipped hierarchical agents for the built-in 118-bus grid."""
    return load_policy(pretrained_path(), name=PRETRAINED)


def _as_jax(tree):
    return jax.tree.map(jnp.asarray, tree)


def attention_trace(policy: TrainedPolicy, env: GridEnv, key: jax.Array, steps: int) -> Array:
    """[steps, heads, n_agents, n_agents] the coordination layer's attention weights along one
    episode of `env` run by `policy` (row: the attending agent; zeros without attention)."""
    spec = policy.spec
    act_fn = spec.act(env)
    params = env.default_params

    def step(carry, t):
        obs, state = carry
        weights = policy.weights
        _, _, attention = learned.policy(
            spec.agents, spec.network, weights["actor"], weights["obs_norm"], obs
        )
        actions = act_fn(weights, key, obs, state, params)
        obs, state, _, _, _ = env.step(jax.random.fold_in(key, t), state, actions, params)
        return (obs, state), attention

    @jax.jit
    def run(key):
        return jax.lax.scan(step, env.reset(key, params), jnp.arange(steps))[1]

    return run(key)
