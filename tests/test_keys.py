"""Both kinds of PRNG key at every public entry point, for every algorithm.

The matrix: every registered algorithm x {typed ``jax.random.key``, legacy uint32 ``jax.random.PRNGKey``} x {alone, vmapped
over 2 seeds} x {train, init + update, evaluate, policy}. ``jax.random.PRNGKey(s)`` and ``jax.random.key(s)``
hold the same threefry key, so every result must be equal bit for bit between the two kinds. Per algorithm and
key kind the four entry points, alone and vmapped, are one jitted program (two compilations per algorithm).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purerl
from purerl import a2c, a3c, algorithms, ddpg, dqn, envs, pqn, ppo, reinforce, sac, sac_discrete, td3, trpo
from purerl.keys import as_key

ON = dict(env="CartPole-v1", num_envs=2, hidden_sizes=(8,))
# no evaluation inside the off-policy updates (evaluate is called on its own): a smaller program to compile
OFF = dict(env="Pendulum-v1", num_envs=2, total_timesteps=240, learning_starts=40, num_log_points=2, eval_episodes=0,
           batch_size=16, hidden_sizes=(8,))
CONFIGS = {
    "ppo": (ppo, dict(ON, num_steps=16, total_timesteps=64, num_minibatches=2, num_epochs=1)),
    "a2c": (a2c, dict(ON, num_steps=5, total_timesteps=20)),
    "a3c": (a3c, dict(ON, num_steps=5, total_timesteps=40)),
    "reinforce": (reinforce, dict(ON, num_steps=500, total_timesteps=2000)),
    "trpo": (trpo, dict(ON, num_steps=16, total_timesteps=64)),
    "pqn": (pqn, dict(ON, num_steps=16, total_timesteps=64, num_minibatches=2, num_epochs=1)),
    "ddpg": (ddpg, OFF),
    "td3": (td3, OFF),
    "sac": (sac, OFF),
    "sac_discrete": (sac_discrete, dict(OFF, env="CartPole-v1")),
    "dqn": (dqn, dict(OFF, env="CartPole-v1", n_step=2)),
}
_TRAINERS = {}


def trainer_of(name):
    if name not in _TRAINERS:
        module, fields = CONFIGS[name]
        _TRAINERS[name] = module.make(module.Config(**fields))
    return _TRAINERS[name]


def everything(trainer, key, keys):
    """The four entry points alone (``key``) and vmapped over ``keys``, in one program."""
    obs = jnp.linspace(-0.5, 0.5, 3 * trainer.env.obs_dim).reshape(3, trainer.env.obs_dim)

    def one(k):
        result = trainer.train(k)
        state = trainer.init(k)
        state, metrics = trainer.update(state)
        evaluation = trainer.evaluate(state, k, num_episodes=2)
        return {"train": result.metrics, "final_key": jax.random.key_data(result.state.key), "update": metrics,
                "evaluate": evaluation["returns"], "mode": trainer.policy(state)(obs),
                "sample": trainer.policy(state, deterministic=False)(obs, k),
                "env_reset": trainer.env.reset(k)[1]}

    return {"alone": one(key), "vmapped": jax.vmap(one)(keys)}


# compiled at XLA:CPU's -O0 (purerl.compiling's "once" options): the runs are tiny, compiling dominates
_COMPILED = purerl.jit(everything, kind="once", static_argnums=0)


def assert_same(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# PPO and SAC (one of each family: every Trainer is built by core.loop.build_trainer, where keys are normalised)
# in the default suite, the other algorithms with -m slow
FAST = {"ppo", "sac"}


def test_the_matrix_covers_every_registered_algorithm():
    assert sorted(CONFIGS) == sorted(algorithms.NAMES)


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in FAST else pytest.mark.slow)
                                  for n in sorted(CONFIGS)])
def test_legacy_and_typed_keys_give_the_same_results_everywhere(name):
    trainer = trainer_of(name)
    typed = _COMPILED(trainer, jax.random.key(0), jax.random.split(jax.random.key(1), 2))
    legacy = _COMPILED(trainer, jax.random.PRNGKey(0), jax.random.split(jax.random.PRNGKey(1), 2))
    assert_same(typed, legacy)
    # the results are real ones: the batch axis is there and the seeds differ
    vm = typed["vmapped"]
    assert vm["train"]["env_steps"].shape[0] == 2 and vm["evaluate"].shape == (2, 2)
    assert not np.array_equal(vm["final_key"][0], vm["final_key"][1])
    assert not np.array_equal(vm["env_reset"][0], vm["env_reset"][1])
    assert np.isfinite(np.asarray(typed["alone"]["evaluate"])).all()


def test_a_legacy_key_is_the_typed_key_of_the_same_seed():
    for seed in (0, 7, 2**31 - 1):
        assert jax.random.key_data(as_key(jax.random.PRNGKey(seed))).tolist() == \
            jax.random.key_data(jax.random.key(seed)).tolist()
    batch = jax.vmap(lambda k: jax.random.key_data(as_key(k)))(jax.random.split(jax.random.PRNGKey(3), 4))
    np.testing.assert_array_equal(batch, jax.random.split(jax.random.PRNGKey(3), 4))


BOTH_FORMS = r"a typed key \(jax\.random\.key\(seed\)\) or a legacy uint32 key \(jax\.random\.PRNGKey\(seed\)\)"
# each wrong argument and the words that say what it was (and, for a seed, what to pass instead)
BAD_KEYS = [(0, r"got int 0; for seed 0, pass jax\.random\.key\(0\)"), (1.5, "got float 1.5"),
            (np.zeros(2, np.float32), r"got an array of dtype float32 and shape \(2,\)"),
            (np.zeros(3, np.uint32), r"shape \(\) typed or \(2,\) uint32 per key; got shape \(3,\)"),
            (None, "got NoneType None")]


@pytest.mark.parametrize("bad,what", BAD_KEYS)
def test_anything_else_is_a_type_error_naming_the_argument_and_both_forms(bad, what):
    trainer = trainer_of("ppo")
    for call in (lambda: trainer.train(bad), lambda: trainer.init(bad),
                 lambda: trainer.evaluate(jax.eval_shape(trainer.init, jax.random.key(0)), bad),
                 lambda: envs.make("CartPole-v1", 2).reset(bad)):
        with pytest.raises(TypeError, match=rf"^`key` must be (one key: )?{BOTH_FORMS}.*{what}"):
            call()


def test_a_batch_of_keys_without_vmap_says_to_vmap():
    trainer = trainer_of("ppo")
    for keys in (jax.random.split(jax.random.key(0), 2), jax.random.split(jax.random.PRNGKey(0), 2)):
        with pytest.raises(TypeError, match=r"`key` must be one key.*jax\.vmap"):
            trainer.train(keys)


def test_a_stochastic_policy_needs_a_key_and_a_deterministic_one_does_not():
    trainer = trainer_of("ppo")
    state = trainer.init(jax.random.PRNGKey(0))
    obs = jnp.zeros((2, 4))
    assert trainer.policy(state)(obs).shape == (2,)
    with pytest.raises(TypeError, match="`key` is needed by a stochastic policy"):
        trainer.policy(state, deterministic=False)(obs)
    with pytest.raises(TypeError, match="`key` must be"):
        trainer.policy(state, deterministic=False)(obs, 3)


def test_envs_take_both_kinds_and_give_the_same_episodes():
    env = envs.make("CartPole-v1", 3)
    action = jnp.array([0, 1, 1])

    def run(key):
        state, obs = env.reset(key)
        state, ts = env.step(key, state, action)
        noise = env.step_noise(key, 2)
        _, ts2 = env.step(jax.tree.map(lambda x: x[0], noise), state, action)
        return obs, ts.obs, ts2.obs

    assert_same(jax.jit(run)(jax.random.key(5)), jax.jit(run)(jax.random.PRNGKey(5)))
    assert_same(jax.vmap(run)(jax.random.split(jax.random.key(5), 2)),
                jax.vmap(run)(jax.random.split(jax.random.PRNGKey(5), 2)))


def test_brax_envs_take_both_kinds():
    env = envs.make("brax/inverted_pendulum", 2)
    a = jax.jit(env.reset)(jax.random.key(2))[1]
    b = jax.jit(env.reset)(jax.random.PRNGKey(2))[1]
    np.testing.assert_array_equal(a, b)
