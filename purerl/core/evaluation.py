"""Evaluating a policy for N complete episodes, in parallel, with raw (unscaled) rewards."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from purerl.keys import as_key
from purerl.core.trajectory import noise_fit
from purerl.envs.base import VecEnv

ActFn = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class RecurrentAct:
    """A policy with memory: ``initial(batch_shape) -> memory`` (the memory an episode starts from) and
    ``step(memory, obs, key) -> (action, memory)``. :func:`evaluate_policy` carries the memory and resets it
    at episode ends; a stateless policy is a plain ``act(obs, key) -> action``."""

    initial: Callable[[tuple[int, ...]], Any]
    step: Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, Any]]


# Steps per block of the evaluation loop: the loop stops after the block in which the last episode ended.
EVAL_BLOCK = 64


def evaluate_policy(env: VecEnv, act: ActFn, key: jax.Array, record: Callable[[Any], Any] | None = None) -> dict:
    """Run one episode in each of ``env.num_envs`` envs with ``act(obs, key) -> action`` (or a
    :class:`RecurrentAct`, whose memory is carried from step to step).

    ``env`` must carry :class:`~purerl.envs.EpisodeStatistics` and no reward scaling; ``act`` sees the env's
    observations as they are (a trainer's policy normalises them with the run's frozen statistics itself).
    Returns ``returns``/``lengths`` per episode and their mean/std/min/max. The envs step in blocks of
    :data:`EVAL_BLOCK` steps (fewer where the env's randomness for a block would not fit
    :data:`~purerl.core.trajectory.NOISE_BUDGET_BYTES`), and the loop stops after the block in which every
    episode has ended, at most at the env's time limit (``env.max_episode_steps``), which ends every episode.
    With ``record``, every block up to the time limit runs and the result also holds ``trace``:
    ``record(env_state)`` before every step, and each step's ``reward`` and ``done``, stacked over the
    ``env.max_episode_steps`` steps (rendering records episodes this way; the steps' randomness is the same
    with and without ``record``, so a rendered episode is the evaluated one).
    """
    k_reset, k_run = jax.random.split(as_key(key, "key"))
    state, obs = env.reset(k_reset)
    n = env.num_envs
    zeros = jnp.zeros((n,), jnp.float32)
    recurrent = isinstance(act, RecurrentAct)
    memory = act.initial((n,)) if recurrent else None

    def step(carry, inp):
        state, obs, memory, ret, length, finished = carry
        k_act, noise = inp
        seen = None if record is None else record(state)
        if recurrent:
            action, memory = act.step(memory, obs, k_act)
        else:
            action = act(obs, k_act)
        state, ts = env.step(noise, state, action)
        if recurrent:  # a new episode starts from the initial memory
            memory = jax.tree.map(lambda m, m0: jnp.where(ts.done[:, None], m0, m), memory, act.initial((n,)))
        first = ts.done & ~finished
        ret = jnp.where(first, ts.info["episode_return"], ret)
        length = jnp.where(first, ts.info["episode_length"].astype(jnp.float32), length)
        trace = None if record is None else {"state": seen, "reward": ts.reward, "done": ts.done}
        return (state, ts.obs, memory, ret, length, finished | ts.done), trace

    steps = env.max_episode_steps
    block = min(EVAL_BLOCK, noise_fit(env))
    num_blocks = -(-steps // block)
    k_act, k_env = jax.random.split(k_run)
    act_keys = jnp.reshape(jax.random.split(k_act, num_blocks * block), (num_blocks, block))
    env_keys = jax.random.split(k_env, num_blocks)

    def run_block(carry, i):
        return jax.lax.scan(step, carry, (act_keys[i], env.step_noise(env_keys[i], block)))

    carry = (state, obs, memory, zeros, zeros, jnp.zeros((n,), bool))
    if record is None:
        def cond(c):
            i, (*_, finished) = c
            return (i < num_blocks) & ~jnp.all(finished)

        def body(c):
            i, inner = c
            return i + 1, run_block(inner, i)[0]

        _, carry = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), carry))
        trace = None
    else:
        carry, trace = jax.lax.scan(run_block, carry, jnp.arange(num_blocks))
        trace = jax.tree.map(lambda y: jnp.reshape(y, (num_blocks * block,) + y.shape[2:])[:steps], trace)
    _, _, _, ret, length, finished = carry
    out = {"returns": ret, "lengths": length, "finished": finished, "mean": ret.mean(), "std": ret.std(),
           "min": ret.min(), "max": ret.max()}
    if record is not None:
        out["trace"] = trace
    return out


def make_evaluate(policy: Callable[[Any, bool], ActFn], eval_env: Callable[[int], VecEnv]):
    """``evaluate(state, key, num_episodes=10, deterministic=True)`` from a trainer's ``policy(state,
    deterministic) -> act`` and ``eval_env(num_envs)``: one episode in each of ``num_episodes`` envs."""

    def evaluate(state: Any, key: jax.Array, num_episodes: int = 10, deterministic: bool = True) -> dict:
        return evaluate_policy(eval_env(num_episodes), policy(state, deterministic), key)

    return evaluate
