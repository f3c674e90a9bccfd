"""Advantage and return estimators over time-major rollouts ``[T, N]``.

Conventions used by every estimator here: ``next_values[t]`` is the value of the observation that followed
step ``t`` *within its episode* (``V(final_obs[t])``), so a time-limit truncation bootstraps from the real
last observation; ``terminated[t]`` zeroes that bootstrap; ``done[t]`` (terminated or truncated) stops the
recursion from reaching into the next episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def linear_recurrence(decay: jax.Array, x: jax.Array) -> jax.Array:
    """``y_t = x_t + decay_t * y_{t+1}`` backwards over the leading (time) axis, with ``y_T = 0``.

    Computed as a parallel prefix (``lax.associative_scan``): about ``2 log2(T)`` vectorised steps instead of a
    ``T``-step sequential loop, whose every iteration costs a dispatch on a CPU and a launch on a GPU. The
    pairs ``(a, b)`` stand for the maps ``y -> a * y + b``; composing two is again such a map. Equal to the
    sequential loop up to float rounding (the products and sums are taken in another order)."""

    def compose(later, earlier):  # earlier(later(y)): y -> a_e (a_l y + b_l) + b_e
        a_l, b_l = later
        a_e, b_e = earlier
        return a_e * a_l, a_e * b_l + b_e

    return jax.lax.associative_scan(compose, (decay, x), reverse=True)[1]


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
