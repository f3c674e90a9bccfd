"""Recurrent (GRU) policies for PPO and A2C: the update replays the rollout's memories, and memory solves a
task that a feedforward policy cannot."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import a2c, ppo
from purerl.core import onpolicy
from purerl.core.evaluation import RecurrentAct

SEEDS = 4


def _rollout(cfg, steps=24):
    trainer = ppo.make(cfg)
    network = onpolicy.make_network(trainer.config, trainer.env)
    state = trainer.init(jax.random.key(0))
    out = onpolicy.collect(trainer.env, network, state.params, state.env_state, state.obs, jax.random.key(1), steps,
                           memory=state.memory)
    return network, state, out


def test_replaying_a_rollout_gives_the_memories_it_acted_with():
    # MemoryChain episodes last a few steps, so a 24-step rollout crosses several episode starts in each env:
    # the update's replay must zero the memory exactly where the rollout did, or the log-probs differ
    cfg = ppo.Config(env="MemoryChain-bsuite", num_envs=3, num_steps=24, num_minibatches=3, hidden_sizes=(16, 16),
                     recurrent=True)
    network, state, ro = _rollout(cfg)
    memory, traj = ro.memory, ro.traj
    assert traj.done.any(axis=0).all()
    batch = {"obs": traj.obs, "memory0": state.memory, "first": onpolicy.episode_starts(traj.done)}
    pi, _ = onpolicy.forward(network, state.params, batch)
    np.testing.assert_allclose(np.asarray(pi.log_prob(traj.action)), np.asarray(traj.extras["log_prob"]),
                               rtol=1e-5, atol=1e-5)
    # without the resets the replay differs: the memory matters to the policy
    no_reset = {**batch, "first": jnp.zeros_like(batch["first"])}
    assert not np.allclose(np.asarray(onpolicy.forward(network, state.params, no_reset)[0].log_prob(traj.action)),
                           np.asarray(traj.extras["log_prob"]), atol=1e-5)
    # the memory carried out of the rollout is zero exactly in the envs whose last step ended an episode
    ended = np.asarray(traj.done[-1])
    assert (np.abs(np.asarray(memory)).max(axis=-1) == 0).tolist() == ended.tolist()


@pytest.fixture(scope="module")
def memory_chain():
    """Final evaluation returns (64 episodes per seed) of PPO with an MLP and with a GRU on MemoryChain-bsuite,
    4 seeds vmapped each: the context is shown on the first step only and must be recalled at the last one to
    be rewarded +1 (a wrong recall is -1), so a policy without memory averages 0."""
    out = {}
    for recurrent in (False, True):
        cfg = ppo.Config(env="MemoryChain-bsuite", num_envs=16, num_steps=32, total_timesteps=25_000,
                         num_minibatches=4, learning_rate=3e-3, hidden_sizes=(32, 32), recurrent=recurrent)
        trainer = ppo.make(cfg)
        result = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.key(0), SEEDS))
        evaluate = jax.jit(jax.vmap(lambda s, k: trainer.evaluate(s, k, 64)["mean"]))
        out[recurrent] = np.asarray(evaluate(result.state, jax.random.split(jax.random.key(1), SEEDS)))
    return out


def test_memory_task_needs_the_recurrent_policy(memory_chain):
    assert memory_chain[True].mean() >= 0.9, memory_chain       # measured: 1.0 on all 4 seeds
    assert memory_chain[False].mean() <= 0.4, memory_chain      # measured: -0.09..0.12 (chance is 0)


def test_recurrent_a2c_takes_finite_updates_and_evaluates_with_memory():
    cfg = a2c.Config(env="CartPole-v1", num_envs=4, num_steps=8, total_timesteps=4 * 8 * 5, hidden_sizes=(16, 16),
                     recurrent=True)
    trainer = a2c.make(cfg)
    result = jax.jit(trainer.train)(jax.random.key(0))
    for name in ("policy_loss", "value_loss", "grad_norm"):
        assert np.isfinite(np.asarray(result.metrics[name])).all(), name
    assert result.state.memory.shape == (4, 16)
    act = trainer.policy(result.state)
    assert isinstance(act, RecurrentAct)
    out = jax.jit(lambda s, k: trainer.evaluate(s, k, 1))(result.state, jax.random.key(2))
    assert np.asarray(out["finished"]).all()
    # the policy's memory evolves from step to step (evaluation carries it, and resets it at episode ends)
    obs = jax.random.normal(jax.random.key(3), (64, 4))
    m0 = act.initial((64,))
    _, m1 = act.step(m0, obs, None)
    _, m2 = act.step(m1, obs, None)
    assert not np.allclose(np.asarray(m1), np.asarray(m0)) and not np.allclose(np.asarray(m2), np.asarray(m1))
    # rendering records the evaluated episode, memory included: the same return
    from purerl.run import render

    episode = render.record_episode(trainer, result.state, jax.random.key(2))
    assert float(np.sum(episode.rewards)) == pytest.approx(float(out["mean"]))


@pytest.mark.parametrize("algo", ["reinforce", "trpo", "a3c"])
def test_recurrent_is_refused_where_the_update_does_not_replay_memory(algo):
    import importlib

    mod = importlib.import_module(f"purerl.{algo}")
    with pytest.raises(ValueError, match=r"`recurrent`.*use ppo or a2c"):
        mod.Config(recurrent=True).validate()


def test_recurrent_ppo_minibatches_must_split_the_envs():
    with pytest.raises(ValueError, match=r"`num_minibatches`.*whole env sequences.*num_envs = 6"):
        ppo.Config(num_envs=6, num_steps=8, num_minibatches=4, recurrent=True).validate()
