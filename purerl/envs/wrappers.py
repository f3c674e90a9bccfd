"""Wrappers over :class:`~purerl.envs.base.VecEnv`: episode statistics, action bounds, normalisation, and the
running mean/variance (:class:`RunningMeanStd`, Chan et al.'s parallel algorithm) that normalisation keeps."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from purerl.envs.base import Box, StatefulWrapper, VecEnv, Wrapper, WrapperState


@struct.dataclass
class RunningMeanStd:
    """Running mean and variance over batches (Chan et al.'s parallel update), for observation normalisation
    and reward scaling."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array  # float32 so it can grow past int32 with large batches

    @staticmethod
    def create(shape: tuple[int, ...] = ()) -> "RunningMeanStd":
        # A tiny prior count keeps the first normalisation finite without biasing later statistics.
        return RunningMeanStd(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                              jnp.asarray(1e-4, jnp.float32))

    def update(self, batch: jax.Array) -> "RunningMeanStd":
        """Fold in ``batch`` (leading axis = samples)."""
        batch = batch.astype(jnp.float32)
        b_mean = batch.mean(axis=0)
        b_var = batch.var(axis=0)
        b_count = jnp.asarray(batch.shape[0], jnp.float32)
        delta = b_mean - self.mean
        tot = self.count + b_count
        mean = self.mean + delta * b_count / tot
        m2 = self.var * self.count + b_var * b_count + jnp.square(delta) * self.count * b_count / tot
        return RunningMeanStd(mean, m2 / tot, tot)

    def merged(self) -> "RunningMeanStd":
        """Statistics stacked on a leading axis (one per group of envs, e.g. A3C's workers) as one: the mean and
        variance of all the groups' samples together."""
        count = jnp.sum(self.count)
        w = jnp.reshape(self.count, self.count.shape + (1,) * (self.mean.ndim - 1)) / count
        mean = jnp.sum(w * self.mean, axis=0)
        var = jnp.sum(w * (self.var + jnp.square(self.mean - mean)), axis=0)
        return RunningMeanStd(mean, var, count)

    @property
    def std(self) -> jax.Array:
        return jnp.sqrt(self.var + 1e-8)

    def normalize(self, x: jax.Array, clip: float = 10.0) -> jax.Array:
        return jnp.clip((x - self.mean) / self.std, -clip, clip)


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
        return self.env.step(key, state, self._clip(action))

    def _clip(self, action):
        box: Box = self.action_space
        return jnp.clip(action, box.low, box.high)

    def to_env_action(self, action):
        return self.env.to_env_action(self._clip(action))


class RescaleAction(Wrapper):
    """Maps actions in ``[-1, 1]`` (tanh-squashed policies) affinely onto the box bounds."""

    def __init__(self, env: VecEnv):
        super().__init__(env)
        box: Box = env.action_space
        self.action_space = Box.make(-1.0, 1.0, box.shape)
        self._low, self._high = box.low, box.high

    def step(self, key, state, action):
        return self.env.step(key, state, self._rescale(action))

    def _rescale(self, action):
        a = jnp.clip(action, -1.0, 1.0)
        return self._low + 0.5 * (a + 1.0) * (self._high - self._low)

    def to_env_action(self, action):
        return self.env.to_env_action(self._rescale(action))


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
class NormalizeRewardState(WrapperState):
    discounted_return: jax.Array = None  # [N]
    rms: RunningMeanStd = None


class NormalizeReward(StatefulWrapper):
    """Divides rewards by the running std of the discounted return (the usual PPO reward scaling)."""

    def __init__(self, env: VecEnv, gamma: Any):
        super().__init__(env)
        self.gamma = gamma

    def reset(self, key):
        inner, obs = self.env.reset(key)
        return NormalizeRewardState(inner, jnp.zeros((self.num_envs,), jnp.float32), RunningMeanStd.create()), obs

    def step(self, key, state, action):
        inner, ts = self.env.step(key, state.inner, action)
        ret = state.discounted_return * self.gamma + ts.reward
        rms = state.rms.update(ret)
        ts = ts.replace(reward=ts.reward / rms.std)
        return NormalizeRewardState(inner, jnp.where(ts.done, 0.0, ret), rms), ts

