"""The safety layer: the learned agents' decision checked against the grid model before it acts.

What L2RPN's winning teams did with `obs.simulate`, in closed form and in JAX:

1. **Predict.** The branch flows the decision would cause are the flows now plus the shift
   factors (PTDF of the topology in service now) times the change of every bus's injection:
   the units' targets within their ramps, balanced as the environment balances them
   (distributed slack), the renewables' curtailment, the shedding.
2. **Project.** Where a branch would load above `threshold` of its rating, the decision is moved
   to the nearest one that does not, as far as one step allows: projected gradient descent on
   the squared predicted excess over the units' moves within their ramps and limits and the
   renewables' curtailment, keeping generation balanced (the safety layer of Dalal et al.
   2018, "Safe exploration in continuous action spaces", for the linear flow constraints).
3. **Shed.** Where a branch would still exceed its rating and is about to trip, load is shed at
   the buses that relieve it (the emergency operator's rule, gridrl.agents.heuristics).

A decision that keeps every branch within `threshold` passes unchanged (its units, curtailment
and shedding; the safety agent's gate is folded into the targets it holds).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from gridrl.agents.actions import encode
from gridrl.agents.heuristics import curtail_and_shed
from gridrl.env.core import GridEnv
from gridrl.env.dispatch import balance, curtail_shares, decode, setpoints, shed_shares
from gridrl.env.state import EnvParams, EnvState
from gridrl.physics import dc_model, ptdf

Array = jnp.ndarray
Shield = Callable[[dict[str, Array], EnvState, EnvParams], dict[str, Array]]

THRESHOLD = 0.95  # share of a rating the predicted flows are kept under
SHED_ABOVE = 1.2  # a branch above this share of its rating is relieved by shedding at once
ITERATIONS = 24  # projected-gradient steps (each a [n_branch, n_gen] product)
BISECTIONS = 30  # for the balanced projection's shift


def bus_injections(params: EnvParams, pg: Array, load: Array) -> Array:
    """[n_bus] MW injected at each bus by units producing `pg` and loads drawing `load`."""
    grid = params.grid
    return jnp.zeros_like(load).at[grid.gen_bus].add(pg) - load


def balanced_projection(y: Array, lower: Array, upper: Array) -> Array:
    """The point nearest `y` with lower <= x <= upper and sum(x) = 0 (lower <= 0 <= upper):
    x = clip(y - nu, lower, upper), nu found by bisection (the sum falls as nu grows)."""
    lo_nu, hi_nu = jnp.min(y - upper), jnp.max(y - lower)

    def halve(_, bounds):
        lo, hi = bounds
        nu = 0.5 * (lo + hi)
        positive = jnp.sum(jnp.clip(y - nu, lower, upper)) > 0
        return jnp.where(positive, nu, lo), jnp.where(positive, hi, nu)

    lo_nu, hi_nu = jax.lax.fori_loop(0, BISECTIONS, halve, (lo_nu, hi_nu))
    return jnp.clip(y - 0.5 * (lo_nu + hi_nu), lower, upper)


def relieve(flow: Array, shift: Array, limit: Array, lower: Array, upper: Array) -> Array:
    """[n_gen] MW moves within [lower, upper], summing to 0, that bring `flow` ([n_branch] MW,
    changing by `shift` [n_branch, n_gen] per MW moved) within +-`limit` as far as they can:
    projected steepest descent on half the squared excess, each step exact on the branches
    over their limit."""

    def descend(_, move):
        now = flow + shift @ move
        excess = jnp.sign(now) * jnp.maximum(jnp.abs(now) - limit, 0.0)
        grad = shift.T @ excess
        curvature = jnp.sum(jnp.where(excess != 0, shift @ grad, 0.0) ** 2)
        step = jnp.sum(grad**2) / jnp.maximum(curvature, 1e-12)
        return balanced_projection(move - step * grad, lower, upper)

    return jax.lax.fori_loop(0, ITERATIONS, descend, jnp.zeros_like(lower))


def shield(env: GridEnv, threshold: float = THRESHOLD, shed_above: float = SHED_ABOVE) -> Shield:
    """The safety layer of `env`: `apply(actions, state, params) -> actions` on one grid."""
    config = env.config

    def apply(actions: dict[str, Array], state: EnvState, params: EnvParams) -> dict[str, Array]:
        grid, layout = params.grid, params.layout
        decoded = decode(actions, layout)
        unit_on = (grid.gen_status > 0) & (state.gen_down == 0)
        dispatchable = layout.dispatchable & unit_on
        pg = jnp.where(unit_on, state.pg, 0.0)
        intent = setpoints(params, config, decoded, pg, state.demand, state.available, unit_on)
        load = state.demand - intent.shed
        balanced = balance(intent, load, dispatchable, state.losses)
        in_service = (grid.branch_status > 0) & (state.branch_down == 0)
        shift = ptdf(grid, in_service, model=dc_model(grid))
        injection = bus_injections(params, balanced.pg, load - balanced.auto_shed)
        predicted = state.flow + shift @ (injection - bus_injections(params, pg, state.served))
        # units move within their ramp and limits; renewables only down (curtailment)
        renewable = unit_on & ~layout.dispatchable
        lower = jnp.where(dispatchable, intent.lower - balanced.pg, -balanced.pg * renewable)
        upper = jnp.where(dispatchable, intent.upper - balanced.pg, 0.0)
        limit = jnp.where(in_service, threshold * params.rating, jnp.inf)
        move = relieve(predicted, shift[:, grid.gen_bus], limit, lower, upper)
        relieved = predicted + shift[:, grid.gen_bus] @ move
        available = jnp.maximum(state.available, 1e-9)
        curtail = jnp.where(
            renewable, 1.0 - (balanced.pg + move) / available, curtail_shares(layout, decoded)
        )
        _, more_shed = curtail_and_shed(
            params, config, state, shift, relieved, threshold, shed_above
        )
        target = jnp.where(dispatchable, intent.target + move, intent.target)
        safe = encode(
            params, config, pg, target, jnp.clip(curtail, 0.0, 1.0),
            jnp.maximum(shed_shares(layout, config, decoded), more_shed),
        )  # fmt: skip
        n_slow = int(layout.slow.shape[0])
        safe["strategic"] = safe["strategic"].at[n_slow:].set(decoded.directive)
        return safe

    return apply
