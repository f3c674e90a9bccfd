"""Probe environments: tiny tasks whose right answer is known, to check in seconds that an algorithm learns
values and policies at all (after Andy Jones, "Debugging RL, Without the Agonizing Pain", 2021).

Each probe isolates one thing; an algorithm that fails one has a bug there:

| id | what it is | what a learner reaches |
|---|---|---|
| ``ConstantValue`` | one step, observation 1, reward 1 | V = 1 |
| ``ObservedValue`` | one step, observation x = +-1 (drawn per episode), reward x | V(x) = x |
| ``DelayedValue`` | two steps, observations 0 then 1, reward 1 at the end only | V(0) = gamma, V(1) = 1 |
| ``BestAction`` | one step, observation 1, reward for the action taken | the best action always |
| ``ObservedAction`` | one step, observation x = +-1, the best action depends on x | the best action for x |
| ``NoisyReward`` | observation 1, 8 actions, every step pays N(0, 1) whatever the action; 10 steps, then a time-limit truncation | Q = 0 for every action |

Every probe comes with discrete actions (``probe/<id>``: 2 actions, 8 for ``NoisyReward``) and continuous ones
(``probe/<id>-Continuous``: one action in ``[-1, 1]``). Action rewards: discrete, +1 for the right action
(``1``, or under ``ObservedAction`` the action ``x > 0``) and -1 for the other; continuous,
``1 - (a - target)^2`` with target ``0.5`` (``0.5 x`` under ``ObservedAction``). The best return is 1 in
every probe; probes whose reward ignores the action give 1 (``DelayedValue``: 1 per episode) whatever the
policy does. Episodes end by termination (no time limit, no truncation), except ``NoisyReward``'s.

``NoisyReward`` is the task of the overestimation bias (van Hasselt, 2010; van Hasselt et al., 2016): every
reward has mean 0 whatever the policy, so every action's true value is 0 at every discount, and the time limit
truncates (a learner bootstraps through it, as through an endless episode). A target that takes the maximum
over noisy estimates of equal values, DQN's, rises above 0; Double DQN's much less.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

from purerl.keys import as_key
from purerl.envs.base import Box, Discrete, TimeStep, VecEnv


@dataclass(frozen=True)
class _Probe:
    length: int             # steps per episode
    observed_sign: bool     # the observation carries a sign x = +-1 drawn at reset
    action_matters: bool    # the reward depends on the action
    noisy: bool = False     # every step pays N(0, 1) (and nothing else), whatever the action
    num_actions: int = 2    # discrete actions
    truncated: bool = False  # the episode ends by its time limit (truncation), not by termination


_PROBES = {
    "ConstantValue": _Probe(1, False, False),
    "ObservedValue": _Probe(1, True, False),
    "DelayedValue": _Probe(2, False, False),
    "BestAction": _Probe(1, False, True),
    "ObservedAction": _Probe(1, True, True),
    "NoisyReward": _Probe(10, False, False, noisy=True, num_actions=8, truncated=True),
}

PROBE_ENVS = tuple(f"{name}{kind}" for name in _PROBES for kind in ("", "-Continuous"))


@struct.dataclass
class ProbeState:
    t: jax.Array   # [N] int32, step within the episode
    x: jax.Array   # [N] float32, the episode's sign (1 where the probe has none)


class ProbeEnv(VecEnv):
    """``num_envs`` copies of the probe ``name`` (one of :data:`PROBE_ENVS`, without the ``probe/`` prefix)."""

    def __init__(self, name: str, num_envs: int):
        base, _, kind = name.partition("-")
        if base not in _PROBES or kind not in ("", "Continuous"):
            raise ValueError(f"unknown probe {name!r}; probes are {', '.join(PROBE_ENVS)}")
        self.probe = _PROBES[base]
        self.env_id = f"probe/{name}"
        self.num_envs = int(num_envs)
        self.obs_dim = 1
        self.continuous = kind == "Continuous"
        self.action_space = Box.make(-1.0, 1.0, (1,)) if self.continuous else Discrete(self.probe.num_actions)
        self.max_episode_steps = self.probe.length

    def _fresh(self, key: jax.Array) -> ProbeState:
        n = self.num_envs
        x = (jnp.where(jax.random.bernoulli(key, 0.5, (n,)), 1.0, -1.0) if self.probe.observed_sign
             else jnp.ones((n,)))
        return ProbeState(t=jnp.zeros((n,), jnp.int32), x=x.astype(jnp.float32))

    def _obs(self, state: ProbeState) -> jax.Array:
        if self.probe.length > 1 and not self.probe.noisy:   # DelayedValue: the step number is the observation
            return state.t.astype(jnp.float32)[:, None]
        return state.x[:, None]

    def reset(self, key):
        state = self._fresh(as_key(key, "key"))
        return state, self._obs(state)

    def _reward(self, state: ProbeState, action: jax.Array, last: jax.Array, key: jax.Array) -> jax.Array:
        p = self.probe
        if p.noisy:
            return jax.random.normal(key, (self.num_envs,))
        if not p.action_matters:   # x (1 where the probe has no sign) at the episode's last step
            return jnp.where(last, state.x, 0.0)
        target_sign = state.x if p.observed_sign else jnp.ones_like(state.x)
        if self.continuous:
            a = jnp.reshape(action, (self.num_envs,)).astype(jnp.float32)
            return 1.0 - (a - 0.5 * target_sign) ** 2
        right = jnp.reshape(action, (self.num_envs,)).astype(jnp.int32) == (target_sign > 0).astype(jnp.int32)
        return jnp.where(right, 1.0, -1.0)

    def step(self, key, state, action):
        key = as_key(key, "key")
        k_reward = None
        if self.probe.noisy:   # the other probes draw nothing but their fresh states
            key, k_reward = jax.random.split(key)
        last = state.t + 1 >= self.probe.length
        reward = self._reward(state, action, last, k_reward)
        after = ProbeState(t=state.t + 1, x=state.x)
        final_obs = self._obs(after)
        fresh = self._fresh(key)
        new = jax.tree.map(lambda f, a: jnp.where(last, f, a), fresh, after)
        ended_by_limit = jnp.full_like(last, self.probe.truncated)
        ts = TimeStep(obs=jnp.where(last[:, None], self._obs(fresh), final_obs), reward=reward,
                      terminated=last & ~ended_by_limit, truncated=last & ended_by_limit, final_obs=final_obs)
        return new, ts

