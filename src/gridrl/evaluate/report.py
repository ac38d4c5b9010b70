"""The HTML evaluation report: several policies' evaluation JSONs (docs/report.md) side by side,
with the figures of gridrl.evaluate.figures, in one self-contained file that opens offline; training
logs and run folders, read here, add their learning curves, attention heatmaps and final evaluation.
The only styling is an inline stylesheet and the only interaction (choosing the policy of a time
series) is pure CSS."""

from __future__ import annotations

import csv
import html
import json
import math
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gridrl import __version__
from gridrl.cases import Grid
from gridrl.evaluate.figures import (
    Panel,
    attention_figure,
    bar_chart,
    learning_curves_figure,
    map_figure,
    trace_figure,
)
from gridrl.evaluate.network_map import network_layout
from gridrl.evaluate.schema import (
    EXTRA_METRICS,
    INTERFACE_METRICS,
    Metric,
    ReportError,
    check_evaluation,
    is_number,
    read_evaluation,
    require,
)
from gridrl.io import atomic_write_text

# ---- reading the training inputs -----------------------------------------------------------------


def _training_columns(
    raw: Mapping[str, Sequence[Any]], source: str, required: Sequence[str] = ("step", "return")
) -> dict[str, np.ndarray]:
    """Numeric columns of a training log; the `required` ones present and finite on every row,
    other columns may leave values empty (null / "")."""
    for key in required:
        require(key in raw, source, f"a training log needs a {key!r} column")
    rows = len(raw["step"])
    require(rows > 0, source, "the training log has no rows")
    columns: dict[str, np.ndarray] = {}
    for key, values in raw.items():
        require(len(values) == rows, source, f"column {key!r} has {len(values)} rows, not {rows}")
        parsed = []
        for row, value in enumerate(values, start=1):
            if value is None or value == "":
                parsed.append(math.nan)
                continue
            try:
                parsed.append(float(value))
            except (TypeError, ValueError):
                message = f"entry {row} of column {key!r}: {value!r} is not a number"
                raise ReportError(f"{source}: {message}") from None
        columns[key] = np.array(parsed)
    for key in required:
        require(bool(np.all(np.isfinite(columns[key]))), source, f"every {key!r} must be a number")
    return columns


def read_training_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A training run's learning curve: a CSV with a header row that has at least `step` and
    `return` (mean episode return), or a JSON object of equal-length lists keyed the same way.
    Further columns (losses, entropy, ...) are plotted too."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such training log")
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda name: None)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ReportError(f"{path}: not valid JSON ({error})") from None
        require(
            isinstance(raw, Mapping) and all(isinstance(v, list) for v in raw.values()),
            str(path),
            'a JSON training log is an object of lists: {"step": [...], "return": [...]}',
        )
        return _training_columns(raw, str(path))
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets' BOM
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        rows = [row for row in reader if row]
    for number, row in enumerate(rows, start=2):
        require(
            len(row) == len(header),
            str(path),
            f"line {number} has {len(row)} fields, not {len(header)}",
        )
    return _training_columns(
        {name: [row[i].strip() for row in rows] for i, name in enumerate(header)}, str(path)
    )


# ---- training runs (gridrl train's RUN_DIR) ----------------------------------------------------

RUN_METRICS = "metrics.jsonl"
RUN_CONFIG = "config.json"
RUN_EVALUATION = "evaluation.json"
# the global reward's mean episode return: the strategic agent's, or flat PPO's single agent's
RETURN_KEYS = ("return/strategic", "return/joint")
# the attention heatmaps: one episode of each scenario, DC, a fixed key
ATTENTION_SCENARIOS = ("normal", "emergency_response")
ATTENTION_STEPS = 96
ATTENTION_SEED = 0

RUN_PANELS: tuple[Panel, ...] = (
    Panel("policy loss", ("policy_loss",)),
    Panel("value loss", ("value_loss",)),
    Panel("entropy", ("entropy",)),
    Panel("approx. KL / clip fraction", ("approx_kl", "clip_fraction"),
          ("approx. KL", "clip fraction"), twin=True),
    Panel("explained variance", ("explained_variance",)),
    Panel("operating cost ($/h, rollout mean)", ("operating_cost",)),
    Panel("energy not served (MW, rollout mean)", ("energy_not_served_mw",)),
)  # fmt: skip
# the periodic held-out evaluations' columns: eval/<scenario>/<metric>
EVAL_PANELS = (
    ("operating_cost_per_hour", "held-out: operating cost ($/h)"),
    ("energy_not_served_mwh", "held-out: energy not served (MWh / episode)"),
    ("overload_steps", "held-out: overload branch-steps / episode"),
    ("survival_rate", "held-out: survival rate (0–1)"),
)


@dataclass(frozen=True)
class TrainingRun:
    """What the report shows of one run folder. `attention` maps a scenario to the attention
    weights [steps, heads, agents, agents] of one episode (`agents` names them) of the policy
    `checkpoint`, or is None and `attention_note` says why."""

    path: Path
    curves: dict[str, np.ndarray]
    config: Mapping[str, Any]
    evaluation: dict[str, Any] | None = None
    attention: Mapping[str, np.ndarray] | None = None
    agents: tuple[str, ...] = ()
    checkpoint: str = ""
    attention_note: str = ""

    @property
    def name(self) -> str:
        return self.path.resolve().name


def run_columns(rows: Sequence[Mapping[str, Any]], source: str) -> dict[str, np.ndarray]:
    """metrics.jsonl's rows as columns (NaN where a row lacks a key: the evaluation rows hold
    only eval/... keys); `step` on every row and an episode-return column required."""
    require(len(rows) > 0, source, "the training log has no rows")
    names = dict.fromkeys(key for row in rows for key in row)
    require(
        any(key in names for key in RETURN_KEYS),
        source,
        f"a training run's log needs a {RETURN_KEYS[0]!r} column",
    )
    return _training_columns(
        {name: [row.get(name) for row in rows] for name in names}, source, required=("step",)
    )


def run_panels(curves: Mapping[str, np.ndarray]) -> list[Panel]:
    """The panels of a run's learning curves: the return, the learner's diagnostics and the
    held-out evaluations, each where its columns are in the log."""
    found = next(key for key in RETURN_KEYS if key in curves)
    agent = found.split("/", 1)[1]
    panels = [Panel(f"mean episode return ({agent}: the global reward)", (found,))]
    panels += [panel for panel in RUN_PANELS if any(key in curves for key in panel.keys)]
    for metric, title in EVAL_PANELS:
        keys = tuple(k for k in curves if k.startswith("eval/") and k.endswith(f"/{metric}"))
        if keys:
            labels = tuple(k[len("eval/") : -len(metric) - 1] for k in keys)
            panels.append(Panel(title, keys, labels))
    return panels


def _read_run_config(path: Path) -> dict[str, Any]:
    """The run's config.json as a dict ({} when absent: the algorithm is then unknown)."""
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from None
    require(isinstance(config, Mapping), str(path), "not a JSON object")
    return dict(config)


def attention_traces(
    run_dir: Path,
    case: str,
    scenarios: Sequence[str] = ATTENTION_SCENARIOS,
    steps: int = ATTENTION_STEPS,
    seed: int = ATTENTION_SEED,
) -> tuple[str, tuple[str, ...], dict[str, np.ndarray]]:
    """The run's latest checkpoint (its policy's name), the agents and, per scenario, their
    attention weights [steps, heads, agents, agents] along one DC episode (key `seed`). Loads
    JAX and the case, and compiles an episode per scenario."""
    import jax

    from gridrl.agents import checkpoint, trained
    from gridrl.evaluate import runner

    try:
        policy = trained.load_policy(run_dir)
    except checkpoint.CheckpointError as error:
        raise ReportError(str(error)) from None
    agents: tuple[str, ...] = ()
    traces = {}
    for scenario in scenarios:
        env = runner.environment(case, scenario, "dc", steps)
        try:
            trace = trained.attention_trace(policy, env, jax.random.key(seed), steps)
        except ValueError as error:  # agents that do not fit the case's grid
            raise ReportError(f"{run_dir}: {error}") from None
        traces[scenario] = np.asarray(trace, dtype=float)
        agents = tuple(env.agents)
    return policy.name, agents, traces


def _no_attention(why: str) -> dict[str, Any]:
    return {"attention_note": why}


def _run_attention(run_dir: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """TrainingRun's attention fields: the traces, or the one line that says why there are none."""
    algorithm = config.get("algorithm")
    if algorithm is None:
        return _no_attention(f"No {RUN_CONFIG}: the algorithm, and so any attention, is unknown.")
    if algorithm != "hmappo":  # only hmappo's coordination layer attends
        return _no_attention(f"No attention: the algorithm {algorithm} has no attention layer.")
    from gridrl.agents import checkpoint

    if checkpoint.latest(run_dir) is None:
        return _no_attention("No attention yet: the run has no complete checkpoint.")
    name, agents, traces = attention_traces(run_dir, str(config.get("case", "ieee118")))
    return {"attention": traces, "agents": agents, "checkpoint": name}


def read_run(path: str | os.PathLike, attention: bool = True) -> TrainingRun:
    """A training run folder: its learning curves (metrics.jsonl, required), config.json and
    evaluation.json where present and, with `attention` for an hmappo run, the attention weights
    of its latest checkpoint (compiles an episode per scenario: most of a minute)."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: no such training run folder")
    metrics = path / RUN_METRICS
    if not metrics.is_file():
        raise ReportError(f"{path}: not a training run folder (no {RUN_METRICS})")
    from gridrl.train.logging import MetricsError, read_metrics

    try:
        rows = read_metrics(metrics)
    except MetricsError as error:
        raise ReportError(str(error)) from None
    config = _read_run_config(path / RUN_CONFIG)
    evaluation_path = path / RUN_EVALUATION
    evaluation = read_evaluation(evaluation_path) if evaluation_path.is_file() else None
    extra = _run_attention(path, config) if attention else _no_attention("Not computed.")
    return TrainingRun(path, run_columns(rows, str(metrics)), config, evaluation, **extra)


# ---- HTML ----------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1360px; padding: 0 20px 40px; color: #1d232a; line-height: 1.4; }
h1 { margin: 24px 0 4px; } h2 { margin-top: 40px; border-bottom: 2px solid #d0d7de; }
h3 { margin: 24px 0 8px; font-size: 1.05em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; }
th { background: #f3f5f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { background: #d8f5d0; font-weight: 600; }
td.missing { color: #8a939c; text-align: center; }
tr.extra th, tr.extra td { color: #57606a; }
.spread { display: block; font-size: 0.8em; color: #57606a; font-weight: normal; }
.meta th { width: 190px; }
.warning { background: #fff4d6; border: 1px solid #e3b341; padding: 8px 12px; }
.note { color: #57606a; font-size: 0.9em; }
nav a { margin-right: 14px; }
img { max-width: 100%; }
.tabs > input { position: absolute; opacity: 0; }
.tabs > label { display: inline-block; padding: 4px 14px; border: 1px solid #d0d7de;
                border-bottom: none; border-radius: 6px 6px 0 0; cursor: pointer;
                background: #f3f5f7; }
.tabs > input:checked + label { background: #ffffff; font-weight: 600; }
.tabs > div.panel { display: none; border-top: 1px solid #d0d7de; padding-top: 8px; }
"""


def _plottable(trace: Mapping | None) -> bool:
    """Whether a (checked) trace has steps to draw: not when the episode ended at once."""
    return bool(trace) and len(trace["time_h"]) > 0 and trace.get("worst") is not None


def _scenario_trace(evaluation: Mapping, scenario: str) -> Mapping | None:
    """The evaluation's trace of the scenario if it has steps to draw."""
    trace = (evaluation["scenarios"].get(scenario) or {}).get("trace")
    return trace if _plottable(trace) else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _policy_names(evaluations: Sequence[Mapping]) -> list[str]:
    """The policies' names; a name given by two files gets each file's position appended."""
    names = [str(e["policy"]) for e in evaluations]
    return [
        f"{name} (file {i + 1})" if names.count(name) > 1 else name for i, name in enumerate(names)
    ]


def _scenario_names(evaluations: Sequence[Mapping]) -> list[str]:
    """Every scenario of any file, in the order first met."""
    return list(dict.fromkeys(name for e in evaluations for name in e["scenarios"]))


def _seeds_text(seeds: Sequence[int]) -> str:
    seeds = sorted({int(s) for s in seeds})
    if not seeds:
        return "none"
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _distinct(evaluations: Sequence[Mapping], key: str) -> list[str]:
    return list(dict.fromkeys(str(e.get(key, "unknown")) for e in evaluations))


def _header_html(
    evaluations: Sequence[Mapping], policies: Sequence[str], grid: Grid, generated: datetime
) -> str:
    esc = html.escape
    rows = [
        ("case", f"{grid.name or evaluations[0]['case']}: {grid.n_bus} buses, {grid.n_gen} "
                 f"generators, {grid.n_branch} branches, {grid.n_region} regions"),
        ("physics", ", ".join(_distinct(evaluations, "physics"))),
        ("episodes per scenario", ", ".join(_distinct(evaluations, "episodes"))),
        ("episode", ", ".join(f"{e['episode_steps']} steps of {e['step_minutes']} min"
                              for e in evaluations[:1])),
        ("policies compared", ", ".join(policies)),
        ("evaluated", ", ".join(_distinct(evaluations, "created"))),
        ("report generated", generated.strftime("%Y-%m-%d %H:%M UTC")),
        ("machine", "; ".join(_distinct(evaluations, "machine"))),
    ]  # fmt: skip
    meta = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    differing = [
        key
        for key in ("physics", "episodes", "episode_steps", "step_minutes")
        if len(_distinct(evaluations, key)) > 1
    ]
    warning = (
        f'<p class="warning">The files differ in {", ".join(differing)}: compare with care.</p>'
        if differing
        else ""
    )
    files = "".join(
        "<tr>"
        + "".join(
            f"<td>{esc(str(v))}</td>"
            for v in (
                name,
                e["physics"],
                e["episodes"],
                e["seed"],
                _seeds_text([s for sc in e["scenarios"].values() for s in sc["seeds"]]),
                f"{e['episode_steps']} × {e['step_minutes']} min",
                e.get("created", "unknown"),
                e.get("gridrl_version", "unknown"),
                e.get("machine", "unknown"),
            )
        )
        + "</tr>"
        for name, e in zip(policies, evaluations, strict=True)
    )
    heads = ("policy", "physics", "episodes", "seed", "episode seeds", "episode", "created",
             "gridrl", "machine")  # fmt: skip
    return (
        f"<h1>gridrl evaluation: {esc(str(evaluations[0]['case']))}</h1>"
        f'<table class="meta">{meta}</table>{warning}'
        "<h3>Evaluation files</h3><table><tr>"
        + "".join(f"<th>{h}</th>" for h in heads)
        + f"</tr>{files}</table>"
    )


def _best(values: Sequence[float | None], better: str | None) -> set[int]:
    """Positions of the best values, where a direction is known and the values differ."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if better is None or len(known) < 2 or len({v for _, v in known}) == 1:
        return set()
    target = (min if better == "lower" else max)(v for _, v in known)
    return {i for i, v in known if v == target}


def _cell(metric: Metric, scenario: Mapping | None, best: bool) -> str:
    if scenario is None:
        return '<td class="missing">not run</td>'
    value = scenario.get(metric.key)
    if value is None:
        return '<td class="missing">—</td>'
    spread = ""
    per_episode = scenario.get("per_episode", {}).get(metric.per_episode_key or "", [])
    if len(per_episode) > 1 and all(is_number(v) for v in per_episode):
        spread = (f'<span class="spread">{metric.show(min(per_episode))} – '
                  f"{metric.show(max(per_episode))}</span>")  # fmt: skip
    css = "num best" if best else "num"
    return f'<td class="{css}">{html.escape(metric.show(value))}{spread}</td>'


def scenario_table_html(name: str, evaluations: Sequence[Mapping], policies: Sequence[str]) -> str:
    """The policies side by side on every interface key of one scenario, best values marked."""
    runs = [e["scenarios"].get(name) for e in evaluations]
    head = "<tr><th>metric</th>" + "".join(f"<th>{html.escape(p)}</th>" for p in policies) + "</tr>"
    rows = [
        "<tr><th>episodes (seeds)</th>"
        + "".join(
            f"<td>{run['episodes']} ({_seeds_text(run['seeds'])})</td>"
            if run
            else '<td class="missing">not run</td>'
            for run in runs
        )
        + "</tr>"
    ]
    for metric in INTERFACE_METRICS + EXTRA_METRICS:
        values = [run.get(metric.key) if run else None for run in runs]
        best = _best(values, metric.better)
        css = ' class="extra"' if metric in EXTRA_METRICS else ""
        rows.append(
            f"<tr{css}><th>{html.escape(metric.label)}</th>"
            + "".join(_cell(metric, run, i in best) for i, run in enumerate(runs))
            + "</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _trace_tabs_html(name: str, evaluations: Sequence[Mapping], policies: Sequence[str]) -> str:
    """One time-series figure per policy, one shown at a time (CSS radio tabs, no script)."""
    group = f"trace-{_slug(name)}"
    inputs, panels = [], []
    for i, (evaluation, policy) in enumerate(zip(evaluations, policies, strict=True)):
        trace = _scenario_trace(evaluation, name)
        if trace is not None:
            figure = trace_figure(
                trace, policy, evaluation["episode_steps"], evaluation["step_minutes"]
            )
            alt = html.escape(f"time series of {policy} in {name}")
            content = f'<img alt="{alt}" src="{figure}">'
        else:
            content = '<p class="note">No trace for this policy in this scenario.</p>'
        checked = " checked" if i == 0 else ""
        inputs.append(
            f'<input type="radio" name="{group}" id="{group}-{i}"{checked}>'
            f'<label for="{group}-{i}">{html.escape(policy)}</label>'
        )
        panels.append(f'<div class="panel">{content}</div>')
    return f'<div class="tabs">{"".join(inputs)}{"".join(panels)}</div>'


def _tab_rules(count: int) -> str:
    """Show the panel whose radio is checked (inputs and panels pair up by position)."""
    return "\n".join(
        f".tabs > input:nth-of-type({k}):checked ~ div.panel:nth-of-type({k}) {{ display: block; }}"
        for k in range(1, count + 1)
    )


def _check_against_case(evaluations: Sequence[Mapping], sources: Sequence[str], grid: Grid) -> None:
    """Every trace's branch data fits the case the report draws."""
    for evaluation, source in zip(evaluations, sources, strict=True):
        for name, run in evaluation["scenarios"].items():
            trace = run.get("trace")
            if not _plottable(trace):
                continue
            where = f"{source}, scenario {name!r}"
            require(
                len(trace["worst"]["loading"]) == grid.n_branch,
                where,
                f"trace.worst has {len(trace['worst']['loading'])} branches, "
                f"the case {grid.name!r} has {grid.n_branch}",
            )
            require(
                all(0 <= k < grid.n_branch for k in trace["top_branches"]["index"]),
                where,
                f"trace.top_branches.index outside the case's {grid.n_branch} branches",
            )


def _run_summary(run: TrainingRun) -> str:
    """One line on a run: its config's headline settings and how far its log goes."""
    config = run.config
    parts = [f"{key} {config[key]}" for key in ("algorithm", "case", "scenario", "physics",
                                                "seed") if key in config]  # fmt: skip
    total = config.get("total_steps")
    if is_number(total):
        parts.append(f"{total:,} env-steps planned")
    parts.append(f"logged up to {int(np.max(run.curves['step'])):,} env-steps")
    parts.append(f"final evaluation {'below' if run.evaluation else 'not yet written'}")
    return "; ".join(parts) + "."


def _training_html(training: Mapping[str, np.ndarray] | None, runs: Sequence[TrainingRun]) -> str:
    """The learning curves: of the --training log, then of each run folder."""
    parts = ['<h2 id="training">Training</h2>']
    if training is not None:
        parts += ["<h3>Training log</h3>"] if runs else []
        parts.append(f'<img alt="learning curves" src="{learning_curves_figure(training)}">')
    for run in runs:
        name = html.escape(run.name)
        curves = learning_curves_figure(run.curves, run_panels(run.curves), "env-steps")
        parts += [
            f"<h3>Run {name}</h3>",
            f'<p class="note">{html.escape(_run_summary(run))} Gaps: updates in which no '
            "episode ended; held-out points where the run evaluated.</p>",
            f'<img alt="learning curves of {name}" src="{curves}">',
        ]
    return "".join(parts)


def _attention_html(runs: Sequence[TrainingRun]) -> str:
    """Per run, the attention heatmaps, or the line that says why there are none."""
    parts = ['<h2 id="attention">Coordination attention</h2>']
    for run in runs:
        name = html.escape(run.name)
        parts.append(f"<h3>Run {name}</h3>")
        if run.attention is None:
            parts.append(f'<p class="note">{html.escape(run.attention_note)}</p>')
            continue
        steps = next(iter(run.attention.values())).shape[0]
        scenarios = " and ".join(run.attention)
        figure = attention_figure(run.attention, run.agents)
        parts += [
            f'<img alt="attention weights of {name}" src="{figure}">',
            f'<p class="note">The coordination layer of the latest checkpoint '
            f"({html.escape(run.checkpoint)}): its attention "
            f"weights averaged over the heads and over the {steps} steps of one DC episode of "
            f"each of {html.escape(scenarios)} (case {html.escape(str(run.config.get('case')))},"
            f" key {ATTENTION_SEED}, the policy's mean actions). Row: the attending agent, "
            "column: the agent it attends to; each row sums to 1. Steps after an early end of "
            "the episode, if any, are included.</p>",
        ]
    return "".join(parts)


def _footer_html() -> str:
    return (
        f'<p class="note">Made by gridrl {html.escape(__version__)} on '
        f"{html.escape(platform.node() or 'unknown host')}.</p>"
    )


def _document(title: str, style: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}{style}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def _runs_only_report(
    training: Mapping[str, np.ndarray] | None, runs: Sequence[TrainingRun], generated: datetime
) -> str:
    """A report of training runs none of which has its final evaluation yet."""
    names = ", ".join(run.name for run in runs)
    rows = [("runs", names), ("report generated", generated.strftime("%Y-%m-%d %H:%M UTC"))]
    meta = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    body = [
        f"<h1>gridrl training: {html.escape(names)}</h1>",
        f'<table class="meta">{meta}</table>',
        '<nav><a href="#training">training</a><a href="#attention">attention</a></nav>',
        _training_html(training, runs),
        _attention_html(runs),
        _footer_html(),
    ]
    return _document(f"gridrl training: {names}", "", body)


def render_report(
    evaluations: Sequence[Mapping],
    grid: Grid | None,
    training: Mapping[str, np.ndarray] | None = None,
    generated: datetime | None = None,
    sources: Sequence[str] | None = None,
    runs: Sequence[TrainingRun] = (),
) -> str:
    """The report as one HTML document. `evaluations` are checked evaluations of `grid`'s case
    (read_evaluation / check_evaluation); `training` a learning curve (read_training_log);
    `runs` training run folders (read_run: learning curves and attention; their evaluations
    go among `evaluations`). Without evaluations, `runs` alone make the report."""
    generated = generated or datetime.now(UTC)
    if not evaluations:
        if not runs:
            raise ReportError("the report needs at least one evaluation or training run folder")
        return _runs_only_report(training, runs, generated)
    if grid is None:
        raise ReportError("a report of evaluations needs their case's grid")
    sources = sources or [f"evaluation {i + 1}" for i in range(len(evaluations))]
    _check_against_case(evaluations, sources, grid)
    policies = _policy_names(evaluations)
    scenarios = _scenario_names(evaluations)
    layout = network_layout(grid)
    nav = "".join(f'<a href="#{_slug(s)}">{html.escape(s)}</a>' for s in scenarios)
    if training is not None or runs:
        nav += '<a href="#training">training</a>'
    if runs:
        nav += '<a href="#attention">attention</a>'
    body = [
        _header_html(evaluations, policies, grid, generated),
        f"<nav>{nav}</nav>",
        "<h2>Key metrics</h2>",
        '<img alt="key metrics per scenario and policy" '
        f'src="{bar_chart(evaluations, policies, scenarios)}">',
    ]
    for name in scenarios:
        traces = [(p, _scenario_trace(e, name)) for p, e in zip(policies, evaluations, strict=True)]
        body += [
            f'<h2 id="{_slug(name)}">{html.escape(name)}</h2>',
            '<p class="note">Mean per episode unless named otherwise; the range over episodes '
            "below. Best value per row in green where lower or higher is clearly better.</p>",
            scenario_table_html(name, evaluations, policies),
            "<h3>Representative episode</h3>",
            _trace_tabs_html(name, evaluations, policies),
            "<h3>Branch loading at the worst moment</h3>",
            f'<img class="map" alt="network map of {html.escape(name)}" '
            f'src="{map_figure(grid, layout, traces)}">',
        ]
    if training is not None or runs:
        body.append(_training_html(training, runs))
    if runs:
        body.append(_attention_html(runs))
    body.append(_footer_html())
    case = str(evaluations[0]["case"])
    return _document(f"gridrl evaluation: {case}", _tab_rules(len(evaluations)), body)


def _run_evaluation(run: TrainingRun) -> dict[str, Any]:
    """The run's final evaluation, its policy named after the run: every run's final policy
    is called update-<N>, which would not tell two runs apart."""
    assert run.evaluation is not None
    return run.evaluation | {"policy": f"{run.name} ({run.evaluation['policy']})"}


def write_report(
    evaluations: Sequence[str | os.PathLike | Mapping],
    out: str | os.PathLike,
    training: str | os.PathLike | None = None,
    grid: Grid | None = None,
) -> Path:
    """Write the HTML report to `out`. `evaluations` are evaluation JSONs (paths, or their
    contents) and training run folders (paths of directories, read_run: their learning curves,
    attention and, where written, evaluation.json beside the other evaluations); `training` a
    learning-curve log. All evaluations must be of one case; its network is loaded with
    gridrl.cases.load unless `grid` is given."""
    if not evaluations:
        raise ReportError("the report needs at least one evaluation or training run folder")
    checked, sources, runs = [], [], []
    for i, item in enumerate(evaluations):
        if isinstance(item, Mapping):
            sources.append(f"evaluation {i + 1}")
            checked.append(check_evaluation(item, sources[-1]))
        elif Path(item).is_dir():
            runs.append(read_run(item))
            if runs[-1].evaluation is not None:
                sources.append(str(Path(item) / RUN_EVALUATION))
                checked.append(_run_evaluation(runs[-1]))
        else:
            sources.append(str(item))
            checked.append(read_evaluation(item))
    cases = {str(e["case"]) for e in checked}
    if len(cases) > 1:
        listing = ", ".join(f"{s}: {e['case']}" for s, e in zip(sources, checked, strict=True))
        raise ReportError(f"the evaluations are of different cases ({listing})")
    log = read_training_log(training) if training is not None else None
    if grid is None and cases:
        from gridrl.cases import load

        grid = load(cases.pop())
    document = render_report(checked, grid, log, sources=sources, runs=runs)
    return atomic_write_text(out, document)
