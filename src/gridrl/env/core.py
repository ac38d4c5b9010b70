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
from gridrl.env import dispatch, exogenous, observations, protection, rewards
from gridrl.env.config import EnvConfig
from gridrl.env.layout import agent_groups, agent_names
from gridrl.env.params import build_params
from gridrl.env.scenarios import scenario as scenario_preset
from gridrl.env.spaces import Box
from gridrl.env.state import EnvParams, EnvState
from gridrl.timeseries.sampling import draw_day

Array = jnp.ndarray


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
        state = _settle(
            params, config, sp, demand, branch_down, response.replace(overload_count=counts),
            step=step, day=day, noise=noise, demand=demand, available=available,
            gen_down=gen_down, event_step=event_step, event_element=event_element,
            event_duration=event_duration, directive=jnp.zeros(layout.n_region, grid.pd.dtype),
            gate=jnp.zeros(layout.n_region, grid.pd.dtype),
        )  # fmt: skip
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
        new_state = _settle(
            params, config, sp, served, branch_down, response,
            step=step, day=state.day, noise=noise, demand=demand, available=available,
            gen_down=gen_down, event_step=state.event_step, event_element=state.event_element,
            event_duration=state.event_duration, directive=decoded.directive, gate=decoded.gate,
        )  # fmt: skip
        not_served = jnp.maximum(demand, 0.0) - jnp.maximum(new_state.served, 0.0)
        ens = jnp.sum(not_served)
        n_out = jnp.sum((grid.branch_status > 0) & (new_state.branch_down > 0))
        # beyond max_outages the solvers would drop outages: the episode is cut there, truncated
        # rather than terminated, since the grid's fate is unknown (docs/env.md, "Termination")
        outage_limit = n_out > config.max_outages
        # a failed AC solve is a collapse only where the iteration matrices follow every outage
        # (beyond the limit it fails for want of them); lost load is sound either way
        collapsed = ~flows.converged & ~outage_limit
        blackout = (ens > config.blackout_share * jnp.sum(jnp.maximum(demand, 0.0))) | collapsed
        new_state = new_state.replace(terminated=blackout)
        outcome = rewards.StepOutcome(
            pg=new_state.pg,
            demand=demand,
            not_served=not_served,
            curtailed=sp.curtailed + bal.spilled,
            loading=flows.loading,
            line_status=response.line_status,
            tripped=response.tripped,
            vm=flows.vm,
            energized=flows.energized,
            reserve=new_state.reserve,
            n1_secure=response.n1_secure,
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


def _settle(
    params: EnvParams,
    config: EnvConfig,
    sp: dispatch.Setpoints,
    requested: Array,
    branch_down: Array,
    response: protection.Response,
    **carried: Array,
) -> EnvState:
    """The state a step (or the episode's start) settles into once its power flow and protection
    have run: what they decided (output, flows, trips, reserve, N-1) and the load served, i.e. the
    `requested` load [n_bus] MW (demand less the operator's shedding) on energised buses, less the
    automatic shedding; `carried` holds the other fields as they are. Not terminated: the step
    judges that on this state."""
    flows = response.flows
    return EnvState(
        pg=_final_output(params, response),
        branch_down=jnp.where(
            response.tripped, config.protection.reconnect_after_steps, branch_down
        ).astype(jnp.int32),
        overload_count=response.overload_count,
        flow=flows.flow,
        vm=flows.vm,
        va=flows.va,
        losses=flows.losses,
        energized=flows.energized,
        served=jnp.where(flows.energized, requested, 0.0) - response.balance.auto_shed,
        reserve=_reserve(params, response, sp),
        n1_secure=response.n1_secure,
        terminated=jnp.array(False),
        **carried,
    )


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
