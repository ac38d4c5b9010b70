"""`GridRLConfig`: every setting of a training run, one frozen dataclass with presets.

    config = preset("quick").override({"lr": "1e-4", "scenario": "mix"})

Every field can be overridden (`gridrl train --set field=value`); unknown fields and bad values are
refused with one line naming the field. The resolved config is saved as JSON in the run folder
and in every checkpoint (docs/training.md describes each field).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, fields
from typing import Literal

from gridrl.agents.heuristics import HEURISTICS
from gridrl.agents.learned import ACTION_MODES
from gridrl.agents.networks import NetworkConfig
from gridrl.env.scenarios import SCENARIOS

ALGORITHMS = ("hmappo", "hmappo-noattn", "mappo", "ppo")
MIX = "mix"


class ConfigError(ValueError):
    """A bad training setting (the message names the field)."""


@dataclass(frozen=True)
class GridRLConfig:
    # --- what is trained, on what
    algorithm: Literal["hmappo", "hmappo-noattn", "mappo", "ppo"] = "hmappo"
    case: str = "ieee118"
    scenario: str = "normal"  # one of the six, or "mix" (weights below)
    mix_weights: tuple[float, ...] = (0.3, 0.15, 0.15, 0.15, 0.1, 0.15)  # in SCENARIOS order
    physics: Literal["dc", "ac"] = "dc"
    episode_steps: int = 288
    seed: int = 1  # training seed; 0 is gridrl evaluate's default evaluation seed
    # --- budget and batch
    total_steps: int = 2_000_000  # env-steps (all grids together)
    num_envs: int = 64
    rollout_steps: int = 64  # steps per grid between updates
    epochs: int = 4
    minibatches: int = 4
    # --- PPO
    lr: float = 3e-4
    lr_schedule: Literal["constant", "linear"] = "linear"  # linear: down to 0 at total_steps
    max_grad_norm: float = 0.5
    clip_eps: float = 0.2
    safety_clip_eps: float = 0.1  # the safety agent learns conservatively: a tighter trust region
    value_clip_eps: float = 0.2
    vf_coef: float = 0.5
    entropy_coef: float = 0.001
    critic_warmup_updates: int = 0  # the first N updates fit the critic alone (after a warm start)
    loss_weight_strategic: float = 1.0
    loss_weight_operational: float = 1.0
    loss_weight_safety: float = 1.0
    # --- returns: per-role discounts and GAE λ (flat algorithms use the operational ones)
    gamma_strategic: float = 0.99
    gamma_operational: float = 0.9
    gamma_safety: float = 0.5
    lambda_strategic: float = 0.95
    lambda_operational: float = 0.9
    lambda_safety: float = 0.8
    strategic_interval: int = 1  # the strategic agent decides every N steps (1: every step)
    reward_scale: float = 1.0
    shared_reward: float = 0.5  # operational reward = (1 - s)·regional + s·global
    # --- agents
    action_mode: Literal["ramp", "setpoint"] = "setpoint"
    hidden: int = 128
    token: int = 64
    heads: int = 8
    critic_hidden: int = 256
    log_std_init: float = -0.5
    # --- warm start: another run's agents, then behaviour cloning from a baseline's actions
    init_from: str = ""  # a run folder or checkpoint whose agents (actor, statistics) start it
    bc_from: str = ""  # "" (none), "sced" or a heuristic's name
    bc_episodes: int = 8
    bc_epochs: int = 200
    bc_lr: float = 1e-3
    bc_rounds: int = 1  # 1: plain cloning; more: DAgger rounds on the clone's own states
    # --- bookkeeping
    checkpoint_every: int = 10  # updates
    keep_checkpoints: int = 3
    eval_every: int = 20  # updates (0: only at the end)
    eval_episodes: int = 2
    eval_episode_steps: int = 96
    eval_seed: int = 7_000_000  # held-out episodes: never a training seed (docs/training.md)

    # --- derived
    @property
    def batch_steps(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.batch_steps)

    @property
    def scenarios(self) -> tuple[str, ...]:
        return tuple(SCENARIOS) if self.scenario == MIX else (self.scenario,)

    def envs_per_scenario(self) -> tuple[int, ...]:
        """How the `num_envs` grids split over `scenarios` (by `mix_weights`, each at least 1)."""
        if self.scenario != MIX:
            return (self.num_envs,)
        # largest remainders over one grid each: every scenario keeps at least one grid
        spare = self.num_envs - len(self.mix_weights)
        total = sum(self.mix_weights)
        shares = [spare * w / total for w in self.mix_weights]
        counts = [1 + int(s) for s in shares]
        by_remainder = sorted(range(len(shares)), key=lambda i: int(shares[i]) - shares[i])
        for i in by_remainder[: self.num_envs - sum(counts)]:
            counts[i] += 1
        return tuple(counts)

    @property
    def network(self) -> NetworkConfig:
        return NetworkConfig(
            hidden=self.hidden,
            token=self.token,
            heads=self.heads,
            attention=self.algorithm == "hmappo",
            critic_hidden=self.critic_hidden,
            log_std_init=self.log_std_init,
        )

    @property
    def hierarchical(self) -> bool:
        return self.algorithm in ("hmappo", "hmappo-noattn")

    @property
    def joint(self) -> bool:
        return self.algorithm == "ppo"

    # --- checks and changes
    def validate(self) -> GridRLConfig:
        checks = [
            (self.algorithm in ALGORITHMS, f"algorithm must be one of {ALGORITHMS}"),
            (
                self.scenario == MIX or self.scenario in SCENARIOS,
                f"scenario must be one of {(*SCENARIOS, MIX)}",
            ),
            (
                len(self.mix_weights) == len(SCENARIOS)
                and all(w >= 0 for w in self.mix_weights)
                and sum(self.mix_weights) > 0,
                f"mix_weights: {len(SCENARIOS)} non-negative weights, not all 0",
            ),
            (self.physics in ("dc", "ac"), "physics must be 'dc' or 'ac'"),
            (self.action_mode in ACTION_MODES, f"action_mode must be one of {ACTION_MODES}"),
            (self.lr_schedule in ("constant", "linear"), "lr_schedule: 'constant' or 'linear'"),
            (self.episode_steps >= 1, "episode_steps must be >= 1"),
            (self.total_steps >= 1, "total_steps must be >= 1"),
            (
                # the update and optimiser-step counters are int32 on the device
                self.total_steps // max(1, self.batch_steps) * self.epochs * self.minibatches
                < 2**31,
                "total_steps too large: updates x epochs x minibatches must stay below 2^31",
            ),
            (self.num_envs >= len(self.scenarios), "num_envs must be >= the scenarios trained on"),
            (self.rollout_steps >= 1, "rollout_steps must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (
                # a minibatch takes rollout_steps / minibatches steps of every grid (train/ppo.py)
                self.minibatches >= 1 and self.rollout_steps % self.minibatches == 0,
                "minibatches must divide rollout_steps (each minibatch takes steps of every grid)",
            ),
            (self.lr > 0 and self.bc_lr > 0, "lr and bc_lr must be > 0"),
            (self.token % self.heads == 0, "token must be divisible by heads"),
            (min(self.hidden, self.token, self.heads, self.critic_hidden) >= 1, "sizes >= 1"),
            (self.strategic_interval >= 1, "strategic_interval must be >= 1"),
            (self.critic_warmup_updates >= 0, "critic_warmup_updates must be >= 0"),
            (0.0 <= self.shared_reward <= 1.0, "shared_reward must be in [0, 1]"),
            (self.reward_scale > 0, "reward_scale must be > 0"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.eval_every >= 0, "eval_every must be >= 0"),
            (self.eval_episodes >= 1 and self.eval_episode_steps >= 1, "eval counts >= 1"),
            (0 <= self.seed < 2**31 and 0 <= self.eval_seed < 2**31, "seeds in [0, 2^31)"),
            (
                self.bc_episodes >= 1 and self.bc_epochs >= 0 and self.bc_rounds >= 1,
                "bc_episodes >= 1, bc_epochs >= 0, bc_rounds >= 1",
            ),
            (
                self.bc_from in ("", "sced", *HEURISTICS),
                f"bc_from must be '' (none), 'sced' or one of {HEURISTICS}",
            ),
        ]
        for name in ("gamma", "lambda"):
            for role in ("strategic", "operational", "safety"):
                value = getattr(self, f"{name}_{role}")
                checks.append((0.0 <= value <= 1.0, f"{name}_{role} must be in [0, 1]"))
        for name in ("clip_eps", "safety_clip_eps", "value_clip_eps", "max_grad_norm"):
            checks.append((getattr(self, name) > 0, f"{name} must be > 0"))
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"config: {message}")
        return self

    def override(self, changes: dict[str, str | object]) -> GridRLConfig:
        """A copy with `changes` (values as strings from the command line, or typed)."""
        known = {f.name: f for f in fields(self)}
        values = {}
        for name, value in changes.items():
            if name not in known:
                raise ConfigError(f"config: unknown field {name!r}; known: {', '.join(known)}")
            values[name] = (
                _parse(name, known[name].type, value) if isinstance(value, str) else value
            )
        return dataclasses.replace(self, **values).validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> GridRLConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"config: unknown fields {unknown}")
        typed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**typed).validate()


def _parse(name: str, annotation, text: str):
    kind = typing.get_type_hints(GridRLConfig)[name]
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if kind is int:
            return int(text.replace("_", ""))
        if kind is float:
            return float(text)
        if origin is tuple:
            return tuple(float(x) for x in text.split(",") if x.strip())
        if origin is Literal:
            if text not in typing.get_args(kind):
                raise ValueError(text)
            return text
        if kind is str or isinstance(kind, types.UnionType):
            return text
    except ValueError:
        raise ConfigError(f"config: bad value {text!r} for {name} ({_describe(kind)})") from None
    raise ConfigError(f"config: field {name} cannot be set from the command line")


def _describe(kind) -> str:
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(typing.get_args(kind))
    if typing.get_origin(kind) is tuple:
        return "comma-separated numbers"
    return getattr(kind, "__name__", str(kind))


PRESETS: dict[str, GridRLConfig] = {
    # about 10 minutes on a 2-core CPU, compilation included (docs/training.md)
    "quick": GridRLConfig(
        total_steps=300_000,
        num_envs=32,
        rollout_steps=32,
        epochs=4,
        minibatches=2,
        lr=1e-3,
        hidden=64,
        token=32,
        critic_hidden=128,
        checkpoint_every=10,
        eval_every=0,
    ),
    # throughput on CPU: a large batch steps the grids faster; one epoch over it and the quick
    # preset's narrow networks keep the learner near the rollout's time (benchmarks/train.py)
    "default": GridRLConfig(
        num_envs=256,
        rollout_steps=32,
        epochs=1,
        minibatches=4,
        lr=1e-3,
        hidden=64,
        token=32,
        critic_hidden=64,
    ),
    # large batches for accelerators
    "performance": GridRLConfig(
        total_steps=100_000_000,
        num_envs=2048,
        rollout_steps=64,
        epochs=4,
        minibatches=8,
        hidden=256,
        token=128,
        critic_hidden=512,
        checkpoint_every=25,
        eval_every=50,
    ),
}


def preset(name: str) -> GridRLConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
