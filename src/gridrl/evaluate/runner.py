"""The evaluation runner: a policy over seeded episodes of each scenario (docs/evaluation.md).

    document = evaluate("do_nothing", "all", episodes=4, seed=0)
    write_json(document, "out.json")

A policy is a baseline's name, a path to a trained run or checkpoint, or any
`gridrl.agents.Policy`; the runner dispatches on its kind (`JaxPolicy` or `HostPolicy`) only.

Episode i of a run with seed S is reset with `jax.random.fold_in(jax.random.key(S), i)` and
stepped with keys derived from it alone, so every policy meets the same episodes (the same
days, noise and outages) and the cost gap to SCED is paired. The JSON records that episode as
the seed S·1000 + i (`episode_seeds`).

A JAX policy runs as one jitted function per (policy spec, scenario), its weights an argument:
`lax.scan` over the steps of the env's step vmapped over the episodes, per-step metrics reduced
to per-episode totals inside the scan. A host policy (SCED) is not jittable: its decisions loop
in Python around the same jitted, batched step.
"""

from __future__ import annotations

import datetime
import functools
import gc
import importlib
import os
import platform
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gridrl
from gridrl import io
from gridrl.agents import (
    HEURISTICS,
    PRETRAINED,
    HeuristicPolicy,
    HostPolicy,
    JaxPolicy,
    Policy,
    PolicySpec,
)
from gridrl.cases import Grid, load
from gridrl.env import SCENARIOS, GridEnv, exogenous, make
from gridrl.env.config import STEP_MINUTES
from gridrl.env.state import EnvParams
from gridrl.evaluate import metrics
from gridrl.evaluate.sced_policy import ScedBaseline
from gridrl.evaluate.schema import FORMAT
from gridrl.machine import cpu_name

SCED = "sced"
REFERENCE = ScedBaseline(SCED)  # the policy every cost gap is measured against
BASELINE_POLICIES: dict[str, Policy] = {n: HeuristicPolicy(n) for n in HEURISTICS}
BASELINE_POLICIES[SCED] = REFERENCE
BASELINES = tuple(BASELINE_POLICIES)
SEED_STRIDE = 1000  # episode i of seed S is recorded as S·SEED_STRIDE + i
SEED_LIMIT = 2**32  # jax.random.key keeps 32 bits: seed S + 2^32 would replay seed S's episodes
MAX_EPISODE_STEPS = 366 * 24 * 60 // STEP_MINUTES  # a year; the step counter is int32
PHYSICS = ("dc", "ac")


class EvaluationError(ValueError):
    """Bad input to an evaluation (unknown policy or scenario, bad counts)."""


class Rollout(NamedTuple):
    """What a rollout of a batch of episodes gives the summary."""

    totals: metrics.Totals  # per-episode sums
    trace: dict[str, np.ndarray]  # episode 0's `metrics.trace_row`s stacked over steps
    seconds: float  # wall time of the rollout, compilation excluded


# --- input checks --------------------------------------------------------------------------


def resolve_policy(policy: str | os.PathLike | Policy) -> Policy:
    """The `Policy` of a baseline's name, of an existing path (a training run's folder or
    `RUN_DIR/checkpoints/N`, loaded by `gridrl.agents.trained.load_policy`), or `policy` itself
    when it is one; a clear `EvaluationError` for anything else."""
    if isinstance(policy, str) and policy in BASELINE_POLICIES:
        return BASELINE_POLICIES[policy]
    if isinstance(policy, str) and policy == PRETRAINED:
        return _load_trained(PRETRAINED)
    if isinstance(policy, str | os.PathLike):
        if not Path(policy).exists():
            raise EvaluationError(
                f"unknown policy {str(policy)!r}: neither a baseline ({', '.join(BASELINES)}) "
                "nor an existing checkpoint path"
            )
        policy = _load_trained(Path(policy))
    return _checked(policy)


def _load_trained(path: Path | str) -> Policy:
    """The trained policy at `path`, or the shipped one for `PRETRAINED`."""
    try:  # imported here: the baselines never need the networks, flax or orbax
        trained = importlib.import_module("gridrl.agents.trained")
    except ImportError as error:
        what = (
            "the pretrained agents cannot be loaded"
            if path == PRETRAINED
            else f"{str(path)!r} is a path, but trained agents cannot be loaded"
        )
        raise EvaluationError(f"{what}: {error}") from error
    try:
        return trained.load_pretrained() if path == PRETRAINED else trained.load_policy(path)
    except (ValueError, OSError) as error:
        raise EvaluationError(f"cannot load the policy at {str(path)!r}: {error}") from error


def _checked(policy: object) -> Policy:
    """`policy` if it meets the Policy contract (gridrl.agents.policy) as far as can be seen
    before running it: a name, one of the two kinds, a hashable spec."""
    name = getattr(policy, "name", None)
    if not isinstance(name, str) or not name:
        raise EvaluationError(f"not a policy (no name): {policy!r}")
    if isinstance(policy, JaxPolicy):
        if not isinstance(policy.spec, PolicySpec):
            raise EvaluationError(f"policy {name!r}: its spec is not hashable or has no act(env)")
    elif not isinstance(policy, HostPolicy):
        raise EvaluationError(
            f"policy {name!r} is neither a JaxPolicy (spec, weights) nor a HostPolicy (stepper)"
        )
    elif not isinstance(policy, Hashable):  # its rollouts are cached on it
        raise EvaluationError(f"host policy {name!r} is not hashable")
    return policy


def resolve_policies(policies: str | Sequence[str | os.PathLike | Policy]) -> list[Policy]:
    """Every policy of a comma-separated list (or a sequence), all resolved before any runs:
    an empty entry, an unknown one or two with one name is an `EvaluationError`."""
    entries = [p.strip() for p in policies.split(",")] if isinstance(policies, str) else policies
    if not entries or any(isinstance(p, str) and not p for p in entries):
        raise EvaluationError(
            f"empty policy name in {policies!r}; baselines: {', '.join(BASELINES)}"
        )
    resolved = [resolve_policy(p) for p in entries]
    names = [p.name for p in resolved]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # their tables and JSON files could not be told apart
        raise EvaluationError(f"policy {', '.join(map(repr, twice))} given twice")
    return resolved


def resolve_scenarios(names: str | Sequence[str]) -> list[str]:
    """`"all"`, one scenario name, a comma-separated list or a sequence of names."""
    if isinstance(names, str):
        names = list(SCENARIOS) if names == "all" else [n.strip() for n in names.split(",")]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise EvaluationError(
            f"unknown scenario {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"known: {', '.join(SCENARIOS)} or 'all'"
        )
    return list(dict.fromkeys(names))


def check_counts(episodes: int, seed: int, episode_steps: int, physics: str) -> None:
    """The run's numbers, checked before any work; an `EvaluationError` naming the first bad one."""
    checks = [
        (1 <= episodes <= SEED_STRIDE, f"episodes must be in [1, {SEED_STRIDE}], got {episodes}"),
        (0 <= seed < SEED_LIMIT, f"seed must be in [0, 2^32), got {seed}"),
        (
            1 <= episode_steps <= MAX_EPISODE_STEPS,
            f"episode_steps must be in [1, {MAX_EPISODE_STEPS}] (a year), got {episode_steps}",
        ),
        (physics in PHYSICS, f"physics must be one of {PHYSICS}, got {physics!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise EvaluationError(message)


# --- episodes ------------------------------------------------------------------------------


def episode_keys(seed: int, n_episodes: int) -> jax.Array:
    """[n_episodes] keys: episode i is `fold_in(key(seed), i)`."""
    base = jax.random.key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(n_episodes))


def episode_seeds(seed: int, n_episodes: int) -> list[int]:
    return [seed * SEED_STRIDE + i for i in range(n_episodes)]


def episode_streams(keys: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(reset, env-step, policy) keys per episode: the env's randomness never depends on how
    much randomness a policy draws, so every policy meets the same episodes."""
    parts = jax.vmap(lambda k: jax.random.split(k, 3))(keys)
    return parts[:, 0], parts[:, 1], parts[:, 2]


def step_keys(base: jax.Array, step: jax.Array) -> jax.Array:
    """The keys of step `step` (1-based) for every episode, from its env-step (or policy) key."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(base, step)


def _advance(env: GridEnv, params: EnvParams, carry, step: jax.Array, actions, keys):
    """One batched env step; metrics accumulated; terminated episodes frozen."""
    obs, state, totals = carry
    new_obs, new_state, _, _, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        keys, state, actions, params
    )
    scenario = env.config.scenario

    def dark_demand(day, noise):  # what a dark grid fails to serve (noise held)
        demand, _ = exogenous.conditions(params, scenario, day, step, noise)
        return jnp.sum(jnp.maximum(demand, 0.0))

    dark = jax.vmap(dark_demand)(state.day, state.noise)
    live = ~totals.terminated

    def keep(new, old):
        return jnp.where(live.reshape(live.shape + (1,) * (new.ndim - 1)), new, old)

    carry = (
        jax.tree_util.tree_map(keep, new_obs, obs),
        jax.tree_util.tree_map(keep, new_state, state),
        metrics.accumulate(totals, info, dark),
    )
    return carry, metrics.trace_row(params, new_state, info)


# --- rollouts ------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("env", "spec"))
def jax_rollout(env: GridEnv, spec: PolicySpec, weights, keys: jax.Array, params: EnvParams):
    """(Totals, trace rows) of the JAX policy (`spec`, `weights`) over a batch of episodes (one
    per key), `env.config.episode_steps` steps each. Compiled once per (env, spec, batch):
    `weights` is an argument, so every set of weights of one spec shares the program."""
    act = jax.vmap(spec.act(env), in_axes=(None, 0, 0, 0, None))
    reset_keys, env_keys, policy_keys = episode_streams(keys)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)

    def body(carry, step):
        obs, state, _ = carry
        actions = act(weights, step_keys(policy_keys, step), obs, state, params)
        return _advance(env, params, carry, step, actions, step_keys(env_keys, step))

    initial = (obs, state, metrics.initial_totals(keys.shape[0]))
    steps = jnp.arange(1, env.config.episode_steps + 1)
    (_, _, totals), rows = jax.lax.scan(body, initial, steps)
    return totals, rows


def release_compiled() -> None:
    """Drop every compiled program of the process (the next evaluation compiles again). XLA's CPU
    code stays mapped while its program is cached, about 2,000 memory maps per scenario and
    policy: evaluating six policies on six scenarios in one process reached the kernel's limit
    (vm.max_map_count, 65,530) and crashed. Host rollouts (SCED's reference) are results, kept."""
    jax.clear_caches()
    gc.collect()


def run_jax_policy(env: GridEnv, policy: JaxPolicy, keys: jax.Array) -> Rollout:
    params = env.default_params
    # ahead-of-time compilation (traced and compiled once per env, spec, batch and weights'
    # shapes within a process), so the clock sees the run only
    compiled = jax_rollout.lower(env, policy.spec, policy.weights, keys, params).compile()
    start = time.perf_counter()
    totals, rows = jax.block_until_ready(compiled(policy.weights, keys, params))
    seconds = time.perf_counter() - start
    return Rollout(totals, {k: np.asarray(v) for k, v in rows.items()}, seconds)


_reset = jax.jit(
    lambda env, keys, params: jax.vmap(env.reset, in_axes=(0, None))(keys, params),
    static_argnames="env",
)
_step = jax.jit(_advance, static_argnames="env")


_HOST_ROLLOUTS: dict[tuple, Rollout] = {}


def host_rollout(
    env: GridEnv,
    policy: HostPolicy,
    seed: int,
    episodes: int,
    on_step: Callable[[], None] | None = None,
) -> Rollout:
    """A host policy on the episodes of `seed`, run once per process, environment and policy:
    evaluating several policies in one process pays for their SCED reference once."""
    index = (policy, env, seed, episodes)
    if index not in _HOST_ROLLOUTS:
        _HOST_ROLLOUTS[index] = run_host_policy(env, policy, episode_keys(seed, episodes), on_step)
    return _HOST_ROLLOUTS[index]


def run_host_policy(
    env: GridEnv, policy: HostPolicy, keys: jax.Array, on_step: Callable[[], None] | None = None
) -> Rollout:
    """A host policy over a batch of episodes: Python loop over steps, its decisions on the
    host, the env step jitted and batched. `on_step` is called after every step (a progress
    bar)."""
    params = env.default_params
    n = keys.shape[0]
    stepper = policy.stepper(env, n)
    reset_keys, env_keys, _ = episode_streams(keys)
    obs, state = _reset(env, reset_keys, params)
    carry = (obs, state, metrics.initial_totals(n))
    # compile before the clock starts: one step without decisions, its result discarded
    first = jnp.int32(1)
    hold = stepper(params, state, np.zeros(n, bool))
    jax.block_until_ready(_step(env, params, carry, first, hold, step_keys(env_keys, first)))
    rows = []
    seconds = 0.0
    for t in range(1, env.config.episode_steps + 1):
        start = time.perf_counter()
        step = jnp.int32(t)
        live = ~np.asarray(carry[2].terminated)
        actions = stepper(params, carry[1], live)
        carry, row = _step(env, params, carry, step, actions, step_keys(env_keys, step))
        jax.block_until_ready(carry)
        seconds += time.perf_counter() - start
        rows.append(row)
        if on_step is not None:
            on_step()
    stepper.warn_failures(env.config.scenario.name)
    trace = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
    return Rollout(carry[2], trace, seconds)


def policy_rollout(
    env: GridEnv,
    policy: Policy,
    seed: int,
    episodes: int,
    on_step: Callable[[], None] | None = None,
) -> Rollout:
    """`policy` on the episodes of `seed`, by its kind."""
    if isinstance(policy, HostPolicy):
        return host_rollout(env, policy, seed, episodes, on_step)
    return run_jax_policy(env, policy, episode_keys(seed, episodes))


# --- the evaluation ------------------------------------------------------------------------


def _machine() -> str:
    cores = f"{os.cpu_count()} cores"
    return f"{platform.platform()}; {cpu_name()}; {cores}; jax {jax.default_backend()}"


@functools.cache
def _grid(case: str) -> Grid:
    return load(case)


@functools.lru_cache(maxsize=32)
def environment(case: str, scenario: str, physics: str, episode_steps: int) -> GridEnv:
    """The environment of a scenario, built once per process: evaluations in one process (a
    notebook, the tests) then share its analysis and its compiled rollouts."""
    return make(_grid(case), scenario=scenario, physics=physics, episode_steps=episode_steps)


def evaluate_scenario(
    env: GridEnv,
    policy: Policy,
    episodes: int,
    seed: int,
    *,
    sced_reference: bool = True,
    on_step: Callable[[], None] | None = None,
) -> dict:
    """The JSON entry of one scenario (schema: `scenarios.<name>`). `on_step` is called after
    every step of a host policy's rollout (the evaluated one or the SCED reference)."""
    rollout = policy_rollout(env, policy, seed, episodes, on_step)
    config = env.config
    steps, voll = config.episode_steps, config.rewards.value_of_lost_load
    summary = metrics.summary(rollout.totals, steps, STEP_MINUTES, voll)
    if _is_reference(policy):
        gap = 0.0
    elif sced_reference:
        reference = host_rollout(env, REFERENCE, seed, episodes, on_step)
        sced_cost = metrics.summary(reference.totals, steps, STEP_MINUTES, voll)
        gap = (summary["operating_cost_per_hour"] - sced_cost["operating_cost_per_hour"]) / (
            sced_cost["operating_cost_per_hour"]
        )
    else:
        gap = None
    played = int(np.asarray(rollout.totals.steps_played)[0])
    trace = metrics.trace(rollout.trace, played, STEP_MINUTES, env.default_params.grid)
    per_episode = summary.pop("per_episode")
    generation = summary.pop("generation_cost_per_hour")
    return {
        "policy": policy.name,
        "episodes": episodes,
        "seeds": episode_seeds(seed, episodes),
        **summary,
        "cost_gap_vs_sced": gap,
        "decisions_per_second": episodes * steps / rollout.seconds,
        "generation_cost_per_hour": generation,
        "per_episode": per_episode,
        "trace": trace,
    }


def _is_reference(policy: Policy) -> bool:
    return isinstance(policy, HostPolicy) and policy == REFERENCE


def evaluate(
    policy: str | os.PathLike | Policy,
    scenarios: str | Sequence[str] = "all",
    *,
    episodes: int = 4,
    seed: int = 0,
    episode_steps: int = 288,
    physics: str = "dc",
    case: str = "ieee118",
    sced_reference: bool = True,
    progress=None,
) -> dict:
    """Run `policy` (a baseline's name, a trained run's path or a `gridrl.agents.Policy`, see
    `resolve_policy`) over `episodes` seeded episodes of each scenario; the evaluation document
    (schema in docs/evaluation.md). `progress`: a `rich.progress.Progress` that gets a bar per
    scenario, advanced by host rollouts (SCED)."""
    policy = resolve_policy(policy)
    names = resolve_scenarios(scenarios)
    check_counts(episodes, seed, episode_steps, physics)
    results = {}
    for name in names:
        env = environment(case, name, physics, episode_steps)
        runs = 1 + (sced_reference and not _is_reference(policy))
        on_step = None
        if progress is not None:
            task = progress.add_task(f"{name}", total=runs * episode_steps)
            on_step = lambda task=task: progress.advance(task)  # noqa: E731
        results[name] = evaluate_scenario(
            env, policy, episodes, seed, sced_reference=sced_reference, on_step=on_step
        )
        if progress is not None:
            progress.update(task, completed=runs * episode_steps)
    return {
        "format": FORMAT,
        "gridrl_version": gridrl.__version__,
        "policy": policy.name,
        "case": case,
        "physics": physics,
        "episode_steps": episode_steps,
        "step_minutes": STEP_MINUTES,
        "seed": seed,
        "episodes": episodes,
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": _machine(),
        "scenarios": results,
    }


def write_json(document: dict, path: str | Path) -> Path:
    """Write the evaluation document atomically (a temporary file renamed: never half-written);
    refuses NaN or infinity (the schema has none)."""
    return io.write_json(path, document)
