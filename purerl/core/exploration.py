"""Epsilon-greedy exploration over discrete actions, with the noise drawn ahead of a rollout, and the linear
schedule its epsilon follows.

    noise = greedy_noise(key, (num_steps, num_envs), num_actions)       # [T, N] uniforms and random actions
    action = epsilon_greedy(q_values, epsilon, jax.tree.map(lambda x: x[t], noise))
    epsilon = linear_schedule(1.0, 0.05, update_step, 0.1 * num_log_points)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["epsilon_greedy", "greedy_noise", "linear_schedule"]


def linear_schedule(start: Any, end: Any, step: Any, duration: Any) -> jax.Array:
    """``start`` moved linearly to ``end`` over ``duration`` steps, then held at ``end``:
    ``start + (end - start) * min(step / duration, 1)``; ``end`` from step 0 when ``duration`` is 0. Every
    argument may be traced (swept with ``jax.vmap``)."""
    step = jnp.asarray(step, jnp.float32)
    duration = jnp.asarray(duration, jnp.float32)
    frac = jnp.where(duration > 0, jnp.clip(step / jnp.where(duration > 0, duration, 1.0), 0.0, 1.0), 1.0)
    return jnp.asarray(start, jnp.float32) + (jnp.asarray(end, jnp.float32) - start) * frac


def greedy_noise(key: jax.Array, batch_shape: tuple[int, ...], num_actions: int) -> dict:
    """The randomness of :func:`epsilon_greedy` for ``batch_shape`` (e.g. ``(T, N)``, a whole rollout) drawn at
    once: ``uniform`` in ``[0, 1)`` (explore where it is below epsilon) and a uniformly random ``action``."""
    k_u, k_a = jax.random.split(key)
    return {"uniform": jax.random.uniform(k_u, tuple(batch_shape)),
            "action": jax.random.randint(k_a, tuple(batch_shape), 0, num_actions, jnp.int32)}


def epsilon_greedy(q_values: jax.Array, epsilon: Any, noise: dict) -> jax.Array:
    """The greedy action ``argmax_a q_values[..., a]`` (the first of ties), replaced by ``noise["action"]`` where
    ``noise["uniform"] < epsilon`` (with probability ``epsilon``); ``noise`` from :func:`greedy_noise`."""
    greedy = jnp.argmax(q_values, axis=-1).astype(jnp.int32)
    return jnp.where(noise["uniform"] < epsilon, noise["action"], greedy)
