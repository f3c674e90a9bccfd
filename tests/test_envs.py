import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import envs
from purerl.core import trajectory


def _run(env, actions_fn, steps, key=0):
    state, obs = env.reset(jax.random.key(key))

    def body(carry, k):
        state, obs = carry
        state, ts = env.step(k, state, actions_fn(obs))
        return (state, ts.obs), ts

    (state, _), traj = jax.jit(lambda s, o: jax.lax.scan(body, (s, o), jax.random.split(jax.random.key(key + 1), steps)))(state, obs)
    return obs, state, traj


def test_unknown_env_lists_close_matches():
    with pytest.raises(ValueError, match="CartPole-v1"):
        envs.make("Cartpole-v1")
    with pytest.raises(ValueError, match="brax/ant"):
        envs.make("ant")


def test_time_limit_is_truncation_with_final_obs_and_fresh_reset():
    env = envs.make("Pendulum-v1", num_envs=3)  # never terminates; 200-step limit
    first_obs, _, traj = _run(env, lambda o: jnp.zeros((3, 1)), 401)
    trunc = np.asarray(traj.truncated)
    assert not np.asarray(traj.terminated).any()
    assert trunc[199].all() and trunc[399].all() and trunc.sum() == 6
    # final_obs is the last observation of the ended episode; obs is already the next episode's first.
    assert not np.allclose(traj.final_obs[199], traj.obs[199])
    np.testing.assert_array_equal(traj.final_obs[198], traj.obs[198])
    # the episode return reported at the end equals the sum of that episode's rewards
    np.testing.assert_allclose(traj.info["episode_return"][199], np.asarray(traj.reward[:200]).sum(0), rtol=1e-5)
    assert (np.asarray(traj.info["episode_length"][199]) == 200).all()
    # every reset draws a new initial state: differs across envs and from the first reset
    reset_obs = np.asarray(traj.obs[199])
    assert len({tuple(np.round(r, 5)) for r in reset_obs}) == 3
    assert not np.allclose(reset_obs, first_obs)


def test_cartpole_terminates_and_is_not_truncated():
    env = envs.make("CartPole-v1", num_envs=2)
    _, _, traj = _run(env, lambda o: jnp.zeros((2,), jnp.int32), 60)
    term = np.asarray(traj.terminated)
    assert term.any(axis=0).all()          # always pushing left falls over
    assert not np.asarray(traj.truncated).any()


def test_non_vector_observations_are_flattened():
    env = envs.make("Breakout-MinAtar", num_envs=2)
    _, obs = env.reset(jax.random.key(0))
    assert obs.shape == (2, 400) and obs.dtype == jnp.float32


def test_actions_are_clipped_or_rescaled_to_bounds():
    box = envs.make_base("Pendulum-v1", 1).action_space
    assert float(box.low[0]) == -2.0 and float(box.high[0]) == 2.0
    clip = envs.make("Pendulum-v1", 2, action_transform="clip")
    resc = envs.make("Pendulum-v1", 2, action_transform="rescale")
    key = jax.random.key(0)
    s, _ = clip.reset(key)
    _, big = clip.step(key, s, jnp.full((2, 1), 50.0))
    _, at_bound = clip.step(key, s, jnp.full((2, 1), 2.0))
    np.testing.assert_allclose(big.reward, at_bound.reward)
    s2, _ = resc.reset(key)
    _, half = resc.step(key, s2, jnp.full((2, 1), 0.5))   # 0.5 in [-1, 1] -> 1.0 in [-2, 2]
    _, one = clip.step(key, s, jnp.full((2, 1), 1.0))
    np.testing.assert_allclose(half.reward, one.reward, rtol=1e-6)


def test_observation_normalizer_tracks_raw_statistics():
    raw_env = envs.make("CartPole-v1", num_envs=8)
    norm_env = envs.make("CartPole-v1", num_envs=8, normalize_obs=True)
    act = lambda o: (jnp.arange(8) % 2).astype(jnp.int32)  # noqa: E731
    raw_first, raw_state, raw = _run(raw_env, act, 200)
    _, state, normed = _run(norm_env, act, 200)
    all_raw = np.concatenate([np.asarray(raw_first)[None], np.asarray(raw.obs)]).reshape(-1, 4)
    rms = norm_env.obs_normalizer(state)
    np.testing.assert_allclose(rms.mean, all_raw.mean(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(rms.var, all_raw.var(0), rtol=1e-3, atol=1e-4)
    assert raw_env.obs_normalizer(raw_state) is None
    # the last observations were normalised with (nearly) the final statistics
    np.testing.assert_allclose(normed.obs[-1], rms.normalize(raw.obs[-1]), atol=1e-3)


def test_reward_scaling_divides_by_return_std():
    env = envs.make("CartPole-v1", num_envs=4, normalize_reward=True, gamma=0.99)
    _, state, traj = _run(env, lambda o: jnp.zeros((4,), jnp.int32), 30)
    assert float(traj.reward[-1].max()) < 1.0        # CartPole's raw reward is 1 per step
    # the episode statistics below the scaler still report raw returns
    done_returns = np.asarray(traj.info["episode_return"])[np.asarray(traj.done)]
    assert (done_returns == np.round(done_returns)).all() and done_returns.min() >= 8


def test_brax_env_resets_to_fresh_states():
    env = envs.make("brax/inverted_pendulum", num_envs=3, backend="positional", episode_length=5)
    first_obs, _, traj = _run(env, lambda o: jnp.zeros((3, env.action_dim)), 10)
    trunc = np.asarray(traj.truncated) | np.asarray(traj.terminated)
    assert np.asarray(traj.truncated)[4].all()       # the time limit of 5 steps
    reset_obs = np.asarray(traj.obs[4])
    assert len({tuple(np.round(r, 6)) for r in reset_obs}) == 3
    assert not np.allclose(reset_obs, first_obs)     # not the cached first state
    assert np.isfinite(np.asarray(traj.reward)).all() and trunc.sum() >= 3


@pytest.mark.parametrize("budget", [None, 4096])
def test_reset_pool_starts_are_fresh_distinct_and_equal_under_vmap(monkeypatch, budget):
    """Envs whose episode ends take a fresh initial state from the pool drawn ahead of the loop: every new
    episode starts from its own draw inside CartPole's initial range, and a vmapped pair of seeds gives what
    each seed gives alone. With a small noise budget the pool is drawn in chunks of steps (an outer loop)."""
    if budget is not None:
        monkeypatch.setattr(trajectory, "NOISE_BUDGET_BYTES", budget)
    env = envs.make("CartPole-v1", num_envs=8)
    chunk = trajectory.noise_chunk(env, 200)
    assert chunk == 200 if budget is None else (chunk < 200 and 200 % chunk == 0)

    def run(key):
        state, obs = env.reset(key)
        policy = lambda o, k, m: (jax.random.randint(k, (8,), 0, 2), {}, m)  # noqa: E731  random: ~20-step episodes
        return trajectory.rollout(env, policy, state, obs, key, 200).traj

    traj = jax.jit(run)(jax.random.key(0))
    done = np.asarray(traj.done)
    starts = np.asarray(traj.obs)[1:][done[:-1]]  # first observation of each episode begun inside the rollout
    ends = np.asarray(traj.final_obs)[done]
    assert done.sum() >= 40
    assert len({tuple(r) for r in starts}) == len(starts)
    assert np.abs(starts).max() <= 0.05 and np.abs(ends).max() > 0.05
    keys = jax.random.split(jax.random.key(1), 2)
    batched = jax.jit(jax.vmap(run))(keys)
    for i in range(2):
        one = jax.jit(run)(keys[i])
        for name in ("obs", "final_obs", "reward", "done", "action"):
            np.testing.assert_array_equal(np.asarray(getattr(batched, name))[i], np.asarray(getattr(one, name)))


def test_time_limit_env_draws_fresh_states_once_per_reset_block():
    # a suite env whose reset is a random observation: each draw of fresh states is visible in fresh.obs
    import types

    from flax import struct

    from purerl.envs.suites import TimeLimitEnv

    @struct.dataclass
    class CoreState:
        obs: jax.Array
        reward: jax.Array
        done: jax.Array

    core = types.SimpleNamespace(reset=lambda key: CoreState(jax.random.normal(key, (2,)), 0.0, 0.0))

    class Fake(TimeLimitEnv):
        pass

    env = Fake("fake", core, num_envs=3, obs_size=2, action_size=1, episode_length=4)
    every_step = np.asarray(env.step_noise(jax.random.key(0), 10).fresh_state.obs)       # [10, 3, 2]
    assert len({tuple(r) for r in every_step.reshape(-1, 2).round(6)}) == 30            # a draw per env and step
    env.reset_block = 4                                        # Playground's setting: one draw per episode length
    blocks = np.asarray(env.step_noise(jax.random.key(0), 10).fresh_state.obs)
    for lo, hi in ((0, 4), (4, 8), (8, 10)):
        assert (blocks[lo:hi] == blocks[lo]).all()
    rows = {tuple(r) for r in blocks[[0, 4, 8]].reshape(-1, 2).round(6)}
    assert len(rows) == 9                                      # every env and block: a state of its own
