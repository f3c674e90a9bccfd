"""Advantage Actor-Critic, synchronous (A2C; Mnih et al., 2016, as a synchronous variant), one fused program.

    cfg = a2c.Config(env="CartPole-v1")
    result = jax.jit(a2c.make_train(cfg))(jax.random.key(0))

Every update runs ``num_steps`` (5) steps in each of ``num_envs`` envs, forms n-step returns that bootstrap
from ``V`` at the end of the rollout (``gae_lambda=1``, the default) or GAE(lambda) advantages, and takes one
gradient step on ``-log pi(a|s) A + vf_coef/2 (V(s) - R)^2 - ent_coef H`` averaged over the batch, with
global-norm clipping and RMSProp (decay 0.99, eps 1e-5) or Adam. ``shared_network`` gives one torso with
separate policy and value heads, as in the original paper. A3C (:mod:`purerl.a3c`) reuses
:func:`make_learner` for its workers.
"""

from __future__ import annotations

import jax
import optax
from flax import struct
from jax.sharding import Mesh

from purerl.config import check_leaf, leaf_field, static_field
from purerl.core import onpolicy, optim
from purerl.core.loop import Result, Trainer
from purerl.core.trajectory import flatten_time_env
from purerl.core.progress import ProgressFn

__all__ = ["Config", "Result", "make", "make_learner", "make_train"]


@struct.dataclass
class Config(onpolicy.OnPolicyConfig):
    _recurrent_supported = True

    num_envs: int = static_field(8, "parallel environments")
    num_steps: int = static_field(5, "steps per env per update (the n of n-step returns)")
    optimizer: str = static_field("rmsprop", "rmsprop (decay 0.99), adam or radam", choices=optim.OPTIMIZERS)
    normalize_advantages: bool = static_field(False, "standardise advantages per batch")
    learning_rate: float = leaf_field(7e-4, "optimiser step size")
    gae_lambda: float = leaf_field(1.0, "GAE lambda; 1 gives n-step returns bootstrapped at the rollout end")
    ent_coef: float = leaf_field(0.0, "entropy bonus coefficient")
    vf_coef: float = leaf_field(0.5, "value loss coefficient")
    opt_eps: float = leaf_field(1e-5, "optimiser epsilon (of RMSProp or Adam)")

    def _check(self) -> None:
        super()._check()
        check_leaf(self, "gae_lambda", low=0.0, high=1.0)
        check_leaf(self, "ent_coef", low=0.0)
        check_leaf(self, "vf_coef", low=0.0)
        check_leaf(self, "opt_eps", low=0.0, low_open=True)


@struct.dataclass
class Learner:
    """One actor-critic learner on one batch of envs: ``gradient(params, env_state, obs, key, memory=None) ->
    (grads, aux, rollout)`` runs a rollout with ``params`` (a :class:`~purerl.core.trajectory.Rollout`; ``memory``
    a recurrent network's) and returns the loss gradient at ``params``; ``apply(params, opt_state, grads, step)``
    takes optimiser step number ``step`` (which sets the annealed step size) at (possibly other) parameters."""

    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    gradient: callable = struct.field(pytree_node=False)
    apply: callable = struct.field(pytree_node=False)


def make_learner(cfg: Config, env, network, updates_per_round: int = 1, shard=None) -> Learner:
    shard = shard or onpolicy.env_splitter(cfg, None)
    tx = optim.make_optimizer(cfg.optimizer, cfg.learning_rate, max_grad_norm=cfg.max_grad_norm, eps=cfg.opt_eps)
    total_steps = cfg.num_updates * updates_per_round

    def gradient(params, env_state, obs, key, memory=None):
        ro = onpolicy.collect(env, network, params, env_state, obs, key, cfg.num_steps, cfg.scan_unroll, shard,
                              memory=memory)
        traj = ro.traj
        _, adv, targets = onpolicy.values_and_gae(network, params, traj, cfg.gamma, cfg.gae_lambda, memory0=memory)
        steps = {"obs": traj.obs, "action": traj.action, "advantage": adv, "target": targets}
        if memory is None:
            batch = flatten_time_env(steps)
        else:  # the whole rollout as one time-major sequence batch, replayed from its starting memory
            batch = {**steps, "memory0": memory, "first": onpolicy.episode_starts(traj.done)}
        grads, aux = jax.grad(onpolicy.policy_gradient_loss, argnums=1, has_aux=True)(
            network, params, batch, cfg.ent_coef, cfg.vf_coef, cfg.normalize_advantages)
        aux["grad_norm"] = optax.global_norm(grads)
        return grads, aux, ro

    def apply(params, opt_state, grads, step):
        opt_state, _ = optim.annealed(opt_state, cfg.learning_rate, step, total_steps, cfg.anneal_lr)
        return optim.apply(tx, params, grads, opt_state)

    return Learner(tx, gradient, apply)


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build A2C for ``config``: validated here, in Python, before anything is traced.

    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    s = onpolicy.setup(config, mesh, config_cls=Config)
    cfg, env, network, shard = s.cfg, s.env, s.network, s.shard
    learner = make_learner(cfg, env, network, shard=shard)
    init = onpolicy.make_init(env, network, learner.tx.init, shard)

    def update(state: onpolicy.TrainState):
        key, k_roll = jax.random.split(state.key)
        grads, aux, ro = learner.gradient(state.params, state.env_state, state.obs, k_roll, state.memory)
        params, opt_state = learner.apply(state.params, state.opt_state, grads, state.update_step)
        state, metrics = onpolicy.end_update(state, ro.tally, cfg.steps_per_update, params=params,
                                             opt_state=opt_state, env_state=ro.env_state, obs=ro.obs, key=key,
                                             memory=ro.memory)
        return state, {**metrics, **aux}

    return onpolicy.make_trainer(cfg, env, network, init=init, update=update, progress=progress,
                            progress_metrics=progress_metrics)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole A2C run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train

