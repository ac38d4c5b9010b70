"""Per-episode load and renewable availability, sampled in pure JAX (jit- and vmap-able).

An episode starts at the beginning of a random day (drawn with `Sampling.day_weights`, so a
scenario can restrict it to peak or high-variability days) and runs `n_steps` 5-minute steps,
wrapping from the last day of the year to the first. On top of the measured profiles it adds
stationary AR(1) noise, the same process for every series:

    x[0] ~ N(0, σ²),   x[t] = φ·x[t-1] + σ·sqrt(1 - φ²)·ε[t],   ε ~ N(0, 1)

so each noise series has standard deviation σ at every step and correlation φ^k at lag k.

    load_mw[t, b] = load_mw_peak[b] · diversity[b] · load[t] · (1 + x_system[t] + x_bus[t, b])
    wind[t, p]    = clip(wind[t, site(p)] + x_wind[t, p], 0, 1)           (absolute noise)
    solar[t, p]   = clip(solar[t, site(p)] · (1 + x_solar[t, p]), 0, 1)    (relative: 0 at night)

`diversity` is a fixed per-bus factor drawn once from a seed (lognormal, mean 1), rescaled so the
system peak load is unchanged; the per-bus noise x_bus makes buses differ from one step to
the next as well.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.timeseries.profiles import Array, Profiles, day_weights
from gridrl.timeseries.weather import STEPS_PER_DAY


@struct.dataclass
class Noise:
    """Standard deviations and step-to-step correlation of the per-episode AR(1) noise."""

    phi: float = 0.97  # correlation between consecutive 5-min steps: e-folding time ≈ 2.8 h
    load_sigma: float = 0.015  # system-wide load, relative
    bus_sigma: float = 0.01  # each bus's own load deviation, relative
    wind_sigma: float = 0.03  # each wind plant, per unit of capacity
    solar_sigma: float = 0.05  # each solar plant, relative to its output


@struct.dataclass
class Sampling:
    """What an episode is sampled from besides the profiles; built once by `make_sampling`."""

    load_mw: Array  # [n_bus] MW of each bus at the system's annual peak, diversity included
    wind_site: Array  # [n_wind_plants] int32, column of `Profiles.wind` for each plant
    solar_site: Array  # [n_solar_plants] int32, column of `Profiles.solar` for each plant
    day_weights: Array  # [n_days] float32 >= 0, relative chance of starting on each day
    noise: Noise


@struct.dataclass
class Episode:
    """One episode's exogenous inputs, `n_steps` steps from the start of `day`."""

    day: Array  # int32 scalar
    load_mw: Array  # [n_steps, n_bus] MW
    wind: Array  # [n_steps, n_wind_plants] availability per unit of capacity, in [0, 1]
    solar: Array  # [n_steps, n_solar_plants] availability per unit of capacity, in [0, 1]


def bus_diversity(seed: int, load_mw_peak: np.ndarray, sigma: float) -> np.ndarray:
    """Fixed per-bus load factors (lognormal, spread `sigma`) keeping the total peak load."""
    factors = np.random.default_rng(seed).lognormal(-0.5 * sigma**2, sigma, load_mw_peak.shape)
    weight = np.abs(load_mw_peak)
    if weight.sum() == 0.0:
        return factors
    return factors * weight.sum() / (weight * factors).sum()


def _site_index(name: str, site: np.ndarray | list[int], n_sites: int) -> np.ndarray:
    site = np.asarray(site)
    if site.size == 0:  # a grid without plants of this kind
        return np.zeros(0, np.int32)
    if site.ndim != 1 or not np.issubdtype(site.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array (one site index per plant)")
    if site.min() < 0 or site.max() >= n_sites:
        raise ValueError(f"{name} holds site indices outside [0, {n_sites})")
    return site.astype(np.int32)


def make_sampling(
    profiles: Profiles,
    load_mw_peak: np.ndarray,
    wind_site: np.ndarray | list[int],
    solar_site: np.ndarray | list[int],
    *,
    days: np.ndarray | None = None,
    seed: int = 0,
    diversity_sigma: float = 0.05,
    noise: Noise | None = None,
) -> Sampling:
    """Check and assemble the sampling inputs (numpy, once per environment).

    `load_mw_peak[b]` is bus b's load in MW when the system is at its annual peak (per unit 1.0);
    `wind_site[p]` / `solar_site[p]` the profile column of plant p; `days` the days an episode
    may start on (all when None), e.g. `peak_days(profiles)`.
    """
    load_mw_peak = np.asarray(load_mw_peak, dtype=np.float64)
    if load_mw_peak.ndim != 1 or not np.isfinite(load_mw_peak).all():
        raise ValueError("load_mw_peak must be a 1-D array of finite MW values, one per bus")
    if diversity_sigma < 0.0:
        raise ValueError(f"diversity_sigma must be >= 0, got {diversity_sigma}")
    dtype = profiles.load.dtype
    diversity = bus_diversity(seed, load_mw_peak, diversity_sigma)
    return Sampling(
        load_mw=jnp.asarray(load_mw_peak * diversity, dtype),
        wind_site=jnp.asarray(_site_index("wind_site", wind_site, profiles.wind.shape[-1])),
        solar_site=jnp.asarray(_site_index("solar_site", solar_site, profiles.solar.shape[-1])),
        day_weights=jnp.asarray(day_weights(days, profiles.n_days)),
        noise=Noise() if noise is None else noise,
    )


def ar1_step(x: jax.Array, eps: jax.Array, phi, sigma: jax.Array) -> jax.Array:
    """One step of the stationary AR(1) process: φ·x + σ·sqrt(1 − φ²)·ε."""
    return phi * x + sigma * jnp.sqrt(1.0 - phi**2) * eps


def ar1(key: jax.Array, n_steps: int, phi, sigma: jax.Array) -> jax.Array:
    """Independent stationary AR(1) series [n_steps, n_series], series i of std `sigma[i]`."""
    eps = jax.random.normal(key, (n_steps, sigma.shape[0]), sigma.dtype)

    def advance(x, e):
        x = ar1_step(x, e, phi, sigma)
        return x, x

    _, rest = jax.lax.scan(advance, sigma * eps[0], eps[1:])
    return jnp.concatenate([sigma * eps[:1], rest], axis=0)


def draw_day(key: jax.Array, sampling: Sampling) -> jax.Array:
    """The start day of an episode (int32 scalar), drawn with `sampling.day_weights`."""
    return jax.random.categorical(key, jnp.log(sampling.day_weights)).astype(jnp.int32)


def profile_at(profiles: Profiles, sampling: Sampling, day: jax.Array, step: jax.Array):
    """Noise-free per-unit load [...], and per-plant wind [..., n_w] and solar [..., n_s] at
    `step` steps after the start of `day` (wrapping around the year)."""
    total_steps = profiles.n_days * profiles.steps_per_day
    at = (day * profiles.steps_per_day + step) % total_steps
    load = profiles.load.reshape(total_steps)[at]
    wind = profiles.wind.reshape(total_steps, -1)[at][..., sampling.wind_site]
    solar = profiles.solar.reshape(total_steps, -1)[at][..., sampling.solar_site]
    return load, wind, solar


def with_noise(sampling: Sampling, load, wind, solar, system, bus, wind_noise, solar_noise):
    """Per-bus load in MW and per-plant availability in [0, 1] from the noise-free profile values
    and the noise terms (system [..., 1], bus [..., n_bus], wind [..., n_w], solar [..., n_s])."""
    return (
        sampling.load_mw * load[..., None] * jnp.maximum(1.0 + system + bus, 0.0),
        jnp.clip(wind + wind_noise, 0.0, 1.0),
        jnp.clip(solar * (1.0 + solar_noise), 0.0, 1.0),
    )


def sample_episode(
    key: jax.Array, profiles: Profiles, sampling: Sampling, n_steps: int = STEPS_PER_DAY
) -> Episode:
    """Draw one episode: a start day, then noisy per-bus load and per-plant availability."""
    k_day, k_noise = jax.random.split(key)
    noise, dtype = sampling.noise, profiles.load.dtype
    day = draw_day(k_day, sampling)
    load, wind, solar = profile_at(profiles, sampling, day, jnp.arange(n_steps))

    # One draw for all series (system load, buses, wind plants, solar plants): each random
    # draw adds seconds of compile time on CPU.
    counts = (1, sampling.load_mw.shape[0], wind.shape[1], solar.shape[1])
    sigmas = (noise.load_sigma, noise.bus_sigma, noise.wind_sigma, noise.solar_sigma)
    sigma = jnp.concatenate([jnp.full(n, s, dtype) for n, s in zip(counts, sigmas, strict=True)])
    system, bus, wind_noise, solar_noise = jnp.split(
        ar1(k_noise, n_steps, noise.phi, sigma), np.cumsum(counts)[:-1], axis=1
    )
    load_mw, wind, solar = with_noise(
        sampling, load, wind, solar, system, bus, wind_noise, solar_noise
    )
    return Episode(day=day, load_mw=load_mw, wind=wind, solar=solar)
