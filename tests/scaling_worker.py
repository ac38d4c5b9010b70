"""The processes of tests/test_scaling.py (XLA_FLAGS and jax.distributed must be set before jax
starts, so each runs in a fresh interpreter).

    python tests/scaling_worker.py devices OUT_DIR
        4 forced host devices: the tiny config trained on a mesh of 4 and on a mesh of 1 from the
        same key; both states and the CLI's refusals written to OUT_DIR
    python tests/scaling_worker.py process OUT_DIR RUN_DIR PORT ID
        process ID of 2 joined on localhost:PORT, training RUN_DIR together; its final state and
        what it was asked to do (updates shown, evaluations) written to OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEVICES = 4
TINY = {  # the smallest trainer the config allows that still steps the grids and learns
    "scenario": "normal",
    "episode_steps": 6,
    "num_envs": 4,
    "rollout_steps": 4,
    "epochs": 2,
    "minibatches": 2,
    "hidden": 8,
    "token": 8,
    "heads": 1,
    "critic_hidden": 8,
    "log_std_init": 0.5,
    "lr": 3e-3,
    "total_steps": 4 * 4 * 2,  # 2 updates
    "checkpoint_every": 1,
    "keep_checkpoints": 5,
    "eval_every": 1,
    "seed": 11,
}


def config():
    from gridrl.train.config import preset

    return preset("quick").override(TINY)


def params_of(state) -> dict:
    import jax
    import numpy as np

    return {
        jax.tree_util.keystr(path): np.asarray(leaf).tolist()
        for path, leaf in jax.tree_util.tree_flatten_with_path(state.params)[0]
    }


def devices(out: Path) -> None:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={DEVICES}"
    import contextlib
    import io

    import jax
    import numpy as np

    jax.config.update("jax_disable_most_optimizations", True)  # compile time: a test's budget
    from gridrl.cli import main
    from gridrl.train import sharding
    from gridrl.train.ppo import Trainer

    assert jax.device_count() == DEVICES
    results = {}
    envs = None
    start = None
    for n in (1, DEVICES):
        trainer = Trainer(config(), envs, mesh=sharding.data_mesh(n))
        envs = trainer.envs
        if start is None:
            start = trainer.init(jax.random.key(5))
        else:  # the same initial state, placed on this mesh (one compilation of init fewer)
            start = jax.device_put(start, trainer.shardings)
        state, metrics = trainer.updates(start, 2)
        grid_shards = {len(s.data) for s in jax.tree.leaves(state.env_states)[0].addressable_shards}
        results[n] = {
            "initial": params_of(start),
            "params": params_of(state),
            "obs_mean": np.asarray(state.obs_norm.world.mean).tolist(),
            "value_var": np.asarray(state.value_norm.var).tolist(),
            "metrics": {k: np.asarray(v).tolist() for k, v in metrics.items()},
            "mesh": int(trainer.mesh.devices.size),
            "grids_per_device": sorted(grid_shards),
        }
    refusals = {}
    for name, args in {
        "indivisible": ["--devices", "4", "--set", "num_envs=6"],
        "too_many": ["--devices", "5"],
    }.items():
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            status = main(["train", "--out", str(out / name), *args])
        wrote = (out / name).exists()
        refusals[name] = {"status": status, "output": text.getvalue(), "wrote": wrote}
    (out / "devices.json").write_text(json.dumps({"runs": results, "refusals": refusals}))


def process(out: Path, run_dir: Path, port: int, process_id: int) -> None:
    import time

    import jax

    began = time.perf_counter()
    mark = lambda what: print(f"{what} {time.perf_counter() - began:.1f} s", flush=True)  # noqa: E731

    jax.config.update("jax_disable_most_optimizations", True)
    from gridrl.train import sharding
    from gridrl.train.ppo import trainer_for
    from gridrl.train.run import train_run

    assert sharding.initialize(f"localhost:{port}", 2, process_id)
    mesh = sharding.data_mesh()
    mark("initialised")
    calls = {"updates": [], "evaluations": 0}

    def on_update(update, total, env_steps, scalars):
        mark(f"update {update}")
        calls["updates"].append(update)

    def evaluate_policy(trainer, state):
        calls["evaluations"] += 1
        return {"scenarios": {}}

    result = train_run(
        config(), run_dir, on_update=on_update, evaluate_policy=evaluate_policy, mesh=mesh
    )
    mark("trained")
    document = {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "mesh": int(mesh.devices.size),
        "local_grids": [  # the grids this process steps: its devices' blocks
            len(s.data)
            for s in jax.tree.leaves(trainer_for(config(), mesh).init(jax.random.key(0)).obs)[
                0
            ].addressable_shards
        ],
        "params": params_of(result.state),
        "calls": calls,
        "updates": result.updates,
    }
    (out / f"process-{process_id}.json").write_text(json.dumps(document))


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "devices":
        devices(out)
    else:
        process(out, Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
