"""Trust Region Policy Optimization (Schulman et al., 2015), as one fused program.

    cfg = trpo.Config(env="CartPole-v1")
    result = jax.jit(trpo.make_train(cfg))(jax.random.key(0))
    result.metrics["kl"], result.metrics["accepted"]

Each update collects ``num_envs x num_steps`` steps and GAE(lambda) advantages (standardised). The policy
parameters ``theta`` then take one natural-gradient step on the surrogate
``L(theta) = mean(pi_theta(a|s) / pi_old(a|s) * A)`` under the constraint ``mean KL(pi_old || pi_theta) <= max_kl``:

1. ``g = grad L`` at ``theta_old``;
2. ``s ~= F^-1 g`` by ``cg_iters`` conjugate-gradient iterations, where ``F v`` is a Fisher-vector product:
   the Hessian of the mean KL at ``theta_old`` times ``v`` (forward-over-reverse autodiff, no explicit
   matrix), plus ``damping * v``;
3. the full step ``sqrt(2 max_kl / s^T F s) s``, shrunk by ``backtrack_coef^j`` for ``j = 0 ..
   line_search_steps - 1``: the first candidate whose surrogate improves on ``L(theta_old)`` and whose
   mean KL is <= ``max_kl`` is accepted; if none is, the policy is left unchanged. All candidates are
   evaluated at once (a vmap, not a loop).

The critic has its own Adam (``learning_rate``) and is fitted for ``vf_epochs`` epochs of ``vf_minibatches``
minibatches on the GAE value targets. Metrics: ``kl`` (of the accepted step, 0 if none),
``surrogate_improvement``, ``accepted`` (1/0: its mean over log points is the accepted-step fraction),
``line_search_steps`` (candidates tried), ``value_loss``, ``entropy``. Policy and critic need separate
networks (``shared_network`` is refused).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh
from jax.flatten_util import ravel_pytree

from purerl.config import check, check_leaf, leaf_field, static_field
from purerl.core import onpolicy, optim
from purerl.core.loop import Result, Trainer
from purerl.core.trajectory import flatten_time_env, shuffled_minibatches, standardize
from purerl.core.progress import ProgressFn

__all__ = ["Config", "Result", "conjugate_gradient", "fisher_vector_product", "make", "make_agent", "make_train",
           "surrogate"]


@struct.dataclass
class Config(onpolicy.OnPolicyConfig):
    num_envs: int = static_field(8, "parallel environments")
    num_steps: int = static_field(256, "steps per env per update (rollout length)")
    cg_iters: int = static_field(10, "conjugate-gradient iterations")
    line_search_steps: int = static_field(10, "backtracking candidates tried")
    vf_epochs: int = static_field(5, "critic epochs per update")
    vf_minibatches: int = static_field(8, "critic minibatches per epoch; must divide num_envs * num_steps")
    max_kl: float = leaf_field(0.01, "trust region: the mean KL an accepted step may reach (delta)")
    damping: float = leaf_field(0.1, "added to the Fisher-vector product: (F + damping I) v")
    backtrack_coef: float = leaf_field(0.5, "step shrink factor of the line search")
    gae_lambda: float = leaf_field(0.97, "GAE lambda")
    learning_rate: float = leaf_field(1e-3, "critic Adam step size (the policy's step comes from max_kl)")

    def _check(self) -> None:
        super()._check()
        check(not self.shared_network, "shared_network", self.shared_network,
              "TRPO fits the critic apart from the policy; use separate networks (shared_network=False)")
        for name in ("cg_iters", "line_search_steps", "vf_epochs", "vf_minibatches"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "use a positive integer")
        check(self.num_envs * self.num_steps % self.vf_minibatches == 0, "vf_minibatches", self.vf_minibatches,
              f"it must divide num_envs * num_steps = {self.num_envs * self.num_steps}")
        check_leaf(self, "max_kl", low=0.0, low_open=True)
        check_leaf(self, "damping", low=0.0)
        check_leaf(self, "backtrack_coef", low=0.0, high=1.0, low_open=True, high_open=True)
        check_leaf(self, "gae_lambda", low=0.0, high=1.0)


def surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array) -> jax.Array:
    """TRPO's objective (maximised): ``mean(pi(a|s) / pi_old(a|s) * A)``, from the log-probabilities of the
    batch's actions under the new and the behaviour policy."""
    return jnp.mean(jnp.exp(log_prob - old_log_prob) * advantages)


def fisher_vector_product(kl_fn: Callable[[jax.Array], jax.Array], theta: jax.Array, v: jax.Array,
                          damping: Any = 0.0) -> jax.Array:
    """``(H + damping I) v`` with ``H`` the Hessian of ``kl_fn`` at ``theta``: for ``kl_fn(theta) = mean
    KL(pi_theta_old || pi_theta)`` evaluated at ``theta_old`` this is the Fisher information times ``v``."""
    return jax.jvp(jax.grad(kl_fn), (theta,), (v,))[1] + damping * v


def conjugate_gradient(matvec: Callable[[jax.Array], jax.Array], b: jax.Array, iters: int,
                       tol: float = 1e-10) -> jax.Array:
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` given as ``matvec``: ``iters``
    conjugate-gradient iterations from ``x = 0``, each one a no-op once the squared residual is below ``tol``.

    A fixed-length loop rather than ``jax.scipy.sparse.linalg.cg``: under ``jax.vmap`` over seeds, jax 0.11's
    solver returns steps of norm ~1e10 for TRPO's Fisher-vector product (jax 0.9 solves it), so every update
    was rejected by the line search; this loop gives the same answer under vmap as alone on both."""

    def step(_, carry):
        x, r, p, rr = carry
        ap = matvec(p)
        live = rr > tol
        alpha = jnp.where(live, rr / jnp.where(live, jnp.dot(p, ap), 1.0), 0.0)
        x, r = x + alpha * p, r - alpha * ap
        rr_new = jnp.dot(r, r)
        beta = jnp.where(live, rr_new / jnp.where(live, rr, 1.0), 0.0)
        return x, r, jnp.where(live, r + beta * p, p), jnp.where(live, rr_new, rr)

    return jax.lax.fori_loop(0, iters, step, (jnp.zeros_like(b), b, b, jnp.dot(b, b)))[0]


def make_agent(cfg: Config, env) -> onpolicy.Agent:
    """TRPO's learning step for a validated ``cfg`` and its training env: GAE(lambda) on the rollout, one
    natural-gradient step of the policy's parameters within the trust region, then ``vf_epochs`` epochs of the
    critic's own Adam on the value targets (the actor-critic's two parameter parts:
    :meth:`~purerl.networks.ActorCritic.split_params`)."""
    network = onpolicy.make_network(cfg, env)
    split, join = network.split_params, network.join_params
    critic_tx = optim.make_optimizer("adam", cfg.learning_rate, max_grad_norm=cfg.max_grad_norm)
    steps = cfg.backtrack_coef ** jnp.arange(cfg.line_search_steps, dtype=jnp.float32)

    def policy_step(policy_params, critic_params, batch):
        theta_old, unravel = ravel_pytree(policy_params)

        def dist(theta, obs):
            return network.apply(join(unravel(theta), critic_params), obs, method=type(network).policy)

        old = dist(jax.lax.stop_gradient(theta_old), batch["obs"])
        old_logp = old.log_prob(batch["action"])
        adv = standardize(batch["advantage"])

        def surrogate_at(theta):
            return surrogate(dist(theta, batch["obs"]).log_prob(batch["action"]), old_logp, adv)

        def mean_kl(theta):
            return jnp.mean(old.kl_divergence(dist(theta, batch["obs"])))

        loss_old, g = jax.value_and_grad(surrogate_at)(theta_old)
        fvp = lambda v: fisher_vector_product(mean_kl, theta_old, v, cfg.damping)  # noqa: E731
        direction = conjugate_gradient(fvp, g, cfg.cg_iters)
        shs = jnp.maximum(jnp.dot(direction, fvp(direction)), 1e-12)
        full_step = jnp.sqrt(2.0 * cfg.max_kl / shs) * direction
        candidates = theta_old + steps[:, None] * full_step[None, :]
        surr = jax.vmap(surrogate_at)(candidates)
        kls = jax.vmap(mean_kl)(candidates)
        ok = (surr > loss_old) & (kls <= cfg.max_kl) & jnp.isfinite(surr) & jnp.isfinite(kls)
        first = jnp.argmax(ok)
        accepted = ok.any()
        theta = jnp.where(accepted, candidates[first], theta_old)
        metrics = {"kl": jnp.where(accepted, kls[first], 0.0),
                   "surrogate_improvement": jnp.where(accepted, surr[first] - loss_old, 0.0),
                   "accepted": accepted.astype(jnp.float32),
                   "line_search_steps": jnp.where(accepted, first + 1, cfg.line_search_steps).astype(jnp.float32),
                   "entropy": jnp.mean(old.entropy()), "expected_improvement": jnp.dot(g, full_step)}
        return unravel(theta), metrics

    def fit_critic(policy_params, critic_params, opt_state, batch, key):
        def value_loss(cp, mb):
            v = network.apply(join(policy_params, cp), mb["obs"], method=type(network).value)
            return 0.5 * jnp.mean(jnp.square(v - mb["target"]))

        def step(carry, mb):
            cp, os = carry
            loss, grads = jax.value_and_grad(value_loss)(cp, mb)
            return optim.apply(critic_tx, cp, grads, os), loss

        def epoch(carry, k):
            return jax.lax.scan(step, carry, shuffled_minibatches(k, batch, cfg.vf_minibatches))

        (critic_params, opt_state), losses = jax.lax.scan(epoch, (critic_params, opt_state),
                                                          jax.random.split(key, cfg.vf_epochs))
        return critic_params, opt_state, jnp.mean(losses)

    def learn(state: onpolicy.TrainState, ro, key: jax.Array):
        traj = ro.traj
        _, adv, targets = onpolicy.values_and_gae(network, state.params, traj, cfg.gamma, cfg.gae_lambda)
        batch = flatten_time_env({"obs": traj.obs, "action": traj.action, "advantage": adv, "target": targets})
        policy_params, critic_params = split(state.params)
        new_policy, metrics = policy_step(policy_params, critic_params, batch)
        critic_params, opt_state, v_loss = fit_critic(policy_params, critic_params, state.opt_state,
                                                      {"obs": batch["obs"], "target": batch["target"]}, key)
        return state.replace(params=join(new_policy, critic_params), opt_state=opt_state), {
            **metrics, "value_loss": v_loss}

    init = onpolicy.network_init(network, lambda params: critic_tx.init(split(params)[1]))  # the critic's Adam
    return onpolicy.Agent(init=init, learn=learn, **onpolicy.actor_critic(network))


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build TRPO for ``config``: validated here, in Python, before anything is traced.

    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return onpolicy.build(config, make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole TRPO run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
