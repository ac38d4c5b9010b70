"""Load, wind and solar at 5-minute steps from measured weather that pvlib ships; forecasts.

numpy / pandas build the year's `Profiles` once per process (`build_profiles`); JAX samples
episodes (`sample_episode`) and forecasts (`forecast`) inside the environment. See
docs/timeseries.md for the derivation.
"""

from gridrl.timeseries.forecast import (
    LOAD_FORECAST,
    SOLAR_FORECAST,
    WIND_FORECAST,
    ForecastError,
    forecast,
    horizon_sigma,
)
from gridrl.timeseries.profiles import (
    ALL_SITES,
    Profiles,
    build_profiles,
    day_weights,
    peak_days,
    summary,
    variable_days,
)
from gridrl.timeseries.sampling import Episode, Noise, Sampling, make_sampling, sample_episode
from gridrl.timeseries.weather import SITES, STEPS_PER_DAY, WeatherError, load_weather

__all__ = [
    "ALL_SITES",
    "LOAD_FORECAST",
    "SITES",
    "SOLAR_FORECAST",
    "STEPS_PER_DAY",
    "WIND_FORECAST",
    "Episode",
    "ForecastError",
    "Noise",
    "Profiles",
    "Sampling",
    "WeatherError",
    "build_profiles",
    "day_weights",
    "forecast",
    "horizon_sigma",
    "load_weather",
    "make_sampling",
    "peak_days",
    "sample_episode",
    "summary",
    "variable_days",
]
