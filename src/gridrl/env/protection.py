"""The grid's response within one step: power flow, thermal protection, cascades and islands.

Each round first finds the energised buses of its topology (cheap, from the base spanning tree),
balances the dispatch over them, then solves the flows. Round 0 updates each branch's overload
counter; a branch trips when its counter reaches `trip_after_steps` or its loading exceeds
`hard_limit`. After trips the dispatch is rebalanced and the flows solved again, and only the
hard limit trips branches in these cascade rounds, up to `max_cascade_rounds` (a bounded
lax.while_loop, so it stays inside jit). A bus cut off from the reference bus is de-energised:
its load is lost and its units stop.

The N-1 indicator screens single-branch outages under the current topology, by the LODF of the
topology with its branches out (physics.contingency: a rank-|M| update of the base, as in the DC
solver).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from gridrl.env.config import EnvConfig
from gridrl.env.dispatch import Balance, Setpoints, balance
from gridrl.env.sparse import where_needed
from gridrl.env.state import EnvParams
from gridrl.physics.ac import ac_power_flow_outages
from gridrl.physics.contingency import lodf_after_outages
from gridrl.physics.dc import Outages, low_rank_flow, outages

Array = jnp.ndarray


@struct.dataclass
class Flows:
    """One power-flow solve, in the units the environment uses."""

    flow: Array  # [n_branch] MW at the from end
    loading: Array  # [n_branch] |S| / rating at the more loaded end
    vm: Array  # [n_bus] p.u. (1 under DC, 0 where de-energised)
    va: Array  # [n_bus] rad (0 where de-energised)
    energized: Array  # bool [n_bus]
    slack_pg: Array  # MW the reference bus's units produce as solved (covers losses under AC)
    losses: Array  # MW (0 under DC)
    converged: Array  # bool


@struct.dataclass
class LastSolve:
    """What a step's solves take from the last one: its losses (MW, which the balance plans)
    and its voltages (where the AC iteration starts; vm = 0: a flat start)."""

    losses: Array
    vm: Array  # [n_bus] p.u.
    va: Array  # [n_bus] rad


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
    n1_secure: Array  # share of the screened contingencies that are secure (n1_secure_share)


def solve_flows(
    params: EnvParams, config: EnvConfig, topology: Outages, pd: Array, pg: Array, last: LastSolve
) -> Flows:
    """The flows of `topology` (at most config.max_outages branches out: the episode ends
    beyond) for loads `pd` [n_bus] and dispatch `pg` [n_gen] MW; under AC the iteration starts
    from the `last` solve's voltages (5 minutes earlier: a few iterations instead of ~7)."""
    grid = params.grid
    if config.physics == "dc":
        result = low_rank_flow(params.dc, topology, pd, pg)
        return Flows(
            flow=result.pf,
            loading=jnp.abs(result.pf) / params.rating,
            vm=result.energized.astype(pd.dtype),
            va=result.va,
            energized=result.energized,
            slack_pg=result.pg_slack,
            losses=jnp.zeros((), pd.dtype),
            converged=jnp.array(True),
        )
    qd = pd * params.reactive_ratio
    result = ac_power_flow_outages(
        grid, params.ac, topology, pd=pd, qd=qd, pg=pg, init=(last.vm, last.va)
    )
    ref = params.ac.ref
    slack_pg = jnp.sum(jnp.where(ref[grid.gen_bus], result.pg, 0.0))
    return Flows(
        flow=result.pf,
        loading=result.apparent_mva / params.rating,
        vm=result.vm,
        va=result.va,
        energized=result.energized,
        slack_pg=slack_pg,
        losses=jnp.sum(jnp.where(topology.usable, result.pf + result.pt, 0.0)),
        converged=result.converged,
    )


def _solve_round(
    params: EnvParams,
    config: EnvConfig,
    sp: Setpoints,
    served: Array,
    unit_on: Array,
    status: Array,
    last: LastSolve,
    max_outages: int,
) -> tuple[Balance, Flows]:
    """One round: the energised buses of topology `status` (at most `max_outages` base branches
    out; 0: the base topology), the dispatch balanced over them (planning the `last` solve's
    losses), and the flows."""
    grid, layout = params.grid, params.layout
    topology = outages(params.dc, status, max_outages)
    energized = topology.energized
    on = unit_on & energized[grid.gen_bus]
    live = sp.replace(
        target=jnp.where(on, sp.target, 0.0),
        lower=jnp.where(on, sp.lower, 0.0),
        upper=jnp.where(on, sp.upper, 0.0),
    )
    load = jnp.where(energized, served, 0.0)
    demand = load + jnp.where(energized, grid.gs, 0.0)
    bal = balance(live, demand, layout.dispatchable & on, last.losses)
    flows = solve_flows(params, config, topology, load - bal.auto_shed, bal.pg, last)
    return bal, flows


def _branches_out(params: EnvParams, status: Array) -> Array:
    """bool: some branch of the base topology is out."""
    return jnp.any(params.dc.usable & ~status)


def _cascade_goes_on(
    params: EnvParams, config: EnvConfig, status: Array, trips: Array, flows: Flows, rounds: Array
) -> Array:
    """bool: the new `trips` get a round of their own: within max_cascade_rounds, while the
    topology stays within max_outages (past it the solvers would drop outages and, under AC,
    could not converge; the episode ends this step as a truncation: core.GridEnv.step), and
    while the power flow converges (a collapsed AC solve ends the episode; its loadings are
    no ground for trips)."""
    n_out = jnp.sum(params.dc.usable & ~(status & ~trips))
    more_rounds = rounds < config.protection.max_cascade_rounds
    return jnp.any(trips) & more_rounds & (n_out <= config.max_outages) & flows.converged


def respond(
    params: EnvParams,
    config: EnvConfig,
    sp: Setpoints,
    served: Array,
    unit_on: Array,
    line_status: Array,
    overload_count: Array,
    last: LastSolve,
) -> Response:
    """Balance, solve, trip and cascade, then the N-1 indicator (see the module notes).
    `served` [n_bus] is the demand less the agents' shedding; `line_status` the topology at the
    start of the step; `last` the last solve: the balance plans its losses (AC: so that the
    reference bus's units do not take them on top of their share), and the AC iteration starts
    from its voltages (cascade rounds: from the round before).

    Most samples of a batch have every branch in: they are solved on the base topology, and
    only the others pay for the rank-K update, the islands and the compensated N-1 (under vmap,
    `where_needed` gathers them)."""
    protection, max_outages = config.protection, config.max_outages

    def solve(operands, k: int = max_outages):
        params, sp, served, unit_on, last, status = operands
        return _solve_round(params, config, sp, served, unit_on, status, last, k)

    # round 0: the step's topology; protection counters advance here only
    operands = (params, sp, served, unit_on, last, line_status)
    base = solve(operands, 0)
    bal, flows = where_needed(_branches_out(params, line_status), base, solve, operands)
    over = line_status & (flows.loading > 1.0)
    counts = jnp.where(over, overload_count + 1, 0)
    trips = line_status & (
        (counts >= protection.trip_after_steps) | (flows.loading > protection.hard_limit)
    )

    def cascade(operands):
        carry, params, sp, served, unit_on, last = operands

        def round_(carry):
            status, tripped, trips, _, flows, rounds = carry
            status = status & ~trips
            start = last.replace(vm=flows.vm, va=flows.va)
            bal, flows = solve((params, sp, served, unit_on, start, status))
            next_trips = status & (flows.loading > protection.hard_limit)
            return status, tripped | trips, next_trips, bal, flows, rounds + 1

        def pending(carry):
            status, _, trips, _, flows, rounds = carry
            return _cascade_goes_on(params, config, status, trips, flows, rounds)

        return jax.lax.while_loop(pending, round_, carry)

    no_trip = jnp.zeros_like(line_status)
    carry = (line_status, no_trip, trips, bal, flows, jnp.int32(1))
    # a cascade is rare: under vmap only the samples with trips run its rounds (env/sparse.py)
    solved, tripped, trips, bal, flows, rounds = where_needed(
        _cascade_goes_on(params, config, line_status, trips, flows, jnp.int32(1)),
        carry,
        cascade,
        (carry, params, sp, served, unit_on, last),
        share=1 / 32,
    )
    # trips found in the last allowed round take effect now; their flows next step
    status = solved & ~trips
    tripped = tripped | trips

    def n1(operands):
        params, flows, solved, status = operands
        live = status & flows.energized[params.dc.f_bus]
        return n1_secure_share(params, flows, outages(params.dc, solved, max_outages), live)

    # with every branch in (also after this step's last trips) the screen is the base topology's
    base_n1 = base_n1_secure_share(params, flows)
    operands = (params, flows, solved, status)
    n1_secure = where_needed(_branches_out(params, status), base_n1, n1, operands)
    lost = jnp.sum(jnp.where(flows.energized, 0.0, jnp.maximum(served, 0.0)))
    return Response(
        flows=flows,
        balance=bal,
        line_status=status,
        tripped=tripped,
        overload_count=jnp.where(status, counts, 0).astype(jnp.int32),
        rounds=rounds,
        lost_load=lost,
        n1_secure=n1_secure,
    )


def post_contingency_flows(params: EnvParams, flows: Flows, topology: Outages):
    """Flows (MW) after each screened contingency c, [n_branch, n1], under `topology` (the
    branches out when `flows` was solved), and bool [n1]: c's outage would island buses
    (physics.contingency.lodf_after_outages: the LODF columns of the topology)."""
    cont = params.layout.contingencies
    lodf, islanding = lodf_after_outages(params.dc, topology, cont)
    return flows.flow[:, None] + lodf * flows.flow[cont][None, :], islanding


def base_n1_secure_share(params: EnvParams, flows: Flows) -> Array:
    """`n1_secure_share` with every branch in: the topology and the live branches are the
    base's, the same for every sample of a batch (only the flows differ)."""
    model = params.dc
    live = model.usable & model.energized[model.f_bus]
    return n1_secure_share(params, flows, outages(model, model.usable, 0), live)


def n1_secure_share(params: EnvParams, flows: Flows, topology: Outages, live: Array) -> Array:
    """Share of the screened single-branch outages, among those `live` (bool [n_branch]: in
    service and energised), after which no branch exceeds its rating and no bus is cut off
    (`post_contingency_flows`). With every branch in, `topology` and `live` are the base's and
    only the flows differ between the samples of a batch: the rest is computed once."""
    cont = params.layout.contingencies
    post, islanding = post_contingency_flows(params, flows, topology)
    watched = live[:, None] & (jnp.arange(live.shape[0])[:, None] != cont[None, :])
    limit = jax.lax.optimization_barrier(jnp.where(watched, params.rating[:, None], jnp.inf))
    # a max rather than an any: XLA fuses the elementwise work into a float max-reduction (an
    # any materialises the [n_branch, n1] comparisons first: twice the time in the step)
    overloaded = jnp.max(jnp.abs(post) - limit, axis=0) > 0.0
    considered = live[cont]
    secure = considered & ~overloaded & ~islanding
    return jnp.sum(secure) / jnp.maximum(jnp.sum(considered), 1)
