"""Evaluation metrics (docs/evaluation.md): each step's `info` is reduced to per-episode totals
inside the rollout (JAX), and the totals become the JSON's numbers here (numpy).

An episode is *played* up to and including the step that ends it (a blackout, or a cascade
beyond the simulated outage depth: `info["outage_limit"]`); after that
the grid is dark until the end of the horizon: every remaining step counts its whole demand as
energy not served (priced at the value of lost load) and nothing else (no generation cost,
curtailment, overloads or trips). So a policy cannot lower its cost or its ENS by collapsing
the grid early.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.env.state import EnvParams, EnvState
from gridrl.evaluate.schema import TRACE_SERIES

Array = jnp.ndarray
TOP_BRANCHES = 5  # branches the trace follows step by step


@struct.dataclass
class Totals:
    """Per-episode sums over the steps of a rollout (leading axis: episodes)."""

    generation_cost: Array  # Σ $/h over played steps
    not_served: Array  # Σ MW not served over all steps (dark steps: their whole demand)
    curtailed: Array  # Σ MW of renewables curtailed or spilled, played steps
    overload_steps: Array  # int32: Σ branches above 100 % of their rating, played steps
    line_trips: Array  # int32: Σ branches tripped, played steps
    max_cascade: Array  # int32: most branches tripped within one step
    n1_secure: Array  # Σ of the N-1 secure share over played steps
    steps_played: Array  # int32: steps up to and including the terminating one
    steps_survived: Array  # int32: steps that did not end in termination
    terminated: Array  # bool


def initial_totals(n_episodes: int) -> Totals:
    zeros = jnp.zeros(n_episodes, jnp.float32)
    counts = jnp.zeros(n_episodes, jnp.int32)
    return Totals(
        generation_cost=zeros,
        not_served=zeros,
        curtailed=zeros,
        overload_steps=counts,
        line_trips=counts,
        max_cascade=counts,
        n1_secure=zeros,
        steps_played=counts,
        steps_survived=counts,
        terminated=jnp.zeros(n_episodes, bool),
    )


def accumulate(totals: Totals, info: dict, dark_demand_mw: Array) -> Totals:
    """Add one (batched) step: `info` from the env's step where an episode is still live, its
    `dark_demand_mw` (the demand of this step) as energy not served where it has terminated."""
    live = ~totals.terminated

    def add(total: Array, value: Array) -> Array:
        return total + jnp.where(live, value, 0).astype(total.dtype)

    trips = info["line_trips"].astype(jnp.int32)
    # a cascade beyond the simulated outage depth ends the env's episode unsimulated (truncated);
    # an evaluation counts it as the collapse it stands for
    collapsed = info["blackout"] | info["outage_limit"]
    return Totals(
        generation_cost=add(totals.generation_cost, info["operating_cost"]),
        not_served=totals.not_served
        + jnp.where(live, info["energy_not_served_mw"], dark_demand_mw).astype(jnp.float32),
        curtailed=add(totals.curtailed, info["curtailed_mw"]),
        overload_steps=add(totals.overload_steps, info["overloaded_branches"]),
        line_trips=add(totals.line_trips, trips),
        max_cascade=jnp.maximum(totals.max_cascade, jnp.where(live, trips, 0)),
        n1_secure=add(totals.n1_secure, info["n1_secure"]),
        steps_played=add(totals.steps_played, 1),
        steps_survived=add(totals.steps_survived, ~collapsed),
        terminated=totals.terminated | (live & collapsed),
    )


def trace_row(params: EnvParams, state: EnvState, info: dict, episode: int = 0) -> dict:
    """What the trace keeps of one step of one episode of a batch (`state` after the step)."""
    layout, grid = params.layout, params.grid
    pick = lambda x: x[episode]  # noqa: E731
    pg, available = pick(state.pg), pick(state.available)
    in_service = (grid.branch_status > 0) & (pick(state.branch_down) == 0)
    renewable = jnp.concatenate([layout.wind, layout.solar])
    return {
        "demand_mw": pick(info["demand_mw"]),
        "wind_mw": jnp.sum(pg[layout.wind]),
        "solar_mw": jnp.sum(pg[layout.solar]),
        "renewable_available_mw": jnp.sum(available[renewable]),
        "generation_cost_per_hour": pick(info["operating_cost"]),
        "energy_not_served_mw": pick(info["energy_not_served_mw"]),
        "max_loading": pick(info["max_loading"]),
        "loading": jnp.where(in_service, jnp.abs(pick(state.flow)) / params.rating, 0.0),
        "in_service": in_service,
    }


# --- from totals to the JSON's numbers (numpy) ------------------------------------------------


def _number(x) -> float | int | None:
    """A plain JSON number; None for NaN or infinity (JSON has no NaN)."""
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    x = float(x)
    return x if np.isfinite(x) else None


def per_episode(
    totals: Totals, episode_steps: int, step_minutes: float, value_of_lost_load: float
) -> dict[str, list]:
    """The per-episode lists of the JSON (schema: `per_episode`), plus the generation cost."""
    t = {name: np.asarray(value) for name, value in vars(totals).items()}
    hours = step_minutes / 60.0
    generation = t["generation_cost"].astype(float) / episode_steps
    lost = value_of_lost_load * t["not_served"].astype(float) / episode_steps
    return {
        "operating_cost_per_hour": [_number(x) for x in generation + lost],
        "generation_cost_per_hour": [_number(x) for x in generation],
        "energy_not_served_mwh": [_number(x) for x in t["not_served"] * hours],
        "curtailed_mwh": [_number(x) for x in t["curtailed"] * hours],
        "overload_steps": [_number(x) for x in t["overload_steps"]],
        "line_trips": [_number(x) for x in t["line_trips"]],
        "steps_survived": [_number(x) for x in t["steps_survived"]],
        "terminated": [bool(x) for x in t["terminated"]],
    }


def summary(
    totals: Totals, episode_steps: int, step_minutes: float, value_of_lost_load: float
) -> dict:
    """The per-scenario numbers of the JSON: the interface keys but the cost gap and the speed
    (the runner adds those), the generation cost and the per-episode lists."""
    episodes = per_episode(totals, episode_steps, step_minutes, value_of_lost_load)
    played = int(np.sum(totals.steps_played))
    mean = lambda key: _number(np.mean(episodes[key]))  # noqa: E731
    return {
        "operating_cost_per_hour": mean("operating_cost_per_hour"),
        "energy_not_served_mwh": mean("energy_not_served_mwh"),
        "curtailed_mwh": mean("curtailed_mwh"),
        "overload_steps": mean("overload_steps"),
        "line_trips": mean("line_trips"),
        "max_cascade_size": int(np.max(totals.max_cascade)),
        "survival_rate": _number(1.0 - np.mean(episodes["terminated"])),
        "mean_steps_survived": mean("steps_survived"),
        # pooled over every step played by any episode; undefined when none was
        "n1_secure_fraction": _number(np.sum(totals.n1_secure) / played) if played else None,
        "generation_cost_per_hour": mean("generation_cost_per_hour"),
        "per_episode": {key: episodes[key] for key in PER_EPISODE_KEYS},
    }


PER_EPISODE_KEYS = (
    "operating_cost_per_hour",
    "energy_not_served_mwh",
    "curtailed_mwh",
    "overload_steps",
    "line_trips",
    "steps_survived",
    "terminated",
)


def trace(
    rows: dict[str, np.ndarray], steps_played: int, step_minutes: float, grid, episode: int = 0
) -> dict:
    """The representative episode's trace (schema: `trace`) from its stacked `trace_row`s
    ([steps, ...] arrays), cut to the steps it played (at least one)."""
    rows = {name: np.asarray(value)[:steps_played] for name, value in rows.items()}
    loading, in_service = rows["loading"].astype(float), rows["in_service"]
    time_h = np.arange(1, steps_played + 1) * step_minutes / 60.0
    series = {name: [_number(x) for x in rows[name]] for name in TRACE_SERIES}
    result = {"episode": episode, "time_h": [_number(x) for x in time_h], **series}
    peak = loading.max(axis=0)
    top = np.argsort(-peak, kind="stable")[:TOP_BRANCHES]
    ids = grid.bus_ids
    f_bus, t_bus = np.asarray(grid.f_bus), np.asarray(grid.t_bus)
    worst = int(np.argmax(loading.max(axis=1)))
    result["top_branches"] = {
        "index": [int(k) for k in top],
        "label": [f"{ids[f_bus[k]]}-{ids[t_bus[k]]}" for k in top],
        "loading": [[_number(x) for x in loading[:, k]] for k in top],
    }
    result["worst"] = {
        "step": worst + 1,
        "time_h": _number(time_h[worst]),
        "loading": [_number(x) for x in loading[worst]],
        "in_service": [bool(x) for x in in_service[worst]],
    }
    return result
