"""The optional suites: MuJoCo Playground (extra `purerl[playground]`) and Craftax (extra `purerl[craftax]`).

Each test that needs a suite's package skips without it (CI installs both extras on both Pythons). The
rollouts are compiled once per module (module-scoped fixtures) on tiny sizes; compilation dominates, so the
training runs (a few PPO/SAC updates, one to two minutes of compiling each on a CPU) are marked slow.
"""

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import envs, ppo, sac
from purerl.config import check_env_fields

PG_TASK = "playground/PendulumSwingup"   # the DM Control task that compiles fastest (one joint, no contacts)
CRAFTAX = "craftax/Craftax-Classic-Symbolic-v1"
LIMIT, STEPS = 5, 12


def _rollout(env, steps, key):
    """``steps`` steps of zero actions from ``env.reset(key)``: the first observation and the TimeSteps."""

    def run(key):  # jitted by the caller
        state, obs = env.reset(key)
        act = jnp.zeros((env.num_envs,), jnp.int32) if env.is_discrete else jnp.zeros((env.num_envs, env.action_dim))

        def body(state, noise):
            return env.step(noise, state, act)

        return obs, jax.lax.scan(body, state, env.step_noise(jax.random.fold_in(key, 1), steps))[1]

    return run(key)


def _assert_time_limit(first_obs, traj, limit):
    """Truncated exactly at every `limit`-th step and nowhere else, never terminated; `final_obs` is the ended
    episode's last observation, `obs` the next episode's first, drawn fresh for every env and every reset."""
    trunc, term = np.asarray(traj.truncated), np.asarray(traj.terminated)
    at_limit = (np.arange(trunc.shape[0]) % limit) == limit - 1
    assert trunc[at_limit].all() and not trunc[~at_limit].any()
    assert not term.any()
    obs, final = np.asarray(traj.obs), np.asarray(traj.final_obs)
    np.testing.assert_array_equal(final[~at_limit], obs[~at_limit])
    ends = np.flatnonzero(at_limit)
    for t in ends:
        assert not np.allclose(final[t], obs[t], atol=1e-6)             # the ended episode's own last obs
        assert len({tuple(np.round(r, 6)) for r in obs[t]}) == len(obs[t])  # a different start per env
        assert not np.allclose(obs[t], first_obs)                      # not the cached first state
    assert not np.allclose(obs[ends[0]], obs[ends[1]])                 # each reset drawn anew


# --- MuJoCo Playground ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def playground():
    pytest.importorskip("mujoco_playground")
    env = envs.make_base(PG_TASK, 3, episode_length=LIMIT)
    return (env,) + jax.jit(lambda k0, k1: (_rollout(env, STEPS, k0), env.reset(k1)[1]))(jax.random.key(0),
                                                                                      jax.random.key(7))


def test_playground_time_limit_is_truncation_with_final_obs_and_fresh_resets(playground):
    env, (first_obs, traj), _ = playground
    assert env.env_id == PG_TASK and env.max_episode_steps == LIMIT and env.backend == "jax"
    assert env.obs_dim == 3 and env.action_space == envs.Box.make(-1.0, 1.0, (1,))
    _assert_time_limit(np.asarray(first_obs), traj, LIMIT)
    assert np.isfinite(np.asarray(traj.reward)).all()


def test_playground_resets_with_other_keys_start_elsewhere(playground):
    _, (first_obs, _), other = playground
    assert not np.allclose(np.asarray(other), np.asarray(first_obs))
    assert len({tuple(np.round(r, 6)) for r in np.asarray(first_obs)}) == 3


def test_playground_physics_impl_is_checked_before_loading():
    pytest.importorskip("mujoco_playground")
    with pytest.raises(ValueError, match=r"`env_backend` = 'positional'.*\('jax', 'warp'\)"):
        envs.make_base(PG_TASK, 2, backend="positional")
    with pytest.raises(ValueError, match=r"`env_backend` = 'jax'.*Brax backends"):
        envs.make_base("brax/inverted_pendulum", 2, backend="jax")


def test_playground_task_needing_a_download_says_so_without_downloading(monkeypatch, tmp_path):
    pytest.importorskip("mujoco_playground")
    from mujoco_playground._src import mjx_env

    def no_download():
        raise AssertionError("purerl started Playground's download")

    monkeypatch.setattr(mjx_env, "MENAGERIE_PATH", tmp_path / "mujoco_menagerie")
    monkeypatch.setattr(mjx_env, "ensure_menagerie_exists", no_download)
    with pytest.raises(ValueError, match="Menagerie.*GitHub on first load") as err:
        envs.make_base("playground/Go1JoystickFlatTerrain", 2)
    assert "\n" not in str(err.value) and str(tmp_path / "mujoco_menagerie") in str(err.value)


def test_checkpoints_hold_states_with_empty_arrays(tmp_path):
    """MJX's Data (a Playground env state) has arrays with no elements, which orbax alone refuses to write."""
    from purerl.run import checkpoint as ckpt

    state = {"act": jnp.zeros((4, 0), jnp.float32), "qpos": jnp.arange(6.0).reshape(2, 3),
             "key": jax.random.key(3)}
    ckpt.save(tmp_path, state, step=1)
    got, _ = ckpt.restore(tmp_path, jax.eval_shape(lambda: state))
    assert got["act"].shape == (4, 0) and got["act"].dtype == jnp.float32
    np.testing.assert_array_equal(got["qpos"], state["qpos"])
    np.testing.assert_array_equal(jax.random.key_data(got["key"]), jax.random.key_data(state["key"]))


def _finite(metrics, names):
    for k in names:
        v = np.asarray(metrics[k])
        assert v.size and np.isfinite(v).all(), (k, v)


@pytest.mark.slow
def test_ppo_takes_updates_on_a_playground_task():
    pytest.importorskip("mujoco_playground")
    cfg = ppo.Config(env=PG_TASK, episode_length=8, num_envs=2, num_steps=8, total_timesteps=3 * 16,
                     num_minibatches=2, num_epochs=1, hidden_sizes=(8,))
    res = jax.jit(ppo.make_train(cfg))(jax.random.key(0))
    _finite(res.metrics, ("policy_loss", "value_loss", "entropy", "episode_return", "episode_length"))
    assert np.asarray(res.metrics["episode_length"])[-1] == 8       # purerl's time limit ended the episodes
    assert int(res.metrics["env_steps"][-1]) == 48


@pytest.mark.slow
def test_sac_takes_updates_on_a_playground_task():
    pytest.importorskip("mujoco_playground")
    cfg = sac.Config(env=PG_TASK, episode_length=10, num_envs=2, total_timesteps=2 * 30, learning_starts=20,
                     batch_size=16, hidden_sizes=(8,), num_log_points=2, eval_episodes=2)
    res = jax.jit(sac.make_train(cfg))(jax.random.key(0))
    _finite(res.metrics, ("critic_loss", "actor_loss", "q", "alpha", "entropy", "eval_return"))
    assert int(res.metrics["gradient_steps"][-1]) == 30 - 10


# --- Craftax ---------------------------------------------------------------------------------------------------

def _death_at_the_limit(env, key):
    """One step from states where the player is dead (health 0) before or at the step limit, and one alive at
    the limit: the TimeStep of that step."""
    state, _ = env.reset(key)
    state = state.replace(player_health=jnp.array([0, 0, 9], state.player_health.dtype),
                          timestep=jnp.array([0, LIMIT - 1, LIMIT - 1], state.timestep.dtype))
    return env.step(jax.random.fold_in(key, 1), state, jnp.zeros((3,), jnp.int32))[1]


@pytest.fixture(scope="module")
def craftax():
    pytest.importorskip("craftax")
    base = envs.make_base(CRAFTAX, 3)
    # Craftax's own 10,000-step limit, shortened through its EnvParams to reach it in a short rollout
    env = envs.CraftaxEnv(CRAFTAX.split("/", 1)[1], 3, env_params=base.env_params.replace(max_timesteps=LIMIT))
    both = jax.jit(lambda k: (_rollout(env, STEPS, k), _death_at_the_limit(env, k)))  # one program to compile
    return (base, env) + both(jax.random.key(0))


def test_craftax_time_limit_is_truncation_with_final_obs_and_fresh_resets(craftax):
    base, env, (first_obs, traj), _ = craftax
    assert base.env_id == CRAFTAX and base.max_episode_steps == 10_000 and env.max_episode_steps == LIMIT
    assert base.obs_dim == 1345 and base.action_space == envs.Discrete(17)
    _assert_time_limit(np.asarray(first_obs), traj, LIMIT)


def test_craftax_death_is_termination_not_truncation(craftax):
    """Dead players (one of them at the step limit): Craftax says `done` for both reasons at once; purerl says
    terminated, not truncated. The one alive at the limit is truncated."""
    ts = craftax[3]
    assert np.asarray(ts.terminated).tolist() == [True, True, False]
    assert np.asarray(ts.truncated).tolist() == [False, False, True]


@pytest.mark.slow
def test_ppo_takes_updates_on_craftax():
    pytest.importorskip("craftax")
    cfg = ppo.Config(env=CRAFTAX, num_envs=2, num_steps=8, total_timesteps=3 * 16, num_minibatches=2,
                     num_epochs=1, hidden_sizes=(16,))
    res = jax.jit(ppo.make_train(cfg))(jax.random.key(0))
    _finite(res.metrics, ("policy_loss", "value_loss", "entropy"))
    assert int(res.metrics["env_steps"][-1]) == 48


def test_craftax_carries_its_own_time_limit_and_has_no_physics():
    pytest.importorskip("craftax")
    with pytest.raises(ValueError, match=r"`episode_length`.*Craftax envs carry their own time limit \(10000"):
        ppo.make(ppo.Config(env=CRAFTAX, episode_length=200))
    with pytest.raises(ValueError, match="`env_backend`.*does not apply"):
        ppo.make(ppo.Config(env=CRAFTAX, env_backend="jax"))


# --- which config fields a suite takes: read from its row of the suite table ---------------------------------

def test_the_suite_row_decides_which_env_fields_a_config_may_set(monkeypatch):
    """`env_backend` and `episode_length` are refused or accepted by what the env's row of `envs.SUITES`
    declares (`backends`, `own_time_limit`), not by its prefix: CartPole under its own (gymnax) row refuses
    both, naming the row and the env's own limit; under a row that declares physics backends and no time limit
    of its own it takes both, through the checks `ppo.make` runs."""
    gymnax = envs.suite_of("CartPole-v1")
    env = envs.make("CartPole-v1", 2)
    cfg = ppo.Config(env="CartPole-v1", env_backend="jax", episode_length=200).validate()
    with pytest.raises(ValueError, match=r"`env_backend` = 'jax' does not apply to env 'CartPole-v1': it picks "
                                         r"the physics of a Brax or MuJoCo Playground env, and gymnax envs have no "
                                         r"choice of physics; leave it at its default \(None\)"):
        check_env_fields(cfg, env, gymnax)
    with pytest.raises(ValueError, match=r"`episode_length` = 200 does not apply to env 'CartPole-v1': gymnax envs "
                                         r"carry their own time limit \(500 steps here\); leave it at its default "
                                         r"\(1000\)"):
        check_env_fields(cfg.replace(env_backend=None), env, gymnax)
    takes_both = dataclasses.replace(gymnax, backends=("jax",), own_time_limit=False)
    check_env_fields(cfg, env, takes_both)                                  # no error: the row allows both
    with pytest.raises(ValueError, match="`episode_length`"):              # one declaration, one field
        check_env_fields(cfg, env, dataclasses.replace(gymnax, backends=("jax",)))
    with pytest.raises(ValueError, match="`env_backend`"):
        check_env_fields(cfg, env, dataclasses.replace(gymnax, own_time_limit=False))

    # every row of the real table: the fields it ignores are exactly what it declares
    for suite in envs.SUITES:
        ignored = suite.ignored_fields(7)
        assert ("env_backend" in ignored) == (not suite.backends), suite.title
        assert ("episode_length" in ignored) == suite.own_time_limit, suite.title
    assert [s.title for s in envs.SUITES if not s.ignored_fields(7)] == ["Brax", "MuJoCo Playground"]

    # the table is what `make` reads: swap the gymnax row for one that takes both fields
    with pytest.raises(ValueError, match="`episode_length`.*does not apply"):
        ppo.make(ppo.Config(env="CartPole-v1", episode_length=200))
    monkeypatch.setattr(envs, "SUITES", tuple(takes_both if s is gymnax else s for s in envs.SUITES))
    assert ppo.make(ppo.Config(env="CartPole-v1", episode_length=200, env_backend="jax")).config.episode_length == 200


# --- ids and missing extras (no suite package needed) --------------------------------------------------------

@pytest.mark.parametrize("module,env_id,extra", [("mujoco_playground", "playground/CheetahRun", "playground"),
                                                 ("craftax", CRAFTAX, "craftax")])
def test_a_missing_extra_is_named(monkeypatch, module, env_id, extra):
    monkeypatch.setitem(sys.modules, module, None)   # as if not installed
    with pytest.raises(ValueError, match=rf"`env` = '{env_id}'.*not installed: pip install 'purerl\[{extra}\]'"):
        envs.make(env_id, 2)


def test_unknown_suite_ids_suggest_close_ones():
    pytest.importorskip("craftax")
    with pytest.raises(ValueError, match="craftax/Craftax-Classic-Symbolic-v1"):
        envs.make("craftax/Craftax-Classic-Symbolic-v2", 2)
    with pytest.raises(ValueError, match="symbolic observations only"):
        envs.make("craftax/Craftax-Classic-Pixels-v1", 2)
    pytest.importorskip("mujoco_playground")
    with pytest.raises(ValueError, match="playground/CheetahRun"):
        envs.make("playground/CheetaRun", 2)
    assert {"playground/CheetahRun", "playground/WalkerWalk", CRAFTAX} <= set(envs.list_envs())
