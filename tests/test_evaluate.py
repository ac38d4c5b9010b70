"""gridrl.evaluate: the runner, its metrics, SCED as a policy and `gridrl evaluate`.

Every evaluation here is 2 episodes of 12 steps. The runner caches environments and compiled
rollouts per process, so the module compiles the do-nothing rollout of each scenario once and
SCED's step once; the CLI test and the repeated runs reuse them.
"""

import json
import math
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
import pytest

from gridrl.agents import encode
from gridrl.cli import main
from gridrl.env.config import STEP_MINUTES
from gridrl.env.dispatch import step_ramp
from gridrl.evaluate import metrics, runner
from gridrl.evaluate.runner import (
    BASELINES,
    EvaluationError,
    environment,
    episode_keys,
    episode_seeds,
    episode_streams,
    evaluate,
    resolve_policy,
    step_keys,
)
from gridrl.evaluate.schema import TRACE_SERIES

STEPS = 12
EPISODES = 2
SEED = 3
HOURS_PER_STEP = STEP_MINUTES / 60.0

TOP_KEYS = {
    "format", "gridrl_version", "policy", "case", "physics", "episode_steps", "step_minutes",
    "seed", "episodes", "created", "machine", "scenarios",
}  # fmt: skip
SCENARIO_KEYS = {
    "policy", "episodes", "seeds", "operating_cost_per_hour", "cost_gap_vs_sced",
    "energy_not_served_mwh", "curtailed_mwh", "overload_steps", "line_trips", "max_cascade_size",
    "survival_rate", "mean_steps_survived", "n1_secure_fraction", "decisions_per_second",
    "generation_cost_per_hour", "per_episode", "trace",
}  # fmt: skip
PER_EPISODE_KEYS = {
    "operating_cost_per_hour", "energy_not_served_mwh", "curtailed_mwh", "overload_steps",
    "line_trips", "steps_survived", "terminated",
}  # fmt: skip
TRACE_KEYS = {
    "episode", "time_h", "demand_mw", "wind_mw", "solar_mw", "renewable_available_mw",
    "generation_cost_per_hour", "energy_not_served_mw", "max_loading", "top_branches", "worst",
}  # fmt: skip
RUN_DEPENDENT = {"decisions_per_second"}  # wall-clock speed: the only number allowed to differ


def run(policy: str, scenario: str = "normal", seed: int = SEED, **options) -> dict:
    return evaluate(policy, scenario, episodes=EPISODES, seed=seed, episode_steps=STEPS, **options)


@pytest.fixture(scope="module")
def do_nothing():
    """do_nothing on `normal`, with SCED run on the same episodes for the cost gap."""
    return run("do_nothing")


@pytest.fixture(scope="module")
def sced():
    return run("sced")


def numbers(scenario_result: dict) -> dict:
    return {k: v for k, v in scenario_result.items() if k not in RUN_DEPENDENT}


@dataclass(frozen=True)
class RampSpec:
    """A test-defined JaxPolicy spec: every unit moves by `weights["ramp_share"]` of its
    one-step ramp (0: hold the schedule, as do_nothing). Records each trace of its act."""

    traces: ClassVar[list[str]] = []

    def act(self, env):
        RampSpec.traces.append(env.config.scenario.name)

        def act_fn(weights, key, obs, state, params):
            target = state.pg + weights["ramp_share"] * step_ramp(params)
            return encode(params, env.config, state.pg, target)

        return act_fn


@dataclass(frozen=True)
class RampPolicy:
    """A JaxPolicy as a trained agent will be one: a name, a static spec, weights."""

    name: str
    share: float
    spec: RampSpec = RampSpec()
    weights: Any = field(init=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "weights", {"ramp_share": jnp.asarray(self.share, jnp.float32)})


# --- the metrics alone (synthetic steps, no environment) ------------------------------------


def synthetic_info(
    ens, cost, blackout, trips, overloads=(0, 0), n1=(1.0, 1.0), outage_limit=(False, False)
) -> dict:
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return {
        "energy_not_served_mw": f32(ens),
        "operating_cost": f32(cost),
        "curtailed_mw": f32([5.0, 0.0]),
        "overloaded_branches": jnp.asarray(overloads, jnp.int32),
        "line_trips": jnp.asarray(trips, jnp.int32),
        "n1_secure": f32(n1),
        "blackout": jnp.asarray(blackout),
        "outage_limit": jnp.asarray(outage_limit),
    }


def test_totals_count_a_dark_grid_after_termination():
    """Episode 1 terminates at step 2: its later steps count their whole demand as not
    served and nothing else; episode 0 runs through."""
    totals = metrics.initial_totals(2)
    steps = [
        synthetic_info([0, 10], [100, 200], [False, False], [0, 1], overloads=(0, 2)),
        synthetic_info([0, 900], [100, 50], [False, True], [0, 4], n1=(1.0, 0.5)),
        synthetic_info([3, 7], [100, 999], [False, False], [2, 9], overloads=(1, 9)),
    ]
    dark = jnp.asarray([1000.0, 1500.0], jnp.float32)
    for info in steps:
        totals = metrics.accumulate(totals, info, dark)
    np.testing.assert_array_equal(totals.terminated, [False, True])
    np.testing.assert_array_equal(totals.steps_played, [3, 2])
    np.testing.assert_array_equal(totals.steps_survived, [3, 1])
    np.testing.assert_allclose(totals.generation_cost, [300, 250])
    np.testing.assert_allclose(totals.not_served, [3, 10 + 900 + 1500])
    np.testing.assert_allclose(totals.curtailed, [15, 0])
    np.testing.assert_array_equal(totals.overload_steps, [1, 2])
    np.testing.assert_array_equal(totals.line_trips, [2, 5])
    np.testing.assert_array_equal(totals.max_cascade, [2, 4])
    np.testing.assert_allclose(totals.n1_secure, [3.0, 1.5])
    voll = 10_000.0
    summary = metrics.summary(totals, 3, STEP_MINUTES, voll)
    assert summary["survival_rate"] == 0.5
    assert summary["mean_steps_survived"] == 2.0
    assert summary["max_cascade_size"] == 4
    assert summary["n1_secure_fraction"] == pytest.approx(4.5 / 5)
    episode_costs = summary["per_episode"]["operating_cost_per_hour"]
    assert episode_costs == pytest.approx([(300 + voll * 3) / 3, (250 + voll * 2410) / 3])
    assert summary["energy_not_served_mwh"] == pytest.approx((3 + 2410) / 2 * HOURS_PER_STEP)


def test_a_cascade_beyond_the_outage_depth_counts_as_a_collapse():
    """The env truncates an episode with more than max_outages branches out (unsimulated);
    the evaluation counts it as terminated, the grid dark from the next step."""
    totals = metrics.initial_totals(2)
    steps = [
        synthetic_info([0, 0], [100, 100], [False, False], [0, 7], outage_limit=(False, True)),
        synthetic_info([0, 0], [100, 100], [False, False], [0, 0]),
    ]
    for info in steps:
        totals = metrics.accumulate(totals, info, jnp.asarray([800.0, 900.0], jnp.float32))
    np.testing.assert_array_equal(totals.terminated, [False, True])
    np.testing.assert_array_equal(totals.steps_survived, [2, 0])
    np.testing.assert_allclose(totals.not_served, [0, 900])
    np.testing.assert_array_equal(totals.max_cascade, [0, 7])


# --- the runner on the environment -----------------------------------------------------------


def test_same_seed_same_numbers(do_nothing):
    again = run("do_nothing")
    assert numbers(again["scenarios"]["normal"]) == numbers(do_nothing["scenarios"]["normal"])
    other = run("do_nothing", seed=SEED + 1, sced_reference=False)
    assert other["scenarios"]["normal"]["trace"] != do_nothing["scenarios"]["normal"]["trace"]


def test_policies_meet_the_same_episodes(do_nothing, sced):
    ours, theirs = do_nothing["scenarios"]["normal"], sced["scenarios"]["normal"]
    assert ours["seeds"] == theirs["seeds"] == episode_seeds(SEED, EPISODES)
    # equal to float32 rounding: the two runs are different XLA programs (a scan, a step)
    for series in ("demand_mw", "renewable_available_mw"):
        assert ours["trace"][series] == pytest.approx(theirs["trace"][series], rel=1e-6)
    # ... while they operate them differently
    assert ours["trace"]["generation_cost_per_hour"] != theirs["trace"]["generation_cost_per_hour"]


def test_metrics_match_a_hand_rollout(do_nothing, normal_env, normal_fns):
    """Step the environment by hand with the runner's keys and all-zero actions; the JSON's
    numbers are the sums of `info` (MW x 5/60 for energy).

    The hand rollout uses the session's compiled batched reset and step (conftest.py) of an
    environment configured as the runner's, with the runner's params; their batch holds the
    runner's episodes repeated, of which the first EPISODES rows are compared."""
    env = environment("ieee118", "normal", "dc", STEPS)
    assert normal_env.config == env.config
    params = env.default_params
    repeat, rest = divmod(normal_fns.batch, EPISODES)
    assert rest == 0
    reset_keys, env_keys, _ = (
        jnp.concatenate([k] * repeat) for k in episode_streams(episode_keys(SEED, EPISODES))
    )
    _, state = normal_fns.reset(reset_keys, params)
    shapes = {a: (normal_fns.batch, *env.action_space(a).shape) for a in env.agents}
    zeros = {a: jnp.zeros(shape, jnp.float32) for a, shape in shapes.items()}
    infos = []
    for t in range(1, STEPS + 1):
        keys = step_keys(env_keys, jnp.int32(t))
        _, state, _, _, info = normal_fns.step(keys, state, zeros, params)
        infos.append({k: v[:EPISODES] for k, v in info.items()})
    total = {k: np.sum([np.asarray(i[k], float) for i in infos], axis=0) for k in infos[0]}
    assert not np.any(total["blackout"])
    voll = env.config.rewards.value_of_lost_load
    result = do_nothing["scenarios"]["normal"]
    per_episode = result["per_episode"]
    assert per_episode["energy_not_served_mwh"] == pytest.approx(
        total["energy_not_served_mw"] * HOURS_PER_STEP, rel=1e-5, abs=1e-6
    )
    assert per_episode["curtailed_mwh"] == pytest.approx(
        total["curtailed_mw"] * HOURS_PER_STEP, rel=1e-5, abs=1e-6
    )
    cost = (total["operating_cost"] + voll * total["energy_not_served_mw"]) / STEPS
    assert per_episode["operating_cost_per_hour"] == pytest.approx(cost, rel=1e-5)
    assert per_episode["overload_steps"] == list(total["overloaded_branches"].astype(int))
    assert per_episode["line_trips"] == list(total["line_trips"].astype(int))
    assert result["n1_secure_fraction"] == pytest.approx(np.mean(total["n1_secure"]) / STEPS)
    trace = result["trace"]
    assert trace["demand_mw"] == pytest.approx([float(i["demand_mw"][0]) for i in infos])
    assert trace["max_loading"] == pytest.approx([float(i["max_loading"][0]) for i in infos])
    worst = trace["worst"]
    assert max(worst["loading"]) == pytest.approx(max(trace["max_loading"]), rel=1e-6)
    assert trace["max_loading"][worst["step"] - 1] == max(trace["max_loading"])


def test_sced_normal_floor(sced, do_nothing):
    """SCED on `normal`: no overload, no energy not served, every episode survives, and it is
    cheaper than holding the schedule on the same episodes."""
    result = sced["scenarios"]["normal"]
    assert result["overload_steps"] == 0
    assert result["energy_not_served_mwh"] == 0
    assert result["survival_rate"] == 1.0
    assert result["cost_gap_vs_sced"] == 0.0
    assert max(result["trace"]["max_loading"]) <= 1.0
    gap = do_nothing["scenarios"]["normal"]["cost_gap_vs_sced"]
    sced_cost = result["operating_cost_per_hour"]
    ours = do_nothing["scenarios"]["normal"]["operating_cost_per_hour"]
    assert gap == pytest.approx((ours - sced_cost) / sced_cost)
    assert gap > 0


def test_json_follows_the_schema(do_nothing, tmp_path):
    assert set(do_nothing) == TOP_KEYS
    assert do_nothing["format"] == "gridrl-evaluation/1"
    result = do_nothing["scenarios"]["normal"]
    assert set(result) == SCENARIO_KEYS
    assert set(result["per_episode"]) == PER_EPISODE_KEYS
    assert all(len(v) == EPISODES for v in result["per_episode"].values())
    trace = result["trace"]
    assert set(trace) == TRACE_KEYS
    n_branch = environment("ieee118", "normal", "dc", STEPS).default_params.grid.n_branch
    assert all(len(trace[k]) == STEPS for k in TRACE_SERIES)
    assert trace["time_h"][-1] == pytest.approx(STEPS * HOURS_PER_STEP)
    top = trace["top_branches"]
    assert len(top["index"]) == len(top["label"]) == len(top["loading"]) == metrics.TOP_BRANCHES
    assert all(len(series) == STEPS for series in top["loading"])
    assert len(trace["worst"]["loading"]) == len(trace["worst"]["in_service"]) == n_branch
    text = json.dumps(do_nothing, allow_nan=False)  # plain JSON, no NaN
    assert json.loads(text) == do_nothing
    values = [result[k] for k in SCENARIO_KEYS - {"per_episode", "trace", "policy", "seeds"}]
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def test_cli_end_to_end(do_nothing, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # the whole summary table on one line per scenario
    path = tmp_path / "eval.json"
    argv = ["evaluate", "--policy", "do_nothing", "--scenario", "normal", "--json", str(path)]
    argv += ["--episodes", str(EPISODES), "--seed", str(SEED), "--episode-steps", str(STEPS)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "do_nothing" in out and "normal" in out and "cost ($/h)" in out
    written = json.loads(path.read_text())
    assert numbers(written["scenarios"]["normal"]) == numbers(do_nothing["scenarios"]["normal"])
    assert main([*argv, "--no-sced-reference"]) == 0
    assert json.loads(path.read_text())["scenarios"]["normal"]["cost_gap_vs_sced"] is None


def test_a_policy_object_runs_with_its_weights_as_an_argument(do_nothing):
    """A test-defined JAX policy through `evaluate`: with weights 0 it is do_nothing to the last
    bit; other weights change the operation but reuse the compiled rollout (no new trace)."""
    held = run(RampPolicy("ramp_0", 0.0))
    assert held["policy"] == held["scenarios"]["normal"]["policy"] == "ramp_0"
    ours, reference = held["scenarios"]["normal"], do_nothing["scenarios"]["normal"]
    assert numbers(ours) | {"policy": "do_nothing"} == numbers(reference)
    traces = len(RampSpec.traces)
    assert traces >= 1
    raised = run(RampPolicy("ramp_up", 0.5))["scenarios"]["normal"]
    assert len(RampSpec.traces) == traces  # the same program, other weights
    assert raised["trace"]["generation_cost_per_hour"] != ours["trace"]["generation_cost_per_hour"]
    assert raised["cost_gap_vs_sced"] != ours["cost_gap_vs_sced"]


def fake_trained(monkeypatch, load_policy) -> None:
    """`gridrl.agents.trained` replaced by a module whose `load_policy` is `load_policy` (its
    `TrainedPolicy` class kept: the CLI asks each policy whether it is one)."""
    from gridrl.agents.trained import TrainedPolicy

    module = types.ModuleType("gridrl.agents.trained")
    module.load_policy = load_policy
    module.TrainedPolicy = TrainedPolicy
    monkeypatch.setitem(sys.modules, "gridrl.agents.trained", module)


def test_a_trained_run_loads_by_its_path(tmp_path, monkeypatch, capsys):
    """A path goes to `gridrl.agents.trained.load_policy`; its policy's name names the JSON."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    loaded = []

    def load_policy(path):
        loaded.append(Path(path))
        if not Path(path).is_dir():
            raise ValueError("no checkpoints/ folder")
        return RampPolicy(f"{Path(path).name}@5", 0.25)

    fake_trained(monkeypatch, load_policy)
    released = []  # between policies the CLI drops the compiled programs (not here: shared)
    monkeypatch.setattr(runner, "release_compiled", lambda: released.append(True))
    assert resolve_policy(str(run_dir)) == RampPolicy("run@5", 0.25)
    out = tmp_path / "{policy}.json"
    argv = ["evaluate", "--policy", f"do_nothing,{run_dir}", "--scenario", "normal"]
    argv += ["--json", str(out), "--episodes", str(EPISODES), "--seed", str(SEED)]
    argv += ["--episode-steps", str(STEPS), "--no-sced-reference"]
    assert main(argv) == 0
    written = json.loads((tmp_path / "run@5.json").read_text())
    assert written["policy"] == written["scenarios"]["normal"]["policy"] == "run@5"
    assert json.loads((tmp_path / "do_nothing.json").read_text())["policy"] == "do_nothing"
    assert released == [True]
    not_a_run = tmp_path / "agent.ckpt"
    not_a_run.write_text("")
    with pytest.raises(
        EvaluationError, match=r"cannot load the policy at .*agent.ckpt.*checkpoints"
    ):
        evaluate(str(not_a_run), "normal")
    capsys.readouterr()
    assert main(["evaluate", "--policy", f"{not_a_run},do_nothing", "--scenario", "normal"]) == 2
    assert "no checkpoints/ folder" in capsys.readouterr().out
    assert loaded == [run_dir, run_dir, not_a_run, not_a_run]


def test_what_is_not_a_policy_is_a_clear_error():
    with pytest.raises(EvaluationError, match="neither a JaxPolicy"):
        evaluate(types.SimpleNamespace(name="half"), "normal")
    with pytest.raises(EvaluationError, match="no name"):
        evaluate(types.SimpleNamespace(spec=RampSpec(), weights=None), "normal")


# --- bad input -------------------------------------------------------------------------------


def test_errors(tmp_path, capsys, monkeypatch):
    with pytest.raises(EvaluationError, match=r"unknown policy 'greedy'.*do_nothing.*sced"):
        evaluate("greedy", "normal")
    checkpoint = tmp_path / "agent.ckpt"
    checkpoint.write_text("")
    monkeypatch.setitem(sys.modules, "gridrl.agents.trained", None)  # as if it did not exist
    with pytest.raises(EvaluationError, match="is a path, but trained agents cannot be loaded"):
        evaluate(str(checkpoint), "normal")
    with pytest.raises(EvaluationError, match=r"unknown scenario 'calm'.*peak_demand"):
        evaluate("sced", "normal,calm")
    with pytest.raises(EvaluationError, match="episodes must be"):
        evaluate("sced", "normal", episodes=0)
    with pytest.raises(EvaluationError, match="physics must be"):
        evaluate("sced", "normal", physics="quantum")
    assert set(BASELINES) >= {"do_nothing", "proportional", "emergency", "sced"}
    assert main(["evaluate", "--policy", "greedy", "--scenario", "normal"]) == 2
    assert "unknown policy 'greedy'" in capsys.readouterr().out
    assert main(["evaluate", "--policy", "sced", "--scenario", "calm"]) == 2
    assert "unknown scenario 'calm'" in capsys.readouterr().out
