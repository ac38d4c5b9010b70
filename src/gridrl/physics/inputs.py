"""Checks of the inputs of the power-flow functions, at the Python boundary (before tracing)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def batch_shape(caller: str, name: str, value, size: int, what: str) -> tuple[int, ...]:
    """The batch dimensions of an input [..., size]; a clear error for a wrong shape or, where
    the values are concrete, for a non-finite entry."""
    shape = jnp.shape(value)
    if len(shape) == 0 or shape[-1] != size:
        raise ValueError(f"{caller}: {name} must have shape [..., {size}] ({what}), got {shape}")
    try:
        finite = np.isfinite(np.asarray(value)).all()
    except jax.errors.TracerArrayConversionError:
        finite = True  # inside a trace: nothing to check
    if not finite:
        raise ValueError(f"{caller}: {name} has a NaN or infinite entry")
    return tuple(shape[:-1])
