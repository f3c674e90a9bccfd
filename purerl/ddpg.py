"""Deep Deterministic Policy Gradient (Lillicrap et al., 2016), as one fused program.

    cfg = ddpg.Config(env="Pendulum-v1", total_timesteps=30_000)
    result = jax.jit(ddpg.make_train(cfg))(jax.random.key(0))
    result.metrics["eval_return"]          # [num_log_points]

A deterministic actor ``mu(s)`` in ``[-1, 1]^A`` explores with Gaussian or Ornstein-Uhlenbeck noise
(``exploration_noise``). Each gradient step regresses the critic on ``r + gamma (1 - terminated)
Q'(s', mu'(s'))`` with the target networks ``Q'``/``mu'``, then moves the actor along
``grad_a Q(s, a)|a=mu(s)`` through the updated critic, then Polyak-averages both targets.

TD3 (:mod:`purerl.td3`) is this algorithm with its three changes switched on; they are fields here too, so
each can be ablated on its own: ``num_critics=2`` (the target takes the critics' minimum; the actor follows
the first critic), ``policy_delay=d`` (actor and targets move once per ``d`` critic steps) and target policy
smoothing (``target_noise`` clipped to ``±target_noise_clip`` added to ``mu'(s')``).
The loop (replay, warm-up, evaluation) is :mod:`purerl.core.offpolicy`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh

from purerl.config import check, check_leaf, leaf_field, static_field
from purerl.core import offpolicy, optim
from purerl.core.loop import Result, Trainer
from purerl.core.progress import ProgressFn
from purerl.networks import DeterministicActor, QEnsemble, torso_args

__all__ = ["Config", "AgentState", "actor_loss", "make", "make_agent", "make_train", "smoothed_target_action",
           "Result"]


@struct.dataclass
class Config(offpolicy.OffPolicyConfig):
    exploration_noise: str = static_field("gaussian", "exploration noise: gaussian or ou (Ornstein-Uhlenbeck)",
                                          choices=offpolicy.EXPLORATION_NOISES)
    num_critics: int = static_field(1, "critics; with more than one the target takes their minimum (TD3)")
    policy_delay: int = static_field(1, "critic steps per actor and target step (TD3: 2)")
    exploration_std: float = leaf_field(0.1, "std of the exploration noise, in [-1, 1] action units")
    ou_theta: float = leaf_field(0.15, "Ornstein-Uhlenbeck mean reversion (exploration_noise=ou)")
    ou_dt: float = leaf_field(1e-2, "Ornstein-Uhlenbeck time step (exploration_noise=ou)")
    target_noise: float = leaf_field(0.0, "std of target policy smoothing noise (TD3: 0.2; 0 = off)")
    target_noise_clip: float = leaf_field(0.5, "smoothing noise is clipped to +-this")

    _applies = {name: (lambda c: c.exploration_noise == "ou", "it shapes the Ornstein-Uhlenbeck noise, used only "
                       "with exploration_noise='ou'") for name in ("ou_theta", "ou_dt")}

    def _check(self) -> None:
        super()._check()
        for name in ("num_critics", "policy_delay"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "use an integer >= 1")
        check_leaf(self, "exploration_std", low=0.0)
        check_leaf(self, "ou_theta", low=0.0)
        check_leaf(self, "ou_dt", low=0.0, low_open=True)
        check_leaf(self, "target_noise", low=0.0)
        check_leaf(self, "target_noise_clip", low=0.0)


@struct.dataclass
class AgentState:
    params: dict          # {"actor": ..., "critic": ...}
    target: dict          # target copies of both
    actor_opt: Any
    critic_opt: Any
    steps: jax.Array      # int32: critic (gradient) steps taken
    actor_steps: jax.Array


def smoothed_target_action(target_action: jax.Array, key: jax.Array, std: Any, clip: Any) -> jax.Array:
    """TD3's target policy smoothing: ``clip(mu'(s') + clip(N(0, std^2), -clip, clip), -1, 1)``."""
    noise = jnp.clip(std * jax.random.normal(key, target_action.shape), -clip, clip)
    return jnp.clip(target_action + noise, -1.0, 1.0)


def actor_loss(q: jax.Array) -> jax.Array:
    """``-mean Q_1(s, mu(s))``: the actor climbs the first critic (``q``: ``[C, B]``, the ensemble's values at
    the actor's actions)."""
    return -jnp.mean(q[0])


def make_agent(cfg: Config, env) -> offpolicy.Agent:
    """The learning rule for a validated ``cfg`` and the env's action size and observation shape (the training
    loop is added by :func:`make`)."""
    action_dim = env.action_dim
    torso = torso_args(cfg, env.obs_shape)
    actor = DeterministicActor(action_dim, **torso)
    critic = QEnsemble(cfg.num_critics, **torso)
    actor_tx = optim.make_optimizer("adam", cfg.actor_lr)
    critic_tx = optim.make_optimizer("adam", cfg.critic_lr)

    def init(key, obs):
        k_actor, k_critic = jax.random.split(key)
        params = {"actor": actor.init(k_actor, obs),
                  "critic": critic.init(k_critic, obs, jnp.zeros(obs.shape[:-1] + (action_dim,), jnp.float32))}
        zero = jnp.zeros((), jnp.int32)
        return AgentState(params, params, actor_tx.init(params["actor"]), critic_tx.init(params["critic"]), zero,
                          zero)

    def critic_loss_at(critic_params, target_q, batch):
        q = critic.apply(critic_params, batch["obs"], batch["action"])
        return offpolicy.critic_loss(q, target_q), q

    def actor_loss_at(actor_params, critic_params, obs):
        return actor_loss(critic.apply(critic_params, obs, actor.apply(actor_params, obs)))

    def learn(a: AgentState, batch: dict, key: jax.Array):
        next_action = smoothed_target_action(actor.apply(a.target["actor"], batch["next_obs"]), key,
                                             cfg.target_noise, cfg.target_noise_clip)  # identity at std 0
        next_q = jnp.min(critic.apply(a.target["critic"], batch["next_obs"], next_action), axis=0)
        target_q = offpolicy.td_target(batch["reward"], batch["terminated"], next_q, cfg.gamma, cfg.reward_scale)
        (c_loss, q), c_grads = jax.value_and_grad(critic_loss_at, has_aux=True)(a.params["critic"], target_q, batch)
        critic_params, critic_opt = optim.apply(critic_tx, a.params["critic"], c_grads, a.critic_opt)
        steps = a.steps + 1

        def actor_and_targets(_):
            a_loss, a_grads = jax.value_and_grad(actor_loss_at)(a.params["actor"], critic_params, batch["obs"])
            actor_params, actor_opt = optim.apply(actor_tx, a.params["actor"], a_grads, a.actor_opt)
            params = {"actor": actor_params, "critic": critic_params}
            return params, offpolicy.polyak(a.target, params, cfg.tau), actor_opt, a.actor_steps + 1, a_loss

        def critic_only(_):
            return ({"actor": a.params["actor"], "critic": critic_params}, a.target, a.actor_opt, a.actor_steps,
                    jnp.full((), jnp.nan, jnp.float32))

        if cfg.policy_delay == 1:
            params, target, actor_opt, actor_steps, a_loss = actor_and_targets(None)
        else:
            params, target, actor_opt, actor_steps, a_loss = jax.lax.cond(
                steps % cfg.policy_delay == 0, actor_and_targets, critic_only, None)
        aux = {"critic_loss": c_loss, "actor_loss": a_loss, "q": jnp.mean(q), "target_q": jnp.mean(target_q)}
        return AgentState(params, target, actor_opt, critic_opt, steps, actor_steps), aux

    def explore(a: AgentState, obs, key, explore_state):
        action, explore_state = offpolicy.explore_noise(cfg.exploration_noise, actor.apply(a.params["actor"], obs),
                                                        explore_state, key, cfg.exploration_std, cfg.ou_theta,
                                                        cfg.ou_dt)
        return action, {}, explore_state

    def act(a: AgentState, obs):
        return actor.apply(a.params["actor"], obs)

    return offpolicy.Agent(init, explore, learn, act)


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build the algorithm for ``config``: validated here, in Python, before anything is traced.

    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return offpolicy.build(config, make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
