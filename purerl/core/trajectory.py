"""Trajectories: collecting them, the returns and advantages computed on them, and cutting them into minibatches.

* **Collecting** — :func:`rollout`: a ``lax.scan`` over time of a policy acting in a batch of environments,
  giving a :class:`Rollout`: ``[T, N, ...]`` :class:`Transition` arrays, an :class:`EpisodeTally` of the
  episodes that ended and the env state, observation and policy memory to continue from; :func:`scan_env` is
  the time loop under it (env randomness drawn ahead of the loop).
* **Returns and advantages** over time-major ``[T, N]`` rollouts — :func:`gae`, :func:`q_lambda`,
  :func:`reward_to_go`, :func:`first_episode`, all on one backward recurrence (:func:`linear_recurrence`).
  Conventions used by every estimator here: ``next_values[t]`` is the value of the observation that followed
  step ``t`` *within its episode* (``V(final_obs[t])``), so a time-limit truncation bootstraps from the real
  last observation; ``terminated[t]`` zeroes that bootstrap; ``done[t]`` (terminated or truncated) stops the
  recursion from reaching into the next episode.
* **Minibatches** — :func:`flatten_time_env` and :func:`shuffled_minibatches` (a sort-free
  :func:`permutation`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from purerl.envs.base import VecEnv

__all__ = ["EpisodeTally", "Rollout", "Transition", "first_episode", "flatten_time_env", "gae", "linear_recurrence",
           "noise_chunk", "permutation", "q_lambda", "reward_to_go", "rollout", "scan_env", "shuffled_minibatches",
           "standardize"]


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

    def summary(self, last_return: jax.Array, last_length: jax.Array) -> dict:
        """The episode metrics every algorithm reports: ``episode_return`` and ``episode_length`` (means over
        the tallied episodes, or ``last_return``/``last_length`` when none ended) and ``episodes`` (how many)."""
        return {"episode_return": self.mean_return(last_return), "episode_length": self.mean_length(last_length),
                "episodes": self.count}


class Rollout(NamedTuple):
    """What :func:`rollout` returns, for policies with and without memory alike."""

    env_state: Any          # to continue from
    obs: jax.Array          # [N, ...] to continue from
    memory: Any             # the policy's memory to continue from (None for a policy without memory)
    traj: Transition        # [T, N, ...]
    tally: EpisodeTally     # the episodes that ended during the rollout
    behaviour: Any = None   # what acted: the on-policy loop's train state (A3C's with older parameters)


# policy(obs, x_t, memory) -> (action, extras, memory); a policy without memory takes and returns None
PolicyFn = Callable[[jax.Array, Any, Any], tuple[jax.Array, dict, Any]]

# Bytes of env randomness (fresh initial states, keys) drawn at once ahead of a time loop; longer loops draw it
# in chunks of steps (an outer loop) so that memory stays bounded for envs with large states (Brax).
NOISE_BUDGET_BYTES = 64 * 2**20


def noise_fit(env: VecEnv, budget: int | None = None) -> int:
    """Steps of ``env``'s randomness that fit in ``budget`` bytes (default :data:`NOISE_BUDGET_BYTES`; at
    least 1)."""
    one = jax.eval_shape(lambda: env.step_noise(jax.random.key(0), 1))  # traced only, the key too
    per_step = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(one)) or 1
    return max(1, (NOISE_BUDGET_BYTES if budget is None else budget) // per_step)


def noise_chunk(env: VecEnv, num_steps: int, budget: int | None = None) -> int:
    """Steps of env randomness :func:`scan_env` draws at once: the largest divisor of ``num_steps`` whose
    noise fits in ``budget`` bytes (default :data:`NOISE_BUDGET_BYTES`; at least 1 step)."""
    fit = noise_fit(env, budget)
    return max(d for d in range(1, min(num_steps, fit) + 1) if num_steps % d == 0)


def scan_env(env: VecEnv, body: Callable, carry: Any, key: jax.Array, num_steps: int, xs: Any = None,
             unroll: int = 1) -> tuple[Any, Any]:
    """``lax.scan`` of ``body(carry, (x_t, noise_t)) -> (carry, y_t)`` over ``num_steps`` env steps, where
    ``noise_t`` is one step of ``env.step_noise`` (pass it to ``env.step`` in place of a key) and ``x_t`` is
    ``xs`` at step ``t`` (or ``None``). The env's randomness is drawn ahead of the loop, in as few chunks as
    :data:`NOISE_BUDGET_BYTES` allows (one for gymnax envs), so the loop body draws none itself."""
    chunk = noise_chunk(env, num_steps)
    chunks = num_steps // chunk

    def steps_of_chunk(c, inp):
        k, x = inp
        return jax.lax.scan(body, c, (x, env.step_noise(k, chunk)), unroll=unroll)

    if chunks == 1:
        return steps_of_chunk(carry, (key, xs))
    split = lambda t: jnp.reshape(t, (chunks, chunk) + t.shape[1:])  # noqa: E731
    carry, ys = jax.lax.scan(steps_of_chunk, carry, (jax.random.split(key, chunks), jax.tree.map(split, xs)))
    return carry, jax.tree.map(lambda y: jnp.reshape(y, (num_steps,) + y.shape[2:]), ys)


def rollout(env: VecEnv, policy: PolicyFn, env_state: Any, obs: jax.Array, key: jax.Array, num_steps: int,
            unroll: int = 1, policy_inputs: Any = None, memory: Any = None) -> Rollout:
    """Run ``policy(obs, x_t, memory) -> (action, extras, memory)`` for ``num_steps`` steps in every env.

    ``x_t`` is ``policy_inputs`` at step ``t`` (e.g. sampling noise drawn ahead for all steps, see
    :func:`purerl.networks.policy_noise`) or, when that is ``None``, a fresh PRNG key per step. ``memory`` is
    a recurrent policy's memory (a pytree with a leading env axis), zeroed in an env whose episode ended
    before its next step; a policy without memory is passed ``None`` and returns it. The env must be wrapped
    in :class:`~purerl.envs.EpisodeStatistics`. Returns a :class:`Rollout`.
    """
    k_policy, k_env = jax.random.split(key)
    if policy_inputs is None:
        policy_inputs = jax.random.split(k_policy, num_steps)

    def step(carry, inp):
        env_state, obs, mem, tally = carry
        x, noise = inp
        with jax.named_scope("policy"):
            action, extras, mem = policy(obs, x, mem)
        with jax.named_scope("env_step"):
            env_state, ts = env.step(noise, env_state, action)
        mem = jax.tree.map(lambda m: jnp.where(jnp.reshape(ts.done, ts.done.shape + (1,) * (m.ndim - 1)), 0.0, m),
                           mem)  # nothing to zero for a policy without memory (None)
        tr = Transition(obs, action, ts.reward, ts.terminated, ts.done, ts.final_obs, extras)
        return (env_state, ts.obs, mem, tally.add(ts.done, ts.info)), tr

    (env_state, obs, memory, tally), traj = scan_env(env, step, (env_state, obs, memory, EpisodeTally.zero()), k_env,
                                                     num_steps, policy_inputs, unroll)
    return Rollout(env_state, obs, memory, traj, tally)


# --- returns and advantages ---------------------------------------------------------------------------------


def linear_recurrence(decay: jax.Array, x: jax.Array) -> jax.Array:
    """``y_t = x_t + decay_t * y_{t+1}`` backwards over the leading (time) axis, with ``y_T = 0``.

    Computed in blocks: the ``T`` steps are cut into ``B`` blocks of ``L`` (``L`` the largest divisor of
    ``T`` up to ``sqrt(T)``); one backward pass of ``L`` steps runs inside every block at once (starting from
    0) and keeps the product ``a`` of the decays to the block's end; one pass of ``B`` steps then carries each
    block's start value into the block before, ``y = y_block + a * y_next_block_start``. That is ``L + B``
    sequential steps instead of ``T`` (24 for a 128-step rollout); each step costs a dispatch on a CPU and a
    launch on a GPU. It was chosen over a parallel prefix (``lax.associative_scan``), which took as long to run
    and longer to compile. Equal to the step-by-step
    loop up to float rounding (the products are taken in another order)."""
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


def q_lambda(rewards: jax.Array, next_values: jax.Array, terminated: jax.Array, done: jax.Array, gamma,
             lam) -> jax.Array:
    """Peng's Q(lambda) returns as PQN forms them (Gallici et al., 2024), backwards over a rollout:
    ``G_t = r_t + gamma (1 - terminated_t) [(1 - lam) next_values_t + lam G_{t+1}]``, where ``next_values[t]``
    is ``max_a Q(final_obs[t], a)``. Where the episode ended at ``t`` (``done``) or the rollout does (the last
    step), ``G_{t+1}`` is not of this episode or not known, so the step bootstraps fully:
    ``G_t = r_t + gamma (1 - terminated_t) next_values_t`` (zero on termination, the final observation's value
    on truncation). ``lam = 0`` gives one-step Q-learning targets, ``lam = 1`` the discounted returns to the
    episode's end, bootstrapped at truncations and at the rollout's end.

    These are GAE's value targets (:func:`gae`) with ``values[t] = max_a Q(obs[t], a)``, computed without
    ``values``: one network call over the final observations instead of two."""
    not_term = 1.0 - terminated.astype(jnp.float32)
    carry = lam * (1.0 - done.astype(jnp.float32))          # the weight on G_{t+1}: 0 where the episode ended
    carry = carry.at[-1].set(0.0)                           # ... and at the rollout's last step
    x = rewards + gamma * not_term * (1.0 - carry) * next_values
    return linear_recurrence(gamma * carry, x)


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


def standardize(x: jax.Array, weight: jax.Array | None = None) -> jax.Array:
    """``(x - mean) / (std + 1e-8)`` (advantage standardisation): over all of ``x``, or with ``weight`` over the
    weighted entries (0 drops an entry from the statistics; the mean of no entries is taken as 0)."""
    if weight is None:
        return (x - x.mean()) / (x.std() + 1e-8)
    count = jnp.maximum(weight.sum(), 1.0)
    mean = jnp.sum(weight * x) / count
    std = jnp.sqrt(jnp.sum(weight * jnp.square(x - mean)) / count)
    return (x - mean) / (std + 1e-8)


def first_episode(done: jax.Array) -> jax.Array:
    """``[T, N]`` mask of the steps up to and including each env's first episode end in the rollout.

    Whether step ``t`` is kept depends only on what happened *before* ``t`` (a stopping rule), so weighting
    score-function terms by this mask keeps any action-independent baseline's contribution at zero mean;
    "keep every step whose episode ends inside the rollout" would not (whether a later episode ends in
    time depends on the actions taken in it)."""
    d = done.astype(jnp.int32)
    return (jnp.cumsum(d, axis=0) - d) == 0


# --- minibatches --------------------------------------------------------------------------------------------


_ROUNDS = 8


def flatten_time_env(tree: Any) -> Any:
    """``[T, N, ...] -> [T * N, ...]`` for every leaf."""
    return jax.tree.map(lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), tree)


def _mix(x: jax.Array) -> jax.Array:
    """A 32-bit integer hash (multiply / xor-shift finaliser): every input bit affects every output bit."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def permutation(key: jax.Array, n: int) -> jax.Array:
    """A pseudo-random permutation of ``0 .. n-1`` computed without sorting.

    ``jax.random.permutation`` sorts ``n`` random keys, and a sort is slow on a CPU, more so under ``vmap``.
    Here a keyed Feistel network on ``k = ceil(log2 n)``
    bits (``_ROUNDS`` rounds of an integer hash of one part xor-ed into the other, round keys drawn from
    ``key``) maps every index of ``[0, 2^k)`` to a distinct index; when ``n < 2^k`` the images below ``n``,
    taken in order, are a permutation of ``0 .. n-1``. Every step is elementwise (plus a prefix sum and a
    scatter when ``n`` is not a power of two). For minibatch shuffling this serves as a uniformly drawn
    permutation: each round key is 32 fresh random bits, mixed by the hash into every index."""
    k = max(1, (n - 1).bit_length())
    a, b = k // 2, k - k // 2                                   # the two parts' widths alternate each round
    round_keys = jax.random.bits(key, (_ROUNDS,), jnp.uint32)
    x = jnp.arange(1 << k, dtype=jnp.uint32)
    for r in range(_ROUNDS):                                     # (L, R) -> (R, L ^ F(R)): a bijection
        lo_bits, hi_bits = (b, a) if r % 2 == 0 else (a, b)
        left, right = x >> lo_bits, x & jnp.uint32((1 << lo_bits) - 1)
        mixed = (left ^ _mix(right ^ round_keys[r])) & jnp.uint32((1 << hi_bits) - 1)
        x = (right << hi_bits) | mixed
    if (1 << k) == n:
        return x.astype(jnp.int32)
    keep = x < n
    slot = jnp.cumsum(keep) - 1                                  # where each kept image goes
    return jnp.zeros((n,), jnp.int32).at[jnp.where(keep, slot, n)].set(x.astype(jnp.int32), mode="drop")


def shuffled_minibatches(key: jax.Array, batch: Any, num_minibatches: int) -> Any:
    """A random permutation of ``batch`` (leading axis ``B``) split into ``[num_minibatches, B // M, ...]``."""
    size = jax.tree.leaves(batch)[0].shape[0]
    perm = permutation(key, size)
    return jax.tree.map(
        lambda x: jnp.reshape(jnp.take(x, perm, axis=0), (num_minibatches, -1) + x.shape[1:]), batch)

