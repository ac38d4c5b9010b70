"""Data-parallel training: throughput on 1, 2 and 4 devices of one process, and the device memory
of the `performance` preset per 1,024 grids.

    python benchmarks/scaling.py [--quick]
    python benchmarks/scaling.py --render-only    # the docs sections again, from the JSON

Throughput: 4 host (CPU) devices forced (`--xla_force_host_platform_device_count=4`, set before
jax starts), one `Trainer` per mesh of 1, 2 and 4 of them (gridrl.train.sharding.data_mesh) on
the same global batch (the `default` preset's networks and epochs, `num_envs` grids x
`rollout_steps` steps): `trainer.updates` compiled for one update (timed), one update untimed,
then single updates timed; env-steps/s is the median. On a CPU the forced devices share its
cores: this proves the path (the same program, sharded), not a speed-up. Memory: the
`performance` preset with 1,024 grids on one device, `trainer.updates.lower(state, 1).compile()`
on the state's shapes alone (never allocated), XLA's `memory_analysis()` (arguments: the
training state; temporaries: the rollout, the minibatches, the gradients) and the state's own
bytes. Results go to benchmarks/results/scaling.json, the "scaling" section of
docs/benchmarks.md and the "memory" section of docs/scaling.md.
"""

from __future__ import annotations

import os

DEVICES = (1, 2, 4)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={max(DEVICES)}"
)

import argparse  # noqa: E402  (XLA_FLAGS first: jax reads it when it starts)
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gridrl.machine import cpu_name  # noqa: E402
from gridrl.train.config import preset  # noqa: E402
from gridrl.train.ppo import Trainer  # noqa: E402
from gridrl.train.sharding import data_mesh  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_page import publish, write_section  # noqa: E402  (a sibling script)

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "results" / "scaling.json"
DOCS_MD = ROOT / "docs" / "benchmarks.md"
SCALING_MD = ROOT / "docs" / "scaling.md"
FULL = {"num_envs": 64, "rollout_steps": 32, "repeats": 5}
QUICK = {"num_envs": 32, "rollout_steps": 16, "repeats": 3}
MEMORY_ENVS = 1024
MIB = 2**20


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def throughput(settings: dict) -> list[dict]:
    """One row per mesh size: the same global batch trained on 1, 2, 4 devices."""
    config = preset("default").override(
        {"num_envs": settings["num_envs"], "rollout_steps": settings["rollout_steps"]}
    )
    rows, envs = [], None
    for n in DEVICES:
        trainer = Trainer(config, envs, mesh=data_mesh(n))
        envs = trainer.envs
        state = jax.block_until_ready(trainer.init(jax.random.key(0)))
        lowered, lower_s = _timed(trainer.updates.lower, state, 1)
        update, compile_s = _timed(lowered.compile)
        run = lambda s, update=update: jax.block_until_ready(update(s))  # noqa: E731
        (state, _), first_s = _timed(run, state)
        rates = []
        for _ in range(settings["repeats"]):
            (state, _), seconds = _timed(run, state)
            rates.append(config.batch_steps / seconds)
        row = {
            "devices": n,
            "num_envs": config.num_envs,
            "grids_per_device": config.num_envs // n,
            "rollout_steps": config.rollout_steps,
            "batch_steps": config.batch_steps,
            "env_steps_per_s": statistics.median(rates),
            "env_steps_per_s_each": rates,
            "lower_s": lower_s,
            "compile_s": compile_s,
            "first_update_s": first_s,
        }
        print("throughput", row, flush=True)
        rows.append(row)
    return rows


def _bytes(tree) -> int:
    return int(sum(np.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(tree)))


def memory() -> dict:
    """The performance preset's update with MEMORY_ENVS grids on one device: XLA's account."""
    config = preset("performance").override({"num_envs": MEMORY_ENVS})
    trainer = Trainer(config, mesh=data_mesh(1))
    abstract = jax.eval_shape(trainer.init, jax.random.key(0))
    as_data = lambda x: (  # noqa: E731  typed keys as their data
        jax.eval_shape(jax.random.key_data, x)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        else x
    )
    state = jax.tree.map(as_data, abstract)
    grids = state._replace(params=None, opt_state=None, obs_norm=None, value_norm=None)
    (compiled, compile_s) = _timed(lambda: trainer.updates.lower(abstract, 1).compile())
    stats = compiled.memory_analysis()
    return {
        "preset": "performance",
        "num_envs": MEMORY_ENVS,
        "rollout_steps": config.rollout_steps,
        "epochs": config.epochs,
        "minibatches": config.minibatches,
        "networks": [config.hidden, config.token, config.critic_hidden],
        "state_bytes": _bytes(state),
        "grid_state_bytes": _bytes(grids),  # the part that grows with the grids
        "params_bytes": _bytes(state.params),
        "argument_bytes": int(stats.argument_size_in_bytes),
        "output_bytes": int(stats.output_size_in_bytes),
        "temp_bytes": int(stats.temp_size_in_bytes),
        "alias_bytes": int(stats.alias_size_in_bytes),
        "generated_code_bytes": int(stats.generated_code_size_in_bytes),
        "compile_s": compile_s,
    }


def render(results: dict) -> str:
    machine, rows = results["machine"], results["throughput"]
    base = rows[0]["env_steps_per_s"]
    lines = [
        "## Scaling (benchmarks/scaling.py)",
        "",
        f"Machine: **{machine['cpu']}**, {machine['cores']} cores, jax {machine['jax']}"
        f" ({machine['backend']}, {machine['devices']} host devices forced), {results['date']}."
        f" 1-min load average {machine['load_average_1min'][0]:.1f} →"
        f" {machine['load_average_1min'][1]:.1f} over the run.",
        "",
        f"The same global batch ({rows[0]['num_envs']} grids x {rows[0]['rollout_steps']} steps ="
        f" {rows[0]['batch_steps']:,} env-steps per update; the `default` preset's networks and"
        " epochs; ieee118, `normal`, DC) trained on meshes of 1, 2 and 4 devices: one update"
        " compiled, one untimed, then single updates timed (median). The forced host devices share"
        f" the machine's {machine['cores']} cores, so the rate cannot grow with them here: the"
        " table shows the sharded path runs, and what its collectives cost, not a speed-up"
        " (docs/scaling.md says what to expect on accelerators).",
        "",
        "| devices | grids per device | env-steps/s | ÷ 1 device | compile (s) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['devices']} | {row['grids_per_device']} | {row['env_steps_per_s']:,.0f} |"
            f" {row['env_steps_per_s'] / base:.2f} | {row['compile_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def render_memory(results: dict) -> str:
    m = results["memory"]
    total = m["argument_bytes"] + m["output_bytes"] + m["temp_bytes"]
    return (
        "\n".join(
            [
                f"Measured by benchmarks/scaling.py ({results['date']},"
                f" jax {results['machine']['jax']}, {results['machine']['backend']}): the"
                " `performance` preset's update with"
                f" {m['num_envs']:,} grids on one device, compiled on the state's shapes alone,"
                " XLA's `memory_analysis()`:",
                "",
                "| per 1,024 grids | MiB |",
                "|---|---|",
                f"| training state (arguments: grids' states and observations, parameters, Adam,"
                f" normalisers) | {m['argument_bytes'] / MIB:,.0f} |",
                f"| of which the parameters | {m['params_bytes'] / MIB:,.1f} |",
                f"| temporaries of one update (the {m['rollout_steps']}-step rollout kept for the"
                f" {m['epochs']} epochs, minibatches, activations, gradients) |"
                f" {m['temp_bytes'] / MIB:,.0f} |",
                "| the new state (outputs: as large as the arguments) |"
                f" {m['output_bytes'] / MIB:,.0f} |",
                f"| **together** | **{total / MIB:,.0f}** |",
                "",
                "Everything but the parameters, the optimiser state and the normalisers grows"
                " with the grids a device holds (`num_envs / devices`): a device holding 2,048"
                " grids needs"
                f" about {2 * total / MIB / 1024:,.1f} GiB, one holding 256 about"
                f" {total / 4 / MIB:,.0f} MiB. The update donates nothing (the input and output"
                " states are both live during the call: both are counted), and XLA on a GPU keeps"
                " its own workspace beside these figures (leave 10-20 % free). Measured on the"
                " CPU backend: a GPU's or TPU's compiler assigns buffers its own way, so take the"
                " figures as an estimate there, and check with a short run.",
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller batch, fewer repeats")
    parser.add_argument(
        "--render-only", action="store_true", help="re-render the docs sections from the JSON"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        results = json.loads(RESULTS_JSON.read_text())
    else:
        settings = QUICK if args.quick else FULL
        load_before = os.getloadavg()[0]
        rows = throughput(settings)
        used = memory()
        print("memory", used, flush=True)
        results = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpu": cpu_name(),
                "cores": os.cpu_count(),
                "platform": platform.platform(),
                "jax": jax.__version__,
                "backend": jax.default_backend(),
                "devices": jax.device_count(),
                "load_average_1min": [load_before, os.getloadavg()[0]],
            },
            "quick": args.quick,
            "settings": settings,
            "throughput": rows,
            "memory": used,
        }
    publish(results, RESULTS_JSON, DOCS_MD, "scaling", render(results))
    write_section(SCALING_MD, "memory", render_memory(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
