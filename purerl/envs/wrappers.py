"""Wrappers over :class:`~purerl.envs.base.VecEnv`: episode statistics, action bounds, normalisation."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from purerl.core.running_stats import RunningMeanStd
from purerl.envs.base import Box, StatefulWrapper, VecEnv, Wrapper, WrapperState


@struct.dataclass
class EpisodeStatsState(WrapperState):
    episode_return: jax.Array = None  # [N] running undiscounted return of the current episode
    episode_length: jax.Array = None  # [N]


class EpisodeStatistics(StatefulWrapper):
    """Adds ``info["episode_return"]`` / ``info["episode_length"]``: the totals of episodes that ended at
    this step (zero elsewhere; use ``ts.done`` as the mask). Sits below reward scaling: returns are raw."""

    def reset(self, key):
        inner, obs = self.env.reset(key)
        zeros = jnp.zeros((self.num_envs,), jnp.float32)
        return EpisodeStatsState(inner, zeros, zeros.astype(jnp.int32)), obs

    def step(self, key, state, action):
        inner, ts = self.env.step(key, state.inner, action)
        ret = state.episode_return + ts.reward
        length = state.episode_length + 1
        done = ts.done
        info = dict(ts.info, episode_return=jnp.where(done, ret, 0.0), episode_length=jnp.where(done, length, 0))
        new = EpisodeStatsState(inner, jnp.where(done, 0.0, ret), jnp.where(done, 0, length))
        return new, ts.replace(info=info)


class ClipAction(Wrapper):
    """Clips continuous actions to the box bounds (for unbounded Gaussian policies)."""

    def step(self, key, state, action):
        box: Box = self.action_space
        return self.env.step(key, state, jnp.clip(action, box.low, box.high))


class RescaleAction(Wrapper):
    """Maps actions in ``[-1, 1]`` (tanh-squashed policies) affinely onto the box bounds."""

    def __init__(self, env: VecEnv):
        super().__init__(env)
        box: Box = env.action_space
        self.action_space = Box.make(-1.0, 1.0, box.shape)
        self._low, self._high = box.low, box.high

    def step(self, key, state, action):
        a = jnp.clip(action, -1.0, 1.0)
        return self.env.step(key, state, self._low + 0.5 * (a + 1.0) * (self._high - self._low))


@struct.dataclass
class NormObsState(WrapperState):
    rms: RunningMeanStd = None


class NormalizeObservation(StatefulWrapper):
    """Normalises observations (and ``final_obs``) by a running mean/variance over all envs and steps.

    The statistics live in the env state, hence in the train state, and are read back for evaluation with
    ``env.obs_normalizer(state)``.
    """

    def reset(self, key):
        inner, obs = self.env.reset(key)
        rms = RunningMeanStd.create((self.obs_dim,)).update(obs)
        return NormObsState(inner, rms), rms.normalize(obs)

    def step(self, key, state, action):
        inner, ts = self.env.step(key, state.inner, action)
        rms = state.rms.update(ts.obs)
        ts = ts.replace(obs=rms.normalize(ts.obs), final_obs=rms.normalize(ts.final_obs))
        return NormObsState(inner, rms), ts

    def obs_normalizer(self, state):
        return state.rms


@struct.dataclass
class ScaleRewardState(WrapperState):
    discounted_return: jax.Array = None  # [N]
    rms: RunningMeanStd = None


class ScaleReward(StatefulWrapper):
    """Divides rewards by the running std of the discounted return (the usual PPO reward scaling)."""

    def __init__(self, env: VecEnv, gamma: Any):
        super().__init__(env)
        self.gamma = gamma

    def reset(self, key):
        inner, obs = self.env.reset(key)
        return ScaleRewardState(inner, jnp.zeros((self.num_envs,), jnp.float32), RunningMeanStd.create()), obs

    def step(self, key, state, action):
        inner, ts = self.env.step(key, state.inner, action)
        ret = state.discounted_return * self.gamma + ts.reward
        rms = state.rms.update(ret)
        ts = ts.replace(reward=ts.reward / rms.std)
        return ScaleRewardState(inner, jnp.where(ts.done, 0.0, ret), rms), ts

