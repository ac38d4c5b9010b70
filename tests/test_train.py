"""The trainer end to end on a tiny configuration: it learns, it is deterministic, it resumes
exactly, its checkpoints refuse to be misread, and `gridrl evaluate` runs what it trained.

Every test shares one configuration, so the trainer compiles once (`trainer_for` caches it);
the configuration is small (4 grids, 8-step rollouts, 16-step episodes, narrow networks) and
explores wildly (`log_std_init=0.5`): its first updates shed load and curtail at random, which
a learner must quickly stop doing — a large, reliable signal within a test's time.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gridrl.agents import checkpoint, learned
from gridrl.agents.trained import load_policy
from gridrl.cli import main
from gridrl.evaluate.runner import resolve_policy
from gridrl.train.config import preset
from gridrl.train.ppo import trainer_for
from gridrl.train.run import RunError, from_checkpoint, to_checkpoint, train_run

# orbax's reads leave a harmless "Event loop is closed" behind in its threads
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

TINY = {
    "scenario": "normal",
    "episode_steps": 16,
    "num_envs": 4,
    "rollout_steps": 8,
    "epochs": 2,
    "minibatches": 2,
    "hidden": 16,
    "token": 16,
    "critic_hidden": 32,
    "log_std_init": 0.5,
    "lr": 3e-3,
    "lr_schedule": "constant",  # the learning test runs past total_steps
    "total_steps": 4 * 8 * 6,  # 6 updates
    "checkpoint_every": 2,
    "keep_checkpoints": 2,
    "eval_every": 0,
    "eval_episodes": 2,
    "eval_episode_steps": 8,
    "seed": 11,
}
CONFIG = preset("quick").override(TINY)
SETS = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module")
def trainer():
    return trainer_for(CONFIG)


def leaves(tree) -> list[np.ndarray]:
    """Every leaf as a numpy array (PRNG keys as their data)."""

    def as_data(x):
        return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    return [np.asarray(as_data(x)) for x in jax.tree.leaves(tree)]


def test_trainer_improves_the_return(trainer):
    """Mean reward of the first updates against the last ones, on the same kind of days."""
    state = trainer.init(jax.random.key(3))
    rewards = []
    for _ in range(20):  # chunks of 2 updates: the compiled function every test shares
        state, metrics = trainer.updates(state, 2)
        rewards.extend(np.asarray(metrics["reward/strategic"]))
    rewards = np.asarray(rewards)
    first, last = rewards[:5].mean(), rewards[-5:].mean()
    assert np.all(np.isfinite(rewards))
    assert last > first + 0.5 * abs(first), (first, last)


def test_same_seed_same_parameters(trainer):
    one, _ = trainer.updates(trainer.init(jax.random.key(5)), 2)
    two, _ = trainer.updates(trainer.init(jax.random.key(5)), 2)
    other, _ = trainer.updates(trainer.init(jax.random.key(6)), 2)
    for a, b in zip(leaves(one.params), leaves(two.params), strict=True):
        np.testing.assert_array_equal(a, b)
    pairs = zip(leaves(one.params), leaves(other.params), strict=True)
    assert any(not np.array_equal(a, b) for a, b in pairs)


def final_state(run_dir: Path, trainer):
    target = to_checkpoint(trainer.init(jax.random.key(0)))
    saved, meta = checkpoint.restore(run_dir, target)
    return from_checkpoint(saved), meta


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, trainer):
    run_dir = tmp_path_factory.mktemp("runs") / "whole"
    result = train_run(CONFIG, run_dir)
    return run_dir, result


def test_a_run_writes_its_folder(uninterrupted):
    run_dir, result = uninterrupted
    assert result.updates == CONFIG.num_updates == 6
    assert json.loads((run_dir / "config.json").read_text()) == json.loads(CONFIG.to_json())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [CONFIG.batch_steps * u for u in range(1, 7)]
    assert {"policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"} <= set(rows[0])
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["4", "6"]
    assert list((run_dir / "tensorboard").iterdir())


def test_interrupted_and_resumed_run_ends_with_the_same_parameters(
    uninterrupted, tmp_path, trainer
):
    """A run whose last checkpoint is 4 of 6 (killed during the last chunk) resumes from it and
    ends with the uninterrupted run's parameters and log."""
    whole_dir, _ = uninterrupted
    run_dir = copy_run(whole_dir, tmp_path / "resumed")
    shutil.rmtree(run_dir / "checkpoints" / "6")
    (run_dir / "evaluation.json").unlink(missing_ok=True)
    assert checkpoint.latest(run_dir).name == "4"
    train_run(None, run_dir, resume=True)
    resumed, meta = final_state(run_dir, trainer)
    whole, _ = final_state(whole_dir, trainer)
    assert meta["updates"] == 6
    for a, b in zip(leaves(resumed), leaves(whole), strict=True):
        np.testing.assert_array_equal(a, b)
    # the resumed log holds each update once, as the uninterrupted one does
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [
        CONFIG.batch_steps * u for u in range(1, 7)
    ]


def test_a_new_run_refuses_a_folder_holding_a_run(uninterrupted):
    run_dir, _ = uninterrupted
    with pytest.raises(RunError, match="already holds a training run"):
        train_run(CONFIG, run_dir)


@pytest.mark.slow
def test_sigkill_then_resume_loses_at_most_one_interval(uninterrupted, tmp_path, trainer):
    """A real `gridrl train` process killed with SIGKILL once its first checkpoint exists, then
    resumed: the same parameters as the uninterrupted run."""
    whole_dir, _ = uninterrupted
    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "gridrl.cli", "train", "--out", str(run_dir), *SETS]
    # the same precision as this process (conftest turns x64 on), so that the runs compare exactly
    environment = {**os.environ, "JAX_ENABLE_X64": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment
    )
    try:
        deadline = time.monotonic() + 600
        while checkpoint_count(run_dir) == 0 and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    killed_at = int(checkpoint.latest(run_dir).name)
    assert killed_at < CONFIG.num_updates
    assert main(["train", "--resume", str(run_dir)]) == 0
    resumed, _ = final_state(run_dir, trainer)
    whole, _ = final_state(whole_dir, trainer)
    for a, b in zip(leaves(resumed), leaves(whole), strict=True):
        np.testing.assert_array_equal(a, b)


def checkpoint_count(run_dir: Path) -> int:
    folder = run_dir / "checkpoints"
    return sum(1 for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else 0


def copy_run(run_dir: Path, to: Path) -> Path:
    shutil.copytree(run_dir, to)
    return to


def test_resume_refuses_a_mismatched_config(uninterrupted, tmp_path, capsys):
    run_dir = copy_run(uninterrupted[0], tmp_path / "changed")
    config = json.loads((run_dir / "config.json").read_text())
    config["hidden"] = 32
    (run_dir / "config.json").write_text(json.dumps(config))
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(run_dir)]) == 2
    out = capsys.readouterr().out
    assert "meta.json" in out and "hidden" in out
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_resume_refuses_a_corrupt_checkpoint(uninterrupted, tmp_path, capsys):
    run_dir = copy_run(uninterrupted[0], tmp_path / "corrupt")
    data = max(
        (p for p in (run_dir / "checkpoints" / "6").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # truncated
    assert main(["train", "--resume", str(run_dir)]) == 2
    out = capsys.readouterr().out
    assert "checkpoints/6" in out.replace("\\", "/")


def test_evaluate_a_trained_run_end_to_end(uninterrupted, tmp_path, capsys):
    run_dir, _ = uninterrupted
    policy = load_policy(run_dir)
    assert policy.name == "whole@6"
    out = tmp_path / "eval.json"
    code = main([
        "evaluate", "--policy", str(run_dir), "--scenario", "normal", "--episodes", "2",
        "--episode-steps", "8", "--no-sced-reference", "--json", str(out),
    ])  # fmt: skip
    assert code == 0
    document = json.loads(out.read_text())
    result = document["scenarios"]["normal"]
    assert document["policy"] == "whole@6"
    assert result["episodes"] == 2 and np.isfinite(result["operating_cost_per_hour"])
    # the same checkpoint by its own path gives the same evaluation
    again = tmp_path / "again.json"
    main([
        "evaluate", "--policy", str(run_dir / "checkpoints" / "6"), "--scenario", "normal",
        "--episodes", "2", "--episode-steps", "8", "--no-sced-reference", "--json", str(again),
    ])  # fmt: skip
    assert (
        json.loads(again.read_text())["scenarios"]["normal"]["per_episode"] == result["per_episode"]
    )


def test_behaviour_cloning_fits_sced_and_then_acts_like_it(trainer):
    """The warm start: the clone's mean actions reproduce SCED's, in the agents' action space."""
    from gridrl.train.bc import demonstrations, warm_start

    state = trainer.init(jax.random.key(0))
    cloned, losses = warm_start(trainer, state, "sced")
    assert losses[-1] < 0.25 * losses[0], (losses[0], losses[-1])
    # on fresh episodes of SCED (another key), the clone is closer to SCED than the untrained agents
    demos = demonstrations(trainer, trainer.env, resolve_policy("sced"), jax.random.key(99))

    def distance(s):
        means = jax.vmap(
            lambda o: learned.policy(
                trainer.spec, trainer.network, s.params["actor"], s.obs_norm, o
            )[0]
        )(demos.obs)
        return float(
            sum(jnp.mean((jnp.tanh(m) - t) ** 2) for m, t in zip(means, demos.labels, strict=True))
        )

    assert distance(cloned) < 0.5 * distance(state)


def test_dagger_labels_the_states_the_clone_visits(trainer):
    """DAgger's rounds: the agents operate and SCED labels; what SCED leaves off is labelled -1."""
    from gridrl.train.bc import demonstrations

    sced, key = resolve_policy("sced"), jax.random.key(5)
    state = trainer.init(jax.random.key(0))  # untrained agents: they operate unlike SCED
    by_sced = demonstrations(trainer, trainer.env, sced, key)
    by_agents = demonstrations(trainer, trainer.env, sced, key, learner=state)
    steps = CONFIG.episode_steps
    first, last = (
        [np.asarray(d.obs["world_state"]).reshape(steps, -1)[t] for d in (by_sced, by_agents)]
        for t in (0, -1)
    )
    np.testing.assert_array_equal(*first)  # the same episodes
    assert not np.allclose(*last)  # driven apart by the agents
    # SCED never gates nor sheds on normal: every safety label is the far end of "none"
    safety = trainer.spec.groups.index("safety")
    for demos in (by_sced, by_agents):
        np.testing.assert_array_equal(np.asarray(demos.labels[safety]), -1.0)


def test_a_run_starts_from_another_runs_agents(uninterrupted, trainer, tmp_path):
    from gridrl.train.ppo import Trainer
    from gridrl.train.run import initial_agents

    run_dir, _ = uninterrupted
    config = CONFIG.override({"init_from": str(run_dir)})
    started = initial_agents(Trainer(config, trainer.envs), trainer.init(jax.random.key(3)))
    source = load_policy(run_dir).weights
    for ours, theirs in zip(
        leaves((started.params["actor"], started.obs_norm)),
        leaves((source["actor"], source["obs_norm"])),
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)
    # a source that is not a checkpoint is refused before anything is written
    missing = CONFIG.override({"init_from": str(tmp_path / "nowhere")})
    with pytest.raises(RunError, match=r"init_from .*nowhere"):
        train_run(missing, tmp_path / "new")
    assert not (tmp_path / "new" / "config.json").exists()
