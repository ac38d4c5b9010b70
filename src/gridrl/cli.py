"""The `gridrl` command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from gridrl.cases import CaseError


def _loading_percent(flow_mw: np.ndarray, rate_mva: np.ndarray) -> np.ndarray:
    """|flow| as a percentage of the rating; unrated branches read 0."""
    rated = np.isfinite(rate_mva) & (rate_mva > 0)
    return np.where(rated, 100.0 * np.abs(flow_mw) / np.where(rated, rate_mva, 1.0), 0.0)


def _branch_label(grid, k: int) -> str:
    return f"{grid.bus_ids[int(grid.f_bus[k])]}-{grid.bus_ids[int(grid.t_bus[k])]}"


def _summary_table(grid) -> Table:
    gen_on = np.asarray(grid.gen_status)
    table = Table(
        title=f"{grid.name}: {grid.n_bus} buses, {grid.n_gen} generators, "
        f"{grid.n_branch} branches, base {grid.base_mva:g} MVA"
    )
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("load (MW)", f"{np.sum(grid.pd):,.1f}")
    table.add_row("generation setpoints (MW)", f"{np.sum(np.asarray(grid.pg)[gen_on]):,.1f}")
    table.add_row("generation capacity (MW)", f"{np.sum(np.asarray(grid.pmax)[gen_on]):,.1f}")
    table.add_row("regions", str(grid.n_region))
    return table


def _flows_table(grid, results: dict[str, tuple[np.ndarray, np.ndarray]], top: int) -> Table:
    """The most loaded branches under each physics model; results: name -> (P in MW, |S| in
    MVA at the more loaded end)."""
    rate = np.asarray(grid.rate_a)
    _, first_apparent = results[next(iter(results))]
    order = np.argsort(-_loading_percent(first_apparent, rate))[:top]
    table = Table(title=f"The {top} most loaded branches")
    table.add_column("branch (from-to)")
    table.add_column("rating (MVA)", justify="right")
    for name in results:
        table.add_column(f"{name} P (MW)", justify="right")
        table.add_column(f"{name} loading", justify="right")
    for k in order:
        cells = [_branch_label(grid, k), f"{rate[k]:,.0f}"]
        for flow, apparent in results.values():
            cells += [f"{flow[k]:,.1f}", f"{_loading_percent(apparent, rate)[k]:.0f}%"]
        table.add_row(*cells)
    return table


def powerflow(args: argparse.Namespace, console: Console) -> int:
    """Load a case, solve DC and AC power flow, print a readable summary."""
    from gridrl.cases import load
    from gridrl.physics import ac_power_flow, dc_power_flow

    grid = load(args.case)
    console.print(_summary_table(grid))
    flows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    timing = Table(title="Power flow")
    for column in ("model", "converged", "iterations", "losses (MW)", "V range (p.u.)", "time"):
        timing.add_column(column, justify="right")
    start = time.perf_counter()
    dc = dc_power_flow(grid)
    flows["DC"] = (np.asarray(dc.pf), np.abs(np.asarray(dc.pf)))
    timing.add_row(
        "DC", "yes", "-", "0", "-", f"{time.perf_counter() - start:.2f} s (incl. compile)"
    )
    start = time.perf_counter()
    ac = ac_power_flow(grid)
    pf, pt = np.asarray(ac.pf), np.asarray(ac.pt)
    flows["AC"] = (pf, np.asarray(ac.apparent_mva))
    vm = np.asarray(ac.vm)[np.asarray(ac.energized)]
    timing.add_row(
        "AC",
        "yes" if bool(ac.converged) else "NO",
        str(int(ac.iterations)),
        f"{np.sum(pf + pt):,.2f}",
        f"{vm.min():.3f} - {vm.max():.3f}",
        f"{time.perf_counter() - start:.2f} s (incl. compile)",
    )
    console.print(timing)
    console.print(_flows_table(grid, flows, args.top))
    return 0 if bool(ac.converged) else 1


def _evaluation_table(document: dict) -> Table:
    """One row per scenario: the interface keys of the evaluation (docs/evaluation.md)."""

    def cell(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    table = Table(
        title=f"{document['policy']} on {document['case']} ({document['physics'].upper()}): "
        f"{document['episodes']} episodes of {document['episode_steps']} steps, "
        f"seed {document['seed']}"
    )
    columns = {
        "scenario": None,
        "cost ($/h)": ("operating_cost_per_hour", ",.0f"),
        "gap vs SCED": ("cost_gap_vs_sced", "+.1%"),
        "ENS (MWh)": ("energy_not_served_mwh", ",.1f"),
        "curtailed (MWh)": ("curtailed_mwh", ",.1f"),
        "overload steps": ("overload_steps", ".1f"),
        "trips": ("line_trips", ".1f"),
        "max cascade": ("max_cascade_size", "d"),
        "survival": ("survival_rate", ".0%"),
        "steps survived": ("mean_steps_survived", ".0f"),
        "N-1 secure": ("n1_secure_fraction", ".0%"),
        "decisions/s": ("decisions_per_second", ",.0f"),
    }
    for title in columns:
        table.add_column(title, justify="left" if title == "scenario" else "right")
    for name, result in document["scenarios"].items():
        cells = [cell(result[key], spec) for key, spec in list(columns.values())[1:]]
        table.add_row(name, *cells)
    return table


def evaluate(args: argparse.Namespace, console: Console) -> int:
    """Run policies over seeded episodes of the scenarios; summary table and JSON per policy."""
    from rich.progress import Progress

    from gridrl.evaluate.runner import (
        EvaluationError,
        release_compiled,
        resolve_policies,
        write_json,
    )
    from gridrl.evaluate.runner import evaluate as run_evaluation

    try:  # every policy resolved (a checkpoint loaded) before the first one runs
        policies = resolve_policies(args.policy)
    except EvaluationError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    if len(policies) > 1 and args.json is not None and "{policy}" not in args.json:
        console.print("[red]error:[/red] with several policies, --json needs a {policy} field")
        return 2
    for i, policy in enumerate(policies):  # one process: the SCED reference runs once for all
        if i > 0:
            release_compiled()
        try:
            with Progress(console=console, transient=True) as progress:
                document = run_evaluation(
                    policy,
                    args.scenario,
                    episodes=args.episodes,
                    seed=args.seed,
                    episode_steps=args.episode_steps,
                    physics=args.physics,
                    sced_reference=args.sced_reference,
                    progress=progress,
                )
        except EvaluationError as error:
            console.print(f"[red]error:[/red] {error}")
            return 2
        console.print(_evaluation_table(document))
        if args.json is not None:
            path = args.json.replace("{policy}", policy.name.replace("/", "_"))
            console.print(f"written: {write_json(document, path)}")
    return 0


def report(args: argparse.Namespace, console: Console) -> int:
    """Write the HTML report comparing evaluation JSONs and training run folders (learning
    curves, attention, final evaluation), with a --training learning curve."""
    from rich.markup import escape

    from gridrl.evaluate.report import ReportError, write_report

    try:
        path = write_report(args.evaluations, args.out, training=args.training)
    except ReportError as error:  # escaped: a message may hold brackets, e.g. [steps, heads]
        console.print(f"[red]error:[/red] {escape(str(error))}")
        return 2
    console.print(f"written: {path}")
    return 0


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    """`--set field=value` pairs as a dict; a pair without '=' is a user error."""
    changes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set expects field=value, got {pair!r}")
        changes[name.strip()] = value.strip()
    return changes


def _train_config(args: argparse.Namespace):
    """The run's config: the preset, then the named flags, then every --set."""
    from gridrl.train.config import preset

    changes = {"scenario": args.scenario, "total_steps": args.total_steps, "seed": args.seed}
    changes |= {"algorithm": args.algorithm, "bc_from": args.bc_from}
    changes = {k: str(v) for k, v in changes.items() if v is not None}
    return preset(args.preset).override(changes | _overrides(args.set))


def train(args: argparse.Namespace, console: Console) -> int:
    """Train agents, or resume a run, with a progress bar; checkpoints and logs in the run."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from gridrl.agents.checkpoint import CheckpointError
    from gridrl.io import OutputError
    from gridrl.train.config import ConfigError
    from gridrl.train.run import RunError, held_out_evaluation, train_run

    if args.resume is None and args.out is None:
        console.print("[red]error:[/red] give --out RUN_DIR for a new run, or --resume RUN_DIR")
        return 2
    try:
        config = None if args.resume else _train_config(args)
    except (ConfigError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    run_dir = Path(args.resume or args.out)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "{task.fields[rate]} steps/s · return {task.fields[ret]} · "
            "ENS {task.fields[ens]} MW · cost {task.fields[cost]} $/h"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("compiling", total=None, rate="-", ret="-", ens="-", cost="-")
        clock = {"start": None, "first": 0}

        def on_update(update: int, total: int, env_steps: int, scalars: dict) -> None:
            now = time.perf_counter()
            if clock["start"] is None:  # the first chunk's wall time includes compilation
                clock["start"], clock["first"] = now, env_steps
            elapsed = now - clock["start"]
            rate = (env_steps - clock["first"]) / elapsed if elapsed > 0 else float("nan")
            ret = scalars.get("return/strategic", float("nan"))
            progress.update(
                task,
                description="training",
                total=total,
                completed=update,
                rate="-" if not np.isfinite(rate) else f"{rate:,.0f}",
                ret="-" if not np.isfinite(ret) else f"{ret:,.1f}",
                ens=f"{scalars['energy_not_served_mw']:.2f}",
                cost=f"{scalars['operating_cost']:,.0f}",
            )

        try:
            result = train_run(
                config,
                run_dir,
                resume=args.resume is not None,
                on_update=on_update,
                evaluate_policy=held_out_evaluation,
            )
        except (RunError, ConfigError, CheckpointError, OutputError) as error:
            console.print(f"[red]error:[/red] {error}")
            return 2
        except KeyboardInterrupt:
            console.print(
                f"interrupted: {run_dir} keeps its last checkpoint; "
                f"continue with `gridrl train --resume {run_dir}`"
            )
            return 130
    console.print(
        f"trained {result.updates} updates ({result.env_steps:,} env-steps) in "
        f"{result.seconds:,.0f} s; run folder: {run_dir}"
    )
    if result.evaluation is not None:
        console.print(_evaluation_table(result.evaluation))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridrl", description="Agents that operate real transmission grids, in JAX."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    flow = commands.add_parser("powerflow", help="solve DC and AC power flow on a case, summarise")
    flow.add_argument("--case", default="ieee118", help="built-in name or MATPOWER .m file")
    flow.add_argument("--top", type=int, default=10, help="how many loaded branches to list")
    flow.set_defaults(handler=powerflow)
    run = commands.add_parser("evaluate", help="run a policy over seeded episodes of scenarios")
    run.add_argument(
        "--policy",
        required=True,
        help="baseline name (do_nothing, sced, ...), pretrained, or a trained run folder; "
        "comma-separated",
    )
    run.add_argument("--scenario", default="all", help="scenario name, comma-separated, or all")
    run.add_argument("--episodes", type=int, default=4, help="episodes per scenario")
    run.add_argument("--seed", type=int, default=0, help="episode i uses fold_in(key(seed), i)")
    run.add_argument("--episode-steps", type=int, default=288, help="5-minute steps per episode")
    run.add_argument("--physics", default="dc", help="dc or ac")
    run.add_argument(
        "--json", help="write the evaluation to this JSON file ({policy} in it: one per policy)"
    )
    run.add_argument(
        "--no-sced-reference",
        dest="sced_reference",
        action="store_false",
        help="skip running SCED on the same episodes (cost_gap_vs_sced is then null)",
    )
    run.set_defaults(handler=evaluate)
    learn = commands.add_parser("train", help="train the agents (hierarchical multi-agent PPO)")
    learn.add_argument("--preset", default="quick", help="quick, default or performance")
    learn.add_argument("--scenario", help="scenario to train on, or mix (config: scenario)")
    learn.add_argument("--total-steps", type=int, help="env-steps in all (config: total_steps)")
    learn.add_argument("--seed", type=int, help="training seed (config: seed)")
    learn.add_argument("--algorithm", help="hmappo, hmappo-noattn, mappo or ppo")
    learn.add_argument("--bc-from", help="warm start by behaviour cloning: sced or a heuristic")
    learn.add_argument("--out", help="the run folder to create")
    learn.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    learn.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="any config field"
    )
    learn.set_defaults(handler=train)
    page = commands.add_parser(
        "report", help="HTML report comparing evaluation JSONs and training runs"
    )
    page.add_argument(
        "evaluations",
        nargs="+",
        metavar="RUN_DIR|EVAL.json",
        help="JSONs written by gridrl evaluate --json; folders written by gridrl train",
    )
    page.add_argument("--out", default="report.html", help="the HTML file to write")
    page.add_argument("--training", help="learning curve: CSV or JSON with step and return")
    page.set_defaults(handler=report)
    return parser


def _compilation_cache() -> None:
    """Keep compiled programs on disk between runs: a second `gridrl evaluate` skips most of
    the minutes of compilation a 2-core CPU spends on the first."""
    import jax

    if jax.config.jax_compilation_cache_dir is None:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        jax.config.update("jax_compilation_cache_dir", str(cache / "gridrl" / "jax"))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _compilation_cache()
    # a log (make run, CI) gets wide tables rather than rich's 80-column default
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        return args.handler(args, console)
    except CaseError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
