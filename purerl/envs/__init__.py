"""purerl's environment layer: one batched, auto-resetting protocol over four suites.

Env ids are gymnax names as they are (``"CartPole-v1"``, ``"Pendulum-v1"``, ``"Breakout-MinAtar"``), Brax
environments as ``"brax/<name>"`` (``"brax/ant"``, ``"brax/hopper"``), MuJoCo Playground tasks as
``"playground/<name>"`` (``"playground/CheetahRun"``; extra ``purerl[playground]``) and Craftax as
``"craftax/<name>"`` (``"craftax/Craftax-Classic-Symbolic-v1"``; extra ``purerl[craftax]``); purerl's own probe
envs (:mod:`purerl.envs.probes`) as ``"probe/<name>"``. Each suite is one row of :data:`SUITES`.

    env = purerl.envs.make("CartPole-v1", num_envs=8)
    state, obs = env.reset(key)
    state, ts = env.step(key, state, actions)    # ts.obs, ts.reward, ts.terminated, ts.truncated, ts.final_obs
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
from collections.abc import Callable, Iterable
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
    "ACTION_TRANSFORMS", "BRAX_BACKENDS", "PLAYGROUND_IMPLS", "PURERL_TIME_LIMIT", "SUITES", "Suite", "suite_of",
]

ACTION_TRANSFORMS = ("clip", "rescale")


@dataclasses.dataclass(frozen=True)
class Suite:
    """One env suite: everything purerl needs to know about it, in one row of :data:`SUITES`.

    ``prefix``: what its ids start with ("" for gymnax's bare names); ``names()``: its env names (ids without
    the prefix); ``make(name, num_envs, backend, episode_length)``: the bare adapter; ``backends``: the
    ``env_backend`` values it accepts (its physics; none: the config must leave ``env_backend`` unset),
    ``backend_what`` naming them in errors; ``own_time_limit``: False where purerl's ``episode_length`` is the
    episodes' time limit (True: the config must leave ``episode_length`` at its default); ``module`` and
    ``extra``: for an optional suite, the package that must import and how to install it; ``renderer``: how
    ``purerl render`` draws it ("frames": a GIF of rendered frames, "brax": an interactive HTML page)."""

    prefix: str
    title: str
    names: Callable[[], Iterable[str]]
    make: Callable[..., VecEnv]
    backends: tuple[str, ...] = ()
    backend_what: str = ""
    own_time_limit: bool = True
    module: str | None = None
    extra: str | None = None
    renderer: str = "frames"
    note: str = ""

    def installed(self) -> bool:
        return self.module is None or importlib.util.find_spec(self.module) is not None

    def ids(self) -> tuple[str, ...]:
        return tuple(self.prefix + n for n in self.names()) if self.installed() else ()

    def ignored_fields(self, max_episode_steps: int) -> dict[str, str]:
        """The config fields this suite's envs take no notice of, read from the row, each with why (for
        :func:`~purerl.config.check_env_fields`, which refuses them away from their defaults): ``env_backend``
        where it has no ``backends``, ``episode_length`` where it has ``own_time_limit`` (``max_episode_steps``:
        the env's own limit, named in the message)."""
        ignored = {}
        if not self.backends:
            choosers = " or ".join(s.title for s in SUITES if s.backends)
            ignored["env_backend"] = (f"it picks the physics of a {choosers} env, and {self.title} envs have no "
                                      "choice of physics")
        if self.own_time_limit:
            ignored["episode_length"] = (f"{self.title} envs carry their own time limit "
                                         f"({max_episode_steps} steps here)")
        return ignored


def _gymnax_names() -> tuple[str, ...]:
    return tuple(import_gymnax().registered_envs)


def _make_gymnax(name: str, num_envs: int, backend: str | None, episode_length: int) -> VecEnv:
    return GymnaxEnv(name, num_envs)


def _make_brax(name: str, num_envs: int, backend: str | None, episode_length: int) -> VecEnv:
    return BraxEnv(name, num_envs, backend=backend, episode_length=episode_length)


def _make_playground(name: str, num_envs: int, backend: str | None, episode_length: int) -> VecEnv:
    missing = playground_needs_download(name)
    if missing is not None:
        raise ValueError(f"config field `env` = 'playground/{name}': this task loads robot models from MuJoCo "
                         f"Menagerie, which MuJoCo Playground clones from GitHub on first load and which is "
                         f"not on this machine ({missing}); fetch it once with network access (python -c "
                         f"'from mujoco_playground._src import mjx_env; mjx_env.ensure_menagerie_exists()') "
                         f"or use a DM Control Suite task such as 'playground/CheetahRun'")
    return PlaygroundEnv(name, num_envs, impl=backend, episode_length=episode_length)


def _make_craftax(name: str, num_envs: int, backend: str | None, episode_length: int) -> VecEnv:
    return CraftaxEnv(name, num_envs)


def _make_probe(name: str, num_envs: int, backend: str | None, episode_length: int) -> VecEnv:
    from purerl.envs.probes import ProbeEnv

    return ProbeEnv(name, num_envs)


def _probe_names() -> tuple[str, ...]:
    from purerl.envs.probes import PROBE_ENVS

    return PROBE_ENVS


# Every suite purerl runs, one row each (adding a suite is adding a row and its adapter). The bare-name suite
# (gymnax) comes last: it matches any id that no prefix claims.
SUITES = (
    Suite("brax/", "Brax", brax_env_names, _make_brax, backends=BRAX_BACKENDS, backend_what="Brax backends",
          own_time_limit=False, renderer="brax"),
    Suite("playground/", "MuJoCo Playground", playground_env_names, _make_playground, backends=PLAYGROUND_IMPLS,
          backend_what="MuJoCo Playground's physics implementations (MJX impl)", own_time_limit=False,
          module="mujoco_playground", extra=PLAYGROUND_EXTRA),
    Suite("craftax/", "Craftax", lambda: CRAFTAX_ENVS, _make_craftax, module="craftax", extra=CRAFTAX_EXTRA,
          note=" (symbolic observations only)"),
    Suite("probe/", "probe", _probe_names, _make_probe),
    Suite("", "gymnax", _gymnax_names, _make_gymnax),
)

# Suites without a time limit of their own: purerl's `episode_length` sets it and `env_backend` picks their
# physics (Brax's pipeline, Playground's MJX implementation). The others (gymnax, Craftax) carry their own.
PURERL_TIME_LIMIT = tuple(s.prefix for s in SUITES if not s.own_time_limit)


def suite_of(env_id: str) -> Suite:
    """The :class:`Suite` row that ``env_id`` belongs to (by its prefix; bare names are gymnax's)."""
    return next(s for s in SUITES if env_id.startswith(s.prefix))


@functools.lru_cache(maxsize=None)
def list_envs() -> tuple[str, ...]:
    """Every env id purerl accepts: gymnax, Brax and probe ids, and those of the optional suites (MuJoCo
    Playground, Craftax) whose package is installed."""
    return sum((s.ids() for s in sorted(SUITES, key=lambda s: s.prefix)), ())


def _check_id(env_id: str) -> Suite:
    if not isinstance(env_id, str):
        raise TypeError(f"config field `env` must be a string env id, got {type(env_id).__name__}")
    suite = suite_of(env_id)
    if not suite.installed():
        raise ValueError(f"config field `env` = {env_id!r} is a {suite.title} env, and {suite.title} is not "
                         f"installed: {suite.extra}")
    if env_id in suite.ids():  # the suite's own ids: no other suite is imported
        return suite
    ids = list_envs()
    close = difflib.get_close_matches(env_id, ids, n=4, cutoff=0.5)
    if not close:  # also try case-insensitively / without a suite prefix
        lower = {i.lower(): i for i in ids}
        close = [lower[c] for c in difflib.get_close_matches(env_id.lower(), list(lower), n=4, cutoff=0.4)]
        close += [i for i in ids if i.split("/")[-1] == env_id]
    hint = f" Did you mean: {', '.join(dict.fromkeys(close))}?" if close else ""
    raise ValueError(f"config field `env`: unknown env id {env_id!r}.{hint} "
                     "Gymnax ids are used as they are (e.g. 'CartPole-v1'); Brax envs are 'brax/<name>' "
                     "(e.g. 'brax/ant'), MuJoCo Playground tasks 'playground/<name>' "
                     "(e.g. 'playground/CheetahRun'), "
                     f"Craftax 'craftax/<name>'{suite.note} (e.g. 'craftax/Craftax-Classic-Symbolic-v1'), "
                     "probe envs 'probe/<name>' (e.g. 'probe/ConstantValue'). "
                     "purerl.envs.list_envs() lists them all.")


def _check_backend(suite: Suite, backend: str | None) -> None:
    if backend is None or not suite.backends:
        return
    if backend not in suite.backends:
        raise ValueError(f"config field `env_backend` = {backend!r}: {suite.backend_what} are {suite.backends}")


def make_base(env_id: str, num_envs: int, *, backend: str | None = None, episode_length: int = 1000) -> VecEnv:
    """The bare suite adapter (flat observations, auto-reset, terminated/truncated split)."""
    suite = _check_id(env_id)
    num_envs = check_count(num_envs, "num_envs")
    episode_length = check_count(episode_length, "episode_length")
    _check_backend(suite, backend)
    return suite.make(env_id[len(suite.prefix):], num_envs, backend, episode_length)


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
