"""Per-unit wind output of a wind farm (power / the turbines' maximum power) from measured wind.

The measured 10 m wind speed is interpolated onto the 5-minute steps, extrapolated to hub height
with windpowerlib's logarithmic wind profile, and passed through a wind-farm power curve: the
manufacturer's turbine curve that windpowerlib ships (its OpenEnergy database copy; nothing is
downloaded), smoothed by windpowerlib with a Gaussian spread of wind speed across the farm
(turbulence-intensity method). Smoothing makes a farm reach full power gradually and shut down
gradually in storms, instead of every turbine cutting out in the same 5 minutes.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from windpowerlib import WindTurbine, power_curves, power_output, wind_speed

from gridrl.timeseries.weather import SAMPLE_OFFSET_H, SiteWeather, WeatherError, hourly_to_steps

TURBINE_TYPE = "GE120/2500"  # GE 2.5-120: a common onshore turbine for low and medium winds
HUB_HEIGHT_M = 100.0
MEASUREMENT_HEIGHT_M = 10.0  # standard anemometer height of the TMY stations
ROUGHNESS_LENGTH_M = 0.1  # open farmland with scattered obstacles
TURBULENCE_INTENSITY = 0.1  # at hub height; spreads wind speeds across the farm's turbines


@functools.cache
def power_curve(turbine_type: str = TURBINE_TYPE) -> tuple[np.ndarray, np.ndarray]:
    """(wind speeds in m/s, farm power per unit of the turbine's maximum) for a turbine type."""
    try:
        turbine = WindTurbine(hub_height=HUB_HEIGHT_M, turbine_type=turbine_type)
    except (KeyError, ValueError) as err:
        raise WeatherError(f"windpowerlib has no power curve for turbine {turbine_type!r}") from err
    if turbine.power_curve is None:
        raise WeatherError(f"windpowerlib has no power curve for turbine {turbine_type!r}")
    farm = power_curves.smooth_power_curve(
        pd.Series(turbine.power_curve["wind_speed"]),
        pd.Series(turbine.power_curve["value"]),
        standard_deviation_method="turbulence_intensity",
        turbulence_intensity=TURBULENCE_INTENSITY,
    )
    # Per unit of the turbine curve's maximum (GE120/2500 reaches 2.53 MW, above its 2.5 MW rating).
    power = farm["value"].to_numpy(dtype=np.float64) / turbine.power_curve["value"].max()
    return farm["wind_speed"].to_numpy(dtype=np.float64), power


def hub_wind_speed(site: SiteWeather) -> np.ndarray:
    """Wind speed at hub height (m/s) at each 5-minute step start of the year [105120]."""
    measured = hourly_to_steps(site.hourly["wind_speed"].to_numpy(), SAMPLE_OFFSET_H)
    return np.asarray(
        wind_speed.logarithmic_profile(
            measured, MEASUREMENT_HEIGHT_M, HUB_HEIGHT_M, ROUGHNESS_LENGTH_M
        ),
        dtype=np.float64,
    )


def step_output(site: SiteWeather, turbine_type: str = TURBINE_TYPE) -> np.ndarray:
    """Per-unit wind output at each 5-minute step start of the year [105120], in [0, 1]."""
    speeds, power = power_curve(turbine_type)
    return np.clip(power_output.power_curve(hub_wind_speed(site), speeds, power), 0.0, 1.0)
