"""How hard each scenario is for an operator that does nothing (every action 0).

    python scripts/scenario_difficulty.py [--episodes 32] [--scenarios a,b] [--json out.json]

Each scenario runs N seeded episodes at once: `jax.vmap` over episodes, `lax.scan` over the
steps, `env.step` inside one jit. An episode stops counting at its first `done`. Per scenario it
reports survival (share of episodes without a blackout), the share of episodes that lose any
load, energy not served (MWh, mean and worst), overloaded branch-steps, trips, the largest number
of trips within one step (cascade size), the most branches out at once, and why the terminated
episodes ended (blackout by lost load or AC divergence, or cut at the solver's outage limit:
docs/env.md, "Termination"). The numbers in docs/env.md's
"Scenarios" section come from this script.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import gridrl
from gridrl.env import SCENARIOS
from gridrl.env.config import STEP_MINUTES

HOURS_PER_STEP = STEP_MINUTES / 60
CAUSES = ("lost_load", "outage_limit", "ac_diverged")


def termination_causes(config, info) -> jax.Array:
    """Bit i set when cause CAUSES[i] ends the episode at this step: a blackout by lost load or
    by AC divergence (terminated), or the solver's outage limit (truncated)."""
    causes = (
        info["blackout"]
        & (info["energy_not_served_mw"] > config.blackout_share * info["demand_mw"]),
        info["outage_limit"],
        info["blackout"] & ~info["converged"],
    )
    return sum(c.astype(jnp.int32) << i for i, c in enumerate(causes))


def do_nothing_rollouts(env, n_episodes: int, seed: int) -> dict[str, np.ndarray]:
    """Per-step metrics [n_episodes, episode_steps] of do-nothing episodes (0 after a done)."""
    params = env.default_params
    zeros = {a: jnp.zeros(env.action_space(a).shape, jnp.float32) for a in env.agents}

    def episode(key):
        k_reset, k_steps = jax.random.split(key)
        _, state = env.reset(k_reset, params)

        def body(carry, k):
            state, alive = carry
            _, state, _, dones, info = env.step(k, state, zeros, params)
            metrics = {
                "alive": alive,
                "ens_mw": info["energy_not_served_mw"],
                "demand_mw": info["demand_mw"],
                "lost_load_mw": info["lost_load_mw"],
                "auto_shed_mw": info["auto_shed_mw"],
                "overloaded": info["overloaded_branches"],
                "trips": info["line_trips"],
                "branches_out": info["branches_out"],
                "blackout": info["blackout"],
                "termination": termination_causes(env.config, info),
            }
            metrics = jax.tree_util.tree_map(
                lambda x: jnp.where(alive, x, jnp.zeros_like(x)), metrics
            )
            return (state, alive & ~dones["__all__"]), metrics

        steps = jax.random.split(k_steps, env.config.episode_steps)
        _, metrics = jax.lax.scan(body, (state, jnp.array(True)), steps)
        return metrics

    run = jax.jit(jax.vmap(episode))
    keys = jax.random.split(jax.random.key(seed), n_episodes)
    return {k: np.asarray(v) for k, v in jax.block_until_ready(run(keys)).items()}


def summarise(m: dict[str, np.ndarray]) -> dict:
    n = m["alive"].shape[0]
    ended = m["blackout"].any(axis=1)
    ens = m["ens_mw"].sum(axis=1) * HOURS_PER_STEP
    causes = m["termination"].max(axis=1)  # the code of the terminating step (0 = none)
    return {
        "episodes": n,
        "survival": float(np.mean(~ended)),
        "episodes_losing_load": float(np.mean(ens > 1e-3)),
        "ens_mwh_mean": float(ens.mean()),
        "ens_mwh_max": float(ens.max()),
        "demand_mwh_mean": float((m["demand_mw"].sum(axis=1) * HOURS_PER_STEP).mean()),
        "lost_in_islands_mwh_mean": float(m["lost_load_mw"].sum(axis=1).mean() * HOURS_PER_STEP),
        "auto_shed_mwh_mean": float(m["auto_shed_mw"].sum(axis=1).mean() * HOURS_PER_STEP),
        "overload_branch_steps_mean": float(m["overloaded"].sum(axis=1).mean()),
        "trips_mean": float(m["trips"].sum(axis=1).mean()),
        "max_cascade": int(m["trips"].max()),
        "max_branches_out": int(m["branches_out"].max()),
        "steps_played_mean": float(m["alive"].sum(axis=1).mean()),
        "ended_by": {c: int(np.sum(causes & (1 << i) > 0)) for i, c in enumerate(CAUSES)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--physics", default="dc", choices=("dc", "ac"))
    parser.add_argument("--json", help="write the summaries here")
    parser.add_argument("--option", action="append", default=[], help="EnvConfig field=value")
    args = parser.parse_args()
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    results = {}
    for name in args.scenarios.split(","):
        env = gridrl.make("ieee118", scenario=name, physics=args.physics, **options)
        start = time.perf_counter()
        summary = summarise(do_nothing_rollouts(env, args.episodes, args.seed))
        summary["seconds"] = round(time.perf_counter() - start, 1)
        results[name] = summary
        print(name, json.dumps(summary), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"physics": args.physics, "options": options, "results": results}, f, indent=1
            )


if __name__ == "__main__":
    main()
