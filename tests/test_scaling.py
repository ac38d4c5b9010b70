"""The trainer on several devices and several processes is the trainer on one (docs/scaling.md).

Each test runs tests/scaling_worker.py in fresh interpreters (XLA_FLAGS and jax.distributed must
be set before jax starts) on the worker's tiny config (4 grids, 4-step rollouts, 2 updates, the
narrowest networks), compiled with most XLA optimisations off: a test's compile budget.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("scaling_worker.py")
TIMEOUT = 600


def run_worker(*args, env_extra=None) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu", **(env_extra or {}))
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> None:
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, output[-4000:]


def as_arrays(params: dict) -> dict:
    return {k: np.asarray(v) for k, v in params.items()}


@pytest.mark.slow
def test_four_devices_train_as_one_device_on_the_same_global_batch(tmp_path):
    finish(run_worker("devices", tmp_path))
    document = json.loads((tmp_path / "devices.json").read_text())
    four, one = document["runs"]["4"], document["runs"]["1"]
    assert (four["mesh"], one["mesh"]) == (4, 1)
    assert four["grids_per_device"] == [1] and one["grids_per_device"] == [4]
    start, p4, p1 = (as_arrays(r) for r in (one["initial"], four["params"], one["params"]))
    assert as_arrays(four["initial"]).keys() == start.keys()
    moved = max(np.max(np.abs(p1[k] - start[k])) for k in start)
    assert moved > 1e-3  # the updates changed the parameters: the comparison below means something
    for k in start:
        np.testing.assert_array_equal(as_arrays(four["initial"])[k], start[k])
        np.testing.assert_allclose(p4[k], p1[k], rtol=1e-4, atol=1e-5, err_msg=k)
    # the normalisers and the logged metrics are the global batch's on both
    np.testing.assert_allclose(four["obs_mean"], one["obs_mean"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(four["value_var"], one["value_var"], rtol=1e-4, atol=1e-6)
    for key, value in one["metrics"].items():
        np.testing.assert_allclose(
            np.asarray(four["metrics"][key], float),
            np.asarray(value, float),
            rtol=1e-3,
            atol=1e-5,
            err_msg=key,
        )
    # the command refuses what the devices cannot do, in one line, before writing anything
    refusals = document["refusals"]
    assert refusals["indivisible"]["status"] == 2 and not refusals["indivisible"]["wrote"]
    assert "num_envs=6 is not divisible by the 4 devices" in refusals["indivisible"]["output"]
    assert refusals["too_many"]["status"] == 2 and not refusals["too_many"]["wrote"]
    assert "--devices 5: this process has 4 CPU device(s)" in refusals["too_many"]["output"]
    for refusal in refusals.values():
        assert len(refusal["output"].strip().splitlines()) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_together_and_process_0_alone_writes(tmp_path):
    run_dir, port = tmp_path / "run", free_port()
    workers = [run_worker("process", tmp_path, run_dir, port, i) for i in range(2)]
    for worker in workers:
        finish(worker)
    zero, one = (json.loads((tmp_path / f"process-{i}.json").read_text()) for i in range(2))
    assert zero["processes"] == one["processes"] == 2 and zero["mesh"] == one["mesh"] == 2
    assert zero["local_grids"] == one["local_grids"] == [2]  # each steps its half of the grids
    assert zero["updates"] == one["updates"] == 2
    for k, v in zero["params"].items():
        np.testing.assert_array_equal(np.asarray(v), np.asarray(one["params"][k]), err_msg=k)
    # process 0 alone shows progress, evaluates (periodic and final), logs and checkpoints
    assert zero["calls"] == {"updates": [1, 2], "evaluations": 2}
    assert one["calls"] == {"updates": [], "evaluations": 0}
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "policy_loss" in r] == [16, 32]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["1", "2"]
    for step in ("1", "2"):
        stored = sorted(p.name for p in (run_dir / "checkpoints" / step / "state").iterdir())
        assert [name for name in stored if name.startswith("ocdbt.process_")] == ["ocdbt.process_0"]
    meta = json.loads((run_dir / "checkpoints" / "2" / "meta.json").read_text())
    assert meta["updates"] == 2
    assert len(list((run_dir / "tensorboard").iterdir())) == 1
