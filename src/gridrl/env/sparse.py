"""Rare, expensive work in a vmapped step, paid only for the samples that need it.

Under `jax.vmap`, a `lax.cond` or `lax.while_loop` whose predicate differs between samples runs
its body for the whole batch (and a while loop for as many rounds as the slowest sample needs).
A cascade after a trip is such work: a few samples of a batch need it, each round a full power
flow. `where_needed` keeps the unbatched meaning of a `lax.cond`, and under vmap gathers the
samples that need the work, a `share` of the batch at a time, runs it on those only and
scatters the results back (a custom batching rule, `jax.custom_batching.custom_vmap`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Array = jnp.ndarray


def where_needed(
    needed: Array, skipped: Any, work: Callable[[Any], Any], operands: Any, share: float = 0.125
) -> Any:
    """`work(operands)` if `needed` (a bool scalar per sample) else `skipped`, a pytree shaped
    like work's result. Under vmap, `work` runs on the needing samples only, in chunks of
    ceil(share·batch). `work` must take all its arrays through `operands` (no closed-over
    tracers); unbatched operands stay unbatched inside it."""

    def unbatched(needed: Array, skipped: Any, operands: Any) -> Any:
        return jax.lax.cond(needed, work, lambda _: skipped, operands)

    run = jax.custom_batching.custom_vmap(unbatched)

    @run.def_vmap
    def run_batched(axis_size: int, in_batched, needed, skipped, operands):
        needed_batched, skipped_batched, operands_batched = in_batched
        if axis_size == 1:  # a batch of one: the plain cond, which skips the work when unneeded
            args = [
                jax.tree.map(lambda x, batched: x[0] if batched else x, arg, batched)
                for arg, batched in zip((needed, skipped, operands), in_batched, strict=True)
            ]
            result = jax.tree.map(lambda x: x[None], unbatched(*args))
            return result, jax.tree.map(lambda _: True, result)
        result = jax.tree.map(
            lambda x, batched: x if batched else jnp.broadcast_to(x, (axis_size, *x.shape)),
            skipped,
            skipped_batched,
        )
        if not needed_batched:
            needed = jnp.broadcast_to(needed, (axis_size,))
        in_axes = jax.tree.map(lambda batched: 0 if batched else None, operands_batched)
        capacity = max(1, math.ceil(share * axis_size))

        def chunk(state):
            result, remaining = state
            index = jnp.nonzero(remaining, size=capacity, fill_value=axis_size)[0]
            valid = index < axis_size
            safe = jnp.where(valid, index, 0)  # padded slots repeat sample 0; dropped below
            picked = jax.tree.map(
                lambda x, batched: x[safe] if batched else x, operands, operands_batched
            )
            done = jax.vmap(work, in_axes=(in_axes,))(picked)
            result = jax.tree.map(lambda r, d: r.at[index].set(d, mode="drop"), result, done)
            return result, remaining.at[index].set(False, mode="drop")

        # where most samples need it, chunk after chunk covers them at about the cost of the
        # whole batch at once; one traced copy of `work` keeps the compile time down
        result, _ = jax.lax.while_loop(lambda state: jnp.any(state[1]), chunk, (result, needed))
        return result, jax.tree.map(lambda _: True, result)

    return run(needed, skipped, operands)
