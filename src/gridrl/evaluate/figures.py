"""The report's figures as matplotlib SVGs (base64 data URIs): the key metrics' bars, a
policy's representative episode, the network at its worst moment, learning curves and the
coordination layer's attention heatmaps."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import colormaps, rc_context
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter

from gridrl.cases import Grid
from gridrl.evaluate.network_map import (
    LOADING_COLORMAP,
    LOADING_NORM,
    OUT_OF_SERVICE_COLOR,
    REGION_COLORS,
    draw_network_map,
)
from gridrl.evaluate.schema import TRACE_SERIES, ReportError

# The top branches of a trace: tab10 without its red, which marks the rating.
BRANCH_COLORS = tuple(c for i, c in enumerate(colormaps["tab10"].colors) if i != 3)


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


@dataclass(frozen=True)
class Panel:
    """One learning-curve panel: its title and the columns drawn in it (`labels` name them in a
    legend); with `twin` the second column gets its own axis on the right (another scale)."""

    title: str
    keys: tuple[str, ...]
    labels: tuple[str, ...] | None = None
    twin: bool = False


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
