"""Per-unit wind output (power / the turbine's maximum power) from measured wind speed.

The measured 10 m wind speed is interpolated onto the 5-minute steps, extrapolated to hub height
with windpowerlib's logarithmic wind profile, and passed through the manufacturer's power curve
that windpowerlib ships (its OpenEnergy database copy; nothing is downloaded). The power curve
is applied at 5-minute resolution, so its cut-in, rated and cut-out behaviour is kept.
"""

from __future__ import annotations

import functools

import numpy as np
from windpowerlib import WindTurbine, power_output, wind_speed

from gridrl.timeseries.weather import SAMPLE_OFFSET_H, SiteWeather, WeatherError, hourly_to_steps

TURBINE_TYPE = "GE120/2500"  # GE 2.5-120: a common onshore turbine for low and medium winds
HUB_HEIGHT_M = 100.0
MEASUREMENT_HEIGHT_M = 10.0  # standard anemometer height of the TMY stations
ROUGHNESS_LENGTH_M = 0.1  # open farmland with scattered obstacles


@functools.cache
def power_curve(turbine_type: str = TURBINE_TYPE) -> tuple[np.ndarray, np.ndarray]:
    """(wind speeds in m/s, power per unit of the curve's maximum) of a windpowerlib turbine."""
    try:
        turbine = WindTurbine(hub_height=HUB_HEIGHT_M, turbine_type=turbine_type)
    except (KeyError, ValueError) as err:
        raise WeatherError(f"windpowerlib has no power curve for turbine {turbine_type!r}") from err
    if turbine.power_curve is None:
        raise WeatherError(f"windpowerlib has no power curve for turbine {turbine_type!r}")
    speeds = turbine.power_curve["wind_speed"].to_numpy(dtype=np.float64)
    power = turbine.power_curve["value"].to_numpy(dtype=np.float64)
    # Normalised by the curve's own maximum (GE120/2500 reaches 2.53 MW, above its 2.5 MW rating).
    return speeds, power / power.max()


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
