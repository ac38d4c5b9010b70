"""From an operator's intent (a target dispatch, curtailment and shedding) to the agents' actions.

The inverse of the environment's action decoding (gridrl.env.dispatch, docs/env.md): a unit's
action is its move over one step's ramp, a renewable's its curtailed share, a bus's its shed share
over `max_shed_share`. Whatever the intent asks beyond one step's ramp or the shedding limit is
clipped, as the environment would. The safety agent never overrides (gate 0), the strategic
directives are 0. Pure JAX, one grid; vmap for a batch.
"""

from __future__ import annotations

import jax.numpy as jnp

from gridrl.env.config import EnvConfig
from gridrl.env.dispatch import step_ramp
from gridrl.env.state import EnvParams

Array = jnp.ndarray


def move_scale(params: EnvParams) -> Array:
    """[n_gen] MW that an action of 1 moves each unit within one step: its ramp (a unit without
    a ramp limit — only renewables in the built-in case — scales by its pmax)."""
    ramp = step_ramp(params)
    return jnp.where(jnp.isfinite(ramp) & (ramp > 0), ramp, params.grid.pmax)


def unit_moves(params: EnvParams, pg: Array, target: Array) -> Array:
    """[n_gen] action of each unit to move from `pg` towards `target` (MW) within one step."""
    return jnp.clip((target - pg) / jnp.maximum(move_scale(params), 1e-6), -1.0, 1.0)


def encode(
    params: EnvParams,
    config: EnvConfig,
    pg: Array,
    target: Array,
    curtail_share: Array | None = None,
    shed_share: Array | None = None,
) -> dict[str, Array]:
    """The actions that move every dispatchable unit from `pg` towards `target` ([n_gen] MW),
    curtail each renewable by `curtail_share` ([n_gen] in [0, 1], of its availability) and shed
    `shed_share` ([n_bus] in [0, 1], of each bus's demand)."""
    layout = params.layout
    dtype = params.grid.pd.dtype
    move = unit_moves(params, pg, target)
    curtail = jnp.zeros_like(pg) if curtail_share is None else jnp.clip(curtail_share, 0.0, 1.0)
    shed = jnp.zeros_like(params.grid.pd) if shed_share is None else shed_share
    shed = jnp.clip(shed / max(config.max_shed_share, 1e-6), 0.0, 1.0)
    fast = jnp.where(layout.fast_mask, move[layout.fast], 0.0)
    renewable = jnp.where(layout.renewable_mask, curtail[layout.renewable], 0.0)
    buses = jnp.where(layout.bus_mask, shed[layout.bus], 0.0)
    regional = jnp.concatenate([fast, renewable, buses], axis=1).astype(dtype)
    n_region = layout.n_region
    actions = {"strategic": jnp.concatenate([move[layout.slow], jnp.zeros(n_region)]).astype(dtype)}
    actions |= {f"operational_{r}": regional[r] for r in range(n_region)}
    actions["safety"] = jnp.zeros(2 * n_region, dtype)
    return actions
