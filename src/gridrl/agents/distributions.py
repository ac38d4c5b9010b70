"""The agents' action distribution: a tanh-squashed diagonal Gaussian (distrax).

Actions live in [-1, 1]. A Gaussian sample `raw` is squashed by tanh; the learner keeps `raw`, so a
log-probability is always the base density plus the Jacobian correction at `raw` (distrax's Tanh
bijector computes it stably), never an `atanh` of a saturated action. The pre-squash mean is
bounded (`MEAN_BOUND`) and the log-std clipped, so actions and log-probs stay finite for any
finite network parameters. The entropy bonus uses the base Gaussian's entropy: the squashed one
has no closed form, and the base's is the usual stand-in (SAC, Mava).
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp

Array = jnp.ndarray

MEAN_BOUND = 5.0  # |pre-squash mean| <= 5: tanh(5) = 0.9999, actions can still reach the bounds
LOG_STD_RANGE = (-5.0, 1.0)


def bounded_mean(raw_mean: Array) -> Array:
    """The network's output mapped smoothly into (-MEAN_BOUND, MEAN_BOUND)."""
    return MEAN_BOUND * jnp.tanh(raw_mean / MEAN_BOUND)


def _base(mean: Array, log_std: Array) -> distrax.MultivariateNormalDiag:
    log_std = jnp.clip(log_std, *LOG_STD_RANGE)
    return distrax.MultivariateNormalDiag(mean, jnp.broadcast_to(jnp.exp(log_std), mean.shape))


_TANH = distrax.Block(distrax.Tanh(), ndims=1)


def squashed_normal(mean: Array, log_std: Array) -> distrax.Transformed:
    """The distribution of tanh(raw), raw ~ N(mean, exp(log_std)²) per dimension."""
    return distrax.Transformed(_base(mean, log_std), _TANH)


def sample(key: jax.Array, mean: Array, log_std: Array) -> Array:
    """One pre-squash draw `raw`; the action is `jnp.tanh(raw)`, its density `log_prob(raw)`."""
    return _base(mean, log_std).sample(seed=key).astype(mean.dtype)  # x64 on: still float32


def log_prob(mean: Array, log_std: Array, raw: Array) -> Array:
    """Log-density of the action tanh(raw) (summed over the last axis)."""
    return _base(mean, log_std).log_prob(raw) - _TANH.forward_log_det_jacobian(raw)


def entropy(mean: Array, log_std: Array) -> Array:
    """Entropy of the base Gaussian (summed over the last axis)."""
    return _base(mean, log_std).entropy()
