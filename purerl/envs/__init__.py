"""purerl's environment layer: one batched, auto-resetting protocol over gymnax and Brax.

Env ids are gymnax names as they are (``"CartPole-v1"``, ``"Pendulum-v1"``, ``"Breakout-MinAtar"``) and Brax
environments as ``"brax/<name>"`` (``"brax/ant"``, ``"brax/hopper"``, ``"brax/inverted_pendulum"``).

    env = purerl.envs.make("CartPole-v1", num_envs=8)
    state, obs = env.reset(key)
    state, ts = env.step(key, state, actions)    # ts.obs, ts.reward, ts.terminated, ts.truncated, ts.final_obs
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

from purerl.envs.base import Box, Discrete, StatefulWrapper, TimeStep, VecEnv, Wrapper, WrapperState
from purerl.envs.suites import BRAX_BACKENDS, BraxEnv, GymnaxEnv, brax_env_names
from purerl.envs.wrappers import (ClipAction, EpisodeStatistics, NormalizeObservation, RescaleAction,
                                  NormalizeReward)

__all__ = [
    "make", "make_base", "list_envs", "VecEnv", "TimeStep", "Discrete", "Box", "Wrapper",
    "StatefulWrapper", "WrapperState", "GymnaxEnv", "BraxEnv", "EpisodeStatistics", "ClipAction",
    "RescaleAction", "NormalizeObservation", "NormalizeReward", "ACTION_TRANSFORMS", "BRAX_BACKENDS",
]

ACTION_TRANSFORMS = ("clip", "rescale")


@functools.lru_cache(maxsize=None)
def list_envs() -> tuple[str, ...]:
    """Every env id purerl accepts."""
    import gymnax

    return tuple(gymnax.registered_envs) + tuple(f"brax/{n}" for n in brax_env_names())


def _check_id(env_id: str) -> None:
    if not isinstance(env_id, str):
        raise TypeError(f"config field `env` must be a string env id, got {type(env_id).__name__}")
    import gymnax

    if env_id in gymnax.registered_envs:  # the common case, without importing Brax
        return
    ids = list_envs()
    if env_id in ids:
        return
    close = difflib.get_close_matches(env_id, ids, n=4, cutoff=0.5)
    if not close:  # also try case-insensitively / without the brax/ prefix
        lower = {i.lower(): i for i in ids}
        close = [lower[c] for c in difflib.get_close_matches(env_id.lower(), list(lower), n=4, cutoff=0.4)]
        close += [i for i in ids if i == f"brax/{env_id}"]
    hint = f" Did you mean: {', '.join(dict.fromkeys(close))}?" if close else ""
    raise ValueError(f"config field `env`: unknown env id {env_id!r}.{hint} "
                     "Gymnax ids are used as they are (e.g. 'CartPole-v1'); Brax envs are 'brax/<name>' "
                     "(e.g. 'brax/ant'). purerl.envs.list_envs() lists them all.")


def make_base(env_id: str, num_envs: int, *, backend: str | None = None, episode_length: int = 1000) -> VecEnv:
    """The bare suite adapter (flat observations, auto-reset, terminated/truncated split)."""
    _check_id(env_id)
    if env_id.startswith("brax/"):
        if backend is not None and backend not in BRAX_BACKENDS:
            raise ValueError(f"config field `env_backend` = {backend!r}: Brax backends are {BRAX_BACKENDS}")
        return BraxEnv(env_id[len("brax/"):], num_envs, backend=backend, episode_length=episode_length)
    return GymnaxEnv(env_id, num_envs)


def make(env_id: str, num_envs: int = 1, *, backend: str | None = None, episode_length: int = 1000,
         action_transform: str = "clip", normalize_obs: bool = False, normalize_reward: bool = False, gamma: Any = 0.99) -> VecEnv:
    """A batch of ``num_envs`` environments with purerl's standard wrapper stack.

    From the inside out: suite adapter → action bounds (``"clip"`` for unbounded Gaussian policies,
    ``"rescale"`` for policies acting in ``[-1, 1]``; ignored for discrete actions) → episode statistics
    (raw returns) → observation normalisation → reward scaling by the discounted-return std (``gamma``).
    ``backend``/``episode_length`` apply to Brax envs (gymnax envs carry their own time limit).
    """
    if action_transform not in ACTION_TRANSFORMS:
        raise ValueError(f"config field `action_transform` = {action_transform!r}: use one of {ACTION_TRANSFORMS}")
    env = make_base(env_id, num_envs, backend=backend, episode_length=episode_length)
    if isinstance(env.action_space, Box):
        env = ClipAction(env) if action_transform == "clip" else RescaleAction(env)
    env = EpisodeStatistics(env)
    if normalize_obs:
        env = NormalizeObservation(env)
    if normalize_reward:
        env = NormalizeReward(env, gamma)
    return env
