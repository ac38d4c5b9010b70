"""Training throughput: gridrl's PPO trainer end to end (rollout + updates) against the environment
alone and Grid2Op + LightSim2Grid, measured in the same run on this machine; the learned agents'
single-grid decision latency; the trainer's compile time per preset.

    python benchmarks/train.py [--quick]
    python benchmarks/train.py --render-only    # the docs section again, from the JSON

Training: `Trainer(preset("default"))` (ieee118, `normal`, DC, the preset's grids x steps per
update, epochs and minibatches), `trainer.updates` compiled once for one update (timed: that is the
default preset's compile time), one update run untimed, then chunks of updates timed. The
environment alone: benchmarks/env.py's `gridrl_steps_per_second` at the same batch (random
actions, no policy). Grid2Op: benchmarks/env_grid2op.py's `grid2op_steps_per_second`. Decision
latency: jitted `learned.act` (mean action, key None) on one grid, no vmap, after the timed
updates, each call waited for. Compile: `trainer.updates.lower(state, 1).compile()` per preset, on
the state's shapes alone (`jax.eval_shape`): the performance preset's 2048 grids are never
allocated. Results go to benchmarks/results/train.json and the "train" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gridrl.agents import learned
from gridrl.machine import cpu_name
from gridrl.train.config import preset
from gridrl.train.ppo import Trainer, TrainState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_page import publish  # a sibling script, not a package
from env import gridrl_steps_per_second
from env_grid2op import grid2op_steps_per_second

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "results" / "train.json"
DOCS_MD = ROOT / "docs" / "benchmarks.md"
FULL = {
    "chunk": 2,  # updates per timed chunk
    "repeats": 5,  # timed chunks
    "env_steps": 10,
    "env_repeats": 5,
    "g2o": 2000,
    "latency_calls": 2000,
    "presets": ("quick", "default", "performance"),
}
QUICK = {
    "chunk": 1,
    "repeats": 2,
    "env_steps": 5,
    "env_repeats": 3,
    "g2o": 300,
    "latency_calls": 300,
    "presets": ("quick", "default"),  # the performance preset's compile alone takes minutes
}
PRESET = "default"  # the trained batch
PROTOTYPE_TPU_V4 = 430.0  # env-steps/s of the original prototype on a TPU v4: quoted, not measured
FLOORS = {"training_over_grid2op": 10.0, "latency_p99_ms": 1.0}
LATENCY_WARMUP = 50


def _timed(fn, *args) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def compile_updates(trainer: Trainer, state) -> tuple[Any, dict]:
    """`trainer.updates` for one update, lowered and compiled for `state` (arrays or only their
    shapes); the compiled call takes the state alone."""
    lowered, lower_s = _timed(trainer.updates.lower, state, 1)
    compiled, compile_s = _timed(lowered.compile)
    return compiled, {"lower_s": lower_s, "compile_s": compile_s, "total_s": lower_s + compile_s}


def preset_row(name: str, build_s: float, times: dict, trainer: Trainer) -> dict:
    config = trainer.config
    return {
        "preset": name,
        "num_envs": config.num_envs,
        "rollout_steps": config.rollout_steps,
        "batch_steps": config.batch_steps,
        "epochs": config.epochs,
        "minibatches": config.minibatches,
        "hidden": config.hidden,
        "token": config.token,
        "critic_hidden": config.critic_hidden,
        "build_s": build_s,
        **times,
    }


def training_steps_per_second(settings: dict) -> tuple[dict, dict, Trainer, TrainState]:
    """The default preset's end-to-end rate (rollout + PPO epochs), its compile row, the trainer
    and the state after the timed updates."""
    trainer, build_s = _timed(Trainer, preset(PRESET))
    state, init_s = _timed(lambda: jax.block_until_ready(trainer.init(jax.random.key(0))))
    update, times = compile_updates(trainer, state)
    # one untimed update: first-call costs out of the timing
    (state, _), first_s = _timed(lambda: jax.block_until_ready(update(state)))
    rates = []
    for _ in range(settings["repeats"]):
        start = time.perf_counter()
        for _ in range(settings["chunk"]):
            state, metrics = update(state)
        jax.block_until_ready(state)
        elapsed = time.perf_counter() - start
        rates.append(settings["chunk"] * trainer.config.batch_steps / elapsed)
    row = {
        "preset": PRESET,
        "scenario": trainer.config.scenario,
        "physics": trainer.config.physics,
        "num_envs": trainer.config.num_envs,
        "rollout_steps": trainer.config.rollout_steps,
        "batch_steps": trainer.config.batch_steps,
        "agents": len(trainer.spec.agents),
        "env_steps_per_s": statistics.median(rates),
        "env_steps_per_s_each": rates,
        "init_s": init_s,
        "first_update_s": first_s,
        "updates_done": int(state.update),
        "episodes_in_last_update": int(metrics["episodes"][-1]),
    }
    return row, preset_row(PRESET, build_s, times, trainer), trainer, state


def rollout_steps_per_second(trainer: Trainer, state: TrainState, settings: dict) -> dict:
    """The rollout alone (the policy sampling + the environment stepping, no GAE nor PPO epochs):
    splits the training step's time between acting and learning. `_rollout` is the trainer's
    own, private, function: this is a diagnosis, not an API."""
    lowered, lower_s = _timed(jax.jit(trainer._rollout).lower, state)
    rollout, compile_s = _timed(lowered.compile)
    state = jax.block_until_ready(rollout(state))[0]  # first-call costs out of the timing
    rates = []
    for _ in range(settings["repeats"]):
        start = time.perf_counter()
        for _ in range(settings["chunk"]):
            state = rollout(state)[0]
        jax.block_until_ready(state)
        elapsed = time.perf_counter() - start
        rates.append(settings["chunk"] * trainer.config.batch_steps / elapsed)
    return {
        "env_steps_per_s": statistics.median(rates),
        "env_steps_per_s_each": rates,
        "lower_s": lower_s,
        "compile_s": compile_s,
    }


def decision_latency(trainer: Trainer, state: TrainState, calls: int) -> dict:
    """Median and p99 (ms) of one jitted `learned.act` on one grid (the first training grid's
    state, the trained parameters), each call waited for: what a control room would wait."""
    env, config = trainer.env, trainer.config
    act = jax.jit(
        functools.partial(learned.act, env, trainer.spec, trainer.network, config.action_mode)
    )
    one = functools.partial(jax.tree.map, lambda x: x[0])
    args = (
        state.params["actor"],
        state.obs_norm,
        None,  # no key: the mean action, as a deployed policy acts
        one(state.obs[0]),
        one(state.env_states[0]),
        env.default_params,
    )
    _, compile_s = _timed(lambda: jax.block_until_ready(act(*args)))
    for _ in range(LATENCY_WARMUP):
        jax.block_until_ready(act(*args))
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(act(*args).actions)
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1e3
    return {
        "calls": calls,
        "median_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "compile_and_first_call_s": compile_s,
        "agents": list(env.agents),
    }


def preset_compile(name: str) -> dict:
    """Compile time of one update of preset `name`, on the state's shapes alone."""
    trainer, build_s = _timed(Trainer, preset(name))
    abstract = jax.eval_shape(trainer.init, jax.random.key(0))
    _, times = compile_updates(trainer, abstract)
    return preset_row(name, build_s, times, trainer)


def render(results: dict) -> str:
    train, env, g2o = results["training"], results["env_alone"], results["grid2op"]
    rollout = results["rollout_alone"]
    latency, ratios = results["latency"], results["ratios"]
    machine = results["machine"]
    load = machine["load_average_1min"]
    batch = f"{train['num_envs']} grids x {train['rollout_steps']} steps"
    lines = [
        "## Training (benchmarks/train.py)",
        "",
        f"Machine: **{machine['cpu']}**, {machine['cores']} cores, jax {machine['jax']}"
        f" ({machine['backend']}), {results['date']}. The machine is shared with other jobs and"
        f" noisy (1-min load average {load[0]:.1f} → {load[1]:.1f} over the run): figures are"
        " medians, and only figures of the same run are compared.",
        "",
        f"Throughput at the `{train['preset']}` preset's batch ({batch} ="
        f" {train['batch_steps']:,} env-steps per update; ieee118, `{train['scenario']}`,"
        f" {train['physics'].upper()}, {train['agents']} agents), measured one after the other."
        " *env-steps/s*: environment steps (all grids together) per second of wall time, median"
        " of the timed chunks; *training ÷ this*: the training rate divided by the row's rate.",
        "",
        "| what | env-steps/s | training ÷ this | floor |",
        "|---|---|---|---|",
        f"| training: `trainer.updates` (rollout with the policy sampling, GAE, PPO epochs),"
        f" {results['settings']['repeats']} chunks of {results['settings']['chunk']} update(s)"
        f" | {train['env_steps_per_s']:,.0f} | 1.0 | |",
        "| rollout alone: the trainer's rollout (policy sampling + environment, no GAE nor PPO"
        f" epochs), same chunks | {rollout['env_steps_per_s']:,.0f} |"
        f" {ratios['training_over_rollout']:.2f} | |",
        f"| environment alone: jitted vmapped `AutoReset` step, random actions, batch"
        f" {env['batch']} (benchmarks/env.py) | {env['env_steps_per_s']:,.0f} |"
        f" {ratios['training_over_env']:.2f} | |",
        f"| Grid2Op + LightSim2Grid: `{g2o['dataset']}`, do-nothing, one process"
        f" (benchmarks/env_grid2op.py) | {g2o['steps_per_s']:,.0f} |"
        f" {ratios['training_over_grid2op']:.1f} | ≥ {FLOORS['training_over_grid2op']:.0f} |",
        f"| original prototype on a TPU v4 (quoted, not measured) | {PROTOTYPE_TPU_V4:,.0f} |"
        f" {ratios['training_over_prototype']:.1f} | |",
        "",
        "Decision latency: jitted `learned.act` (all agents, mean action, no key) on one grid,"
        f" no vmap, {latency['calls']:,} calls after {LATENCY_WARMUP} of warm-up, each waited for"
        " (dispatch included); *median* and *p99* of the calls' wall times. On a shared machine"
        " the p99 and max include calls held up by other jobs.",
        "",
        "| median (ms) | p99 (ms) | max (ms) | floor p99 (ms) |",
        "|---|---|---|---|",
        f"| {latency['median_ms']:.3f} | {latency['p99_ms']:.3f} | {latency['max_ms']:.3f} |"
        f" ≤ {FLOORS['latency_p99_ms']:.0f} |",
        "",
        "Compile time of one update (`trainer.updates.lower(state, 1).compile()`; the trained"
        " preset on its initialised state, the others on the state's shapes alone, never"
        " allocated): *trace + lower* is JAX tracing the update"
        " into StableHLO, *compile* is XLA's; *build* is `Trainer(config)` (the environment"
        " and the agents' layout; presets after the first reuse the cached environment).",
        "",
        "| preset | grids x steps | hidden / token / critic | build (s) | trace + lower (s) |"
        " compile (s) |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["compile"]:
        lines.append(
            f"| {row['preset']} | {row['num_envs']} x {row['rollout_steps']} |"
            f" {row['hidden']} / {row['token']} / {row['critic_hidden']} | {row['build_s']:.1f} |"
            f" {row['lower_s']:.1f} | {row['compile_s']:.1f} |"
        )
    skipped = [p for p in FULL["presets"] if p not in results["settings"]["presets"]]
    if skipped:
        lines += ["", f"Not compiled in this (`--quick`) run: {', '.join(skipped)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, two presets")
    parser.add_argument(
        "--render-only", action="store_true", help="re-render the docs section from the JSON"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        results = json.loads(RESULTS_JSON.read_text())
        publish(results, RESULTS_JSON, DOCS_MD, "train", render(results))
        return 0
    quick = args.quick
    settings = QUICK if quick else FULL
    jax.config.update("jax_enable_x64", False)  # float32, as env.py and training run
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    # training, the environment alone and Grid2Op back to back, so that they share the load
    training, default_compile, trainer, state = training_steps_per_second(settings)
    print("training", training, flush=True)
    rollout = rollout_steps_per_second(trainer, state, settings)
    print("rollout alone", rollout, flush=True)
    latency = decision_latency(trainer, state, settings["latency_calls"])
    print("latency", latency, flush=True)
    env, _ = gridrl_steps_per_second(
        trainer.config.physics,
        trainer.config.num_envs,
        settings["env_steps"],
        settings["env_repeats"],
        parts=False,
    )
    print("env alone", env, flush=True)
    g2o = grid2op_steps_per_second(n_steps=settings["g2o"])
    print("grid2op", g2o["steps_per_s"], flush=True)
    compiles = []
    for name in settings["presets"]:
        row = default_compile if name == PRESET else preset_compile(name)
        print("compile", row, flush=True)
        compiles.append(row)
    rate = training["env_steps_per_s"]
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "compilation_cache_dir": jax.config.jax_compilation_cache_dir,
            "load_average_1min": [load_before, os.getloadavg()[0]],
        },
        "quick": quick,
        "settings": settings,
        "training": training,
        "rollout_alone": rollout,
        "env_alone": env,
        "grid2op": g2o,
        "prototype_tpu_v4_env_steps_per_s": PROTOTYPE_TPU_V4,
        "ratios": {
            "training_over_grid2op": rate / g2o["steps_per_s"],
            "training_over_rollout": rate / rollout["env_steps_per_s"],
            "training_over_env": rate / env["env_steps_per_s"],
            "training_over_prototype": rate / PROTOTYPE_TPU_V4,
        },
        "latency": latency,
        "compile": compiles,
        "floors": FLOORS,
    }
    markdown = render(results)
    publish(results, RESULTS_JSON, DOCS_MD, "train", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
