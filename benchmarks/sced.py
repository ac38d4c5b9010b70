"""SCED solves per second on ieee118 over days of 5-minute steps (gridrl.opf.Sced on HiGHS).

    python benchmarks/sced.py [--quick] [--render-only]

Demand per bus and availability per unit come from the environment (`gridrl.make("ieee118")`,
`normal` scenario, reset and zero actions, so the day's measured load, wind and solar with the
environment's noise). Each variant re-solves one `Sced` step after step, ramp-limited and
warm-started from the previous step: exact costs (HiGHS QP) or 20 linear pieces per quadratic
cost (LP); without N-1, with the environment's 32 screened contingencies, and with the most
severe of them out from mid-day on (a topology change, then N-1 on the new topology), and that
again with ratings scaled by 0.8 so that N-1 rows bind. A solve is
timed as a `Sced.solve` call (bounds, topology updates, N-1 rounds and HiGHS). Results go to
benchmarks/results/sced.json and the "sced" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import highspy
import jax
import jax.numpy as jnp
import numpy as np

import gridrl
from gridrl.cases import load
from gridrl.machine import cpu_name
from gridrl.opf import Sced

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_page import publish, write_section  # a sibling script, not a package

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "results" / "sced.json"
DOCS_MD = ROOT / "docs" / "benchmarks.md"
FULL = {"days": 2, "steps": 288, "qp_steps": 96}
QUICK = {"days": 1, "steps": 48, "qp_steps": 24}
FLOOR = 50.0  # solves/s
SEGMENTS = 20
STRESSED_MARGIN = 0.8  # ratings scaled down so that N-1 binds on these days
VARIANTS = (  # (name, cost_segments, N-1, outage at mid-sequence, rating_margin)
    ("LP", SEGMENTS, False, False, 1.0),
    ("LP + N-1", SEGMENTS, True, False, 1.0),
    ("LP + N-1, outage", SEGMENTS, True, True, 1.0),
    ("LP + N-1, outage, ratings × 0.8", SEGMENTS, True, True, STRESSED_MARGIN),
    ("QP", None, False, False, 1.0),
    ("QP + N-1", None, True, False, 1.0),
    ("QP + N-1, outage", None, True, True, 1.0),
    ("QP + N-1, outage, ratings × 0.8", None, True, True, STRESSED_MARGIN),
)


def day_conditions(days: int, steps: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per day, demand [steps, n_bus] and availability [steps, n_gen] MW; the contingencies."""
    jax.config.update("jax_enable_x64", False)
    env = gridrl.make("ieee118")
    params = env.default_params
    actions = {a: jnp.zeros(env.action_space(a).shape) for a in env.agents}
    step = jax.jit(env.step)
    demands, availables = [], []
    for day in range(days):
        key = jax.random.key(day)
        _, state = env.reset(key, params)
        demand, available = [np.asarray(state.demand)], [np.asarray(state.available)]
        for _ in range(steps - 1):
            key, sub = jax.random.split(key)
            state = step(sub, state, actions, params)[1]
            demand.append(np.asarray(state.demand))
            available.append(np.asarray(state.available))
        demands.append(np.asarray(demand, np.float64))
        availables.append(np.asarray(available, np.float64))
    return demands, availables, np.asarray(params.layout.contingencies)


def run_variant(grid, demands, availables, contingencies, variant, steps: int):
    """(figures, generation cost [days, steps] $/h with nan where a solve failed)."""
    _, segments, n1, outage, margin = variant
    seconds, failures, shed, curtailed, pairs, changes, fallbacks = [], [], 0.0, 0.0, 0, [], 0
    cost = np.full((len(demands), steps), np.nan)
    for day, (demand, available) in enumerate(zip(demands, availables, strict=True)):
        sced = Sced(
            grid,
            n1_contingencies=contingencies if n1 else (),
            cost_segments=segments,
            rating_margin=margin,
        )
        pg_prev = None
        status = np.ones(grid.n_branch, bool)
        for t in range(steps):
            if outage and t == steps // 2:
                status[contingencies[0]] = False
            start = time.perf_counter()
            result = sced.solve(demand[t], available[t], pg_prev=pg_prev, line_status=status)
            seconds.append(time.perf_counter() - start)
            if outage and t == steps // 2:
                changes.append(seconds[-1])
            if not result.success:
                failures.append(result.status)
                continue
            fallbacks += "fallback" in result.status
            pg_prev = result.pg
            cost[day, t] = result.cost
            shed += result.shed.sum() / 12  # MWh in 5 minutes
            curtailed += result.curtailed.sum() / 12
            pairs = max(pairs, sced.n1_rows)
    figures = {
        "solves": len(seconds),
        "failures": len(failures),
        "failure_statuses": sorted(set(failures)),
        "lp_fallbacks": fallbacks,
        "median_solves_per_s": 1.0 / statistics.median(seconds),
        "mean_solves_per_s": len(seconds) / sum(seconds),
        "p95_ms": 1e3 * float(np.quantile(seconds, 0.95)),
        "max_ms": 1e3 * max(seconds),
        "energy_not_served_mwh": shed,
        "curtailed_mwh": curtailed,
        "generation_cost_usd": float(np.nansum(cost)) / 12,
        "most_n1_rows": pairs,
        "topology_change_ms": 1e3 * statistics.median(changes) if changes else None,
    }
    return figures, cost


def lp_vs_qp(lp: np.ndarray, qp: np.ndarray) -> dict:
    """The LP's generation cost against the QP's over the steps both solved (each on its own
    ramp-limited trajectory), and the a-priori bound of the LP's cost error per step."""
    lp = lp[:, : qp.shape[1]]
    both = np.isfinite(lp) & np.isfinite(qp)
    grid = load("ieee118")
    step = (np.asarray(grid.pmax) - np.asarray(grid.pmin)) / SEGMENTS
    return {
        "steps_compared": int(both.sum()),
        "lp_over_qp_percent": 100.0 * (lp[both].sum() / qp[both].sum() - 1.0),
        "largest_step_gap_usd_per_h": float(np.max(lp[both] - qp[both])),
        "bound_usd_per_h": float(np.sum(np.asarray(grid.cost_poly)[:, 0] * (step / 2) ** 2)),
    }


def render(results: dict) -> str:
    machine, compared = results["machine"], results["lp_vs_qp"]
    lines = [
        "## SCED (benchmarks/sced.py)",
        "",
        f"Machine: **{machine['cpu']}**, {results['date']}, load average"
        f" {machine['load_average'][0]:.1f} before and {machine['load_average'][1]:.1f} after the"
        f" run on {machine['cores']} cores (shared with other jobs: figures are pessimistic)."
        f" HiGHS {machine['highs']}. ieee118, {results['settings']['days']} `normal`-scenario days"
        " from the environment (zero actions), one `Sced` per day, each step ramp-limited from"
        f" and warm-started by the previous one. LP: quadratic costs as {SEGMENTS} linear pieces"
        f" (`cost_segments={SEGMENTS}`); QP: exact costs, first {results['settings']['qp_steps']}"
        " steps of each day. N-1: the environment's"
        f" {results['n_contingencies']} screened contingencies; outage: the first of them out"
        " from mid-sequence on; ratings × 0.8: `rating_margin=0.8`, so that N-1 rows bind."
        " A solve is one `Sced.solve` call (bounds, topology update, N-1"
        " rounds and HiGHS).",
        "",
        "| variant | solves | median solves/s | mean solves/s | p95 ms | max ms | floor"
        " | failed | LP fallbacks | ENS MWh | most N-1 rows | solve at the outage, ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results["variants"].items():
        floor = "met" if row["median_solves_per_s"] >= FLOOR else "**missed**"
        change = "–" if row["topology_change_ms"] is None else f"{row['topology_change_ms']:.0f}"
        lines.append(
            f"| {name} | {row['solves']} | {row['median_solves_per_s']:,.0f} |"
            f" {row['mean_solves_per_s']:,.0f} | {row['p95_ms']:.1f} | {row['max_ms']:.0f} |"
            f" {floor} ({FLOOR:.0f}/s) | {row['failures']} | {row['lp_fallbacks']} |"
            f" {max(row['energy_not_served_mwh'], 0.0):.1f} |"
            f" {row['most_n1_rows']} | {change} |"
        )
    lines += [
        "",
        f"Cost of the approximation: over {compared['steps_compared']} steps solved by both, the"
        f" LP's dispatch costs {compared['lp_over_qp_percent']:+.3f} % of the QP's (largest"
        f" step: {compared['largest_step_gap_usd_per_h']:+.1f} $/h; bound of the LP's error at"
        f" one operating point: {compared['bound_usd_per_h']:.1f} $/h). LP fallbacks: steps"
        " whose QP failed (HiGHS's QP solver cycling or ending with a residual) and were solved"
        f" with {SEGMENTS} linear pieces instead (`Sced` does this itself).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one day, few steps")
    parser.add_argument("--render-only", action="store_true", help="docs from the JSON")
    args = parser.parse_args(argv)
    if args.render_only:
        write_section(DOCS_MD, "sced", render(json.loads(RESULTS_JSON.read_text())))
        return 0
    settings = QUICK if args.quick else FULL
    load_before = os.getloadavg()[0]
    demands, availables, contingencies = day_conditions(settings["days"], settings["steps"])
    grid = load("ieee118")
    variants, costs = {}, {}
    for variant in VARIANTS:
        name, segments = variant[:2]
        steps = settings["steps"] if segments else settings["qp_steps"]
        variants[name], costs[name] = run_variant(
            grid, demands, availables, contingencies, variant, steps
        )
        print(name, json.dumps(variants[name]), flush=True)
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "load_average": [load_before, os.getloadavg()[0]],
            "platform": platform.platform(),
            "highs": highspy.Highs().version(),
        },
        "settings": settings,
        "n_contingencies": len(contingencies),
        "variants": variants,
        "lp_vs_qp": lp_vs_qp(costs["LP"], costs["QP"]),
    }
    markdown = render(results)
    publish(results, RESULTS_JSON, DOCS_MD, "sced", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
