"""purerl's environment layer: one batched, auto-resetting protocol over four suites.

Env ids are gymnax names as they are (``"CartPole-v1"``, ``"Pendulum-v1"``, ``"Breakout-MinAtar"``), Brax
environments as ``"brax/<name>"`` (``"brax/ant"``, ``"brax/hopper"``), MuJoCo Playground tasks as
``"playground/<name>"`` (``"playground/CheetahRun"``; extra ``purerl[playground]``) and Craftax as
``"craftax/<name>"`` (``"craftax/Craftax-Classic-Symbolic-v1"``; extra ``purerl[craftax]``).

    env = purerl.envs.make("CartPole-v1", num_envs=8)
    state, obs = env.reset(key)
    state, ts = env.step(key, state, actions)    # ts.obs, ts.reward, ts.terminated, ts.truncated, ts.final_obs
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

from purerl.config import check_count, check_flag
from purerl.envs.base import Box, Discrete, StatefulWrapper, TimeStep, VecEnv, Wrapper, WrapperState
from purerl.envs.suites import (BRAX_BACKENDS, CRAFTAX_ENVS, CRAFTAX_EXTRA, PLAYGROUND_EXTRA, PLAYGROUND_IMPLS,
                                BraxEnv, CraftaxEnv, GymnaxEnv, PlaygroundEnv, TimeLimitEnv, brax_env_names,
                                import_gymnax, playground_env_names, playground_needs_download)
from purerl.envs.wrappers import (ClipAction, EpisodeStatistics, NormalizeObservation, RescaleAction,
                                  NormalizeReward)

__all__ = [
    "make", "make_base", "list_envs", "VecEnv", "TimeStep", "Discrete", "Box", "Wrapper",
    "StatefulWrapper", "WrapperState", "GymnaxEnv", "BraxEnv", "PlaygroundEnv", "CraftaxEnv", "TimeLimitEnv",
    "EpisodeStatistics", "ClipAction", "RescaleAction", "NormalizeObservation", "NormalizeReward",
    "ACTION_TRANSFORMS", "BRAX_BACKENDS", "PLAYGROUND_IMPLS", "PURERL_TIME_LIMIT",
]

ACTION_TRANSFORMS = ("clip", "rescale")

# Suites without a time limit of their own: purerl's `episode_length` sets it and `env_backend` picks their
# physics (Brax's pipeline, Playground's MJX implementation). The others (gymnax, Craftax) carry their own.
PURERL_TIME_LIMIT = ("brax/", "playground/")

# Optional suites: id prefix -> (module that must import, how to install it, what it is)
_OPTIONAL = {"playground/": ("mujoco_playground", PLAYGROUND_EXTRA, "MuJoCo Playground"),
             "craftax/": ("craftax", CRAFTAX_EXTRA, "Craftax")}


def _installed(prefix: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(_OPTIONAL[prefix][0]) is not None


def _suite_ids(prefix: str) -> tuple[str, ...]:
    if prefix == "brax/":
        names = brax_env_names()
    elif prefix == "playground/":
        names = playground_env_names() if _installed(prefix) else []
    elif prefix == "craftax/":
        names = CRAFTAX_ENVS if _installed(prefix) else ()
    else:
        return tuple(import_gymnax().registered_envs)
    return tuple(prefix + n for n in names)


@functools.lru_cache(maxsize=None)
def list_envs() -> tuple[str, ...]:
    """Every env id purerl accepts: gymnax and Brax ids, and those of the optional suites (MuJoCo Playground,
    Craftax) whose package is installed."""
    return sum((_suite_ids(p) for p in ("", "brax/", "playground/", "craftax/")), ())


def _check_id(env_id: str) -> None:
    if not isinstance(env_id, str):
        raise TypeError(f"config field `env` must be a string env id, got {type(env_id).__name__}")
    prefix = next((p for p in ("brax/", "playground/", "craftax/") if env_id.startswith(p)), "")
    if prefix in _OPTIONAL and not _installed(prefix):
        _, extra, what = _OPTIONAL[prefix]
        raise ValueError(f"config field `env` = {env_id!r} is a {what} env, and {what} is not installed: "
                         f"{extra}")
    if env_id in _suite_ids(prefix):  # the suite's own ids: no other suite is imported
        return
    ids = list_envs()
    close = difflib.get_close_matches(env_id, ids, n=4, cutoff=0.5)
    if not close:  # also try case-insensitively / without a suite prefix
        lower = {i.lower(): i for i in ids}
        close = [lower[c] for c in difflib.get_close_matches(env_id.lower(), list(lower), n=4, cutoff=0.4)]
        close += [i for i in ids if i.split("/")[-1] == env_id]
    hint = f" Did you mean: {', '.join(dict.fromkeys(close))}?" if close else ""
    craftax = (" (symbolic observations only)" if prefix == "craftax/" else "")
    raise ValueError(f"config field `env`: unknown env id {env_id!r}.{hint} "
                     "Gymnax ids are used as they are (e.g. 'CartPole-v1'); Brax envs are 'brax/<name>' "
                     "(e.g. 'brax/ant'), MuJoCo Playground tasks 'playground/<name>' "
                     "(e.g. 'playground/CheetahRun'), "
                     f"Craftax 'craftax/<name>'{craftax} (e.g. 'craftax/Craftax-Classic-Symbolic-v1'). "
                     "purerl.envs.list_envs() lists them all.")


def _check_backend(env_id: str, backend: str | None) -> None:
    if backend is None:
        return
    if env_id.startswith("brax/") and backend not in BRAX_BACKENDS:
        raise ValueError(f"config field `env_backend` = {backend!r}: Brax backends are {BRAX_BACKENDS}")
    if env_id.startswith("playground/") and backend not in PLAYGROUND_IMPLS:
        raise ValueError(f"config field `env_backend` = {backend!r}: MuJoCo Playground's physics "
                         f"implementations (MJX impl) are {PLAYGROUND_IMPLS}")


def make_base(env_id: str, num_envs: int, *, backend: str | None = None, episode_length: int = 1000) -> VecEnv:
    """The bare suite adapter (flat observations, auto-reset, terminated/truncated split)."""
    _check_id(env_id)
    num_envs = check_count(num_envs, "num_envs")
    episode_length = check_count(episode_length, "episode_length")
    _check_backend(env_id, backend)
    suite, _, name = env_id.partition("/")
    if suite == "brax":
        return BraxEnv(name, num_envs, backend=backend, episode_length=episode_length)
    if suite == "playground":
        missing = playground_needs_download(name)
        if missing is not None:
            raise ValueError(f"config field `env` = {env_id!r}: this task loads robot models from MuJoCo "
                             f"Menagerie, which MuJoCo Playground clones from GitHub on first load and which is "
                             f"not on this machine ({missing}); fetch it once with network access (python -c "
                             f"'from mujoco_playground._src import mjx_env; mjx_env.ensure_menagerie_exists()') "
                             f"or use a DM Control Suite task such as 'playground/CheetahRun'")
        return PlaygroundEnv(name, num_envs, impl=backend, episode_length=episode_length)
    if suite == "craftax":
        return CraftaxEnv(name, num_envs)
    return GymnaxEnv(env_id, num_envs)


def make(env_id: str, num_envs: int = 1, *, backend: str | None = None, episode_length: int = 1000,
         action_transform: str = "clip", normalize_obs: bool = False, normalize_reward: bool = False, gamma: Any = 0.99) -> VecEnv:
    """A batch of ``num_envs`` environments with purerl's standard wrapper stack.

    From the inside out: suite adapter → action bounds (``"clip"`` for unbounded Gaussian policies,
    ``"rescale"`` for policies acting in ``[-1, 1]``; ignored for discrete actions) → episode statistics
    (raw returns) → observation normalisation → reward scaling by the discounted-return std (``gamma``).
    ``backend`` picks a Brax env's physics pipeline or a MuJoCo Playground task's MJX implementation;
    ``episode_length`` is their time limit (gymnax and Craftax envs carry their own).
    """
    if action_transform not in ACTION_TRANSFORMS:
        raise ValueError(f"config field `action_transform` = {action_transform!r}: use one of {ACTION_TRANSFORMS}")
    normalize_obs = check_flag(normalize_obs, "normalize_obs")
    normalize_reward = check_flag(normalize_reward, "normalize_reward")
    env = make_base(env_id, num_envs, backend=backend, episode_length=episode_length)
    if isinstance(env.action_space, Box):
        env = ClipAction(env) if action_transform == "clip" else RescaleAction(env)
    env = EpisodeStatistics(env)
    if normalize_obs:
        env = NormalizeObservation(env)
    if normalize_reward:
        env = NormalizeReward(env, gamma)
    return env
