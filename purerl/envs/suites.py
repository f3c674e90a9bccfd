"""Adapters from gymnax (1.x step API), Brax, MuJoCo Playground and Craftax to the
:class:`~purerl.envs.base.VecEnv` protocol.

Two families share their step logic: gymnax-style envs (``step_env``/``reset_env``, :class:`GymnaxEnv`, and
Craftax, :class:`CraftaxEnv`), which carry their own time limit, and ``reset(key) -> State`` /
``step(State, action) -> State`` envs without one (Brax, :class:`BraxEnv`, and MuJoCo Playground,
:class:`PlaygroundEnv`), for which :class:`TimeLimitEnv` counts the steps itself.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import sys
import types
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purerl.config import check_count
from purerl.keys import as_key, split_keys
from purerl.envs.base import Box, Discrete, TimeStep, VecEnv


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


def step_noise_of(adapter: VecEnv, key_or_noise: Any) -> StepNoise:
    """``key_or_noise`` as one step's :class:`StepNoise` (drawn from it when it is a key)."""
    if isinstance(key_or_noise, StepNoise):
        return key_or_noise
    return jax.tree.map(lambda x: x[0], adapter.step_noise(as_key(key_or_noise, "key"), 1))


class _ImportedOnFirstUse(types.ModuleType):
    """Stands in for a module that is imported only when one of its attributes is first read."""

    def __init__(self, name: str, spec: Any):
        super().__init__(name)
        self.__spec__ = spec  # the import system reads it; it must not trigger the import

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


# Modules that gymnax's package imports (through every env it registers) for its envs' ``render`` methods
# only: seaborn (with scipy.stats and pandas) and matplotlib.pyplot take about 1.5 s to import on a 2-core
# CPU, most of what `import gymnax` costs, and the start of every run that uses a gymnax env.
GYMNAX_PLOTTING_MODULES = ("seaborn", "matplotlib.pyplot")


def import_gymnax() -> types.ModuleType:
    """``import gymnax``, with its plotting modules imported when first used instead of with it (gymnax's
    renderers and purerl's own still get the real modules, on their first attribute read). Stand-ins take part
    only while gymnax imports: afterwards ``import seaborn`` anywhere imports the real module."""
    if "gymnax" in sys.modules:
        return sys.modules["gymnax"]
    placed = []
    try:
        for name in GYMNAX_PLOTTING_MODULES:
            if name not in sys.modules:
                spec = importlib.util.find_spec(name)
                if spec is not None:
                    sys.modules[name] = _ImportedOnFirstUse(name, spec)
                    placed.append(name)
        import gymnax
    finally:
        for name in placed:
            if isinstance(sys.modules.get(name), _ImportedOnFirstUse):
                del sys.modules[name]
    return gymnax


class GymnaxEnv(VecEnv):
    """``num_envs`` copies of a gymnax environment, vmapped. Non-vector observations are flattened.

    ``gymnax_env`` and ``env_params`` are the gymnax environment and its parameters (renderers draw with them)."""

    def __init__(self, env_id: str, num_envs: int, env_params: Any = None):
        gymnax = import_gymnax()
        from gymnax.environments.environment import Environment

        env, default_params = gymnax.make(env_id)
        params = default_params if env_params is None else env_params
        self._setup(env_id, num_envs, env, params, int(getattr(params, "max_steps_in_episode", 1000)))
        self._custom_step = type(self.gymnax_env).step is not Environment.step

    def _setup(self, env_id: str, num_envs: int, env: Any, params: Any, max_episode_steps: int) -> None:
        """Spaces and sizes of a gymnax-style ``env`` (gymnax's or Craftax's own copy of gymnax's spaces)."""
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.gymnax_env, self.env_params = env, params
        shape = tuple(int(d) for d in env.observation_space(params).shape)
        self.obs_dim = int(np.prod(shape))
        self._obs_shape = shape or (1,)
        act = env.action_space(params)
        if hasattr(act, "n"):
            self.action_space = Discrete(int(act.n))
        elif hasattr(act, "low") and hasattr(act, "high"):
            self.action_space = Box.make(act.low, act.high, tuple(act.shape))
        else:
            raise ValueError(f"env `{env_id}` has an action space of type {type(act).__name__}, "
                             "which purerl does not support (only Discrete and Box)")
        self.max_episode_steps = int(max_episode_steps)

    def _end_flags(self, state: Any, done: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(terminated, truncated)`` of the states after a step whose ``step_env`` said ``done``."""
        truncated = jax.vmap(self.gymnax_env.is_truncated, in_axes=(0, None))(state, self.env_params)
        return _flags(done, truncated, self.num_envs)

    def _cast_action(self, action: jax.Array) -> jax.Array:
        if isinstance(self.action_space, Discrete):
            return action.astype(jnp.int32)
        return jnp.reshape(action, (self.num_envs,) + self.action_space.shape).astype(jnp.float32)

    def reset(self, key):
        keys = jax.random.split(as_key(key, "key"), self.num_envs)
        obs, state = jax.vmap(self.gymnax_env.reset, in_axes=(0, None))(keys, self.env_params)
        return state, _flat(obs, self.num_envs)

    def step_noise(self, key, num_steps):
        num_steps = check_count(num_steps, "num_steps")
        n = self.num_envs
        k_step, k_reset = jax.random.split(as_key(key, "key"))
        keys = split_keys(k_step, (num_steps, n))
        if self._custom_step:  # gymnax's own auto-resetting step draws its resets from the step key
            return StepNoise(keys, None, None)
        reset = jax.vmap(jax.vmap(self.gymnax_env.reset_env, in_axes=(0, None)), in_axes=(0, None))
        fresh_obs, fresh = reset(split_keys(k_reset, (num_steps, n)), self.env_params)
        return StepNoise(keys, fresh, jnp.reshape(fresh_obs, (num_steps, n, -1)).astype(jnp.float32))

    def step(self, key, state, action):
        noise = step_noise_of(self, key)
        if self._custom_step:
            return self._generic_step(noise.keys, state, action)
        n = self.num_envs
        obs, state, reward, done, _ = jax.vmap(self.gymnax_env.step_env, in_axes=(0, 0, 0, None))(
            noise.keys, state, self._cast_action(action), self.env_params)
        terminated, truncated = self._end_flags(state, done)
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
class TimeLimitState:
    core: Any          # the suite's own batched state (brax.envs.State, mujoco_playground.State)
    steps: jax.Array   # [N] int32, steps taken in the current episode


@functools.lru_cache(maxsize=None)  # the suites' env objects are cached too (one trace per env)
def _observation_size(env: Any) -> Any:
    """The size of a Brax or Playground env's observation (an int, or a dict of shapes), from the shape of its
    ``reset``'s output (``jax.eval_shape``: traced, never run). The suites' own ``observation_size`` runs
    ``reset`` eagerly, op by op, which compiles every primitive on its own (573 XLA compilations for
    ``brax/ant``)."""
    obs = jax.eval_shape(lambda: env.reset(jax.random.key(0))).obs  # the key made inside: nothing runs
    if isinstance(obs, jax.ShapeDtypeStruct):
        return int(obs.shape[-1])
    return jax.tree.map(lambda x: x.shape, obs)


class TimeLimitEnv(VecEnv):
    """``num_envs`` copies of an env with ``reset(key) -> State`` and ``step(State, action) -> State``
    (``State.obs``, ``.reward``, ``.done``) and no time limit of its own: purerl's time limit and auto-reset.

    The step count is carried next to the suite's state; at ``max_episode_steps`` the step is ``truncated``
    (``terminated`` where the env itself says ``done`` at that step too). An env whose episode ends takes a
    fresh initial state from :meth:`step_noise`, drawn with a new key per env, never a cached first state. The
    draws are made ahead of the loop, one per env for every ``reset_block`` steps (every step for Brax, whose
    reset is cheap; once per ``max_episode_steps`` for Playground, whose DM Control tasks settle the model
    for hundreds of physics steps in ``reset`` and end by their time limit).
    """

    def __init__(self, env_id: str, env: Any, num_envs: int, obs_size: Any, action_size: int,
                 episode_length: int):
        if not isinstance(obs_size, int):
            raise ValueError(f"env `{env_id}` has dict observations, which purerl does not support")
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.core_env = env
        self.obs_dim = int(obs_size)
        self.action_space = Box.make(-1.0, 1.0, (int(action_size),))
        self.max_episode_steps = int(episode_length)

    def reset(self, key):
        core = jax.vmap(self.core_env.reset)(jax.random.split(as_key(key, "key"), self.num_envs))
        return TimeLimitState(core, jnp.zeros((self.num_envs,), jnp.int32)), core.obs.astype(jnp.float32)

    # Steps that share one draw of fresh initial states (1: a new draw for every step). An env that is only
    # ever truncated ends at most once in ``max_episode_steps`` steps, so with blocks that long it still starts
    # every episode from a state of its own; an env terminated twice inside one block would start both episodes
    # from the same (fresh, random) state.
    reset_block: int = 1

    def step_noise(self, key, num_steps):
        num_steps = check_count(num_steps, "num_steps")
        block = max(1, min(self.reset_block, num_steps))
        draws = -(-num_steps // block)
        fresh = jax.vmap(jax.vmap(self.core_env.reset))(split_keys(as_key(key, "key"), (draws, self.num_envs)))
        if block > 1:
            fresh = jax.tree.map(lambda x: jnp.repeat(x, block, axis=0)[:num_steps], fresh)
        return StepNoise(None, fresh, None)

    def step(self, key, state, action):
        noise = step_noise_of(self, key)
        core = jax.vmap(self.core_env.step)(state.core, action.astype(jnp.float32))
        steps = state.steps + 1
        terminated, truncated = _flags(core.done > 0.5, steps >= self.max_episode_steps, self.num_envs)
        done = jnp.logical_or(terminated, truncated)
        final_obs = core.obs.astype(jnp.float32)
        reward = core.reward.astype(jnp.float32)
        core = _select(done, noise.fresh_state, core)
        steps = jnp.where(done, 0, steps)
        ts = TimeStep(obs=core.obs.astype(jnp.float32), reward=reward,
                      terminated=terminated, truncated=truncated, final_obs=final_obs)
        return TimeLimitState(core, steps), ts


BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")


@contextlib.contextmanager
def _brax_loads_without_copies():
    """Brax's system loader (``brax.io.mjcf.load_model``) ends with ``jax.tree.map(jnp.array, sys)``: on arrays
    already on the device, ``jnp.array`` copies them with an XLA program compiled per shape (57 compilations
    for ant, each a launch on a GPU; jax 0.11 also converts numpy's float64 arrays on the device). The arrays are
    fresh and unshared, so :func:`_to_device` (no copy; numpy arrays converted on the host and transferred) builds
    the same system; the loader's module sees it for the duration of a load."""
    try:
        from brax.io import mjcf
    except ImportError:  # pragma: no cover
        yield
        return
    real = getattr(mjcf, "jp", None)
    if real is not jnp:  # another brax version: leave it as it is
        yield
        return
    mjcf.jp = _NoCopyNumpy()
    try:
        yield
    finally:
        mjcf.jp = real


def _to_device(x: Any) -> Any:
    """``x`` as a jax array without running an XLA program: a jax array as it is; anything else converted to
    jax's dtype on the host (float64 to float32 unless x64 is on) and transferred."""
    if isinstance(x, jax.Array):
        return x
    host = np.asarray(x)
    return jax.device_put(host.astype(jax.dtypes.canonicalize_dtype(host.dtype), copy=False))


class _NoCopyNumpy:
    """``jax.numpy`` with ``array`` as :func:`_to_device` (see :func:`_brax_loads_without_copies`)."""

    array = staticmethod(_to_device)

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)


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
        with _brax_loads_without_copies():
            return brax_envs.get_environment(name, **kwargs)


def brax_env_names() -> list[str]:
    with contextlib.redirect_stdout(io.StringIO()):
        from brax import envs as brax_envs
    return sorted(brax_envs._envs)  # the registry has no public listing in brax 0.14


class BraxEnv(TimeLimitEnv):
    """``num_envs`` copies of a Brax environment with purerl's own time limit and auto-reset
    (:class:`TimeLimitEnv`).

    Brax's training ``AutoResetWrapper`` returns finished episodes to a cached first state; here every
    reset takes a fresh initial state drawn from a new key (from :meth:`step_noise`), as gymnax does.
    ``brax_env`` is the Brax environment (its ``sys`` is what Brax's HTML viewer draws).
    """

    def __init__(self, name: str, num_envs: int, backend: str | None = None, episode_length: int = 1000):
        env = _brax_env(name, backend)
        super().__init__(f"brax/{name}", env, num_envs, _observation_size(env), env.action_size, episode_length)
        self.backend = env.backend

    @property
    def brax_env(self) -> Any:
        return self.core_env


# --- MuJoCo Playground ---------------------------------------------------------------------------------------

PLAYGROUND_IMPLS = ("jax", "warp")
PLAYGROUND_EXTRA = "pip install 'purerl[playground]'"


def _playground():
    """``mujoco_playground`` (its import builds every suite's registry; mujoco's notices kept off stdout)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import mujoco_playground
    return mujoco_playground


def playground_env_names() -> list[str]:
    return sorted(_playground().registry.ALL_ENVS)


def playground_needs_download(name: str) -> str | None:
    """Where a Playground task's assets would be downloaded to on its first load, when they are missing:
    the locomotion and manipulation tasks use robot models from MuJoCo Menagerie, which Playground clones
    from GitHub into its own package folder; the DM Control Suite tasks ship their XML in the package."""
    pg = _playground()
    if name not in pg.locomotion.ALL_ENVS and name not in pg.manipulation.ALL_ENVS:
        return None
    from mujoco_playground._src import mjx_env  # the Menagerie path has no public name in playground 0.2

    path = getattr(mjx_env, "MENAGERIE_PATH", None)
    return None if path is None or path.exists() else str(path)


@functools.lru_cache(maxsize=None)
def _playground_env(name: str, impl: str):
    with contextlib.redirect_stdout(io.StringIO()):
        return _playground().registry.load(name, config_overrides={"impl": impl})


class PlaygroundEnv(TimeLimitEnv):
    """``num_envs`` copies of a MuJoCo Playground task (``mujoco_playground.registry``) with purerl's own time
    limit and auto-reset (:class:`TimeLimitEnv`; Playground has no time limit of its own).

    ``impl`` is MJX's physics implementation: ``"jax"`` (purerl's default: pure JAX, any JAX device) or
    ``"warp"`` (MuJoCo Warp kernels, Playground's own default, written for NVIDIA GPUs). Actions lie in
    ``[-1, 1]``, the range Playground's tasks are written for.
    """

    def __init__(self, name: str, num_envs: int, impl: str | None = None, episode_length: int = 1000):
        impl = "jax" if impl is None else impl
        env = _playground_env(name, impl)
        super().__init__(f"playground/{name}", env, num_envs, _observation_size(env), env.action_size,
                         episode_length)
        self.backend = impl
        self.reset_block = self.max_episode_steps


# --- Craftax ---------------------------------------------------------------------------------------------------

CRAFTAX_ENVS = ("Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1")
CRAFTAX_EXTRA = "pip install 'purerl[craftax]'"


class CraftaxEnv(GymnaxEnv):
    """``num_envs`` copies of a Craftax env with symbolic (flat) observations, in gymnax's step API.

    Craftax's step says ``done`` for three reasons at once: the time limit (``EnvParams.max_timesteps``,
    10,000 steps), death and (full Craftax) beating the final boss. ``terminated`` is the env's own
    ``is_terminal`` with the time limit lifted; ``truncated`` is the time limit reached without it.
    ``env_params`` replaces Craftax's default ``EnvParams`` (e.g. a shorter ``max_timesteps``).
    """

    def __init__(self, name: str, num_envs: int, env_params: Any = None):
        from craftax.craftax_env import make_craftax_env_from_name

        env = make_craftax_env_from_name(name, auto_reset=False)
        params = env.default_params if env_params is None else env_params
        self._setup(f"craftax/{name}", num_envs, env, params, int(params.max_timesteps))
        self._custom_step = False
        self._no_limit = params.replace(max_timesteps=np.iinfo(np.int32).max)

    def _end_flags(self, state, done):
        terminated = jax.vmap(self.gymnax_env.is_terminal, in_axes=(0, None))(state, self._no_limit)
        return _flags(terminated, state.timestep >= self.env_params.max_timesteps, self.num_envs)
