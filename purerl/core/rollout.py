"""Collecting experience: a ``lax.scan`` over time of a policy acting in a batch of environments."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from purerl.envs.base import VecEnv


@struct.dataclass
class Transition:
    """One step for every env; a rollout stacks these into ``[T, N, ...]`` arrays."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    final_obs: jax.Array   # observation after the action, before any auto-reset
    extras: dict           # whatever the policy returned next to the action (log-probs, ...)


@struct.dataclass
class EpisodeTally:
    """Sums over episodes that finished: scalars, so metrics never grow with envs x steps."""

    return_sum: jax.Array
    length_sum: jax.Array
    count: jax.Array

    @staticmethod
    def zero() -> "EpisodeTally":
        z = jnp.zeros((), jnp.float32)
        return EpisodeTally(z, z, z)

    def add(self, done: jax.Array, info: dict) -> "EpisodeTally":
        d = done.astype(jnp.float32)
        return EpisodeTally(self.return_sum + jnp.sum(d * info["episode_return"]),
                            self.length_sum + jnp.sum(d * info["episode_length"]),
                            self.count + jnp.sum(d))

    def mean_return(self, previous: jax.Array) -> jax.Array:
        """Mean return of the tallied episodes; ``previous`` when none finished."""
        return jnp.where(self.count > 0, self.return_sum / jnp.maximum(self.count, 1.0), previous)

    def mean_length(self, previous: jax.Array) -> jax.Array:
        return jnp.where(self.count > 0, self.length_sum / jnp.maximum(self.count, 1.0), previous)


PolicyFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, dict]]


def rollout(env: VecEnv, policy: PolicyFn, env_state: Any, obs: jax.Array, key: jax.Array, num_steps: int,
            unroll: int = 1) -> tuple[Any, jax.Array, Transition, EpisodeTally]:
    """Run ``policy(obs, key) -> (action, extras)`` for ``num_steps`` steps in every env.

    Returns the env state and observation to continue from, the stacked transitions and a tally of the
    episodes that finished (the env must be wrapped in :class:`~purerl.envs.EpisodeStatistics`).
    """

    def step(carry, key):
        env_state, obs, tally = carry
        k_act, k_env = jax.random.split(key)
        with jax.named_scope("policy"):
            action, extras = policy(obs, k_act)
        with jax.named_scope("env_step"):
            env_state, ts = env.step(k_env, env_state, action)
        tr = Transition(obs, action, ts.reward, ts.terminated, ts.done, ts.final_obs, extras)
        return (env_state, ts.obs, tally.add(ts.done, ts.info)), tr

    keys = jax.random.split(key, num_steps)
    (env_state, obs, tally), traj = jax.lax.scan(step, (env_state, obs, EpisodeTally.zero()), keys,
                                                 unroll=unroll)
    return env_state, obs, traj, tally
