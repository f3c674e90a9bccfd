"""Soft Actor-Critic (Haarnoja et al., 2018) with automatic temperature, as one fused program.

    cfg = sac.Config(env="Pendulum-v1", total_timesteps=20_000)
    result = jax.jit(sac.make_train(cfg))(jax.random.key(0))
    result.metrics["eval_return"]          # [num_log_points]: deterministic evaluation at each log point

The policy is a Gaussian squashed by tanh, ``a = tanh(u)``, ``u ~ N(mu(s), sigma(s))``, sampled with the
reparameterisation trick; its log-density carries the change-of-variables term
``-sum_i log(1 - tanh(u_i)^2)``. Two critics and their Polyak-averaged targets; the soft target is
``r + gamma (1 - terminated) (min_j Q'_j(s', a') - alpha log pi(a'|s'))`` with ``a' ~ pi(.|s')``. The actor
minimises ``E[alpha log pi(a|s) - min_j Q_j(s, a)]``. With ``autotune_alpha`` the temperature follows
``min_alpha E[-log(alpha) (log pi(a|s) + target_entropy)]`` (target ``-|A|`` by default): alpha rises while
the policy's entropy is below the target and falls while it is above.

Each gradient step computes the three losses on one sampled batch from the same parameters and takes one
Adam step on all of them (as the reference implementation does in a single graph run); the actor's and the
temperature's gradients do not flow into the critics. The losses are :func:`purerl.core.offpolicy.critic_loss`
(on :func:`~purerl.core.offpolicy.td_target`), :func:`actor_loss` and :func:`temperature_loss`; the loop
(replay, warm-up, evaluation) is :mod:`purerl.core.offpolicy`.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh

from purerl.config import check, check_leaf, leaf_field, static_field
from purerl.core import offpolicy, optim
from purerl.core.loop import Result, Trainer
from purerl.core.progress import ProgressFn
from purerl.networks import QEnsemble, TanhGaussianActor, tanh_gaussian, torso_args

__all__ = ["AgentState", "Config", "Result", "actor_loss", "make", "make_agent", "make_train", "temperature_loss"]


@struct.dataclass
class Config(offpolicy.OffPolicyConfig):
    autotune_alpha: bool = static_field(True, "tune the temperature toward target_entropy (else alpha is fixed)")
    num_critics: int = static_field(2, "critics in the ensemble; the target takes their minimum")
    actor_lr: float = leaf_field(1e-3, "actor Adam step size")
    critic_lr: float = leaf_field(1e-3, "critic Adam step size")
    alpha_lr: float = leaf_field(1e-3, "temperature Adam step size (with autotune_alpha)")
    alpha: float = leaf_field(1.0, "entropy temperature: fixed value, or the initial one when tuned")
    target_entropy: Optional[float] = leaf_field(None, "entropy target of the tuned temperature (None: -|A|)")

    _applies = {"alpha_lr": (lambda c: c.autotune_alpha, "it is the temperature's step size, used only with "
                             "autotune_alpha=True"),
                "target_entropy": (lambda c: c.autotune_alpha, "the temperature is tuned toward it only with "
                                   "autotune_alpha=True")}

    def _check(self) -> None:
        super()._check()
        check_leaf(self, "alpha_lr", low=0.0, low_open=True)
        check_leaf(self, "alpha", low=0.0, low_open=True)
        check_leaf(self, "target_entropy")
        check(self.num_critics >= 1, "num_critics", self.num_critics, "use an integer >= 1")


@struct.dataclass
class AgentState:
    params: dict        # {"actor": ..., "critic": ..., "log_alpha": scalar}
    target_critic: Any
    opt_state: Any
    steps: jax.Array    # int32: gradient steps taken


def actor_loss(log_prob: jax.Array, q: jax.Array, alpha: Any) -> jax.Array:
    """``mean(alpha * log pi(a|s) - Q(s, a))`` over actions ``a ~ pi(.|s)`` (reparameterised), ``Q`` the
    critics' minimum and ``alpha`` held fixed."""
    return jnp.mean(alpha * log_prob - q)


def temperature_loss(log_alpha: jax.Array, entropy: jax.Array, target_entropy: Any) -> jax.Array:
    """``-log(alpha) * (target_entropy - entropy)`` with the entropy held fixed: its gradient raises ``alpha``
    while the policy's entropy is below the target and lowers it while above."""
    return -log_alpha * jax.lax.stop_gradient(target_entropy - entropy)


def make_agent(cfg: Config, env) -> offpolicy.Agent:
    """The learning rule for a validated ``cfg`` and the env's action size and observation shape (the training
    loop is added by :func:`make`)."""
    action_dim = env.action_dim
    torso = torso_args(cfg, env.obs_shape)
    actor = TanhGaussianActor(action_dim, **torso)
    critic = QEnsemble(cfg.num_critics, **torso)
    target_entropy = -float(action_dim) if cfg.target_entropy is None else cfg.target_entropy
    tx = optim.by_group(actor=optim.make_optimizer("adam", cfg.actor_lr),
                        critic=optim.make_optimizer("adam", cfg.critic_lr),
                        log_alpha=optim.make_optimizer("adam", cfg.alpha_lr if cfg.autotune_alpha else 0.0))

    def init(key, obs):
        k_actor, k_critic = jax.random.split(key)
        action = jnp.zeros(obs.shape[:-1] + (action_dim,), jnp.float32)
        params = {"actor": actor.init(k_actor, obs), "critic": critic.init(k_critic, obs, action),
                  "log_alpha": jnp.log(jnp.asarray(cfg.alpha, jnp.float32))}
        return AgentState(params, params["critic"], tx.init(params), jnp.zeros((), jnp.int32))

    def policy(actor_params, obs):
        return tanh_gaussian(*actor.apply(actor_params, obs))

    def loss_fn(params, target_critic, batch, key):
        k_next, k_pi = jax.random.split(key)
        alpha = jnp.exp(jax.lax.stop_gradient(params["log_alpha"]))
        with jax.named_scope("critic"):
            actor_params = jax.lax.stop_gradient(params["actor"])
            next_action, next_logp = policy(actor_params, batch["next_obs"]).sample_and_log_prob(seed=k_next)
            next_q = jnp.min(critic.apply(target_critic, batch["next_obs"], next_action), axis=0)
            target = offpolicy.td_target(batch["reward"], batch["terminated"], next_q - alpha * next_logp,
                                         cfg.gamma, cfg.reward_scale)
            q = critic.apply(params["critic"], batch["obs"], batch["action"])
            c_loss = offpolicy.critic_loss(q, target)
        with jax.named_scope("actor"):
            action, logp = policy(params["actor"], batch["obs"]).sample_and_log_prob(seed=k_pi)
            q_pi = jnp.min(critic.apply(jax.lax.stop_gradient(params["critic"]), batch["obs"], action), axis=0)
            a_loss = actor_loss(logp, q_pi, alpha)
            entropy = -jnp.mean(logp)
        with jax.named_scope("temperature"):
            t_loss = temperature_loss(params["log_alpha"], entropy, target_entropy)
        aux = {"critic_loss": c_loss, "actor_loss": a_loss, "alpha_loss": t_loss,
               "q": jnp.mean(q), "entropy": entropy, "alpha": alpha}
        return c_loss + a_loss + t_loss, aux

    def learn(a: AgentState, batch: dict, key: jax.Array):
        grads, aux = jax.grad(loss_fn, has_aux=True)(a.params, a.target_critic, batch, key)
        with jax.named_scope("optimizer"):
            params, opt_state = optim.apply(tx, a.params, grads, a.opt_state)
        with jax.named_scope("targets"):
            target = offpolicy.polyak(a.target_critic, params["critic"], cfg.tau)
        return AgentState(params, target, opt_state, a.steps + 1), aux

    def explore(a: AgentState, obs, key, explore_state):  # SAC's policy samples; no exploration state
        return policy(a.params["actor"], obs).sample(seed=key), {}, explore_state

    def act(a: AgentState, obs):
        return jnp.tanh(actor.apply(a.params["actor"], obs)[0])

    return offpolicy.Agent(init, explore, learn, act)


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build SAC for ``config``: validated here, in Python, before anything is traced.

    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return offpolicy.build(config, make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole SAC run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
