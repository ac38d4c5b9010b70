"""The Grid2Op anchor of the environment benchmark: env-steps per second of a Grid2Op environment
on a 118-bus dataset bundled with grid2op, stepped with the do-nothing action in one process.

    python benchmarks/env_grid2op.py [--quick]    # prints JSON

`benchmarks/env.py` imports `grid2op_steps_per_second` to run this side in the same run as
gridrl's. `WHAT_IS_TIMED` says exactly what a step costs here; it goes into the JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
import warnings
from typing import Any

import grid2op
import lightsim2grid
import numpy as np
from grid2op.Backend import PandaPowerBackend
from lightsim2grid import LightSimBackend

from gridrl.cases.grid2op import dataset_path

DEFAULT_DATASET = "rte_case118_example"  # no opponent, no thermal limits: no game over to time
BACKENDS = {"lightsim2grid": LightSimBackend, "pandapower": PandaPowerBackend}
WHAT_IS_TIMED = (
    "env.step(do_nothing) of a grid2op Environment, one process, one Python thread: reading the "
    "next row of the chronics (loads, productions, maintenance), the game rules and legality "
    "checks, the opponent where the dataset has one, one AC power flow by the backend "
    "(LightSim2Grid: Newton-Raphson with KLU in C++; pandapower: its runpp), overflow protection "
    "and the "
    "observation and reward. env.reset (a new scenario: chronics loaded, a power flow) after a "
    "game over is not timed; the resets are counted and their median time reported separately."
)


def _make_env(dataset: str, backend: str):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a folder path, never a name: grid2op.make downloads datasets it is given by name
        return grid2op.make(str(dataset_path(dataset)), backend=BACKENDS[backend]())


def _timed_reset(env) -> float:
    start = time.perf_counter()
    env.reset()
    return time.perf_counter() - start


def _clocks(env) -> np.ndarray:
    """Seconds spent so far (since the last reset) in the power flow as grid2op times it (its
    backend call) and, with LightSim2Grid, in the solver alone."""
    return np.array([env._time_powerflow, getattr(env.backend, "comp_time", np.nan)])


def _run(env, n_steps: int, do_nothing) -> tuple[np.ndarray, list[float]]:
    """[wall s, CPU s, power-flow s, solver s] of `n_steps` steps, and the durations of the
    resets between them."""
    resets, spent, steps = [], np.zeros(4), 0
    while steps < n_steps:
        clocks = _clocks(env)
        start, start_cpu = time.perf_counter(), time.process_time()
        done = False
        while not done and steps < n_steps:
            _, _, done, _ = env.step(do_nothing)
            steps += 1
        spent[:2] += time.perf_counter() - start, time.process_time() - start_cpu
        spent[2:] += _clocks(env) - clocks
        if done:
            resets.append(_timed_reset(env))
    return spent, resets


def grid2op_steps_per_second(
    dataset: str = DEFAULT_DATASET,
    n_steps: int = 2000,
    backend: str = "lightsim2grid",
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Median env-steps per second (wall and CPU time) of `repeats` runs of `n_steps` do-nothing
    steps, each run from a reset of the first scenario; see WHAT_IS_TIMED."""
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    start = time.perf_counter()
    env = _make_env(dataset, backend)
    make_s = time.perf_counter() - start
    env.seed(seed)
    do_nothing = env.action_space({})
    spent, resets = [], []
    for _ in range(repeats):
        env.set_id(0)
        resets.append(_timed_reset(env))
        seconds, within = _run(env, n_steps, do_nothing)
        spent.append(seconds)
        resets.extend(within)
    walls, cpus, powerflow, solver = np.array(spent).T
    result = {
        "dataset": dataset,
        "backend": backend,
        "backend_class": type(env.backend).__name__,
        "n_sub": int(env.n_sub),
        "n_line": int(env.n_line),
        "steps_per_repeat": n_steps,
        "repeats": repeats,
        "steps_per_s": n_steps / statistics.median(walls),
        "steps_per_cpu_s": n_steps / statistics.median(cpus),
        "steps_per_s_each": [n_steps / wall for wall in walls],
        "powerflow_share": float(np.median(powerflow / walls)),  # of the step's wall time
        "resets": len(resets),
        "resets_within_runs": len(resets) - repeats,
        "reset_s_median": statistics.median(resets),
        "make_s": make_s,
        "what_is_timed": WHAT_IS_TIMED,
        "versions": {
            "grid2op": grid2op.__version__,
            "lightsim2grid": lightsim2grid.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    if backend == "lightsim2grid":
        result["solver"] = str(env.backend._grid.get_solver_type())
        result["solver_share"] = float(np.median(solver / walls))
    env.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--dataset", default=DEFAULT_DATASET)
    args = parser.parse_args()
    lightsim_steps, pandapower_steps = (200, 10) if args.quick else (2000, 50)
    results = [
        grid2op_steps_per_second(args.dataset, lightsim_steps, "lightsim2grid"),
        grid2op_steps_per_second(args.dataset, pandapower_steps, "pandapower", repeats=1),
    ]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
