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


def strategic(config, params: EnvParams, state: EnvState, extras: Extras) -> Array:
    layout, grid = params.layout, params.grid
    slow = layout.slow
    return jnp.concatenate(
        [
            _time(config, params, state),
            _system(config, params, state, extras),
            extras.forecasts.reshape(-1),
            _per_unit(state.pg[slow], grid.pmax[slow]),
            (state.gen_down[slow] == 0).astype(state.pg.dtype),
            _regions(params, state),
            state.directive,
        ]
    ).astype(state.pg.dtype)


def operational(config, params: EnvParams, state: EnvState) -> Array:
    """[n_region, size]: every operational agent's view, one row per region (the regions share
    one padded layout, so each part is one gather for all of them)."""
    layout, grid = params.layout, params.grid
    protection = config.protection
    n_region = layout.n_region
    dtype = state.pg.dtype
    fast, fast_mask = layout.fast, layout.fast_mask
    renewable, renewable_mask = layout.renewable, layout.renewable_mask
    bus, bus_mask = layout.bus, layout.bus_mask
    branch, branch_mask = layout.branch, layout.branch_mask
    ramp = step_ramp(params)[fast]
    parts = [
        jnp.broadcast_to(_time(config, params, state), (n_region, 4)),
        jnp.eye(n_region, dtype=dtype),
        state.directive[:, None],
        state.gate[:, None],
        _per_unit(state.pg[fast], grid.pmax[fast]) * fast_mask,
        _per_unit(jnp.minimum(state.available[fast] - state.pg[fast], ramp), grid.pmax[fast])
        * fast_mask,
        (state.gen_down[fast] == 0) * fast_mask,
        _per_unit(state.available[renewable], grid.pmax[renewable]) * renewable_mask,
        _per_unit(state.pg[renewable], grid.pmax[renewable]) * renewable_mask,
        _per_unit(state.demand[bus], params.sampling.load_mw[bus]) * bus_mask,
        _per_unit(state.served[bus], params.sampling.load_mw[bus]) * bus_mask,
        state.flow[branch] / params.rating[branch] * branch_mask,
        state.overload_count[branch] / protection.trip_after_steps * branch_mask,
        (state.branch_down[branch] == 0) * branch_mask,
    ]
    return jnp.concatenate([jnp.asarray(p, dtype) for p in parts], axis=1)


def safety(config, params: EnvParams, state: EnvState, extras: Extras) -> Array:
    protection = config.protection
    parts = [
        _time(config, params, state),
        _system(config, params, state, extras),
        state.flow / params.rating,
        state.overload_count / protection.trip_after_steps,
        (state.branch_down == 0),
        state.branch_down / protection.reconnect_after_steps,
        _regions(params, state),
        state.gate,
    ]
    return jnp.concatenate([jnp.asarray(p, state.pg.dtype) for p in parts])


def observe(config: EnvConfig, params: EnvParams, state: EnvState, extras: Extras) -> dict:
    """Every agent's observation and the world state."""
    n_region = params.layout.n_region
    obs = {"strategic": strategic(config, params, state, extras)}
    regional = operational(config, params, state)
    for r in range(n_region):
        obs[f"operational_{r}"] = regional[r]
    obs["safety"] = safety(config, params, state, extras)
    obs["world_state"] = jnp.concatenate([obs[name] for name in list(obs)])
    return obs
