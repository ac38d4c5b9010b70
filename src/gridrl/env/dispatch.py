"""From the agents' actions to unit setpoints, curtailment and load shedding, then balancing.

Every action is a vector in [-1, 1] (docs/env.md gives the layout):
- strategic: [redispatch of each slow unit | directive per region]
- operational_r: [redispatch of each fast unit | curtailment of each renewable | shed per bus]
- safety: [gate per region | emergency shed per region]
Redispatch a moves a unit by a·(its ramp over one step); curtailment and shedding use max(a, 0)
(so a <= 0 means none), shedding scaled by `max_shed_share`; a gate > 0 replaces the region's
operational action by "hold the units, no curtailment, no shedding" plus the safety agent's
emergency shed. Imbalances are shared by the dispatchable units within their ramp and limits
(distributed slack, in proportion to headroom); what they cannot cover becomes automatic load
shedding, and a surplus is spilled from the renewables.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from gridrl.env.config import STEP_MINUTES, EnvConfig
from gridrl.env.layout import Layout, per_element
from gridrl.env.state import EnvParams

Array = jnp.ndarray


def action_sizes(layout: Layout) -> dict[str, int]:
    """Length of each agent's action vector."""
    n_region = layout.n_region
    operational = layout.fast.shape[1] + layout.renewable.shape[1] + layout.bus.shape[1]
    sizes = {"strategic": int(layout.slow.shape[0]) + n_region}
    sizes |= {f"operational_{r}": int(operational) for r in range(n_region)}
    sizes["safety"] = 2 * n_region
    return sizes


def sanitize(actions: dict[str, Array], dtype) -> tuple[dict[str, Array], Array]:
    """Clip every action to [-1, 1], NaN to 0, in the env's `dtype` (a float64 action must not
    promote the state); flag whether anything had to change."""
    clean, touched = {}, jnp.array(False)
    for name, action in actions.items():
        action = jnp.asarray(action)
        finite = jnp.where(jnp.isnan(action), 0.0, action)
        clipped = jnp.clip(finite, -1.0, 1.0)
        touched = touched | jnp.any(clipped != action) | jnp.any(jnp.isnan(action))
        clean[name] = clipped.astype(dtype)
    return clean, touched


@struct.dataclass
class Decoded:
    """The actions, split into their parts (region-major where per region)."""

    slow: Array  # [n_slow] in [-1, 1]
    directive: Array  # [n_region] in [-1, 1]
    fast: Array  # [n_region, max_fast] in [-1, 1]
    curtail: Array  # [n_region, max_renewable] in [0, 1]
    shed: Array  # [n_region, max_bus] in [0, 1]
    gate: Array  # [n_region] 0 or 1
    emergency: Array  # [n_region] in [0, 1]


def decode(actions: dict[str, Array], layout: Layout) -> Decoded:
    n_slow, n_region = int(layout.slow.shape[0]), layout.n_region
    n_fast, n_ren = layout.fast.shape[1], layout.renewable.shape[1]
    strategic = actions["strategic"]
    operational = jnp.stack([actions[f"operational_{r}"] for r in range(n_region)])
    safety = actions["safety"]
    gate = (safety[:n_region] > 0.0).astype(strategic.dtype)
    hold = 1.0 - gate[:, None]
    return Decoded(
        slow=strategic[:n_slow],
        directive=strategic[n_slow:],
        fast=operational[:, :n_fast] * hold,
        curtail=jnp.maximum(operational[:, n_fast : n_fast + n_ren], 0.0) * hold,
        shed=jnp.maximum(operational[:, n_fast + n_ren :], 0.0) * hold,
        gate=gate,
        emergency=jnp.maximum(safety[n_region:], 0.0),
    )


@struct.dataclass
class Setpoints:
    """The agents' intent for this step, before balancing."""

    target: Array  # [n_gen] MW: dispatchable units within their ramp and limits; renewables' output
    lower: Array  # [n_gen] MW: the least a dispatchable unit can produce this step
    upper: Array  # [n_gen] MW: the most a dispatchable unit can produce this step
    curtailed: Array  # [n_gen] MW of renewable availability not used
    shed: Array  # [n_bus] MW of load shed by the agents


def step_ramp(params: EnvParams) -> Array:
    """MW a unit can move within one step: its ramp over the step, at most its capacity (a unit
    the case gives no ramp limit, ramp = inf, crosses its whole range in one step)."""
    grid = params.grid
    return jnp.minimum(grid.ramp * STEP_MINUTES, jnp.maximum(grid.pmax, 0.0))


def curtail_shares(layout: Layout, decoded: Decoded) -> Array:
    """[n_gen] share of each renewable's availability the actions curtail (others 0)."""
    return per_element(layout.unit_curtail, decoded.curtail)


def shed_shares(layout: Layout, config: EnvConfig, decoded: Decoded) -> Array:
    """[n_bus] share of each bus's demand the actions shed: the larger of its region's
    operational shed and the safety agent's emergency shed, times `max_shed_share`."""
    bus_shed = per_element(layout.bus_slot, decoded.shed)
    return jnp.maximum(bus_shed, decoded.emergency[layout.bus_region]) * config.max_shed_share


def setpoints(
    params: EnvParams,
    config: EnvConfig,
    decoded: Decoded,
    pg: Array,
    demand: Array,
    available: Array,
    unit_on: Array,
) -> Setpoints:
    """Apply the decoded actions to the previous output `pg` within ramps and limits."""
    layout, grid = params.layout, params.grid
    ramp = step_ramp(params)
    move = per_element(
        layout.unit_move, decoded.slow * ramp[layout.slow], decoded.fast * ramp[layout.fast]
    )
    dispatchable = layout.dispatchable & unit_on
    lower = jnp.where(dispatchable, jnp.maximum(grid.pmin, pg - ramp), 0.0)
    upper = jnp.where(dispatchable, jnp.minimum(available, pg + ramp), 0.0)
    lower = jnp.minimum(lower, upper)  # a unit derated below its minimum runs at what it can
    # renewables: what the weather gives, less curtailment
    curtail_share = curtail_shares(layout, decoded)
    renewable_on = unit_on & ~layout.dispatchable
    renewable = jnp.where(renewable_on, available, 0.0)
    curtailed = renewable * jnp.clip(curtail_share, 0.0, 1.0)
    target = jnp.where(dispatchable, jnp.clip(pg + move, lower, upper), renewable - curtailed)
    share = shed_shares(layout, config, decoded)
    return Setpoints(
        target=target,
        lower=lower,
        upper=upper,
        curtailed=curtailed,
        shed=jnp.maximum(demand, 0.0) * jnp.clip(share, 0.0, 1.0),
    )


@struct.dataclass
class Balance:
    """The dispatch after balancing, and what balancing had to shed or spill."""

    pg: Array  # [n_gen] MW
    auto_shed: Array  # [n_bus] MW shed automatically for want of generation
    spilled: Array  # [n_gen] MW of renewables spilled for want of load


def balance(sp: Setpoints, load: Array, dispatchable: Array, losses: Array) -> Balance:
    """Share the imbalance between `load` [n_bus] (served demand, shunts included) plus the
    expected branch `losses` (MW) and the setpoints among the dispatchable units, in proportion
    to their headroom, within limits."""
    need = jnp.sum(load) + losses - jnp.sum(sp.target)
    up = jnp.where(dispatchable, sp.upper - sp.target, 0.0)
    down = jnp.where(dispatchable, sp.target - sp.lower, 0.0)
    total_up, total_down = jnp.sum(up), jnp.sum(down)
    raised = jnp.clip(need, 0.0, total_up)
    lowered = jnp.clip(-need, 0.0, total_down)
    pg = (
        sp.target
        + up * raised / jnp.maximum(total_up, 1e-9)
        - down * lowered / jnp.maximum(total_down, 1e-9)
    )
    deficit = jnp.maximum(need - total_up, 0.0)
    surplus = jnp.maximum(-need - total_down, 0.0)
    positive_load = jnp.maximum(load, 0.0)
    auto_shed = positive_load * jnp.minimum(deficit / jnp.maximum(jnp.sum(positive_load), 1e-9), 1)
    renewable = jnp.where(dispatchable, 0.0, pg)
    spill_share = jnp.minimum(surplus / jnp.maximum(jnp.sum(renewable), 1e-9), 1.0)
    spilled = renewable * spill_share
    return Balance(pg=pg - spilled, auto_shed=auto_shed, spilled=spilled)
