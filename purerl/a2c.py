"""Advantage Actor-Critic, synchronous (A2C; Mnih et al., 2016, as a synchronous variant), one fused program.

    cfg = a2c.Config(env="CartPole-v1")
    result = jax.jit(a2c.make_train(cfg))(jax.random.key(0))

Every update runs ``num_steps`` (5) steps in each of ``num_envs`` envs, forms n-step returns that bootstrap
from ``V`` at the end of the rollout (``gae_lambda=1``, the default) or GAE(lambda) advantages, and takes one
gradient step on ``-log pi(a|s) A + vf_coef/2 (V(s) - R)^2 - ent_coef H`` averaged over the batch, with
global-norm clipping and RMSProp (decay 0.99, eps 1e-5) or Adam. ``shared_network`` gives one torso with
separate policy and value heads, as in the original paper. A3C (:mod:`purerl.a3c`) reuses
its learning step (:func:`make_agent`, :func:`gradient`) for its workers.
"""

from __future__ import annotations

from typing import Any

import jax
import optax
from flax import struct
from jax.sharding import Mesh

from purerl.config import check_leaf, leaf_field, static_field
from purerl.core import onpolicy, optim
from purerl.core.loop import Result, Trainer
from purerl.core.trajectory import flatten_time_env
from purerl.core.progress import ProgressFn

__all__ = ["Config", "Result", "gradient", "make", "make_agent", "make_train"]


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


def gradient(network: Any, params: Any, traj: Any, cfg: Config, memory0: Any = None) -> tuple[Any, dict]:
    """``(grads, metrics)``: the gradient at ``params`` of A2C's loss
    (:func:`~purerl.core.onpolicy.policy_gradient_loss` on n-step or GAE(lambda) advantages) on a rollout ``traj``
    collected with ``params``; ``memory0`` is the memory a recurrent policy's rollout started from (the whole
    rollout is then one time-major sequence batch replayed from it)."""
    _, adv, targets = onpolicy.values_and_gae(network, params, traj, cfg.gamma, cfg.gae_lambda, memory0=memory0)
    steps = {"obs": traj.obs, "action": traj.action, "advantage": adv, "target": targets}
    if memory0 is None:
        batch = flatten_time_env(steps)
    else:
        batch = {**steps, "memory0": memory0, "first": onpolicy.episode_starts(traj.done)}
    grads, aux = jax.grad(onpolicy.policy_gradient_loss, argnums=1, has_aux=True)(
        network, params, batch, cfg.ent_coef, cfg.vf_coef, cfg.normalize_advantages)
    aux["grad_norm"] = optax.global_norm(grads)
    return grads, aux


def make_agent(cfg: Config, env) -> onpolicy.Agent:
    """A2C's learning step for a validated ``cfg`` and its training env: the :func:`gradient` at the parameters
    the rollout was collected with (its ``behaviour``), applied to the state's parameters by RMSProp or Adam.
    In A2C the two are the same; A3C's workers collect with older ones."""
    network = onpolicy.make_network(cfg, env)
    tx = optim.make_optimizer(cfg.optimizer, cfg.learning_rate, max_grad_norm=cfg.max_grad_norm, eps=cfg.opt_eps)

    def learn(state: onpolicy.TrainState, ro, key: jax.Array):
        grads, aux = gradient(network, ro.behaviour.params, ro.traj, cfg, ro.behaviour.memory)
        params, opt_state = optim.apply(tx, state.params, grads, state.opt_state)
        return state.replace(params=params, opt_state=opt_state), aux

    return onpolicy.Agent(init=onpolicy.network_init(network, tx.init), learn=learn, **onpolicy.actor_critic(network))


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build A2C for ``config``: validated here, in Python, before anything is traced.

    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return onpolicy.build(config, make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole A2C run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
