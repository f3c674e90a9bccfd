"""Proximal Policy Optimization (Schulman et al., 2017), discrete and continuous, as one fused program.

    cfg = ppo.Config(env="CartPole-v1", total_timesteps=500_000)
    result = jax.jit(ppo.make_train(cfg))(jax.random.key(0))
    result.metrics["episode_return"]      # [num_log_points]: one per update

Each update collects ``num_steps`` steps from ``num_envs`` envs, computes GAE(λ) (bootstrapping through
time-limit truncation from the true final observation, not through termination), then runs
``num_epochs`` epochs of ``num_minibatches`` shuffled minibatches on the clipped surrogate with optional
value clipping, an entropy bonus, global gradient-norm clipping and Adam (eps 1e-5), with optional linear
learning-rate annealing and KL early stopping. There is one log point per update.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from purerl.config import check, check_leaf, leaf_field, static_field
from purerl.core import onpolicy, optim
from purerl.core.onpolicy import TrainState
from purerl.core.loop import Result, Trainer
from purerl.core.trajectory import flatten_time_env, shuffled_minibatches, standardize
from purerl.core.progress import ProgressFn
from purerl.networks import ActorCritic

__all__ = ["Config", "TrainState", "loss", "make", "make_agent", "make_train", "Result"]


@struct.dataclass
class Config(onpolicy.OnPolicyConfig):
    """The shared on-policy fields (:class:`~purerl.core.onpolicy.OnPolicyConfig`) plus PPO's own."""

    _recurrent_supported = True

    # --- static: shapes and switches (change the compiled program) ---
    num_epochs: int = static_field(4, "passes over each rollout")
    num_minibatches: int = static_field(4, "minibatches per epoch; must divide num_envs * num_steps")
    anneal_lr: bool = static_field(True, "decay the learning rate linearly to 0 over the run")
    normalize_advantages: bool = static_field(True, "standardise advantages per minibatch")
    clip_value: bool = static_field(True, "clip the value update around the rollout's values")
    # --- leaves: numeric hyperparameters (traceable, vmappable) ---
    learning_rate: float = leaf_field(2.5e-4, "Adam step size (initial value when annealed)")
    gae_lambda: float = leaf_field(0.95, "GAE lambda")
    clip_eps: float = leaf_field(0.2, "surrogate clipping epsilon")
    vf_clip_eps: float = leaf_field(0.2, "value clipping range (with clip_value)")
    ent_coef: float = leaf_field(0.01, "entropy bonus coefficient")
    vf_coef: float = leaf_field(0.5, "value loss coefficient")
    opt_eps: float = leaf_field(1e-5, "Adam epsilon")
    target_kl: float | None = leaf_field(None, "skip the rest of an update's minibatches once approx KL exceeds this (None: off)")

    _applies = {"vf_clip_eps": (lambda c: c.clip_value, "it is the value clipping range, used only with "
                                "clip_value=True")}

    def _check(self) -> None:
        super()._check()
        for name in ("num_epochs", "num_minibatches"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "use a positive integer")
        check(self.num_envs * self.num_steps % self.num_minibatches == 0, "num_minibatches", self.num_minibatches,
              f"it must divide num_envs * num_steps = {self.num_envs * self.num_steps}")
        if self.recurrent:
            check(self.num_envs % self.num_minibatches == 0, "num_minibatches", self.num_minibatches,
                  f"with recurrent=True a minibatch is whole env sequences, so it must divide num_envs = "
                  f"{self.num_envs}")
        check_leaf(self, "gae_lambda", low=0.0, high=1.0)
        check_leaf(self, "clip_eps", low=0.0, low_open=True)
        check_leaf(self, "vf_clip_eps", low=0.0, low_open=True)
        check_leaf(self, "ent_coef", low=0.0)
        check_leaf(self, "vf_coef", low=0.0)
        check_leaf(self, "opt_eps", low=0.0, low_open=True)
        check_leaf(self, "target_kl", low=0.0, low_open=True)


def loss(network: ActorCritic, params: Any, batch: dict, cfg: Config) -> tuple[jax.Array, dict]:
    """PPO's minibatch loss and its diagnostics: ``policy_loss + vf_coef * value_loss - ent_coef * entropy``.

    ``policy_loss = -mean(min(r A, clip(r, 1 - clip_eps, 1 + clip_eps) A))`` with ``r = pi(a|s) / pi_old(a|s)``
    and ``A`` the advantages (standardised over the minibatch with ``normalize_advantages``);
    ``value_loss = 0.5 mean((V - target)^2)``, with ``clip_value`` the larger of that and the error of the value
    clipped to ``old_value +- vf_clip_eps``; ``approx_kl = mean((r - 1) - log r)``; ``clip_frac`` the fraction
    of steps with ``|r - 1| > clip_eps``. ``batch``: flat ``obs``, ``action``, ``log_prob`` (behaviour),
    ``value`` (old), ``advantage``, ``target``; for a recurrent network time-major sequences ``[T, n]`` and
    ``memory0``, ``first`` (see :func:`purerl.core.onpolicy.forward`)."""
    pi, v = onpolicy.forward(network, params, batch)
    log_ratio = pi.log_prob(batch["action"]) - batch["log_prob"]
    ratio = jnp.exp(log_ratio)
    adv = standardize(batch["advantage"]) if cfg.normalize_advantages else batch["advantage"]
    clipped = jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps)
    policy_loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
    value_err = jnp.square(v - batch["target"])
    if cfg.clip_value:
        v_clip = batch["value"] + jnp.clip(v - batch["value"], -cfg.vf_clip_eps, cfg.vf_clip_eps)
        value_err = jnp.maximum(value_err, jnp.square(v_clip - batch["target"]))
    value_loss = 0.5 * jnp.mean(value_err)
    entropy = jnp.mean(pi.entropy())
    total = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
    return total, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                   "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
                   "clip_frac": jnp.mean((jnp.abs(ratio - 1.0) > cfg.clip_eps).astype(jnp.float32))}


def make_agent(cfg: Config, env) -> onpolicy.Agent:
    """PPO's learning step for a validated ``cfg`` and its training env (the loop is :func:`make`'s): GAE(lambda)
    on the rollout, then ``num_epochs`` epochs of shuffled minibatches on :func:`loss`."""
    network = onpolicy.make_network(cfg, env)
    tx = optim.make_optimizer("adam", cfg.learning_rate, max_grad_norm=cfg.max_grad_norm, eps=cfg.opt_eps)

    def minibatch_step(carry, mb):
        params, opt_state, stopped = carry
        if cfg.recurrent:
            mb = {k: v if k == "memory0" else jnp.swapaxes(v, 0, 1) for k, v in mb.items()}
        grads, aux = jax.grad(loss, argnums=1, has_aux=True)(network, params, mb, cfg)
        new_params, new_opt_state = optim.apply(tx, params, grads, opt_state)
        if cfg.target_kl is not None:  # KL early stop: keep the old params from the first violation on
            stopped = stopped | (aux["approx_kl"] > cfg.target_kl)
            keep = lambda new, old: jnp.where(stopped, old, new)  # noqa: E731
            new_params = jax.tree.map(keep, new_params, params)
            new_opt_state = jax.tree.map(keep, new_opt_state, opt_state)
        aux["grad_norm"] = optax.global_norm(grads)
        return (new_params, new_opt_state, stopped), aux

    def learn(state: TrainState, ro, key: jax.Array) -> tuple[TrainState, dict]:
        traj = ro.traj
        values, advantages, targets = onpolicy.values_and_gae(network, state.params, traj, cfg.gamma,
                                                              cfg.gae_lambda, memory0=state.memory)
        steps = {"obs": traj.obs, "action": traj.action, "log_prob": traj.extras["log_prob"], "value": values,
                 "advantage": advantages, "target": targets}
        if cfg.recurrent:  # minibatches of whole env sequences: env-major here, time-major again in minibatch_step
            steps["first"] = onpolicy.episode_starts(traj.done)
            batch = {**jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), steps), "memory0": state.memory}
        else:
            batch = flatten_time_env(steps)

        def epoch(carry, k):
            return jax.lax.scan(minibatch_step, carry, shuffled_minibatches(k, batch, cfg.num_minibatches))

        with jax.named_scope("minibatch_updates"):
            (params, opt_state, stopped), aux = jax.lax.scan(
                epoch, (state.params, state.opt_state, jnp.zeros((), bool)), jax.random.split(key, cfg.num_epochs))
        return state.replace(params=params, opt_state=opt_state), {
            **{k: jnp.mean(v) for k, v in aux.items()}, "learning_rate": optim.learning_rate(state.opt_state),
            "kl_stopped": stopped.astype(jnp.float32)}

    return onpolicy.Agent(init=onpolicy.network_init(network, tx.init), learn=learn, **onpolicy.actor_critic(network))


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build PPO for ``config``: validated here, in Python, before anything is traced.

    ``progress``: optional host function for live progress (see :func:`purerl.core.loop.make_train_fn`).
    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return onpolicy.build(config, make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole PPO run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
