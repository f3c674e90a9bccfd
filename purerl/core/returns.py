"""Advantage and return estimators over time-major rollouts ``[T, N]``.

Conventions used by every estimator here: ``next_values[t]`` is the value of the observation that followed
step ``t`` *within its episode* (``V(final_obs[t])``), so a time-limit truncation bootstraps from the real
last observation; ``terminated[t]`` zeroes that bootstrap; ``done[t]`` (terminated or truncated) stops the
recursion from reaching into the next episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards: jax.Array, values: jax.Array, next_values: jax.Array, terminated: jax.Array,
        done: jax.Array, gamma, lam, unroll: int = 1) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation (Schulman et al., 2016). Returns ``(advantages, value_targets)``."""
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    deltas = rewards + gamma * not_term * next_values - values
    decay = gamma * lam * not_done

    def step(next_adv, x):
        delta, d = x
        adv = delta + d * next_adv
        return adv, adv

    _, adv = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, decay), reverse=True, unroll=unroll)
    return adv, adv + values


def reward_to_go(rewards: jax.Array, done: jax.Array, gamma) -> tuple[jax.Array, jax.Array]:
    """Monte-Carlo discounted return from each step to the end of its episode, and whether that end lies
    inside the rollout. ``G_t = r_t + gamma (1 - done_t) G_{t+1}``; ``complete[t]`` is False for the steps
    after each env's last episode end, whose return the rollout does not contain (REINFORCE must drop them,
    not bootstrap or truncate them). An episode ended by its time limit counts as complete: its return is
    the return of the finite-horizon task."""
    not_done = 1.0 - done.astype(jnp.float32)

    def step(carry, x):
        g_next, complete_next = carry
        r, nd, d = x
        g = r + gamma * nd * g_next
        complete = d | complete_next
        return (g, complete), (g, complete)

    init = (jnp.zeros_like(rewards[0]), jnp.zeros(rewards.shape[1:], bool))
    _, (g, complete) = jax.lax.scan(step, init, (rewards, not_done, done.astype(bool)), reverse=True)
    return g, complete


def first_episode(done: jax.Array) -> jax.Array:
    """``[T, N]`` mask of the steps up to and including each env's first episode end in the rollout.

    Whether step ``t`` is kept depends only on what happened *before* ``t`` (a stopping rule), so weighting
    score-function terms by this mask keeps any action-independent baseline's contribution at zero mean;
    "keep every step whose episode ends inside the rollout" would not (whether a later episode ends in
    time depends on the actions taken in it)."""
    d = done.astype(jnp.int32)
    return (jnp.cumsum(d, axis=0) - d) == 0
