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
    """$/h of each unit at output `pg` [n_gen]; the constant term only while producing."""
    running = pg > 1e-6
    return (params.cost_quadratic * pg + params.cost_linear) * pg + jnp.where(
        running, params.cost_constant, 0.0
    )


def _terms(w: RewardWeights, params: EnvParams, o: StepOutcome, branch_mask, bus_mask, gen_mask):
    """(safety, cost) over the elements selected by the masks."""
    excess = jnp.sum(jnp.where(branch_mask & o.line_status, jnp.maximum(o.loading - 1.0, 0.0), 0))
    grid = params.grid
    if o.voltage_checked:
        violation = jnp.maximum(o.vm - grid.vmax, 0.0) + jnp.maximum(grid.vmin - o.vm, 0.0)
        voltage = jnp.sum(jnp.where(bus_mask & o.energized, violation, 0.0))
    else:
        voltage = jnp.zeros_like(excess)
    demand = jnp.sum(jnp.where(bus_mask, jnp.maximum(o.demand, 0.0), 0.0))
    not_served = jnp.sum(jnp.where(bus_mask, o.not_served, 0.0))
    ens_share = not_served / jnp.maximum(demand, 1e-6)
    trips = jnp.sum(branch_mask & o.tripped)
    safety = -(
        w.overload * excess
        + w.voltage * 10.0 * voltage
        + w.energy_not_served * 10.0 * ens_share
        + w.trip * trips
    )
    dollars = (
        jnp.sum(jnp.where(gen_mask, generation_cost(params, o.pg), 0.0))
        + w.value_of_lost_load * not_served
        + w.curtailment_price * jnp.sum(jnp.where(gen_mask, o.curtailed, 0.0))
    )
    return safety, dollars, trips


def rewards(w: RewardWeights, params: EnvParams, o: StepOutcome) -> dict[str, Array]:
    layout = params.layout
    all_branches = jnp.ones_like(o.line_status)
    all_buses = jnp.ones_like(o.energized)
    all_gens = jnp.ones(o.pg.shape, bool)
    safety, dollars, trips = _terms(w, params, o, all_branches, all_buses, all_gens)
    cost = -dollars / w.cost_scale_per_hour
    demand = jnp.sum(jnp.maximum(o.demand, 0.0))
    shortfall = jnp.maximum(1.0 - o.reserve / jnp.maximum(w.reserve_target * demand, 1e-6), 0.0)
    uptime = -(shortfall + w.n1 * (1.0 - o.n1_secure))
    penalty = w.trip_penalty * trips + w.blackout_penalty * o.blackout
    out = {
        "strategic": w.safety * safety + w.cost * cost + w.uptime * uptime - penalty,
        "safety": safety - penalty,
    }
    n_region = layout.n_region
    for r in range(n_region):
        branch_mask = layout.region_branches[r]
        bus_mask = layout.bus_region == r
        gen_mask = layout.gen_region == r
        safety_r, dollars_r, trips_r = _terms(w, params, o, branch_mask, bus_mask, gen_mask)
        cost_r = -dollars_r * n_region / w.cost_scale_per_hour
        out[f"operational_{r}"] = (
            w.safety * safety_r
            + w.cost * cost_r
            + w.uptime * uptime
            - w.trip_penalty * trips_r
            - w.blackout_penalty * o.blackout
        )
    return {name: value.astype(o.pg.dtype) for name, value in out.items()}
