"""Parallelised Q-Network (PQN; Gallici et al., 2024, "Simplifying Deep Temporal Difference Learning"), one
fused program on the on-policy core.

    cfg = pqn.Config(env="CartPole-v1")
    result = jax.jit(pqn.make_train(cfg))(jax.random.key(0))
    result.metrics["episode_return"]      # [num_log_points]: one per update

Q-learning without a replay buffer or a target network: each update collects ``num_steps`` steps from
``num_envs`` envs with an epsilon-greedy policy of the current Q-network (a torso with LayerNorm and a linear
head, :class:`~purerl.networks.DiscreteQNetwork`), forms Q(lambda) returns over the rollout
(:func:`~purerl.core.trajectory.q_lambda`: bootstrapping from the true final observation on a time-limit
truncation and at the rollout's end, not on termination), then runs ``num_epochs`` epochs of
``num_minibatches`` shuffled minibatches on the squared (or Huber) error of ``Q(s, a)`` against those returns,
with global gradient-norm clipping and Adam or RAdam, the step size optionally decayed linearly to 0. Epsilon
falls linearly from ``epsilon_start`` to ``epsilon_finish`` over the first ``epsilon_anneal_fraction`` of the
updates. Discrete actions only; evaluation is greedy. There is one log point per update.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from purerl import dqn, envs
from purerl.config import check, check_leaf, leaf_field, never, static_field
from purerl.core import onpolicy, optim
from purerl.core.exploration import epsilon_greedy, greedy_noise, linear_schedule
from purerl.core.loop import Result, Trainer
from purerl.core.onpolicy import TrainState
from purerl.core.progress import ProgressFn
from purerl.core.trajectory import flatten_time_env, q_lambda, shuffled_minibatches
from purerl.networks import DiscreteQNetwork, torso_args

__all__ = ["Config", "TrainState", "Result", "TD_LOSSES", "epsilon", "loss", "make", "make_agent", "make_network",
           "make_train"]

TD_LOSSES = dqn.TD_LOSSES  # one TD loss for both Q-learning algorithms: dqn.loss


@struct.dataclass
class Config(onpolicy.OnPolicyConfig):
    """The shared on-policy fields (:class:`~purerl.core.onpolicy.OnPolicyConfig`) plus PQN's own."""

    # --- static: shapes and switches (change the compiled program) ---
    num_envs: int = static_field(32, "parallel environments")
    num_steps: int = static_field(64, "steps per env per update (the rollout the Q(lambda) returns run over)")
    hidden_sizes: tuple = static_field((128, 128), "MLP widths of the Q-network")
    activation: str = static_field("relu", "hidden activation: tanh, relu, elu, gelu, silu")
    layer_norm: bool = static_field(True, "LayerNorm before the activation of every hidden layer of the Q-network "
                                    "(PQN's stabiliser in place of a target network)")
    dueling: bool = static_field(False, "a dueling head (Wang et al., 2016): V(s) + A(s, a) - mean_a A(s, a)")
    num_epochs: int = static_field(4, "passes over each rollout")
    num_minibatches: int = static_field(16, "minibatches per epoch; must divide num_envs * num_steps")
    td_loss: str = static_field("squared", "squared (0.5 err^2) or huber (delta 1) error of Q(s, a) against its "
                                "Q(lambda) return", choices=TD_LOSSES)
    optimizer: str = static_field("adam", "adam, radam (purejaxql's) or rmsprop (decay 0.99)", choices=optim.OPTIMIZERS)
    anneal_lr: bool = static_field(True, "decay the learning rate linearly to 0 over the run")
    # --- leaves: numeric hyperparameters (traceable, vmappable) ---
    learning_rate: float = leaf_field(5e-4, "optimiser step size (initial value when annealed)")
    q_lambda: float = leaf_field(0.65, "lambda of the Q(lambda) returns: 0 one-step Q-learning, 1 Monte-Carlo "
                                 "returns bootstrapped at the rollout's end")
    epsilon_start: float = leaf_field(1.0, "exploration epsilon of the first update")
    epsilon_finish: float = leaf_field(0.05, "exploration epsilon after the anneal")
    epsilon_anneal_fraction: float = leaf_field(0.2, "fraction of the updates over which epsilon falls linearly "
                                                "from epsilon_start to epsilon_finish (0: epsilon_finish "
                                                "throughout)")
    max_grad_norm: float = leaf_field(10.0, "global gradient-norm clip")

    _applies = {"shared_network": (never, "PQN has one network, the Q-network"),
                **{name: (never, "it shapes continuous actions, and PQN's are discrete")
                   for name in ("state_dependent_std", "action_transform")}}

    def _check(self) -> None:
        super()._check()
        for name in ("num_epochs", "num_minibatches"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "use a positive integer")
        check(self.num_envs * self.num_steps % self.num_minibatches == 0, "num_minibatches", self.num_minibatches,
              f"it must divide num_envs * num_steps = {self.num_envs * self.num_steps}")
        for name in ("q_lambda", "epsilon_start", "epsilon_finish", "epsilon_anneal_fraction"):
            check_leaf(self, name, low=0.0, high=1.0)


def make_network(cfg: Config, env: envs.VecEnv) -> DiscreteQNetwork:
    """The Q-network for ``cfg`` (:func:`~purerl.networks.torso_args`: MLP, optionally after a CNN, with LayerNorm
    by default); ``env`` must have discrete actions."""
    if not env.is_discrete:
        raise ValueError(f"config field `env` = {cfg.env!r} has continuous actions; purerl.pqn needs discrete "
                         f"actions (one Q-value per action). Use a discrete env such as 'CartPole-v1', or ppo or sac "
                         f"for continuous actions.")
    return DiscreteQNetwork(num_actions=env.action_dim, dueling=cfg.dueling, **torso_args(cfg, env.obs_shape))


def epsilon(cfg: Config, update_step: Any) -> jax.Array:
    """The exploration epsilon of update ``update_step`` (counted from 0): ``epsilon_start`` moved linearly to
    ``epsilon_finish`` over ``epsilon_anneal_fraction * num_log_points`` updates, then held."""
    return linear_schedule(cfg.epsilon_start, cfg.epsilon_finish, update_step,
                           cfg.epsilon_anneal_fraction * cfg.num_log_points)


def loss(network: DiscreteQNetwork, params: Any, batch: dict, cfg: Config) -> tuple[jax.Array, dict]:
    """PQN's minibatch loss and its diagnostics: DQN's TD loss (:func:`purerl.dqn.loss`) of ``Q(s, a)`` against
    the Q(lambda) returns, the mean over the minibatch of ``0.5 (Q(s, a) - G)^2`` (``td_loss="squared"``) or of
    the Huber loss with delta 1 (``"huber"``: the same inside ``|err| <= 1``, ``|err| - 0.5`` outside).
    ``batch``: flat ``obs``, ``action`` (int) and ``target`` (the return ``G``, held fixed)."""
    q = network.apply(params, batch["obs"])
    q_taken = jnp.take_along_axis(q, batch["action"][..., None].astype(jnp.int32), axis=-1)[..., 0]
    td_loss = dqn.loss(q_taken, batch["target"], cfg.td_loss)
    return td_loss, {"td_loss": td_loss, "q": jnp.mean(q_taken)}


def make_agent(cfg: Config, env: envs.VecEnv) -> onpolicy.Agent:
    """PQN's agent for a validated ``cfg`` and its training env: epsilon-greedy acting with the Q-network at
    :func:`epsilon` of the update, Q(lambda) returns on the rollout, then ``num_epochs`` epochs of shuffled
    minibatches on :func:`loss`; evaluation is greedy."""
    network = make_network(cfg, env)
    tx = optim.make_optimizer(cfg.optimizer, cfg.learning_rate, max_grad_norm=cfg.max_grad_norm)
    q_values = lambda params, obs: network.apply(params, obs)  # noqa: E731

    def explore(state: TrainState, obs, noise, memory):
        return epsilon_greedy(q_values(state.params, obs), epsilon(cfg, state.update_step), noise), {}, memory

    def draw(k, batch_shape):
        return greedy_noise(k, batch_shape, env.action_dim)

    def minibatch_step(carry, mb):
        params, opt_state = carry
        grads, aux = jax.grad(loss, argnums=1, has_aux=True)(network, params, mb, cfg)
        params, opt_state = optim.apply(tx, params, grads, opt_state)
        aux["grad_norm"] = optax.global_norm(grads)
        return (params, opt_state), aux

    def learn(state: TrainState, ro, key: jax.Array) -> tuple[TrainState, dict]:
        traj = ro.traj
        with jax.named_scope("advantage"):
            next_q = jnp.max(q_values(state.params, traj.final_obs), axis=-1)
            targets = q_lambda(traj.reward, next_q, traj.terminated, traj.done, cfg.gamma, cfg.q_lambda)
        batch = flatten_time_env({"obs": traj.obs, "action": traj.action, "target": targets})

        def epoch(carry, k):
            return jax.lax.scan(minibatch_step, carry, shuffled_minibatches(k, batch, cfg.num_minibatches))

        with jax.named_scope("minibatch_updates"):
            (params, opt_state), aux = jax.lax.scan(epoch, (state.params, state.opt_state),
                                                    jax.random.split(key, cfg.num_epochs))
        return state.replace(params=params, opt_state=opt_state), {
            **{k: jnp.mean(v) for k, v in aux.items()}, "lambda_return": jnp.mean(targets),
            "epsilon": epsilon(cfg, state.update_step), "learning_rate": optim.learning_rate(state.opt_state)}

    def policy(state: TrainState, deterministic: bool = True):
        """Greedy, or (``deterministic=False``) epsilon-greedy at the epsilon of the state's next update."""

        def act(obs, key):
            q = q_values(state.params, obs)
            if deterministic:
                return jnp.argmax(q, axis=-1).astype(jnp.int32)
            return epsilon_greedy(q, epsilon(cfg, state.update_step), greedy_noise(key, q.shape[:-1], env.action_dim))

        return act

    return onpolicy.Agent(init=onpolicy.network_init(network, tx.init), explore=explore, learn=learn, draw=draw,
                          policy=policy)


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build PQN for ``config``: validated here, in Python, before anything is traced.

    ``progress``: optional host function for live progress (see :func:`purerl.core.loop.make_train_fn`).
    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return onpolicy.build(config, make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole PQN run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
