"""Evaluating a policy for N complete episodes, in parallel, with raw (unscaled) rewards."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from purerl.core.keys import as_key
from purerl.core.trajectory import scan_env
from purerl.envs.base import VecEnv
from purerl.envs.wrappers import RunningMeanStd

ActFn = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class RecurrentAct:
    """A policy with memory: ``initial(batch_shape) -> memory`` (the memory an episode starts from) and
    ``step(memory, obs, key) -> (action, memory)``. :func:`evaluate_policy` carries the memory and resets it
    at episode ends; a stateless policy is a plain ``act(obs, key) -> action``."""

    initial: Callable[[tuple[int, ...]], Any]
    step: Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, Any]]


def evaluate_policy(env: VecEnv, act: ActFn, key: jax.Array, obs_rms: RunningMeanStd | None = None,
                    record: Callable[[Any], Any] | None = None) -> dict:
    """Run one episode in each of ``env.num_envs`` envs with ``act(obs, key) -> action`` (or a
    :class:`RecurrentAct`, whose memory is carried from step to step).

    ``env`` must carry :class:`~purerl.envs.EpisodeStatistics` and no reward scaling; ``obs_rms`` are the
    training run's observation statistics (frozen here), or ``None`` for raw observations.
    Returns ``returns``/``lengths`` per episode and their mean/std/min/max. With ``record``, also
    ``trace``: ``record(env_state)`` before every step, and each step's ``reward`` and ``done``, stacked over
    the ``env.max_episode_steps`` steps the loop runs (rendering records episodes this way, so a rendered
    episode is the evaluated one).
    """
    norm = (lambda o: o) if obs_rms is None else obs_rms.normalize
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
            action, memory = act.step(memory, norm(obs), k_act)
        else:
            action = act(norm(obs), k_act)
        state, ts = env.step(noise, state, action)
        if recurrent:  # a new episode starts from the initial memory
            memory = jax.tree.map(lambda m, m0: jnp.where(ts.done[:, None], m0, m), memory, act.initial((n,)))
        first = ts.done & ~finished
        ret = jnp.where(first, ts.info["episode_return"], ret)
        length = jnp.where(first, ts.info["episode_length"].astype(jnp.float32), length)
        trace = None if record is None else {"state": seen, "reward": ts.reward, "done": ts.done}
        return (state, ts.obs, memory, ret, length, finished | ts.done), trace

    k_act, k_env = jax.random.split(k_run)
    steps = env.max_episode_steps
    (_, _, _, ret, length, finished), trace = scan_env(
        env, step, (state, obs, memory, zeros, zeros, jnp.zeros((n,), bool)), k_env, steps,
        jax.random.split(k_act, steps))
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
