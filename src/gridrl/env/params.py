"""`build_params`: the `EnvParams` of an environment, built once from a Grid and an EnvConfig
(numpy): the cost curves, the base-case analysis and N-1 screen, the layout, the profiles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gridrl.cases import Grid
from gridrl.cases.costs import gen_costs
from gridrl.env.config import EnvConfig
from gridrl.env.layout import build_layout
from gridrl.env.state import EnvParams
from gridrl.physics import contingency, dc_model, dc_power_flow
from gridrl.physics.ac import ac_model
from gridrl.timeseries import build_profiles, make_sampling, peak_days, variable_days

UNRATED_MVA = 1e6  # stands for "no rating": such a branch never loads above ~0

# Which weather site each wind / solar plant follows, cycling over the plants in case order: a mix
# of windy coastal and inland sites (docs/env.md gives the resulting capacity factors).
WIND_SITE_CYCLE = ("sand_point", "miami", "greensboro", "miami")
SOLAR_SITE_CYCLE = ("greensboro", "miami")
# $/h: the intercept of the lines padding a unit's cost segments, far below any real cost so that
# it is never the largest; finite, as -inf turns into NaN in arithmetic on the padding (0·inf).
NO_SEGMENT = -1e30


def _costs(grid: Grid) -> tuple[np.ndarray, ...]:
    """The grid's cost curves (gridrl.cases.costs, those the OPF uses) per unit: (quadratic,
    linear, constant) polynomial coefficients, zero for piecewise-linear units, and (slope,
    intercept) [n_gen, n_segment] of each unit's segment lines, padded with lines at
    NO_SEGMENT; a polynomial unit has one line at zero, so every unit costs poly(P) + max(lines)."""
    costs = gen_costs(grid, np.asarray(grid.gen_status) > 0)  # units out of service never run
    count = np.bincount(costs.segment_gen, minlength=len(costs.pwl_gens))
    slope = np.zeros((grid.n_gen, max(1, int(count.max(initial=0)))))
    intercept = np.full(slope.shape, NO_SEGMENT)
    intercept[:, 0] = 0.0
    # segments come grouped by unit: each one's place within its unit's row
    place = np.arange(len(costs.segment_gen)) - np.repeat(np.cumsum(count) - count, count)
    rows = costs.pwl_gens[costs.segment_gen]
    slope[rows, place] = costs.segment_slope
    intercept[rows, place] = costs.segment_intercept
    return costs.quadratic, costs.linear, costs.constant, slope, intercept


def _corridor(grid: Grid, flows: np.ndarray, size: int) -> np.ndarray:
    """The `size` most loaded tie branches between the two regions exchanging the most power."""
    region = np.asarray(grid.region)
    f, t = region[np.asarray(grid.f_bus)], region[np.asarray(grid.t_bus)]
    ties = np.flatnonzero(f != t)
    if size == 0 or ties.size == 0:
        return np.zeros(0, np.int32)
    pairs = {}
    for k in ties:
        pair = (min(f[k], t[k]), max(f[k], t[k]))
        pairs[pair] = pairs.get(pair, 0.0) + abs(flows[k])
    busiest = max(pairs, key=pairs.get)
    members = [k for k in ties if (min(f[k], t[k]), max(f[k], t[k])) == busiest]
    members.sort(key=lambda k: -abs(flows[k]))
    return np.asarray(members[:size], np.int32)


_ANALYSES: dict[int, tuple[Grid, tuple]] = {}


def _analysis(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base flows, non-islanding branches, those ranked by base-LODF severity), computed once
    per Grid object (environments of several scenarios on one grid share it)."""
    cached = _ANALYSES.get(id(grid))
    if cached is not None and cached[0] is grid:
        return cached[1]
    grid64 = grid.astype(jnp.float64) if jax.config.jax_enable_x64 else grid
    flows = np.asarray(dc_power_flow(grid64).pf, float)
    rating = np.where(np.isfinite(grid.rate_a), grid.rate_a, UNRATED_MVA)
    result = (flows, *contingency.screen(grid64, flows, rating))
    _ANALYSES[id(grid)] = (grid, result)
    return result


def build_params(grid: Grid, config: EnvConfig) -> EnvParams:
    """Everything an episode needs, from a Grid with regions, types and ratings (numpy, once)."""
    if not np.all(np.isfinite(np.asarray(grid.pd))):
        raise ValueError(f"grid {grid.name!r}: bus loads must be finite")
    quadratic, linear, constant, slope, intercept = _costs(grid)  # bad cost data fails first
    flows, candidates, ranked = _analysis(grid)
    contingencies = ranked[: config.n1_contingencies]
    layout = build_layout(grid, contingencies)
    scenario = config.scenario
    profiles = build_profiles()
    days = {"peak": peak_days, "variable": variable_days}.get(scenario.days)
    sites = profiles.wind_sites
    n_wind, n_solar = int(layout.wind.shape[0]), int(layout.solar.shape[0])
    sampling = make_sampling(
        profiles,
        np.asarray(grid.pd, float),
        [sites.index(WIND_SITE_CYCLE[i % len(WIND_SITE_CYCLE)]) for i in range(n_wind)],
        [
            profiles.solar_sites.index(SOLAR_SITE_CYCLE[i % len(SOLAR_SITE_CYCLE)])
            for i in range(n_solar)
        ],
        days=None if days is None else days(profiles),
        seed=config.seed,
    )
    dispatchable = np.asarray(layout.dispatchable)
    pd = np.asarray(grid.pd, float)
    grid32 = grid.astype(jnp.float32)
    f32 = jnp.float32
    return EnvParams(
        grid=grid32,
        dc=dc_model(grid32),
        ac=ac_model(grid32) if config.physics == "ac" else None,
        layout=layout,
        profiles=profiles,
        sampling=sampling,
        reactive_ratio=jnp.asarray(grid.reactive_ratio, f32),
        cost_linear=jnp.asarray(linear, f32),
        cost_quadratic=jnp.asarray(quadratic, f32),
        cost_constant=jnp.asarray(constant, f32),
        cost_slope=jnp.asarray(slope, f32),
        cost_intercept=jnp.asarray(intercept, f32),
        rating=jnp.asarray(
            np.where(np.isfinite(grid.rate_a), np.asarray(grid.rate_a), UNRATED_MVA), f32
        ),
        peak_load_mw=jnp.asarray(max(float(np.sum(np.maximum(pd, 0))), 1.0), f32),
        event_branches=jnp.asarray(candidates, jnp.int32),
        event_units=jnp.asarray(np.flatnonzero(dispatchable), jnp.int32),
        largest_unit=jnp.asarray(int(np.argmax(np.where(dispatchable, grid.pmax, -1))), jnp.int32),
        corridor=jnp.asarray(_corridor(grid, flows, scenario.corridor_outage)),
        critical=jnp.asarray(
            ranked[: max(scenario.initial_branch_outages, config.n1_contingencies)], jnp.int32
        ),
    )
