"""Asynchronous Advantage Actor-Critic (A3C; Mnih et al., 2016), emulated inside one compiled program.

    cfg = a3c.Config(env="CartPole-v1", num_workers=4, max_staleness=3)
    result = jax.jit(a3c.make_train(cfg))(jax.random.key(0))

How the asynchrony is emulated. In A3C, W workers each hold a copy of the shared parameters, collect an
n-step rollout in their own envs, compute an actor-critic gradient *at their copy* and apply it to the
shared parameters (with a shared RMSProp) without waiting for the others; by the time a gradient lands,
other workers may have moved the parameters: the gradient is *stale*. Here one round is a ``lax.scan`` over
the W workers in a fixed order. The last ``max_staleness + 1`` parameter versions are kept in a ring
buffer; worker w reads the version that is ``k`` updates old (``k = max_staleness`` fixed, or drawn
uniformly from ``0..max_staleness`` with ``random_staleness``; never older than the initial parameters),
runs its ``num_steps`` x ``num_envs`` rollout and computes the gradient with those parameters, then the
gradient is applied to the *current* parameters and optimiser state and the result becomes the newest
version. With ``max_staleness=0`` this is exactly W workers applying their updates one after another, each
on fresh parameters (tested). The program is deterministic: the "races" are drawn from the key.

The per-worker loss, returns and optimiser are A2C's (:func:`purerl.a2c.make_agent`, whose learning step takes
the gradient at the parameters a rollout was collected with); the workers' turns are the on-policy loop's
(:class:`purerl.core.onpolicy.Agent`'s ``workers`` and ``behaviour``). Each worker has its own envs (and
observation statistics, if normalised; evaluation and the trained policy use the statistics of every worker's
observations together). One update of the :class:`~purerl.core.loop.Trainer` is one round: W parameter
updates, ``W * num_envs * num_steps`` env steps. Metrics add ``staleness`` (mean staleness of the round's
gradients).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from purerl import a2c
from purerl.config import check, static_field
from purerl.core import onpolicy
from purerl.core.loop import Result, Trainer
from purerl.core.progress import ProgressFn

__all__ = ["Config", "Result", "State", "make", "make_agent", "make_train"]


@struct.dataclass
class Config(a2c.Config):
    _recurrent_supported = False  # the workers do not carry a memory

    num_envs: int = static_field(8, "environments of each worker")
    num_workers: int = static_field(4, "asynchronous workers (updates per round)")
    max_staleness: int = static_field(3, "how many updates old a worker's parameters are (at most, if random)")
    random_staleness: bool = static_field(True, "draw each gradient's staleness uniformly from 0..max_staleness")

    @property
    def steps_per_log_point(self) -> int:
        """Env steps per log point, which is one round of all workers."""
        return self.num_workers * self.num_envs * self.num_steps

    def _check(self) -> None:
        # first: the shared checks compute the round's batch size from it
        check(self.num_workers >= 1, "num_workers", self.num_workers, "use a positive integer")
        super()._check()
        check(self.max_staleness >= 0, "max_staleness", self.max_staleness,
              "use a non-negative integer (0: no staleness)")


@struct.dataclass
class State(onpolicy.TrainState):
    history: Any = None       # the last max_staleness + 1 parameter versions, stacked on a leading axis
    version: jax.Array = None  # int32: parameter updates applied so far


def make_agent(cfg: Config, env) -> onpolicy.Agent:
    """A3C's agent: A2C's learning step (:func:`purerl.a2c.make_agent`: the gradient at the parameters a rollout
    was collected with, applied to the current ones) for ``num_workers`` workers taking turns, each collecting
    with the parameters its staleness says, and the ring buffer of parameter versions they are read from."""
    a2c_agent = a2c.make_agent(cfg, env)
    slots = cfg.max_staleness + 1

    def init(key: jax.Array, obs: jax.Array) -> State:
        fresh = a2c_agent.init(key, obs)
        history = jax.tree.map(lambda p: jnp.broadcast_to(p, (slots,) + p.shape), fresh.params)
        return State(params=fresh.params, opt_state=fresh.opt_state, history=history, version=jnp.zeros((), jnp.int32))

    def behaviour(state: State, key: jax.Array) -> State:
        """The state as it was ``staleness`` parameter updates ago (never before the initial parameters)."""
        staleness = (jax.random.randint(key, (), 0, slots) if cfg.random_staleness
                     else jnp.asarray(cfg.max_staleness))
        version = state.version - jnp.minimum(staleness, state.version)
        return state.replace(params=jax.tree.map(lambda h: h[version % slots], state.history), version=version)

    def learn(state: State, ro, key: jax.Array):
        state, metrics = a2c_agent.learn(state, ro, key)
        version = state.version + 1
        history = jax.tree.map(lambda h, p: h.at[version % slots].set(p), state.history, state.params)
        staleness = (state.version - ro.behaviour.version).astype(jnp.float32)
        return state.replace(history=history, version=version), {**metrics, "staleness": staleness}

    return dataclasses.replace(a2c_agent, init=init, learn=learn, behaviour=behaviour, workers=cfg.num_workers)


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = ()) -> Trainer:
    """Build A3C for ``config``: validated here, in Python, before anything is traced."""
    return onpolicy.build(config, make_agent, progress, progress_metrics, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole A3C run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
