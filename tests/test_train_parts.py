"""The learner's parts alone: GAE, the squashed distribution, running statistics, the config."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gridrl.agents import distributions
from gridrl.agents.networks import _attend
from gridrl.agents.normalize import RunningStats
from gridrl.train import gae
from gridrl.train.config import ConfigError, GridRLConfig, preset

# --- GAE against a plain loop --------------------------------------------------------------


def reference_gae(rewards, values, next_values, terminated, done, gamma, lam):
    """Per agent and environment, the textbook backward recursion, one scalar at a time."""
    T, B, N = rewards.shape
    adv = np.zeros_like(rewards)
    for b in range(B):
        for i in range(N):
            running = 0.0
            for t in reversed(range(T)):
                bootstrap = 0.0 if terminated[t, b] else next_values[t, b, i]
                delta = rewards[t, b, i] + gamma[i] * bootstrap - values[t, b, i]
                if done[t, b]:
                    running = 0.0  # nothing flows back across an episode's end
                running = delta + gamma[i] * lam[t, b, i] * running
                adv[t, b, i] = running
    return adv, adv + values


def test_gae_matches_a_plain_loop_with_terminations_truncations_and_holds():
    rng = np.random.default_rng(0)
    T, B, N = 12, 3, 4
    rewards = rng.normal(size=(T, B, N))
    values = rng.normal(size=(T, B, N))
    # the value of the state reached: the next step's value unless the episode ended there
    next_values = np.concatenate([values[1:], rng.normal(size=(1, B, N))])
    terminated = np.zeros((T, B), bool)
    truncated = np.zeros((T, B), bool)
    terminated[4, 0] = True  # a blackout: no bootstrap
    truncated[7, 1] = True  # the horizon: bootstraps from the final state's value
    final = rng.normal(size=(B, N))
    next_values[7, 1] = final[1]  # the reset's next value is not the final state's
    done = terminated | truncated
    gamma = np.array([0.99, 0.9, 0.9, 0.5])
    lam = np.broadcast_to(np.array([0.95, 0.9, 0.9, 0.8]), (T, B, N)).copy()
    lam[::3, :, 0] = 1.0  # the first agent holds its action: λ = 1 inside the hold
    expected_adv, expected_ret = reference_gae(
        rewards, values, next_values, terminated, done, gamma, lam
    )
    adv, ret = gae.advantages(
        jnp.asarray(rewards),
        jnp.asarray(values),
        jnp.asarray(next_values),
        jnp.asarray(terminated),
        jnp.asarray(done),
        jnp.asarray(gamma),
        jnp.asarray(lam),
    )
    np.testing.assert_allclose(adv, expected_adv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ret, expected_ret, rtol=1e-12, atol=1e-12)


def test_gae_truncation_bootstraps_and_termination_does_not():
    """One step episodes: the advantage is r + γV(s') − V(s) after a truncation, r − V(s) after
    a termination."""
    reward, value, final = 1.0, 0.5, 2.0
    args = [jnp.full((1, 1, 1), x) for x in (reward, value, final)]
    gamma, lam = jnp.array([0.9]), jnp.array([0.95])
    done = jnp.ones((1, 1), bool)
    truncated_adv, _ = gae.advantages(*args, jnp.zeros((1, 1), bool), done, gamma, lam)
    terminated_adv, _ = gae.advantages(*args, jnp.ones((1, 1), bool), done, gamma, lam)
    assert float(truncated_adv[0, 0, 0]) == pytest.approx(reward + 0.9 * final - value)
    assert float(terminated_adv[0, 0, 0]) == pytest.approx(reward - value)


# --- the tanh-squashed Gaussian ------------------------------------------------------------


def test_attention_matches_flax_dot_product_attention():
    """The broadcast-and-sum attention of the actor equals flax's, weights and mixed values,
    with and without a leading batch dimension (float64: only rounding may differ)."""
    import flax.linen as nn

    keys = jax.random.split(jax.random.key(3), 3)
    for shape in ((6, 8, 4), (5, 6, 8, 4)):
        q, k, v = (jax.random.normal(key, shape, jnp.float64) * 3.0 for key in keys)
        expected_weights = nn.dot_product_attention_weights(q, k)
        expected_mixed = jnp.einsum("...hqk,...khd->...qhd", expected_weights, v)
        weights, mixed = _attend(q, k, v)
        np.testing.assert_allclose(weights, expected_weights, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(mixed, expected_mixed, rtol=1e-12, atol=1e-12)


def test_squashed_log_prob_matches_the_change_of_variables_numerically():
    """p_a(a) = p_u(u) / |da/du| with the derivative taken by finite differences, and the
    density integrates to 1 over (-1, 1)."""
    mean, log_std = jnp.array([0.3]), jnp.array([-0.2])
    std = math.exp(-0.2)
    for u in (-2.5, -0.4, 0.0, 0.7, 3.0):
        h = 1e-6
        slope = (math.tanh(u + h) - math.tanh(u - h)) / (2 * h)
        p_u = math.exp(-0.5 * ((u - 0.3) / std) ** 2) / (std * math.sqrt(2 * math.pi))
        expected = math.log(p_u / slope)
        got = float(distributions.log_prob(mean, log_std, jnp.array([u])))
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-6)
    a = np.linspace(-1 + 1e-9, 1 - 1e-9, 400_001)
    u = np.arctanh(a)
    density = np.exp(jax.vmap(lambda x: distributions.log_prob(mean, log_std, x[None]))(u))
    assert np.trapezoid(density, a) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e4, 1e30])
def test_squashed_actions_and_log_probs_finite_at_extreme_parameters(scale):
    """Any finite network output gives actions in [-1, 1] and finite log-probs (float32)."""
    key = jax.random.key(0)
    raw_mean = jnp.array([-1.0, 1.0, 0.0, 3.0], jnp.float32) * scale
    mean = distributions.bounded_mean(raw_mean)
    for log_std in (-1e6, -3.0, 0.0, 1e6):
        ls = jnp.full(4, log_std, jnp.float32)
        raw = distributions.sample(key, mean, ls)
        action = jnp.tanh(raw)
        assert bool(jnp.all(jnp.abs(action) <= 1.0))
        assert bool(jnp.isfinite(distributions.log_prob(mean, ls, raw)))
        assert bool(jnp.isfinite(distributions.entropy(mean, ls)))
        # the mean action itself, at the bound's edge, is finite too
        assert bool(jnp.isfinite(distributions.log_prob(mean, ls, mean)))


def test_running_stats_match_the_whole_stream():
    rng = np.random.default_rng(1)
    stream = [rng.normal(3.0, 2.0, size=(n, 5)) for n in (7, 1, 30, 4)]
    stats = RunningStats.zeros((5,), jnp.float64)
    for batch in stream:
        stats = stats.update(jnp.asarray(batch))
    whole = np.concatenate(stream)
    np.testing.assert_allclose(stats.mean, whole.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.var, whole.var(0), rtol=1e-12)
    assert float(stats.count) == len(whole)


# --- the config ----------------------------------------------------------------------------


def test_config_overrides_parse_by_type_and_refuse_bad_input_in_one_line():
    config = preset("quick").override(
        {"lr": "1e-4", "num_envs": "16", "scenario": "mix", "mix_weights": "1,1,1,1,1,1"}
    )
    assert (config.lr, config.num_envs, config.scenario) == (1e-4, 16, "mix")
    assert config.envs_per_scenario() == (3, 3, 3, 3, 2, 2)
    assert (
        preset("quick").override({"scenario": "mix", "num_envs": "6"}).envs_per_scenario()
        == (1,) * 6
    )
    for changes, words in [
        ({"nope": "1"}, "unknown field 'nope'"),
        ({"lr": "fast"}, "bad value 'fast' for lr"),
        ({"algorithm": "dqn"}, "algorithm"),
        ({"lr": "-1"}, "lr and bc_lr must be > 0"),
        ({"minibatches": "7"}, "minibatches must divide"),
        ({"gamma_strategic": "1.5"}, "gamma_strategic"),
    ]:
        with pytest.raises(ConfigError, match=words) as error:
            preset("quick").override(changes)
        assert "\n" not in str(error.value)


def test_config_round_trips_through_json():
    config = preset("quick").override({"scenario": "mix", "algorithm": "mappo"})
    assert GridRLConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")


@pytest.mark.parametrize("ended", [[], [3], [0, 5, 7], [1, 2, 4, 6, 7]])
def test_values_where_values_the_masked_rows_alone_whether_few_or_many(ended):
    from gridrl.train.ppo import values_where

    worlds = jax.random.normal(jax.random.PRNGKey(0), (8, 5))
    mask = jnp.zeros(8, bool).at[jnp.array(ended, int)].set(True)
    weights = jax.random.normal(jax.random.PRNGKey(1), (5, 3))

    def value_fn(w):
        return jnp.tanh(w @ weights)

    got = jax.jit(lambda w, m: values_where(value_fn, w, m, slots=3))(worlds, mask)
    expected = jnp.where(mask[:, None], value_fn(worlds), 0.0)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6, atol=1e-7)
