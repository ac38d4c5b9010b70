"""What each agent sees: documented, fixed layouts, normalised to order 1 (docs/env.md).

- strategic: time, system summary, forecasts of load / wind / solar at its horizons, its units,
  a per-region summary and its own last directives;
- operational_r (same layout for every region, padded): time, the region's one-hot id, the
  strategic directive and safety gate for it, its fast units, renewables, buses and the branches
  touching it (tie lines included);
- safety: time, every branch's loading, overload counter and status, a system summary and the
  N-1 indicator;
- world_state: all of the above concatenated, for centralised critics.
MW are divided by the peak system load (or by the element's own capacity), loadings are
fractions of the rating, counters fractions of their limit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.env.config import STEPS_PER_DAY, EnvConfig
from gridrl.env.dispatch import step_ramp
from gridrl.env.state import EnvParams, EnvState

Array = jnp.ndarray


@struct.dataclass
class Extras:
    """Per-step quantities the observations need beyond the state."""

    forecasts: Array  # [3, n_horizons]
    not_served: Array  # MW this step


def _time(config: EnvConfig, params: EnvParams, state: EnvState) -> Array:
    of_day = state.step % STEPS_PER_DAY / STEPS_PER_DAY
    day = (state.day + state.step // STEPS_PER_DAY) % params.profiles.n_days
    weekend = params.profiles.day_of_week[day] >= 5
    angle = 2.0 * jnp.pi * of_day
    return jnp.stack(
        [jnp.sin(angle), jnp.cos(angle), state.step / config.episode_steps, weekend]
    ).astype(params.grid.pd.dtype)


def _per_unit(value: Array, scale: Array) -> Array:
    return value / jnp.maximum(scale, 1e-6)


def _system(config: EnvConfig, params: EnvParams, state: EnvState, extras: Extras) -> Array:
    peak = params.peak_load_mw
    demand = jnp.sum(state.demand)
    n_out = jnp.sum(state.branch_down > 0)
    return jnp.stack(
        [
            demand / peak,
            _per_unit(extras.not_served, demand),
            state.reserve / peak,
            state.n1_secure,
            n_out / config.max_outages,
            jnp.max(jnp.abs(state.flow) / params.rating),
        ]
    )


def _regions(params: EnvParams, state: EnvState) -> Array:
    layout = params.layout
    n_region = layout.n_region
    peak = params.peak_load_mw / n_region
    # sums per region as products with one-hot maps (a scatter per sample is slow on CPU)
    demand = state.demand @ jax.nn.one_hot(layout.bus_region, n_region, dtype=state.demand.dtype)
    output = state.pg @ jax.nn.one_hot(layout.gen_region, n_region, dtype=state.pg.dtype)
    loading = jnp.abs(state.flow[layout.branch]) / params.rating[layout.branch]
    loading = jnp.where(layout.branch_mask, loading, 0.0)
    return jnp.concatenate(
        [demand / peak, (output - demand) / peak, jnp.max(loading, axis=1)]
    ).astype(state.pg.dtype)


Parts = list[tuple[str, Array]]  # (name, values): an observation in order, before concatenation
TIME = ("time_of_day_sin", "time_of_day_cos", "episode_progress", "weekend")
SYSTEM = (
    "demand",  # per unit of peak load
    "not_served",  # share of demand
    "reserve",  # upward reserve, per unit of peak load
    "n1_secure",  # share of screened contingencies
    "branches_out",  # per unit of max_outages
    "max_loading",  # of any branch, per unit of its rating
)


def _named(names: tuple[str, ...], values: Array) -> Parts:
    return [(name, values[..., i]) for i, name in enumerate(names)]


def strategic_parts(config, params: EnvParams, state: EnvState, extras: Extras) -> Parts:
    layout, grid = params.layout, params.grid
    slow = layout.slow
    return [
        *_named(TIME, _time(config, params, state)),
        *_named(SYSTEM, _system(config, params, state, extras)),
        ("forecast_load", extras.forecasts[0]),  # per unit of peak load, at forecast_steps
        ("forecast_wind", extras.forecasts[1]),  # per unit of wind capacity
        ("forecast_solar", extras.forecasts[2]),  # per unit of solar capacity
        ("slow_output", _per_unit(state.pg[slow], grid.pmax[slow])),
        ("slow_in_service", state.gen_down[slow] == 0),
        ("region_summary", _regions(params, state)),  # demand, net output, max loading per region
        ("directive", state.directive),
    ]


def operational_parts(config, params: EnvParams, state: EnvState) -> Parts:
    """Every operational agent's view, each part [n_region, width] (one row per region: the
    regions share one padded layout, so each part is one gather for all of them)."""
    layout, grid = params.layout, params.grid
    protection = config.protection
    n_region = layout.n_region
    fast, fast_mask = layout.fast, layout.fast_mask
    renewable, renewable_mask = layout.renewable, layout.renewable_mask
    bus, bus_mask = layout.bus, layout.bus_mask
    branch, branch_mask = layout.branch, layout.branch_mask
    ramp = step_ramp(params)[fast]
    time = _time(config, params, state)
    return [
        *[(name, jnp.broadcast_to(time[i], (n_region,))) for i, name in enumerate(TIME)],
        ("region", jnp.eye(n_region, dtype=state.pg.dtype)),  # one-hot
        ("directive", state.directive),
        ("gate", state.gate),
        ("fast_output", _per_unit(state.pg[fast], grid.pmax[fast]) * fast_mask),
        (
            "fast_headroom",  # upward, within a step's ramp, per unit of capacity
            _per_unit(jnp.minimum(state.available[fast] - state.pg[fast], ramp), grid.pmax[fast])
            * fast_mask,
        ),
        ("fast_in_service", (state.gen_down[fast] == 0) * fast_mask),
        (
            "renewable_available",
            _per_unit(state.available[renewable], grid.pmax[renewable]) * renewable_mask,
        ),
        (
            "renewable_output",
            _per_unit(state.pg[renewable], grid.pmax[renewable]) * renewable_mask,
        ),
        ("bus_demand", _per_unit(state.demand[bus], params.sampling.load_mw[bus]) * bus_mask),
        ("bus_served", _per_unit(state.served[bus], params.sampling.load_mw[bus]) * bus_mask),
        ("branch_flow", state.flow[branch] / params.rating[branch] * branch_mask),  # signed
        (
            "branch_counter",
            state.overload_count[branch] / protection.trip_after_steps * branch_mask,
        ),
        ("branch_in_service", (state.branch_down[branch] == 0) * branch_mask),
    ]


def safety_parts(config, params: EnvParams, state: EnvState, extras: Extras) -> Parts:
    protection = config.protection
    return [
        *_named(TIME, _time(config, params, state)),
        *_named(SYSTEM, _system(config, params, state, extras)),
        ("branch_flow", state.flow / params.rating),  # signed, per unit of rating
        ("branch_counter", state.overload_count / protection.trip_after_steps),
        ("branch_in_service", state.branch_down == 0),
        ("branch_reclose", state.branch_down / protection.reconnect_after_steps),
        ("region_summary", _regions(params, state)),
        ("gate", state.gate),
    ]


def _join(parts: Parts, dtype, rows: int | None = None) -> Array:
    shape = (-1,) if rows is None else (rows, -1)
    return jnp.concatenate([jnp.asarray(v, dtype).reshape(shape) for _, v in parts], axis=-1)


def _all_parts(config, params: EnvParams, state: EnvState, extras: Extras) -> dict[str, Parts]:
    n_region = params.layout.n_region
    regional = operational_parts(config, params, state)
    parts = {"strategic": strategic_parts(config, params, state, extras)}
    for r in range(n_region):
        parts[f"operational_{r}"] = [(name, values[r]) for name, values in regional]
    parts["safety"] = safety_parts(config, params, state, extras)
    return parts


def observe(config: EnvConfig, params: EnvParams, state: EnvState, extras: Extras) -> dict:
    """Every agent's observation and the world state (all agents' in order)."""
    dtype = state.pg.dtype
    n_region = params.layout.n_region
    obs = {"strategic": _join(strategic_parts(config, params, state, extras), dtype)}
    regional = _join(operational_parts(config, params, state), dtype, rows=n_region)
    for r in range(n_region):
        obs[f"operational_{r}"] = regional[r]
    obs["safety"] = _join(safety_parts(config, params, state, extras), dtype)
    obs["world_state"] = jnp.concatenate([obs[name] for name in list(obs)])
    return obs


def layout(config: EnvConfig, params: EnvParams, state: EnvState, extras: Extras) -> dict:
    """{agent: [(part name, start, stop), ...]}: where each named part of each observation sits
    (the world state's parts are prefixed with their agent). `state` and `extras` may be
    abstract (`jax.eval_shape` results): only shapes are read."""
    names: dict[str, list[str]] = {}

    def values(state, extras):
        parts = _all_parts(config, params, state, extras)
        names.update({agent: [name for name, _ in p] for agent, p in parts.items()})
        return {agent: [v for _, v in p] for agent, p in parts.items()}

    shapes = jax.eval_shape(values, state, extras)
    spans, world, offset = {}, [], 0
    for agent, agent_names in names.items():  # observe's order (a pytree's dict keys are sorted)
        start, rows = 0, []
        for name, shape in zip(agent_names, shapes[agent], strict=True):
            size = int(np.prod(shape.shape))
            rows.append((name, start, start + size))
            world.append((f"{agent}.{name}", offset + start, offset + start + size))
            start += size
        spans[agent] = rows
        offset += start
    spans["world_state"] = world
    return spans
