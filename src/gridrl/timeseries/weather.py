"""Hourly measured weather of the sites whose typical-meteorological-year files ship with pvlib.

Each site's year is 8760 hourly rows in local standard time (no daylight saving), timezone-naive,
labelled by the *start* of the hour they describe and re-dated onto one calendar year so that
weekdays and holidays are well defined. Irradiance (W/m²) is the mean over the hour; dry-bulb
temperature (°C) and wind speed (m/s, about 10 m above ground) are readings taken at the hour's
end, hence `SAMPLE_OFFSET_H`. The time base of the environment is a 5-minute step grid; a step's
value is the value at the step's start.
"""

from __future__ import annotations

import calendar
import functools
import pathlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib

HOURS_PER_YEAR = 8760
DAYS_PER_YEAR = 365
STEP_MINUTES = 5
STEPS_PER_HOUR = 60 // STEP_MINUTES
STEPS_PER_DAY = 24 * STEPS_PER_HOUR
STEPS_PER_YEAR = DAYS_PER_YEAR * STEPS_PER_DAY
DEFAULT_YEAR = 2019  # a non-leap year; only its calendar (weekdays, holidays) is used

# Position within its hour of each kind of hourly sample (hours after the hour's start).
IRRADIANCE_OFFSET_H = 0.5  # hourly means, centred on the hour
SAMPLE_OFFSET_H = 1.0  # point readings at the end of the hour

PVLIB_DATA = pathlib.Path(pvlib.__file__).parent / "data"
WEATHER_COLUMNS = ("ghi", "dni", "dhi", "temp_air", "wind_speed")


class WeatherError(ValueError):
    """A weather file or site request that cannot be used."""


@dataclass(frozen=True)
class SiteWeather:
    """One site's location and hourly weather (columns `WEATHER_COLUMNS`)."""

    name: str
    latitude: float  # degrees north
    longitude: float  # degrees east
    altitude: float  # m
    utc_offset_h: float  # local standard time minus UTC, hours
    hourly: pd.DataFrame

    def utc(self, local_times: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """Naive local standard times of this site as tz-aware UTC times."""
        return (local_times - pd.Timedelta(hours=self.utc_offset_h)).tz_localize("UTC")


# name -> (file inside pvlib/data, reader format)
SITES: dict[str, tuple[str, str]] = {
    "greensboro": ("723170TYA.CSV", "tmy3"),  # Greensboro NC: temperate, inland
    "sand_point": ("703165TY.csv", "tmy3"),  # Sand Point AK: windy, cool, coastal
    "miami": ("12839.tm2", "tmy2"),  # Miami FL: sunny, hot, coastal
}


def hour_starts(year: int) -> pd.DatetimeIndex:
    """The 8760 naive hour starts of `year`, which must not be a leap year."""
    if calendar.isleap(year):
        raise WeatherError(f"year {year} is a leap year; typical-year data has 365 days")
    return pd.date_range(f"{year}-01-01", periods=HOURS_PER_YEAR, freq="h")


def step_starts(year: int) -> pd.DatetimeIndex:
    """The naive starts of the year's 5-minute steps (365 × 288)."""
    hour_starts(year)  # validates the year
    return pd.date_range(f"{year}-01-01", periods=STEPS_PER_YEAR, freq=f"{STEP_MINUTES}min")


def hourly_to_steps(hourly: np.ndarray, offset_h: float) -> np.ndarray:
    """Interpolate hourly samples taken at hour `k + offset_h` linearly onto the step starts.

    The year is treated as periodic (a typical year has no neighbours), so the last hours blend
    into the first. Extra trailing axes of `hourly` are interpolated independently.
    """
    hourly = np.asarray(hourly, dtype=np.float64)
    sample_h = np.arange(HOURS_PER_YEAR) + offset_h
    step_h = np.arange(STEPS_PER_YEAR) / STEPS_PER_HOUR
    columns = hourly.reshape(HOURS_PER_YEAR, -1).T
    steps = [np.interp(step_h, sample_h, col, period=HOURS_PER_YEAR) for col in columns]
    return np.stack(steps, axis=-1).reshape((STEPS_PER_YEAR, *hourly.shape[1:]))


def _read_tmy3(path: pathlib.Path) -> tuple[pd.DataFrame, dict, np.ndarray]:
    data, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
    date = pd.to_datetime(data["Date (MM/DD/YYYY)"], format="%m/%d/%Y")
    hour_end = data["Time (HH:MM)"].str.split(":").str[0].astype(int)
    stamps = np.stack([date.dt.month, date.dt.day, hour_end], axis=1)
    return data[list(WEATHER_COLUMNS)], meta, stamps


def _read_tmy2(path: pathlib.Path) -> tuple[pd.DataFrame, dict, np.ndarray]:
    data, meta = pvlib.iotools.read_tmy2(path)
    frame = pd.DataFrame(
        {
            "ghi": data["GHI"],
            "dni": data["DNI"],
            "dhi": data["DHI"],
            "temp_air": data["DryBulb"] / 10.0,  # TMY2 stores tenths of °C
            "wind_speed": data["Wspd"] / 10.0,  # and tenths of m/s
        }
    )
    stamps = data[["month", "day", "hour"]].to_numpy(dtype=int)
    return frame, {**meta, "TZ": float(meta["TZ"])}, stamps


@functools.cache
def load_weather(site: str, year: int = DEFAULT_YEAR) -> SiteWeather:
    """The hourly weather of `site` (a key of `SITES`), re-dated onto `year`.

    Cached per process: the returned frame is shared, treat it as read-only.
    """
    if site not in SITES:
        raise WeatherError(f"unknown weather site {site!r}; known sites: {sorted(SITES)}")
    filename, fmt = SITES[site]
    path = PVLIB_DATA / filename
    if not path.is_file():
        raise WeatherError(f"weather file {path} is missing from the pvlib installation")
    # Both formats stamp a row with its date and the hour it ends (1..24), not pvlib's index,
    # which crosses leap days of the source years.
    frame, meta, stamps = (_read_tmy3 if fmt == "tmy3" else _read_tmy2)(path)
    starts = hour_starts(year)
    expected = np.stack([starts.month, starts.day, starts.hour + 1], axis=1)
    if stamps.shape != expected.shape or not np.array_equal(stamps, expected):
        raise WeatherError(f"{path}: expected 8760 chronological hours from Jan 1 to Dec 31")
    values = frame.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise WeatherError(f"{path}: missing or non-numeric weather values")
    return SiteWeather(
        name=site,
        latitude=float(meta["latitude"]),
        longitude=float(meta["longitude"]),
        altitude=float(meta["altitude"]),
        utc_offset_h=float(meta["TZ"]),
        hourly=pd.DataFrame(values, index=starts, columns=list(WEATHER_COLUMNS)),
    )
