"""DC sensitivities: the PTDF, MATPOWER's makePTDF conventions (the LODF: `contingency`).

PTDF[l, v]: MW more on branch l (from end) per MW injected at bus v and withdrawn at the
reference bus. Branches out of service or dead have zero rows, and de-energised buses zero
columns.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from gridrl.cases.grid import Grid
from gridrl.physics import islands
from gridrl.physics.dc import DCModel, dc_model, grounded_matrix

Array = jnp.ndarray


def ptdf(grid: Grid, line_status: Array | None = None, *, model: DCModel | None = None) -> Array:
    """[..., n_branch, n_bus] PTDF in MW per MW, the reference bus as slack.

    line_status [..., n_branch] (AND-ed with the grid's status) gives one matrix per sample,
    each from a dense factorisation of its own topology.
    """
    model = dc_model(grid) if model is None else model
    usable, energized = topology_of(grid, model, line_status)
    return ptdf_of_topology(model, usable, energized, line_status is not None)


def topology_of(grid: Grid, model: DCModel, line_status: Array | None) -> tuple[Array, Array]:
    """(usable branches, energised buses) of `line_status` (None: the model's own)."""
    if line_status is None:
        return model.usable, model.energized
    shape = jnp.shape(line_status)
    if len(shape) == 0 or shape[-1] != grid.n_branch:
        raise ValueError(f"line_status must have shape [..., {grid.n_branch}], got {shape}")
    usable = model.usable & jnp.asarray(line_status, bool)
    energized = islands.reachable(model.f_bus, model.t_bus, usable, model.ref, model.n_bus)
    return usable, energized


@partial(jax.jit, static_argnums=(3,))
def ptdf_of_topology(model: DCModel, usable: Array, energized: Array, own_inverse: bool) -> Array:
    """The PTDF of a topology; `own_inverse`: factorise it (else the base inverse serves)."""
    inverse = (
        jnp.linalg.inv(grounded_matrix(model, usable, energized)) if own_inverse else model.inverse
    )
    keep = energized & (jnp.arange(model.n_bus) != model.ref)
    angles = inverse * keep[..., :, None] * keep[..., None, :]  # column v: angles per p.u. at v
    carries = usable & energized[..., model.f_bus]
    b = jnp.where(carries, model.susceptance, 0.0)
    return b[..., :, None] * (angles[..., model.f_bus, :] - angles[..., model.t_bus, :])
