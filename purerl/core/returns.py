"""Advantage and return estimators over time-major rollouts ``[T, N]``.

Conventions used by every estimator here: ``next_values[t]`` is the value of the observation that followed
step ``t`` *within its episode* (``V(final_obs[t])``), so a time-limit truncation bootstraps from the real
last observation; ``terminated[t]`` zeroes that bootstrap; ``done[t]`` (terminated or truncated) stops the
recursion from reaching into the next episode.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def linear_recurrence(decay: jax.Array, x: jax.Array) -> jax.Array:
    """``y_t = x_t + decay_t * y_{t+1}`` backwards over the leading (time) axis, with ``y_T = 0``.

    Computed in blocks: the ``T`` steps are cut into ``B`` blocks of ``L`` (``L`` the largest divisor of
    ``T`` up to ``sqrt(T)``); one backward pass of ``L`` steps runs inside every block at once (starting from
    0) and keeps the product ``a`` of the decays to the block's end; one pass of ``B`` steps then carries each
    block's start value into the block before, ``y = y_block + a * y_next_block_start``. That is ``L + B``
    sequential steps instead of ``T`` (24 for a 128-step rollout); each step costs a dispatch on a CPU and a
    launch on a GPU. Measured in PPO's update against a parallel prefix (``lax.associative_scan``): as fast at
    1 seed and 3% faster at 16, with 0.4-0.9 s less compile time. Equal to the step-by-step loop up to float
    rounding (the products are taken in another order)."""
    T = x.shape[0]
    L = max(d for d in range(1, math.isqrt(T) + 1) if T % d == 0)
    B = T // L
    blocks = lambda z: jnp.swapaxes(jnp.reshape(z, (B, L) + z.shape[1:]), 0, 1)  # noqa: E731  [L, B, ...]
    d, xb = blocks(decay), blocks(x)

    def within(carry, inp):
        y_next, a_next = carry
        d_t, x_t = inp
        y, a = x_t + d_t * y_next, d_t * a_next
        return (y, a), (y, a)

    _, (y, a) = jax.lax.scan(within, (jnp.zeros_like(xb[0]), jnp.ones_like(xb[0])), (d, xb), reverse=True)

    def across(y_next_start, inp):  # the value at each block's start, from the block after it
        y0, a0 = inp
        return y0 + a0 * y_next_start, y_next_start

    _, after = jax.lax.scan(across, jnp.zeros_like(xb[0, 0]), (y[0], a[0]), reverse=True)
    return jnp.reshape(jnp.swapaxes(y + a * after[None], 0, 1), x.shape)


def gae(rewards: jax.Array, values: jax.Array, next_values: jax.Array, terminated: jax.Array,
        done: jax.Array, gamma, lam) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation (Schulman et al., 2016). Returns ``(advantages, value_targets)``:
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}`` with
    ``delta_t = r_t + gamma * (1 - terminated_t) * next_values_t - values_t``."""
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * not_term * next_values - values
    adv = linear_recurrence(gamma * lam * not_done, deltas)
    return adv, adv + values


def reward_to_go(rewards: jax.Array, done: jax.Array, gamma) -> tuple[jax.Array, jax.Array]:
    """Monte-Carlo discounted return from each step to the end of its episode, and whether that end lies
    inside the rollout. ``G_t = r_t + gamma (1 - done_t) G_{t+1}``; ``complete[t]`` is False for the steps
    after each env's last episode end, whose return the rollout does not contain (REINFORCE must drop them,
    not bootstrap or truncate them). An episode ended by its time limit counts as complete: its return is
    the return of the finite-horizon task."""
    not_done = 1.0 - done.astype(jnp.float32)
    g = linear_recurrence(gamma * not_done, rewards)
    complete = jnp.flip(jnp.cumsum(jnp.flip(done.astype(jnp.int32), 0), axis=0), 0) > 0  # an end at or after t
    return g, complete


def first_episode(done: jax.Array) -> jax.Array:
    """``[T, N]`` mask of the steps up to and including each env's first episode end in the rollout.

    Whether step ``t`` is kept depends only on what happened *before* ``t`` (a stopping rule), so weighting
    score-function terms by this mask keeps any action-independent baseline's contribution at zero mean;
    "keep every step whose episode ends inside the rollout" would not (whether a later episode ends in
    time depends on the actions taken in it)."""
    d = done.astype(jnp.int32)
    return (jnp.cumsum(d, axis=0) - d) == 0
