"""REINFORCE, A2C, A3C and TRPO: estimators against references, the A3C emulation, TRPO's trust region,
learning CartPole with the defaults, and vmap over seeds and hyperparameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from purerl import a2c, a3c, reinforce, trpo
from purerl.core import onpolicy, optim
from purerl.core.trajectory import EpisodeTally, reward_to_go, standardize
from purerl.networks import ActorCritic
from _helpers import assert_tree_close

ALGOS = {"reinforce": reinforce, "a2c": a2c, "a3c": a3c, "trpo": trpo}
TINY = {
    "reinforce": dict(num_envs=2, num_steps=500, total_timesteps=2 * 500 * 3, hidden_sizes=(16, 16)),
    "a2c": dict(num_envs=2, num_steps=5, total_timesteps=2 * 5 * 20, hidden_sizes=(16, 16)),
    "a3c": dict(num_envs=2, num_steps=5, num_workers=3, total_timesteps=3 * 2 * 5 * 8, hidden_sizes=(16, 16)),
    "trpo": dict(num_envs=2, num_steps=32, total_timesteps=2 * 32 * 4, vf_minibatches=2, hidden_sizes=(16, 16)),
}


# --- estimators ---

def test_reward_to_go_matches_numpy_reference():
    rng = np.random.default_rng(0)
    T, N, gamma = 9, 3, 0.9
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    done = np.zeros((T, N), bool)
    done[[2, 5], 0] = True          # env 0: three episodes, the last unfinished
    done[[0, 1, 8], 1] = True       # env 1: ends at the last step, every step complete
    # env 2: no episode end at all
    g, complete = reward_to_go(jnp.asarray(rewards), jnp.asarray(done), gamma)
    ref_g, ref_c = np.zeros((T, N)), np.zeros((T, N), bool)
    for n in range(N):
        for t in range(T):
            total, k = 0.0, t
            while k < T:
                total += gamma ** (k - t) * rewards[k, n]
                if done[k, n]:
                    break
                k += 1
            ref_g[t, n], ref_c[t, n] = total, k < T
    np.testing.assert_allclose(np.asarray(g), ref_g, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(complete), ref_c)
    assert ref_c[:6, 0].all() and not ref_c[6:, 0].any() and ref_c[:, 1].all() and not ref_c[:, 2].any()


def test_standardize_uses_only_the_weighted_entries():
    x = jax.random.normal(jax.random.key(0), (40,)) * 3.0 + 2.0
    w = (jnp.arange(40) % 3 == 0).astype(jnp.float32)
    ref = np.asarray(x)
    np.testing.assert_allclose(np.asarray(standardize(x)), (ref - ref.mean()) / (ref.std() + 1e-8), rtol=1e-5,
                               atol=1e-6)
    kept = ref[np.asarray(w) == 1]
    out = np.asarray(standardize(x, w))
    np.testing.assert_allclose(out[np.asarray(w) == 1], (kept - kept.mean()) / (kept.std() + 1e-8), rtol=1e-5,
                               atol=1e-6)
    # entries of weight 0 do not move the statistics
    moved = standardize(x.at[1].set(1e6), w)
    np.testing.assert_allclose(np.asarray(moved)[np.asarray(w) == 1], out[np.asarray(w) == 1], rtol=1e-6)


def test_annealed_learning_rate_is_set_in_the_optimiser_state():
    params = {"w": jnp.ones(3)}
    opt_state = optim.make_optimizer("adam", 0.1).init(params)
    annealed, lr = optim.annealed(opt_state, 0.1, 3, 4, anneal=True)
    assert float(lr) == pytest.approx(0.025) and float(optim.learning_rate(annealed)) == pytest.approx(0.025)
    same, lr = optim.annealed(opt_state, 0.1, 3, 4, anneal=False)
    assert same is opt_state and lr == 0.1


def test_end_update_carries_episode_means_and_counts_steps():
    cfg = a2c.Config(env="CartPole-v1", **TINY["a2c"])
    state = a2c.make(cfg).init(jax.random.key(0))
    none = EpisodeTally.zero()
    two = EpisodeTally(jnp.float32(30.0), jnp.float32(50.0), jnp.float32(2.0))
    s1, m1 = onpolicy.end_update(state, two, 10, params=state.params, opt_state=state.opt_state,
                                 env_state=state.env_state, obs=state.obs, key=state.key)
    assert (float(m1["episode_return"]), float(m1["episode_length"]), float(m1["episodes"])) == (15.0, 25.0, 2.0)
    assert int(s1.update_step) == 1 and float(m1["env_steps"]) == 10.0 and float(s1.last_return) == 15.0
    s2, m2 = onpolicy.end_update(s1, none, 10, params=s1.params, opt_state=s1.opt_state, env_state=s1.env_state,
                                 obs=s1.obs, key=s1.key, memory=jnp.ones(3))
    assert float(m2["episode_return"]) == 15.0 and float(m2["episodes"]) == 0.0   # kept when none ended
    assert int(s2.update_step) == 2 and float(m2["env_steps"]) == 20.0 and s2.memory.shape == (3,)


def test_baseline_keeps_the_gradient_unbiased_and_lowers_its_variance():
    """Many REINFORCE gradient estimates of one fixed policy on CartPole, with b = 0 and with a
    state-dependent baseline b(s) (a linear fit of the return on the state from a separate pilot batch)."""
    cfg = reinforce.Config(env="CartPole-v1", num_envs=4, num_steps=500, hidden_sizes=(8,)).validate()
    env = onpolicy.make_env(cfg, cfg.num_envs, train=True)
    network = onpolicy.make_network(cfg, env)
    params = network.init(jax.random.key(0), jnp.zeros((1, env.obs_dim)))

    def rollout(key):
        k_reset, k_roll = jax.random.split(key)
        env_state, obs = env.reset(k_reset)
        return onpolicy.collect(env, network, params, env_state, obs, k_roll, cfg.num_steps).traj

    def features(obs):
        return jnp.concatenate([obs, jnp.ones(obs.shape[:-1] + (1,))], -1)

    pilot = jax.vmap(rollout)(jax.random.split(jax.random.key(1), 64))
    g, c = jax.vmap(reward_to_go, in_axes=(0, 0, None))(pilot.reward, pilot.done, cfg.gamma)
    X, y = np.asarray(features(pilot.obs)[c]), np.asarray(g[c])
    w = jnp.asarray(np.linalg.lstsq(X, y, rcond=None)[0], jnp.float32)

    def grad_estimate(key, use_baseline):
        traj = rollout(key)
        b = features(traj.obs) @ w if use_baseline else jnp.zeros(())
        batch = reinforce.score_function_batch(traj, cfg.gamma, b)
        grads, _ = jax.grad(onpolicy.policy_gradient_loss, argnums=1, has_aux=True)(network, params, batch, 0.0, 0.0)
        return ravel_pytree(ActorCritic.split_params(grads)[0])[0]

    keys = jax.random.split(jax.random.key(2), 2000)
    plain = np.asarray(jax.jit(jax.vmap(lambda k: grad_estimate(k, False)))(keys), np.float64)
    based = np.asarray(jax.jit(jax.vmap(lambda k: grad_estimate(k, True)))(keys), np.float64)
    se = np.sqrt(plain.var(0) / len(keys) + based.var(0) / len(keys))
    z = np.abs(plain.mean(0) - based.mean(0)) / se
    assert z.max() < 4.5, z.max()                                 # same expectation
    assert based.var(0).sum() < 0.7 * plain.var(0).sum()          # clearly lower variance (about half here)
    assert np.linalg.norm(plain.mean(0)) > 3 * np.sqrt(plain.var(0).sum() / len(keys))  # a real signal


def test_trpo_fisher_vector_product_equals_explicit_fisher():
    net = ActorCritic(action_dim=3, discrete=True, hidden_sizes=(4,))
    obs = jax.random.normal(jax.random.key(0), (5, 2))
    params = net.init(jax.random.key(1), obs)
    policy, critic = ActorCritic.split_params(params)
    theta0, unravel = ravel_pytree(policy)

    def logits(theta):
        return net.apply(ActorCritic.join_params(unravel(theta), critic), obs, method=ActorCritic.policy).logits

    def kl_fn(theta):
        p_old = jax.nn.softmax(logits(theta0))
        return jnp.mean(jnp.sum(p_old * (jax.nn.log_softmax(logits(theta0)) - jax.nn.log_softmax(logits(theta))), -1))

    # F = E_s sum_a pi(a|s) grad log pi(a|s) grad log pi(a|s)^T, written out
    jac = jax.jacobian(lambda th: jax.nn.log_softmax(logits(th)))(theta0)       # [S, A, P]
    p = jax.nn.softmax(logits(theta0))
    fisher = jnp.einsum("sa,sap,saq->pq", p, jac, jac) / obs.shape[0]
    v = jax.random.normal(jax.random.key(2), theta0.shape)
    out = trpo.fisher_vector_product(kl_fn, theta0, v, damping=0.1)
    np.testing.assert_allclose(np.asarray(out), np.asarray(fisher @ v + 0.1 * v), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("discrete", [True, False])
def test_actor_critic_parameter_split_is_what_policy_and_value_read(discrete):
    """TRPO steps the policy's parameters apart from the value's: split_params must give exactly the parameters
    the policy reads (its gradient is zero everywhere else, and nonzero in every leaf of its part) and the rest
    exactly those the value reads; join_params undoes the split."""
    net = ActorCritic(action_dim=2, discrete=discrete, hidden_sizes=(4, 4))
    obs = jax.random.normal(jax.random.key(0), (5, 3))
    params = net.init(jax.random.key(1), obs)
    policy, value = ActorCritic.split_params(params)
    g_pi = jax.grad(lambda p: jnp.sum(net.apply(p, obs, method=ActorCritic.policy).log_prob(
        jnp.zeros((5,), jnp.int32) if discrete else jnp.ones((5, 2)))))(params)
    g_v = jax.grad(lambda p: jnp.sum(net.apply(p, obs, method=ActorCritic.value)))(params)
    for grads, mine, other in ((g_pi, 0, 1), (g_v, 1, 0)):
        parts = ActorCritic.split_params(grads)
        assert all(float(jnp.abs(x).max()) > 0 for x in jax.tree.leaves(parts[mine]))
        assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(parts[other]))
    assert_tree_close(ActorCritic.join_params(policy, value), params, rtol=0, atol=0)
    assert jax.tree.structure(ActorCritic.join_params(policy, value)) == jax.tree.structure(params)


def test_conjugate_gradient_solves_spd_system():
    m = jax.random.normal(jax.random.key(0), (6, 6))
    a = m @ m.T + 6.0 * jnp.eye(6)
    b = jax.random.normal(jax.random.key(1), (6,))
    x = trpo.conjugate_gradient(lambda v: a @ v, b, iters=6)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(np.asarray(a), np.asarray(b)), rtol=1e-4, atol=1e-5)


def test_trpo_steps_under_vmap_are_the_steps_alone():
    """The natural-gradient step of a vmapped seed is the step of that seed alone (on jax 0.11 jax.scipy's CG
    under vmap returned steps of norm ~1e10, and the line search rejected every one)."""
    train = trpo.make_train(trpo.Config(env="CartPole-v1", total_timesteps=2048 * 3))
    keys = jax.random.split(jax.random.key(0), 2)
    batched = jax.jit(jax.vmap(train))(keys).metrics
    alone = jax.jit(train)(keys[0]).metrics
    assert np.asarray(batched["accepted"]).min() == 1.0
    for name in ("kl", "expected_improvement", "surrogate_improvement"):
        np.testing.assert_allclose(np.asarray(batched[name])[0], np.asarray(alone[name]), rtol=1e-3, err_msg=name)


def test_trpo_reports_the_kl_between_the_old_and_the_new_policy(monkeypatch):
    """The KL that TRPO reports (and that its line search compares with max_kl) is the mean categorical
    KL(pi_old || pi_new), computed here apart from TRPO: from the parameters before and after each update, on
    the observations that update collected (taken from `onpolicy.collect_with` as the update calls it), with the
    KL written out. 8 seeds (one vmapped program) x 10 updates, some of whose steps are backtracked (the
    accepted candidate is not the first), all within the trust region by that measure. The reverse KL,
    KL(pi_new || pi_old), misses the tolerance at every accepted update (asserted, so the comparison tells the
    two directions apart); reporting the first candidate's KL instead of the accepted one's fails it too."""
    max_kl = 0.1
    cfg = trpo.Config(env="CartPole-v1", num_envs=4, num_steps=64, vf_minibatches=2, hidden_sizes=(16, 16),
                      total_timesteps=4 * 64 * 10, max_kl=max_kl)
    tr = trpo.make(cfg)
    network = onpolicy.make_network(cfg.validate(), tr.env)
    collected, real_collect = [], onpolicy.collect_with

    def collect(*args, **kwargs):
        ro = real_collect(*args, **kwargs)
        collected.append(ro.traj.obs)
        return ro

    monkeypatch.setattr(onpolicy, "collect_with", collect)

    def categorical_kl(old_params, new_params, obs):
        logits = lambda params: network.apply(params, obs, method=type(network).policy).logits  # noqa: E731
        old, new = jax.nn.log_softmax(logits(old_params)), jax.nn.log_softmax(logits(new_params))
        return jnp.mean(jnp.sum(jnp.exp(old) * (old - new), axis=-1))

    @jax.jit
    @jax.vmap
    def update_and_measure(state):
        new, metrics = tr.update(state)
        obs = collected.pop()                                # [num_steps, num_envs, obs_dim], traced with it
        return new, metrics, categorical_kl(state.params, new.params, obs), categorical_kl(new.params, state.params, obs)

    state = jax.vmap(tr.init)(jax.random.split(jax.random.key(0), 8))
    rows = []
    for _ in range(cfg.num_log_points):
        state, metrics, kl, reverse_kl = update_and_measure(state)
        rows.append((metrics["kl"], kl, reverse_kl, metrics["accepted"], metrics["line_search_steps"]))
    reported, measured, reverse, accepted, tried = (np.stack(x) for x in zip(*rows, strict=True))
    accepted = accepted > 0
    assert accepted.mean() > 0.8 and (accepted & (tried > 1)).sum() >= 3
    np.testing.assert_allclose(measured, reported, rtol=1e-4, atol=1e-9)
    assert (measured[accepted] <= max_kl * (1 + 1e-4)).all() and (measured[accepted] > 0).all()
    # the comparison tells the two directions apart: the reverse KL misses the tolerance at every accepted step
    assert not np.isclose(reverse[accepted], reported[accepted], rtol=1e-4, atol=1e-9).any()


# --- A3C emulation ---

def _a3c_setup(max_staleness, random_staleness=False):
    cfg = a3c.Config(env="CartPole-v1", max_staleness=max_staleness, random_staleness=random_staleness,
                     **TINY["a3c"]).validate()
    trainer = a3c.make(cfg)
    return cfg, trainer, trainer.init(jax.random.key(0))


def test_a3c_without_staleness_is_sequential_fresh_parameter_updates():
    cfg, trainer, state = _a3c_setup(0)
    emulated, metrics = jax.jit(trainer.update)(state)
    # the reference: each worker in turn collects with the current parameters and applies its gradient
    network = onpolicy.make_network(cfg, trainer.env)
    tx = optim.make_optimizer(cfg.optimizer, cfg.learning_rate, max_grad_norm=cfg.max_grad_norm, eps=cfg.opt_eps)
    _, keys = onpolicy.worker_keys(state.key, cfg.num_workers)
    params, opt_state = state.params, state.opt_state
    for w in range(cfg.num_workers):
        env_state = jax.tree.map(lambda x, w=w: x[w], state.env_state)
        ro = onpolicy.collect(trainer.env, network, params, env_state, state.obs[w], keys[w, 1], cfg.num_steps)
        grads, _ = a2c.gradient(network, params, ro.traj, cfg)
        params, opt_state = optim.apply(tx, params, grads, opt_state)
    assert_tree_close(emulated.params, params, rtol=1e-5, atol=1e-6)
    assert float(metrics["staleness"]) == 0.0


def test_a3c_evaluates_with_the_statistics_of_every_workers_observations():
    """Each worker's envs keep their own observation statistics; the trained policy (evaluation, export)
    normalises with all of them together: the mean and variance of every observation any worker saw."""
    cfg = a3c.Config(env="Pendulum-v1", num_envs=2, num_workers=3, num_steps=5, total_timesteps=3 * 2 * 5 * 2,
                     hidden_sizes=(8,), normalize_obs=True)
    trainer = a3c.make(cfg)
    state = jax.jit(trainer.train)(jax.random.key(0)).state
    rms = trainer.env.obs_normalizer(state.env_state)          # [W, ...]: one per worker
    counts = np.asarray(rms.count, np.float64)
    assert counts.shape == (3,) and np.ptp(np.asarray(rms.mean), axis=0).max() > 1e-3   # they differ
    mean = (counts[:, None] * np.asarray(rms.mean, np.float64)).sum(0) / counts.sum()
    var = (counts[:, None] * (np.asarray(rms.var, np.float64) + (np.asarray(rms.mean, np.float64) - mean) ** 2)
           ).sum(0) / counts.sum()
    obs = np.asarray(jax.random.normal(jax.random.key(1), (4, 3)))
    expected = np.clip((obs - mean) / np.sqrt(var + 1e-8), -10, 10)
    network = onpolicy.make_network(cfg, trainer.env)
    want = network.apply(state.params, jnp.asarray(expected, jnp.float32), method=ActorCritic.policy).mode()
    np.testing.assert_allclose(np.asarray(trainer.agent_policy(state)(obs)), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_a3c_stale_gradients_use_old_parameters():
    cfg, trainer, state = _a3c_setup(2)
    stale, metrics = jax.jit(trainer.update)(state)
    assert float(metrics["staleness"]) == pytest.approx((0 + 1 + 2) / 3)   # capped by the updates so far
    _, fresh_trainer, fresh_state = _a3c_setup(0)
    fresh, _ = jax.jit(fresh_trainer.update)(fresh_state)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(stale.params), jax.tree.leaves(fresh.params)))
    assert diff > 1e-6
    # the ring buffer holds the newest version at the slot of the update count
    newest = jax.tree.map(lambda h: h[int(stale.version) % (cfg.max_staleness + 1)], stale.history)
    assert_tree_close(newest, stale.params, rtol=0, atol=0)


# --- learning with the defaults (only env set) ---

# Several seeds as one vmapped program, asserted on a statistic over seeds: a single seed's run depends on
# XLA's float rounding, which differs between CPUs and jax versions, and RL amplifies that. REINFORCE's
# seeds occasionally stall (about one in ten ends between 250 and 450) while its median seed ends at 490-500,
# so its test asserts the median of 8; the others end at 500 on every seed measured.
SOLVE = {"reinforce": (8, np.median, 450), "a2c": (4, np.mean, 475), "a3c": (4, np.mean, 475),
         "trpo": (4, np.mean, 475)}


@pytest.mark.parametrize("name", ["reinforce", "a2c", "a3c", "trpo"])
def test_defaults_solve_cartpole(name):
    algo = ALGOS[name]
    seeds, statistic, threshold = SOLVE[name]
    train = algo.make_train(algo.Config(env="CartPole-v1"))
    result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), seeds))
    ret = np.asarray(result.metrics["episode_return"])            # [seed, update]
    final = np.nanmean(ret[:, -max(1, ret.shape[1] // 20):], axis=1)  # mean of the last 5% of updates
    assert statistic(final) >= threshold, (name, final)


# --- vmap ---

@pytest.mark.parametrize("name", ["reinforce", "a2c", "a3c", "trpo"])
def test_seed_and_hyperparameter_vmap_equal_single_runs(name):
    algo = ALGOS[name]
    cfg = algo.Config(env="CartPole-v1", **TINY[name])
    field = "max_kl" if name == "trpo" else "learning_rate"
    values = jnp.array([0.01, 0.02]) if name == "trpo" else jnp.array([1e-3, 3e-3])

    def run(v, key):
        return algo.make_train(cfg.replace(**{field: v}))(key)

    keys = jax.random.split(jax.random.key(4), 2)
    batched = jax.jit(jax.vmap(run))(values, keys)
    for i, (v, key) in enumerate(zip(values.tolist(), keys)):
        one = jax.jit(lambda k, v=v: run(v, k))(key)
        assert_tree_close(jax.tree.map(lambda x, i=i: x[i], batched.metrics), one.metrics)
        assert_tree_close(jax.tree.map(lambda x, i=i: x[i], batched.state.params), one.state.params)
    assert "episode_return" in batched.metrics and batched.metrics["env_steps"].shape[0] == 2


# --- errors ---

def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="`shared_network`"):
        trpo.make(trpo.Config(shared_network=True))
    with pytest.raises(ValueError, match="`num_steps`.*500"):
        reinforce.make(reinforce.Config(env="CartPole-v1", num_steps=200))
    with pytest.raises(ValueError, match="`baseline`"):
        reinforce.make(reinforce.Config(baseline="median"))
    with pytest.raises(ValueError, match="`max_staleness`"):
        a3c.make(a3c.Config(max_staleness=-1))
    with pytest.raises(ValueError, match="`optimizer`"):
        a2c.make(a2c.Config(optimizer="sgd"))
    with pytest.raises(ValueError, match="`max_kl`"):
        trpo.make(trpo.Config(max_kl=0.0))
    with pytest.raises(ValueError, match="`vf_minibatches`"):
        trpo.make(trpo.Config(vf_minibatches=7))


# --- continuous actions ---

def test_trpo_improves_pendulum():
    cfg = trpo.Config(env="Pendulum-v1", total_timesteps=300_000, num_envs=16, num_steps=256, gamma=0.95,
                      normalize_obs=True, normalize_reward=True, max_kl=0.02)
    ret = np.asarray(jax.jit(trpo.make_train(cfg))(jax.random.key(0)).metrics["episode_return"])
    assert ret[:3].mean() < -1000 and ret[-10:].mean() > -400, (ret[:3], ret[-10:])
