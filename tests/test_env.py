"""gridrl.env: the multi-agent grid-operation environment.

One environment (and one set of compiled functions) serves the whole module: a batch of 8 grids
stepped by one jitted, vmapped step; compiled functions are the expensive part on 2 cores. Tests
that need a plain `normal` day or a single-sample step use the session's shared `normal`
environment and its compiled functions instead (conftest.py), which other modules compile too.
"""

from functools import partial
from itertools import pairwise
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridrl.cases import load
from gridrl.env import SCENARIOS, AutoReset, dispatch, make, protection
from gridrl.physics import dc_model, dc_power_flow, energized_buses
from gridrl.physics.dc import outages

BATCH = 8
EPISODE = 12


@pytest.fixture(scope="module")
def env():
    return make("ieee118", scenario="equipment_failure", episode_steps=EPISODE)


@pytest.fixture(scope="module")
def fns(env):
    """Jitted batched reset and step, shared by every test of the module."""
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    return reset, step


def keys(seed: int, n: int = BATCH):
    return jax.random.split(jax.random.key(seed), n)


def random_actions(env, key, n: int = BATCH):
    out = {}
    for agent, k in zip(env.agents, jax.random.split(key, len(env.agents)), strict=True):
        out[agent] = jax.random.uniform(k, (n, *env.action_space(agent).shape), minval=-1, maxval=1)
    return out


def all_finite(tree) -> bool:
    leaves = jax.tree_util.tree_leaves(tree)
    return all(
        bool(jnp.all(jnp.isfinite(x))) for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)
    )


def rollout(env, fns, seed: int, n_steps: int, actions_fn):
    reset, step = fns
    obs, state = reset(keys(seed), env.default_params)
    history = []
    for t in range(n_steps):
        actions = actions_fn(t)
        obs, state, rewards, dones, info = step(
            keys(1000 * seed + t), state, actions, env.default_params
        )
        history.append((obs, state, rewards, dones, info))
    return history


def test_agents_and_spaces(env, fns):
    assert env.agents == (
        "strategic",
        "operational_0",
        "operational_1",
        "operational_2",
        "operational_3",
        "safety",
    )
    obs, _ = fns[0](keys(0), env.default_params)
    for agent in (*env.agents, "world_state"):
        assert obs[agent].shape == (BATCH, *env.observation_space(agent).shape)
        assert obs[agent].dtype == jnp.float32
    sizes = {env.action_space(a).shape for a in env.agents if a.startswith("operational")}
    assert len(sizes) == 1  # regions padded to one layout
    with pytest.raises(KeyError, match="unknown agent"):
        env.action_space("nobody")


def test_observation_layout_names_every_index(env, fns):
    reset, _ = fns
    obs, state = reset(keys(3), env.default_params)
    params = env.default_params
    for agent in (*env.agents, "world_state"):
        spans = env.observation_layout(agent)
        # contiguous, covering the whole observation
        assert spans[0][1] == 0 and spans[-1][2] == env.observation_space(agent).shape[0]
        assert all(a[2] == b[1] for a, b in pairwise(spans))
    part = {name: (start, stop) for name, start, stop in env.observation_layout("safety")}
    start, stop = part["branch_flow"]
    np.testing.assert_allclose(
        obs["safety"][:, start:stop], state.flow / params.rating, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(obs["safety"][:, part["n1_secure"][0]], state.n1_secure)
    world = {name: (start, stop) for name, start, stop in env.observation_layout("world_state")}
    start, stop = world["operational_2.bus_demand"]
    own = {name: (a, b) for name, a, b in env.observation_layout("operational_2")}
    own_start, own_stop = own["bus_demand"]
    np.testing.assert_array_equal(
        obs["world_state"][:, start:stop], obs["operational_2"][:, own_start:own_stop]
    )


def test_random_actions_keep_everything_finite_and_balanced(env, fns):
    history = rollout(env, fns, 1, 6, lambda t: random_actions(env, jax.random.key(t)))
    for obs, state, rewards, dones, info in history:
        assert all_finite((obs, state, rewards, info))
        # generation + energy not served = demand + shunts + losses, every step, every grid
        generation = np.asarray(info["generation_mw"], float)
        ens = np.asarray(info["energy_not_served_mw"], float)
        demand = np.asarray(info["demand_mw"], float)
        losses = np.asarray(info["losses_mw"], float)
        np.testing.assert_allclose(generation + ens, demand + losses, rtol=2e-4, atol=0.5)
        assert set(dones) == {*env.agents, "__all__"}


def test_same_key_same_episode(env, fns):
    first = rollout(env, fns, 3, 3, lambda t: random_actions(env, jax.random.key(t)))
    second = rollout(env, fns, 3, 3, lambda t: random_actions(env, jax.random.key(t)))
    for a, b in zip(first, second, strict=True):
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


hostile = st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 5.0, -5.0, 0.0])


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=hostile, agent=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_hostile_actions_are_sanitised_and_flagged(env, fns, value, agent, seed):
    reset, step = fns
    obs, state = reset(keys(seed), env.default_params)
    actions = random_actions(env, jax.random.key(seed))
    name = env.agents[agent]
    actions[name] = actions[name].at[:, ::3].set(value)
    obs, state, rewards, _dones, info = step(keys(seed + 1), state, actions, env.default_params)
    assert all_finite((obs, state, rewards, info))
    assert bool(np.all(np.asarray(info["action_sanitized"]))) == (not -1.0 <= value <= 1.0)


def test_an_overloaded_branch_trips_after_its_counter_and_recloses(env, fns):
    params = env.default_params
    reset, step = fns
    obs, state = reset(keys(5), params)
    flows = np.abs(np.asarray(state.flow[0]))
    branch = int(np.argmax(flows))
    # a rating 1/1.3 of today's flow: overloaded, but below the hard limit (150 %)
    rating = params.rating.at[branch].set(flows[branch] / 1.3)
    params = params.replace(rating=rating)
    zero = {a: jnp.zeros((BATCH, *env.action_space(a).shape)) for a in env.agents}
    protection = env.config.protection
    down = []
    for t in range(protection.trip_after_steps + 2):
        obs, state, rewards, _dones, info = step(keys(50 + t), state, zero, params)
        down.append(int(state.branch_down[0, branch]))
    # in service while the counter climbs, out at the trip_after_steps-th overloaded step, then
    # counting down to its reclosing
    reclose = protection.reconnect_after_steps
    tripped_at = protection.trip_after_steps - 1
    assert down[:tripped_at] == [0] * tripped_at
    assert down[tripped_at:] == [reclose - i for i in range(len(down) - tripped_at)]
    assert all_finite((obs, state, rewards, info))


def test_cascades_batched_equal_sample_by_sample(normal_env, normal_fns):
    """Under vmap only the samples with trips run the cascade rounds (env/sparse.py): the
    batched step gives exactly what each sample gives alone. On the session's shared `normal`
    environment (conftest.py), whose batched and single steps other modules compile too; its
    batch of 4 gathers the cascading samples one at a time, as a batch of 8 does."""
    env, n = normal_env, normal_fns.batch
    params = env.default_params
    _, state = normal_fns.reset(keys(11, n), params)
    # the 12 most loaded branches rated 1/1.6 of sample 0's flow: hard trips, then a cascade
    flows = np.abs(np.asarray(state.flow[0]))
    hot = np.argsort(-flows)[:12]
    params = params.replace(rating=params.rating.at[hot].set(flows[hot] / 1.6))
    # float32, the action space's dtype, as the other users of the shared step pass them
    actions = jax.tree.map(
        lambda a: a.astype(jnp.float32), random_actions(env, jax.random.key(12), n)
    )
    _, batched, rewards, _, info = normal_fns.step(keys(13, n), state, actions, params)
    rounds = np.asarray(info["cascade_rounds"])
    assert rounds.max() > 2 and rounds.min() < rounds.max()  # the samples cascade differently
    single = normal_fns.single_step
    for i in range(n):
        sample = partial(jax.tree.map, lambda x, i=i: x[i])
        _, alone, alone_rewards, _, alone_info = single(
            keys(13, n)[i], sample(state), sample(actions), params
        )
        assert int(alone_info["cascade_rounds"]) == rounds[i]
        # float32: a batched product and a single one round differently (MW of ~1e3 MW flows)
        np.testing.assert_allclose(alone.flow, batched.flow[i], rtol=1e-5, atol=1e-3)
        np.testing.assert_array_equal(alone.branch_down, batched.branch_down[i])
        np.testing.assert_allclose(
            alone_rewards["strategic"], rewards["strategic"][i], rtol=1e-5, atol=1e-5
        )


def test_a_cascade_stops_where_its_next_solve_would_be_unsound(env):
    """Past max_outages the solvers would drop outages (and AC would not converge): the trips
    that would cross it take effect without a round of their own, and the step is truncated.
    After an AC solve that failed (a blackout) no round follows either."""
    params, config = env.default_params, env.config
    usable = np.flatnonzero(np.asarray(params.dc.usable))
    status = np.ones(env.default_params.grid.n_branch, bool)
    status[usable[: config.max_outages - 1]] = False
    one, two = (np.isin(np.arange(status.size), usable[-k:]) for k in (1, 2))
    flows = SimpleNamespace(converged=jnp.array(True))
    goes_on = partial(protection._cascade_goes_on, params, config, jnp.asarray(status))
    assert bool(goes_on(jnp.asarray(one), flows, jnp.int32(1)))  # reaches max_outages: solved
    assert not bool(goes_on(jnp.asarray(two), flows, jnp.int32(1)))  # would pass it
    assert not bool(goes_on(jnp.zeros_like(jnp.asarray(one)), flows, jnp.int32(1)))  # no trip
    last_round = jnp.int32(config.protection.max_cascade_rounds)
    assert not bool(goes_on(jnp.asarray(one), flows, last_round))
    collapsed = SimpleNamespace(converged=jnp.array(False))  # AC: no trips from a failed solve
    assert not bool(goes_on(jnp.asarray(one), collapsed, jnp.int32(1)))


def test_auto_reset_restarts_finished_episodes(env, fns):
    reset, step = fns
    params = env.default_params
    wrapped = AutoReset(env)
    auto_step = jax.jit(jax.vmap(wrapped.step, in_axes=(0, 0, 0, None)))
    obs, state = reset(keys(21), params)
    zero = {a: jnp.zeros((BATCH, *env.action_space(a).shape)) for a in env.agents}
    # samples 0-3 on their last step, the others in mid-episode
    late = jnp.arange(BATCH) < BATCH // 2
    state = state.replace(step=jnp.where(late, EPISODE - 1, 2).astype(jnp.int32))
    obs, after, rewards, dones, info = auto_step(keys(22), state, zero, params)
    np.testing.assert_array_equal(np.asarray(dones["__all__"]), np.asarray(late))
    # finished samples start over from a fresh reset (the reset key is split from the step key)
    reset_keys = jax.vmap(lambda k: jax.random.split(k)[1])(keys(22))
    fresh_obs, fresh = reset(reset_keys, params)
    stepped = step(jax.vmap(lambda k: jax.random.split(k)[0])(keys(22)), state, zero, params)
    for i in range(BATCH):
        source = fresh if late[i] else stepped[1]
        np.testing.assert_array_equal(np.asarray(after.step[i]), np.asarray(source.step[i]))
        np.testing.assert_allclose(after.flow[i], source.flow[i], rtol=1e-6, atol=1e-6)
        source_obs = fresh_obs if late[i] else stepped[0]
        np.testing.assert_allclose(obs["safety"][i], source_obs["safety"][i], rtol=1e-6, atol=1e-6)
    assert all_finite((obs, after, rewards, info))


def test_an_islanding_outage_loses_the_island_load(env, fns):
    params = env.default_params
    reset, step = fns
    obs, state = reset(keys(7), params)
    grid = params.grid
    # a bus with a single branch: opening that branch islands it
    degree = np.bincount(np.concatenate([grid.f_bus, grid.t_bus]), minlength=grid.n_bus)
    loaded_leaf = [b for b in np.flatnonzero(degree == 1) if grid.pd[b] > 0]
    bus = int(loaded_leaf[0])
    touches = (np.asarray(grid.f_bus) == bus) | (np.asarray(grid.t_bus) == bus)
    branch = int(np.flatnonzero(touches)[0])
    state = state.replace(branch_down=state.branch_down.at[:, branch].set(5))
    zero = {a: jnp.zeros((BATCH, *env.action_space(a).shape)) for a in env.agents}
    obs, state, rewards, _dones, info = step(keys(70), state, zero, params)
    assert not bool(state.energized[0, bus])
    assert float(state.served[0, bus]) == 0.0
    assert float(info["lost_load_mw"][0]) >= float(state.demand[0, bus]) - 1e-3
    assert all_finite((obs, state, rewards, info))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_schedules_its_outages(name):
    env = make("ieee118", scenario=name, episode_steps=48)
    scenario, params = env.config.scenario, env.default_params
    n_branch = params.grid.n_branch
    schedule = jax.jit(env._events, static_argnums=2)
    for seed in range(3):
        start, element, duration = (
            np.asarray(x) for x in schedule(jax.random.key(seed), params, n_branch)
        )
        used = start >= 0
        assert np.all(start < env.config.episode_steps) and np.all(duration[used] >= 1)
        lost_branches = used & (element < n_branch)
        lost_units = used & (element >= n_branch)
        low = (
            scenario.branch_outages[0] + scenario.initial_branch_outages + scenario.corridor_outage
        )
        assert lost_branches.sum() >= low
        assert lost_units.sum() >= scenario.gen_outages[0] + scenario.lose_largest_unit
        if scenario.initial_branch_outages:
            assert np.sum(start[lost_branches] == 0) >= scenario.initial_branch_outages
        if scenario.outage_pool == "critical":  # every branch lost is a screened contingency
            assert set(element[lost_branches]) <= set(np.asarray(params.critical).tolist())


def test_bad_options_get_clear_errors():
    with pytest.raises(ValueError, match="unknown scenario"):
        make("ieee118", scenario="zombie_apocalypse")
    with pytest.raises(ValueError, match="unknown environment options"):
        make("ieee118", episode_lenght=3)
    with pytest.raises(ValueError, match="hard_limit"):
        make("ieee118", protection={"hard_limit": 0.5})


def _n1_against_full_solves(params, grid, status: np.ndarray, max_outages: int):
    """Post-contingency flows from the (compensated) LODF equal a full DC solve of the outage set
    plus each screened contingency (float64), islanding contingencies are flagged, and the
    indicator counts both; returns the contingencies' islanding flags and the share."""
    model, cont, n_branch = params.dc, np.asarray(params.layout.contingencies), grid.n_branch
    topology = outages(model, jnp.asarray(status), max_outages)
    solved = dc_power_flow(grid, status)
    flows = protection.Flows(
        flow=solved.pf,
        loading=jnp.abs(solved.pf) / params.rating,
        vm=solved.energized.astype(float),
        va=solved.va,
        energized=solved.energized,
        slack_pg=solved.pg_slack,
        losses=jnp.zeros(()),
        converged=jnp.array(True),
    )
    post, islanding = (
        np.asarray(x) for x in protection.post_contingency_flows(params, flows, topology)
    )

    both = np.repeat(status[None], len(cont), axis=0)
    both[np.arange(len(cont)), cont] = False
    brute = dc_power_flow(grid, both)
    cut_off = ~np.asarray(brute.energized).all(axis=1)
    np.testing.assert_array_equal(islanding, cut_off)
    # the branches still in service other than the contingency itself
    others = (np.arange(n_branch)[:, None] != cont[None, :]) & status[:, None]
    expected = np.asarray(brute.pf).T
    keep = others & ~islanding[None, :]
    np.testing.assert_allclose(post[keep], expected[keep], rtol=0, atol=1e-6)

    rating = np.asarray(params.rating, float)
    overloaded = np.any((np.abs(expected) > rating[:, None]) & others, axis=0)
    considered = status[cont]
    share = np.sum(considered & ~overloaded & ~cut_off) / np.sum(considered)
    live = jnp.asarray(status) & flows.energized[model.f_bus]
    got = protection.n1_secure_share(params, flows, topology, live)
    assert float(got) == pytest.approx(share)
    return islanding, share


def test_n1_indicator_is_exact_under_the_current_topology(env):
    """Three branches out, one of them making a screened contingency island buses."""
    grid = load("ieee118")
    params = env.default_params.replace(dc=dc_model(grid))
    cont = np.asarray(params.layout.contingencies)
    n_branch = grid.n_branch
    # a branch whose outage, together with a screened contingency, cuts buses off: with it out,
    # that contingency islands; plus two meshed branches out
    candidates = [b for b in np.asarray(env.default_params.event_branches) if b not in cont]
    pairs = np.ones((len(candidates) * len(cont), n_branch), bool)
    for i, (b, c) in enumerate((b, c) for b in candidates for c in cont):
        pairs[i, [b, c]] = False
    cut = ~np.asarray(energized_buses(grid, pairs)).all(axis=1)
    first, _ = divmod(int(np.flatnonzero(cut)[0]), len(cont))
    out = [candidates[first], *[b for b in candidates[first + 1 :] if b not in cont][:2]]
    status = np.ones(n_branch, bool)
    status[out] = False
    islanding, _ = _n1_against_full_solves(params, grid, status, env.config.max_outages)
    assert islanding.any() and not islanding.all()


def test_n1_indicator_is_exact_with_every_branch_in(env):
    """The path most steps take: the base topology (no slots), the same for a whole batch.
    Ratings at 1.3× the base flows, so that some contingencies overload and some do not."""
    grid = load("ieee118")
    model = dc_model(grid)
    base = np.abs(np.asarray(dc_power_flow(grid).pf))
    params = env.default_params.replace(dc=model, rating=jnp.asarray(1.3 * base + 1.0))
    status = np.asarray(model.usable)
    _, share = _n1_against_full_solves(params, grid, status, 0)
    assert 0.0 < share < 1.0


def test_units_without_ramp_limits_cross_their_range_in_one_step(normal_env, normal_fns):
    """A case with no ramp data (ramp = inf, as MATPOWER files without RAMP_AGC load): an action
    moves a unit by a share of its capacity, never by a·inf (NaN at a = 0)."""
    grid = load("ieee118")
    env = make(grid.replace(ramp=np.full(grid.n_gen, np.inf)), episode_steps=EPISODE)
    params = env.default_params
    # its reset, by the shared compiled reset of an environment configured alike (the params,
    # ramps included, are an argument): sample 0 of a batch
    assert env.config == normal_env.config
    _, states = normal_fns.reset(jnp.stack([jax.random.key(0)] * normal_fns.batch), params)
    state = jax.tree.map(lambda x: x[0], states)
    unit_on = params.grid.gen_status > 0
    for level in (0.0, 1.0, -1.0):
        actions = {a: jnp.full(env.action_space(a).shape, level) for a in env.agents}
        decoded = dispatch.decode(dispatch.sanitize(actions, jnp.float32)[0], params.layout)
        sp = dispatch.setpoints(
            params, env.config, decoded, state.pg, state.demand, state.available, unit_on
        )
        assert all_finite(sp)
        movable = np.asarray(params.layout.dispatchable & (state.gen_down == 0))
        target, pmax, pmin = (np.asarray(x) for x in (sp.target, grid.pmax, grid.pmin))
        if level == 1.0:  # the strategic and unguarded operational units go to their maximum
            assert np.any(np.isclose(target[movable], pmax[movable]))
        assert np.all(target[movable] <= pmax[movable] + 1e-3)
        assert np.all(target[movable] >= np.minimum(pmin, pmax)[movable] - 1e-3)


def test_ac_dispatch_plans_the_losses_instead_of_drifting_to_the_reference_bus():
    """Under AC the reference bus's units deliver the losses each solve finds. The next step's
    balance plans for them (the last solve's losses), so that with the agents holding still
    those units keep their share: without it they took the losses on top of their share every
    step, about 30 MW a step towards the reference bus on ieee118, until branches tripped."""
    env = make("ieee118", scenario="normal", physics="ac", episode_steps=EPISODE)
    params = env.default_params
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    _, state = reset(jax.random.key(3), params)
    hold = {agent: jnp.zeros(env.action_space(agent).shape) for agent in env.agents}
    at_ref = np.asarray(params.grid.gen_bus) == int(params.dc.ref)
    ref_output = [float(np.sum(np.asarray(state.pg)[at_ref]))]
    for t in range(6):
        _, state, _, _, info = step(jax.random.key(t), state, hold, params)
        supplied = float(info["generation_mw"]) + float(info["energy_not_served_mw"])
        demand = float(info["demand_mw"]) + float(info["losses_mw"])
        assert supplied == pytest.approx(demand, rel=2e-4, abs=0.5)
        assert float(info["losses_mw"]) > 10.0  # AC: the losses are real
        ref_output.append(float(np.sum(np.asarray(state.pg)[at_ref])))
    # the load falls a few MW a step at this hour: a step moves them by their share of that
    assert np.max(np.abs(np.diff(ref_output))) < 10.0

    # past max_outages (here the 8 top contingencies out at once, by events, on top of any
    # already out) the iteration matrices follow only max_outages of them and the iteration
    # fails: a truncation, not a blackout (no load is lost)
    worst = np.asarray(params.layout.contingencies)[:8]
    deep = state.replace(branch_down=state.branch_down.at[worst].set(5))
    _, after, _, dones, info = step(jax.random.key(9), deep, hold, params)
    assert bool(info["outage_limit"]) and not bool(info["converged"])
    assert float(info["energy_not_served_mw"]) == 0.0
    assert bool(info["truncated"]) and bool(dones["__all__"])
    assert not bool(info["blackout"]) and not bool(after.terminated)
