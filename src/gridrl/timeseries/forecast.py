"""Forecasts whose error grows with the horizon, for agents that plan ahead (pure JAX).

A forecast issued at step t for step t + h (h = 1..H) has an error of standard deviation

    σ(h) = min(σ_1 · sqrt(h), σ_max)

built as a random walk over the horizon (independent Gaussian increments of variance
σ(h)² − σ(h−1)²), so each issued forecast is a coherent trajectory rather than independent
noise per lead time; forecasts issued at different steps have independent errors. Load errors
are relative (forecast = actual · (1 + e)); wind and solar errors are absolute per unit of
capacity, clipped to [0, 1], and solar is forecast exactly 0 where it is 0 (the sun's position is
known in advance). The default σ values give errors of the order reported for operational
forecasts: load ≈ 1 % at one hour ahead, capped at 3 % (day-ahead MAPE of utilities is 2-3 %);
wind ≈ 5 % of capacity at one hour, capped at 15 % (day-ahead); solar ≈ 4 % at one hour, capped
at 10 %.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ForecastError:
    """How a forecast's error grows with the horizon, and the physical bounds of the quantity."""

    sigma_1: float  # error std one step (5 min) ahead
    sigma_max: float  # cap of the error std at long horizons
    relative: bool = struct.field(pytree_node=False)  # error relative to the actual value
    unit_interval: bool = struct.field(pytree_node=False)  # clip forecasts to [0, 1]
    keep_zeros: bool = struct.field(pytree_node=False)  # a zero actual is forecast exactly


LOAD_FORECAST = ForecastError(0.003, 0.03, relative=True, unit_interval=False, keep_zeros=False)
WIND_FORECAST = ForecastError(0.015, 0.15, relative=False, unit_interval=True, keep_zeros=False)
SOLAR_FORECAST = ForecastError(0.012, 0.10, relative=False, unit_interval=True, keep_zeros=True)


def horizon_sigma(error: ForecastError, horizon_steps: int) -> jax.Array:
    """σ(h) for h = 1..horizon_steps [horizon_steps]."""
    h = jnp.arange(1, horizon_steps + 1)
    return jnp.minimum(error.sigma_1 * jnp.sqrt(h), error.sigma_max)


def forecast(
    key: jax.Array, actual: jax.Array, horizon_steps: int, error: ForecastError
) -> jax.Array:
    """Forecasts [T, horizon_steps, ...] of `actual` [T, ...]: out[t, h-1] predicts actual[t+h].

    Lead times past the last step forecast the last step; pass an `actual` that extends
    `horizon_steps` beyond the episode (`sample_episode(..., n_steps=T + H)`) to avoid that.
    """
    n_steps = actual.shape[0]
    sigma = horizon_sigma(error, horizon_steps).astype(actual.dtype)
    increment_std = jnp.sqrt(jnp.diff(jnp.square(sigma), prepend=0.0))
    increment_std = increment_std.reshape(horizon_steps, *([1] * (actual.ndim - 1)))
    z = jax.random.normal(key, (n_steps, horizon_steps, *actual.shape[1:]), actual.dtype)
    errors = jnp.cumsum(increment_std * z, axis=1)
    target_steps = jnp.minimum(
        jnp.arange(n_steps)[:, None] + jnp.arange(1, horizon_steps + 1), n_steps - 1
    )
    target = actual[target_steps]
    predicted = target * (1.0 + errors) if error.relative else target + errors
    if error.unit_interval:
        predicted = jnp.clip(predicted, 0.0, 1.0)
    if error.keep_zeros:
        predicted = jnp.where(target == 0.0, 0.0, predicted)
    return predicted
