"""Per-unit PV output (AC power / AC nameplate) of a fixed-tilt plant, from measured weather.

The chain is pvlib's PVWatts-style model: solar position → Perez transposition onto the plane of
the array → glass reflection losses on the beam → SAPM cell temperature → PVWatts DC power with
temperature derating → PVWatts system losses → PVWatts inverter with clipping at nameplate.

Hourly measured irradiance gives hourly energy; the shape inside each hour comes from the same
chain run on 5-minute clear-sky irradiance (Ineichen): the 5-minute output is the clear-sky output
times the hourly ratio measured / clear-sky, interpolated between hour centres. Output is
therefore exactly zero whenever the sun is down and keeps the hour's measured energy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pvlib import iam, inverter, irradiance, location, pvsystem, temperature

from gridrl.timeseries.weather import (
    HOURS_PER_YEAR,
    IRRADIANCE_OFFSET_H,
    SAMPLE_OFFSET_H,
    STEPS_PER_HOUR,
    SiteWeather,
    hourly_to_steps,
    step_starts,
)

TILT_DEG = 25.0  # a common fixed tilt of utility-scale arrays at mid latitudes
AZIMUTH_DEG = 180.0  # facing due south
ALBEDO = 0.2  # grass / typical ground
DC_AC_RATIO = 1.2  # array DC nameplate / inverter AC nameplate, typical of utility plants
GAMMA_PDC = -0.0037  # DC power temperature coefficient, 1/°C (crystalline silicon, PVWatts)
INVERTER_EFFICIENCY = 0.96  # PVWatts nominal inverter efficiency
SYSTEM_LOSSES = pvsystem.pvwatts_losses() / 100.0  # PVWatts defaults: soiling, wiring, ... 14 %
CELL_TEMPERATURE = temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
# Hours whose clear-sky output is below this carry too little energy for a stable ratio.
MIN_CLEAR_SKY_OUTPUT = 0.02
MAX_CLEAR_SKY_RATIO = 2.0  # bounds cloud-enhancement outliers of the hourly ratio


def ac_per_unit(
    site: SiteWeather,
    times: pd.DatetimeIndex,
    sun: pd.DataFrame,
    ghi: np.ndarray,
    dni: np.ndarray,
    dhi: np.ndarray,
    temp_air: np.ndarray,
    wind_speed: np.ndarray,
) -> np.ndarray:
    """AC output per unit of AC nameplate for irradiance (W/m²) and weather at UTC `times`.

    `sun` is pvlib's solar position at `times`.
    """
    loc = _location(site)
    poa = irradiance.get_total_irradiance(
        TILT_DEG,
        AZIMUTH_DEG,
        sun["apparent_zenith"],
        sun["azimuth"],
        dni,
        ghi,
        dhi,
        dni_extra=irradiance.get_extra_radiation(times),
        airmass=loc.get_airmass(times, solar_position=sun)["airmass_relative"],
        albedo=ALBEDO,
        model="perez",
    )
    aoi = irradiance.aoi(TILT_DEG, AZIMUTH_DEG, sun["apparent_zenith"], sun["azimuth"])
    # Perez sky diffuse is NaN where the sun is below the horizon (no air mass) while the hour
    # measured some twilight diffuse light (25 of 8760 hours): count that light as none.
    beam = np.nan_to_num(poa["poa_direct"].to_numpy() * iam.physical(aoi.to_numpy()))
    diffuse = np.nan_to_num(poa["poa_diffuse"].to_numpy())
    effective = np.maximum(beam + diffuse, 0.0)
    cell = temperature.sapm_cell(effective, temp_air, wind_speed, **CELL_TEMPERATURE)
    dc = pvsystem.pvwatts_dc(effective, cell, DC_AC_RATIO, GAMMA_PDC) * (1.0 - SYSTEM_LOSSES)
    ac = inverter.pvwatts(dc, 1.0 / INVERTER_EFFICIENCY, INVERTER_EFFICIENCY)
    return np.clip(np.asarray(ac, dtype=np.float64), 0.0, 1.0)


def _location(site: SiteWeather) -> location.Location:
    return location.Location(site.latitude, site.longitude, altitude=site.altitude)


def hourly_output(site: SiteWeather) -> np.ndarray:
    """Per-unit AC output for each measured hour [8760], the sun taken at the hour's centre."""
    w = site.hourly
    centres = site.utc(w.index + pd.Timedelta(hours=IRRADIANCE_OFFSET_H))
    return ac_per_unit(
        site,
        centres,
        _location(site).get_solarposition(centres),
        w["ghi"].to_numpy(),
        w["dni"].to_numpy(),
        w["dhi"].to_numpy(),
        w["temp_air"].to_numpy(),
        w["wind_speed"].to_numpy(),
    )


def step_output(site: SiteWeather) -> np.ndarray:
    """Per-unit AC output at each 5-minute step start of the year [105120], in [0, 1]."""
    starts = site.utc(step_starts(site.hourly.index[0].year))
    sun = _location(site).get_solarposition(starts)
    clear = _location(site).get_clearsky(starts, solar_position=sun)
    clear_output = ac_per_unit(
        site,
        starts,
        sun,
        clear["ghi"].to_numpy(),
        clear["dni"].to_numpy(),
        clear["dhi"].to_numpy(),
        hourly_to_steps(site.hourly["temp_air"].to_numpy(), SAMPLE_OFFSET_H),
        hourly_to_steps(site.hourly["wind_speed"].to_numpy(), SAMPLE_OFFSET_H),
    )
    clear_hourly = clear_output.reshape(HOURS_PER_YEAR, STEPS_PER_HOUR).mean(axis=1)
    usable = clear_hourly > MIN_CLEAR_SKY_OUTPUT
    ratio = np.clip(hourly_output(site)[usable] / clear_hourly[usable], 0.0, MAX_CLEAR_SKY_RATIO)
    # Interpolate the ratio between the centres of usable hours only; at night it multiplies 0.
    step_h = np.arange(clear_output.size) / STEPS_PER_HOUR
    centre_h = np.flatnonzero(usable) + IRRADIANCE_OFFSET_H
    step_ratio = np.interp(step_h, centre_h, ratio, period=HOURS_PER_YEAR)
    return np.clip(step_ratio * clear_output, 0.0, 1.0)
