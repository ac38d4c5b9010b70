"""The agents shipped with the package: they load offline and act, finite and in bounds, on the
first states of every scenario (how they were made and how well they operate: docs/results.md)."""

import jax
import numpy as np
import pytest

from gridrl.agents import PRETRAINED
from gridrl.agents.trained import load_pretrained, pretrained_path
from gridrl.env import SCENARIOS
from gridrl.evaluate.runner import environment, resolve_policy


@pytest.fixture(scope="module")
def policy():
    return load_pretrained()


def test_the_shipped_checkpoint_is_small_and_named(policy):
    size = sum(p.stat().st_size for p in pretrained_path().rglob("*") if p.is_file())
    assert size < 2_000_000  # parameters and normaliser statistics only
    assert policy.name == PRETRAINED
    assert resolve_policy(PRETRAINED).spec == policy.spec


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_pretrained_agents_act_on_every_scenario(policy, scenario):
    env = environment("ieee118", scenario, "dc", 288)
    params = env.default_params
    act = jax.jit(jax.vmap(policy.spec.act(env), in_axes=(None, 0, 0, 0, None)))
    keys = jax.random.split(jax.random.key(3), 4)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    actions = act(policy.weights, keys, obs, state, params)
    assert set(actions) == set(env.agents)
    for agent, action in actions.items():
        space = env.action_space(agent)
        action = np.asarray(action)
        assert action.shape == (4, *space.shape), agent
        assert np.all(np.isfinite(action)), agent
        assert np.all((action >= space.low) & (action <= space.high)), agent
