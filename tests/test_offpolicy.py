"""DDPG, TD3 and SAC: the shared off-policy pieces, each algorithm's rule, and learning on Pendulum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from scipy import integrate

from purerl import ddpg, sac, sac_discrete, td3
from purerl.core import offpolicy
from purerl.networks import DeterministicActor, QEnsemble, tanh_gaussian
from _helpers import assert_tree_close

TINY = dict(env="Pendulum-v1", total_timesteps=620, learning_starts=200, num_log_points=3, eval_episodes=2,
            batch_size=32, hidden_sizes=(16, 16))
OBS_DIM, ACT_DIM = 3, 1


def _batch(key, n=32, terminated=None):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    term = jax.random.bernoulli(k4, 0.3, (n,)) if terminated is None else jnp.full((n,), terminated)
    return {"obs": jax.random.normal(k1, (n, OBS_DIM)), "action": jax.random.uniform(k2, (n, ACT_DIM), minval=-1, maxval=1),
            "reward": jax.random.normal(k3, (n,)), "next_obs": jax.random.normal(k1, (n, OBS_DIM)) + 0.1,
            "terminated": term}


def _changed(a, b):
    return any(not np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# --- shared machinery ---

def test_polyak_update_matches_formula():
    target = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(-1.0)}
    online = {"w": jnp.array([3.0, 6.0]), "b": jnp.array(1.0)}
    out = offpolicy.polyak(target, online, 0.25)
    np.testing.assert_allclose(out["w"], [1.5, 3.0])
    np.testing.assert_allclose(out["b"], -0.5)


def test_replay_samples_only_written_slots():
    buf = offpolicy.make_replay(capacity=8, batch_size=8)
    state = buf.init({"x": jnp.zeros((), jnp.int32)})
    add = jax.jit(buf.add)
    sample = jax.jit(lambda s, k: jax.vmap(lambda kk: buf.sample(s, kk).experience["x"])(jax.random.split(k, 500)))
    state = add(state, {"x": jnp.arange(1, 5)})            # 4 of 8 slots written: items 1..4
    seen = np.asarray(sample(state, jax.random.key(0))).ravel()
    assert set(seen.tolist()) == {1, 2, 3, 4}              # never the zeros of unwritten slots
    for start in (5, 9):                                   # 12 items through 8 slots: items 5..12 remain
        state = add(state, {"x": jnp.arange(start, start + 4)})
    seen = np.asarray(sample(state, jax.random.key(1))).ravel()
    assert set(seen.tolist()) == set(range(5, 13))


def test_sampling_after_an_add_from_the_old_storage_gives_the_updated_buffers_batch():
    # The loop samples from the buffer as it was before the step's add, with the added items patched in (so
    # that XLA can write the buffer in place): every batch must equal flashbax's sample of the updated buffer,
    # item for item, while the buffer fills, when it is full, and when an add wraps past its end (3 items
    # into 8 slots).
    buf = offpolicy.make_replay(capacity=8, batch_size=8)
    state = buf.init({"x": jnp.zeros((), jnp.int32), "y": jnp.zeros((2,), jnp.float32)})

    @jax.jit
    def step(state, items, key):
        after = buf.add(state, items)
        keys = jax.random.split(key, 64)
        expected = jax.vmap(lambda k: buf.sample(after, k).experience)(keys)
        got = jax.vmap(lambda k: offpolicy.sample_after_add(buf, state, after, items, k))(keys)
        return after, expected, got

    key = jax.random.key(0)
    for start in range(1, 40, 3):                           # 13 adds of 3: the write position wraps 4 times
        items = {"x": jnp.arange(start, start + 3), "y": jnp.stack([jnp.arange(start, start + 3)] * 2, -1) / 2.0}
        key, k = jax.random.split(key)
        state, expected, got = step(state, items, k)
        jax.tree.map(np.testing.assert_array_equal, got, expected)
        assert set(np.asarray(got["x"]).ravel().tolist()) & set(range(start, start + 3))   # the new items are drawn


@pytest.mark.parametrize("algo, gradient_steps", [("sac", 1), ("sac", 3), ("td3", 2), ("dqn", 1)])
def test_the_off_policy_loop_writes_its_replay_buffer_in_place(algo, gradient_steps):
    # The compiled training program holds one copy of the buffer, updated in place at each step: no loop
    # iteration copies it. (When the sample read the updated buffer, XLA's CPU backend fused the add's write
    # into the sample's gather and copied the whole buffer twice per step: 6.7x slower for DQN on MinAtar.)
    from purerl import dqn

    module = {"sac": sac, "td3": td3, "dqn": dqn}[algo]
    fields = {**TINY, "buffer_size": 617, "gradient_steps": gradient_steps}   # a shape no other array has
    if algo == "dqn":
        fields = {**fields, "env": "CartPole-v1", "batch_size": 32}
    cfg = module.Config(**fields)
    hlo = jax.jit(module.make_train(cfg)).lower(jax.random.key(0)).compile().as_text()
    buffer_copies = [line for line in hlo.splitlines() if "[1,617," in line.split("=", 1)[-1][:40] and " copy(" in line]
    assert buffer_copies, "the buffer's shape was not found: the check would pass vacuously"
    assert all("broadcast" in line.split(" copy(", 1)[1][:40] for line in buffer_copies), buffer_copies


def test_capacity_is_bounded_by_default_and_by_the_run():
    assert offpolicy.OffPolicyConfig().buffer_size == 1_000_000
    assert sac.Config(**TINY).capacity == 620
    assert sac.Config(total_timesteps=5_000_000).capacity == 1_000_000


def test_ou_noise_is_reset_by_the_loop_and_gaussian_noise_is_stateless():
    a = jnp.zeros((2, 1))
    out, noise = offpolicy.explore_noise("gaussian", a, jnp.ones((2, 1)), jax.random.key(0), 0.1)
    np.testing.assert_array_equal(noise, jnp.ones((2, 1)))
    # the training loop zeroes an env's OU state where its episode ended: in one-step episodes (a probe env)
    # every step ends one, so the state after any update is all zeros; Pendulum's 200-step episodes keep it
    def explore_state(env):
        cfg = ddpg.Config(**{**TINY, "env": env, "exploration_noise": "ou", "ou_dt": 0.5})
        return np.asarray(jax.jit(ddpg.make_train(cfg))(jax.random.key(0)).state.explore_state)

    np.testing.assert_array_equal(explore_state("probe/ConstantValue-Continuous"), 0.0)
    assert np.abs(explore_state("Pendulum-v1")).min() > 0


# --- algorithm rules ---

def test_td3_actor_updated_exactly_once_per_d_critic_updates():
    cfg = td3.Config(**TINY, policy_delay=3).validate()
    agent = ddpg.make_agent(cfg, offpolicy.make_env(cfg, 1))
    a = agent.init(jax.random.key(0), jnp.zeros((1, OBS_DIM)))
    learn = jax.jit(agent.learn)
    actor_moves, critic_moves, target_moves = [], [], []
    for i in range(9):
        new, aux = learn(a, _batch(jax.random.key(i)), jax.random.key(100 + i))
        actor_moves.append(_changed(a.params["actor"], new.params["actor"]))
        critic_moves.append(_changed(a.params["critic"], new.params["critic"]))
        target_moves.append(_changed(a.target, new.target))
        assert np.isnan(aux["actor_loss"]) != actor_moves[-1]
        a = new
    assert actor_moves == [False, False, True] * 3
    assert target_moves == [False, False, True] * 3
    assert all(critic_moves)
    assert int(a.steps) == 9 and int(a.actor_steps) == 3


def test_td3_smoothing_noise_is_clipped_to_c():
    c = 0.3
    base = jnp.zeros((10_000, 2))
    out = ddpg.smoothed_target_action(base, jax.random.key(0), 10.0, c)   # huge std: most draws clipped
    assert float(jnp.abs(out).max()) <= c + 1e-7
    assert float(jnp.abs(out).max()) >= c - 1e-6
    near_edge = ddpg.smoothed_target_action(jnp.full((1000, 2), 0.9), jax.random.key(1), 10.0, c)
    assert float(near_edge.max()) <= 1.0 and float(near_edge.min()) >= 0.9 - c - 1e-6
    same = ddpg.smoothed_target_action(base + 0.5, jax.random.key(2), 0.0, c)
    np.testing.assert_array_equal(same, base + 0.5)       # std 0: DDPG's plain target action


def test_critic_target_bootstraps_only_without_termination():
    cfg = ddpg.Config(**TINY, gamma=0.9, reward_scale=2.0).validate()
    agent = ddpg.make_agent(cfg, offpolicy.make_env(cfg, 1))
    a = agent.init(jax.random.key(0), jnp.zeros((1, OBS_DIM)))
    for terminated in (True, False):
        batch = _batch(jax.random.key(1), terminated=terminated)
        _, aux = agent.learn(a, batch, jax.random.key(2))
        actor = DeterministicActor(ACT_DIM, cfg.hidden_sizes, cfg.activation)
        critic = QEnsemble(1, cfg.hidden_sizes, cfg.activation)
        next_q = critic.apply(a.target["critic"], batch["next_obs"], actor.apply(a.target["actor"], batch["next_obs"]))[0]
        expected = 2.0 * batch["reward"] + (0.0 if terminated else 0.9 * next_q)
        np.testing.assert_allclose(float(aux["target_q"]), float(jnp.mean(expected)), rtol=1e-5, atol=1e-6)


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    mean, log_std = jnp.array([0.3, -1.2]), jnp.array([-0.5, 0.2])
    dist = tanh_gaussian(mean, log_std)
    u = jnp.array([[0.1, -2.0], [1.5, 0.7], [-3.0, 4.0]])
    a = jnp.tanh(u)
    std = np.exp(np.asarray(log_std, np.float64))
    un = np.asarray(u, np.float64)
    log_normal = np.sum(-0.5 * ((un - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), -1)
    h = 1e-5
    dtanh = (np.tanh(un + h) - np.tanh(un - h)) / (2 * h)     # numerical Jacobian of the (diagonal) squash
    reference = log_normal - np.sum(np.log(dtanh), -1)
    np.testing.assert_allclose(np.asarray(dist.log_prob(a)), reference, rtol=2e-4, atol=2e-4)
    sample, logp = dist.sample_and_log_prob(seed=jax.random.key(0), sample_shape=(5,))
    assert bool((jnp.abs(sample) < 1).all())
    np.testing.assert_allclose(logp, dist.log_prob(sample), rtol=1e-3, atol=1e-3)
    # and the 1-D density integrates to one over (-1, 1)
    one = tanh_gaussian(jnp.array([0.4]), jnp.array([-0.3]))
    total, _ = integrate.quad(lambda x: float(jnp.exp(one.log_prob(jnp.array([x])))), -1 + 1e-9, 1 - 1e-9, limit=200)
    assert abs(total - 1.0) < 1e-3


@pytest.mark.parametrize("target_entropy,direction", [(10.0, 1.0), (-10.0, -1.0)])
def test_sac_alpha_moves_toward_the_target_entropy(target_entropy, direction):
    cfg = sac.Config(**TINY, target_entropy=target_entropy).validate()
    agent = sac.make_agent(cfg, offpolicy.make_env(cfg, 1))
    a = agent.init(jax.random.key(0), jnp.zeros((1, OBS_DIM)))
    learn = jax.jit(agent.learn)
    for i in range(3):
        a, aux = learn(a, _batch(jax.random.key(i)), jax.random.key(10 + i))
    # entropy of a 1-D tanh-Gaussian is far below +10 and far above -10
    assert direction * float(a.params["log_alpha"]) > 0
    fixed_cfg = sac.Config(**TINY, autotune_alpha=False, alpha=0.2).validate()
    fixed = sac.make_agent(fixed_cfg, offpolicy.make_env(fixed_cfg, 1))
    b = fixed.init(jax.random.key(0), jnp.zeros((1, OBS_DIM)))
    b2, aux = fixed.learn(b, _batch(jax.random.key(0)), jax.random.key(1))
    np.testing.assert_allclose(float(jnp.exp(b2.params["log_alpha"])), 0.2, rtol=1e-6)


# --- gradient routing: which loss reaches which parameters ---

def _total_abs(tree):
    return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(tree)))


def test_sac_each_loss_reaches_only_its_own_parameters():
    """SAC takes one gradient of critic + actor + temperature loss over all parameters (`learn`); each loss must
    reach only its own group. Differentiated here one by one, as `learn` computes them (the losses it reports,
    with its own stop-gradients): the critic loss reaches the critics only (the next actions come from the
    stop-gradient'ed actor, alpha is exp(stop_gradient(log_alpha))), the actor loss the actor only (it reads
    stop-gradient'ed critics, and alpha held fixed), the temperature loss log_alpha only (the entropy held
    fixed); exact zeros elsewhere, a gradient in every leaf (every critic) of its own group. And `learn`'s step
    is Adam's first step on their sum, -lr * g / (|g| + eps) per parameter, group by group. (alpha starts away
    from 1: at log_alpha = 0 the temperature loss has no gradient but its own.)"""
    cfg = sac.Config(**TINY, alpha=0.5).validate()
    agent = sac.make_agent(cfg, offpolicy.make_env(cfg, 1))
    a = agent.init(jax.random.key(0), jnp.zeros((1, OBS_DIM)))
    batch, key = _batch(jax.random.key(1)), jax.random.key(2)
    names = {"critic_loss": "critic", "actor_loss": "actor", "alpha_loss": "log_alpha"}

    def losses(params):
        aux = agent.learn(a.replace(params=params), batch, key)[1]
        return {name: aux[name] for name in names}

    grads = jax.jit(jax.jacrev(losses))(a.params)          # {loss: {"actor": ..., "critic": ..., "log_alpha": ...}}
    for loss, own in names.items():
        for group in ("actor", "critic", "log_alpha"):
            if group == own:
                # every leaf moves; the critics' leaves are [num_critics, ...]: every critic moves
                for leaf in jax.tree.leaves(grads[loss][group]):
                    rows = jnp.reshape(jnp.abs(leaf), (cfg.num_critics if group == "critic" else 1, -1))
                    assert bool((jnp.sum(rows, axis=-1) > 0).all()), (loss, group)
            else:
                assert _total_abs(grads[loss][group]) == 0.0, (loss, group)

    new, _ = jax.jit(agent.learn)(a, batch, key)
    total = jax.tree.map(lambda *g: sum(g), *grads.values())
    for group, lr in (("actor", cfg.actor_lr), ("critic", cfg.critic_lr), ("log_alpha", cfg.alpha_lr)):
        adam = jax.tree.map(lambda p, g: p - lr * g / (jnp.abs(g) + 1e-8), a.params[group], total[group])
        assert_tree_close(new.params[group], adam, rtol=0, atol=2e-6)


@pytest.mark.parametrize("algo", [ddpg, td3])
def test_ddpg_and_td3_actor_loss_does_not_move_the_critics(algo):
    """The online actor enters DDPG's and TD3's update only through the actor loss (the critic target reads the
    target actor): two states that differ only in the online actor take different actor steps and bit-identical
    critic steps, so no gradient of the actor loss reaches the critics."""
    cfg = algo.Config(**TINY, policy_delay=1).validate()   # the actor steps in this very update
    agent = ddpg.make_agent(cfg, offpolicy.make_env(cfg, 1))
    a = agent.init(jax.random.key(0), jnp.zeros((1, OBS_DIM)))
    b = a.replace(params={**a.params, "actor": agent.init(jax.random.key(9), jnp.zeros((1, OBS_DIM))).params["actor"]})
    learn = jax.jit(agent.learn)
    batch, key = _batch(jax.random.key(1)), jax.random.key(2)
    (new_a, aux_a), (new_b, aux_b) = learn(a, batch, key), learn(b, batch, key)
    assert float(aux_a["actor_loss"]) != float(aux_b["actor_loss"])
    assert _changed(a.params["actor"], new_a.params["actor"]) and _changed(b.params["actor"], new_b.params["actor"])
    assert _changed(a.params["critic"], new_a.params["critic"])                   # the critics did step
    for x, y in zip(jax.tree.leaves(new_a.params["critic"]), jax.tree.leaves(new_b.params["critic"]), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert float(aux_a["critic_loss"]) == float(aux_b["critic_loss"])


# --- whole runs ---

# vmapped vs single runs: a vmapped matmul may sum in another order, and training amplifies such ~1e-7
# differences step by step, so the runs are compared over 30 gradient steps (3 log points of 10), where they
# stay near float rounding; a wrong batching differs at order one from the first step.
SHORT = dict(TINY, total_timesteps=200 + 30)


@pytest.mark.parametrize("algo", [sac, td3])
def test_seed_vmap_equals_single_runs(algo):
    train = algo.make_train(algo.Config(**SHORT))
    keys = jax.random.split(jax.random.key(3), 2)
    batched = jax.jit(jax.vmap(train))(keys)
    single = jax.jit(train)
    for i in range(2):
        one = single(keys[i])
        assert_tree_close(jax.tree.map(lambda x: x[i], batched.metrics), one.metrics)
        assert_tree_close(jax.tree.map(lambda x: x[i], batched.state.params), one.state.params)
    assert set(batched.metrics) >= {"eval_return", "episode_return", "critic_loss", "actor_loss", "q"}
    assert batched.metrics["eval_return"].shape == (2, 3)


def test_hyperparameter_vmap_equals_single_runs():
    def run(tau, lr, key):
        return sac.make_train(sac.Config(**SHORT).replace(tau=tau, critic_lr=lr))(key)

    taus, lrs = jnp.array([0.005, 0.05]), jnp.array([1e-3, 3e-4])
    batched = jax.jit(jax.vmap(run, in_axes=(0, 0, None)))(taus, lrs, jax.random.key(0))
    for tau, lr, i in zip(taus.tolist(), lrs.tolist(), range(2)):
        one = jax.jit(lambda k, tau=tau, lr=lr: run(tau, lr, k))(jax.random.key(0))
        assert_tree_close(jax.tree.map(lambda x: x[i], batched.metrics), one.metrics)
    assert not np.allclose(batched.metrics["q"][0], batched.metrics["q"][1])


def test_sac_small_network_solves_pendulum_quickly():
    cfg = sac.Config(env="Pendulum-v1", total_timesteps=10_000, hidden_sizes=(64, 64), num_log_points=10)
    result = jax.jit(sac.make_train(cfg))(jax.random.key(0))
    ev = np.asarray(result.metrics["eval_return"])
    assert ev[0] < -700 and np.median(ev[-3:]) >= -250, ev
    assert np.isfinite(np.asarray(result.metrics["alpha"])[1:]).all()
    assert float(result.metrics["alpha"][-1]) < 0.5      # started at 1, tuned down toward -|A| entropy


def test_brax_env_runs_offpolicy_updates():
    """SAC through the Brax adapter: inverted_pendulum pays 1 per step alive, so a finished episode's return
    equals its length, and the 50-step time limit bounds the evaluation's return."""
    cfg = sac.Config(env="brax/inverted_pendulum", env_backend="positional", episode_length=50, num_envs=4,
                     total_timesteps=4 * 60, learning_starts=40, batch_size=32, hidden_sizes=(16, 16),
                     num_log_points=2, eval_episodes=2)
    result = jax.jit(sac.make_train(cfg))(jax.random.key(0))
    for k in ("critic_loss", "actor_loss", "q", "alpha", "entropy", "eval_return"):
        assert np.isfinite(np.asarray(result.metrics[k])).all(), k
    np.testing.assert_allclose(result.metrics["episode_return"], result.metrics["episode_length"], rtol=1e-6)
    assert np.all((np.asarray(result.metrics["eval_return"]) > 0) & (np.asarray(result.metrics["eval_return"]) <= 50))
    assert int(result.metrics["env_steps"][-1]) == 240
    assert int(result.metrics["gradient_steps"][-1]) == 60 - 10


def test_discrete_sac_sums_over_actions():
    """Christodoulou (2019): the soft value and the actor's loss are exact sums over the actions."""
    probs = jnp.array([[0.25, 0.75]])
    q = jnp.array([[1.0, 2.0]])
    v = 0.25 * (1.0 - 0.5 * np.log(0.25)) + 0.75 * (2.0 - 0.5 * np.log(0.75))
    assert float(sac_discrete.soft_value(probs, jnp.log(probs), q, 0.5)[0]) == pytest.approx(v, rel=1e-6)
    assert float(sac_discrete.actor_loss(probs, jnp.log(probs), q, 0.5)) == pytest.approx(-v, rel=1e-6)
    # the actor's gradient moves probability toward the action of higher Q
    logits = jnp.zeros((1, 2))
    g = jax.grad(lambda z: sac_discrete.actor_loss(jax.nn.softmax(z), jax.nn.log_softmax(z), q, 0.1))(logits)
    assert float(g[0, 1]) < 0 < float(g[0, 0])


def test_discrete_agent_owns_its_actions_on_the_shared_loop():
    """The discrete agent's replay holds int32 actions, its warm-up draws every action, it has no exploration
    state, and the loop's greedy evaluation and sampled exploration give valid action indices."""
    cfg = sac_discrete.Config(total_timesteps=400, learning_starts=200, num_log_points=2, eval_episodes=2,
                              batch_size=16, hidden_sizes=(16, 16))
    trainer = sac_discrete.make(cfg)
    state = jax.jit(trainer.init)(jax.random.key(0))
    assert state.explore_state is None
    actions = np.asarray(state.buffer.experience["action"]).reshape(-1)[:200]   # the warm-up's slots
    assert actions.dtype == np.int32 and set(actions.tolist()) == {0, 1}
    obs = jnp.zeros((5, 4))
    assert set(np.asarray(trainer.agent_policy(state, deterministic=False)(obs, jax.random.key(1))).tolist()) <= {0, 1}
    result = jax.jit(trainer.train)(jax.random.key(0))
    assert np.isfinite(np.asarray(result.metrics["critic_loss"])).all()


# --- observation normalisation (normalize_obs): raw observations in replay, the agent sees normalised ones ---

@struct.dataclass
class _Seen:
    params: jax.Array
    obs: jax.Array          # the last learning batch's obs and next_obs, as the agent received them
    next_obs: jax.Array


def _spy_agent() -> offpolicy.Agent:
    """An agent that acts with zeros and keeps what it is given: the observations it acted on (as its
    exploration state), the last batch it learned from (in its state) and, as its deterministic action, the
    first entry of the observation it was evaluated on."""
    return offpolicy.Agent(
        init=lambda key, obs: _Seen(jnp.zeros(()), jnp.zeros((32, OBS_DIM)), jnp.zeros((32, OBS_DIM))),
        explore=lambda a, obs, key, es: (jnp.zeros((obs.shape[0], ACT_DIM)), {}, obs),
        learn=lambda a, batch, key: (a.replace(obs=batch["obs"], next_obs=batch["next_obs"]), {}),
        act=lambda a, obs: obs[:, :ACT_DIM],
        explore_init=lambda n: jnp.zeros((n, OBS_DIM)), explore_reset=lambda x, done: x)


def _normalise(x, rows):
    """x normalised with numpy's mean and variance of ``rows`` (and the statistics' prior of weight 1e-4)."""
    n = len(rows)
    mean = rows.sum(0) / (n + 1e-4)
    var = (1e-4 + ((rows - rows.mean(0)) ** 2).sum(0) + rows.mean(0) ** 2 * 1e-4 * n / (n + 1e-4)) / (n + 1e-4)
    return (x - mean) / np.sqrt(var + 1e-8), mean, var


def test_normalize_obs_keeps_raw_replay_and_shows_the_agent_normalised_observations():
    """Brax's SAC scheme, in the loop every off-policy algorithm shares: the statistics are numpy's mean and
    variance of every observation added to replay (the warm-up's too); replay holds the raw observations; the
    agent acts on the newest one normalised with the statistics before it, learns from batches normalised with
    the statistics after it, and is evaluated (policy, evaluate, export) with the state's statistics."""
    cfg = sac.Config(**TINY, normalize_obs=True).validate()
    trainer = offpolicy.make_trainer(cfg, _spy_agent())
    state = jax.jit(trainer.train)(jax.random.key(0)).state
    raw = np.asarray(state.buffer.experience["obs"], np.float64)[0]     # 620 slots in order, each written once
    assert raw.shape == (620, OBS_DIM) and int(state.buffer.current_index) == 0 and bool(state.buffer.is_full)
    np.testing.assert_allclose(raw[:, 0] ** 2 + raw[:, 1] ** 2, 1.0, rtol=1e-5)  # raw Pendulum (cos, sin, .)
    rms = state.obs_rms
    _, mean, var = _normalise(raw, raw)
    np.testing.assert_allclose(rms.mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rms.var, var, rtol=1e-4, atol=1e-5)
    assert float(rms.count) == pytest.approx(620 + 1e-4)
    # acting: the last step acted on the last observation added, normalised without it
    acted, _, _ = _normalise(raw[-1], raw[:-1])
    np.testing.assert_allclose(np.asarray(state.explore_state)[0], acted, rtol=1e-4, atol=1e-4)
    # learning: the last batch, un-normalised with the final statistics, is rows of the raw replay
    std = np.sqrt(np.asarray(rms.var, np.float64) + 1e-8)
    for seen, stored in ((state.agent.obs, raw), (state.agent.next_obs, state.buffer.experience["next_obs"][0])):
        back = np.asarray(seen, np.float64) * std + np.asarray(rms.mean, np.float64)
        dist = np.abs(back[:, None, :] - np.asarray(stored, np.float64)[None]).max(-1).min(-1)
        assert dist.max() < 1e-4, dist.max()
        assert np.abs(np.asarray(seen)[:, 0] ** 2 + np.asarray(seen)[:, 1] ** 2 - 1).max() > 0.1  # not raw
    # evaluation: the policy of raw observations normalises them with the state's statistics
    obs = jnp.asarray([[1.0, 0.0, 0.5], [0.0, -1.0, -3.0]])
    want = (np.asarray(obs) - np.asarray(rms.mean)) / np.asarray(rms.std)
    np.testing.assert_allclose(trainer.agent_policy(state)(obs), want[:, :1], rtol=1e-5)
    np.testing.assert_allclose(trainer.agent_policy(state, deterministic=False)(obs, jax.random.key(1)),
                               np.zeros((2, 1)))


def test_normalize_obs_is_off_by_default_and_leaves_no_statistics():
    assert offpolicy.OffPolicyConfig().normalize_obs is False
    state = jax.eval_shape(sac.make(sac.Config(**TINY)).init, jax.random.key(0))
    assert state.obs_rms is None
    state = jax.eval_shape(sac.make(sac.Config(**TINY, normalize_obs=True)).init, jax.random.key(0))
    assert state.obs_rms.mean.shape == (OBS_DIM,)


def test_configs_written_with_num_evals_load_as_num_log_points(tmp_path):
    """An off-policy run's log points are `num_log_points`, as on-policy runs' and the Trainer's; configs written
    with the old name `num_evals` (run directories, --config files, presets, --set) still load, with a
    FutureWarning naming both."""
    import json

    from purerl import dqn, presets
    from purerl.config import apply_overrides, config_from_dict

    with pytest.warns(FutureWarning, match=r"run/config.json: config field `num_evals` was renamed `num_log_points`"):
        assert config_from_dict(sac.Config, {"num_evals": 4}, source="run/config.json").num_log_points == 4
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"algo": "dqn", "config": {"num_evals": 7}}))
    with pytest.warns(FutureWarning, match="`num_log_points`"):
        assert presets.load_file(old).apply(dqn.Config).num_log_points == 7
    with pytest.warns(FutureWarning, match="--set: config field `num_evals`"):
        assert apply_overrides(td3.Config(), ["num_evals=3"]).num_log_points == 3


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="`env`.*discrete"):
        sac.make(sac.Config(env="CartPole-v1"))
    with pytest.raises(ValueError, match="`env`.*continuous actions.*needs discrete"):
        sac_discrete.make(sac_discrete.Config(env="Pendulum-v1"))
    with pytest.raises(ValueError, match="`learning_starts`"):
        td3.make(td3.Config(total_timesteps=1_000, learning_starts=1_000))
    with pytest.raises(ValueError, match="`exploration_noise`"):
        ddpg.make(ddpg.Config(exploration_noise="pink"))
    with pytest.raises(ValueError, match="`tau`"):
        sac.make(sac.Config(tau=1.5))
    with pytest.raises(ValueError, match="`policy_delay`"):
        td3.make(td3.Config(policy_delay=0))
    with pytest.raises(ValueError, match="`env`.*unknown"):
        sac.make(sac.Config(env="Pendulum-v9"))


# --- learning with the Config defaults (slow: ~1-2 minutes each on 2 CPU cores) ---

@pytest.mark.slow
def test_discrete_sac_defaults_solve_cartpole():
    """Discrete SAC with its Config defaults (40k env steps, fixed alpha 0.01): 4 seeds as one vmapped program,
    greedy evaluation over 16 episodes; measured mean 480 (500, 500, 500, 420) on jax 0.9.2."""
    cfg = sac_discrete.Config(num_log_points=10, eval_episodes=16)
    result = jax.jit(jax.vmap(sac_discrete.make_train(cfg)))(jax.random.split(jax.random.key(0), 4))
    final = np.asarray(result.metrics["eval_return"])[:, -1]
    assert final.mean() >= 450, final


@pytest.mark.slow
@pytest.mark.parametrize("algo,steps,threshold", [(sac, 20_000, -250.0), (td3, 30_000, -300.0),
                                                   (ddpg, 30_000, -300.0)])
def test_defaults_solve_pendulum(algo, steps, threshold):
    result = jax.jit(algo.make_train(algo.Config(env="Pendulum-v1", total_timesteps=steps)))(jax.random.key(0))
    ev = np.asarray(result.metrics["eval_return"])
    assert ev[-3:].mean() >= threshold, ev
