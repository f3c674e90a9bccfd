"""Collecting experience: a ``lax.scan`` over time of a policy acting in a batch of environments."""

from __future__ import annotations

import math
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


PolicyFn = Callable[[jax.Array, Any], tuple[jax.Array, dict]]

# Bytes of env randomness (fresh initial states, keys) drawn at once ahead of a time loop; longer loops draw it
# in chunks of steps (an outer loop) so that memory stays bounded for envs with large states (Brax).
NOISE_BUDGET_BYTES = 64 * 2**20


def noise_chunk(env: VecEnv, num_steps: int, budget: int | None = None) -> int:
    """Steps of env randomness :func:`scan_env` draws at once: the largest divisor of ``num_steps`` whose
    noise fits in ``budget`` bytes (default :data:`NOISE_BUDGET_BYTES`; at least 1 step)."""
    one = jax.eval_shape(lambda k: env.step_noise(k, 1), jax.random.key(0))
    per_step = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(one)) or 1
    fit = max(1, (NOISE_BUDGET_BYTES if budget is None else budget) // per_step)
    return max(d for d in range(1, min(num_steps, fit) + 1) if num_steps % d == 0)


def scan_env(env: VecEnv, body: Callable, carry: Any, key: jax.Array, num_steps: int, xs: Any = None,
             unroll: int = 1) -> tuple[Any, Any]:
    """``lax.scan`` of ``body(carry, (x_t, noise_t)) -> (carry, y_t)`` over ``num_steps`` env steps, where
    ``noise_t`` is one step of ``env.step_noise`` (pass it to ``env.step`` in place of a key) and ``x_t`` is
    ``xs`` at step ``t`` (or ``None``). The env's randomness is drawn ahead of the loop, in as few chunks as
    :data:`NOISE_BUDGET_BYTES` allows (one for gymnax envs), so the loop body draws none itself."""
    chunk = noise_chunk(env, num_steps)
    chunks = num_steps // chunk

    def run_chunk(c, inp):
        k, x = inp
        return jax.lax.scan(body, c, (x, env.step_noise(k, chunk)), unroll=unroll)

    if chunks == 1:
        return run_chunk(carry, (key, xs))
    split = lambda t: jnp.reshape(t, (chunks, chunk) + t.shape[1:])  # noqa: E731
    carry, ys = jax.lax.scan(run_chunk, carry, (jax.random.split(key, chunks), jax.tree.map(split, xs)))
    return carry, jax.tree.map(lambda y: jnp.reshape(y, (num_steps,) + y.shape[2:]), ys)


def rollout(env: VecEnv, policy: PolicyFn, env_state: Any, obs: jax.Array, key: jax.Array, num_steps: int,
            unroll: int = 1, policy_inputs: Any = None) -> tuple[Any, jax.Array, Transition, EpisodeTally]:
    """Run ``policy(obs, x_t) -> (action, extras)`` for ``num_steps`` steps in every env.

    ``x_t`` is ``policy_inputs`` at step ``t`` (e.g. sampling noise drawn ahead for all steps, see
    :func:`purerl.networks.policy_noise`) or, when that is ``None``, a fresh PRNG key per step. Returns the env
    state and observation to continue from, the stacked transitions and a tally of the episodes that finished
    (the env must be wrapped in :class:`~purerl.envs.EpisodeStatistics`).
    """
    k_policy, k_env = jax.random.split(key)
    if policy_inputs is None:
        policy_inputs = jax.random.split(k_policy, num_steps)

    def step(carry, inp):
        env_state, obs, tally = carry
        x, noise = inp
        with jax.named_scope("policy"):
            action, extras = policy(obs, x)
        with jax.named_scope("env_step"):
            env_state, ts = env.step(noise, env_state, action)
        tr = Transition(obs, action, ts.reward, ts.terminated, ts.done, ts.final_obs, extras)
        return (env_state, ts.obs, tally.add(ts.done, ts.info)), tr

    (env_state, obs, tally), traj = scan_env(env, step, (env_state, obs, EpisodeTally.zero()), k_env, num_steps,
                                             policy_inputs, unroll)
    return env_state, obs, traj, tally
