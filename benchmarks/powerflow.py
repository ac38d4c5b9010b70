"""Power-flow throughput of gridrl against LightSim2Grid and pandapower, side by side in one run.

    python benchmarks/powerflow.py [--quick]      # measure, write the JSON, render the Markdown
    python benchmarks/powerflow.py --render-only  # re-render docs/benchmarks.md from the JSON

Case: IEEE 118 (pandapower.networks.case118), in gridrl through `from_pandapower`, in
LightSim2Grid through its own pandapower converter (its pandapower-3 transformer model, which
matches pandapower to ~1e-11). Three workloads (`CASES`), the same samples for every solver.
This script measures; powerflow_report.py renders the Markdown section from the results (its
`WHAT_IS_TIMED` says what each figure measures, and is printed on the page).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import lightsim2grid
import numpy as np
import pandapower
import pandapower.networks
from lightsim2grid.algorithm import AlgorithmType
from lightsim2grid.network import init_from_pandapower
from lightsim2grid.scenarioSweep import ScenarioSweepCPP
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridrl.cases import Grid, from_pandapower
from gridrl.machine import cpu_name
from gridrl.physics import ac_model, ac_power_flow, dc_model, dc_power_flow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_page import publish, write_section  # sibling scripts, not a package
from powerflow_report import render_markdown

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "results" / "powerflow.json"
DOCS_MD = ROOT / "docs" / "benchmarks.md"

LOAD_SPREAD = 0.10  # each load scaled by a factor drawn uniformly in [1 - spread, 1 + spread]
MAX_OUTAGES = 3
# Tolerances on the largest |ΔP|, |ΔQ| mismatch, p.u. gridrl: its documented defaults (float32
# cannot go much below 1e-4). LightSim2Grid's NR takes 4 iterations on these samples for any tol
# from 1e-4 to 1e-10, so it runs tight and is the accuracy reference at no cost to its speed.
GRIDRL_AC_TOL = {"float32": 1e-4, "float64": 1e-10}
LIGHTSIM_TOL = 1e-8
LIGHTSIM_MAX_ITER = 10
SEED = 118

CASES = {
    "dc_all": "DC, all branches in",
    "dc_outages": f"DC, 1 to {MAX_OUTAGES} random branch outages per sample",
    "ac": "AC, random load scaling",
}
# Floors the project must meet, float32 on the benchmark machine (case, measured quantity, minimum).
FLOORS = [
    ("dc_all", "flows_per_s", 1_000_000),
    ("dc_outages", "flows_per_s", 200_000),
    ("ac", "ratio_solver", 2.0),
]


@dataclass(frozen=True)
class Settings:
    batch_sizes: tuple[int, ...]
    float64_batch_sizes: tuple[int, ...]
    repeats: int
    min_seconds: float  # each repeat loops calls until it lasts at least this long
    pandapower_calls: int


FULL = Settings((1, 64, 1024, 8192, 16384), (1024, 8192), 5, 0.2, 5)
QUICK = Settings((1, 64, 1024), (1024,), 3, 0.05, 3)


@dataclass(frozen=True)
class Case:
    """The 118-bus case as each solver sees it, and how their element orders line up."""

    net: object  # pandapower network
    grid: Grid  # float64, pandapower internal order
    load_rows: np.ndarray  # gridrl bus row of each pandapower load
    lightsim_bus: np.ndarray  # LightSim2Grid bus index of each gridrl bus row
    n_line: int  # branches are lines then transformers in all three solvers


@dataclass(frozen=True)
class Inputs:
    """A batch of samples in each solver's units and orders (MW, MVAr; True = branch out)."""

    load_p: np.ndarray  # [n, n_load]
    load_q: np.ndarray  # [n, n_load]
    pd: np.ndarray  # [n, n_bus]
    qd: np.ndarray  # [n, n_bus]
    outages: np.ndarray  # [n, n_branch] bool

    def head(self, n: int) -> Inputs:
        return Inputs(*(np.ascontiguousarray(a[:n]) for a in vars(self).values()))


@dataclass(frozen=True)
class Solution:
    """A batch of solved voltages in gridrl bus order (p.u.; rad, relative to the reference bus,
    since LightSim2Grid puts the slack at 0 where the case puts it at 30 degrees) and branch P at
    the from end (MW)."""

    vm: np.ndarray | None  # [n, n_bus]; None for DC (flat magnitudes)
    va: np.ndarray  # [n, n_bus]
    p_mw: np.ndarray  # [n, n_branch]
    converged: np.ndarray  # bool [n]


def solution(case: Case, vm, va, p_mw, converged) -> Solution:
    va = np.asarray(va, dtype=float)
    ref = case.grid.ref_bus
    return Solution(
        None if vm is None else np.asarray(vm, dtype=float),
        va - va[:, ref : ref + 1],
        np.asarray(p_mw, dtype=float),
        np.asarray(converged, dtype=bool),
    )


def load_case() -> Case:
    net = pandapower.networks.case118()
    grid = from_pandapower(net)
    row_of_bus = {bus_id: row for row, bus_id in enumerate(grid.bus_ids)}
    load_rows = np.array([row_of_bus[bus] for bus in net.load.bus], dtype=int)
    # LightSim2Grid numbers buses by position in net.bus (pandapower indices are 0..n-1 here)
    lightsim_bus = np.array([net.bus.index.get_loc(bus_id) for bus_id in grid.bus_ids])
    return Case(net, grid, load_rows, lightsim_bus, n_line=len(net.line))


def islands_the_grid(case: Case, out: np.ndarray) -> bool:
    keep = ~out
    f_bus, t_bus = np.asarray(case.grid.f_bus)[keep], np.asarray(case.grid.t_bus)[keep]
    n = case.grid.n_bus
    graph = coo_matrix((np.ones(len(f_bus)), (f_bus, t_bus)), shape=(n, n))
    return connected_components(graph, directed=False)[0] > 1


def draw_outages(case: Case, n: int, rng: np.random.Generator) -> np.ndarray:
    """1..MAX_OUTAGES distinct branches out per sample, redrawn while they island a bus."""
    outages = np.zeros((n, case.grid.n_branch), dtype=bool)
    for sample in range(n):
        while True:
            count = rng.integers(1, MAX_OUTAGES + 1)
            out = np.zeros(case.grid.n_branch, dtype=bool)
            out[rng.choice(case.grid.n_branch, size=count, replace=False)] = True
            if not islands_the_grid(case, out):
                break
        outages[sample] = out
    return outages


def draw_inputs(case: Case, n: int, seed: int) -> Inputs:
    rng = np.random.default_rng(seed)
    base_p = case.net.load.p_mw.to_numpy()
    base_q = case.net.load.q_mvar.to_numpy()
    scale = rng.uniform(1 - LOAD_SPREAD, 1 + LOAD_SPREAD, size=(n, len(base_p)))
    load_p, load_q = base_p * scale, base_q * scale
    # gridrl bus loads: the case's, plus each load's change added at its bus
    pd = np.tile(np.asarray(case.grid.pd, dtype=float), (n, 1))
    qd = np.tile(np.asarray(case.grid.qd, dtype=float), (n, 1))
    np.add.at(pd.T, case.load_rows, (load_p - base_p).T)
    np.add.at(qd.T, case.load_rows, (load_q - base_q).T)
    return Inputs(load_p, load_q, pd, qd, draw_outages(case, n, rng))


# --- timing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds per call in each repeat."""

    wall: list[float]
    cpu: list[float]  # CPU time of this process, all threads: robust to other users' load
    reported: list[float]  # what the solver reports itself (zeros where it reports nothing)


def loop_size(call: Callable[[], float | None], min_seconds: float) -> int:
    """Calls per repeat for a repeat to last about `min_seconds` (one untimed warm-up call)."""
    start = time.perf_counter()
    call()
    return max(1, int(np.ceil(min_seconds / max(time.perf_counter() - start, 1e-9))))


def interleaved_timings(
    calls: dict[str, Callable[[], float | None]], repeats: int, min_seconds: float
) -> dict[str, Timing]:
    """Time each call `repeats` times, the solvers taking turns within every repeat so that they
    share whatever load the machine has. A call runs once and returns the seconds its solver
    reports (or None)."""
    loops = {name: loop_size(call, min_seconds) for name, call in calls.items()}
    timings = {name: Timing([], [], []) for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            solver_seconds = 0.0
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(loops[name]):
                solver_seconds += call() or 0.0
            timings[name].wall.append((time.perf_counter() - start) / loops[name])
            timings[name].cpu.append((time.process_time() - start_cpu) / loops[name])
            timings[name].reported.append(solver_seconds / loops[name])
    return timings


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over repeats of a ratio of per-call times taken in the same repeat."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


# --- LightSim2Grid ------------------------------------------------------------------------------


def lightsim_grid(case: Case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN tap columns of case118 read as 0, as pandapower does
        return init_from_pandapower(case.net, pp_orig_file="pandapower_v3")


def lightsim_sweep(case: Case, gridmodel, kind: str, inputs: Inputs) -> ScenarioSweepCPP:
    """A single-thread batch of rows for one workload, ready to `compute`."""
    sweep = ScenarioSweepCPP(gridmodel)
    sweep.nb_thread = 1
    sweep.change_algorithm(AlgorithmType.NR_KLU if kind == "ac" else AlgorithmType.DC_KLU)
    sweep.modify_load_p(inputs.load_p)
    sweep.modify_load_q(inputs.load_q)
    if kind == "dc_outages":
        sweep.set_contingency_lines(np.ascontiguousarray(inputs.outages[:, : case.n_line]))
        sweep.set_contingency_trafos(np.ascontiguousarray(inputs.outages[:, case.n_line :]))
    return sweep


def run_lightsim(sweep: ScenarioSweepCPP, n_bus: int) -> float:
    sweep.compute(np.ones(n_bus, dtype=complex), LIGHTSIM_MAX_ITER, LIGHTSIM_TOL)
    sweep.compute_power_flows()
    return sweep.solver_time()


def lightsim_solution(case: Case, kind: str, sweep: ScenarioSweepCPP) -> Solution:
    voltages = sweep.get_voltages()[:, case.lightsim_bus]
    return solution(
        case,
        np.abs(voltages) if kind == "ac" else None,
        np.angle(voltages),
        sweep.compute_power_flows(),
        sweep.converged_mask(),
    )


# --- pandapower ---------------------------------------------------------------------------------


def run_pandapower(case: Case, kind: str, inputs: Inputs) -> tuple[list[float], Solution]:
    """Seconds of each call (one sample per call, default options) and the solutions."""
    net = copy.deepcopy(case.net)
    solve = pandapower.runpp if kind == "ac" else pandapower.rundcpp
    seconds, vm, va, p_mw, converged = [], [] if kind == "ac" else None, [], [], []
    for sample in range(len(inputs.load_p)):
        net.load.p_mw = inputs.load_p[sample]
        net.load.q_mvar = inputs.load_q[sample]
        if kind == "dc_outages":
            net.line.in_service = ~inputs.outages[sample, : case.n_line]
            net.trafo.in_service = ~inputs.outages[sample, case.n_line :]
        start = time.perf_counter()
        solve(net)
        seconds.append(time.perf_counter() - start)
        res_bus = net.res_bus.loc[list(case.grid.bus_ids)]
        if vm is not None:
            vm.append(res_bus.vm_pu.to_numpy())
        va.append(np.deg2rad(res_bus.va_degree.to_numpy()))
        # out-of-service branches read NaN in pandapower and 0 in the other two
        p_mw.append(np.nan_to_num(np.concatenate([net.res_line.p_from_mw, net.res_trafo.p_hv_mw])))
        converged.append(bool(net.converged))
    return seconds, solution(case, vm, va, p_mw, converged)


# --- gridrl -------------------------------------------------------------------------------------


def gridrl_solver(kind: str, precision: str) -> Callable:
    """The jitted workload: (grid, model, pd, qd, line_status) -> result pytree."""
    if kind == "ac":
        tol = GRIDRL_AC_TOL[precision]
        return jax.jit(
            lambda grid, model, pd, qd, status: ac_power_flow(
                grid, pd=pd, qd=qd, model=model, tol=tol
            )
        )
    if kind == "dc_all":
        return jax.jit(lambda grid, model, pd, qd, status: dc_power_flow(grid, pd=pd, model=model))
    # the plain call: its default max_outages is the fast path with the exact fallback
    return jax.jit(
        lambda grid, model, pd, qd, status: dc_power_flow(grid, status, pd=pd, model=model)
    )


def gridrl_arguments(case: Case, kind: str, inputs: Inputs, dtype) -> tuple[tuple, float]:
    """Device-resident arguments of the jitted workload, and the model's setup seconds."""
    grid = case.grid.astype(dtype)
    build_model = jax.jit(ac_model if kind == "ac" else dc_model)
    jax.block_until_ready(build_model(grid))  # compile outside the setup timing
    start = time.perf_counter()
    model = jax.block_until_ready(build_model(grid))
    setup = time.perf_counter() - start
    arrays = (inputs.pd, inputs.qd, ~inputs.outages)
    return (
        grid,
        model,
        *jax.device_put([jnp.asarray(a, a.dtype if a.dtype == bool else dtype) for a in arrays]),
    ), setup


def gridrl_solution(case: Case, result) -> Solution:
    """DC results carry no magnitudes and always solve."""
    va = np.asarray(result.va)
    converged = getattr(result, "converged", np.ones(va.shape[0], dtype=bool))
    return solution(case, getattr(result, "vm", None), va, result.pf, converged)


@dataclass(frozen=True)
class Prepared:
    """A compiled gridrl workload on its arguments, and its first result."""

    call: Callable[[], None]
    compile_s: float
    model_setup_s: float
    result: object


def prepare_gridrl(case: Case, kind: str, inputs: Inputs, precision: str) -> Prepared:
    arguments, setup = gridrl_arguments(case, kind, inputs, jnp.dtype(precision))
    start = time.perf_counter()
    compiled = gridrl_solver(kind, precision).lower(*arguments).compile()
    compile_seconds = time.perf_counter() - start
    result = jax.block_until_ready(compiled(*arguments))

    def call() -> None:
        jax.block_until_ready(compiled(*arguments))

    return Prepared(call, compile_seconds, setup, result)


def gridrl_row(prepared: Prepared, timing: Timing, batch: int) -> dict:
    result = prepared.result
    row = {
        "flows_per_s": batch / statistics.median(timing.wall),
        "flows_per_cpu_s": batch / statistics.median(timing.cpu),
        "seconds_per_call": statistics.median(timing.wall),
        "compile_s": prepared.compile_s,
        "model_setup_s": prepared.model_setup_s,
        "result_dtype": str(result.pf.dtype),
    }
    if hasattr(result, "iterations"):
        row["mean_iterations"] = float(np.mean(result.iterations))
        row["not_converged"] = int(np.sum(~np.asarray(result.converged)))
    return row


# --- accuracy -----------------------------------------------------------------------------------


def deviation(solution: Solution, reference: Solution) -> dict:
    """Largest differences over the samples both solved (no magnitudes for DC)."""
    both = solution.converged & reference.converged
    dvm = None if solution.vm is None else np.abs(solution.vm - reference.vm)[both]
    return {
        "samples": int(both.sum()),
        "max_abs_dvm_pu": None if dvm is None else float(np.max(dvm, initial=0.0)),
        "max_abs_dva_deg": float(
            np.rad2deg(np.max(np.abs(solution.va - reference.va)[both], initial=0.0))
        ),
        "max_abs_dp_mw": float(np.max(np.abs(solution.p_mw - reference.p_mw)[both], initial=0.0)),
    }


# --- the run ------------------------------------------------------------------------------------


def measure_batch(case: Case, gridmodel, kind: str, inputs: Inputs, settings: Settings) -> dict:
    """One batch size of one workload: LightSim2Grid and gridrl (float32, float64) on the same
    inputs, timed in turns; the deviations of gridrl from LightSim2Grid go under "accuracy"."""
    batch = len(inputs.pd)
    sweep = lightsim_sweep(case, gridmodel, kind, inputs)
    calls = {"lightsim": lambda: run_lightsim(sweep, case.grid.n_bus)}
    prepared = {}
    for precision, sizes in (
        ("float32", settings.batch_sizes),
        ("float64", settings.float64_batch_sizes),
    ):
        if batch in sizes:
            # float32 runs as the env runs it, x64 off, so nothing is silently promoted
            with jax.enable_x64(precision == "float64"):
                prepared[precision] = prepare_gridrl(case, kind, inputs, precision)
            calls[precision] = prepared[precision].call
    timings = interleaved_timings(calls, settings.repeats, settings.min_seconds)
    reference = lightsim_solution(case, kind, sweep)
    lightsim = timings["lightsim"]
    row: dict = {
        "batch": batch,
        "lightsim": {
            "algorithm": str(sweep.get_algo_type()),
            "flows_per_s_wall": batch / statistics.median(lightsim.wall),
            "flows_per_cpu_s": batch / statistics.median(lightsim.cpu),
            "flows_per_s_solver": batch / statistics.median(lightsim.reported),
            "mean_iterations": float(np.mean(sweep.get_row_nb_iter())),
            "not_converged": int(np.sum(~reference.converged)),
        },
        "accuracy": {},
    }
    for precision, ready in prepared.items():
        row[f"gridrl_{precision}"] = gridrl_row(ready, timings[precision], batch)
        solved = gridrl_solution(case, ready.result)
        row["accuracy"][precision] = deviation(solved, reference)
    gridrl = timings["float32"]
    row["ratio_wall"] = median_ratio(lightsim.wall, gridrl.wall)
    row["ratio_solver"] = median_ratio(lightsim.reported, gridrl.wall)
    row["ratio_cpu"] = median_ratio(lightsim.cpu, gridrl.cpu)
    return row


def measure_pandapower(case: Case, gridmodel, kind: str, inputs: Inputs) -> dict:
    seconds, solved = run_pandapower(case, kind, inputs)
    sweep = lightsim_sweep(case, gridmodel, kind, inputs)
    run_lightsim(sweep, case.grid.n_bus)
    per_call = statistics.median(seconds)
    return {
        "calls": len(seconds),
        "seconds_per_call": per_call,
        "flows_per_s": 1 / per_call,
        "deviation_from_lightsim": deviation(solved, lightsim_solution(case, kind, sweep)),
    }


def machine() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    # the run measures the working tree: say so if the physics differs from the commit
    uncommitted = git("status", "--porcelain", "--", "src/gridrl/physics").splitlines()
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "lightsim2grid": lightsim2grid.__version__,
        "pandapower": pandapower.__version__,
        "numpy": np.__version__,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "git_commit": commit,
        "uncommitted_physics_changes": [line.split()[-1] for line in uncommitted],
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def gemm_calibration(settings: Settings) -> dict:
    """What this machine gave XLA during the run: a float32 [16384, 118] x [118, 118] product,
    the core of a batched DC power flow, in GFLOP/s (wall and per CPU-second)."""
    rows, n = 16384, 118
    left = jax.random.normal(jax.random.PRNGKey(0), (rows, n), jnp.float32)
    right = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    product = jax.jit(jnp.matmul).lower(left, right).compile()

    def call() -> None:
        jax.block_until_ready(product(left, right))

    timing = interleaved_timings({"gemm": call}, settings.repeats, settings.min_seconds)["gemm"]
    flop = 2 * rows * n * n
    return {
        "shape": [rows, n, n],
        "gflop_per_s": flop / statistics.median(timing.wall) / 1e9,
        "gflop_per_cpu_s": flop / statistics.median(timing.cpu) / 1e9,
    }


def progress_line(kind: str, row: dict) -> str:
    measured = [
        f"{name} {row[key]['flows_per_s']:,.0f}/s"
        for name, key in (("gridrl f32", "gridrl_float32"), ("f64", "gridrl_float64"))
        if key in row
    ]
    lightsim = row["lightsim"]
    return (
        f"{kind:>10} batch {row['batch']:>6}: {', '.join(measured)}; LightSim2Grid"
        f" {lightsim['flows_per_s_wall']:,.0f}/s wall,"
        f" {lightsim['flows_per_s_solver']:,.0f}/s solver;"
        f" ratio {row['ratio_wall']:.2f} / {row['ratio_solver']:.2f}"
    )


def floors(cases: dict) -> list[dict]:
    """Each floor against the best batch size of its workload, gridrl in float32."""
    checked = []
    for kind, quantity, required in FLOORS:
        rows = cases[kind]["rows"]
        values = [
            row[quantity] if quantity in row else row["gridrl_float32"][quantity] for row in rows
        ]
        best = int(np.argmax(values))
        gridrl = rows[best]["gridrl_float32"]
        all_converged = gridrl.get("not_converged", 0) == 0
        checked.append(
            {
                "case": kind,
                "quantity": quantity,
                "required": required,
                "measured": values[best],
                "batch": rows[best]["batch"],
                "met": bool(values[best] >= required and all_converged),
                "accuracy_float32": rows[best]["accuracy"]["float32"],
            }
        )
    return checked


def run(settings: Settings, quick: bool) -> dict:
    machine_and_code = machine()  # before measuring: the commit of the code this run imported
    case = load_case()
    gridmodel = lightsim_grid(case)
    inputs = draw_inputs(case, max(settings.batch_sizes), SEED)
    gemm_at_start = gemm_calibration(settings)
    cases = {}
    for kind, title in CASES.items():
        rows = []
        for batch in settings.batch_sizes:
            rows.append(measure_batch(case, gridmodel, kind, inputs.head(batch), settings))
            print(progress_line(kind, rows[-1]), flush=True)
        pandapower_run = measure_pandapower(
            case, gridmodel, kind, inputs.head(settings.pandapower_calls)
        )
        cases[kind] = {"title": title, "rows": rows, "pandapower": pandapower_run}
    return {
        "machine": machine_and_code
        | {"xla_float32_gemm": [gemm_at_start, gemm_calibration(settings)]},
        "settings": {
            "quick": quick,
            "case": "pandapower.networks.case118",
            "n_bus": case.grid.n_bus,
            "n_branch": case.grid.n_branch,
            "batch_sizes": list(settings.batch_sizes),
            "float64_batch_sizes": list(settings.float64_batch_sizes),
            "repeats": settings.repeats,
            "min_seconds_per_repeat": settings.min_seconds,
            "load_spread": LOAD_SPREAD,
            "max_outages": MAX_OUTAGES,
            "seed": SEED,
            "gridrl_ac_tol_pu": GRIDRL_AC_TOL,
            "lightsim": {
                "tol_pu": LIGHTSIM_TOL,
                "max_iter": LIGHTSIM_MAX_ITER,
                "nb_thread": 1,
                "ac": "NR_KLU",
                "dc": "DC_KLU",
            },
        },
        "cases": cases,
        "floors": floors(cases),
    }


def write_outputs(results: dict) -> None:
    publish(results, RESULTS_JSON, DOCS_MD, "powerflow", render_markdown(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batches, fewer repeats")
    parser.add_argument(
        "--render-only", action="store_true", help="re-render the Markdown page from the JSON"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        if not RESULTS_JSON.exists():
            parser.error(f"no results to render: {RESULTS_JSON} does not exist")
        write_section(DOCS_MD, "powerflow", render_markdown(json.loads(RESULTS_JSON.read_text())))
        return 0
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pandapower")
    results = run(QUICK if args.quick else FULL, args.quick)
    write_outputs(results)
    for floor in results["floors"]:
        print(
            f"floor {floor['case']} {floor['quantity']} >= {floor['required']}:"
            f" {floor['measured']:.4g} {'met' if floor['met'] else 'NOT MET'}"
        )
    print(f"wrote {RESULTS_JSON.relative_to(ROOT)} and {DOCS_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
