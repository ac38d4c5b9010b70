"""Per-unit system load (of the annual peak) from the calendar and the measured temperature.

    load(h) ∝ hourly_shape[season, day type](hour of day) · daily_factor(weekday)
              · (1 + HEATING_SLOPE · max(0, HEATING_BASE_C − T̄)
                   + COOLING_SLOPE · max(0, T̄ − COOLING_BASE_C))

The hour-of-day shapes (morning ramp, evening peak in winter, afternoon plateau in summer) and the
weekday factors are the IEEE Reliability Test System's chronological load model (IEEE RTS-79,
Tables 2 and 3; holidays are treated as Sundays). The RTS table of weekly peaks is replaced by the
weather: T̄ is the site's measured dry-bulb temperature smoothed with a first-order lag (buildings
respond to temperature over hours), and heating and cooling degree-hours raise the load. The
hourly values are interpolated onto the 5-minute steps and scaled so that the year's peak is 1.0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar
from scipy.signal import lfilter

from gridrl.timeseries.weather import (
    DAYS_PER_YEAR,
    IRRADIANCE_OFFSET_H,
    SiteWeather,
    hourly_to_steps,
)

# IEEE RTS-79 Table 3: hourly load in % of the daily peak, hour 0 = 00:00-01:00.
RTS_HOURLY_PCT = {
    ("winter", "weekday"): (67, 63, 60, 59, 59, 60, 74, 86, 95, 96, 96, 95,
                            95, 95, 93, 94, 99, 100, 100, 96, 91, 83, 73, 63),
    ("winter", "weekend"): (78, 72, 68, 66, 64, 65, 66, 70, 80, 88, 90, 91,
                            90, 88, 87, 87, 91, 100, 99, 97, 94, 92, 87, 81),
    ("summer", "weekday"): (64, 60, 58, 56, 56, 58, 64, 76, 87, 95, 99, 100,
                            99, 100, 100, 97, 96, 96, 93, 92, 92, 93, 87, 72),
    ("summer", "weekend"): (74, 70, 66, 65, 64, 62, 62, 66, 81, 86, 91, 93,
                            93, 92, 91, 91, 92, 94, 95, 95, 100, 93, 88, 80),
    ("spring_fall", "weekday"): (63, 62, 60, 58, 59, 65, 72, 85, 95, 99, 100, 99,
                                 93, 92, 90, 88, 90, 92, 96, 98, 96, 90, 80, 70),
    ("spring_fall", "weekend"): (75, 73, 69, 66, 65, 65, 68, 74, 83, 89, 92, 94,
                                 91, 90, 90, 86, 85, 88, 92, 100, 97, 95, 90, 85),
}  # fmt: skip
# IEEE RTS-79 Table 2: daily peak in % of the weekly peak, Monday..Sunday.
RTS_DAILY_PCT = (93, 100, 98, 96, 94, 77, 75)
SUNDAY = 6

HEATING_BASE_C = 15.0  # below this smoothed temperature, heating load grows
COOLING_BASE_C = 20.0  # above it, air conditioning load grows
HEATING_SLOPE = 0.012  # relative load increase per °C below HEATING_BASE_C
COOLING_SLOPE = 0.030  # relative load increase per °C above COOLING_BASE_C
THERMAL_LAG_H = 3.0  # time constant of the buildings' response to outdoor temperature


def rts_season(week: np.ndarray) -> np.ndarray:
    """RTS season of each week of the year (1-based): winter 1-8 and 44+, summer 18-30."""
    return np.where(
        (week <= 8) | (week >= 44),
        "winter",
        np.where((week >= 18) & (week <= 30), "summer", "spring_fall"),
    )


def day_of_week(year: int) -> np.ndarray:
    """Day of week of each day of `year` (0 = Monday), holidays counted as Sundays [365]."""
    days = pd.date_range(f"{year}-01-01", periods=DAYS_PER_YEAR, freq="D")
    holidays = USFederalHolidayCalendar().holidays(days[0], days[-1])
    return np.where(days.isin(holidays), SUNDAY, days.dayofweek).astype(np.int32)


def calendar_shape(year: int) -> np.ndarray:
    """The RTS calendar factor (hourly shape × weekday factor) of each hour of `year` [8760]."""
    weekday = day_of_week(year)
    season = rts_season(np.arange(DAYS_PER_YEAR) // 7 + 1)
    day_type = np.where(weekday >= 5, "weekend", "weekday")
    shapes = [RTS_HOURLY_PCT[key] for key in zip(season, day_type, strict=True)]
    daily = np.asarray(RTS_DAILY_PCT, dtype=np.float64)[weekday] / 100.0
    return (np.asarray(shapes, dtype=np.float64) / 100.0 * daily[:, None]).reshape(-1)


def smoothed_temperature(temp_air: np.ndarray) -> np.ndarray:
    """First-order lag of hourly temperature with time constant `THERMAL_LAG_H`, started at rest."""
    alpha = 1.0 - np.exp(-1.0 / THERMAL_LAG_H)
    start = [(1.0 - alpha) * temp_air[0]]
    return lfilter([alpha], [1.0, alpha - 1.0], temp_air, zi=start)[0]


def weather_factor(temp_air: np.ndarray) -> np.ndarray:
    """Relative load from heating and cooling degree-hours of the smoothed temperature."""
    t = smoothed_temperature(temp_air)
    heating = np.maximum(HEATING_BASE_C - t, 0.0)
    cooling = np.maximum(t - COOLING_BASE_C, 0.0)
    return 1.0 + HEATING_SLOPE * heating + COOLING_SLOPE * cooling


def step_load(site: SiteWeather) -> np.ndarray:
    """Per-unit system load at each 5-minute step start [105120]; the maximum is exactly 1.0."""
    year = site.hourly.index[0].year
    hourly = calendar_shape(year) * weather_factor(site.hourly["temp_air"].to_numpy())
    steps = hourly_to_steps(hourly, IRRADIANCE_OFFSET_H)  # an hour's value sits at its centre
    return steps / steps.max()
