"""What the on-policy algorithms (REINFORCE, A2C, A3C, TRPO, PPO) share, written once.

* :class:`OnPolicyConfig`: the fields every on-policy algorithm has (env, rollout shape, network, the
  env-side normalisation switches, discount, learning rate, gradient clipping), with their validation.
* :class:`TrainState` and :func:`make_init`: parameters, optimiser state, env state and counters.
* :func:`make_env` / :func:`make_network`: the wrapped vector env and the actor-critic for a config.
* :func:`env_splitter`: optional splitting of the env batch over devices (one agent, several devices).
* :func:`collect`: one rollout with the current stochastic policy (actions and their log-probabilities).
* :func:`values_and_gae`: ``V(obs)``, ``V(final_obs)`` in two batched calls, then GAE(lambda) targets.
* :func:`policy_gradient_loss`: score-function policy loss with weights, value regression, entropy bonus.
* :func:`make_policy` / :func:`evaluation`: the trained policy on raw observations and its evaluation.
"""

from __future__ import annotations

from typing import Any

from typing import Callable

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh

from purerl import envs
from purerl.config import Validated, check, check_env_fields, check_leaf, leaf_field, static_field
from purerl.core.evaluation import make_evaluate
from purerl.core.returns import gae
from purerl.core.rollout import rollout
from purerl.core.sharding import constrain_envs
from purerl.networks import ACTIVATIONS, ActorCritic, policy_noise, sample_with

__all__ = ["OnPolicyConfig", "TrainState", "collect", "env_splitter", "make_init", "make_env", "make_network",
           "policy_gradient_loss", "setup", "values_and_gae"]

@struct.dataclass
class OnPolicyConfig(Validated):
    """Fields shared by the on-policy algorithms (each algorithm's Config extends this one and may
    re-declare a field to change its default)."""

    # --- static ---
    env: str = static_field("CartPole-v1", "environment id: a gymnax name, brax/<name>, "
                                 "playground/<name> or craftax/<name>")
    env_backend: str | None = static_field(None, "physics: Brax pipeline (generalized, positional, spring, mjx) or "
                                 "Playground MJX impl (jax, the default, or warp)")
    episode_length: int = static_field(1000, "time limit of Brax and Playground "
                                 "episodes (gymnax and Craftax envs carry their own)")
    total_timesteps: int = static_field(500_000, "env steps in the whole run (rounded down to whole updates)")
    num_envs: int = static_field(4, "parallel environments")
    num_steps: int = static_field(128, "steps per env per update (rollout length)")
    hidden_sizes: tuple = static_field((64, 64), "MLP widths of actor and critic")
    activation: str = static_field("tanh", "hidden activation: tanh, relu, elu, gelu, silu")
    shared_network: bool = static_field(False, "one torso for policy and value heads")
    state_dependent_std: bool = static_field(False, "Gaussian log-std as a network output instead of a parameter")
    normalize_obs: bool = static_field(False, "running mean/std observation normalisation")
    scale_reward: bool = static_field(False, "divide rewards by the running std of discounted returns")
    action_transform: str = static_field("clip", "continuous actions: clip to bounds or rescale from [-1, 1]")
    unroll: int = static_field(1, "lax.scan unroll of the rollout (speed knob, same results)")
    anneal_lr: bool = static_field(False, "decay the learning rate linearly to 0 over the run")
    # --- leaves ---
    learning_rate: float = leaf_field(2.5e-4, "optimiser step size")
    gamma: float = leaf_field(0.99, "discount factor")
    max_grad_norm: float = leaf_field(0.5, "global gradient-norm clip")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    def _check(self) -> None:
        for name in ("num_envs", "num_steps", "total_timesteps", "episode_length", "unroll"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "use a positive integer")
        check(self.num_updates >= 1, "total_timesteps", self.total_timesteps,
              f"it must be at least num_envs * num_steps = {self.batch_size} (one update)")
        check(self.activation in ACTIVATIONS, "activation", self.activation, f"use one of {sorted(ACTIVATIONS)}")
        check(len(self.hidden_sizes) >= 1 and all(h > 0 for h in self.hidden_sizes), "hidden_sizes",
              self.hidden_sizes, "use a tuple of positive ints, e.g. (64, 64)")
        check(self.action_transform in envs.ACTION_TRANSFORMS, "action_transform", self.action_transform,
              f"use one of {envs.ACTION_TRANSFORMS}")
        check_leaf(self, "learning_rate", low=0.0, low_open=True)
        check_leaf(self, "gamma", low=0.0, high=1.0)
        check_leaf(self, "max_grad_norm", low=0.0, low_open=True)


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

    def after(self, params, opt_state, env_state, obs, key, tally) -> tuple[TrainState, dict]:
        """The next state after one update, and the episode metrics every algorithm reports."""
        last_return = tally.mean_return(self.last_return)
        last_length = tally.mean_length(self.last_length)
        state = self.replace(params=params, opt_state=opt_state, env_state=env_state, obs=obs, key=key,
                             update_step=self.update_step + 1, last_return=last_return, last_length=last_length)
        return state, {"episode_return": last_return, "episode_length": last_length, "episodes": tally.count}


def env_splitter(cfg: OnPolicyConfig, mesh: Mesh | None) -> Callable[..., Any]:
    """``shard(tree, axis=0)``: marks the env axis as split over ``mesh`` (:mod:`purerl.core.sharding`);
    the identity without a mesh. ``num_envs`` must be a multiple of the device count."""
    if mesh is not None and cfg.num_envs % mesh.devices.size:
        raise ValueError(f"config field `num_envs` = {cfg.num_envs} must be a multiple of the "
                         f"{mesh.devices.size} devices it is split over")
    return lambda tree, axis=0: constrain_envs(tree, mesh, cfg.num_envs, axis)


def _identity(tree, axis=0):
    return tree


def make_init(env: envs.VecEnv, network: ActorCritic, opt_init: Callable[[Any], Any], shard=_identity):
    """``init(key) -> TrainState``: fresh parameters, optimiser state (``opt_init(params)``) and envs."""

    def init(key: jax.Array) -> TrainState:
        k_params, k_env, k_state = jax.random.split(key, 3)
        env_state, obs = env.reset(k_env)
        env_state, obs = shard(env_state), shard(obs)
        params = network.init(k_params, obs)
        nan = jnp.full((), jnp.nan, jnp.float32)
        return TrainState(params, opt_init(params), env_state, obs, k_state, jnp.zeros((), jnp.int32), nan, nan)

    return init


def setup(config: OnPolicyConfig, mesh: Mesh | None = None):
    """What every on-policy ``make`` starts with: ``(cfg, shard, env, network)`` — the validated config, the
    env-axis splitter for ``mesh`` (:func:`env_splitter`), the training env and the actor-critic."""
    cfg = config.validate()
    shard = env_splitter(cfg, mesh)
    env = make_env(cfg, cfg.num_envs, train=True)
    check_env_fields(cfg, env)
    return cfg, shard, env, make_network(cfg, env)


def make_env(cfg: OnPolicyConfig, num_envs: int, train: bool) -> envs.VecEnv:
    """The training env (normalisation and reward scaling as configured) or an evaluation env (raw rewards;
    observations normalised with the training statistics by :func:`make_policy`)."""
    return envs.make(cfg.env, num_envs, backend=cfg.env_backend, episode_length=cfg.episode_length,
                     action_transform=cfg.action_transform, normalize_obs=cfg.normalize_obs and train,
                     scale_reward=cfg.scale_reward and train, gamma=cfg.gamma)


def make_network(cfg: OnPolicyConfig, env: envs.VecEnv) -> ActorCritic:
    return ActorCritic(action_dim=env.action_dim, discrete=env.is_discrete, hidden_sizes=cfg.hidden_sizes,
                       activation=cfg.activation, shared=cfg.shared_network,
                       state_dependent_std=cfg.state_dependent_std)


def collect(env: envs.VecEnv, network: ActorCritic, params: Any, env_state: Any, obs: jax.Array,
            key: jax.Array, num_steps: int, unroll: int = 1, shard=_identity):
    """A rollout of the stochastic policy; ``traj.extras["log_prob"]`` holds the behaviour log-probs.
    ``shard`` (from :func:`env_splitter`) keeps the env axis split over devices in and out."""

    def policy(o, noise):
        pi = network.apply(params, o, method=ActorCritic.policy)
        action = sample_with(pi, noise)
        return action, {"log_prob": pi.log_prob(action)}

    with jax.named_scope("rollout"):
        k_noise, k_roll = jax.random.split(key)
        noise = policy_noise(k_noise, (num_steps, env.num_envs), network.discrete, network.action_dim)
        env_state, obs, traj, tally = rollout(env, policy, shard(env_state), shard(obs), k_roll, num_steps,
                                              unroll=unroll, policy_inputs=shard(noise, 1))
    return shard(env_state), shard(obs), shard(traj, 1), tally


def values_and_gae(network: ActorCritic, params: Any, traj, gamma: Any, lam: Any):
    """``(values, advantages, value_targets)`` for a rollout; ``lam = 1`` gives the n-step returns that
    bootstrap from ``V`` at the rollout's end (and at time-limit truncations)."""
    value_fn = lambda o: network.apply(params, o, method=ActorCritic.value)  # noqa: E731
    with jax.named_scope("advantage"):
        values, next_values = value_fn(traj.obs), value_fn(traj.final_obs)
        adv, targets = gae(traj.reward, values, next_values, traj.terminated, traj.done, gamma, lam)
    return values, adv, targets


def policy_gradient_loss(network: ActorCritic, params: Any, batch: dict, ent_coef: Any, vf_coef: Any,
                         normalize_advantages: bool = False) -> tuple[jax.Array, dict]:
    """``-sum(w * log pi(a|s) * A) / n + vf_coef * 0.5 * sum(w * (V(s) - target)^2) / n - ent_coef * H``.

    ``batch`` holds flat ``obs``, ``action``, ``advantage``, ``target`` and optionally ``weight`` (0 drops a
    step; ``n`` is the batch size, a constant, so dropping steps does not reweight the others).
    ``normalize_advantages`` standardises the advantages over the weighted steps first."""
    pi, v = network.apply(params, batch["obs"])
    n = batch["advantage"].shape[0]
    w = batch.get("weight", jnp.ones((n,), jnp.float32))
    adv = batch["advantage"]
    if normalize_advantages:
        count = jnp.maximum(w.sum(), 1.0)
        mean = jnp.sum(w * adv) / count
        std = jnp.sqrt(jnp.sum(w * jnp.square(adv - mean)) / count)
        adv = (adv - mean) / (std + 1e-8)
    log_prob = pi.log_prob(batch["action"])
    policy_loss = -jnp.sum(w * log_prob * jax.lax.stop_gradient(adv)) / n
    value_loss = 0.5 * jnp.sum(w * jnp.square(v - batch["target"])) / n
    entropy = jnp.sum(w * pi.entropy()) / jnp.maximum(w.sum(), 1.0)
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def make_policy(network: ActorCritic, train_env: envs.VecEnv):
    """``policy(state, deterministic=True) -> act(obs, key)`` for any train state with ``params`` and
    ``env_state``: the policy's mode (or a sample) on raw observations, normalised with the state's frozen
    observation statistics."""

    def policy(state: Any, deterministic: bool = True):
        rms = train_env.obs_normalizer(state.env_state)

        def act(obs, k):
            pi = network.apply(state.params, obs if rms is None else rms.normalize(obs), method=ActorCritic.policy)
            return pi.mode() if deterministic else pi.sample(seed=k)

        return act

    return policy


def evaluation(cfg: OnPolicyConfig, network: ActorCritic, train_env: envs.VecEnv) -> dict:
    """The :class:`~purerl.core.loop.Trainer` fields ``evaluate``, ``policy`` and ``eval_env`` of an
    on-policy algorithm (evaluation: raw rewards, observations normalised with the training statistics)."""
    policy = make_policy(network, train_env)
    eval_env = lambda n: make_env(cfg, n, train=False)  # noqa: E731
    return {"evaluate": make_evaluate(policy, eval_env), "policy": policy, "eval_env": eval_env}
