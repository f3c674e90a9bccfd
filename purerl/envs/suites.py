"""Adapters from gymnax (1.x step API) and Brax to the :class:`~purerl.envs.base.VecEnv` protocol."""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purerl.envs.base import Box, Discrete, TimeStep, VecEnv, split_keys


def _flat(x: jax.Array, num_envs: int) -> jax.Array:
    return jnp.reshape(x, (num_envs, -1)).astype(jnp.float32)


def _flags(terminated: jax.Array, truncated: jax.Array, num_envs: int) -> tuple[jax.Array, jax.Array]:
    """``[N]`` bool flags; a step that is both terminal and at the time limit counts as terminated."""
    terminated = jnp.reshape(terminated, (num_envs,)).astype(bool)
    return terminated, jnp.logical_and(jnp.reshape(truncated, (num_envs,)).astype(bool), ~terminated)


@struct.dataclass
class StepNoise:
    """One step's randomness for a batch of ``N`` envs (stacked ``[T, N, ...]`` by ``step_noise``): a key per
    env for the transition and a fresh initial state (and its observation) per env, taken by the envs whose
    episode ends at this step. ``fresh_state`` is ``None`` for envs that reset themselves."""

    keys: Any
    fresh_state: Any
    fresh_obs: Any


def _one_step(adapter: VecEnv, key_or_noise: Any) -> StepNoise:
    """``key_or_noise`` as one step's :class:`StepNoise` (drawn from it when it is a key)."""
    if isinstance(key_or_noise, StepNoise):
        return key_or_noise
    return jax.tree.map(lambda x: x[0], adapter.step_noise(key_or_noise, 1))


class GymnaxEnv(VecEnv):
    """``num_envs`` copies of a gymnax environment, vmapped. Non-vector observations are flattened.

    ``gymnax_env`` and ``env_params`` are the gymnax environment and its parameters (renderers draw with them)."""

    def __init__(self, env_id: str, num_envs: int, env_params: Any = None):
        import gymnax
        from gymnax.environments import spaces

        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.gymnax_env, default_params = gymnax.make(env_id)
        self.env_params = default_params if env_params is None else env_params
        obs_space = self.gymnax_env.observation_space(self.env_params)
        self.obs_dim = int(np.prod(obs_space.shape))
        act = self.gymnax_env.action_space(self.env_params)
        if isinstance(act, spaces.Discrete):
            self.action_space = Discrete(int(act.n))
        elif isinstance(act, spaces.Box):
            self.action_space = Box.make(act.low, act.high, tuple(act.shape))
        else:
            raise ValueError(f"env `{env_id}` has an action space of type {type(act).__name__}, "
                             "which purerl does not support (only Discrete and Box)")
        self.max_episode_steps = int(getattr(self.env_params, "max_steps_in_episode", 1000))
        from gymnax.environments.environment import Environment

        self._custom_step = type(self.gymnax_env).step is not Environment.step

    def _cast_action(self, action: jax.Array) -> jax.Array:
        if isinstance(self.action_space, Discrete):
            return action.astype(jnp.int32)
        return jnp.reshape(action, (self.num_envs,) + self.action_space.shape).astype(jnp.float32)

    def reset(self, key):
        keys = jax.random.split(key, self.num_envs)
        obs, state = jax.vmap(self.gymnax_env.reset, in_axes=(0, None))(keys, self.env_params)
        return state, _flat(obs, self.num_envs)

    def step_noise(self, key, num_steps):
        n = self.num_envs
        k_step, k_reset = jax.random.split(key)
        keys = split_keys(k_step, (num_steps, n))
        if self._custom_step:  # gymnax's own auto-resetting step draws its resets from the step key
            return StepNoise(keys, None, None)
        reset = jax.vmap(jax.vmap(self.gymnax_env.reset_env, in_axes=(0, None)), in_axes=(0, None))
        fresh_obs, fresh = reset(split_keys(k_reset, (num_steps, n)), self.env_params)
        return StepNoise(keys, fresh, jnp.reshape(fresh_obs, (num_steps, n, -1)).astype(jnp.float32))

    def step(self, key, state, action):
        noise = _one_step(self, key)
        if self._custom_step:
            return self._generic_step(noise.keys, state, action)
        n = self.num_envs
        obs, state, reward, terminated, _ = jax.vmap(self.gymnax_env.step_env, in_axes=(0, 0, 0, None))(
            noise.keys, state, self._cast_action(action), self.env_params)
        truncated = jax.vmap(self.gymnax_env.is_truncated, in_axes=(0, None))(state, self.env_params)
        terminated, truncated = _flags(terminated, truncated, n)
        done = jnp.logical_or(terminated, truncated)
        final_obs = _flat(obs, n)
        ts = TimeStep(obs=_select(done, noise.fresh_obs, final_obs),
                      reward=jnp.reshape(reward, (n,)).astype(jnp.float32), terminated=terminated,
                      truncated=truncated, final_obs=final_obs)
        return _select(done, noise.fresh_state, state), ts

    def _generic_step(self, keys, state, action):
        """gymnax's own auto-resetting step, for envs that override it (e.g. bsuite's DeepSea)."""
        n = self.num_envs
        obs, state, reward, terminated, truncated, info = jax.vmap(
            self.gymnax_env.step, in_axes=(0, 0, 0, None))(keys, state, self._cast_action(action), self.env_params)
        terminated, truncated = _flags(terminated, truncated, n)
        ts = TimeStep(obs=_flat(obs, n), reward=jnp.reshape(reward, (n,)).astype(jnp.float32),
                      terminated=terminated, truncated=truncated, final_obs=_flat(info["final_observation"], n))
        return state, ts


def _select(mask: jax.Array, new, old):
    """Per-env choice between two batched pytrees (``mask``: [N])."""

    def pick(a, b):
        return jnp.where(jnp.reshape(mask, mask.shape + (1,) * (b.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


@struct.dataclass
class BraxVecState:
    core: Any          # brax.envs.State, batched
    steps: jax.Array   # [N] int32, steps taken in the current episode


BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")


@functools.lru_cache(maxsize=None)
def _brax_env(name: str, backend: str | None):
    # mujoco prints a notice when its optional GPU backend (warp) is missing; keep user output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        from brax import envs as brax_envs
    kwargs = {} if backend is None else {"backend": backend}
    # Building a Brax system warns that Brax's pipelines are no longer maintained upstream: a notice for
    # purerl's maintainers (the envs are used as they are), not for a user training on them.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Brax System, piplines and environments", category=UserWarning)
        return brax_envs.get_environment(name, **kwargs)


def brax_env_names() -> list[str]:
    with contextlib.redirect_stdout(io.StringIO()):
        from brax import envs as brax_envs
    return sorted(brax_envs._envs)  # the registry has no public listing in brax 0.14


class BraxEnv(VecEnv):
    """``num_envs`` copies of a Brax environment with purerl's own time limit and auto-reset.

    Brax's training ``AutoResetWrapper`` returns finished episodes to a cached first state; here every
    reset takes a fresh initial state drawn from a new key (from :meth:`step_noise`), as gymnax does.
    ``brax_env`` is the Brax environment (its ``sys`` is what Brax's HTML viewer draws).
    """

    def __init__(self, name: str, num_envs: int, backend: str | None = None, episode_length: int = 1000):
        self.env_id = f"brax/{name}"
        self.num_envs = int(num_envs)
        self.brax_env = _brax_env(name, backend)
        self.backend = self.brax_env.backend
        obs_size = self.brax_env.observation_size
        if not isinstance(obs_size, int):
            raise ValueError(f"env `{self.env_id}` has dict observations, which purerl does not support")
        self.obs_dim = int(obs_size)
        self.action_space = Box.make(-1.0, 1.0, (int(self.brax_env.action_size),))
        self.max_episode_steps = int(episode_length)

    def reset(self, key):
        core = jax.vmap(self.brax_env.reset)(jax.random.split(key, self.num_envs))
        return BraxVecState(core, jnp.zeros((self.num_envs,), jnp.int32)), core.obs.astype(jnp.float32)

    def step_noise(self, key, num_steps):
        fresh = jax.vmap(jax.vmap(self.brax_env.reset))(split_keys(key, (num_steps, self.num_envs)))
        return StepNoise(None, fresh, None)

    def step(self, key, state, action):
        noise = _one_step(self, key)
        core = jax.vmap(self.brax_env.step)(state.core, action.astype(jnp.float32))
        steps = state.steps + 1
        terminated, truncated = _flags(core.done > 0.5, steps >= self.max_episode_steps, self.num_envs)
        done = jnp.logical_or(terminated, truncated)
        final_obs = core.obs.astype(jnp.float32)
        reward = core.reward.astype(jnp.float32)
        core = _select(done, noise.fresh_state, core)
        steps = jnp.where(done, 0, steps)
        ts = TimeStep(obs=core.obs.astype(jnp.float32), reward=reward,
                      terminated=terminated, truncated=truncated, final_obs=final_obs)
        return BraxVecState(core, steps), ts
