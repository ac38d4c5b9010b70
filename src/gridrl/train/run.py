"""A training run on disk: config, checkpoints, logs, periodic and final evaluation, resume.

    run = train_run(preset("quick"), Path("runs/quick"))
    run = train_run(None, Path("runs/quick"), resume=True)    # after an interruption

RUN_DIR holds `config.json` (the resolved GridRLConfig), `checkpoints/<update>/` (orbax; the last
`keep_checkpoints` kept), `metrics.jsonl` and `tensorboard/` (one row per update, its x the
env-steps so far), `evaluations.jsonl` (periodic held-out evaluations) and, at the end,
`evaluation.json` (the final policy, `gridrl evaluate`'s format). Updates run in jitted chunks
that end on multiples of `checkpoint_every`, so a resumed run executes exactly the same chunks as
an uninterrupted one and ends with the same parameters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from gridrl import io
from gridrl.agents import checkpoint
from gridrl.agents.trained import POLICY, LearnedSpec, TrainedPolicy, policy_weights
from gridrl.train.bc import warm_start
from gridrl.train.config import GridRLConfig
from gridrl.train.logging import RunLogger
from gridrl.train.ppo import Trainer, TrainState, trainer_for

CONFIG_FILE = "config.json"
EVALUATION_FILE = "evaluation.json"
FORMAT = "gridrl-run/1"


class RunError(ValueError):
    """A run folder that cannot be started or resumed (the message names it)."""


@dataclass
class RunResult:
    run_dir: Path
    updates: int
    env_steps: int
    seconds: float  # wall time of this invocation's updates (compilation included)
    evaluation: dict | None


def learned_spec(trainer: Trainer) -> LearnedSpec:
    return LearnedSpec(trainer.network, trainer.config.action_mode, trainer.spec)


def checkpoint_meta(trainer: Trainer) -> dict:
    """What a checkpoint must match to be restored: the run's format, its config and its agents
    (as JSON gives them back)."""
    meta = {
        "run_format": FORMAT,
        "config": trainer.config.to_dict(),
        POLICY: learned_spec(trainer).to_dict(),
    }
    return json.loads(json.dumps(meta))


def to_checkpoint(state: TrainState) -> dict:
    """The training state as saved: the policy's part apart, so an evaluation loads it alone."""
    return {
        POLICY: policy_weights(state.params["actor"], state.obs_norm),
        "trainer": state._replace(params={"critic": state.params["critic"]}, obs_norm=None),
    }


def from_checkpoint(saved: dict) -> TrainState:
    policy, rest = saved[POLICY], saved["trainer"]
    params = {"actor": policy["actor"], "critic": rest.params["critic"]}
    return rest._replace(params=params, obs_norm=policy["obs_norm"])


def trained_policy(trainer: Trainer, state: TrainState) -> TrainedPolicy:
    """The state's agents as a policy (mean actions), named by their update."""
    weights = policy_weights(state.params["actor"], state.obs_norm)
    return TrainedPolicy(f"update-{int(state.update)}", learned_spec(trainer), weights)


def held_out_evaluation(trainer: Trainer, state: TrainState) -> dict:
    """The state's policy on held-out episodes (`eval_seed`) of the scenarios trained on, DC or
    AC as trained, without the SCED reference (its solves would dwarf a periodic check)."""
    from gridrl.evaluate.runner import evaluate

    config = trainer.config
    return evaluate(
        trained_policy(trainer, state),
        config.scenarios,
        episodes=config.eval_episodes,
        seed=config.eval_seed,
        episode_steps=config.eval_episode_steps,
        physics=config.physics,
        case=config.case,
        sced_reference=False,
    )


def evaluation_scalars(document: dict) -> dict[str, float]:
    """An evaluation's headline numbers per scenario, for the logs."""
    keys = ("operating_cost_per_hour", "energy_not_served_mwh", "overload_steps", "survival_rate")
    return {
        f"eval/{name}/{key}": float(result[key])
        for name, result in document["scenarios"].items()
        for key in keys
    }


def initial_agents(trainer: Trainer, state: TrainState) -> TrainState:
    """The state with the agents of `init_from` (their actor and observation statistics)."""
    from gridrl.agents.trained import load_policy

    source = trainer.config.init_from
    try:
        policy = load_policy(source)
    except (ValueError, OSError) as error:
        raise RunError(f"init_from {source}: {error}") from None
    if policy.spec != learned_spec(trainer):
        raise RunError(
            f"init_from {source}: its agents differ from this run's (network, action mode "
            "or shapes); train with the same algorithm and network sizes"
        )
    weights = policy.weights
    params = dict(state.params, actor=weights["actor"])
    return state._replace(params=params, obs_norm=weights["obs_norm"])


def load_config(run_dir: Path) -> GridRLConfig:
    path = run_dir / CONFIG_FILE
    try:
        return GridRLConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise RunError(f"{run_dir}: not a training run (no {CONFIG_FILE})") from None
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise RunError(f"{path}: unreadable config ({error})") from None


def prepare(config: GridRLConfig | None, run_dir: Path, resume: bool) -> GridRLConfig:
    """Check the run folder before any work; the config to run (a resumed run's own)."""
    io.check_output_dir(run_dir)
    has_run = (run_dir / CONFIG_FILE).exists() or (run_dir / "checkpoints").exists()
    if resume:
        return load_config(run_dir)
    if has_run:
        raise RunError(
            f"{run_dir} already holds a training run: resume it with --resume, "
            "or choose another --out"
        )
    if config is None:
        raise RunError(f"{run_dir}: no config to start a new run with")
    if config.init_from:  # a missing or broken source is refused before any work
        try:
            checkpoint.read_meta(checkpoint.resolve(config.init_from))
        except (ValueError, OSError) as error:
            raise RunError(f"init_from {config.init_from}: {error}") from None
    io.atomic_write_text(run_dir / CONFIG_FILE, config.to_json() + "\n")
    return config


def _chunks(done: int, total: int, every: int):
    """Update counts of the jitted chunks from `done` to `total`, ending on multiples of `every`."""
    while done < total:
        n = min(every - done % every, total - done)
        yield n
        done += n


def _scalars(metrics: dict, i: int) -> dict[str, float]:
    return {k: float(np.asarray(v)[i]) for k, v in metrics.items()}


def train_run(
    config: GridRLConfig | None,
    run_dir: Path,
    *,
    resume: bool = False,
    on_update: Callable[[int, int, int, dict], None] | None = None,
    evaluate_policy: Callable[[Trainer, TrainState], dict] | None = None,
) -> RunResult:
    """Train (or resume) the run in `run_dir`, from another run's agents (`init_from`) and after a
    behaviour-cloning warm start if the config asks for them (checkpoint 0).
    `on_update(update, total, env_steps, scalars)` follows each update (a progress bar);
    `evaluate_policy(trainer, state)` evaluates held-out episodes (an evaluation document:
    periodically, logged, and at the end, written to evaluation.json)."""
    run_dir = Path(run_dir)
    config = prepare(config, run_dir, resume)
    if resume and checkpoint.latest(run_dir) is not None:  # a mismatch is refused before any work
        checkpoint.check_meta(run_dir, {"config": config.to_dict()})
    trainer = trainer_for(config)
    state = trainer.init(jax.random.key(config.seed))
    meta = checkpoint_meta(trainer)
    logger = RunLogger(run_dir)
    if resume and checkpoint.latest(run_dir) is not None:
        saved, found = checkpoint.restore(run_dir, to_checkpoint(state), expected=meta)
        state = from_checkpoint(saved)
        logger.truncate_after(int(found["env_steps"]))
    start = time.perf_counter()
    total = config.num_updates
    done = int(state.update)
    with logger:
        fresh = done == 0 and checkpoint.latest(run_dir) is None
        if fresh and config.init_from:
            state = initial_agents(trainer, state)
        if fresh and config.bc_from:
            state, losses = warm_start(trainer, state, config.bc_from)
            for epoch, loss in enumerate(losses):
                logger.log(0, {"bc/epoch": epoch, "bc/loss": float(loss)})
        if fresh and (config.init_from or config.bc_from):
            checkpoint.save(run_dir, 0, to_checkpoint(state), meta | {"updates": 0, "env_steps": 0})
        for n in _chunks(done, total, config.checkpoint_every):
            state, metrics = trainer.updates(state, n)
            for i in range(n):
                update = done + i + 1
                scalars = _scalars(metrics, i)
                logger.log(update * config.batch_steps, scalars)
                if on_update is not None:
                    on_update(update, total, update * config.batch_steps, scalars)
            done += n
            env_steps = done * config.batch_steps
            checkpoint.save(
                run_dir,
                done,
                to_checkpoint(state),
                meta | {"updates": done, "env_steps": env_steps},
                keep=config.keep_checkpoints,
            )
            periodic = config.eval_every and done % config.eval_every == 0 and done < total
            if periodic and evaluate_policy is not None:
                logger.log(env_steps, evaluation_scalars(evaluate_policy(trainer, state)))
        evaluation = None
        if evaluate_policy is not None:
            evaluation = evaluate_policy(trainer, state)
            logger.log(done * config.batch_steps, evaluation_scalars(evaluation))
            io.write_json(run_dir / EVALUATION_FILE, evaluation)
    seconds = time.perf_counter() - start
    return RunResult(run_dir, done, done * config.batch_steps, seconds, evaluation)
