"""The textbook's claims about policy-gradient methods, measured on purerl's own code.

    python benchmarks/claims.py            # all claims, CPU-sized (a few minutes on 2 cores)
    python benchmarks/claims.py --tiny     # seconds-sized budgets (what the tests run)
    python benchmarks/claims.py --only 1,3

Every value in the table comes from a run made here; nothing is a constant. The claims:

1. A state-dependent baseline leaves the policy-gradient estimate unbiased and lowers its variance.
2. Actor-critic (TD/GAE) estimates have lower variance than REINFORCE's Monte-Carlo returns at the same
   policy; GAE lambda trades bias (small lambda) against variance (large lambda).
3. For a Gaussian policy the score is (a - mu) / sigma^2 * grad mu: autodiff equals the closed form.
4. PPO's clipped objective keeps the probability ratio near [1 - eps, 1 + eps] and the KL small, where the
   unclipped objective on the same data with the same learning rate drifts further.
5. TRPO's accepted steps satisfy mean KL <= delta.
6. DDPG overestimates Q against Monte-Carlo returns of its own policy; TD3's twin-minimum target reduces it.
7. SAC with automatic temperature drives the policy entropy to the target entropy.
8. A3C's stale gradients: final return and staleness against A2C at equal samples.

How each is measured is in the docstring of its ``claim_N`` function. ``measure(tiny, only)`` returns the rows
(and the data behind them, for plots: see notebooks/claims.ipynb); ``main`` prints the table and writes
benchmarks/results/claims.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from purerl import a2c, a3c, ddpg, envs, ppo, sac, td3, trpo
from purerl.core import onpolicy
from purerl.core.trajectory import first_episode, gae, reward_to_go, rollout
from purerl.networks import ActorCritic, QEnsemble


@dataclass
class Row:
    claim: int
    statement: str
    quantity: str
    value: str
    verdict: bool | None          # None: reported, no pass/fail rule
    data: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------
# 1 and 2: gradient estimators at one fixed policy
# --------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _fixed_policy(tiny: bool, seed: int):
    """A partly trained CartPole policy and critic (PPO, a short run): a policy whose episodes vary in
    length and a critic that is good but not exact, as in the middle of a real run."""
    cfg = ppo.Config(env="CartPole-v1", total_timesteps=8_192 if tiny else 20_480, num_envs=4, num_steps=128)
    trainer = ppo.make(cfg)
    state = jax.jit(trainer.train)(jax.random.key(seed)).state
    network = onpolicy.make_network(cfg, trainer.env)
    return network, state.params, cfg


def gradient_estimates(network: ActorCritic, params: Any, key: jax.Array, lambdas: tuple[float, ...],
                       num_envs: int = 8, num_steps: int = 500, gamma: float = 0.99) -> dict[str, jax.Array]:
    """One batch of ``num_envs`` full episodes (their first episode: CartPole's limit is 500 steps) and
    the policy-gradient estimate ``g = (1/N) sum_t grad log pi(a_t|s_t) psi_t`` for several ``psi``:
    ``mc`` (reward-to-go G_t), ``mc_baseline`` (G_t - V(s_t)) and ``gae_<lam>`` (GAE(lambda) advantages).
    Returns flat gradient vectors of the policy parameters."""
    env = envs.make("CartPole-v1", num_envs)
    k_reset, k_roll = jax.random.split(key)
    env_state, obs = env.reset(k_reset)

    def act(o, k, memory):
        return network.apply(params, o, method=ActorCritic.policy).sample(seed=k), {}, memory

    traj = rollout(env, act, env_state, obs, k_roll, num_steps).traj
    mask = first_episode(traj.done).astype(jnp.float32)
    g_mc, _ = reward_to_go(traj.reward, traj.done, gamma)
    value = lambda o: network.apply(params, o, method=ActorCritic.value)  # noqa: E731
    v, v_next = value(traj.obs), value(traj.final_obs)
    psis = {"mc": g_mc, "mc_baseline": g_mc - v}
    for lam in lambdas:
        psis[f"gae_{lam:g}"] = gae(traj.reward, v, v_next, traj.terminated, traj.done, gamma, lam)[0]

    flat, unravel = ravel_pytree(params)

    def log_probs(theta):
        return network.apply(unravel(theta), traj.obs, method=ActorCritic.policy).log_prob(traj.action)

    _, vjp = jax.vjp(log_probs, flat)
    return {name: vjp(jax.lax.stop_gradient(psi) * mask / num_envs)[0] for name, psi in psis.items()}


def _moments(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean vector and total variance (trace of the covariance) of ``[B, P]`` samples."""
    return samples.mean(axis=0), float(samples.var(axis=0, ddof=1).sum())


def normalized_bias(a: np.ndarray, b: np.ndarray) -> float:
    """``||mean(a - b)||^2 / (tr Cov(a - b) / B)``: about 1 when a and b have the same expectation (the
    squared norm of a mean of B zero-mean samples), much larger when they do not."""
    d = a - b
    mean, var = _moments(d)
    return float(mean @ mean / (var / d.shape[0]))


def claim_1_2(tiny: bool, seed: int) -> list[Row]:
    """Claims 1 and 2. A fixed policy (partly trained by PPO) and its critic; ``B`` independent batches of
    8 complete episodes; on each batch the policy-gradient estimate with every ``psi`` (the same episodes for
    all). Unbiasedness: the normalised squared bias of (MC) - (MC - V) is about 1 when the baseline term
    has zero mean. Variance: the trace of each estimator's covariance over the batches. Bias of GAE(lambda):
    against the unbiased MC - V estimate, relative to its norm."""
    lambdas = (0.0, 0.5, 0.9, 0.97, 1.0)
    network, params, _ = _fixed_policy(tiny, seed)
    batches = 48 if tiny else 400
    keys = jax.random.split(jax.random.key(seed + 1), batches)
    fn = jax.jit(jax.vmap(lambda k: gradient_estimates(network, params, k, lambdas)))
    est = {k: np.asarray(v, np.float64) for k, v in fn(keys).items()}
    mean_mc, var_mc = _moments(est["mc"])
    mean_b, var_b = _moments(est["mc_baseline"])
    nb = normalized_bias(est["mc"], est["mc_baseline"])
    rows = [
        Row(1, "baseline keeps the estimate unbiased", "normalised squared bias of MC vs MC-V (about 1 if unbiased)",
            f"{nb:.2f}", nb < 3.0, {"normalized_bias": nb, "batches": batches}),
        Row(1, "baseline lowers the variance", "tr Cov(MC - V) / tr Cov(MC)", f"{var_b / var_mc:.3f}",
            var_b < var_mc, {"var_mc": var_mc, "var_baseline": var_b}),
    ]
    ref = mean_b
    variances, biases = [], []
    for lam in lambdas:
        m, var = _moments(est[f"gae_{lam:g}"])
        variances.append(var / var_mc)
        biases.append(float(np.linalg.norm(m - ref) / np.linalg.norm(ref)))
    var_td0 = variances[0]
    rows.append(Row(2, "TD actor-critic has lower variance than REINFORCE", "tr Cov(GAE(0)) / tr Cov(MC)",
                    f"{var_td0:.3f}", var_td0 < 1.0, {}))
    mono_var = all(b >= a * 0.98 for a, b in zip(variances, variances[1:], strict=False))
    rows.append(Row(2, "variance grows with lambda", "tr Cov(GAE(lam)) / tr Cov(MC), lam = " +
                    ", ".join(f"{x:g}" for x in lambdas), ", ".join(f"{x:.3f}" for x in variances), mono_var,
                    {"lambdas": list(lambdas), "variance_ratio": variances}))
    nb0 = normalized_bias(est["gae_0"], est["mc_baseline"])
    rows.append(Row(2, "bias shrinks with lambda", "||E g_lam - E g_MC-V|| / ||E g_MC-V||, same lambdas",
                    ", ".join(f"{x:.3f}" for x in biases),
                    biases[0] > biases[-1] and nb0 > 3.0,
                    {"relative_bias": biases, "normalized_bias_td0": nb0}))
    return rows


# --------------------------------------------------------------------------------------------------------
# 3: the Gaussian score
# --------------------------------------------------------------------------------------------------------

def claim_3(tiny: bool, seed: int) -> list[Row]:
    """Claim 3. A Gaussian policy network (2-D actions, state-independent log-std) at random parameters;
    for a batch of states and sampled actions, ``grad_theta log N(a; mu_theta(s), sigma)`` by autodiff
    against ``J_mu(theta)^T (a - mu) / sigma^2`` (the closed form, through a vector-Jacobian product of the
    mean alone)."""
    net = ActorCritic(action_dim=2, discrete=False, hidden_sizes=(32, 32))
    k_init, k_obs, k_act = jax.random.split(jax.random.key(seed), 3)
    n = 64 if tiny else 512
    obs = jax.random.normal(k_obs, (n, 5))
    params = net.init(k_init, obs)
    params = jax.tree.map(lambda x: x, params)  # a mutable copy
    params["params"]["policy_head"]["log_std"] = jnp.array([-0.5, 0.3])  # sigma != 1 so the 1/sigma^2 matters
    pi = net.apply(params, obs, method=ActorCritic.policy)
    actions = pi.sample(seed=k_act)

    def log_prob_sum(p):
        return jnp.sum(net.apply(p, obs, method=ActorCritic.policy).log_prob(actions))

    auto = jax.grad(log_prob_sum)(params)
    sigma = jnp.exp(params["params"]["policy_head"]["log_std"])
    mean_fn = lambda p: net.apply(p, obs, method=ActorCritic.policy).mean()  # noqa: E731
    mu, vjp = jax.vjp(mean_fn, params)
    closed = vjp((actions - mu) / sigma ** 2)[0]
    # Compare on the parameters the mean depends on (the log-std has its own score term).
    auto_mean = {k: v for k, v in auto["params"].items() if k in ("actor_torso",)}
    closed_mean = {k: v for k, v in closed["params"].items() if k in ("actor_torso",)}
    auto_mean["head"] = {k: v for k, v in auto["params"]["policy_head"].items() if k != "log_std"}
    closed_mean["head"] = {k: v for k, v in closed["params"]["policy_head"].items() if k != "log_std"}
    a, c = ravel_pytree(auto_mean)[0], ravel_pytree(closed_mean)[0]
    err = float(jnp.max(jnp.abs(a - c)) / jnp.max(jnp.abs(a)))
    # The log-std score in closed form too: ((a - mu)^2 / sigma^2 - 1) per dimension.
    ls_closed = jnp.sum((actions - mu) ** 2 / sigma ** 2 - 1.0, axis=0)
    ls_err = float(jnp.max(jnp.abs(auto["params"]["policy_head"]["log_std"] - ls_closed)) /
                   jnp.max(jnp.abs(ls_closed)))
    return [Row(3, "Gaussian score = (a - mu)/sigma^2 grad mu", "max relative |autodiff - closed form| (mean params)",
                f"{err:.1e}", err < 1e-4, {"n": n}),
            Row(3, "... and d/dlog sigma = (a - mu)^2/sigma^2 - 1", "max relative |autodiff - closed form| (log-std)",
                f"{ls_err:.1e}", ls_err < 1e-4, {})]


# --------------------------------------------------------------------------------------------------------
# 4: PPO's clipping
# --------------------------------------------------------------------------------------------------------

def surrogate_drift(network: ActorCritic, params: Any, key: jax.Array, clip_eps: float, clipped: bool,
                    epochs: int, lr: float, num_envs: int = 8, num_steps: int = 128,
                    minibatches: int = 4) -> dict[str, jax.Array]:
    """One rollout of the policy ``params``, GAE advantages from its critic, then ``epochs`` epochs of Adam
    on the policy surrogate ``-mean(min(r A, clip(r) A))`` (``clipped``) or ``-mean(r A)``. Returns the
    final ratio's spread over the batch and the exact mean KL(pi_old || pi_new)."""
    import optax

    from purerl.core.trajectory import flatten_time_env, shuffled_minibatches

    env = envs.make("CartPole-v1", num_envs)
    k_reset, k_roll, k_epochs = jax.random.split(key, 3)
    env_state, obs = env.reset(k_reset)
    traj = onpolicy.collect(env, network, params, env_state, obs, k_roll, num_steps).traj
    _, adv, _ = onpolicy.values_and_gae(network, params, traj, 0.99, 0.95)
    batch = flatten_time_env({"obs": traj.obs, "action": traj.action, "log_prob": traj.extras["log_prob"],
                              "adv": (adv - adv.mean()) / (adv.std() + 1e-8)})
    opt = optax.adam(lr)

    def loss(p, mb):
        ratio = jnp.exp(network.apply(p, mb["obs"], method=ActorCritic.policy).log_prob(mb["action"]) - mb["log_prob"])
        if clipped:
            return -jnp.mean(jnp.minimum(ratio * mb["adv"], jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * mb["adv"]))
        return -jnp.mean(ratio * mb["adv"])

    def mb_step(carry, mb):
        p, s = carry
        g = jax.grad(loss)(p, mb)
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    def epoch(carry, k):
        return jax.lax.scan(mb_step, carry, shuffled_minibatches(k, batch, minibatches))[0], None

    (new, _), _ = jax.lax.scan(epoch, (params, opt.init(params)), jax.random.split(k_epochs, epochs))
    pi_old = network.apply(params, batch["obs"], method=ActorCritic.policy)
    pi_new = network.apply(new, batch["obs"], method=ActorCritic.policy)
    ratio = jnp.exp(pi_new.log_prob(batch["action"]) - batch["log_prob"])
    return {"outside": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
            "max_dev": jnp.max(jnp.abs(ratio - 1.0)), "kl": jnp.mean(pi_old.kl_divergence(pi_new))}


def claim_4(tiny: bool, seed: int) -> list[Row]:
    """Claim 4. The same rollouts (8 envs x 128 steps of a partly trained CartPole policy; several seeds)
    and the same Adam learning rate and epochs for PPO's clipped surrogate and the plain ratio surrogate;
    after the epochs: the fraction of samples whose ratio left [1 - eps, 1 + eps] and the exact mean KL."""
    network, params, _ = _fixed_policy(tiny, seed)
    eps, epochs, lr = 0.2, 10, 3e-3
    keys = jax.random.split(jax.random.key(seed + 2), 4 if tiny else 16)
    out = {}
    for clipped in (True, False):
        fn = jax.jit(jax.vmap(lambda k, c=clipped: surrogate_drift(network, params, k, eps, c, epochs, lr)))
        out[clipped] = {k: float(np.mean(v)) for k, v in fn(keys).items()}
    c, u = out[True], out[False]
    return [Row(4, "clipping keeps the ratio near [1-eps, 1+eps]", "fraction of ratios outside, clipped vs unclipped",
                f"{c['outside']:.3f} vs {u['outside']:.3f}", c["outside"] < u["outside"], {"clipped": c, "unclipped": u}),
            Row(4, "clipping keeps the KL small", "mean KL(old||new) after 10 epochs, clipped vs unclipped",
                f"{c['kl']:.4f} vs {u['kl']:.4f}", c["kl"] < u["kl"], {})]


# --------------------------------------------------------------------------------------------------------
# 5: TRPO's trust region
# --------------------------------------------------------------------------------------------------------

def claim_5(tiny: bool, seed: int) -> list[Row]:
    """Claim 5. A TRPO run on CartPole (seeds vmapped); ``kl`` is the exact mean KL of each update's accepted
    step (measured on the batch after the step), ``accepted`` whether one was found."""
    cfg = trpo.Config(env="CartPole-v1", total_timesteps=16_384 if tiny else 200_000, max_kl=0.01)
    seeds = 2 if tiny else 4
    res = jax.jit(jax.vmap(trpo.make_train(cfg)))(jax.random.split(jax.random.key(seed), seeds))
    kl = np.asarray(res.metrics["kl"], np.float64)
    acc = np.asarray(res.metrics["accepted"]) > 0.5
    worst = float(kl[acc].max()) if acc.any() else float("nan")
    ret = float(np.nanmean(np.asarray(res.metrics["episode_return"])[:, -3:]))
    return [Row(5, "TRPO's accepted steps satisfy mean KL <= delta",
                f"max KL of {int(acc.sum())} accepted steps / delta ({acc.mean():.0%} of updates accepted)",
                f"{worst / cfg.max_kl:.3f}", bool(acc.any()) and worst <= cfg.max_kl,
                {"kl": kl.tolist(), "accepted": acc.tolist(), "final_return": ret})]


# --------------------------------------------------------------------------------------------------------
# 6: overestimation in DDPG and TD3
# --------------------------------------------------------------------------------------------------------

def q_bias(module, cfg, key: jax.Array, num_states: int = 64, horizon: int = 1000) -> dict[str, jax.Array]:
    """Train ``module`` (ddpg or td3) with ``cfg`` and, after every log point, measure the first critic's
    ``Q(s0, mu(s0))`` against the discounted Monte-Carlo return of the deterministic policy from the same
    ``num_states`` start states (Pendulum run for ``horizon`` steps instead of its 200-step limit, so the
    return approximates the infinite-horizon value the critic bootstraps towards: gamma^1000 ~ 4e-5)."""
    import gymnax

    from purerl.envs.suites import GymnaxEnv
    from purerl.envs.wrappers import RescaleAction

    trainer = module.make(cfg)
    critic = QEnsemble(cfg.num_critics, cfg.hidden_sizes, cfg.activation)
    _, params = gymnax.make(cfg.env)
    long_env = RescaleAction(GymnaxEnv(cfg.env, num_states, params.replace(max_steps_in_episode=horizon)))

    def measure(state, k):
        env_state, obs = long_env.reset(k)
        act = trainer.agent_policy(state, True)  # [-1, 1] actions: long_env rescales them
        q0 = critic.apply(state.agent.params["critic"], obs, act(obs, None))[0] / cfg.reward_scale

        def step(carry, k_step):
            env_state, obs, ret, disc = carry
            env_state, ts = long_env.step(k_step, env_state, act(obs, None))
            return (env_state, ts.obs, ret + disc * ts.reward, disc * cfg.gamma), None

        (_, _, ret, _), _ = jax.lax.scan(step, (env_state, obs, jnp.zeros(num_states), jnp.ones(())),
                                         jax.random.split(k, horizon))
        return {"q": jnp.mean(q0), "mc": jnp.mean(ret)}

    def body(state, k):
        state, metrics = trainer.update(state)
        out = measure(state, k)
        out["eval_return"] = metrics["eval_return"]
        return state, out

    k_init, k_meas = jax.random.split(key)
    _, out = jax.lax.scan(body, trainer.init(k_init), jax.random.split(k_meas, trainer.num_log_points))
    out["env_steps"] = (jnp.arange(trainer.num_log_points) + 1) * trainer.steps_per_log_point
    return out


def claim_6(tiny: bool, seed: int) -> list[Row]:
    """Claim 6. DDPG and TD3 with the same network sizes, budget and seeds on Pendulum-v1; the bias
    ``Q - MC`` at the start states per log point, averaged over seeds and over the second half of training.
    The first half is left out of the average (it is in the data and the notebook's plot): there the critics
    still sit near their initial value ~0 while the returns of the untrained policy are around -500, a gap
    that is under-fitting, not the overestimation the claim is about (the TD3 paper likewise measures it on
    critics that track their targets)."""
    common = dict(env="Pendulum-v1", total_timesteps=3_000 if tiny else 30_000, learning_starts=1_000,
                  hidden_sizes=(64, 64), num_evals=4 if tiny else 12, eval_episodes=4)
    seeds = 2 if tiny else 4
    keys = jax.random.split(jax.random.key(seed), seeds)
    out = {}
    for name, module in (("ddpg", ddpg), ("td3", td3)):
        cfg = module.Config(**common)
        res = jax.jit(jax.vmap(lambda k, m=module, c=cfg: q_bias(m, c, k)))(keys)
        out[name] = {k: np.asarray(v, np.float64) for k, v in res.items()}
    half = out["ddpg"]["q"].shape[1] // 2
    bias = {k: float(np.mean((v["q"] - v["mc"])[:, half:])) for k, v in out.items()}
    data = {k: {"env_steps": v["env_steps"][0].tolist(), "q": v["q"].tolist(), "mc": v["mc"].tolist(),
                "eval_return": v["eval_return"].tolist()} for k, v in out.items()}
    return [Row(6, "DDPG overestimates Q", "mean Q(s0, mu(s0)) - MC return, 2nd half of training, DDPG",
                f"{bias['ddpg']:+.1f}", bias["ddpg"] > 0, data),
            Row(6, "TD3's twin-min target reduces it", "same for TD3 (vs DDPG above)", f"{bias['td3']:+.1f}",
                bias["td3"] < bias["ddpg"], {})]


# --------------------------------------------------------------------------------------------------------
# 7: SAC's temperature
# --------------------------------------------------------------------------------------------------------

def claim_7(tiny: bool, seed: int) -> list[Row]:
    """Claim 7. SAC with automatic temperature on Pendulum-v1 (target entropy -|A| = -1); the policy
    entropy (``-mean log pi`` on replay states) per log point, at the start and the end of training."""
    cfg = sac.Config(env="Pendulum-v1", total_timesteps=3_000 if tiny else 12_000, learning_starts=1_000,
                     hidden_sizes=(64, 64), num_evals=6 if tiny else 12, eval_episodes=4)
    seeds = 2 if tiny else 4
    res = jax.jit(jax.vmap(sac.make_train(cfg)))(jax.random.split(jax.random.key(seed), seeds))
    ent = np.asarray(res.metrics["entropy"], np.float64)
    target = -1.0
    first, last = float(np.mean(ent[:, 0])), float(np.mean(ent[:, -1]))
    return [Row(7, "auto temperature drives entropy to the target", "entropy at first / last log point (target -1)",
                f"{first:.2f} -> {last:.2f}", abs(last - target) < 0.3 and abs(last - target) < abs(first - target),
                {"entropy": ent.tolist(), "alpha": np.asarray(res.metrics["alpha"]).tolist(),
                 "env_steps": np.asarray(res.metrics["env_steps"])[0].tolist()})]


# --------------------------------------------------------------------------------------------------------
# 8: A3C's stale gradients
# --------------------------------------------------------------------------------------------------------

def claim_8(tiny: bool, seed: int) -> list[Row]:
    """Claim 8. A2C (8 envs x 5 steps per update) against A3C with 4 workers of 2 envs x 5 steps (the same
    40 env steps per round, as 4 smaller updates) at the same env-step budget on CartPole-v1, with each
    gradient's staleness drawn from 0..K for K = 0 (workers in lockstep), 3 and 8. The budget is one where
    A2C has not yet converged, so the comparison is about sample efficiency: the final return (mean of the
    last 5% of log points) and the mean return over the whole run (area under the learning curve), over
    seeds, and the mean staleness of the applied gradients."""
    steps = 100_000 if tiny else 150_000
    seeds = 2 if tiny else 8
    keys = jax.random.split(jax.random.key(seed), seeds)

    def summary(metrics, staleness=0.0):
        r = np.asarray(metrics["episode_return"], np.float64)
        return {"final": float(np.nanmean(r[:, -max(1, r.shape[1] // 20):])), "auc": float(np.nanmean(r)),
                "staleness": staleness}

    cfg = a2c.Config(env="CartPole-v1", total_timesteps=steps)
    results = {"a2c": summary(jax.jit(jax.vmap(a2c.make_train(cfg)))(keys).metrics)}
    for k in (0, 3, 8):
        cfg = a3c.Config(env="CartPole-v1", total_timesteps=steps, num_envs=2, num_workers=4, max_staleness=k)
        m = jax.jit(jax.vmap(a3c.make_train(cfg)))(keys).metrics
        results[f"a3c_K{k}"] = summary(m, float(np.mean(m["staleness"])))
    base, stale = results["a2c"], results["a3c_K8"]
    text = "; ".join(f"{name} {r['final']:.0f}/{r['auc']:.0f} s={r['staleness']:.1f}" for name, r in results.items())
    return [Row(8, "A3C's stale gradients still learn", "final return, A3C (staleness 0..8) vs A2C, equal samples",
                f"{stale['final']:.0f} vs {base['final']:.0f} (mean staleness {stale['staleness']:.1f})",
                stale["staleness"] > 0 and stale["final"] >= 0.9 * base["final"],
                {"results": results, "env_steps": steps, "seeds": seeds}),
            Row(8, "return by max staleness K", "final/mean-over-run return, mean staleness s", text, None, {})]


CLAIMS = {1: claim_1_2, 3: claim_3, 4: claim_4, 5: claim_5, 6: claim_6, 7: claim_7, 8: claim_8}


def measure(tiny: bool = False, only: tuple[int, ...] | None = None, seed: int = 0,
            verbose: bool = True) -> list[Row]:
    rows = []
    for number, fn in CLAIMS.items():
        wanted = only is None or number in only or (number == 1 and 2 in only)
        if not wanted:
            continue
        t0 = time.perf_counter()
        new = fn(tiny, seed)
        rows += new
        if verbose:
            print(f"  measured claim {number}{' and 2' if number == 1 else ''} in {time.perf_counter() - t0:.1f} s",
                  flush=True)
    return rows


def table(rows: list[Row]) -> str:
    verdict = {True: "holds", False: "FAILS", None: "(reported)"}
    w_s = max(len(r.statement) for r in rows)
    w_q = max(len(r.quantity) for r in rows)
    w_v = max(len(r.value) for r in rows)
    lines = [f"{'#':<3}{'claim':<{w_s + 2}}{'measured quantity':<{w_q + 2}}{'value':<{w_v + 2}}verdict"]
    lines.append("-" * (len(lines[0]) + 3))
    for r in rows:
        lines.append(f"{r.claim:<3}{r.statement:<{w_s + 2}}{r.quantity:<{w_q + 2}}{r.value:<{w_v + 2}}"
                     f"{verdict[r.verdict]}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="seconds-sized budgets (the tests' mode)")
    ap.add_argument("--only", default=None, help="comma-separated claim numbers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "claims.json"))
    args = ap.parse_args()
    only = tuple(int(x) for x in args.only.split(",")) if args.only else None
    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}, "
          f"{'tiny' if args.tiny else 'full'} budgets, seed {args.seed}")
    t0 = time.perf_counter()
    rows = measure(args.tiny, only, args.seed)
    print("\n" + table(rows))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(device), "tiny": args.tiny, "seed": args.seed,
                               "rows": [asdict(r) for r in rows]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
