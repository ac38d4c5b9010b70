"""The `gridrl` command."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
from rich.console import Console
from rich.table import Table

from gridrl.machine import use_compilation_cache


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


UNCONVERGED = "unconverged"  # in place of every figure of a power flow that did not converge


def _flows_table(grid, results: dict[str, tuple[np.ndarray, np.ndarray] | None], top: int) -> Table:
    """The most loaded branches under each physics model; results: name -> (P in MW, |S| in
    MVA at the more loaded end), or None where that model did not converge."""
    rate = np.asarray(grid.rate_a)
    ranking = next(r for r in results.values() if r is not None)  # DC always solves
    order = np.argsort(-_loading_percent(ranking[1], rate))[:top]
    table = Table(title=f"The {top} most loaded branches")
    table.add_column("branch (from-to)")
    table.add_column("rating (MVA)", justify="right")
    for name in results:
        table.add_column(f"{name} P (MW)", justify="right")
        table.add_column(f"{name} loading", justify="right")
    for k in order:
        cells = [_branch_label(grid, k), f"{rate[k]:,.0f}"]
        for result in results.values():
            if result is None:
                cells += [UNCONVERGED, UNCONVERGED]
            else:
                flow, apparent = result
                cells += [f"{flow[k]:,.1f}", f"{_loading_percent(apparent, rate)[k]:.0f}%"]
        table.add_row(*cells)
    return table


def powerflow(args: argparse.Namespace, console: Console) -> int:
    """Load a case, solve DC and AC power flow, print a readable summary; status 1 where the AC
    power flow does not converge (its figures are then marked, not printed as results)."""
    from gridrl.cases import load
    from gridrl.physics import ac_power_flow, dc_power_flow

    grid = load(args.case)
    console.print(_summary_table(grid))
    flows: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
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
    converged = bool(ac.converged)
    pf, pt = np.asarray(ac.pf), np.asarray(ac.pt)
    flows["AC"] = (pf, np.asarray(ac.apparent_mva)) if converged else None
    vm = np.asarray(ac.vm)[np.asarray(ac.energized)]
    timing.add_row(
        "AC",
        "yes" if converged else "NO",
        str(int(ac.iterations)),
        f"{np.sum(pf + pt):,.2f}" if converged else UNCONVERGED,
        f"{vm.min():.3f} - {vm.max():.3f}" if converged else UNCONVERGED,
        f"{time.perf_counter() - start:.2f} s (incl. compile)",
    )
    console.print(timing)
    console.print(_flows_table(grid, flows, args.top))
    if not converged:
        iterations = int(ac.iterations)
        _say(console, "warning", f"the AC power flow did not converge in {iterations} iterations")
    return 0 if converged else 1


def _evaluation_table(document: dict) -> Table:
    """One row per scenario: the interface keys of the evaluation (docs/evaluation.md)."""
    from gridrl.evaluate.schema import INTERFACE_METRICS

    def cell(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    table = Table(
        title=f"{document['policy']} on {document['case']} ({document['physics'].upper()}): "
        f"{document['episodes']} episodes of {document['episode_steps']} steps, "
        f"seed {document['seed']}"
    )
    table.add_column("scenario", justify="left")
    for metric in INTERFACE_METRICS:
        table.add_column(metric.column, justify="right")
    for name, result in document["scenarios"].items():
        table.add_row(name, *(cell(result[m.key], m.spec) for m in INTERFACE_METRICS))
    return table


def _json_paths(template: str | None, policies: Sequence) -> list[Path | None]:
    """Where each policy's JSON goes (None: not written), every path checked writable before
    the first episode runs: a finished evaluation is never lost to an unwritable target."""
    from gridrl.agents.trained import TrainedPolicy
    from gridrl.io import OutputError, check_output_path

    if template is None:
        return [None] * len(policies)
    if len(policies) > 1 and "{policy}" not in template:
        raise OutputError(f"--json {template}: with several policies it needs a {{policy}} field")
    return [
        check_output_path(
            template.replace("{policy}", p.name.replace("/", "_")),
            inputs=[f for q in policies if isinstance(q, TrainedPolicy) for f in q.owned_files()],
            what="JSON",
        )
        for p in policies
    ]


def evaluate(args: argparse.Namespace, console: Console) -> int:
    """Run policies over seeded episodes of the scenarios; summary table and JSON per policy."""
    from rich.progress import Progress

    from gridrl.evaluate.runner import (
        check_counts,
        release_compiled,
        resolve_policies,
        resolve_scenarios,
        write_json,
    )
    from gridrl.evaluate.runner import evaluate as run_evaluation

    # everything checked before any work: the numbers, every policy (checkpoints loaded), outputs
    resolve_scenarios(args.scenario)
    check_counts(args.episodes, args.seed, args.episode_steps, args.physics)
    policies = resolve_policies(args.policy)
    outputs = _json_paths(args.json, policies)
    written: list[Path] = []
    for i, (policy, out) in enumerate(zip(policies, outputs, strict=True)):
        try:  # one process: the SCED reference runs once for all
            if i > 0:
                release_compiled()
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
            console.print(_evaluation_table(document))
            if out is not None:
                written.append(write_json(document, out))
                console.print(f"written: {out}")
        except KeyboardInterrupt:
            kept = f"kept: {', '.join(map(str, written))}" if written else "no file written"
            lost = "" if out is None else f"; {out} not written (a previous one is unchanged)"
            return _interrupted(console, f"evaluation of {policy.name} stopped; {kept}{lost}")
    return 0


def report(args: argparse.Namespace, console: Console) -> int:
    """Write the HTML report comparing evaluation JSONs and training run folders (learning
    curves, attention, final evaluation), with a --training learning curve."""
    from gridrl.evaluate.report import write_report
    from gridrl.io import check_output_path

    inputs = [*args.evaluations, *([args.training] if args.training else [])]
    out = check_output_path(args.out, inputs=inputs, what="report")
    try:
        write_report(args.evaluations, out, training=args.training)
    except KeyboardInterrupt:
        return _interrupted(console, f"report not written; a previous {out} is unchanged")
    console.print(f"written: {out}")
    return 0


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    """`--set field=value` pairs as a dict; a pair without '=' is a user error."""
    from gridrl.train.config import ConfigError

    changes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set expects field=value, got {pair!r}")
        changes[name.strip()] = value.strip()
    return changes


def _train_config(args: argparse.Namespace):
    """The run's config: the preset, then the named flags, then every --set."""
    from gridrl.train.config import preset

    changes = {"scenario": args.scenario, "total_steps": args.total_steps, "seed": args.seed}
    changes |= {"algorithm": args.algorithm, "bc_from": args.bc_from}
    changes = {k: str(v) for k, v in changes.items() if v is not None}
    return preset(args.preset).override(changes | _overrides(args.set))


def _training_bar(console: Console):
    """The training progress bar and the `on_update` callback that advances it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "{task.fields[rate]} steps/s · return {task.fields[ret]} · "
            "ENS {task.fields[ens]} MW · cost {task.fields[cost]} $/h"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
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

    return progress, on_update


def train(args: argparse.Namespace, console: Console) -> int:
    """Train agents, or resume a run, with a progress bar; checkpoints and logs in the run. On
    the devices asked for (default: all of this host's); with several processes (multi-host),
    process 0 alone shows the bar, writes the run and evaluates (docs/scaling.md)."""
    import contextlib

    from gridrl.train import sharding
    from gridrl.train.config import ConfigError
    from gridrl.train.run import held_out_evaluation, train_run

    if args.resume is None and args.out is None:
        raise ConfigError("give --out RUN_DIR for a new run, or --resume RUN_DIR")
    # before any computation: the processes join, then the mesh spans their devices
    sharding.initialize(
        args.coordinator, args.num_processes, args.process_id, auto=args.distributed
    )
    mesh = sharding.data_mesh(args.devices)
    config = None if args.resume else _train_config(args)
    if config is not None:  # before the bar: the error is the only line printed
        sharding.check_divisible(config.envs_per_scenario(), mesh.devices.size)
    run_dir = Path(args.resume or args.out)
    main = sharding.is_main_process()
    progress, on_update = _training_bar(console) if main else (contextlib.nullcontext(), None)
    try:  # the bar closed first: the line below is the last one printed
        with progress:
            result = train_run(
                config,
                run_dir,
                resume=args.resume is not None,
                on_update=on_update,
                evaluate_policy=held_out_evaluation,
                mesh=mesh,
            )
    except KeyboardInterrupt:
        return _interrupted(
            console,
            f"{run_dir} keeps its last checkpoint; continue with `gridrl train --resume {run_dir}`",
        )
    if not main:
        return 0
    console.print(
        f"trained {result.updates} updates ({result.env_steps:,} env-steps) on "
        f"{mesh.devices.size} device(s) in {result.seconds:,.0f} s; run folder: {run_dir}"
    )
    if result.evaluation is not None:
        console.print(_evaluation_table(result.evaluation))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block), status 2 as ever; the
    subcommands' parsers are of this class too (add_subparsers uses the parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (a count)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gridrl", description="Agents that operate real transmission grids, in JAX."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    flow = commands.add_parser("powerflow", help="solve DC and AC power flow on a case, summarise")
    flow.add_argument("--case", default="ieee118", help="built-in name or MATPOWER .m file")
    flow.add_argument(
        "--top", type=_positive_int, default=10, help="how many loaded branches to list (>= 1)"
    )
    flow.set_defaults(handler=powerflow)
    run = commands.add_parser("evaluate", help="run a policy over seeded episodes of scenarios")
    run.add_argument(
        "--policy",
        required=True,
        help="baseline name (do_nothing, sced, ...), pretrained, or a trained run folder; "
        "comma-separated",
    )
    run.add_argument("--scenario", default="all", help="scenario name, comma-separated, or all")
    run.add_argument("--episodes", type=int, default=4, help="episodes per scenario (1-1000)")
    run.add_argument(
        "--seed",
        type=int,
        default=0,
        help="0 <= seed < 2^32; episode i uses fold_in(key(seed), i)",
    )
    run.add_argument(
        "--episode-steps", type=int, default=288, help="5-minute steps per episode (up to a year)"
    )
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
    learn.add_argument("--seed", type=int, help="training seed, 0 <= seed < 2^31 (config: seed)")
    learn.add_argument("--algorithm", help="hmappo, hmappo-noattn, mappo or ppo")
    learn.add_argument("--bc-from", help="warm start by behaviour cloning: sced or a heuristic")
    learn.add_argument("--out", help="the run folder to create")
    learn.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    learn.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="any config field"
    )
    scale = learn.add_argument_group("devices and hosts (docs/scaling.md)")
    scale.add_argument(
        "--devices",
        type=_positive_int,
        help="devices to train on, of each process (default: all); num_envs is split over them",
    )
    scale.add_argument(
        "--coordinator", metavar="HOST:PORT", help="multi-host: process 0's address and port"
    )
    scale.add_argument(
        "--num-processes", type=_positive_int, metavar="N", help="multi-host: processes in all"
    )
    scale.add_argument(
        "--process-id", type=int, metavar="I", help="multi-host: this process, 0 to N-1"
    )
    scale.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host, detected from the cluster (SLURM, Cloud TPU, Open MPI, Kubernetes)",
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


# The exceptions that are the user's to fix, by module: each is one line and status 2, never a
# traceback (a bug's traceback is kept). Looked up in sys.modules: an error class whose module
# was never imported cannot have been raised, and importing them all would cost seconds.
USER_ERRORS = {
    "gridrl.agents.checkpoint": "CheckpointError",
    "gridrl.cases.ppc": "CaseError",
    "gridrl.evaluate.bar": "BarError",
    "gridrl.evaluate.runner": "EvaluationError",
    "gridrl.evaluate.schema": "ReportError",
    "gridrl.io": "OutputError",
    "gridrl.train.config": "ConfigError",
    "gridrl.train.logging": "MetricsError",
    "gridrl.train.run": "RunError",
}


def _is_user_error(error: Exception) -> bool:
    kinds = [getattr(sys.modules[m], n) for m, n in USER_ERRORS.items() if m in sys.modules]
    return isinstance(error, (OSError, *kinds))  # OSError: a full disk, a read-only folder


def _message(error: Exception) -> str:
    """The error on one line; an OSError as "path: reason" (its str is "[Errno 28] ...")."""
    text = str(error)
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror if error.filename is None else f"{error.filename}: {error.strerror}"
    return " ".join(text.splitlines())


def _say(console: Console, kind: str, text: str) -> None:
    """One line, however long (rich would wrap it at the console's width); markup escaped: a
    message may hold brackets, e.g. [steps, heads]."""
    from rich.markup import escape

    console.print(f"[red]{kind}:[/red] {escape(text)}", soft_wrap=True)


def _interrupted(console: Console, kept: str) -> int:
    """Ctrl-C: one line saying what was kept, status 130 (128 + SIGINT) as shells expect."""
    _say(console, "interrupted", kept)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # a log (make run, CI) gets wide tables rather than rich's 80-column default
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        use_compilation_cache()
        return args.handler(args, console)
    except KeyboardInterrupt:  # the commands that write say themselves what they kept
        return _interrupted(console, f"gridrl {args.command} stopped; nothing written")
    except Exception as error:
        if not _is_user_error(error):
            raise
        _say(console, "error", _message(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
