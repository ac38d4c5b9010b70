"""`GridEnv`: the multi-agent grid-operation environment, functional and pure JAX.

    env = gridrl.make("ieee118", scenario="normal")
    obs, state = env.reset(key, env.default_params)
    obs, state, rewards, dones, info = env.step(key, state, actions, env.default_params)

`obs`, `actions` and `rewards` are dicts keyed by agent (`env.agents`); `dones["__all__"]` ends
the episode. Both functions jit once and vmap over a batch of grids (`jax.vmap(env.step, ...)`).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from gridrl.cases import Grid, load
from gridrl.cases.costs import gen_costs
from gridrl.env import dispatch, exogenous, observations, protection, rewards
from gridrl.env.config import EnvConfig
from gridrl.env.layout import agent_groups, agent_names, build_layout
from gridrl.env.scenarios import scenario as scenario_preset
from gridrl.env.spaces import Box
from gridrl.env.state import EnvParams, EnvState
from gridrl.physics import contingency, dc_model, dc_power_flow
from gridrl.physics.ac import ac_model
from gridrl.timeseries import build_profiles, make_sampling, peak_days, variable_days
from gridrl.timeseries.sampling import draw_day

Array = jnp.ndarray
UNRATED_MVA = 1e6  # stands for "no rating": such a branch never loads above ~0

# Which weather site each wind / solar plant follows, cycling over the plants in case order: a mix
# of windy coastal and inland sites (docs/env.md gives the resulting capacity factors).
WIND_SITE_CYCLE = ("sand_point", "miami", "greensboro", "miami")
SOLAR_SITE_CYCLE = ("greensboro", "miami")
# $/h: the intercept of the lines padding a unit's cost segments, far below any real cost so that
# it is never the largest; finite, as -inf turns into NaN in arithmetic on the padding (0·inf).
NO_SEGMENT = -1e30


def _costs(grid: Grid) -> tuple[np.ndarray, ...]:
    """The grid's cost curves (gridrl.cases.costs, those the OPF uses) per unit: (quadratic,
    linear, constant) polynomial coefficients, zero for piecewise-linear units, and (slope,
    intercept) [n_gen, n_segment] of each unit's segment lines, padded with lines at
    NO_SEGMENT; a polynomial unit has one line at zero, so every unit costs poly(P) + max(lines)."""
    costs = gen_costs(grid, np.asarray(grid.gen_status) > 0)  # units out of service never run
    count = np.bincount(costs.segment_gen, minlength=len(costs.pwl_gens))
    slope = np.zeros((grid.n_gen, max(1, int(count.max(initial=0)))))
    intercept = np.full(slope.shape, NO_SEGMENT)
    intercept[:, 0] = 0.0
    # segments come grouped by unit: each one's place within its unit's row
    place = np.arange(len(costs.segment_gen)) - np.repeat(np.cumsum(count) - count, count)
    rows = costs.pwl_gens[costs.segment_gen]
    slope[rows, place] = costs.segment_slope
    intercept[rows, place] = costs.segment_intercept
    return costs.quadratic, costs.linear, costs.constant, slope, intercept


def _corridor(grid: Grid, flows: np.ndarray, size: int) -> np.ndarray:
    """The `size` most loaded tie branches between the two regions exchanging the most power."""
    region = np.asarray(grid.region)
    f, t = region[np.asarray(grid.f_bus)], region[np.asarray(grid.t_bus)]
    ties = np.flatnonzero(f != t)
    if size == 0 or ties.size == 0:
        return np.zeros(0, np.int32)
    pairs = {}
    for k in ties:
        pair = (min(f[k], t[k]), max(f[k], t[k]))
        pairs[pair] = pairs.get(pair, 0.0) + abs(flows[k])
    busiest = max(pairs, key=pairs.get)
    members = [k for k in ties if (min(f[k], t[k]), max(f[k], t[k])) == busiest]
    members.sort(key=lambda k: -abs(flows[k]))
    return np.asarray(members[:size], np.int32)


_ANALYSES: dict[int, tuple[Grid, tuple]] = {}


def _analysis(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base flows, non-islanding branches, those ranked by base-LODF severity), computed once
    per Grid object (environments of several scenarios on one grid share it)."""
    cached = _ANALYSES.get(id(grid))
    if cached is not None and cached[0] is grid:
        return cached[1]
    grid64 = grid.astype(jnp.float64) if jax.config.jax_enable_x64 else grid
    flows = np.asarray(dc_power_flow(grid64).pf, float)
    rating = np.where(np.isfinite(grid.rate_a), grid.rate_a, UNRATED_MVA)
    result = (flows, *contingency.screen(grid64, flows, rating))
    _ANALYSES[id(grid)] = (grid, result)
    return result


def build_params(grid: Grid, config: EnvConfig) -> EnvParams:
    """Everything an episode needs, from a Grid with regions, types and ratings (numpy, once)."""
    if not np.all(np.isfinite(np.asarray(grid.pd))):
        raise ValueError(f"grid {grid.name!r}: bus loads must be finite")
    quadratic, linear, constant, slope, intercept = _costs(grid)  # bad cost data fails first
    flows, candidates, ranked = _analysis(grid)
    contingencies = ranked[: config.n1_contingencies]
    layout = build_layout(grid, contingencies)
    scenario = config.scenario
    profiles = build_profiles()
    days = {"peak": peak_days, "variable": variable_days}.get(scenario.days)
    sites = profiles.wind_sites
    n_wind, n_solar = int(layout.wind.shape[0]), int(layout.solar.shape[0])
    sampling = make_sampling(
        profiles,
        np.asarray(grid.pd, float),
        [sites.index(WIND_SITE_CYCLE[i % len(WIND_SITE_CYCLE)]) for i in range(n_wind)],
        [
            profiles.solar_sites.index(SOLAR_SITE_CYCLE[i % len(SOLAR_SITE_CYCLE)])
            for i in range(n_solar)
        ],
        days=None if days is None else days(profiles),
        seed=config.seed,
    )
    dispatchable = np.asarray(layout.dispatchable)
    pd = np.asarray(grid.pd, float)
    grid32 = grid.astype(jnp.float32)
    f32 = jnp.float32
    return EnvParams(
        grid=grid32,
        dc=dc_model(grid32),
        ac=ac_model(grid32) if config.physics == "ac" else None,
        layout=layout,
        profiles=profiles,
        sampling=sampling,
        reactive_ratio=jnp.asarray(grid.reactive_ratio, f32),
        cost_linear=jnp.asarray(linear, f32),
        cost_quadratic=jnp.asarray(quadratic, f32),
        cost_constant=jnp.asarray(constant, f32),
        cost_slope=jnp.asarray(slope, f32),
        cost_intercept=jnp.asarray(intercept, f32),
        rating=jnp.asarray(
            np.where(np.isfinite(grid.rate_a), np.asarray(grid.rate_a), UNRATED_MVA), f32
        ),
        peak_load_mw=jnp.asarray(max(float(np.sum(np.maximum(pd, 0))), 1.0), f32),
        event_branches=jnp.asarray(candidates, jnp.int32),
        event_units=jnp.asarray(np.flatnonzero(dispatchable), jnp.int32),
        largest_unit=jnp.asarray(int(np.argmax(np.where(dispatchable, grid.pmax, -1))), jnp.int32),
        corridor=jnp.asarray(_corridor(grid, flows, scenario.corridor_outage)),
        critical=jnp.asarray(
            ranked[: max(scenario.initial_branch_outages, config.n1_contingencies)], jnp.int32
        ),
    )


class GridEnv:
    """The grid-operation environment (see the module notes and docs/env.md)."""

    def __init__(self, grid: Grid, config: EnvConfig | None = None):
        self.config = config or EnvConfig()
        self.config.validate()
        self.default_params = build_params(grid, self.config)
        layout = self.default_params.layout
        self.agents = agent_names(layout.n_region)
        self.agent_groups = agent_groups(layout.n_region)
        self._action_sizes = dispatch.action_sizes(layout)
        key = jax.random.key(0)
        obs, state = jax.eval_shape(self.reset, key, self.default_params)
        self._obs_sizes = {name: int(o.shape[0]) for name, o in obs.items()}
        horizons = len(self.config.forecast_steps)
        extras = observations.Extras(
            forecasts=jax.ShapeDtypeStruct((3, horizons), state.pg.dtype),
            not_served=jax.ShapeDtypeStruct((), state.pg.dtype),
        )
        self._obs_layout = observations.layout(self.config, self.default_params, state, extras)

    @property
    def name(self) -> str:
        return f"{self.default_params.grid.name}-{self.config.scenario.name}"

    def observation_space(self, agent: str) -> Box:
        return Box(-np.inf, np.inf, (self._obs_sizes[self._known(agent, True)],))

    def observation_layout(self, agent: str) -> list[tuple[str, int, int]]:
        """[(part name, start, stop), ...]: what each slice of `agent`'s observation (or of
        "world_state") holds; docs/env.md says what each part means."""
        return list(self._obs_layout[self._known(agent, True)])

    def action_space(self, agent: str) -> Box:
        return Box(-1.0, 1.0, (self._action_sizes[self._known(agent)],))

    def _known(self, agent: str, world: bool = False) -> str:
        if agent in self.agents or (world and agent == "world_state"):
            return agent
        raise KeyError(f"unknown agent {agent!r}; agents are {list(self.agents)}")

    def _checked_actions(self, actions: Mapping[str, Array]) -> dict[str, Array]:
        """Every agent's action, in agent order. Checked in Python, where shapes are static: a
        missing, unknown or misshapen action fails at trace time (free under jit) with a
        message naming the agent, instead of deep in decoding or not at all."""
        missing = [a for a in self.agents if a not in actions]
        unknown = sorted(set(actions) - set(self.agents), key=str)
        if missing or unknown:
            raise ValueError(
                f"env.step: actions must be given for exactly the agents {list(self.agents)}; "
                f"missing: {missing}, unknown: {unknown}"
            )
        for agent in self.agents:
            expected, given = (self._action_sizes[agent],), jnp.shape(actions[agent])
            if given != expected:  # under vmap: the shape of one sample
                raise ValueError(
                    f"env.step: the action of {agent!r} has shape {given}, expected {expected} "
                    f"(env.action_space({agent!r}))"
                )
        return {a: actions[a] for a in self.agents}

    # --- episode start -----------------------------------------------------------------

    def _events(self, key: jax.Array, params: EnvParams, n_branch: int):
        """The episode's scheduled outages: (start step, element, duration) per slot."""
        s, steps = self.config.scenario, self.config.episode_steps
        keys = jax.random.split(key, 8)
        first = int(s.outage_window[0] * steps)
        last = max(int(s.outage_window[1] * steps), first + 1)
        starts, elements, durations = [], [], []

        def random_slots(k, count_range, pool, offset):
            n_max = count_range[1]
            if n_max == 0 or pool.shape[0] == 0:
                return
            k_n, k_el, k_t, k_d = jax.random.split(k, 4)
            count = jax.random.randint(k_n, (), count_range[0], n_max + 1)
            used = jnp.arange(n_max) < count
            chosen = jax.random.choice(k_el, pool, (n_max,), replace=n_max > pool.shape[0])
            start = jax.random.randint(k_t, (n_max,), first, last)
            low, high = s.outage_duration_steps
            starts.append(jnp.where(used, start, -1))
            elements.append(chosen + offset)
            durations.append(jax.random.randint(k_d, (n_max,), low, high + 1))

        branch_pool = params.critical if s.outage_pool == "critical" else params.event_branches
        random_slots(keys[0], s.branch_outages, branch_pool, 0)
        random_slots(keys[1], s.gen_outages, params.event_units, n_branch)
        random_slots(keys[2], (s.maintenance, s.maintenance), params.event_branches, 0)
        emergency = []
        if s.lose_largest_unit:
            emergency.append(params.largest_unit[None] + n_branch)
        if s.corridor_outage:
            emergency.append(params.corridor)
        if emergency:
            members = jnp.concatenate(emergency).astype(jnp.int32)
            when = jax.random.randint(keys[3], (), first, last)
            starts.append(jnp.full(members.shape, when))
            elements.append(members)
            durations.append(jnp.full(members.shape, steps))
        if s.initial_branch_outages:
            members = params.critical[: s.initial_branch_outages]
            starts.append(jnp.zeros(members.shape, jnp.int32))
            elements.append(members)
            durations.append(jnp.full(members.shape, steps))
        if not starts:
            empty = jnp.zeros(0, jnp.int32)
            return empty, empty, empty
        return tuple(jnp.concatenate(x).astype(jnp.int32) for x in (starts, elements, durations))

    def reset(self, key: jax.Array, params: EnvParams | None = None):
        params = self.default_params if params is None else params
        config, scenario = self.config, self.config.scenario
        grid, layout = params.grid, params.layout
        k_day, k_noise, k_events, k_forecast = jax.random.split(key, 4)
        day = draw_day(k_day, params.sampling)
        noise = exogenous.initial_noise(k_noise, params, scenario)
        step = jnp.int32(0)
        demand, available = exogenous.conditions(params, scenario, day, step, noise)
        event_step, event_element, event_duration = self._events(k_events, params, grid.n_branch)
        branch_down, gen_down = _apply_events(
            jnp.zeros(grid.n_branch, jnp.int32),
            jnp.zeros(grid.n_gen, jnp.int32),
            event_step, event_element, event_duration, step,
        )  # fmt: skip
        unit_on = (grid.gen_status > 0) & (gen_down == 0)
        line_status = (grid.branch_status > 0) & (branch_down == 0)
        # start from the case's dispatch scaled to today's net load, without ramp limits
        dispatchable = layout.dispatchable & unit_on
        renewable = jnp.where(unit_on & ~layout.dispatchable, available, 0.0)
        net = jnp.sum(demand + grid.gs) - jnp.sum(renewable)
        reference = jnp.where(dispatchable, grid.pg, 0.0)
        scaled = reference * net / jnp.maximum(jnp.sum(reference), 1e-6)
        target = jnp.where(dispatchable, jnp.clip(scaled, grid.pmin, available), renewable)
        sp = dispatch.Setpoints(
            target=target,
            lower=jnp.where(dispatchable, jnp.minimum(grid.pmin, available), 0.0),
            upper=jnp.where(dispatchable, available, 0.0),
            curtailed=jnp.zeros_like(target),
            shed=jnp.zeros_like(demand),
        )
        counts = jnp.zeros(grid.n_branch, jnp.int32)
        # no earlier solve: no losses to plan (the reference bus's units take them), a flat start
        flat_start = jnp.zeros_like(demand)
        last = protection.LastSolve(jnp.zeros((), demand.dtype), vm=flat_start, va=flat_start)
        response = protection.respond(
            params, config, sp, demand, unit_on, line_status, counts, last
        )
        counts = response.overload_count
        if scenario.initial_overload_counters:
            hot = jnp.argsort(-response.flows.loading)[: scenario.initial_overload_counters]
            limit = config.protection.trip_after_steps - 1
            counts = counts.at[hot].set(jnp.where(response.line_status[hot], limit, 0))
        state = EnvState(
            step=step,
            day=day,
            noise=noise,
            pg=_final_output(params, response),
            demand=demand,
            available=available,
            branch_down=jnp.where(
                response.tripped, config.protection.reconnect_after_steps, branch_down
            ).astype(jnp.int32),
            overload_count=counts,
            gen_down=gen_down,
            event_step=event_step,
            event_element=event_element,
            event_duration=event_duration,
            directive=jnp.zeros(layout.n_region, grid.pd.dtype),
            gate=jnp.zeros(layout.n_region, grid.pd.dtype),
            flow=response.flows.flow,
            vm=response.flows.vm,
            va=response.flows.va,
            losses=response.flows.losses,
            energized=response.flows.energized,
            served=jnp.where(response.flows.energized, demand, 0.0) - response.balance.auto_shed,
            reserve=_reserve(params, response, sp),
            n1_secure=response.n1_secure,
            terminated=jnp.array(False),
        )
        not_served = jnp.sum(demand) - jnp.sum(state.served)
        extras = observations.Extras(
            forecasts=exogenous.forecasts(
                k_forecast, params, scenario, day, step, noise, config.forecast_steps
            ),
            not_served=not_served,
        )
        return observations.observe(config, params, state, extras), state

    # --- one step ------------------------------------------------------------------------

    def step(self, key: jax.Array, state: EnvState, actions: dict, params: EnvParams | None = None):
        params = self.default_params if params is None else params
        config, scenario = self.config, self.config.scenario
        grid, layout = params.grid, params.layout
        k_noise, k_forecast = jax.random.split(key)
        actions, sanitized = dispatch.sanitize(self._checked_actions(actions), grid.pd.dtype)
        decoded = dispatch.decode(actions, layout)
        step = (state.step + 1).astype(jnp.int32)
        noise = exogenous.advance_noise(k_noise, state.noise, params, scenario)
        demand, available = exogenous.conditions(params, scenario, state.day, step, noise)
        branch_down, gen_down = _apply_events(
            jnp.maximum(state.branch_down - 1, 0),
            jnp.maximum(state.gen_down - 1, 0),
            state.event_step, state.event_element, state.event_duration, step,
        )  # fmt: skip
        unit_on = (grid.gen_status > 0) & (gen_down == 0)
        line_status = (grid.branch_status > 0) & (branch_down == 0)
        pg = jnp.where(unit_on, state.pg, 0.0)
        sp = dispatch.setpoints(params, config, decoded, pg, demand, available, unit_on)
        served = demand - sp.shed
        last = protection.LastSolve(state.losses, vm=state.vm, va=state.va)
        response = protection.respond(
            params, config, sp, served, unit_on, line_status, state.overload_count, last
        )
        flows, bal = response.flows, response.balance
        pg = _final_output(params, response)
        branch_down = jnp.where(
            response.tripped, config.protection.reconnect_after_steps, branch_down
        ).astype(jnp.int32)
        delivered = jnp.where(flows.energized, served, 0.0) - bal.auto_shed
        not_served = jnp.maximum(demand, 0.0) - jnp.maximum(delivered, 0.0)
        ens = jnp.sum(not_served)
        n_out = jnp.sum((grid.branch_status > 0) & (branch_down > 0))
        # beyond max_outages the solvers would drop outages: the episode is cut there, truncated
        # rather than terminated, since the grid's fate is unknown (docs/env.md, "Termination")
        outage_limit = n_out > config.max_outages
        # a failed AC solve is a collapse only where the iteration matrices follow every outage
        # (beyond the limit it fails for want of them); lost load is sound either way
        collapsed = ~flows.converged & ~outage_limit
        blackout = (ens > config.blackout_share * jnp.sum(jnp.maximum(demand, 0.0))) | collapsed
        reserve = _reserve(params, response, sp)
        n1 = response.n1_secure
        new_state = EnvState(
            step=step,
            day=state.day,
            noise=noise,
            pg=pg,
            demand=demand,
            available=available,
            branch_down=branch_down,
            overload_count=response.overload_count,
            gen_down=gen_down,
            event_step=state.event_step,
            event_element=state.event_element,
            event_duration=state.event_duration,
            directive=decoded.directive,
            gate=decoded.gate,
            flow=flows.flow,
            vm=flows.vm,
            va=flows.va,
            losses=flows.losses,
            energized=flows.energized,
            served=delivered,
            reserve=reserve,
            n1_secure=n1,
            terminated=blackout,
        )
        outcome = rewards.StepOutcome(
            pg=pg,
            demand=demand,
            not_served=not_served,
            curtailed=sp.curtailed + bal.spilled,
            loading=flows.loading,
            line_status=response.line_status,
            tripped=response.tripped,
            vm=flows.vm,
            energized=flows.energized,
            reserve=reserve,
            n1_secure=n1,
            blackout=blackout,
            voltage_checked=config.physics == "ac",
        )
        reward = rewards.rewards(config.rewards, params, outcome)
        extras = observations.Extras(
            forecasts=exogenous.forecasts(
                k_forecast, params, scenario, state.day, step, noise, config.forecast_steps
            ),
            not_served=ens,
        )
        obs = observations.observe(config, params, new_state, extras)
        truncated = (step >= config.episode_steps) | outage_limit
        done = blackout | truncated
        dones = {agent: done for agent in self.agents} | {"__all__": done}
        info = _info(params, outcome, response, sanitized, truncated, sp, bal, flows)
        info |= {"branches_out": n_out, "outage_limit": outage_limit}
        return obs, new_state, {a: reward[a] for a in self.agents}, dones, info


def _apply_events(branch_down, gen_down, event_step, event_element, event_duration, step):
    """Start the outages scheduled for `step`: elements < n_branch are branches, others units."""
    n_branch = branch_down.shape[0]
    starting = event_step == step
    is_branch = event_element < n_branch
    branch = jnp.where(starting & is_branch, event_duration, 0)
    unit = jnp.where(starting & ~is_branch, event_duration, 0)
    branch_down = branch_down.at[jnp.minimum(event_element, n_branch - 1)].max(branch)
    gen_index = jnp.clip(event_element - n_branch, 0, gen_down.shape[0] - 1)
    gen_down = gen_down.at[gen_index].max(unit)
    return branch_down.astype(jnp.int32), gen_down.astype(jnp.int32)


def _final_output(params: EnvParams, response: protection.Response) -> Array:
    """Units' output after the step: units on dead buses stop, and the reference bus's units
    deliver what the solved power flow asks of them (island losses within the step, AC losses)."""
    grid = params.grid
    alive = response.flows.energized[grid.gen_bus]
    pg = jnp.where(alive, response.balance.pg, 0.0)
    at_ref = (grid.gen_bus == params.dc.ref) & alive
    ref_total = jnp.sum(jnp.where(at_ref, pg, 0.0))
    n_ref = jnp.maximum(jnp.sum(at_ref), 1)
    share = jnp.where(ref_total > 0, pg / jnp.maximum(ref_total, 1e-9), 1.0 / n_ref)
    return jnp.where(at_ref, share * response.flows.slack_pg, pg)


def _reserve(params: EnvParams, response: protection.Response, sp: dispatch.Setpoints) -> Array:
    """Upward reserve (MW) the energised dispatchable units can still give within a step."""
    grid = params.grid
    alive = response.flows.energized[grid.gen_bus] & params.layout.dispatchable
    return jnp.sum(jnp.where(alive, jnp.maximum(sp.upper - response.balance.pg, 0.0), 0.0))


def _info(params, outcome, response, sanitized, truncated, sp, bal, flows) -> dict:
    """Per-step metrics (MW; the evaluation integrates them to MWh)."""
    cost = rewards.generation_cost(params, outcome.pg)
    return {
        "operating_cost": jnp.sum(cost),
        "energy_not_served_mw": jnp.sum(outcome.not_served),
        "load_shed_mw": jnp.sum(sp.shed),
        "auto_shed_mw": jnp.sum(bal.auto_shed),
        "lost_load_mw": response.lost_load,
        "curtailed_mw": jnp.sum(outcome.curtailed),
        "demand_mw": jnp.sum(outcome.demand),
        "generation_mw": jnp.sum(outcome.pg),
        "losses_mw": flows.losses,
        "overloaded_branches": jnp.sum(outcome.line_status & (outcome.loading > 1.0)),
        "max_loading": jnp.max(jnp.where(outcome.line_status, outcome.loading, 0.0)),
        "line_trips": jnp.sum(response.tripped),
        "cascade_rounds": response.rounds,
        "energized_share": jnp.mean(outcome.energized),
        "n1_secure": outcome.n1_secure,
        "reserve_mw": outcome.reserve,
        "action_sanitized": sanitized,
        "blackout": outcome.blackout,
        "truncated": truncated,
        "converged": flows.converged,
    }


def make(case: str | Grid = "ieee118", scenario="normal", physics: str = "dc", **options):
    """The environment for a case (name, MATPOWER path or Grid) and scenario (name or Scenario).

    `options` are EnvConfig fields (`episode_steps=96`, `protection={"hard_limit": 1.3}`, ...).
    """
    grid = case if isinstance(case, Grid) else load(case)
    if np.all(np.asarray(grid.region) == 0):
        raise ValueError(
            f"grid {grid.name!r} has no regions; the regional agents need a partition "
            "(gridrl.cases.partition.spectral_partition)"
        )
    config = EnvConfig().replace(physics=physics, scenario=scenario_preset(scenario), **options)
    return GridEnv(grid, config)
