"""The grid's response within one step: power flow, thermal protection, cascades and islands.

Round 0 solves the flows of the balanced dispatch and updates each branch's overload counter; a
branch trips when its counter reaches `trip_after_steps` or its loading exceeds `hard_limit`.
After trips (or when an island forms) the dispatch is rebalanced over the energised buses and
the flows solved again, and only the hard limit trips branches in these cascade rounds, up to
`max_cascade_rounds` (a bounded lax.while_loop, so it stays inside jit). A bus cut off from the
reference bus is de-energised: its load is lost and its units stop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from gridrl.env.config import EnvConfig
from gridrl.env.dispatch import Balance, Setpoints, balance
from gridrl.env.state import EnvParams
from gridrl.physics.ac import ac_power_flow
from gridrl.physics.dc import dc_power_flow

Array = jnp.ndarray


@struct.dataclass
class Flows:
    """One power-flow solve, in the units the environment uses."""

    flow: Array  # [n_branch] MW at the from end
    loading: Array  # [n_branch] |S| / rating at the more loaded end
    vm: Array  # [n_bus] p.u. (1 under DC, 0 where de-energised)
    energized: Array  # bool [n_bus]
    slack_pg: Array  # MW the reference bus's units produce as solved (covers losses under AC)
    losses: Array  # MW (0 under DC)
    converged: Array  # bool


@struct.dataclass
class Response:
    """The outcome of a step's rounds."""

    flows: Flows
    balance: Balance
    line_status: Array  # bool [n_branch] after this step's trips
    tripped: Array  # bool [n_branch]: tripped during this step
    overload_count: Array  # int32 [n_branch]
    rounds: Array  # int32: power flows solved this step
    lost_load: Array  # MW of served load lost in de-energised islands


def solve_flows(params: EnvParams, config: EnvConfig, line_status: Array, pd: Array, pg: Array):
    grid = params.grid
    if config.physics == "dc":
        result = dc_power_flow(
            grid,
            line_status,
            pd=pd,
            pg=pg,
            model=params.dc,
            max_outages=config.max_outages,
            fallback=False,  # the episode ends when more than max_outages branches are out
        )
        return Flows(
            flow=result.pf,
            loading=jnp.abs(result.pf) / params.rating,
            vm=result.energized.astype(pd.dtype),
            energized=result.energized,
            slack_pg=result.pg_slack,
            losses=jnp.zeros((), pd.dtype),
            converged=jnp.array(True),
        )
    qd = pd * params.reactive_ratio
    result = ac_power_flow(
        grid, line_status, pd=pd, qd=qd, pg=pg, model=params.ac, max_outages=config.max_outages
    )
    apparent = jnp.maximum(jnp.hypot(result.pf, result.qf), jnp.hypot(result.pt, result.qt))
    ref = params.ac.ref
    slack_pg = jnp.sum(jnp.where(ref[grid.gen_bus], result.pg, 0.0))
    return Flows(
        flow=result.pf,
        loading=apparent / params.rating,
        vm=result.vm,
        energized=result.energized,
        slack_pg=slack_pg,
        losses=jnp.sum(jnp.where(line_status, result.pf + result.pt, 0.0)),
        converged=result.converged,
    )


def respond(
    params: EnvParams,
    config: EnvConfig,
    sp: Setpoints,
    served: Array,
    unit_on: Array,
    line_status: Array,
    overload_count: Array,
) -> Response:
    """Balance, solve, trip and cascade (see the module notes). `served` [n_bus] is the demand
    less the agents' shedding; `line_status` the topology at the start of the step."""
    protection = config.protection
    grid, layout = params.grid, params.layout

    def solve(status: Array, energized: Array):
        on = unit_on & energized[grid.gen_bus]
        live = sp.replace(
            target=jnp.where(on, sp.target, 0.0),
            lower=jnp.where(on, sp.lower, 0.0),
            upper=jnp.where(on, sp.upper, 0.0),
        )
        load = jnp.where(energized, served, 0.0)
        bal = balance(live, load + jnp.where(energized, grid.gs, 0.0), layout.dispatchable & on)
        return bal, solve_flows(params, config, status, load - bal.auto_shed, bal.pg)

    def round_(carry):
        status, tripped, trips, guess, _, _, counts, rounds, _ = carry
        status = status & ~trips
        tripped = tripped | trips
        bal, flows = solve(status, guess)
        first = rounds == 0  # protection counters advance once per step, in the first round
        over = status & (flows.loading > 1.0)
        counts = jnp.where(first, jnp.where(over, overload_count + 1, 0), counts)
        trips = status & (
            (first & (counts >= protection.trip_after_steps))
            | (flows.loading > protection.hard_limit)
        )
        changed = jnp.any(trips) | jnp.any(guess != flows.energized)
        return status, tripped, trips, flows.energized, bal, flows, counts, rounds + 1, changed

    def pending(carry):
        rounds, changed = carry[-2], carry[-1]
        return (rounds == 0) | (changed & (rounds < protection.max_cascade_rounds))

    # the first round assumes the base topology's energised buses; an island found by the
    # power flow is another round, as is a trip
    energized = params.dc.energized
    shapes = jax.eval_shape(solve, line_status, energized)
    bal0, flows0 = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    no_trip = jnp.zeros_like(line_status)
    counts0 = jnp.zeros_like(overload_count)
    carry = (line_status, no_trip, no_trip, energized, bal0, flows0, counts0, 0, True)
    status, tripped, trips, _, bal, flows, counts, rounds, _ = jax.lax.while_loop(
        pending, round_, carry
    )
    # trips found in the last allowed round take effect now; their flows next step
    status = status & ~trips
    tripped = tripped | trips
    lost = jnp.sum(jnp.where(flows.energized, 0.0, jnp.maximum(served, 0.0)))
    return Response(
        flows=flows,
        balance=bal,
        line_status=status,
        tripped=tripped,
        overload_count=jnp.where(status, counts, 0).astype(jnp.int32),
        rounds=jnp.asarray(rounds, jnp.int32),
        lost_load=lost,
    )


def n1_secure_share(params: EnvParams, flows: Flows, line_status: Array) -> Array:
    """Share of the screened single-branch outages after which no branch exceeds its rating,
    estimated with the base topology's LODF columns (exact while no other branch is out)."""
    cont = params.layout.contingencies
    post = flows.flow[:, None] + params.n1_lodf * flows.flow[cont][None, :]
    rating = params.rating[:, None]
    others = line_status[:, None] & (jnp.arange(line_status.shape[0])[:, None] != cont[None, :])
    insecure = jnp.any((jnp.abs(post) > rating) & others, axis=0)
    considered = line_status[cont]
    n = jnp.maximum(jnp.sum(considered), 1)
    return jnp.sum(considered & ~insecure) / n
