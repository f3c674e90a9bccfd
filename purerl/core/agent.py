"""The one protocol every algorithm follows: an algorithm supplies an :class:`Agent`, its family's loop owns the
rest.

An algorithm module is a ``Config``, its losses as top-level pure functions and ``make_agent(cfg, env) ->
Agent``; its ``make(config)`` is its family's ``build(config, make_agent)``
(:func:`purerl.core.onpolicy.build`, :func:`purerl.core.offpolicy.build`). The agent says, for a validated
config and the training env:

* ``init(key, obs) -> state``: its networks' initial parameters, their optimiser states and anything else it
  learns with, given the envs' first observations;
* ``explore(state, obs, x, carry) -> (action, extras, carry)``: how it acts while it learns, for a batch of
  envs. ``x`` is this step's randomness, drawn ahead of the loop; ``carry`` is what it carries from one step
  of an env to the next (a recurrent policy's memory, an exploration process's state; ``None`` if nothing),
  which the loop resets where an episode ended; ``extras`` is what the learning step needs of the step besides
  the action (the behaviour policy's log-probabilities; usually ``{}``);
* ``learn(state, data, key) -> (state, metrics)``: one learning step on the data its loop collected.

The two families differ in what they collect and when they learn, so each loop's agent adds its own fields:

* on-policy (:class:`purerl.core.onpolicy.Agent`): ``state`` is the train state itself (a
  ``TrainState``: params, optimiser state and any field of the algorithm's subclass of it); ``x`` is step
  ``t`` of the agent's ``draw(key, (T, N))``, drawn once per rollout; ``data`` is the update's
  :class:`~purerl.core.trajectory.Rollout`, whose ``behaviour`` is the state it acted with; the agent is
  evaluated by ``policy(state, deterministic)``;
* off-policy (:class:`purerl.core.offpolicy.Agent`): ``state`` is the agent's own, which the loop keeps in
  ``OffPolicyState.agent``; ``x`` is a key; ``data`` is a batch sampled from the replay buffer; the agent is
  evaluated by its deterministic ``act(state, obs)``, and says what the loop must know of its actions (the
  replay item, the warm-up's random actions, the exploration state).

The loops own everything else, once for every algorithm: the envs and their splitting over a device mesh,
observation normalisation (the env's running statistics on-policy, :func:`purerl.core.offpolicy.normalized`
off-policy), a recurrent policy's memory, collection (a rollout, or env steps into a replay buffer with a
warm-up), the learning-rate schedule of on-policy runs, the counters and episode metrics that end every update
(:func:`purerl.core.loop.carry_episodes`), evaluation, and the :class:`~purerl.core.loop.Trainer`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

__all__ = ["Agent"]


@dataclasses.dataclass(frozen=True)
class Agent:
    """What an algorithm supplies to its family's loop (see the module docstring); each family's loop takes a
    subclass with the fields that family needs besides these."""

    init: Callable[[jax.Array, jax.Array], Any]
    explore: Callable[[Any, jax.Array, Any, Any], tuple[jax.Array, dict, Any]]
    learn: Callable[[Any, Any, jax.Array], tuple[Any, dict]]
