"""Proximal Policy Optimization (Schulman et al., 2017), discrete and continuous, as one fused program.

    cfg = ppo.Config(env="CartPole-v1", total_timesteps=500_000)
    result = jax.jit(ppo.make_train(cfg))(jax.random.key(0))
    result.metrics["episode_return"]      # [num_updates]

Each update collects ``num_steps`` steps from ``num_envs`` envs, computes GAE(λ) (bootstrapping through
time-limit truncation from the true final observation, not through termination), then runs
``num_epochs`` epochs of ``num_minibatches`` shuffled minibatches on the clipped surrogate with optional
value clipping, an entropy bonus, global gradient-norm clipping and Adam (eps 1e-5), with optional linear
learning-rate annealing and KL early stopping. There is one log point per update.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from purerl import envs
from purerl.config import check, check_leaf, leaf_field, static_field
from purerl.core.evaluation import evaluate_policy
from purerl.core.loop import Result, Trainer, make_train_fn
from purerl.core.minibatch import flatten_time_env, shuffled_minibatches
from purerl.core.progress import ProgressFn
from purerl.core.returns import gae
from purerl.core.rollout import rollout
from purerl.networks import ACTIVATIONS, ActorCritic

__all__ = ["Config", "TrainState", "make", "make_train", "Result"]


@struct.dataclass
class Config:
    # --- static: shapes and switches (change the compiled program) ---
    env: str = static_field("CartPole-v1", "environment id: a gymnax name or brax/<name>")
    env_backend: Optional[str] = static_field(None, "Brax physics backend (generalized, positional, spring, mjx)")
    episode_length: int = static_field(1000, "time limit of Brax episodes (gymnax envs carry their own)")
    total_timesteps: int = static_field(500_000, "env steps in the whole run (rounded down to whole updates)")
    num_envs: int = static_field(4, "parallel environments")
    num_steps: int = static_field(128, "steps per env per update (rollout length)")
    num_epochs: int = static_field(4, "passes over each rollout")
    num_minibatches: int = static_field(4, "minibatches per epoch; must divide num_envs * num_steps")
    hidden_sizes: tuple = static_field((64, 64), "MLP widths of actor and critic")
    activation: str = static_field("tanh", "hidden activation: tanh, relu, elu, gelu, silu")
    shared_network: bool = static_field(False, "one torso for policy and value heads")
    state_dependent_std: bool = static_field(False, "Gaussian log-std as a network output instead of a parameter")
    anneal_lr: bool = static_field(True, "decay the learning rate linearly to 0 over the run")
    normalize_advantages: bool = static_field(True, "standardise advantages per minibatch")
    clip_value: bool = static_field(True, "clip the value update around the rollout's values")
    normalize_obs: bool = static_field(False, "running mean/std observation normalisation")
    scale_reward: bool = static_field(False, "divide rewards by the running std of discounted returns")
    action_transform: str = static_field("clip", "continuous actions: clip to bounds or rescale from [-1, 1]")
    unroll: int = static_field(1, "lax.scan unroll of the rollout (speed knob, same results)")
    # --- leaves: numeric hyperparameters (traceable, vmappable) ---
    learning_rate: float = leaf_field(2.5e-4, "Adam step size (initial value when annealed)")
    gamma: float = leaf_field(0.99, "discount factor")
    gae_lambda: float = leaf_field(0.95, "GAE lambda")
    clip_eps: float = leaf_field(0.2, "surrogate clipping epsilon")
    vf_clip_eps: float = leaf_field(0.2, "value clipping range (with clip_value)")
    ent_coef: float = leaf_field(0.01, "entropy bonus coefficient")
    vf_coef: float = leaf_field(0.5, "value loss coefficient")
    max_grad_norm: float = leaf_field(0.5, "global gradient-norm clip")
    adam_eps: float = leaf_field(1e-5, "Adam epsilon")
    target_kl: Optional[float] = leaf_field(None, "skip the rest of an update's minibatches once approx KL exceeds this (None: off)")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    def validate(self) -> "Config":
        for name in ("num_envs", "num_steps", "num_epochs", "num_minibatches", "total_timesteps",
                     "episode_length", "unroll"):
            v = getattr(self, name)
            check(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name, v, "use a positive integer")
        check(self.batch_size % self.num_minibatches == 0, "num_minibatches", self.num_minibatches,
              f"it must divide num_envs * num_steps = {self.batch_size}")
        check(self.num_updates >= 1, "total_timesteps", self.total_timesteps,
              f"it must be at least num_envs * num_steps = {self.batch_size} (one update)")
        check(self.activation in ACTIVATIONS, "activation", self.activation, f"use one of {sorted(ACTIVATIONS)}")
        check(isinstance(self.hidden_sizes, tuple) and len(self.hidden_sizes) >= 1
              and all(isinstance(h, int) and h > 0 for h in self.hidden_sizes),
              "hidden_sizes", self.hidden_sizes, "use a tuple of positive ints, e.g. (64, 64)")
        check(self.action_transform in envs.ACTION_TRANSFORMS, "action_transform", self.action_transform,
              f"use one of {envs.ACTION_TRANSFORMS}")
        check_leaf(self, "learning_rate", low=0.0, low_open=True)
        check_leaf(self, "gamma", low=0.0, high=1.0)
        check_leaf(self, "gae_lambda", low=0.0, high=1.0)
        check_leaf(self, "clip_eps", low=0.0, low_open=True)
        check_leaf(self, "vf_clip_eps", low=0.0, low_open=True)
        check_leaf(self, "ent_coef", low=0.0)
        check_leaf(self, "vf_coef", low=0.0)
        check_leaf(self, "max_grad_norm", low=0.0, low_open=True)
        check_leaf(self, "adam_eps", low=0.0, low_open=True)
        check_leaf(self, "target_kl", low=0.0, low_open=True)
        return self


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    env_state: Any            # includes the observation-normaliser statistics when normalize_obs
    obs: jax.Array
    key: jax.Array
    update_step: jax.Array    # int32 scalar: updates done so far
    last_return: jax.Array    # latest mean episode return (carried when no episode finished)
    last_length: jax.Array


def _make_env(cfg: Config, num_envs: int, train: bool) -> envs.VecEnv:
    return envs.make(cfg.env, num_envs, backend=cfg.env_backend, episode_length=cfg.episode_length,
                     action_transform=cfg.action_transform, normalize_obs=cfg.normalize_obs and train,
                     scale_reward=cfg.scale_reward and train, gamma=cfg.gamma)


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = ()) -> Trainer:
    """Build PPO for ``config``: validated here, in Python, before anything is traced.

    ``progress``: optional host function for live progress (see :func:`purerl.core.loop.make_train_fn`)."""
    cfg = config.validate()
    env = _make_env(cfg, cfg.num_envs, train=True)
    network = ActorCritic(action_dim=env.action_dim, discrete=env.is_discrete, hidden_sizes=cfg.hidden_sizes,
                          activation=cfg.activation, shared=cfg.shared_network,
                          state_dependent_std=cfg.state_dependent_std)
    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.scale_by_adam(eps=cfg.adam_eps))
    num_updates = cfg.num_updates

    def init(key: jax.Array) -> TrainState:
        k_params, k_env, k_state = jax.random.split(key, 3)
        env_state, obs = env.reset(k_env)
        params = network.init(k_params, obs)
        nan = jnp.full((), jnp.nan, jnp.float32)
        return TrainState(params, tx.init(ravel_pytree(params)[0]), env_state, obs, k_state, jnp.zeros((), jnp.int32), nan, nan)

    def loss_fn(flat_params, unravel, mb):
        params = unravel(flat_params)
        pi, v = network.apply(params, mb["obs"])
        log_prob = pi.log_prob(mb["action"])
        log_ratio = log_prob - mb["log_prob"]
        ratio = jnp.exp(log_ratio)
        adv = mb["advantage"]
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        clipped = jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps)
        policy_loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
        value_err = jnp.square(v - mb["target"])
        if cfg.clip_value:
            v_clip = mb["value"] + jnp.clip(v - mb["value"], -cfg.vf_clip_eps, cfg.vf_clip_eps)
            value_err = jnp.maximum(value_err, jnp.square(v_clip - mb["target"]))
        value_loss = 0.5 * jnp.mean(value_err)
        entropy = jnp.mean(pi.entropy())
        loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
        aux = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
               "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
               "clip_frac": jnp.mean((jnp.abs(ratio - 1.0) > cfg.clip_eps).astype(jnp.float32))}
        return loss, aux

    def update(state: TrainState) -> tuple[TrainState, dict]:
        key, k_roll, k_epochs = jax.random.split(state.key, 3)

        def policy(obs, k):
            pi = network.apply(state.params, obs, method=ActorCritic.policy)
            action = pi.sample(seed=k)
            return action, {"log_prob": pi.log_prob(action)}

        env_state, obs, traj, tally = rollout(env, policy, state.env_state, state.obs, k_roll, cfg.num_steps,
                                              unroll=cfg.unroll)
        # Values in two large batched calls rather than one per step: V(obs_t) and V(final_obs_t).
        value_fn = lambda o: network.apply(state.params, o, method=ActorCritic.value)  # noqa: E731
        values, next_values = value_fn(traj.obs), value_fn(traj.final_obs)
        advantages, targets = gae(traj.reward, values, next_values, traj.terminated, traj.done,
                                  cfg.gamma, cfg.gae_lambda)
        batch = flatten_time_env({"obs": traj.obs, "action": traj.action, "log_prob": traj.extras["log_prob"],
                                  "value": values, "advantage": advantages, "target": targets})
        frac = 1.0 - state.update_step.astype(jnp.float32) / num_updates
        lr = cfg.learning_rate * frac if cfg.anneal_lr else cfg.learning_rate

        # The optimiser works on one flat parameter vector: a handful of large element-wise kernels
        # instead of a few per parameter leaf, which is most of a minibatch step's cost on CPU.
        flat_params, unravel = ravel_pytree(state.params)

        def minibatch_step(carry, mb):
            params, opt_state, stopped = carry
            (_, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, unravel, mb)
            updates, new_opt_state = tx.update(grads, opt_state, params)
            new_params = params - lr * updates
            if cfg.target_kl is not None:  # KL early stop: keep the old params from the first violation on
                stopped = stopped | (aux["approx_kl"] > cfg.target_kl)
                keep = lambda new, old: jnp.where(stopped, old, new)  # noqa: E731
                new_params = jax.tree.map(keep, new_params, params)
                new_opt_state = jax.tree.map(keep, new_opt_state, opt_state)
            aux["grad_norm"] = optax.global_norm(grads)
            return (new_params, new_opt_state, stopped), aux

        def epoch(carry, k):
            return jax.lax.scan(minibatch_step, carry, shuffled_minibatches(k, batch, cfg.num_minibatches))

        (params, opt_state, stopped), aux = jax.lax.scan(
            epoch, (flat_params, state.opt_state, jnp.zeros((), bool)), jax.random.split(k_epochs, cfg.num_epochs))
        params = unravel(params)
        last_return = tally.mean_return(state.last_return)
        last_length = tally.mean_length(state.last_length)
        step = state.update_step + 1
        metrics = {k: jnp.mean(v) for k, v in aux.items()}
        metrics.update(episode_return=last_return, episode_length=last_length, episodes=tally.count,
                       env_steps=step * cfg.batch_size, learning_rate=jnp.asarray(lr, jnp.float32),
                       kl_stopped=stopped.astype(jnp.float32))
        new_state = TrainState(params, opt_state, env_state, obs, key, step, last_return, last_length)
        return new_state, metrics

    def evaluate(state: TrainState, key: jax.Array, num_episodes: int = 10, deterministic: bool = True) -> dict:
        """Return statistics over ``num_episodes`` episodes with the policy's mode (or samples)."""
        eval_env = _make_env(cfg, num_episodes, train=False)

        def act(obs, k):
            pi = network.apply(state.params, obs, method=ActorCritic.policy)
            return pi.mode() if deterministic else pi.sample(seed=k)

        return evaluate_policy(eval_env, act, key, env.obs_normalizer(state.env_state))

    return Trainer(cfg, env, num_updates, cfg.batch_size, init, update, make_train_fn(init, update, num_updates, progress, progress_metrics),
                   evaluate)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole PPO run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
