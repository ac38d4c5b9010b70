"""gridrl.env.sparse.where_needed: under vmap, the same answers as sample by sample."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gridrl.env.sparse import where_needed


def halvings(operands):
    """Data-dependent work: halve x until below the threshold, counting the rounds."""
    x, threshold = operands

    def body(carry):
        value, rounds = carry
        return value / 2.0, rounds + 1

    return jax.lax.while_loop(lambda c: c[0] > threshold, body, (x, jnp.int32(0)))


def reduce(x, threshold, share):
    skipped = (x, jnp.int32(-1))
    return where_needed(x > threshold, skipped, halvings, (x, threshold), share)


@pytest.mark.parametrize("level", [80.0, 30.0])  # a fifth of the samples need it; most do
def test_batched_equals_sample_by_sample(level):
    x = jnp.asarray(np.random.default_rng(0).uniform(0.0, 100.0, 37))
    threshold = jnp.asarray(level)  # an unbatched operand
    # a share of 1/16: 3 samples per chunk, so a fifth of the samples take several chunks (most
    # of them: the whole batch at once)
    batched = jax.jit(jax.vmap(lambda v: reduce(v, threshold, 1 / 16)))(x)
    one = jax.jit(lambda v: reduce(v, threshold, 1 / 16))
    expected = [one(v) for v in x]
    np.testing.assert_array_equal(np.asarray(batched[0]), [float(e[0]) for e in expected])
    np.testing.assert_array_equal(np.asarray(batched[1]), [int(e[1]) for e in expected])
    # samples at or below the threshold keep the skipped value, the others are reduced
    assert np.all((np.asarray(batched[1]) == -1) == (np.asarray(x) <= level))
    assert np.all(np.asarray(batched[0]) <= level)


def test_nothing_needed_and_nested_vmap():
    x = jnp.asarray(np.random.default_rng(1).uniform(0.0, 100.0, (3, 5)))
    none = jax.vmap(lambda v: reduce(v, jnp.asarray(200.0), 0.5))(x[0])
    np.testing.assert_array_equal(np.asarray(none[0]), np.asarray(x[0]))
    # a batch of one runs the plain cond
    one = jax.vmap(lambda v: reduce(v, jnp.asarray(10.0), 0.5))(x[0, :1])
    np.testing.assert_array_equal(np.asarray(one[1]), [int(reduce(x[0, 0], 10.0, 0.5)[1])])
    nested = jax.jit(jax.vmap(jax.vmap(lambda v: reduce(v, jnp.asarray(10.0), 0.5))))(x)
    flat = jax.vmap(lambda v: reduce(v, jnp.asarray(10.0), 0.5))(x.reshape(-1))
    np.testing.assert_array_equal(np.asarray(nested[0]).reshape(-1), np.asarray(flat[0]))
