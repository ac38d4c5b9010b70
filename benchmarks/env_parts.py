"""Parts of the environment step timed alone: what the step could not do faster than, on this
machine, even if everything else in it cost nothing.

    python benchmarks/env_parts.py [--quick]    # prints JSON

`benchmarks/env.py` imports `parts_steps_per_second` to run it in the same run as the whole
step. Each part is one jitted, vmapped call on device-resident inputs of the env's own sizes,
timed like the step (calls in a loop, median of repeats):

- `observations`: writing the step's observations (every agent's and the world state: as many
  float32 per env-step as the env's observation spaces hold), as one broadcast, nothing computed;
- `base_flow`: the env's power flow of the base topology (`protection.solve_flows`, the solve
  most samples of a step need once); under AC warm-started from the solution of loads 1 % lower
  (about a 5-minute change), as the env's is from the last step's;
- `n1_screen`: the env's N-1 indicator on those flows (`protection.base_n1_secure_share`, the
  step's own call with every branch in).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial

import jax
import jax.numpy as jnp

import gridrl
from gridrl.env import protection
from gridrl.physics.dc import outages

QUICK = {"dc": (64,), "ac": (64,), "calls": 5, "repeats": 3}
FULL = {"dc": (1024, 4096), "ac": (1024,), "calls": 20, "repeats": 7}
LOAD_CHANGE = 1.01  # the AC warm start's loads are this much lower than the timed solve's


def _rate(function, args: tuple, batch: int, calls: int, repeats: int) -> float:
    jax.block_until_ready(function(*args))  # compile
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = function(*args)
        jax.block_until_ready(out)
        rates.append(batch * calls / (time.perf_counter() - start))
    return statistics.median(rates)


def parts_steps_per_second(env, state, calls: int, repeats: int) -> dict:
    """The parts' rates for `env` (a GridEnv or a wrapper of one) at the operating points of
    `state`, a batch of its states (the loads and dispatch of each sample)."""
    params, config = env.default_params, env.config
    n_obs = sum(env.observation_space(a).shape[0] for a in [*env.agents, "world_state"])
    batch = state.demand.shape[0]
    model = params.dc
    base = outages(model, model.usable, 0)

    def observations(pd):
        return jnp.broadcast_to(pd[:1], (n_obs,))

    def flow(pd, pg, vm, va):
        last = protection.LastSolve(jnp.zeros((), pd.dtype), vm=vm, va=va)
        return protection.solve_flows(params, config, base, pd, pg, last)

    solve = jax.jit(jax.vmap(flow))
    screen = jax.jit(jax.vmap(partial(protection.base_n1_secure_share, params)))
    start = solve(state.demand / LOAD_CHANGE, state.pg, state.vm, state.va)
    inputs = (state.demand, state.pg, start.vm, start.va)
    flows = solve(*inputs)
    rates = {
        "observations": _rate(
            jax.jit(jax.vmap(observations)), (state.demand,), batch, calls, repeats
        ),
        "base_flow": _rate(solve, inputs, batch, calls, repeats),
        "n1_screen": _rate(screen, (flows,), batch, calls, repeats),
    }
    return {
        "physics": config.physics,
        "batch": batch,
        "observation_floats": n_obs,
        "base_flow_converged_share": float(jnp.mean(flows.converged)),
        "env_steps_per_s": rates,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small batch, few calls")
    settings = QUICK if parser.parse_args(argv).quick else FULL
    for physics in ("dc", "ac"):
        env = gridrl.make("ieee118", scenario="normal", physics=physics)
        for batch in settings[physics]:
            keys = jax.random.split(jax.random.key(0), batch)
            _, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, env.default_params)
            row = parts_steps_per_second(env, state, settings["calls"], settings["repeats"])
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
