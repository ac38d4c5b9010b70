"""A training run on disk: config, checkpoints, logs, periodic and final evaluation, resume.

    run = train_run(preset("quick"), Path("runs/quick"))
    run = train_run(None, Path("runs/quick"), resume=True)    # after an interruption

RUN_DIR holds `config.json` (the resolved GridRLConfig), `checkpoints/<update>/` (orbax; the last
`keep_checkpoints` kept), `metrics.jsonl` and `tensorboard/` (one row per update, its x the
env-steps so far), `evaluations.jsonl` (periodic held-out evaluations) and, at the end,
`evaluation.json` (the final policy, `gridrl evaluate`'s format). Updates run in jitted chunks
that end on multiples of `checkpoint_every`, so a resumed run executes exactly the same chunks as
an uninterrupted one and ends with the same parameters.

Several processes (`jax.distributed`, gridrl.train.sharding) run the same `train_run` on one run
folder, each stepping its devices' grids: process 0 alone writes the folder (config, checkpoints,
logs) and evaluates; the others train beside it. A resume reads the folder from every process
(a filesystem they share).
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
from gridrl.train import sharding
from gridrl.train.bc import warm_start
from gridrl.train.config import GridRLConfig
from gridrl.train.logging import NullLogger, RunLogger
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
    state: TrainState | None = None  # the final state, every part readable by this process


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
    """Check the run folder before any work; the config to run (a resumed run's own). Every
    process checks, then process 0 writes the config."""
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
    sharding.barrier("gridrl-run-checked")  # no process reads the folder after this write
    if sharding.is_main_process():
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
    mesh: jax.sharding.Mesh | None = None,
) -> RunResult:
    """Train (or resume) the run in `run_dir` on the devices of `mesh` (default: all), from
    another run's agents (`init_from`) and after a behaviour-cloning warm start if the config
    asks for them (checkpoint 0). `on_update(update, total, env_steps, scalars)` follows each
    update (a progress bar); `evaluate_policy(trainer, state)` evaluates held-out episodes (an
    evaluation document: periodically, logged, and at the end, written to evaluation.json).
    With several processes, only process 0 calls them, writes and evaluates."""
    run_dir = Path(run_dir)
    mesh = mesh if mesh is not None else sharding.data_mesh()
    if config is not None:  # refused before the folder is written
        sharding.check_divisible(config.envs_per_scenario(), mesh.devices.size)
    config = prepare(config, run_dir, resume)
    # read once, before process 0 writes any: every process takes the same path below
    resumed = checkpoint.latest(run_dir) if resume else None
    if resumed is not None:  # a mismatch is refused before any work
        checkpoint.check_meta(run_dir, {"config": config.to_dict()})
    trainer = trainer_for(config, mesh)
    state = trainer.init(jax.random.key(config.seed))
    meta = checkpoint_meta(trainer)
    main = sharding.is_main_process()
    logger = RunLogger(run_dir) if main else NullLogger()
    if not main:
        on_update = evaluate_policy = None

    def save(step: int, host: TrainState, **kwargs) -> None:
        if main:
            info = {"updates": step, "env_steps": step * config.batch_steps}
            checkpoint.save(run_dir, step, to_checkpoint(host), meta | info, **kwargs)

    if resumed is not None:
        saved, found = checkpoint.restore(run_dir, to_checkpoint(state), expected=meta)
        state = from_checkpoint(saved)
        logger.truncate_after(int(found["env_steps"]))
    start = time.perf_counter()
    total = config.num_updates
    done = int(state.update)
    template = state  # where each part of the state lies on the mesh
    with logger:
        fresh = done == 0 and resumed is None
        if fresh and config.init_from:
            state = initial_agents(trainer, state)
        if fresh and config.bc_from:  # every process clones alike (the same demonstrations)
            state, losses = warm_start(trainer, sharding.to_host(state), config.bc_from)
            for epoch, loss in enumerate(losses):
                logger.log(0, {"bc/epoch": epoch, "bc/loss": float(loss)})
        if fresh and (config.init_from or config.bc_from):
            state = sharding.to_mesh(state, template)
            save(0, sharding.to_host(state))
        host = sharding.to_host(state)  # what process 0 saves and evaluates
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
            host = sharding.to_host(state)  # every process: the other processes' grids too
            save(done, host, keep=config.keep_checkpoints)
            periodic = config.eval_every and done % config.eval_every == 0 and done < total
            if periodic and evaluate_policy is not None:
                logger.log(env_steps, evaluation_scalars(evaluate_policy(trainer, host)))
        evaluation = None
        if evaluate_policy is not None:
            evaluation = evaluate_policy(trainer, host)
            logger.log(done * config.batch_steps, evaluation_scalars(evaluation))
            io.write_json(run_dir / EVALUATION_FILE, evaluation)
    seconds = time.perf_counter() - start
    return RunResult(run_dir, done, done * config.batch_steps, seconds, evaluation, host)
