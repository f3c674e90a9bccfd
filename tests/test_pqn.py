"""PQN (purerl.pqn): its exploration schedule, its greedy policy, its errors, vmap over seeds and numeric
hyperparameters, and learning CartPole-v1. The Q(lambda) returns are tested in tests/test_returns.py, the loss in
tests/test_losses.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import pqn
from purerl.core.exploration import epsilon_greedy, greedy_noise, linear_schedule
from _helpers import assert_tree_close

TINY = pqn.Config(env="CartPole-v1", num_envs=4, num_steps=8, total_timesteps=4 * 8 * 10, num_minibatches=2,
                  num_epochs=1, hidden_sizes=(16,), epsilon_start=1.0, epsilon_finish=0.1,
                  epsilon_anneal_fraction=0.5)


@pytest.fixture(scope="module")
def tiny():
    trainer = pqn.make(TINY)
    return trainer, jax.jit(trainer.train)(jax.random.key(0))


# --- exploration ----------------------------------------------------------------------------------------------

def test_epsilon_falls_linearly_over_its_fraction_of_the_updates_then_holds(tiny):
    # 10 updates, anneal over 0.5 * 10 = 5: 1 - 0.9 u / 5 for u = 0..5, then 0.1
    expected = [1.0, 0.82, 0.64, 0.46, 0.28, 0.1, 0.1, 0.1, 0.1, 0.1]
    np.testing.assert_allclose([float(pqn.epsilon(TINY, u)) for u in range(10)], expected, atol=1e-6)
    _, result = tiny
    np.testing.assert_allclose(np.asarray(result.metrics["epsilon"]), expected, atol=1e-6)  # the rollouts' epsilon
    # no anneal: epsilon_finish from the first update; a traced fraction (swept) gives the same numbers
    assert float(pqn.epsilon(TINY.replace(epsilon_anneal_fraction=0.0), 0)) == pytest.approx(0.1)
    swept = jax.jit(lambda f: linear_schedule(1.0, 0.1, 2, f * 10))(jnp.float32(0.5))
    assert float(swept) == pytest.approx(0.64)


def test_epsilon_greedy_takes_the_argmax_or_with_probability_epsilon_a_random_action():
    q = jnp.array([[0.0, 2.0, 1.0], [5.0, -1.0, 5.0]])                      # argmax: 1, then 0 (the first tie)
    noise = greedy_noise(jax.random.key(0), (4096, 2), 3)
    greedy = jax.vmap(lambda n: epsilon_greedy(q, 0.0, n))(noise)
    assert (np.asarray(greedy) == [1, 0]).all()
    random = jax.vmap(lambda n: epsilon_greedy(q, 1.0, n))(noise)
    np.testing.assert_array_equal(np.asarray(random), np.asarray(noise["action"]))
    assert set(np.unique(np.asarray(noise["action"]))) == {0, 1, 2}
    some = np.asarray(jax.vmap(lambda n: epsilon_greedy(q, 0.3, n))(noise))
    explored = np.asarray(noise["uniform"]) < 0.3
    assert 0.27 < explored.mean() < 0.33
    np.testing.assert_array_equal(some, np.where(explored, np.asarray(noise["action"]), [1, 0]))


def test_the_trained_policy_is_the_argmax_of_q_and_its_sample_explores(tiny):
    trainer, result = tiny
    network = pqn.make_network(TINY, trainer.env)
    obs = jax.random.normal(jax.random.key(1), (64, 4))
    q = network.apply(result.state.params, obs)
    greedy = np.asarray(trainer.policy(result.state)(obs))
    np.testing.assert_array_equal(greedy, np.argmax(np.asarray(q), axis=-1))
    assert len(set(greedy.tolist())) == 2                          # not a constant: the argmax depends on obs
    # deterministic=False: epsilon-greedy at the state's epsilon (0.1 after the anneal)
    sampled = np.asarray(jax.vmap(lambda k: trainer.policy(result.state, deterministic=False)(obs, k))(
        jax.random.split(jax.random.key(2), 200)))
    differs = (sampled != greedy).mean()
    assert 0.03 < differs < 0.08, differs                          # about epsilon / 2 of 2 actions


# --- errors ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, field", [
    (dict(epsilon_start=1.5), "epsilon_start"),
    (dict(epsilon_finish=-0.1), "epsilon_finish"),
    (dict(epsilon_anneal_fraction=2.0), "epsilon_anneal_fraction"),
    (dict(q_lambda=1.2), "q_lambda"),
    (dict(num_minibatches=3), "num_minibatches"),
    (dict(num_epochs=0), "num_epochs"),
    (dict(td_loss="l1"), "td_loss"),
    (dict(optimizer="sgd"), "optimizer"),
    (dict(shared_network=True), "shared_network"),
    (dict(state_dependent_std=True), "state_dependent_std"),
    (dict(action_transform="rescale"), "action_transform"),
    (dict(recurrent=True), "recurrent"),
    (dict(torso="cnn"), "torso"),
    (dict(max_grad_norm=0.0), "max_grad_norm"),
])
def test_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        pqn.make(pqn.Config(env="CartPole-v1", **changes))


def test_continuous_actions_are_refused_with_a_pointer_to_ppo_and_sac():
    with pytest.raises(ValueError, match=r"`env` = 'Pendulum-v1' has continuous actions.*ppo or sac"):
        pqn.make(pqn.Config(env="Pendulum-v1"))


# --- vmap -----------------------------------------------------------------------------------------------------

def test_seed_and_hyperparameter_vmap_equal_single_runs():
    cfg = TINY.replace(total_timesteps=4 * 8 * 4)

    def run(lr, eps, lam, key):
        return pqn.make_train(cfg.replace(learning_rate=lr, epsilon_finish=eps, q_lambda=lam))(key)

    values = (jnp.array([1e-3, 3e-3]), jnp.array([0.0, 0.5]), jnp.array([0.0, 0.9]))
    keys = jax.random.split(jax.random.key(4), 2)
    batched = jax.jit(jax.vmap(run))(*values, keys)
    for i in range(2):
        lr, eps, lam = (float(v[i]) for v in values)
        one = jax.jit(lambda k, lr=lr, eps=eps, lam=lam: run(lr, eps, lam, k))(keys[i])
        assert_tree_close(jax.tree.map(lambda x, i=i: x[i], batched.metrics), one.metrics, rtol=1e-5, atol=1e-6)
        assert_tree_close(jax.tree.map(lambda x, i=i: x[i], batched.state.params), one.state.params, rtol=1e-5,
                          atol=1e-6)
    np.testing.assert_allclose(np.asarray(batched.metrics["epsilon"][:, -1]), [0.0, 0.5], atol=1e-6)
    assert not np.allclose(batched.metrics["lambda_return"][0], batched.metrics["lambda_return"][1])


# --- learning -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_cartpole_preset_solves_cartpole_over_4_vmapped_seeds():
    """4 seeds as one program, the mean of their greedy evaluation returns (10 episodes each) at the
    ``pqn-cartpole`` preset's budget."""
    from purerl import presets

    cfg = presets.load("pqn-cartpole").apply(pqn.Config)
    trainer = pqn.make(cfg)

    def run(key):
        result = trainer.train(key)
        return trainer.evaluate(result.state, jax.random.fold_in(key, 1), 10)["mean"]

    greedy = np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 4)))
    assert greedy.mean() >= 475, greedy


def test_the_readme_bullet_states_the_defaults_presets_and_metrics(tiny):
    from pathlib import Path

    from purerl import presets

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    bullet = readme[readme.index("- `pqn`:"):]
    bullet = " ".join(bullet[:bullet.index("\n\n")].split())
    cfg = pqn.Config()
    assert "Defaults: 32 envs x 64 steps, 4 epochs x 16 minibatches, (128, 128) ReLU, Adam 5e-4 decayed" in bullet
    assert (cfg.num_envs, cfg.num_steps, cfg.num_epochs, cfg.num_minibatches) == (32, 64, 4, 16)
    assert cfg.hidden_sizes == (128, 128) and cfg.activation == "relu" and cfg.layer_norm
    assert cfg.optimizer == "adam" and cfg.learning_rate == 5e-4 and cfg.anneal_lr
    assert "`pqn-cartpole` preset (5e5 steps)" in bullet
    assert presets.load("pqn-cartpole").config == {"env": "CartPole-v1", "total_timesteps": 500_000}
    assert presets.load("pqn-minatar").config["torso"] == "cnn"
    assert "Metrics `td_loss`, `q`, `lambda_return`, `epsilon`." in bullet
    _, result = tiny
    assert {"td_loss", "q", "lambda_return", "epsilon"} <= set(result.metrics)
