"""The evaluation JSON (docs/evaluation.md, format FORMAT): its fixed names, the catalogue of
its interface metrics (label, unit, format and which way is better) and its validator, shared by
the runner that writes it, the report that reads it and the CLI's table; kept to the standard
library so reading a report never loads the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

FORMAT = "gridrl-evaluation/1"
TRACE_SERIES = (  # per-step system series of the trace, in the schema's order
    "demand_mw",
    "wind_mw",
    "solar_mw",
    "renewable_available_mw",
    "generation_cost_per_hour",
    "energy_not_served_mw",
    "max_loading",
)


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
    """One metric of a scenario: its key in the evaluation JSON; in the report's tables its
    label, how to show its value and which way is better (None where that is not clear), with
    the range of per_episode[per_episode_key] where given; in `gridrl evaluate`'s terminal table
    its column title and format spec (None: not a column there)."""

    key: str
    label: str
    show: Callable[[float], str]
    better: Literal["lower", "higher"] | None
    per_episode_key: str | None = None
    column: str | None = None
    spec: str | None = None


INTERFACE_METRICS: tuple[Metric, ...] = (
    Metric("operating_cost_per_hour", "operating cost ($/h)", _plain(0), "lower",
           "operating_cost_per_hour", "cost ($/h)", ",.0f"),
    Metric("cost_gap_vs_sced", "gap vs SCED", _signed_percent, "lower", None, "gap vs SCED",
           "+.1%"),
    Metric("energy_not_served_mwh", "energy not served (MWh)", _plain(2), "lower",
           "energy_not_served_mwh", "ENS (MWh)", ",.1f"),
    Metric("curtailed_mwh", "curtailed (MWh)", _plain(1), "lower", "curtailed_mwh",
           "curtailed (MWh)", ",.1f"),
    Metric("overload_steps", "overload branch-steps", _plain(1), "lower", "overload_steps",
           "overload steps", ".1f"),
    Metric("line_trips", "line trips", _plain(2), "lower", "line_trips", "trips", ".1f"),
    Metric("max_cascade_size", "max cascade (branches)", _plain(0), "lower", None,
           "max cascade", "d"),
    Metric("survival_rate", "survival", _percent, "higher", None, "survival", ".0%"),
    Metric("mean_steps_survived", "steps survived", _plain(1), "higher", "steps_survived",
           "steps survived", ".0f"),
    Metric("n1_secure_fraction", "N-1 secure share", _percent, "higher", None, "N-1 secure",
           ".0%"),
    Metric("decisions_per_second", "decisions / s", _plain(0), "higher", None, "decisions/s",
           ",.0f"),
)  # fmt: skip
EXTRA_METRICS: tuple[Metric, ...] = (
    Metric("generation_cost_per_hour", "generation cost ($/h)", _plain(0), None),
)
INTERFACE_KEYS = tuple(metric.key for metric in INTERFACE_METRICS)
TEXT_FILE_KEYS = ("policy", "case", "physics")
NUMBER_FILE_KEYS = ("episode_steps", "step_minutes", "seed", "episodes")


# ---- reading and checking an evaluation ----------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ReportError(f"{name} is not a number: the format writes null where a value is undefined")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def require(condition: bool, source: str, message: str) -> None:
    if not condition:
        raise ReportError(f"{source}: {message}")


def _check_numbers(
    values: Any, source: str, where: str, length: int | None = None, nullable: bool = False
) -> None:
    require(isinstance(values, list), source, f"{where} must be a list")
    require(
        all(is_number(v) or (nullable and v is None) for v in values),
        source,
        f"{where} must hold numbers{' or null' if nullable else ''} only",
    )
    if length is not None:
        require(len(values) == length, source, f"{where} has {len(values)} values, not {length}")


def _check_trace(trace: Any, source: str) -> None:
    require(isinstance(trace, Mapping), source, "trace must be an object")
    _check_numbers(trace.get("time_h"), source, "trace.time_h")
    steps = len(trace["time_h"])
    for key in TRACE_SERIES:
        _check_numbers(trace.get(key), source, f"trace.{key}", steps, nullable=True)
    top = trace.get("top_branches")
    require(isinstance(top, Mapping), source, "trace.top_branches must be an object")
    _check_numbers(top.get("index"), source, "trace.top_branches.index")
    count = len(top["index"])
    labels = top.get("label")
    require(
        isinstance(labels, list)
        and len(labels) == count
        and all(isinstance(x, str) for x in labels),
        source,
        f"trace.top_branches.label must be {count} strings",
    )
    loading = top.get("loading")
    require(
        isinstance(loading, list) and len(loading) == count,
        source,
        f"trace.top_branches.loading must hold {count} lists",
    )
    for row in loading:
        _check_numbers(row, source, "trace.top_branches.loading[...]", steps, nullable=True)
    worst = trace.get("worst")
    if worst is None:  # the episode ended before its first step
        return
    require(isinstance(worst, Mapping), source, "trace.worst must be an object or null")
    require(is_number(worst.get("step")), source, "trace.worst.step must be a number")
    require(is_number(worst.get("time_h")), source, "trace.worst.time_h must be a number")
    _check_numbers(worst.get("loading"), source, "trace.worst.loading", nullable=True)
    in_service = worst.get("in_service")
    require(
        isinstance(in_service, list)
        and len(in_service) == len(worst["loading"])
        and all(isinstance(x, bool) for x in in_service),
        source,
        "trace.worst.in_service must be one true/false per branch of trace.worst.loading",
    )


def _check_scenario(name: str, scenario: Any, source: str) -> None:
    where = f"scenario {name!r}"
    require(isinstance(scenario, Mapping), source, f"{where} must be an object")
    for key in INTERFACE_KEYS:
        require(key in scenario, source, f"{where} lacks the key {key!r}")
        value = scenario[key]
        require(value is None or is_number(value), source, f"{where}: {key} must be a number")
    require(is_number(scenario.get("episodes")), source, f"{where}: episodes must be a number")
    _check_numbers(scenario.get("seeds"), source, f"{where}: seeds")
    if "trace" in scenario:
        _check_trace(scenario["trace"], f"{source}, {where}")


def check_evaluation(data: Any, source: str = "evaluation") -> dict[str, Any]:
    """`data` if it is an evaluation in the format FORMAT, else a ReportError that
    names `source` and what is wrong. Extras (per_episode, trace) are optional; if present they
    must be well formed."""
    require(isinstance(data, Mapping), source, "not a JSON object")
    found = data.get("format")
    require(
        found == FORMAT,
        source,
        f"not a gridrl evaluation: format is {found!r}, expected {FORMAT!r}",
    )
    for key in TEXT_FILE_KEYS + NUMBER_FILE_KEYS:
        require(key in data, source, f"lacks the key {key!r}")
    for key in TEXT_FILE_KEYS:
        require(isinstance(data[key], str), source, f"{key} must be a string")
    for key in NUMBER_FILE_KEYS:
        require(is_number(data[key]), source, f"{key} must be a number")
    require(data["step_minutes"] > 0, source, "step_minutes must be positive")
    scenarios = data.get("scenarios")
    require(
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
