"""The layered reward: safety 50 %, cost 30 %, uptime 20 %, and penalties for hard violations.

    safety = −(Σ overload excess + 10·Σ voltage violation (AC) + 10·ENS share + trips)
    cost   = −(generation cost + VOLL·ENS + curtailment price·curtailed) / cost scale
    uptime = −(reserve shortfall share + (1 − N-1 secure share))
    reward = 0.5·safety + 0.3·cost + 0.2·uptime − trip penalty·trips − blackout penalty·blackout

each term weighted inside by RewardWeights, so a normal step scores about −0.5 (the cost of
running the grid) and a violation costs several units. The strategic agent gets the global reward,
each operational agent the same layers restricted to its region (branches touching it, its
buses and units; uptime stays global), the safety agent the global safety terms and penalties.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from gridrl.env.config import RewardWeights
from gridrl.env.state import EnvParams

Array = jnp.ndarray


@struct.dataclass
class StepOutcome:
    """What the rewards, observations and metrics need from a step (MW, MW·h per hour, shares)."""

    pg: Array  # [n_gen] MW
    demand: Array  # [n_bus] MW
    not_served: Array  # [n_bus] MW shed or lost
    curtailed: Array  # [n_gen] MW of renewables curtailed or spilled
    loading: Array  # [n_branch]
    line_status: Array  # bool [n_branch]
    tripped: Array  # bool [n_branch]
    vm: Array  # [n_bus]
    energized: Array  # bool [n_bus]
    reserve: Array  # MW
    n1_secure: Array  # share
    blackout: Array  # bool
    voltage_checked: bool = struct.field(pytree_node=False, default=False)


def generation_cost(params: EnvParams, pg: Array) -> Array:
    """$/h of each unit at output `pg` [n_gen] on the grid's cost curves, exactly those the OPF
    optimises against: polynomial, or the largest of a piecewise-linear unit's segment lines."""
    # A unit at 0 MW is off (the env has no separate commitment) and costs nothing: neither a
    # polynomial's constant term nor a piecewise-linear curve's value at 0 MW (its no-load cost)
    # is charged. While it produces, the whole curve is.
    running = pg > 1e-6
    lines = params.cost_slope * pg[..., None] + params.cost_intercept
    return (params.cost_quadratic * pg + params.cost_linear) * pg + jnp.where(
        running, params.cost_constant + jnp.max(lines, axis=-1), 0.0
    )


def _layered(w: RewardWeights, params: EnvParams, o: StepOutcome):
    """(safety, dollars $/h, trips), each [1 + n_region]: the whole grid first, then each region
    (branches touching it, its buses and units). Each element's terms are computed once and
    summed per scope by one small product (scopes overlap on tie lines)."""
    layout = params.layout
    dtype = o.pg.dtype
    regions = jnp.arange(layout.n_region)

    def per_scope(in_region: Array, *values: Array) -> tuple[Array, ...]:
        scopes = jnp.concatenate([jnp.ones_like(in_region[:1]), in_region]).astype(dtype)
        # values as rows: under vmap a [batch·values, n] @ [n, scopes] product, no transpose
        return tuple(jnp.stack(values) @ scopes.T)

    excess = jnp.where(o.line_status, jnp.maximum(o.loading - 1.0, 0.0), 0.0)
    excess, trips = per_scope(layout.region_branches, excess, o.tripped.astype(dtype))
    grid = params.grid
    if o.voltage_checked:
        violation = jnp.maximum(o.vm - grid.vmax, 0.0) + jnp.maximum(grid.vmin - o.vm, 0.0)
        violation = jnp.where(o.energized, violation, 0.0)
    else:
        violation = jnp.zeros_like(o.vm)
    bus_scope = layout.bus_region[None, :] == regions[:, None]
    voltage, demand, not_served = per_scope(
        bus_scope, violation, jnp.maximum(o.demand, 0.0), o.not_served
    )
    gen_scope = layout.gen_region[None, :] == regions[:, None]
    cost, curtailed = per_scope(gen_scope, generation_cost(params, o.pg), o.curtailed)
    ens_share = not_served / jnp.maximum(demand, 1e-6)
    safety = -(
        w.overload * excess
        + w.voltage * 10.0 * voltage
        + w.energy_not_served * 10.0 * ens_share
        + w.trip * trips
    )
    dollars = cost + w.value_of_lost_load * not_served + w.curtailment_price * curtailed
    return safety, dollars, trips


def rewards(w: RewardWeights, params: EnvParams, o: StepOutcome) -> dict[str, Array]:
    n_region = params.layout.n_region
    safety, dollars, trips = _layered(w, params, o)
    demand = jnp.sum(jnp.maximum(o.demand, 0.0))
    shortfall = jnp.maximum(1.0 - o.reserve / jnp.maximum(w.reserve_target * demand, 1e-6), 0.0)
    uptime = -(shortfall + w.n1 * (1.0 - o.n1_secure))
    penalty = w.trip_penalty * trips[0] + w.blackout_penalty * o.blackout
    cost = -dollars[0] / w.cost_scale_per_hour
    out = {
        "strategic": w.safety * safety[0] + w.cost * cost + w.uptime * uptime - penalty,
        "safety": safety[0] - penalty,
    }
    for r in range(n_region):
        cost_r = -dollars[1 + r] * n_region / w.cost_scale_per_hour
        out[f"operational_{r}"] = (
            w.safety * safety[1 + r]
            + w.cost * cost_r
            + w.uptime * uptime
            - w.trip_penalty * trips[1 + r]
            - w.blackout_penalty * o.blackout
        )
    return {name: value.astype(o.pg.dtype) for name, value in out.items()}
