"""The one environment protocol purerl's algorithms see.

A ``VecEnv`` is a plain Python object (not a pytree) describing a *batch* of ``num_envs`` environments.
Its two methods are pure functions over that batch::

    state, obs = env.reset(key)                       # obs: [num_envs, obs_dim] float32
    state, ts = env.step(key, state, action)          # action: [num_envs] int or [num_envs, act_dim]

``ts`` is a :class:`TimeStep`. Episodes that end are reset automatically, from a fresh initial state drawn
with a new key: ``ts.obs`` is then the first observation of the next episode while ``ts.final_obs`` is the
last observation of the one that ended (equal to ``ts.obs`` on every other step). ``terminated`` marks a true
terminal state (bootstrap with zero); ``truncated`` marks a time limit (bootstrap from ``final_obs``).

Inside a time loop, draw the randomness of all its steps at once and pass one step of it where ``step``
takes a key (:func:`purerl.core.trajectory.scan_env` does this)::

    noise = env.step_noise(key, num_steps)            # leading axis [num_steps]
    state, ts = env.step(noise_t, state, action)      # noise_t = noise at step t

For the suite adapters that is a key per env and step plus a fresh initial state for every env and step,
which an env whose episode ends at that step takes over; each new episode thus starts from its own, freshly
drawn state, and the loop body holds neither random-number generation (on a CPU every threefry call in a
loop body is a loop of its own) nor a conditional reset (which ``jax.vmap`` turns into an unconditional
one, computed for every env at every step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purerl.config import check_count
from purerl.keys import as_key


@dataclass(frozen=True)
class Discrete:
    """``n`` actions, encoded as int32 indices."""

    n: int

    @property
    def shape(self) -> tuple[int, ...]:
        return ()


@dataclass(frozen=True)
class Box:
    """A continuous box ``[low, high]`` of the given shape (bounds stored as numpy arrays)."""

    low: np.ndarray
    high: np.ndarray
    shape: tuple[int, ...]

    @staticmethod
    def make(low: Any, high: Any, shape: tuple[int, ...]) -> "Box":
        low = np.broadcast_to(np.asarray(low, np.float32), shape).copy()
        high = np.broadcast_to(np.asarray(high, np.float32), shape).copy()
        return Box(low, high, tuple(shape))

    def __hash__(self) -> int:  # numpy fields: hash by value so Box can sit in static configs
        return hash((self.low.tobytes(), self.high.tobytes(), self.shape))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Box) and self.shape == other.shape
                and np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high))


@struct.dataclass
class TimeStep:
    obs: jax.Array          # [N, obs_dim], first obs of the next episode where one ended
    reward: jax.Array       # [N] float32
    terminated: jax.Array   # [N] bool: true terminal state, no bootstrap
    truncated: jax.Array    # [N] bool: time limit (and not terminated), bootstrap from final_obs
    final_obs: jax.Array    # [N, obs_dim]: last obs of the step's episode (== obs unless it ended)
    info: dict = struct.field(default_factory=dict)

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class VecEnv:
    """Base class of every environment and wrapper. Subclasses set the attributes below."""

    num_envs: int
    obs_dim: int
    action_space: Discrete | Box
    max_episode_steps: int
    env_id: str

    def reset(self, key: jax.Array) -> tuple[Any, jax.Array]:
        raise NotImplementedError

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> tuple[Any, TimeStep]:
        """One step of every env; ``key`` is a PRNG key or one step of :meth:`step_noise`."""
        raise NotImplementedError

    # Wrappers forward these to the wrapped env.
    def step_noise(self, key: jax.Array, num_steps: int) -> Any:
        """The randomness of the next ``num_steps`` steps, drawn at once (leading axis ``[num_steps]``); its
        slices go to :meth:`step` in place of a key. Envs that draw nothing ahead get a key per step."""
        return jax.random.split(as_key(key, "key"), check_count(num_steps, "num_steps"))

    def obs_normalizer(self, state: Any) -> Any:
        """The running observation statistics in ``state``, or ``None`` when observations are raw."""
        return None

    def to_env_action(self, action: jax.Array) -> jax.Array:
        """``action`` (in this env's :attr:`action_space`) as the suite's own env receives it: wrappers that
        clip or rescale actions apply that here, so a policy's actions can step the bare env."""
        return action

    @property
    def unwrapped(self) -> "VecEnv":
        return self

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """The observation's own shape (e.g. MinAtar's ``(10, 10, C)`` grid). Observations travel flat,
        ``[num_envs, obs_dim]`` with ``obs_dim = prod(obs_shape)``; a CNN torso reshapes them to this."""
        return getattr(self, "_obs_shape", None) or (self.obs_dim,)

    @property
    def is_discrete(self) -> bool:
        return isinstance(self.action_space, Discrete)

    @property
    def action_dim(self) -> int:
        """Number of actions (discrete) or the action vector's size (continuous)."""
        if isinstance(self.action_space, Discrete):
            return self.action_space.n
        return int(np.prod(self.action_space.shape))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id!r}, num_envs={self.num_envs})"


class Wrapper(VecEnv):
    def __init__(self, env: VecEnv):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, key):
        return self.env.reset(key)

    def step(self, key, state, action):
        return self.env.step(key, state, action)

    def step_noise(self, key, num_steps):
        return self.env.step_noise(key, num_steps)

    def obs_normalizer(self, state):
        return self.env.obs_normalizer(state)

    def to_env_action(self, action):
        return self.env.to_env_action(action)

    @property
    def unwrapped(self) -> VecEnv:
        return self.env.unwrapped

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"


@struct.dataclass
class WrapperState:
    """State of a stateful wrapper: its own fields next to the wrapped env's state in ``inner``."""

    inner: Any


class StatefulWrapper(Wrapper):
    """A wrapper whose state is a :class:`WrapperState` subclass holding the inner state in ``inner``."""

    def obs_normalizer(self, state):
        return self.env.obs_normalizer(state.inner)
