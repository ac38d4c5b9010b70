"""Load and renewable availability at each step, and the strategic agent's forecasts (pure JAX).

The measured profiles (gridrl.timeseries) give the per-unit shape of the day; on top, AR(1) noise
(system-wide and per region for load, per plant for wind and solar) is advanced one step at a
time, so an episode needs no per-step storage. A bus's load also carries a fixed diversity factor
(gridrl.timeseries.make_sampling).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gridrl.env.config import Scenario
from gridrl.env.layout import per_element
from gridrl.env.state import EnvParams
from gridrl.timeseries import LOAD_FORECAST, SOLAR_FORECAST, WIND_FORECAST, horizon_sigma
from gridrl.timeseries.sampling import ar1_step, profile_at, with_noise

Array = jnp.ndarray


def noise_sigma(params: EnvParams, scenario: Scenario) -> Array:
    """Standard deviation of each noise series: system load, region loads, wind and solar plants."""
    noise, layout = params.sampling.noise, params.layout
    parts = [
        jnp.full(1, noise.load_sigma),
        jnp.full(layout.n_region, noise.bus_sigma),
        jnp.full(layout.wind.shape[0], noise.wind_sigma),
        jnp.full(layout.solar.shape[0], noise.solar_sigma),
    ]
    return jnp.concatenate(parts).astype(params.grid.pd.dtype) * scenario.noise_scale


def initial_noise(key: jax.Array, params: EnvParams, scenario: Scenario) -> Array:
    sigma = noise_sigma(params, scenario)
    return sigma * jax.random.normal(key, sigma.shape, sigma.dtype)


def advance_noise(key: jax.Array, noise: Array, params: EnvParams, scenario: Scenario) -> Array:
    sigma = noise_sigma(params, scenario)
    eps = jax.random.normal(key, sigma.shape, sigma.dtype)
    return ar1_step(noise, eps, params.sampling.noise.phi, sigma)


def conditions(params: EnvParams, scenario: Scenario, day: Array, step: Array, noise: Array):
    """Demand per bus [n_bus] MW and availability per unit [n_gen] MW at `step` of the episode."""
    layout, grid = params.layout, params.grid
    load, wind, solar = profile_at(params.profiles, params.sampling, day, step)
    n_region, n_wind = layout.n_region, layout.wind.shape[0]
    system = noise[:1]
    region = noise[1 : 1 + n_region]
    wind_noise = noise[1 + n_region : 1 + n_region + n_wind]
    solar_noise = noise[1 + n_region + n_wind :]
    demand, wind, solar = with_noise(
        params.sampling, load, wind, solar, system, region[layout.bus_region], wind_noise,
        solar_noise,
    )  # fmt: skip
    pmax = grid.pmax
    scale = scenario.renewable_scale
    share = per_element(layout.unit_weather, wind * scale, solar * scale, fill=1.0)
    available = jnp.clip(share, 0.0, 1.0) * pmax * (grid.gen_status > 0)
    return demand * scenario.load_scale, available


def forecasts(
    key: jax.Array, params: EnvParams, scenario: Scenario, day, step, noise, horizons
) -> Array:
    """[3, len(horizons)]: forecasts of system load (per unit of peak), wind and solar output
    (per unit of their capacity). The forecaster knows the day's profile and the persistence of
    today's deviation (φ^h); its error grows with the horizon as gridrl.timeseries documents."""
    horizon = jnp.asarray(horizons)
    load, wind, solar = profile_at(params.profiles, params.sampling, day, step + horizon)
    phi = params.sampling.noise.phi
    layout, pmax = params.layout, params.grid.pmax
    load = load * (1.0 + phi**horizon * noise[0]) * scenario.load_scale
    wind_cap, solar_cap = pmax[layout.wind], pmax[layout.solar]
    wind = wind @ wind_cap / jnp.maximum(wind_cap.sum(), 1.0) * scenario.renewable_scale
    solar = solar @ solar_cap / jnp.maximum(solar_cap.sum(), 1.0) * scenario.renewable_scale
    max_h = max(horizons)
    errors = (LOAD_FORECAST, WIND_FORECAST, SOLAR_FORECAST)
    sigma = jnp.stack([horizon_sigma(e, max_h)[horizon - 1] for e in errors])
    error = sigma * jax.random.normal(key, sigma.shape, sigma.dtype)
    night = solar == 0.0  # the sun's position is known: no solar at night, no error either
    predicted = jnp.stack(
        [load * (1.0 + error[0]), wind + error[1], jnp.where(night, 0.0, solar + error[2])]
    )
    return jnp.clip(predicted, 0.0, jnp.array([[2.0], [1.0], [1.0]])).astype(pmax.dtype)
