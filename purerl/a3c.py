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

The per-worker loss, returns and optimiser are A2C's (:func:`purerl.a2c.make_learner`); each worker has its
own envs (and observation statistics, if normalised; evaluation uses worker 0's). One update of the
:class:`~purerl.core.loop.Trainer` is one round: W parameter updates, ``W * num_envs * num_steps`` env steps.
Metrics add ``staleness`` (mean staleness of the round's gradients).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from purerl import a2c
from purerl.config import check, static_field
from purerl.core import onpolicy
from purerl.core.loop import Result, Trainer
from purerl.core.progress import ProgressFn
from purerl.core.trajectory import EpisodeTally

__all__ = ["Config", "Result", "State", "make", "make_train", "worker_keys"]


@struct.dataclass
class Config(a2c.Config):
    _recurrent_supported = False  # the workers do not carry a memory

    num_envs: int = static_field(8, "environments of each worker")
    num_workers: int = static_field(4, "asynchronous workers (updates per round)")
    max_staleness: int = static_field(3, "how many updates old a worker's parameters are (at most, if random)")
    random_staleness: bool = static_field(True, "draw each gradient's staleness uniformly from 0..max_staleness")

    @property
    def steps_per_update(self) -> int:
        """Env steps per update, which is one round of all workers."""
        return self.num_workers * self.num_envs * self.num_steps

    def _check(self) -> None:
        # first: the shared checks compute the round's batch size from it
        check(self.num_workers >= 1, "num_workers", self.num_workers, "use a positive integer")
        super()._check()

        check(self.max_staleness >= 0, "max_staleness",
              self.max_staleness, "use a non-negative integer (0: no staleness)")


@struct.dataclass
class State(onpolicy.TrainState):
    history: Any = None       # the last max_staleness + 1 parameter versions, stacked on a leading axis
    version: jax.Array = None  # int32: parameter updates applied so far


def worker_keys(key: jax.Array, num_workers: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(next_state_key, staleness_keys [W], rollout_keys [W])`` for one round."""
    key, k_round = jax.random.split(key)
    k = jax.vmap(jax.random.split)(jax.random.split(k_round, num_workers))
    return key, k[:, 0], k[:, 1]


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = ()) -> Trainer:
    """Build A3C for ``config``: validated here, in Python, before anything is traced."""
    s = onpolicy.setup(config, config_cls=Config)
    cfg, env, network = s.cfg, s.env, s.network
    learner = a2c.make_learner(cfg, env, network, updates_per_round=cfg.num_workers)
    W, K = cfg.num_workers, cfg.max_staleness

    def init(key: jax.Array) -> State:
        k_params, k_env, k_state = jax.random.split(key, 3)
        env_state, obs = jax.vmap(env.reset)(jax.random.split(k_env, W))
        params = network.init(k_params, obs[0])
        history = jax.tree.map(lambda p: jnp.broadcast_to(p, (K + 1,) + p.shape), params)
        nan = jnp.full((), jnp.nan, jnp.float32)
        zero = jnp.zeros((), jnp.int32)
        return State(params=params, opt_state=learner.tx.init(params), env_state=env_state, obs=obs, key=k_state,
                     update_step=zero, last_return=nan, last_length=nan, history=history, version=zero)

    def worker(carry, xs):
        params, opt_state, history, version = carry
        env_state, obs, k_stale, k_roll = xs
        s = jax.random.randint(k_stale, (), 0, K + 1) if cfg.random_staleness else jnp.asarray(K)
        s = jnp.minimum(s, version)
        stale = jax.tree.map(lambda h: h[(version - s) % (K + 1)], history)
        grads, aux, ro = learner.gradient(stale, env_state, obs, k_roll)
        params, opt_state = learner.apply(params, opt_state, grads, version)
        version = version + 1
        history = jax.tree.map(lambda h, p: h.at[version % (K + 1)].set(p), history, params)
        aux["staleness"] = s.astype(jnp.float32)
        return (params, opt_state, history, version), (ro.env_state, ro.obs, ro.tally, aux)

    def update(state: State):
        key, k_stale, k_roll = worker_keys(state.key, W)
        (params, opt_state, history, version), (env_state, obs, tallies, aux) = jax.lax.scan(
            worker, (state.params, state.opt_state, state.history, state.version),
            (state.env_state, state.obs, k_stale, k_roll))
        tally = EpisodeTally(*(jnp.sum(x) for x in (tallies.return_sum, tallies.length_sum, tallies.count)))
        state, metrics = onpolicy.end_update(state, tally, cfg.steps_per_update, params=params, opt_state=opt_state,
                                             env_state=env_state, obs=obs, key=key, history=history, version=version)
        return state, {**metrics, **{k: jnp.mean(v) for k, v in aux.items()}}

    single_policy = onpolicy.make_policy(network, env)

    def policy(state: State, deterministic: bool = True):
        # The workers' env states have a leading worker axis: act with worker 0's observation statistics.
        return single_policy(state.replace(env_state=jax.tree.map(lambda x: x[0], state.env_state)), deterministic)

    return onpolicy.make_trainer(cfg, env, network, init=init, update=update, progress=progress,
                            progress_metrics=progress_metrics, policy=policy)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole A3C run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
