"""EnvParams (constant within an episode) and EnvState (what a step changes), as pytrees."""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from gridrl.cases.grid import Grid
from gridrl.env.layout import Layout
from gridrl.physics.ac import ACModel
from gridrl.physics.dc import DCModel
from gridrl.timeseries import Profiles, Sampling

Array = jnp.ndarray


@struct.dataclass
class EnvParams:
    """Everything constant within an episode: the grid, its physics models, the agents' roles,
    the measured profiles and the scenario's day weights. Pass it explicitly (vmappable)."""

    grid: Grid  # float32 copy of the network
    dc: DCModel
    ac: ACModel | None  # only for physics="ac"
    layout: Layout
    profiles: Profiles
    sampling: Sampling
    reactive_ratio: Array  # [n_bus] qd/pd of the case, so reactive load follows active load
    # the grid's cost curves (gridrl.cases.costs, as the OPF's): poly(P) + max of the unit's lines
    cost_linear: Array  # [n_gen] $/MWh of polynomial units (0 for piecewise-linear ones)
    cost_quadratic: Array  # [n_gen] $/MW²h of polynomial units
    cost_constant: Array  # [n_gen] $/h of polynomial units, charged while producing
    cost_slope: Array  # [n_gen, n_segment] $/MWh of each piecewise-linear unit's segments
    cost_intercept: Array  # [n_gen, n_segment] $/h; padding far below (polynomial units: one 0)
    rating: Array  # [n_branch] MVA, finite (unrated branches get a very large rating)
    peak_load_mw: Array  # scalar: the system load at the annual peak (per unit 1 of profiles)
    event_branches: Array  # int [n_candidates]: branches random outages are drawn from
    event_units: Array  # int [n_dispatchable]: units random outages are drawn from
    largest_unit: Array  # int: the dispatchable unit with the largest pmax
    corridor: Array  # int [corridor_size]: the corridor the emergency scenario loses
    critical: Array  # int [n_critical]: non-islanding branches by outage severity, worst first


@struct.dataclass
class EnvState:
    """What changes from step to step. Times are in steps since the episode began."""

    step: Array  # int32
    day: Array  # int32: the profile day the episode started on
    noise: Array  # [1 + n_region + n_wind + n_solar] AR(1) noise: system, regions, plants
    pg: Array  # [n_gen] MW output of every unit (renewables: what they delivered)
    demand: Array  # [n_bus] MW asked for this step (before shedding)
    available: Array  # [n_gen] MW a unit could produce now (renewables: the weather's)
    branch_down: Array  # int32 [n_branch]: steps until a branch is back (0: in service)
    overload_count: Array  # int32 [n_branch]: consecutive steps above 100 %
    gen_down: Array  # int32 [n_gen]: steps until a unit is back (0: available)
    event_step: Array  # int32 [n_events]: when each scheduled outage starts (-1: never)
    event_element: Array  # int32 [n_events]: branch index, or n_branch + unit index
    event_duration: Array  # int32 [n_events]: steps it lasts
    directive: Array  # [n_region]: the strategic agent's last directives
    gate: Array  # [n_region]: the safety agent's last gate per region (1: overriding)
    flow: Array  # [n_branch] MW at the from end, last solve
    vm: Array  # [n_bus] p.u., last solve (1 under DC)
    va: Array  # [n_bus] rad, last solve (AC: where the next solve's iteration starts)
    losses: Array  # MW lost in the branches, last solve (0 under DC): the next dispatch plans it
    energized: Array  # bool [n_bus]
    served: Array  # [n_bus] MW actually supplied last step
    reserve: Array  # scalar MW of upward reserve within a step's ramp, last step
    n1_secure: Array  # scalar share of screened contingencies without overload, last step
    terminated: Array  # bool
