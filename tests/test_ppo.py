import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import ppo
from purerl.config import apply_overrides
from _helpers import assert_tree_close

SMALL = ppo.Config(env="CartPole-v1", total_timesteps=4 * 32 * 6, num_envs=4, num_steps=32,
                   num_minibatches=2, num_epochs=2, hidden_sizes=(16, 16))


@pytest.fixture(scope="module")
def cartpole():
    trainer = ppo.make(ppo.Config(env="CartPole-v1", total_timesteps=500_000))
    return trainer, jax.jit(trainer.train)(jax.random.key(0))


def test_defaults_solve_cartpole(cartpole):
    trainer, result = cartpole
    ret = np.asarray(result.metrics["episode_return"])
    assert ret.shape == (trainer.num_log_points,)
    assert int(result.metrics["env_steps"][-1]) <= 500_000
    assert ret[-20:].mean() >= 475, ret[-20:]
    for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac"):
        assert np.isfinite(np.asarray(result.metrics[k])).all(), k


def test_deterministic_evaluation_of_trained_policy(cartpole):
    trainer, result = cartpole
    ev = jax.jit(lambda s, k: trainer.evaluate(s, k, 8))(result.state, jax.random.key(3))
    assert ev["returns"].shape == (8,) and bool(ev["finished"].all())
    assert float(ev["mean"]) >= 475
    np.testing.assert_allclose(float(ev["mean"]), float(np.mean(ev["returns"])), rtol=1e-6)


def test_the_same_vmapped_program_reproduces_every_seed_exactly():
    """README, "vmap and exactness": the same program with the same keys gives the same result bit for bit,
    so one seed of a sweep is reproduced by running the sweep's program again and taking its index. The program
    is built twice from equal configs (two traces, two compilations: what a second session does), so anything
    of purerl's that varied between builds (a Python-side random draw, an iteration order) would show."""
    first = jax.jit(jax.vmap(ppo.make_train(SMALL)))(jax.random.split(jax.random.key(5), 3))
    rebuilt = jax.jit(jax.vmap(ppo.make_train(ppo.Config(**{f: getattr(SMALL, f) for f in SMALL.__dataclass_fields__}))))
    again = rebuilt(jax.random.split(jax.random.PRNGKey(5), 3))
    for a, b in zip(jax.tree.leaves((first.metrics, first.state.params)),
                    jax.tree.leaves((again.metrics, again.state.params)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_seed_vmap_equals_single_runs():
    """README, "vmap and exactness": over a few updates (6 here) a vmapped seed and the same seed alone agree to
    float rounding; over long runs they drift apart, so this is not asserted bit for bit."""
    train = ppo.make_train(SMALL)
    keys = jax.random.split(jax.random.key(1), 3)
    batched = jax.jit(jax.vmap(train))(keys)
    single = jax.jit(train)
    for i in range(3):
        one = single(keys[i])
        assert_tree_close(jax.tree.map(lambda x: x[i], batched.metrics), one.metrics, rtol=1e-5, atol=1e-6)
        assert_tree_close(jax.tree.map(lambda x: x[i], batched.state.params), one.state.params, rtol=1e-5, atol=1e-6)
    assert not np.allclose(batched.state.params["params"]["actor_torso"]["Dense_0"]["kernel"][0],
                           batched.state.params["params"]["actor_torso"]["Dense_0"]["kernel"][1])


def test_hyperparameter_vmap_equals_single_runs():
    def run(lr, clip, key):
        return ppo.make_train(SMALL.replace(learning_rate=lr, clip_eps=clip))(key)

    lrs = jnp.array([1e-3, 3e-3])
    clips = jnp.array([0.1, 0.3])
    key = jax.random.key(2)
    batched = jax.jit(jax.vmap(run, in_axes=(0, 0, None)))(lrs, clips, key)
    for i in range(2):
        one = jax.jit(ppo.make_train(SMALL.replace(learning_rate=float(lrs[i]), clip_eps=float(clips[i]))))(key)
        assert_tree_close(jax.tree.map(lambda x: x[i], batched.state.params), one.state.params, rtol=1e-5, atol=1e-6)
        assert_tree_close(jax.tree.map(lambda x: x[i], batched.metrics), one.metrics, rtol=1e-5, atol=1e-6)
    # different learning rates gave different runs
    assert not np.allclose(batched.metrics["policy_loss"][0], batched.metrics["policy_loss"][1])


@pytest.mark.parametrize("changes, field", [
    (dict(num_minibatches=3), "num_minibatches"),
    (dict(gamma=1.5), "gamma"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(total_timesteps=10), "total_timesteps"),
    (dict(env="CartPole-v9"), "env"),
    (dict(activation="sigmoid"), "activation"),
    (dict(clip_eps=-0.1), "clip_eps"),
    (dict(num_envs=0), "num_envs"),
    (dict(action_transform="squash"), "action_transform"),
])
def test_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        ppo.make(ppo.Config(**changes))


def test_overrides_coerce_types_and_reject_unknown_fields():
    cfg = apply_overrides(ppo.Config(), ["learning_rate=1e-3", "num_envs=8", "hidden_sizes=32,32",
                                         "anneal_lr=false", "target_kl=0.02"])
    assert cfg.learning_rate == 1e-3 and cfg.num_envs == 8 and cfg.hidden_sizes == (32, 32)
    assert cfg.anneal_lr is False and cfg.target_kl == 0.02
    with pytest.raises(ValueError, match="learning_rate"):
        apply_overrides(ppo.Config(), ["learning_rat=1e-3"])


def test_progress_is_reported_at_a_bounded_rate():
    from purerl.core.progress import MAX_REPORTS

    calls = []
    cfg = SMALL.replace(total_timesteps=4 * 32 * 253)        # 253 updates: blocks of 6, then a block of 1
    trainer = ppo.make(cfg, progress=calls.append, progress_metrics=("episode_return",))
    res = jax.block_until_ready(jax.jit(trainer.train)(jax.random.key(0)))
    jax.effects_barrier()
    updates = sorted(int(c["update"]) for c in calls)
    assert updates == list(range(6, 253, 6)) + [253] and len(calls) <= MAX_REPORTS + 1
    ret = np.asarray(res.metrics["episode_return"])
    for c in calls:                                          # each report carries that update's metric
        np.testing.assert_array_equal(np.asarray(c["episode_return"]), ret[int(c["update"]) - 1])
    plain = jax.jit(ppo.make_train(cfg))(jax.random.key(0))  # reporting does not change the run
    for k in plain.metrics:
        np.testing.assert_array_equal(np.asarray(plain.metrics[k]), np.asarray(res.metrics[k]), err_msg=k)


def test_continuous_ppo_improves_pendulum():
    cfg = ppo.Config(env="Pendulum-v1", total_timesteps=200_000, num_envs=8, num_steps=256, num_epochs=10,
                     num_minibatches=8, learning_rate=1e-3, gamma=0.95, ent_coef=0.0, normalize_obs=True,
                     normalize_reward=True)
    trainer = ppo.make(cfg)
    res = jax.jit(trainer.train)(jax.random.key(0))
    ret = np.asarray(res.metrics["episode_return"])
    first, last = ret[:5].mean(), ret[-5:].mean()
    assert first < -1000 and last > -400, (first, last)   # measured: about -1300 -> -150
    # evaluation uses the trained observation statistics and raw rewards
    ev = jax.jit(lambda s, k: trainer.evaluate(s, k, 8))(res.state, jax.random.key(1))
    assert float(ev["mean"]) > -500


def test_brax_env_runs_ppo_updates():
    """PPO through the Brax adapter: inverted_pendulum pays 1 per step alive, so every finished episode's return
    equals its length, and purerl's 10-step time limit ends every episode by then."""
    cfg = ppo.Config(env="brax/inverted_pendulum", env_backend="positional", episode_length=10,
                     total_timesteps=2 * 8 * 16, num_envs=8, num_steps=16, num_minibatches=2, num_epochs=1,
                     hidden_sizes=(32, 32))
    res = jax.jit(ppo.make_train(cfg))(jax.random.key(0))
    length, ret = np.asarray(res.metrics["episode_length"]), np.asarray(res.metrics["episode_return"])
    assert np.all(np.asarray(res.metrics["episodes"]) >= 8)          # every env ends an episode in 16 steps
    assert np.all((length > 0) & (length <= 10)), length
    np.testing.assert_allclose(ret, length, rtol=1e-6)
    for k, v in res.metrics.items():
        assert np.isfinite(np.asarray(v)).all(), k
    assert res.metrics["env_steps"][-1] == 256


@pytest.mark.slow
def test_brax_inverted_pendulum_learns():
    # measured: mean return 19 -> 1000 (the 1000-step limit) by about 2e5 steps; ~40 s on 2 CPU cores
    cfg = ppo.Config(env="brax/inverted_pendulum", env_backend="positional", total_timesteps=1_000_000,
                     num_envs=64, num_steps=64, num_minibatches=8, num_epochs=4, learning_rate=3e-4,
                     normalize_obs=True, normalize_reward=True, ent_coef=0.0)
    res = jax.jit(ppo.make_train(cfg))(jax.random.key(0))
    ret = np.asarray(res.metrics["episode_return"])
    assert np.nanmean(ret[-10:]) >= 900, ret[-10:]


def test_shared_torso_has_one_mlp_and_trains():
    trainer = ppo.make(SMALL.replace(shared_network=True))
    res = jax.jit(trainer.train)(jax.random.key(0))
    names = set(res.state.params["params"])
    assert "actor_torso" in names and "critic_torso" not in names
    assert np.isfinite(np.asarray(res.metrics["value_loss"])).all()
    separate = jax.jit(ppo.make(SMALL).init)(jax.random.key(0))
    assert "critic_torso" in separate.params["params"]


def test_chunked_run_equals_uninterrupted_train():
    from purerl.core.loop import run_chunk

    trainer = ppo.make(SMALL)
    key = jax.random.key(5)
    full = jax.jit(trainer.train)(key)
    state = jax.jit(trainer.init)(key)
    chunk = jax.jit(run_chunk, static_argnums=(0, 2))
    state, m1 = chunk(trainer.update, state, 2)
    state, m2 = chunk(trainer.update, state, trainer.num_log_points - 2)
    for k in full.metrics:
        np.testing.assert_array_equal(np.concatenate([m1[k], m2[k]]), np.asarray(full.metrics[k]), err_msg=k)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(full.state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_purerl_jit_is_jax_jit_with_purerls_compile_options():
    """purerl.jit compiles the same program with -O1 on a CPU (-O0 for programs that run once); the results
    agree with jax.jit's to float rounding over a short run, where rounding differences cannot grow."""
    import purerl
    from purerl import compiling

    assert jax.default_backend() == "cpu"
    assert compiling.compile_options() == {"xla_backend_optimization_level": 1}
    assert compiling.compile_options("once")["xla_backend_optimization_level"] == 0
    with pytest.raises(ValueError, match="kind"):
        compiling.compile_options("fast")
    train = ppo.make_train(SMALL)
    ours = purerl.jit(train)(jax.random.key(0))
    plain = jax.jit(train)(jax.random.key(0))
    assert_tree_close(ours.metrics, plain.metrics, rtol=1e-4, atol=1e-5)


def test_kl_early_stop_freezes_params_and_optimizer_from_the_first_violation():
    # With a target KL of ~0 every update applies its first minibatch step (the policy still equals the
    # rollout's: KL 0) and no other (each later minibatch sees a KL above it): Adam's step count is then the
    # number of updates, where without the stop it is updates x epochs x minibatches.
    import optax

    cfg = SMALL.replace(target_kl=1e-12, learning_rate=1e-2, anneal_lr=False)
    stopped = jax.jit(ppo.make_train(cfg))(jax.random.key(0))
    free = jax.jit(ppo.make_train(cfg.replace(target_kl=None)))(jax.random.key(0))
    updates = stopped.metrics["kl_stopped"].shape[0]
    def count(result):
        is_adam = lambda x: isinstance(x, optax.ScaleByAdamState)  # noqa: E731
        [adam] = [s for s in jax.tree.leaves(result.state.opt_state, is_leaf=is_adam) if is_adam(s)]
        return int(adam.count)

    assert count(stopped) == updates and float(stopped.metrics["kl_stopped"].min()) == 1.0
    assert count(free) == updates * cfg.num_epochs * cfg.num_minibatches
    assert float(free.metrics["kl_stopped"].max()) == 0.0
