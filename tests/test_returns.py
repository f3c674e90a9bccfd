import jax.numpy as jnp
import numpy as np
import pytest

from purerl.core.trajectory import gae, linear_recurrence, q_lambda


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


# --- Q(lambda) returns (PQN) ---------------------------------------------------------------------------------

def q_lambda_reference(rewards, next_values, terminated, truncated, gamma, lam):
    """Plain numpy Q(lambda), one env and one step at a time: G = r + gamma (1 - term) [(1 - lam) m + lam G'],
    with a full bootstrap (G' = m) where the episode ended or the rollout does."""
    T, N = rewards.shape
    out = np.zeros((T, N))
    for n in range(N):
        for t in reversed(range(T)):
            m = next_values[t, n]
            if terminated[t, n]:
                out[t, n] = rewards[t, n]
            elif truncated[t, n] or t == T - 1:
                out[t, n] = rewards[t, n] + gamma * m
            else:
                out[t, n] = rewards[t, n] + gamma * ((1 - lam) * m + lam * out[t + 1, n])
    return out


def _q_lambda(rewards, next_values, terminated, truncated, gamma, lam):
    term, trunc = np.asarray(terminated, bool), np.asarray(truncated, bool)
    return np.asarray(q_lambda(jnp.asarray(rewards, jnp.float32), jnp.asarray(next_values, jnp.float32),
                               jnp.asarray(term), jnp.asarray(term | trunc), gamma, lam))


def test_q_lambda_returns_by_hand_with_episode_ends_inside_and_at_the_end_of_the_rollout():
    # gamma = lam = 0.5; m = max_a Q(final_obs[t], a)
    # env 0, no episode end: G3 = 1 + .5 * 8 = 5 (the rollout's last step bootstraps fully);
    #   G2 = 1 + .5 (.5 * 6 + .5 * 5) = 3.75; G1 = 1 + .5 (.5 * 4 + .5 * 3.75) = 2.9375;
    #   G0 = 1 + .5 (.5 * 2 + .5 * 2.9375) = 2.234375
    # env 1, terminated at 1, truncated at 2, terminated at 3 (the last step): G3 = 4 (no bootstrap);
    #   G2 = 3 + .5 * 30 = 18 (the final observation's value, not G3's episode); G1 = 2; G0 = 1 + .5 (5 + 1) = 4
    # env 2, terminated at 0, truncated at 3: G3 = 1 + .5 * 2 = 2; G2 = .5 (.5 + 1) = .75; G1 = .5 (.5 + .375)
    #   = .4375; G0 = 0
    rewards = np.array([[1, 1, 0], [1, 2, 0], [1, 3, 0], [1, 4, 1]], np.float32)
    m = np.array([[2, 10, 1], [4, 20, 1], [6, 30, 1], [8, 40, 2]], np.float32)
    term = np.array([[0, 0, 1], [0, 1, 0], [0, 0, 0], [0, 1, 0]], bool)
    trunc = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 1]], bool)
    expected = np.array([[2.234375, 4, 0], [2.9375, 2, 0.4375], [3.75, 18, 0.75], [5, 4, 2]])
    np.testing.assert_allclose(_q_lambda(rewards, m, term, trunc, 0.5, 0.5), expected, rtol=1e-6)
    np.testing.assert_allclose(q_lambda_reference(rewards, m, term, trunc, 0.5, 0.5), expected, rtol=1e-6)


def test_q_lambda_matches_numpy_and_gae_targets_of_the_max_q_values():
    rng = np.random.default_rng(1)
    T, N = 12, 4
    rewards, m = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    term, trunc = rng.uniform(size=(T, N)) < 0.1, rng.uniform(size=(T, N)) < 0.1
    trunc &= ~term
    got = _q_lambda(rewards, m, term, trunc, 0.97, 0.8)
    np.testing.assert_allclose(got, q_lambda_reference(rewards, m, term, trunc, 0.97, 0.8), rtol=1e-5, atol=1e-5)
    # GAE's value targets with V(obs[t]) = max Q(obs[t]): where the episode goes on, obs[t + 1] is final_obs[t],
    # so V(obs[t + 1]) = m[t]; elsewhere V(obs[t]) is free (a fresh episode's first observation)
    values = rng.normal(size=(T, N))
    values[1:] = np.where(term[:-1] | trunc[:-1], values[1:], m[:-1])
    _, targets = gae(jnp.asarray(rewards, jnp.float32), jnp.asarray(values, jnp.float32),
                     jnp.asarray(m, jnp.float32), jnp.asarray(term), jnp.asarray(term | trunc), 0.97, 0.8)
    np.testing.assert_allclose(got, np.asarray(targets), rtol=1e-5, atol=1e-5)


def test_q_lambda_at_lambda_0_is_one_step_q_learning_and_at_1_the_bootstrapped_return():
    rng = np.random.default_rng(2)
    T, N, gamma = 9, 3, 0.9
    rewards, m = rng.normal(size=(T, N)), rng.normal(size=(T, N))
    term = np.zeros((T, N), bool)
    trunc = np.zeros((T, N), bool)
    term[2, 0] = trunc[5, 1] = True
    # lambda 0: r + gamma (1 - terminated) max Q(s')
    np.testing.assert_allclose(_q_lambda(rewards, m, term, trunc, gamma, 0.0), rewards + gamma * ~term * m,
                               rtol=1e-5, atol=1e-6)
    # lambda 1: the discounted rewards to the episode's end, plus gamma^k max Q at a truncation or the rollout's end
    mc = np.zeros((T, N))
    for n in range(N):
        g = 0.0
        for t in reversed(range(T)):
            if term[t, n]:
                g = rewards[t, n]
            elif trunc[t, n] or t == T - 1:
                g = rewards[t, n] + gamma * m[t, n]
            else:
                g = rewards[t, n] + gamma * g
            mc[t, n] = g
    np.testing.assert_allclose(_q_lambda(rewards, m, term, trunc, gamma, 1.0), mc, rtol=1e-5, atol=1e-6)
    assert mc[0, 0] == pytest.approx(rewards[0, 0] + gamma * rewards[1, 0] + gamma ** 2 * rewards[2, 0])
