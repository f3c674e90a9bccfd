"""Every public entry point checks its arguments like Config does, before anything is compiled: one bad value per
argument family (counts, switches, keys, states of another config, configs of another algorithm, observation
shapes), and the off-policy policy acts in the env's own bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import a2c, ddpg, envs, ppo, sac, td3
from purerl.core.evaluation import evaluate_policy
from purerl.envs import EpisodeStatistics

PPO = ppo.Config(env="CartPole-v1", num_envs=2, num_steps=16, total_timesteps=64, num_minibatches=2, num_epochs=1,
                 hidden_sizes=(8,))
SAC = sac.Config(env="Pendulum-v1", num_envs=2, total_timesteps=240, learning_starts=40, num_log_points=2,
                 eval_episodes=0, batch_size=16, hidden_sizes=(8,))


@pytest.fixture(scope="module")
def ppo_trainer():
    return ppo.make(PPO)


@pytest.mark.parametrize("make,config,expected", [
    (ppo.make, sac.Config(), "ppo.Config"), (sac.make, ppo.Config(), "sac.Config"),
    (td3.make, ddpg.Config(), "td3.Config"), (a2c.make_train, {"env": "CartPole-v1"}, "a2c.Config"),
    (ppo.make, None, "ppo.Config")])
def test_a_config_of_another_algorithm_is_a_type_error_naming_config(make, config, expected):
    with pytest.raises(TypeError, match=rf"`config` must be a purerl\.{expected}"):
        make(config)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"num_episodes": 0}, ValueError, "`num_episodes` must be at least 1, got 0"),
    ({"num_episodes": -3}, ValueError, "`num_episodes` must be at least 1, got -3"),
    ({"num_episodes": 2.5}, TypeError, r"`num_episodes` must be a whole number \(an int\) of at least 1, got 2\.5 \(float\)"),
    ({"deterministic": "yes"}, TypeError, "`deterministic` must be True or False")])
def test_evaluate_checks_its_counts_and_switches(ppo_trainer, kwargs, error, match):
    state = jax.eval_shape(ppo_trainer.init, jax.random.key(0))
    with pytest.raises(error, match=match):
        ppo_trainer.evaluate(state, jax.random.key(0), **kwargs)


def test_a_state_of_another_config_is_refused_by_name(ppo_trainer):
    other = ppo.make(PPO.replace(num_envs=4, num_minibatches=4))
    state = jax.eval_shape(other.init, jax.random.key(0))
    for call in (lambda: ppo_trainer.update(state), lambda: ppo_trainer.evaluate(state, jax.random.key(0)),
                 lambda: ppo_trainer.policy(state)):
        with pytest.raises(ValueError, match=r"`state` passed to \w+ does not come from this trainer's config: "
                                             r"state\.env_state.*has shape \(4,"):
            call()
    sac_state = jax.eval_shape(sac.make(SAC).init, jax.random.key(0))
    with pytest.raises(ValueError, match="structure is not the train state.*OffPolicyState"):
        ppo_trainer.update(sac_state)


def test_a_batch_of_states_says_to_vmap(ppo_trainer):
    states = jax.eval_shape(jax.vmap(ppo_trainer.init), jax.random.split(jax.random.key(0), 3))
    with pytest.raises(ValueError, match="is a batch of 3 train states.*jax.vmap"):
        ppo_trainer.evaluate(states, jax.random.key(0))


def test_policy_checks_the_observation_shape(ppo_trainer):
    act = ppo_trainer.policy(jax.eval_shape(ppo_trainer.init, jax.random.key(0)))
    with pytest.raises(ValueError, match=r"`obs` must be observations of this env, shape \[\.\.\., 4\], got shape "
                                         r"\(2, 3\)"):
        act(jnp.zeros((2, 3)))


@pytest.mark.parametrize("call,error,match", [
    (lambda: envs.make("CartPole-v1", 0), ValueError, "`num_envs` must be at least 1, got 0"),
    (lambda: envs.make("CartPole-v1", 2.0), TypeError, "`num_envs` must be a whole number.*write 2"),
    (lambda: envs.make("brax/ant", 2, episode_length=0), ValueError, "`episode_length` must be at least 1, got 0"),
    (lambda: envs.make("CartPole-v1", 2, normalize_obs="false"), TypeError, "`normalize_obs` must be True or False"),
    (lambda: envs.make("CartPole-v1", 2).step_noise(jax.random.key(0), 0), ValueError, "`num_steps` must be at least 1, got 0"),
    (lambda: ppo.make(PPO).eval_env(0), ValueError, "`num_envs` must be at least 1, got 0")])
def test_env_entry_points_check_counts_and_switches(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_replay_buffer_must_hold_one_vector_step():
    with pytest.raises(ValueError, match=r"`buffer_size` = 8 .*one vector step adds \(num_envs = 16"):
        sac.make(SAC.replace(num_envs=16, batch_size=4, buffer_size=8, total_timesteps=2000, learning_starts=32))


def test_off_policy_policy_acts_in_the_env_bounds_and_reproduces_evaluate():
    """Pendulum's torque bounds are +-2: ``policy`` gives the agent's [-1, 1] action rescaled to them, and
    stepping the bare env with it gives exactly the return ``evaluate`` reports."""
    trainer = sac.make(SAC)
    key = jax.random.key(3)

    def run(k):
        state = trainer.init(k)
        # larger weights than at init, so that the actions span their range (a fresh actor's are near 0)
        params = jax.tree.map(lambda p: 20.0 * p, state.agent.params)
        state = state.replace(agent=state.agent.replace(params=params))
        obs = jax.random.normal(k, (64, 3)) * 3.0
        scaled, agent = trainer.policy(state)(obs), trainer.agent_policy(state)(obs)
        bare = EpisodeStatistics(envs.make_base("Pendulum-v1", 4))  # no action transform: the env's own units
        mine = evaluate_policy(bare, trainer.policy(state), k)["returns"]
        return scaled, agent, mine, trainer.evaluate(state, k, num_episodes=4)["returns"]

    scaled, agent, mine, theirs = jax.jit(run)(key)
    np.testing.assert_allclose(scaled, 2.0 * agent, rtol=0, atol=1e-6)
    assert np.abs(agent).max() <= 1.0 and np.abs(scaled).max() > 1.0   # the agent's units are not the env's
    np.testing.assert_array_equal(mine, theirs)
