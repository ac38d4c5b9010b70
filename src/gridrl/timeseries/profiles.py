"""`Profiles`: a year of 5-minute load, wind and solar per-unit profiles, built once per process.

Also the day selections that scenarios restrict episodes to (peak-load days, days of high
renewable variability) and the summary statistics (capacity factors, load factor) that sizing
renewable capacity relies on.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from flax import struct

from gridrl.timeseries import load, solar, wind
from gridrl.timeseries.weather import (
    DAYS_PER_YEAR,
    DEFAULT_YEAR,
    SITES,
    STEPS_PER_DAY,
    WeatherError,
    load_weather,
)

Array = jnp.ndarray | np.ndarray
ALL_SITES = tuple(SITES)


@struct.dataclass
class Profiles:
    """Per-unit profiles at 5-minute steps: day × step-of-day [× site]. Values at step starts."""

    load: Array  # [365, 288] float32, system load per unit of the annual peak, in (0, 1]
    wind: Array  # [365, 288, n_wind_sites] float32, per unit of turbine maximum, in [0, 1]
    solar: Array  # [365, 288, n_solar_sites] float32, per unit of AC nameplate, in [0, 1]
    day_of_week: Array  # [365] int32, 0 = Monday; US federal holidays count as Sundays (6)
    load_site: str = struct.field(pytree_node=False)
    wind_sites: tuple[str, ...] = struct.field(pytree_node=False)
    solar_sites: tuple[str, ...] = struct.field(pytree_node=False)
    turbine_type: str = struct.field(pytree_node=False)
    year: int = struct.field(pytree_node=False)

    @property
    def n_days(self) -> int:
        return self.load.shape[-2]

    @property
    def steps_per_day(self) -> int:
        return self.load.shape[-1]


def _check_sites(kind: str, sites: tuple[str, ...]) -> None:
    unknown = [s for s in sites if s not in SITES]
    if not sites or unknown:
        raise WeatherError(f"{kind}: need one or more of {sorted(SITES)}, got {list(sites)}")


def _by_day(steps: np.ndarray) -> np.ndarray:
    return steps.reshape(DAYS_PER_YEAR, STEPS_PER_DAY, *steps.shape[1:])


@functools.cache
def build_profiles(
    load_site: str = "greensboro",
    wind_sites: tuple[str, ...] = ALL_SITES,
    solar_sites: tuple[str, ...] = ALL_SITES,
    turbine_type: str = wind.TURBINE_TYPE,
    year: int = DEFAULT_YEAR,
) -> Profiles:
    """Build the year's profiles from the sites' measured weather (a few seconds; cached).

    `load_site`'s temperature drives the load; each wind / solar site gives one column.
    `year` only sets the calendar (weekdays, holidays) and must not be a leap year.
    """
    wind_sites, solar_sites = tuple(wind_sites), tuple(solar_sites)
    _check_sites("load_site", (load_site,))
    _check_sites("wind_sites", wind_sites)
    _check_sites("solar_sites", solar_sites)
    wind_pu = [wind.step_output(load_weather(s, year), turbine_type) for s in wind_sites]
    solar_pu = [solar.step_output(load_weather(s, year)) for s in solar_sites]
    return Profiles(
        load=jnp.asarray(_by_day(load.step_load(load_weather(load_site, year))), jnp.float32),
        wind=jnp.asarray(_by_day(np.stack(wind_pu, axis=-1)), jnp.float32),
        solar=jnp.asarray(_by_day(np.stack(solar_pu, axis=-1)), jnp.float32),
        day_of_week=jnp.asarray(load.day_of_week(year), jnp.int32),
        load_site=load_site,
        wind_sites=wind_sites,
        solar_sites=solar_sites,
        turbine_type=turbine_type,
        year=year,
    )


def _top_days(score: np.ndarray, fraction: float) -> np.ndarray:
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    count = max(1, round(fraction * score.size))
    return np.sort(np.argsort(-score, kind="stable")[:count]).astype(np.int32)


def peak_days(profiles: Profiles, fraction: float = 0.1) -> np.ndarray:
    """Indices of the `fraction` of days with the highest daily peak load, ascending."""
    return _top_days(np.asarray(profiles.load).max(axis=1), fraction)


def variable_days(profiles: Profiles, fraction: float = 0.1) -> np.ndarray:
    """Indices of the `fraction` of days whose renewable output varies most, ascending.

    A day's variability is the total variation (sum of |5-minute changes|) of each wind and
    solar site, averaged over the sites: cloudy-bright alternations and wind ramps score high.
    """
    output = np.concatenate([np.asarray(profiles.wind), np.asarray(profiles.solar)], axis=-1)
    return _top_days(np.abs(np.diff(output, axis=1)).sum(axis=1).mean(axis=-1), fraction)


def day_weights(days: np.ndarray | None, n_days: int = DAYS_PER_YEAR) -> np.ndarray:
    """A sampling weight per day, uniform over `days` (all days when None) [n_days] float32."""
    weights = np.zeros(n_days, dtype=np.float32)
    if days is None:
        weights[:] = 1.0
        return weights
    days = np.asarray(days)
    if days.size == 0 or days.min() < 0 or days.max() >= n_days:
        raise ValueError(f"days must be a non-empty list of indices in [0, {n_days})")
    weights[days] = 1.0
    return weights


def summary(profiles: Profiles) -> dict[str, float]:
    """Load factor and minimum, and the capacity factor of each wind and solar site."""
    stats = {
        "load_factor": float(np.mean(profiles.load)),
        "load_min": float(np.min(profiles.load)),
    }
    for i, site in enumerate(profiles.wind_sites):
        stats[f"wind_cf_{site}"] = float(np.mean(profiles.wind[..., i]))
    for i, site in enumerate(profiles.solar_sites):
        stats[f"solar_cf_{site}"] = float(np.mean(profiles.solar[..., i]))
    return stats
