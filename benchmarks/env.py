"""Environment steps per second: gridrl (batched, DC and AC) against Grid2Op + LightSim2Grid,
measured in the same run on this machine.

    python benchmarks/env.py [--quick]

gridrl: `jax.vmap(AutoReset(env).step)` jitted once per batch size (finished episodes restart
within the step, as in a training rollout), fresh random actions in [-1, 1] each step (8
batches drawn beforehand, cycled: the policy is not timed), the `normal` scenario on ieee118
with protection, cascades and the N-1 indicator on (they always are), timed after as many
steps as are timed, so that trips, outages and resets are under way. Grid2Op: do-nothing steps
of a bundled 118-bus dataset with LightSim2Grid's backend, one process
(benchmarks/env_grid2op.py says exactly what a step costs there). At the large batch sizes,
three parts of the step are also timed alone on the operating points the timed steps left
(benchmarks/env_parts.py). Results go to
benchmarks/results/env.json and the "env" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax

import gridrl
from gridrl.env import AutoReset
from gridrl.machine import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_page import publish  # a sibling script, not a package
from env_grid2op import grid2op_steps_per_second
from env_parts import parts_steps_per_second

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "results" / "env.json"
DOCS_MD = ROOT / "docs" / "benchmarks.md"
FULL = {
    "dc": (1, 64, 1024, 4096),
    "ac": (1, 64, 1024),
    "parts": (1024, 4096),  # batch sizes at which the step's parts are also timed alone
    "steps": 10,
    "repeats": 5,
    "g2o": 2000,
}
QUICK = {"dc": (1, 256), "ac": (1, 64), "parts": (64, 256), "steps": 5, "repeats": 3, "g2o": 300}
FLOORS = {"dc": 300_000, "ac": 20_000}
ACTION_POOL = 8  # batches of random actions cycled through


def gridrl_steps_per_second(
    physics: str, batch: int, steps: int, repeats: int, parts: bool
) -> tuple[dict, dict | None]:
    """The step's rate, and if `parts` its parts' alone, at the operating points the timed
    steps left (env_parts.py)."""
    env = AutoReset(gridrl.make("ieee118", scenario="normal", physics=physics))
    params = env.default_params
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    # fresh random actions and keys each step, drawn beforehand (the policy is not timed)
    pool = [
        {
            agent: jax.random.uniform(
                jax.random.key(1000 * t + i),
                (batch, *env.action_space(agent).shape),
                minval=-1.0,
                maxval=1.0,
            )
            for i, agent in enumerate(env.agents)
        }
        for t in range(ACTION_POOL)
    ]
    keys = [jax.random.split(jax.random.key(t), batch) for t in range(ACTION_POOL)]
    start = time.perf_counter()
    _, state = jax.block_until_ready(reset(keys[0], params))
    state = jax.block_until_ready(step(keys[0], state, pool[0], params))[1]
    compile_s = time.perf_counter() - start
    for t in range(steps):  # into operation: trips, outages and resets under way
        state = step(keys[t % ACTION_POOL], state, pool[t % ACTION_POOL], params)[1]
    rates, done = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        for t in range(steps):
            out = step(keys[t % ACTION_POOL], state, pool[t % ACTION_POOL], params)
            state = out[1]
        jax.block_until_ready(state)
        rates.append(batch * steps / (time.perf_counter() - start))
        done += int(out[3]["__all__"].sum())
    row = {
        "physics": physics,
        "batch": batch,
        "env_steps_per_s": statistics.median(rates),
        "compile_and_first_step_s": compile_s,
        "episodes_ended_in_last_steps": done,
    }
    return row, parts_steps_per_second(env, state, steps, repeats) if parts else None


def render(results: dict) -> str:
    g2o = results["grid2op"]
    lines = [
        "## Environment (benchmarks/env.py)",
        "",
        f"Machine: **{results['machine']['cpu']}**, {results['date']}{_load(results)}. gridrl:"
        " ieee118, `normal` scenario, fresh random actions each step, protection + cascades + N-1"
        " indicator on, float32, one jitted vmapped `AutoReset` step (finished episodes restart"
        " within it). Grid2Op: `"
        f"{g2o['dataset']}` with LightSim2Grid, do-nothing, one process:"
        f" **{g2o['steps_per_s']:,.0f} env-steps/s** in the same run.",
        "",
        "| physics | batch | gridrl env-steps/s | × Grid2Op | floor | compile + first step (s) |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["gridrl"]:
        ratio = row["env_steps_per_s"] / g2o["steps_per_s"]
        lines.append(
            f"| {row['physics'].upper()} | {row['batch']} | {row['env_steps_per_s']:,.0f} |"
            f" {ratio:.1f} | {FLOORS[row['physics']]:,} | {row['compile_and_first_step_s']:.1f} |"
        )
    return "\n".join(lines + _parts_table(results)) + "\n"


def _parts_table(results: dict) -> list[str]:
    """The step's parts timed alone (env_parts.py says what each is) beside the floors: a step
    doing these three only would take at least the sum of their times."""
    parts = results.get("parts_alone") or []
    if not parts:
        return []
    lines = [
        "",
        "Parts of the step timed alone in the same run (benchmarks/env_parts.py): writing the"
        " observations (every agent's and the world state's floats, nothing computed), the"
        " base-topology power flow (AC: warm-started) and the N-1 screen, each one jitted call;"
        " *together*: their times per env-step added, the rate of a step that did nothing else.",
        "",
        "| physics | batch | observation floats | observations | base flow | N-1 screen |"
        " together | whole step | floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    steps = {(r["physics"], r["batch"]): r["env_steps_per_s"] for r in results["gridrl"]}
    for part in parts:
        rates = part["env_steps_per_s"]
        together = 1.0 / sum(1.0 / rate for rate in rates.values())
        lines.append(
            f"| {part['physics'].upper()} | {part['batch']} | {part['observation_floats']:,} |"
            + "".join(f" {rates[k]:,.0f} |" for k in ("observations", "base_flow", "n1_screen"))
            + f" {together:,.0f} | {steps[part['physics'], part['batch']]:,.0f} |"
            f" {FLOORS[part['physics']]:,} |"
        )
    return lines


def _load(results: dict) -> str:
    load = results["machine"].get("load_average_1min")
    return "" if load is None else f" (1-min load average {load[0]:.1f} → {load[1]:.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batches, few steps")
    settings = QUICK if parser.parse_args(argv).quick else FULL
    jax.config.update("jax_enable_x64", False)
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    rows, parts = [], []
    for physics in ("dc", "ac"):
        for batch in settings[physics]:
            row, part = gridrl_steps_per_second(
                physics, batch, settings["steps"], settings["repeats"], batch in settings["parts"]
            )
            print(json.dumps(row), json.dumps(part), flush=True)
            rows.append(row)
            parts += [part] if part else []
    g2o = grid2op_steps_per_second(n_steps=settings["g2o"])
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "platform": platform.platform(),
            "jax": jax.__version__,
            "load_average_1min": [load_before, os.getloadavg()[0]],
        },
        "settings": settings,
        "gridrl": rows,
        "parts_alone": parts,
        "grid2op": g2o,
    }
    markdown = render(results)
    publish(results, RESULTS_JSON, DOCS_MD, "env", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
