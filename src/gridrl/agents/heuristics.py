"""Rule-based operators: the baselines a learned agent must beat (pure JAX, one grid; vmap them).

- `do_nothing`: hold the schedule. Every action is 0: units stay where they are, and the
  environment's balancing (distributed slack over the units' headroom) follows the load.
- `proportional`: congestion relief by proportional redispatch, as an operator does it by hand:
  when a branch loads above `threshold`, units that push flow through it (positive shift factor
  in the direction of the flow) are lowered and units that relieve it are raised, each in
  proportion to its sensitivity and its room within one step's ramp, up and down in equal
  measure, scaled so the most overloaded branch would come back to `threshold`.
- `emergency`: the same redispatch, plus curtailment of the renewables feeding a branch above its
  rating, plus load shedding at the buses that relieve a branch about to trip (its overload
  counter one step from the trip, or above `shed_above` of its rating).

They read the full state (an operator's SCADA view): flows, statuses, counters, outputs. Shift
factors are the base topology's PTDF (an approximation while branches are out, as in practice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gridrl.agents.actions import encode
from gridrl.agents.policy import ActFn
from gridrl.env.core import GridEnv
from gridrl.env.dispatch import step_ramp
from gridrl.env.state import EnvParams, EnvState
from gridrl.physics import ptdf

Array = jnp.ndarray
# one grid's decision without weights; `HeuristicPolicy` adapts it to the Policy interface
Act = Callable[[jax.Array, dict, EnvState, EnvParams], dict[str, Array]]

HEURISTICS = ("do_nothing", "proportional", "emergency")

CURTAIL_GAIN = 5.0  # share of a renewable curtailed per unit of overload of a branch it feeds
SHED_GAIN = 5.0  # share of a bus's load shed per unit of overload, times its relief per MW
MIN_SENSITIVITY = 0.05  # MW per MW: below this a unit or bus is not worth moving for a branch


def do_nothing(env: GridEnv) -> Act:
    zeros = {a: jnp.zeros(env.action_space(a).shape) for a in env.agents}

    def act(key, obs, state, params):
        return zeros

    return act


def shift_factors(env: GridEnv) -> Array:
    """[n_branch, n_bus] base-topology PTDF (MW of flow per MW injected, slack at the reference)."""
    grid = env.default_params.grid
    with jax.ensure_compile_time_eval():  # a constant, also when a policy is built under jit
        return jnp.asarray(np.asarray(ptdf(grid.astype(jnp.float32))), jnp.float32)


def overloads(params: EnvParams, state: EnvState, flow: Array, threshold: float):
    """(in service, directed excess in MW of `flow` above `threshold` of the rating, flow
    direction) with `state`'s branch statuses."""
    in_service = (params.grid.branch_status > 0) & (state.branch_down == 0)
    excess = jnp.where(in_service, jnp.abs(flow) - threshold * params.rating, 0.0)
    return in_service, jnp.maximum(excess, 0.0), jnp.sign(flow)


def relief_redispatch(params: EnvParams, state: EnvState, shift: Array, threshold: float) -> Array:
    """[n_gen] MW targets relieving the branches above `threshold` (see the module notes)."""
    grid = params.grid
    _, excess, direction = overloads(params, state, state.flow, threshold)
    sens = direction[:, None] * shift[:, grid.gen_bus]  # [n_branch, n_gen] directed sensitivity
    ramp = step_ramp(params)
    on = params.layout.dispatchable & (state.gen_down == 0) & (state.available > 0)
    upper = jnp.minimum(state.available, state.pg + ramp)
    lower = jnp.maximum(grid.pmin, state.pg - ramp)
    up_room = jnp.where(on, jnp.maximum(upper - state.pg, 0.0), 0.0)
    down_room = jnp.where(on, jnp.maximum(state.pg - lower, 0.0), 0.0)
    pull = -(excess @ sens)  # > 0: raising this unit relieves the overloads
    pull = jnp.where(jnp.abs(pull) > MIN_SENSITIVITY * jnp.max(excess), pull, 0.0)
    up = jnp.maximum(pull, 0.0) * up_room
    down = jnp.maximum(-pull, 0.0) * down_room
    # equal MW up and down, so the balance does not undo the redispatch
    total_up, total_down = jnp.sum(up), jnp.sum(down)
    moved = jnp.minimum(
        jnp.sum(jnp.where(up > 0, up_room, 0.0)), jnp.sum(jnp.where(down > 0, down_room, 0.0))
    )
    direction_mw = (up / jnp.maximum(total_up, 1e-9) - down / jnp.maximum(total_down, 1e-9)) * moved
    # scale so the worst overload is just removed (relief per unit of the direction, per branch)
    relief = sens @ direction_mw  # change of each directed flow
    needed = jnp.where((excess > 0) & (relief < 0), excess / jnp.maximum(-relief, 1e-9), 0.0)
    scale = jnp.minimum(jnp.max(needed), 1.0)
    return state.pg + scale * direction_mw


def proportional(env: GridEnv, threshold: float = 0.95) -> Act:
    shift = shift_factors(env)
    config = env.config

    def act(key, obs, state, params):
        target = relief_redispatch(params, state, shift, threshold)
        return encode(params, config, state.pg, target)

    return act


def curtail_and_shed(
    params: EnvParams,
    config,
    state: EnvState,
    shift: Array,
    flow: Array,
    threshold: float = 0.95,
    shed_above: float = 1.2,
) -> tuple[Array, Array]:
    """([n_gen] curtailed share, [n_bus] shed share): the emergency operator's rules (module
    notes) for branches carrying `flow`."""
    grid = params.grid
    in_service, _, direction = overloads(params, state, flow, threshold)
    loading = jnp.where(in_service, jnp.abs(flow) / params.rating, 0.0)
    over = jnp.maximum(loading - 1.0, 0.0)  # [n_branch] share above the rating
    sens_bus = direction[:, None] * shift  # [n_branch, n_bus]
    feeds = sens_bus[:, grid.gen_bus] > MIN_SENSITIVITY
    renewable = ~params.layout.dispatchable
    curtail = jnp.max(jnp.where(feeds, over[:, None], 0.0), axis=0) * CURTAIL_GAIN
    curtail = jnp.where(renewable, jnp.clip(curtail, 0.0, 1.0), 0.0)
    trip_after = config.protection.trip_after_steps
    urgent = (loading > 1.0) & ((state.overload_count >= trip_after - 1) | (loading > shed_above))
    # shedding at bus b raises its net injection: it relieves a branch where sens < 0
    relieves = jnp.maximum(-sens_bus, 0.0) * (-sens_bus > MIN_SENSITIVITY)
    shed = jnp.max(jnp.where(urgent[:, None], over[:, None] * relieves, 0.0), axis=0)
    return curtail, jnp.clip(shed * SHED_GAIN, 0.0, config.max_shed_share)


def emergency(env: GridEnv, threshold: float = 0.95, shed_above: float = 1.2) -> Act:
    shift = shift_factors(env)
    config = env.config

    def act(key, obs, state, params):
        target = relief_redispatch(params, state, shift, threshold)
        curtail, shed = curtail_and_shed(
            params, config, state, shift, state.flow, threshold, shed_above
        )
        return encode(params, config, state.pg, target, curtail, shed)

    return act


def heuristic(name: str, env: GridEnv) -> Act:
    """The rule-based policy `name` (one of HEURISTICS) for `env`."""
    builders = {"do_nothing": do_nothing, "proportional": proportional, "emergency": emergency}
    if name not in builders:
        raise ValueError(f"unknown heuristic policy {name!r}; known: {list(HEURISTICS)}")
    return builders[name](env)


@dataclass(frozen=True)
class HeuristicPolicy:
    """The rule-based baseline `name` as a `gridrl.agents.JaxPolicy`: no weights, its own spec
    (hashable by its name, so each heuristic compiles once per environment)."""

    name: str

    def __post_init__(self):
        if self.name not in HEURISTICS:
            raise ValueError(f"unknown heuristic policy {self.name!r}; known: {list(HEURISTICS)}")

    @property
    def spec(self) -> HeuristicPolicy:
        return self

    @property
    def weights(self) -> None:
        return None

    def act(self, env: GridEnv) -> ActFn:
        act = heuristic(self.name, env)
        return lambda weights, key, obs, state, params: act(key, obs, state, params)
