import jax.numpy as jnp
import numpy as np
import pytest

from purerl.core.trajectory import gae, linear_recurrence


def gae_reference(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Plain numpy GAE, one env and one step at a time."""
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            bootstrap = 0.0 if terminated[t, n] else next_values[t, n]
            delta = rewards[t, n] + gamma * bootstrap - values[t, n]
            episode_ends = terminated[t, n] or truncated[t, n]
            running = delta + (0.0 if episode_ends else gamma * lam * running)
            adv[t, n] = running
    return adv, adv + values


def test_gae_matches_numpy_with_truncation_and_termination():
    rng = np.random.default_rng(0)
    T, N = 12, 3
    rewards = rng.normal(size=(T, N))
    values = rng.normal(size=(T, N))
    next_values = rng.normal(size=(T, N))
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    terminated[3, 0] = True          # env 0: a true terminal state mid-rollout
    truncated[7, 0] = True           # ... then a time limit
    truncated[5, 1] = True           # env 1: a truncation only
    terminated[11, 2] = True         # env 2: terminates on the rollout's last step
    adv, targets = gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(next_values),
                       jnp.asarray(terminated), jnp.asarray(terminated | truncated), 0.97, 0.9)
    ref_adv, ref_targets = gae_reference(rewards, values, next_values, terminated, truncated, 0.97, 0.9)
    np.testing.assert_allclose(np.asarray(adv), ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(targets), ref_targets, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_and_termination_does_not():
    ones = jnp.ones((1, 1))
    zeros = jnp.zeros((1, 1))
    # reward 1, V(s)=0, V(final_obs)=10: truncation keeps gamma * 10, termination drops it.
    adv_trunc, _ = gae(ones, zeros, 10 * ones, zeros.astype(bool), ones.astype(bool), 0.5, 1.0)
    adv_term, _ = gae(ones, zeros, 10 * ones, ones.astype(bool), ones.astype(bool), 0.5, 1.0)
    assert float(adv_trunc[0, 0]) == 6.0
    assert float(adv_term[0, 0]) == 1.0


def test_first_episode_mask_keeps_steps_up_to_the_first_end():
    from purerl.core.trajectory import first_episode

    done = jnp.array([[0, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 0]], bool)
    expected = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 1]], bool)
    np.testing.assert_array_equal(np.asarray(first_episode(done)), expected)


@pytest.mark.parametrize("T", [1, 7, 12, 128, 500])
def test_linear_recurrence_equals_the_step_by_step_loop(T):
    """The blocked recurrence (blocks of up to sqrt(T) steps) against the plain backward loop, for lengths
    that are prime, square and neither, with episode ends (zero decays) scattered through."""
    rng = np.random.default_rng(T)
    x = rng.normal(size=(T, 3)).astype(np.float32)
    decay = (0.97 * (rng.uniform(size=(T, 3)) > 0.1)).astype(np.float32)
    y, ref = np.zeros_like(x), np.zeros(3, np.float32)
    for t in reversed(range(T)):
        ref = x[t] + decay[t] * ref
        y[t] = ref
    np.testing.assert_allclose(np.asarray(linear_recurrence(jnp.asarray(decay), jnp.asarray(x))), y, rtol=1e-5,
                               atol=1e-5)
