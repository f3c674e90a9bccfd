"""DQN: its TD targets (one-step, Double, n-step with episode ends inside the n steps), loss, target network,
epsilon schedule, greedy actions, the sequence replay of the off-policy core, named errors, and learning
CartPole-v1 (slow)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import dqn
from purerl.core import offpolicy
from purerl.networks import DiscreteQNetwork, torso_args
from _helpers import assert_tree_close

TINY = dict(env="CartPole-v1", total_timesteps=600, learning_starts=200, num_log_points=2, eval_episodes=2,
            batch_size=16, hidden_sizes=(16,))


# --- targets and loss, by hand ---------------------------------------------------------------------------------

def test_n_step_return_cuts_at_termination_and_bootstraps_at_truncation():
    gamma = 0.5
    r = jnp.array([[1.0, 2.0, 4.0]] * 5)
    f, t = False, True
    terminated = jnp.array([[f, f, f], [f, t, f], [f, f, f], [t, f, f], [f, f, t]])
    done = jnp.array([[f, f, f], [f, t, f], [f, t, f], [t, f, f], [t, f, t]])
    ret, discount, last = dqn.n_step_return(r, terminated, done, gamma)
    # no end: 1 + 0.5 * 2 + 0.25 * 4, bootstrapped with gamma^3 from the third step's next_obs
    # terminated at step 1: 1 + 0.5 * 2, no bootstrap; truncated at step 1: the same return, bootstrapped with
    # gamma^2 from step 1's next_obs (the episode's final observation)
    # done at step 0: the later steps (the next episode, which terminates at step 2 in the last row) do not count
    np.testing.assert_allclose(ret, [3.0, 2.0, 2.0, 1.0, 1.0])
    np.testing.assert_allclose(discount, [0.125, 0.0, 0.25, 0.0, 0.5])
    np.testing.assert_array_equal(last, [2, 1, 1, 0, 0])


def test_one_step_return_is_the_cores_td_target():
    key = jax.random.key(0)
    r = jax.random.normal(key, (64,))
    term = jax.random.bernoulli(jax.random.fold_in(key, 1), 0.3, (64,))
    v = jax.random.normal(jax.random.fold_in(key, 2), (64,))
    ret, discount, last = dqn.n_step_return(r[:, None], term[:, None], term[:, None], 0.9)
    np.testing.assert_allclose(ret + discount * v, offpolicy.td_target(r, term, v, 0.9), rtol=1e-6)
    assert not np.asarray(last).any()


def test_bootstrap_value_plain_max_and_double():
    target_q = jnp.array([[1.0, 5.0, 3.0], [0.0, -1.0, 2.0]])
    online_q = jnp.array([[2.0, 0.0, 9.0], [7.0, 1.0, 0.0]])
    np.testing.assert_allclose(dqn.bootstrap_value(target_q), [5.0, 2.0])
    # Double DQN: the online network's argmax (2, 0), valued by the target network
    np.testing.assert_allclose(dqn.bootstrap_value(target_q, online_q), [3.0, 0.0])


def test_td_loss_huber_and_squared_by_hand():
    q, target = jnp.array([1.5, -1.0, 4.0]), jnp.array([1.0, 1.0, 1.0])   # errors 0.5, -2, 3
    assert float(dqn.loss(q, target, "huber")) == pytest.approx((0.125 + 1.5 + 2.5) / 3, rel=1e-6)
    assert float(dqn.loss(q, target, "squared")) == pytest.approx(0.5 * (0.25 + 4 + 9) / 3, rel=1e-6)
    # Huber's gradient is the TD error clipped to [-1, 1] (over the batch size); the target gets none
    g_q, g_t = jax.grad(dqn.loss, argnums=(0, 1))(q, target, "huber")
    np.testing.assert_allclose(g_q, [0.5 / 3, -1 / 3, 1 / 3], rtol=1e-6)
    np.testing.assert_array_equal(g_t, 0.0)


def _agent(**fields):
    cfg = dqn.Config(**{**TINY, **fields}).validate()
    agent = dqn.make_agent(cfg, offpolicy.make_env(cfg, 1))
    qnet = DiscreteQNetwork(2, dueling=cfg.dueling, **torso_args(cfg, (4,)))
    return cfg, agent, qnet


def _sequence(key, n):
    k1, k2 = jax.random.split(key)
    return {"obs": jax.random.normal(k1, (1, n, 4)), "action": jnp.ones((1, n), jnp.int32),
            "reward": jnp.array([[1.0, 2.0, 4.0][:n]]), "next_obs": jax.random.normal(k2, (1, n, 4)),
            "terminated": jnp.zeros((1, n), bool), "done": jnp.zeros((1, n), bool)}


@pytest.mark.parametrize("double", [False, True])
def test_agent_targets_bootstrap_from_the_right_observation(double):
    """The agent's TD target on 3-step sequences equals the hand-written one, with Q' from the target network
    (made to differ from the online one) at the next_obs of the step where the return stops."""
    cfg, agent, qnet = _agent(n_step=3, gamma=0.5, double=double, learning_starts=200)
    obs = jnp.zeros((1, 4))
    online = agent.init(jax.random.key(1), obs)
    target_params = agent.init(jax.random.key(2), obs).params
    a = online.replace(target=target_params)
    learn = jax.jit(agent.learn)
    cases = {"no end": ([False] * 3, [False] * 3), "terminated at 1": ([False, True, False], [False, True, False]),
             "truncated at 0": ([False] * 3, [True, False, False])}
    for name, (term, done) in cases.items():
        batch = {**_sequence(jax.random.key(3), 3), "terminated": jnp.array([term]), "done": jnp.array([done])}
        last = done.index(True) if True in done else 2
        ret = sum(0.5 ** k * [1.0, 2.0, 4.0][k] for k in range(last + 1))
        s = batch["next_obs"][:, last]
        q_target = np.asarray(qnet.apply(target_params, s))[0]
        pick = int(np.argmax(np.asarray(qnet.apply(online.params, s))[0])) if double else int(np.argmax(q_target))
        expected = ret + (0.0 if term[last] else 0.5 ** (last + 1) * q_target[pick])
        _, aux = learn(a, batch, jax.random.key(0))
        assert float(aux["target_q"]) == pytest.approx(expected, rel=1e-5, abs=1e-6), name
        q_taken = float(np.asarray(qnet.apply(online.params, batch["obs"][:, 0]))[0, 1])
        assert float(aux["q"]) == pytest.approx(q_taken, rel=1e-5)
        assert float(aux["td_loss"]) == pytest.approx(float(dqn.loss(jnp.array([q_taken]),
                                                                         jnp.array([expected]))), rel=1e-4)
    # the Double and plain targets differ here: the online and target networks disagree on the best action
    s = _sequence(jax.random.key(3), 3)["next_obs"][:, 2]
    assert np.argmax(qnet.apply(online.params, s)) != np.argmax(qnet.apply(target_params, s))


# --- the target network ----------------------------------------------------------------------------------------

def test_update_target_hard_copy_at_the_period_and_polyak_by_tau():
    target, online = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, 6.0])}
    for step, moved in ((1, False), (2, False), (3, True), (4, False), (6, True)):
        out = dqn.update_target(target, online, 1.0, jnp.asarray(step), 3)
        np.testing.assert_array_equal(out["w"], online["w"] if moved else target["w"])
    np.testing.assert_allclose(dqn.update_target(target, online, 0.25, jnp.asarray(7), 1)["w"], [1.5, 3.0])


@pytest.mark.parametrize("tau,period", [(1.0, 3), (0.25, 1)])
def test_agent_target_moves_only_when_it_should(tau, period):
    cfg, agent, _ = _agent(tau=tau, target_update_period=period)
    a = agent.init(jax.random.key(0), jnp.zeros((1, 4)))
    batch = {k: v[:, 0] for k, v in _sequence(jax.random.key(1), 1).items() if k != "done"}
    batch = jax.tree.map(lambda x: jnp.repeat(x, 8, axis=0), batch)
    learn = jax.jit(agent.learn)
    before = a.target
    for step in range(1, 7):
        a, _ = learn(a, batch, jax.random.key(step))
        if tau == 1.0:
            expected = a.params if step % period == 0 else before
        else:
            expected = jax.tree.map(lambda o, t: tau * o + (1 - tau) * t, a.params, before)
        assert_tree_close(a.target, expected, rtol=1e-6, atol=1e-7)
        if tau == 1.0 and step % period:
            assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.target), jax.tree.leaves(before)))
        before = a.target
    assert int(a.steps) == 6


# --- exploration and acting ------------------------------------------------------------------------------------

def test_epsilon_follows_its_linear_schedule():
    cfg = dqn.Config(total_timesteps=10_000, epsilon_anneal_fraction=0.5, epsilon_start=1.0, epsilon_finish=0.1)
    got = [float(dqn.epsilon_at(cfg, s)) for s in (0, 2_500, 5_000, 9_000)]
    np.testing.assert_allclose(got, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)
    assert float(dqn.epsilon_at(cfg.replace(epsilon_anneal_fraction=0.0), 0)) == pytest.approx(0.1)


def test_run_logs_its_epsilon_and_counts_env_steps_in_its_exploration_state():
    cfg = dqn.Config(**{**TINY, "num_envs": 2, "total_timesteps": 1_000, "num_log_points": 4,
                        "epsilon_anneal_fraction": 0.5})
    trainer = dqn.make(cfg)
    result = jax.jit(trainer.train)(jax.random.key(0))
    steps = np.asarray(result.metrics["env_steps"])
    assert int(result.state.explore_state) == int(steps[-1])      # warm-up included
    expected = [1.0 + (0.05 - 1.0) * min(s / 500, 1.0) for s in steps]
    np.testing.assert_allclose(result.metrics["epsilon"], expected, rtol=1e-6)


def test_greedy_actions_are_the_argmax_and_sampling_uses_the_runs_epsilon():
    cfg, _, qnet = _agent()
    trainer = dqn.make(dqn.Config(**TINY))
    state = jax.jit(trainer.init)(jax.random.key(0))
    obs = jax.random.normal(jax.random.key(1), (4_000, 4))
    greedy = np.asarray(jnp.argmax(qnet.apply(state.params, obs), axis=-1))
    assert 0 < greedy.mean() < 1                                      # both actions are somebody's argmax
    np.testing.assert_array_equal(trainer.policy(state)(obs), greedy)
    sample = jax.jit(lambda s, k: trainer.policy(s, deterministic=False)(obs, k))
    # the sampling policy acts with the epsilon where the run stands: the count starts after the warm-up
    assert int(state.explore_state) == 200
    at_start = np.asarray(sample(state.replace(noise=jnp.asarray(0, jnp.int32)), jax.random.key(2)))
    assert abs((at_start == greedy).mean() - 0.5) < 0.05              # epsilon 1: uniform over 2 actions
    late = state.replace(noise=jnp.asarray(10 ** 6, jnp.int32))      # past the decay: epsilon_finish = 0.05
    agree = (np.asarray(sample(late, jax.random.key(3))) == greedy).mean()
    assert abs(agree - (1 - 0.05 / 2)) < 0.01


# --- the sequence replay of the off-policy core ----------------------------------------------------------------

def test_sequence_replay_samples_consecutive_steps_of_one_env():
    buf = offpolicy.make_sequence_replay(capacity=8, batch_size=256, num_envs=2, sequence_length=2)
    state = buf.init({"x": jnp.zeros((), jnp.int32)})
    add = jax.jit(buf.add)
    for t in range(6):                                     # 4 steps per env fit: steps 2..5 remain
        state = add(state, {"x": jnp.array([[t], [100 + t]])})
    seen = np.asarray(jax.jit(buf.sample)(state, jax.random.key(0)).experience["x"])
    assert seen.shape == (256, 2) and (seen[:, 1] == seen[:, 0] + 1).all()   # one env, consecutive
    assert set(seen[:, 0].tolist()) == {2, 3, 4, 102, 103, 104}                # never across the write head


# --- configs ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields,match", [
    ({"epsilon_start": 1.5}, r"`epsilon_start` = 1.5 is out of range.*\[0.0, 1.0\]"),
    ({"epsilon_finish": -0.1}, r"`epsilon_finish`.*out of range"),
    ({"epsilon_anneal_fraction": 2.0}, r"`epsilon_anneal_fraction`.*out of range"),
    ({"target_update_period": 0}, r"`target_update_period` = 0.*positive integer"),
    ({"n_step": 0}, r"`n_step` = 0.*integer >= 1"),
    ({"n_step": 3, "num_envs": 4, "learning_starts": 4}, r"`learning_starts` = 4.*at least .* = 8"),
    ({"td_loss": "l1"}, r"`td_loss` = 'l1'.*huber"),
    ({"learning_rate": 0.0}, r"`learning_rate`"),
    ({"actor_lr": 1e-3}, r"`actor_lr`.*does not apply.*learning_rate"),
    ({"tau": 0.0}, r"`tau`"),
])
def test_bad_configs_are_refused_naming_the_field(fields, match):
    with pytest.raises(ValueError, match=match):
        dqn.Config(**fields).validate()


def test_continuous_env_is_refused_with_a_pointer():
    with pytest.raises(ValueError, match=r"`env` = 'Pendulum-v1' has continuous actions; purerl.dqn needs "
                                         r"discrete actions.*sac, td3 or ddpg"):
        dqn.make(dqn.Config(env="Pendulum-v1"))


# --- vmap over hyperparameters ---------------------------------------------------------------------------------

def test_hyperparameter_vmap_equals_single_runs():
    """Learning rate and epsilon_finish swept with jax.vmap, n-step Double DQN: each batch member equals its own
    run."""
    base = dqn.Config(**{**TINY, "n_step": 2, "double": True, "total_timesteps": 260,
                         "epsilon_anneal_fraction": 0.1})

    def run(lr, eps, key):
        return dqn.make_train(base.replace(learning_rate=lr, epsilon_finish=eps))(key)

    lrs, epss = jnp.array([1e-3, 1e-2]), jnp.array([0.0, 0.5])
    batched = jax.jit(jax.vmap(run, in_axes=(0, 0, None)))(lrs, epss, jax.random.key(0))
    single = jax.jit(run)       # one program for both single runs: their values are traced scalars too
    for i in range(2):
        one = single(lrs[i], epss[i], jax.random.key(0))
        assert_tree_close(jax.tree.map(lambda x: x[i], batched.metrics), one.metrics)
    np.testing.assert_allclose(batched.metrics["epsilon"][:, -1], [0.0, 0.5])
    assert not np.allclose(batched.metrics["q"][0], batched.metrics["q"][1])


def test_the_readme_paragraph_states_the_defaults_presets_and_metrics():
    from pathlib import Path

    from purerl import presets

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    text = readme[readme.index("`dqn` (Mnih et al., 2015)"):]
    text = " ".join(text[:text.index("\n\n")].split())
    cfg = dqn.Config()
    assert ("Defaults are PureJaxRL's DQN settings for CartPole-v1: 10 envs, 5e5 steps, replay 1e4, batch 128, Adam "
            "2.5e-4, a hard copy every 50 gradient steps, (120, 84) ReLU") in text
    assert (cfg.env, cfg.num_envs, cfg.total_timesteps, cfg.buffer_size, cfg.batch_size) == ("CartPole-v1", 10,
                                                                                            500_000, 10_000, 128)
    assert (cfg.learning_rate, cfg.target_update_period, cfg.tau, cfg.hidden_sizes, cfg.activation) == (
        2.5e-4, 50, 1.0, (120, 84), "relu")
    assert presets.load("dqn-cartpole").config == {"env": "CartPole-v1", "total_timesteps": 500_000,
                                                   "num_log_points": 10}
    assert presets.load("dqn-minatar").config["torso"] == "cnn"
    assert "Metrics `td_loss`, `q`, `target_q`, `epsilon`." in text
    trainer = dqn.make(dqn.Config(**TINY))
    _, metrics = jax.eval_shape(trainer.update, jax.eval_shape(trainer.init, jax.random.key(0)))
    assert {"td_loss", "q", "target_q", "epsilon"} <= set(metrics)


# --- learning (slow) -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_defaults_solve_cartpole():
    """The Config defaults (the dqn-cartpole preset): 4 seeds as one vmapped program, greedy evaluation over 16
    episodes at the end; see the docstring of purerl.dqn for the budget."""
    cfg = dqn.Config(num_log_points=10, eval_episodes=16)
    result = jax.jit(jax.vmap(dqn.make_train(cfg)))(jax.random.split(jax.random.key(0), 4))
    final = np.asarray(result.metrics["eval_return"])[:, -1]
    assert final.mean() >= 475, final
