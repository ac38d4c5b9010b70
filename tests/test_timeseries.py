"""gridrl.timeseries: measured-weather profiles, the JAX episode sampler and forecasts."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from pvlib import location

from gridrl import timeseries as ts
from gridrl.timeseries import load, solar
from gridrl.timeseries.sampling import ar1
from gridrl.timeseries.weather import STEPS_PER_YEAR, step_starts

N_BUS = 12
WIND_SITE = np.array([0, 1, 2, 1])
SOLAR_SITE = np.array([0, 2])
BATCH = 16  # every batched call uses it, so the batched sampler compiles once


@pytest.fixture(scope="session")
def profiles() -> ts.Profiles:
    return ts.build_profiles()


@pytest.fixture(scope="session")
def sampling(profiles) -> ts.Sampling:
    return ts.make_sampling(profiles, np.linspace(10.0, 120.0, N_BUS), WIND_SITE, SOLAR_SITE)


@pytest.fixture(scope="session")
def sample_batch():
    """`sample_episode` over a batch of keys, compiled once for the module (same shapes)."""
    return jax.jit(jax.vmap(ts.sample_episode, in_axes=(0, None, None)))


# --- weather -------------------------------------------------------------------------------


@pytest.mark.parametrize("site", sorted(ts.SITES))
def test_weather_is_a_full_plausible_year(site):
    w = ts.load_weather(site)
    assert w.hourly.shape == (8760, 5)
    assert w.hourly.index[0] == pd.Timestamp("2019-01-01 00:00")
    assert w.hourly.index[-1] == pd.Timestamp("2019-12-31 23:00")
    assert w.hourly.index.tz is None
    assert np.isfinite(w.hourly.to_numpy()).all()
    assert (w.hourly[["ghi", "dni", "dhi", "wind_speed"]] >= 0).all().all()
    assert w.hourly["ghi"].max() < 1400.0  # below the solar constant
    assert -40.0 < w.hourly["temp_air"].min() < w.hourly["temp_air"].max() < 45.0
    # Northern hemisphere: July is warmer than January.
    by_month = w.hourly["temp_air"].groupby(w.hourly.index.month).mean()
    assert by_month[7] > by_month[1]


def test_weather_rejects_unknown_site_and_leap_year():
    with pytest.raises(ts.WeatherError, match="unknown weather site"):
        ts.load_weather("atlantis")
    with pytest.raises(ts.WeatherError, match="leap year"):
        ts.load_weather("miami", 2020)


def test_build_profiles_rejects_unknown_sites():
    with pytest.raises(ts.WeatherError, match="wind_sites"):
        ts.build_profiles(wind_sites=("greensboro", "nowhere"))
    with pytest.raises(ts.WeatherError, match="solar_sites"):
        ts.build_profiles(solar_sites=())


# --- profiles ------------------------------------------------------------------------------


def test_profiles_shapes_dtypes_and_ranges(profiles):
    n_sites = len(ts.ALL_SITES)
    assert profiles.load.shape == (365, 288)
    assert profiles.wind.shape == (365, 288, n_sites)
    assert profiles.solar.shape == (365, 288, n_sites)
    assert profiles.day_of_week.shape == (365,)
    for series in (profiles.load, profiles.wind, profiles.solar):
        assert series.dtype == jnp.float32
        assert bool(jnp.isfinite(series).all())
    assert float(profiles.load.min()) > 0.0
    assert float(profiles.load.max()) == 1.0
    for series in (profiles.wind, profiles.solar):
        assert float(series.min()) >= 0.0
        assert float(series.max()) <= 1.0
    assert ts.build_profiles() is profiles  # cached


@pytest.mark.parametrize("site_index", range(len(ts.ALL_SITES)))
def test_solar_is_zero_when_the_sun_is_down(profiles, site_index):
    site = ts.load_weather(ts.ALL_SITES[site_index])
    times = site.utc(step_starts(2019))
    sun = location.Location(site.latitude, site.longitude, altitude=site.altitude)
    sun = sun.get_solarposition(times)
    night = sun["apparent_elevation"].to_numpy() < 0.0
    output = np.asarray(profiles.solar[..., site_index]).reshape(-1)
    assert 0.35 < night.mean() < 0.65
    assert (output[night] == 0.0).all()
    assert (output[~night] > 0.0).mean() > 0.9  # daylight almost always produces something


@pytest.mark.parametrize("site", sorted(ts.SITES))
def test_solar_steps_keep_the_measured_hourly_energy(site):
    weather = ts.load_weather(site)
    measured = solar.hourly_output(weather)
    steps = solar.step_output(weather)
    assert steps.shape == (STEPS_PER_YEAR,)
    assert steps.mean() == pytest.approx(measured.mean(), abs=0.002)


def test_capacity_factors_are_plausible(profiles):
    stats = ts.summary(profiles)
    for site in ts.ALL_SITES:
        assert 0.08 < stats[f"solar_cf_{site}"] < 0.25
        assert 0.10 < stats[f"wind_cf_{site}"] < 0.55
    # The windy Alaskan coast beats inland North Carolina; sunny Miami beats Alaska.
    assert stats["wind_cf_sand_point"] > stats["wind_cf_greensboro"] + 0.1
    assert stats["solar_cf_miami"] > stats["solar_cf_sand_point"] + 0.05
    assert 0.5 < stats["load_factor"] < 0.7


def test_load_has_the_operators_daily_and_seasonal_shape(profiles):
    daily = np.asarray(profiles.load)
    weekday = np.asarray(profiles.day_of_week) < 5
    hour = np.arange(288) / 12
    afternoon = (hour >= 13) & (hour < 18)
    night = (hour >= 2) & (hour < 5)
    assert (daily[weekday][:, afternoon].mean(axis=1) > daily[weekday][:, night].mean(axis=1)).all()
    # Weekdays carry more load than weekends at the same hours.
    assert daily[weekday][:, afternoon].mean() > daily[~weekday][:, afternoon].mean()
    # Greensboro's annual peak is a summer (June-August) afternoon.
    day, step = np.unravel_index(daily.argmax(), daily.shape)
    assert 151 <= day < 243
    assert 12 <= hour[step] < 19


def test_calendar_marks_holidays_as_sundays():
    weekday = load.day_of_week(2019)
    assert weekday[0] == 6  # New Year's Day, a Tuesday
    assert weekday[pd.Timestamp("2019-07-04").dayofyear - 1] == 6
    assert weekday[pd.Timestamp("2019-07-05").dayofyear - 1] == 4  # an ordinary Friday


def test_day_selections(profiles):
    peak = ts.peak_days(profiles, 0.1)
    assert peak.size == 36 and (np.diff(peak) > 0).all()
    daily_peak = np.asarray(profiles.load).max(axis=1)
    assert daily_peak[peak].min() >= np.delete(daily_peak, peak).max()
    variable = ts.variable_days(profiles, 0.2)
    assert variable.size == 73
    weights = ts.day_weights(variable)
    assert weights.sum() == 73 and set(np.flatnonzero(weights)) == set(variable)
    with pytest.raises(ValueError, match="fraction"):
        ts.peak_days(profiles, 0.0)
    with pytest.raises(ValueError, match="days"):
        ts.day_weights(np.array([400]))


# --- sampling ------------------------------------------------------------------------------


def test_episodes_shapes_ranges_and_determinism(profiles, sampling, sample_batch):
    keys = jax.random.split(jax.random.key(3), BATCH)
    batch = sample_batch(keys, profiles, sampling)
    assert batch.day.shape == (BATCH,)
    assert batch.load_mw.shape == (BATCH, 288, N_BUS)
    assert batch.wind.shape == (BATCH, 288, WIND_SITE.size)
    assert batch.solar.shape == (BATCH, 288, SOLAR_SITE.size)
    for series in (batch.load_mw, batch.wind, batch.solar):
        assert series.dtype == jnp.float32
        assert bool(jnp.isfinite(series).all())
    assert float(batch.load_mw.min()) > 0.0
    assert float(batch.wind.min()) >= 0.0 and float(batch.wind.max()) <= 1.0
    assert float(batch.solar.min()) >= 0.0 and float(batch.solar.max()) <= 1.0
    again = sample_batch(keys, profiles, sampling)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(batch), jax.tree.leaves(again), strict=True)
    )
    assert not np.array_equal(batch.load_mw[0], batch.load_mw[1])


def test_episode_without_noise_is_the_profile_of_its_day(profiles):
    quiet = ts.Noise(load_sigma=0.0, bus_sigma=0.0, wind_sigma=0.0, solar_sigma=0.0)
    peak = np.full(N_BUS, 50.0)
    sampling = ts.make_sampling(
        profiles, peak, WIND_SITE, SOLAR_SITE, diversity_sigma=0.0, noise=quiet
    )
    sample = jax.jit(ts.sample_episode, static_argnames="n_steps")
    episode = sample(jax.random.key(0), profiles, sampling, n_steps=300)
    day = int(episode.day)
    following = (day + 1) % 365  # steps past the day continue into the next one
    expected_load = np.concatenate([profiles.load[day], profiles.load[following, :12]])
    np.testing.assert_allclose(episode.load_mw, 50.0 * expected_load[:, None] * np.ones(N_BUS))
    np.testing.assert_array_equal(episode.wind[:288], profiles.wind[day][:, WIND_SITE])
    np.testing.assert_array_equal(episode.solar[:288], profiles.solar[day][:, SOLAR_SITE])


def test_bus_diversity_is_fixed_by_seed_and_keeps_the_total(profiles):
    peak = np.linspace(10.0, 120.0, N_BUS)
    a = ts.make_sampling(profiles, peak, WIND_SITE, SOLAR_SITE, seed=7)
    b = ts.make_sampling(profiles, peak, WIND_SITE, SOLAR_SITE, seed=7)
    c = ts.make_sampling(profiles, peak, WIND_SITE, SOLAR_SITE, seed=8)
    np.testing.assert_array_equal(a.load_mw, b.load_mw)
    assert not np.array_equal(a.load_mw, c.load_mw)
    assert float(a.load_mw.sum()) == pytest.approx(peak.sum(), rel=1e-6)
    assert not np.allclose(a.load_mw, peak)


def test_vmapped_episodes_start_only_on_allowed_days(profiles, sample_batch):
    peak = ts.peak_days(profiles)
    sampling = ts.make_sampling(profiles, np.full(N_BUS, 5.0), WIND_SITE, SOLAR_SITE, days=peak)
    batch = sample_batch(jax.random.split(jax.random.key(1), BATCH), profiles, sampling)
    assert batch.load_mw.shape == (BATCH, 288, N_BUS)
    assert set(np.asarray(batch.day)) <= set(peak)
    assert len(set(np.asarray(batch.day))) > 5  # and they do vary


def test_ar1_noise_has_the_documented_std_and_correlation():
    sigma = jnp.full(4000, 0.05, jnp.float32)
    x = np.asarray(jax.jit(ar1, static_argnums=1)(jax.random.key(5), 64, 0.9, sigma))
    assert x.std(axis=1) == pytest.approx(np.full(64, 0.05), rel=0.06)  # at every step
    lag1 = (x[1:] * x[:-1]).mean() / x.var()
    assert lag1 == pytest.approx(0.9, abs=0.01)


def test_grid_without_solar_plants(profiles, sample_batch):
    sampling = ts.make_sampling(profiles, np.full(N_BUS, 5.0), WIND_SITE, [])
    batch = sample_batch(jax.random.split(jax.random.key(2), BATCH), profiles, sampling)
    assert batch.solar.shape == (BATCH, 288, 0)
    assert batch.wind.shape == (BATCH, 288, WIND_SITE.size)
    assert bool(jnp.isfinite(batch.load_mw).all())


def test_make_sampling_rejects_bad_input(profiles):
    with pytest.raises(ValueError, match="wind_site"):
        ts.make_sampling(profiles, np.ones(3), [0, 3], [0])
    with pytest.raises(ValueError, match="solar_site"):
        ts.make_sampling(profiles, np.ones(3), [0], [0.5])
    with pytest.raises(ValueError, match="load_mw_peak"):
        ts.make_sampling(profiles, np.array([1.0, np.nan]), [0], [0])
    with pytest.raises(ValueError, match="days"):
        ts.make_sampling(profiles, np.ones(3), [0], [0], days=np.array([], dtype=int))


# --- forecasts -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forecast_fn():
    return jax.jit(ts.forecast, static_argnums=(2, 3))


@pytest.mark.parametrize(
    ("error", "level"), [(ts.LOAD_FORECAST, 1.0), (ts.WIND_FORECAST, 0.5)], ids=["load", "wind"]
)
def test_forecast_error_grows_with_horizon_as_documented(forecast_fn, error, level):
    actual = jnp.full((4000, 25), level, jnp.float32)
    predicted = np.asarray(forecast_fn(jax.random.key(11), actual, 48, error))
    assert predicted.shape == (4000, 48, 25)
    spread = (predicted[:-48] - level).std(axis=(0, 2))  # skip issue steps near the end
    sigma = np.asarray(ts.horizon_sigma(error, 48))
    np.testing.assert_allclose(spread / (level if error.relative else 1.0), sigma, rtol=0.03)
    assert spread[0] < spread[11] < spread[47]


def test_forecasts_respect_physical_bounds(forecast_fn, profiles):
    day = profiles.solar[180]  # [288, n_sites], zero at night
    predicted = forecast_fn(jax.random.key(2), day, 36, ts.SOLAR_FORECAST)
    assert predicted.shape == (288, 36, len(ts.ALL_SITES))
    assert float(predicted.min()) >= 0.0 and float(predicted.max()) <= 1.0
    steps = np.minimum(np.arange(288)[:, None] + np.arange(1, 37), 287)
    target = np.asarray(day)[steps]
    assert (np.asarray(predicted)[target == 0.0] == 0.0).all()
    assert (np.asarray(predicted)[target > 0.2] != target[target > 0.2]).all()


def test_forecast_vmaps_over_episodes(forecast_fn, profiles, sampling, sample_batch):
    batch = sample_batch(jax.random.split(jax.random.key(9), BATCH), profiles, sampling)
    keys = jax.random.split(jax.random.key(10), BATCH)
    predicted = jax.vmap(forecast_fn, in_axes=(0, 0, None, None))(
        keys, batch.load_mw, 12, ts.LOAD_FORECAST
    )
    assert predicted.shape == (BATCH, 288, 12, N_BUS)
    assert bool(jnp.isfinite(predicted).all())
    # An hour ahead, load forecasts stay within a few percent of the actual.
    relative = predicted[:, :-12, 11] / batch.load_mw[:, 12:] - 1.0
    assert float(jnp.abs(relative).max()) < 6 * 0.003 * np.sqrt(12)
