"""The Markdown section "powerflow" of docs/benchmarks.md, rendered from the results of
benchmarks/powerflow.py (its JSON, benchmarks/results/powerflow.json): what each figure times, the
floors, and per workload the throughput table, the iterations and the accuracy table."""

from __future__ import annotations

WHAT_IS_TIMED = """\
- **gridrl**: one jitted call, from device-resident inputs to the whole result pytree, waited for
  with `block_until_ready`. The per-grid precomputation (`dc_model` / `ac_model`) is done once per
  grid outside the timed call, as an environment does it once per episode (its time is given as
  *setup*). Compilation is timed apart (`lower(...).compile()`), once per batch size.
- **LightSim2Grid**: `ScenarioSweepCPP` on one thread (`nb_thread = 1`), one row per sample, NR with
  KLU (AC) or its KLU DC solver, flat start, tol 1e-8 p.u.: *wall* is `compute()` plus
  `compute_power_flows()` as seen from Python; *solver* is the time LightSim2Grid reports spending
  in its solver only (`solver_time()`). gridrl / LightSim2Grid ratios are given against both; the
  AC floor uses the solver-only figure, the harder one to beat.
- **pandapower**: the wall time of one `rundcpp` / `runpp` call, default options, one sample a call.
- Every figure is the median of several repeats after a warm-up call; a repeat loops enough calls
  to last a minimum time, and the solvers take turns within each repeat, so that they share the
  machine's load; a ratio is the median of the per-repeat ratios. gridrl uses every core XLA
  sees; LightSim2Grid one.
- *per CPU-s*: flows per second of CPU time the process used (all its threads), the ratio of the
  two solvers' efficiencies. It is what other users' load on a shared machine disturbs least, and
  it does not credit gridrl for using more cores than LightSim2Grid.
- Accuracy: the largest difference between gridrl and LightSim2Grid over all samples of the same
  batch (the largest batch measured in each precision), angles relative to the reference bus.
"""


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def optional(row: dict, precision: str, field: str) -> str:
    measured = row.get(f"gridrl_{precision}")
    return fmt(measured[field]) if measured else "–"


def deviation_cells(compared: str, acc: dict) -> list[str]:
    dvm = acc["max_abs_dvm_pu"]
    return [
        compared,
        str(acc["samples"]),
        "–" if dvm is None else f"{dvm:.2e}",
        f"{acc['max_abs_dva_deg']:.2e}",
        f"{acc['max_abs_dp_mw']:.2e}",
    ]


def accuracy_rows(case: dict) -> list[list[str]]:
    """gridrl on the largest batch of each precision, then pandapower, each vs LightSim2Grid."""
    largest = {}
    for row in case["rows"]:
        largest.update(row["accuracy"])
    rows = [deviation_cells(f"gridrl {p} vs LightSim2Grid", acc) for p, acc in largest.items()]
    pandapower_acc = case["pandapower"]["deviation_from_lightsim"]
    return [*rows, deviation_cells("pandapower vs LightSim2Grid", pandapower_acc)]


def case_section(case: dict) -> list[str]:
    header = [
        "batch",
        "gridrl f32 flows/s",
        "gridrl f64 flows/s",
        "LightSim2Grid flows/s (wall)",
        "LightSim2Grid flows/s (solver)",
        "f32 / LS wall",
        "f32 / LS solver",
        "f32 / LS per CPU-s",
        "f32 compile (s)",
    ]
    rows = [
        [
            str(row["batch"]),
            optional(row, "float32", "flows_per_s"),
            optional(row, "float64", "flows_per_s"),
            fmt(row["lightsim"]["flows_per_s_wall"]),
            fmt(row["lightsim"]["flows_per_s_solver"]),
            f"{row['ratio_wall']:.2f}",
            f"{row['ratio_solver']:.2f}",
            f"{row['ratio_cpu']:.2f}",
            optional(row, "float32", "compile_s"),
        ]
        for row in case["rows"]
    ]
    pp = case["pandapower"]
    first = case["rows"][0]["gridrl_float32"]
    notes = [
        f"pandapower: {1000 * pp['seconds_per_call']:.1f} ms per call"
        f" ({fmt(pp['flows_per_s'])} flows/s, median of {pp['calls']} calls)."
        " gridrl setup (`model`, float32):"
        f" {1000 * first['model_setup_s']:.2f} ms.",
    ]
    if "mean_iterations" in first:
        last = case["rows"][-1]
        gridrl = last["gridrl_float32"]
        notes.append(
            f"Iterations at batch {last['batch']}: gridrl float32 {gridrl['mean_iterations']:.2f}"
            f" (mean; {gridrl['not_converged']} not converged),"
            f" LightSim2Grid {last['lightsim']['mean_iterations']:.2f}."
        )
    accuracy_header = [
        "compared",
        "samples",
        "max abs ΔVm (p.u.)",
        "max abs ΔVa (deg)",
        "max abs ΔP (MW)",
    ]
    return [
        f"### {case['title']}",
        "",
        *table(header, rows),
        "",
        *notes,
        "",
        *table(accuracy_header, accuracy_rows(case)),
        "",
    ]


def render_markdown(results: dict) -> str:
    m, settings = results["machine"], results["settings"]
    gemm = m["xla_float32_gemm"]
    dirty = m["uncommitted_physics_changes"]
    floor_rows = [
        [
            f"{f['case']} {f['quantity']}",
            fmt(f["required"]),
            f"{fmt(f['measured'])} (batch {f['batch']})",
            "yes" if f["met"] else "**no**",
        ]
        for f in results["floors"]
    ]
    lines = [
        "## Power flow (benchmarks/powerflow.py)",
        "",
        f"Power flows per second on IEEE 118 ({settings['case']}: {settings['n_bus']} buses,"
        f" {settings['n_branch']} branches): gridrl, LightSim2Grid and pandapower measured side by"
        f" side in one run{' (quick run)' if settings['quick'] else ''}.",
        "",
        f"Machine: **{m['cpu']}, {m['cores']} cores** ({m['platform']}, Python {m['python']});"
        f" jax {m['jax']} ({m['jax_backend']}), LightSim2Grid {m['lightsim2grid']},"
        f" pandapower {m['pandapower']}; commit {m['git_commit']}"
        f"{' with uncommitted changes to ' + ', '.join(dirty) if dirty else ''}, {m['date']}."
        f" XLA's float32 GEMM ({' x '.join(map(str, gemm[0]['shape']))}) ran at"
        f" {gemm[0]['gflop_per_s']:.0f} and {gemm[1]['gflop_per_s']:.0f} GFLOP/s at the start and"
        f" the end of the run ({gemm[0]['gflop_per_cpu_s']:.0f} and"
        f" {gemm[1]['gflop_per_cpu_s']:.0f} per CPU-s).",
        "",
        f"Inputs: every load scaled by its own factor in [{1 - settings['load_spread']:g},"
        f" {1 + settings['load_spread']:g}] per sample (P and Q alike); the outage workload adds"
        f" 1 to {settings['max_outages']} random branches out per sample (sets that would island a"
        " bus are redrawn). The same samples go to every solver.",
        "",
        "### Floors (gridrl float32, best batch size)",
        "",
        *table(["floor", "required", "measured", "met"], floor_rows),
        "",
    ]
    for case in results["cases"].values():
        lines += case_section(case)
    lines += ["### What is timed", "", WHAT_IS_TIMED]
    return "\n".join(lines)
