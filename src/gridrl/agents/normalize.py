"""Running mean and variance of a stream of batches (observation and value normalisation).

Chan et al.'s parallel update merges a batch's moments into the running ones, so the statistics
are exact whatever the batch sizes; they live in the training state and in checkpoints.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

Array = jnp.ndarray

EPSILON = 1e-8
CLIP = 10.0  # normalised values beyond ±10 standard deviations are clipped (a stale outlier)


@struct.dataclass
class RunningStats:
    mean: Array
    var: Array
    count: Array  # scalar float: samples seen

    @classmethod
    def zeros(cls, shape: tuple[int, ...], dtype=jnp.float32) -> RunningStats:
        return cls(jnp.zeros(shape, dtype), jnp.ones(shape, dtype), jnp.zeros((), dtype))

    def update(self, batch: Array) -> RunningStats:
        """Merge `batch` ([..., *shape]: every leading axis is samples)."""
        flat = batch.reshape(-1, *self.mean.shape).astype(self.mean.dtype)
        n = flat.shape[0]
        mean, var = jnp.mean(flat, axis=0), jnp.var(flat, axis=0)
        total = self.count + n
        delta = mean - self.mean
        new_mean = self.mean + delta * n / total
        m2 = self.var * self.count + var * n + delta**2 * self.count * n / total
        return RunningStats(new_mean, m2 / total, total)

    @property
    def std(self) -> Array:
        return jnp.sqrt(self.var + EPSILON)

    def normalize(self, x: Array) -> Array:
        return jnp.clip((x - self.mean) / self.std, -CLIP, CLIP)

    def denormalize(self, x: Array) -> Array:
        return x * self.std + self.mean
