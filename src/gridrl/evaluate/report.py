"""The HTML evaluation report: several policies' evaluation JSONs (docs/report.md, format
"gridrl-evaluation/1") side by side, in one self-contained file that opens offline; training run
folders add their learning curves, their attention heatmaps and their final evaluation.

Figures are matplotlib SVGs embedded as base64 images; the only styling is an inline stylesheet
and the only interaction (choosing the policy of a time series) is pure CSS.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter

from gridrl import __version__
from gridrl.cases import Grid
from gridrl.evaluate.network_map import (
    LOADING_COLORMAP,
    LOADING_NORM,
    OUT_OF_SERVICE_COLOR,
    REGION_COLORS,
    draw_network_map,
    network_layout,
)
from gridrl.evaluate.schema import FORMAT, TRACE_SERIES
from gridrl.io import atomic_write_text

# The top branches of a trace: tab10 without its red, which marks the rating.
BRANCH_COLORS = tuple(c for i, c in enumerate(colormaps["tab10"].colors) if i != 3)


class ReportError(ValueError):
    """An input of the report (evaluation JSON, training log) that cannot be used, with why."""


# ---- the metrics ---------------------------------------------------------------------------------


def _plain(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:,.{digits}f}"


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _signed_percent(value: float) -> str:
    return f"{100 * value:+.2f} %"


@dataclass(frozen=True)
class Metric:
    """One row of a scenario table: a key of the evaluation JSON, how to show it and which way
    is better (None where that is not clear)."""

    key: str
    label: str
    show: Callable[[float], str]
    better: Literal["lower", "higher"] | None
    per_episode_key: str | None = None


INTERFACE_METRICS: tuple[Metric, ...] = (
    Metric("operating_cost_per_hour", "operating cost ($/h)", _plain(0), "lower",
           "operating_cost_per_hour"),
    Metric("cost_gap_vs_sced", "gap vs SCED", _signed_percent, "lower"),
    Metric("energy_not_served_mwh", "energy not served (MWh)", _plain(2), "lower",
           "energy_not_served_mwh"),
    Metric("curtailed_mwh", "curtailed (MWh)", _plain(1), "lower", "curtailed_mwh"),
    Metric("overload_steps", "overload branch-steps", _plain(1), "lower", "overload_steps"),
    Metric("line_trips", "line trips", _plain(2), "lower", "line_trips"),
    Metric("max_cascade_size", "max cascade (branches)", _plain(0), "lower"),
    Metric("survival_rate", "survival", _percent, "higher"),
    Metric("mean_steps_survived", "steps survived", _plain(1), "higher", "steps_survived"),
    Metric("n1_secure_fraction", "N-1 secure share", _percent, "higher"),
    Metric("decisions_per_second", "decisions / s", _plain(0), "higher"),
)  # fmt: skip
EXTRA_METRICS: tuple[Metric, ...] = (
    Metric("generation_cost_per_hour", "generation cost ($/h)", _plain(0), None),
)
INTERFACE_KEYS = tuple(metric.key for metric in INTERFACE_METRICS)
BAR_METRICS = (
    ("operating_cost_per_hour", "operating cost ($/h)", 1.0),
    ("energy_not_served_mwh", "energy not served (MWh / episode)", 1.0),
    ("overload_steps", "overload branch-steps / episode", 1.0),
    ("survival_rate", "survival (%)", 100.0),
)
# a collapsed episode's value of lost load dwarfs the fuel cost of the others: when the bars of
# one of these metrics span more than LOG_SCALE_SPAN, its axis is logarithmic (symlog through 0)
LOG_SCALE_METRICS = ("operating_cost_per_hour", "energy_not_served_mwh", "overload_steps")
LOG_SCALE_SPAN = 100.0
TEXT_FILE_KEYS = ("policy", "case", "physics")
NUMBER_FILE_KEYS = ("episode_steps", "step_minutes", "seed", "episodes")


# ---- reading and checking the inputs ------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ReportError(f"{name} is not a number: the format writes null where a value is undefined")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require(condition: bool, source: str, message: str) -> None:
    if not condition:
        raise ReportError(f"{source}: {message}")


def _check_numbers(
    values: Any, source: str, where: str, length: int | None = None, nullable: bool = False
) -> None:
    _require(isinstance(values, list), source, f"{where} must be a list")
    _require(
        all(_is_number(v) or (nullable and v is None) for v in values),
        source,
        f"{where} must hold numbers{' or null' if nullable else ''} only",
    )
    if length is not None:
        _require(len(values) == length, source, f"{where} has {len(values)} values, not {length}")


def _check_trace(trace: Any, source: str) -> None:
    _require(isinstance(trace, Mapping), source, "trace must be an object")
    _check_numbers(trace.get("time_h"), source, "trace.time_h")
    steps = len(trace["time_h"])
    for key in TRACE_SERIES:
        _check_numbers(trace.get(key), source, f"trace.{key}", steps, nullable=True)
    top = trace.get("top_branches")
    _require(isinstance(top, Mapping), source, "trace.top_branches must be an object")
    _check_numbers(top.get("index"), source, "trace.top_branches.index")
    count = len(top["index"])
    labels = top.get("label")
    _require(
        isinstance(labels, list)
        and len(labels) == count
        and all(isinstance(x, str) for x in labels),
        source,
        f"trace.top_branches.label must be {count} strings",
    )
    loading = top.get("loading")
    _require(
        isinstance(loading, list) and len(loading) == count,
        source,
        f"trace.top_branches.loading must hold {count} lists",
    )
    for row in loading:
        _check_numbers(row, source, "trace.top_branches.loading[...]", steps, nullable=True)
    worst = trace.get("worst")
    if worst is None:  # the episode ended before its first step
        return
    _require(isinstance(worst, Mapping), source, "trace.worst must be an object or null")
    _require(_is_number(worst.get("step")), source, "trace.worst.step must be a number")
    _require(_is_number(worst.get("time_h")), source, "trace.worst.time_h must be a number")
    _check_numbers(worst.get("loading"), source, "trace.worst.loading", nullable=True)
    in_service = worst.get("in_service")
    _require(
        isinstance(in_service, list)
        and len(in_service) == len(worst["loading"])
        and all(isinstance(x, bool) for x in in_service),
        source,
        "trace.worst.in_service must be one true/false per branch of trace.worst.loading",
    )


def _check_scenario(name: str, scenario: Any, source: str) -> None:
    where = f"scenario {name!r}"
    _require(isinstance(scenario, Mapping), source, f"{where} must be an object")
    for key in INTERFACE_KEYS:
        _require(key in scenario, source, f"{where} lacks the key {key!r}")
        value = scenario[key]
        _require(value is None or _is_number(value), source, f"{where}: {key} must be a number")
    _require(_is_number(scenario.get("episodes")), source, f"{where}: episodes must be a number")
    _check_numbers(scenario.get("seeds"), source, f"{where}: seeds")
    if "trace" in scenario:
        _check_trace(scenario["trace"], f"{source}, {where}")


def check_evaluation(data: Any, source: str = "evaluation") -> dict[str, Any]:
    """`data` if it is an evaluation in the format FORMAT, else a ReportError that
    names `source` and what is wrong. Extras (per_episode, trace) are optional; if present they
    must be well formed."""
    _require(isinstance(data, Mapping), source, "not a JSON object")
    found = data.get("format")
    _require(
        found == FORMAT,
        source,
        f"not a gridrl evaluation: format is {found!r}, expected {FORMAT!r}",
    )
    for key in TEXT_FILE_KEYS + NUMBER_FILE_KEYS:
        _require(key in data, source, f"lacks the key {key!r}")
    for key in TEXT_FILE_KEYS:
        _require(isinstance(data[key], str), source, f"{key} must be a string")
    for key in NUMBER_FILE_KEYS:
        _require(_is_number(data[key]), source, f"{key} must be a number")
    _require(data["step_minutes"] > 0, source, "step_minutes must be positive")
    scenarios = data.get("scenarios")
    _require(
        isinstance(scenarios, Mapping) and len(scenarios) > 0,
        source,
        "scenarios must be a non-empty object",
    )
    for name, scenario in scenarios.items():
        _check_scenario(name, scenario, source)
    return dict(data)


def read_evaluation(path: str | os.PathLike) -> dict[str, Any]:
    """One evaluation JSON, checked (see check_evaluation)."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such evaluation file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from None
    except ReportError as error:
        raise ReportError(f"{path}: {error}") from None
    return check_evaluation(data, str(path))


def _training_columns(
    raw: Mapping[str, Sequence[Any]], source: str, required: Sequence[str] = ("step", "return")
) -> dict[str, np.ndarray]:
    """Numeric columns of a training log; the `required` ones present and finite on every row,
    other columns may leave values empty (null / "")."""
    for key in required:
        _require(key in raw, source, f"a training log needs a {key!r} column")
    rows = len(raw["step"])
    _require(rows > 0, source, "the training log has no rows")
    columns: dict[str, np.ndarray] = {}
    for key, values in raw.items():
        _require(len(values) == rows, source, f"column {key!r} has {len(values)} rows, not {rows}")
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
        _require(bool(np.all(np.isfinite(columns[key]))), source, f"every {key!r} must be a number")
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
        _require(
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
        _require(
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


@dataclass(frozen=True)
class Panel:
    """One learning-curve panel: its title and the columns drawn in it (`labels` name them in a
    legend); with `twin` the second column gets its own axis on the right (another scale)."""

    title: str
    keys: tuple[str, ...]
    labels: tuple[str, ...] | None = None
    twin: bool = False


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
    _require(len(rows) > 0, source, "the training log has no rows")
    names = dict.fromkeys(key for row in rows for key in row)
    _require(
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
    _require(isinstance(config, Mapping), str(path), "not a JSON object")
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


# ---- figures -------------------------------------------------------------------------------------
# Layouts are fixed margins rather than constrained layout or a tight bounding box: those draw each
# figure twice or more, and drawing is most of the report's time.


def _svg(figure: Figure) -> str:
    """The figure as a base64 SVG data URI: an image of its own, so that the ids inside one SVG
    never clash with another's. Text stays text (no glyph outlines): smaller and faster."""
    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "gridrl"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _dots(points: int) -> dict[str, Any]:
    """Line style that marks each point where there are few (a lone point draws no line)."""
    return {"marker": ".", "markersize": 6} if points < 50 else {}


def _policy_colors(count: int) -> list[tuple[float, ...]]:
    palette = colormaps["tab10"].colors
    return [palette[i % len(palette)] for i in range(count)]


def bar_chart(
    evaluations: Sequence[Mapping], policies: Sequence[str], scenarios: Sequence[str]
) -> str:
    """Grouped bars of the key metrics: one group per scenario, one bar per policy."""
    figure = Figure(figsize=(13, 7.5))
    figure.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.08, hspace=0.42, wspace=0.16)
    axes = figure.subplots(2, 2).ravel()
    width = 0.8 / len(evaluations)
    x = np.arange(len(scenarios))
    colors = _policy_colors(len(evaluations))
    for ax, (key, title, scale) in zip(axes, BAR_METRICS, strict=True):
        for i, evaluation in enumerate(evaluations):
            values = [(evaluation["scenarios"].get(s) or {}).get(key) for s in scenarios]
            bars = ax.bar(x + (i - (len(evaluations) - 1) / 2) * width,
                          [scale * v if v is not None else 0.0 for v in values], width,
                          color=colors[i], label=policies[i])  # fmt: skip
            for bar, value in zip(bars, values, strict=True):
                if value is None:  # not run or undefined: say so rather than show a zero
                    ax.annotate("n/a", (bar.get_x() + bar.get_width() / 2, 0), ha="center",
                                va="bottom", fontsize=7, color="0.4")  # fmt: skip
        shown = [b.get_height() for b in ax.patches if b.get_height() > 0]
        if key in LOG_SCALE_METRICS and shown and max(shown) > LOG_SCALE_SPAN * min(shown):
            ax.set_yscale("symlog", linthresh=min(shown))
            title += ", log scale"
        ax.set_title(title, fontsize=11)
        ax.set_xticks(x, [s.replace("_", "\n") for s in scenarios], fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="upper center",
                  ncols=min(len(policies), 6), fontsize=9)  # fmt: skip
    return _svg(figure)


def trace_figure(trace: Mapping, policy: str, episode_steps: int, step_minutes: float) -> str:
    """The representative episode of one policy: power balance, cost and branch loadings."""
    figure = Figure(figsize=(13, 8))
    figure.subplots_adjust(left=0.08, right=0.82, top=0.95, bottom=0.07, hspace=0.1)
    power, cost, loading = figure.subplots(3, 1, sharex=True)
    hours = np.asarray(trace["time_h"], float)
    # null (undefined) values become NaN: gaps in the lines
    series = {key: np.asarray(trace[key], float) for key in TRACE_SERIES}
    dots = _dots(len(hours))
    power.plot(hours, series["demand_mw"], color="black", label="demand", **dots)
    power.plot(hours, series["renewable_available_mw"], color="0.5", ls="--",
               label="renewables available", **dots)  # fmt: skip
    power.plot(hours, series["wind_mw"], color="tab:blue", label="wind", **dots)
    power.plot(hours, series["solar_mw"], color="tab:orange", label="solar", **dots)
    unserved = np.nan_to_num(series["energy_not_served_mw"])
    power.fill_between(hours, 0, unserved, color="tab:red", alpha=0.5, label="not served")
    power.set_ylabel("MW")
    power.set_title(f"{policy}: episode {trace.get('episode', 0)}, {len(hours)} of "
                    f"{episode_steps} steps survived", fontsize=11)  # fmt: skip
    cost.plot(hours, series["generation_cost_per_hour"], color="tab:green", label="generation",
              **dots)  # fmt: skip
    cost.set_ylabel("cost ($/h)")
    top = trace["top_branches"]
    for label, row, color in zip(top["label"], top["loading"], BRANCH_COLORS, strict=False):
        loading.plot(hours, 100 * np.asarray(row, float), lw=1.2, color=color, label=label, **dots)
    loading.plot(hours, 100 * series["max_loading"], color="black", lw=0.9, **dots,
                 ls=":", label="max, all branches")  # fmt: skip
    loading.axhline(100, color="tab:red", lw=1.0, ls="--", label="rating")
    worst_h = trace["worst"]["time_h"]
    loading.axvline(worst_h, color="0.4", lw=0.8, ls="-.", label="worst step")
    loading.set_ylabel("branch loading (%)")
    loading.set_xlabel(f"hours from the episode start ({step_minutes:g}-minute steps)")
    for ax in (power, cost, loading):
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    loading.set_xlim(0, episode_steps * step_minutes / 60)
    return _svg(figure)


def map_figure(grid: Grid, layout: np.ndarray, traces: Sequence[tuple[str, Mapping | None]]) -> str:
    """The network at each policy's worst moment of a scenario, one panel per policy."""
    columns = min(2, len(traces))
    rows = math.ceil(len(traces) / columns)
    extent = np.ptp(layout, axis=0)
    panel_width, legend_height, colorbar_width = 6.2, 0.6, 1.4
    panel_height = panel_width * min(extent[1] / extent[0], 1.2) + 0.4  # + the title
    width = panel_width * columns + colorbar_width
    height = panel_height * rows + legend_height
    figure = Figure(figsize=(width, height))
    right = 1 - colorbar_width / width
    figure.subplots_adjust(left=0.01, right=right, top=1 - 0.35 / height,
                           bottom=legend_height / height, wspace=0.04, hspace=0.1)  # fmt: skip
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax, (policy, trace) in zip(axes, traces, strict=False):
        if trace is None:
            ax.text(0.5, 0.5, f"{policy}: no trace for this scenario", ha="center",
                    transform=ax.transAxes)  # fmt: skip
            ax.set_axis_off()
            continue
        worst = trace["worst"]
        draw_network_map(ax, grid, layout, worst["loading"], worst["in_service"])
        ax.set_title(f"{policy}: step {worst['step']} (t = {worst['time_h']:.2f} h), "
                     f"max {100 * np.nanmax(np.asarray(worst['loading'], float)):.0f} %",
                     fontsize=10)  # fmt: skip
    for ax in axes[len(traces) :]:
        ax.set_axis_off()
    colorbar = figure.colorbar(
        ScalarMappable(norm=LOADING_NORM, cmap=LOADING_COLORMAP),
        cax=figure.add_axes((right + 0.02, 0.25, 0.018, 0.5)),
        extend="max",
        label="loading (|flow| / rating)",
    )
    colorbar.ax.yaxis.set_major_formatter(lambda value, _: f"{100 * value:.0f} %")
    handles = [
        Line2D([], [], ls="", marker="o", markersize=6, markeredgecolor="black",
               markerfacecolor=REGION_COLORS[r % len(REGION_COLORS)], label=f"region {r}")
        for r in range(grid.n_region)
    ] + [Line2D([], [], color=OUT_OF_SERVICE_COLOR, ls="--", label="out of service")]  # fmt: skip
    figure.legend(handles=handles, loc="lower center", ncols=len(handles), fontsize=9)
    return _svg(figure)


def _column_panels(log: Mapping[str, np.ndarray]) -> list[Panel]:
    """One panel per column of a training log (--training), the return first as given."""
    return [
        Panel("mean episode return" if name == "return" else name, (name,))
        for name in log
        if name != "step"
    ]


def _draw_panel(ax: Any, steps: np.ndarray, log: Mapping[str, np.ndarray], panel: Panel) -> None:
    """The panel's columns against the steps; NaN (a null, an update without an ended
    episode, a row without the column) is skipped, joining the points on either side."""
    keys = [key for key in panel.keys if key in log]
    labels = panel.labels or panel.keys
    label_of = dict(zip(panel.keys, labels, strict=True))
    twin = panel.twin and len(keys) == 2
    axes = [ax, ax.twinx()] if twin else [ax] * len(keys)
    drawn = 0
    for i, (key, target) in enumerate(zip(keys, axes, strict=True)):
        present = np.isfinite(log[key])
        drawn += int(present.sum())
        target.plot(steps[present], log[key][present], color=f"C{i}", label=label_of[key],
                    **_dots(int(present.sum())))  # fmt: skip
        if twin:  # each axis says whose scale it is
            target.set_ylabel(label_of[key], color=f"C{i}", fontsize=9)
        target.ticklabel_format(axis="y", useOffset=False)  # 34.457, not 0.007 + 3.445e1
    if drawn == 0:
        ax.text(0.5, 0.5, "no values yet", ha="center", va="center", color="0.4",
                transform=ax.transAxes)  # fmt: skip
    elif len(keys) > 1 and not panel.twin:
        ax.legend(fontsize=8)


def learning_curves_figure(
    log: Mapping[str, np.ndarray],
    panels: Sequence[Panel] | None = None,
    x_label: str = "training step",
) -> str:
    """Learning curves against the log's `step`: the given panels (run_panels for a run's
    metrics.jsonl), by default the mean episode return and every further column of the log."""
    panels = list(panels) if panels is not None else _column_panels(log)
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(13, 3.4 * rows))
    figure.subplots_adjust(left=0.07, right=0.95, top=1 - 0.35 / (3.4 * rows),
                           bottom=0.55 / (3.4 * rows), hspace=0.55, wspace=0.3)  # fmt: skip
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    first, last = float(np.min(log["step"])), float(np.max(log["step"]))
    margin = 0.03 * (last - first) or 1.0
    for ax, panel in zip(axes, panels, strict=False):
        _draw_panel(ax, log["step"], log, panel)
        ax.set_xlim(first - margin, last + margin)  # one range: panels line up, sparse or not
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(x_label)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 150k, not 150000: labels fit
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    return _svg(figure)


def mean_attention(trace: Any) -> np.ndarray:
    """[agents, agents]: attention weights [steps, heads, agents, agents] averaged over the
    steps and the heads (row: the attending agent)."""
    array = np.asarray(trace, dtype=float)
    if array.ndim != 4 or array.shape[0] == 0 or array.shape[-1] != array.shape[-2]:
        raise ReportError(f"attention weights must be [steps, heads, n, n], not {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ReportError("attention weights must be finite")
    return array.mean(axis=(0, 1))


def _heatmap(ax: Any, matrix: np.ndarray, agents: Sequence[str], cmap: str, norm: Any) -> Any:
    """One agents x agents heatmap, each cell's value written in it."""
    image = ax.imshow(matrix, cmap=cmap, norm=norm)
    ticks = np.arange(len(agents))
    ax.set_xticks(ticks, agents, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(ticks, agents, fontsize=8)
    ax.set_xlabel("attended agent", fontsize=9)
    ax.set_ylabel("attending agent", fontsize=9)
    for (i, j), value in np.ndenumerate(matrix):
        # dark text on the light half of the colour map, light text on the dark half
        light = image.cmap(image.norm(value))[:3]
        color = "black" if sum(light) > 1.5 else "white"
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    return image


def attention_figure(traces: Mapping[str, Any], agents: Sequence[str]) -> str:
    """The coordination layer's attention per scenario (traces: scenario -> weights [steps,
    heads, agents, agents] of one episode), averaged over steps and heads: one heatmap per
    scenario, rows the attending roles, on one colour scale; with two scenarios, a third of
    their difference (second minus first)."""
    from matplotlib.colors import Normalize, TwoSlopeNorm

    if not traces:
        raise ReportError("no attention weights to draw")
    matrices = {name: mean_attention(trace) for name, trace in traces.items()}
    for name, matrix in matrices.items():
        if matrix.shape != (len(agents), len(agents)):
            raise ReportError(
                f"attention of {name}: {matrix.shape[0]} agents, but {len(agents)} are named"
            )
    panels = list(matrices.items())
    names = list(matrices)
    difference = len(panels) == 2
    count = len(panels) + difference
    figure = Figure(figsize=(4.4 * count, 4.2))
    figure.subplots_adjust(left=0.1, right=0.95, top=0.93, bottom=0.24, wspace=0.6)
    axes = np.atleast_1d(figure.subplots(1, count)).ravel()
    scale = Normalize(0.0, max(float(m.max()) for m in matrices.values()) or 1.0)
    for ax, (name, matrix) in zip(axes, panels, strict=False):
        image = _heatmap(ax, matrix, agents, "viridis", scale)
        ax.set_title(name, fontsize=10)
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if difference:
        change = matrices[names[1]] - matrices[names[0]]
        bound = float(np.abs(change).max()) or 1.0
        image = _heatmap(axes[-1], change, agents, "RdBu_r", TwoSlopeNorm(0.0, -bound, bound))
        axes[-1].set_title(f"{names[1]} − {names[0]}", fontsize=10)
        figure.colorbar(image, ax=axes[-1], fraction=0.046, pad=0.04)
    return _svg(figure)


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
    if len(per_episode) > 1 and all(_is_number(v) for v in per_episode):
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
            _require(
                len(trace["worst"]["loading"]) == grid.n_branch,
                where,
                f"trace.worst has {len(trace['worst']['loading'])} branches, "
                f"the case {grid.name!r} has {grid.n_branch}",
            )
            _require(
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
    if _is_number(total):
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
