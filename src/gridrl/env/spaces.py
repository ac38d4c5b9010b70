"""A minimal Box space in JAX (gymnax style): shape, bounds, sampling, membership."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np


@dataclass(frozen=True)
class Box:
    low: float
    high: float
    shape: tuple[int, ...]
    dtype: type = np.float32

    def sample(self, key: jax.Array) -> jax.Array:
        low = max(self.low, -1e6)
        high = min(self.high, 1e6)
        return jax.random.uniform(key, self.shape, self.dtype, low, high)

    def contains(self, x) -> bool:
        x = np.asarray(x)
        return x.shape == self.shape and bool(np.all((x >= self.low) & (x <= self.high)))
