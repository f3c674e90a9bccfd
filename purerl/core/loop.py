"""The chunked training loop every algorithm shares: ``train(key) = scan(update, init(key))``.

Algorithms provide ``init(key) -> state`` and ``update(state) -> (state, metrics)``; the runner can call
``run_chunk`` for part of the updates, checkpoint the state in between and resume bit-identically.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from purerl.core.progress import ProgressFn, report, report_every


@struct.dataclass
class Result:
    """What ``train(key)`` returns: the final train state and metrics with a leading log-point axis."""

    state: Any
    metrics: dict

    @property
    def params(self) -> Any:
        return self.state.params


def run_chunk(update: Callable[[Any], tuple[Any, dict]], state: Any, num_updates: int) -> tuple[Any, dict]:
    """Apply ``update`` ``num_updates`` times; metrics are stacked along a leading axis."""
    return jax.lax.scan(lambda s, _: update(s), state, None, length=num_updates)


def scan_updates(update: Callable[[Any], tuple[Any, dict]], state: Any, start: jax.Array, length: int,
                 num_updates: int, progress: ProgressFn | None = None,
                 progress_metrics: tuple[str, ...] = ()) -> tuple[Any, dict]:
    """Updates ``start .. start + length - 1`` of a ``num_updates``-update run, reporting progress.

    ``progress`` (a host function) receives ``{"update": i, **{name: metrics[name]}}`` after every block of
    ``report_every(num_updates)`` updates and after the last update (see :mod:`purerl.core.progress`), ``i``
    counting updates from 1. ``start`` may be traced, so one compiled chunk serves every chunk of a run. The
    update index comes from the scan's xs, never from the state, so it is not batched by ``jax.vmap``: with no
    ``progress_metrics`` a vmapped run makes one call per report, not one per seed. Ask for metrics (e.g.
    ``("episode_return",)``) only for unvmapped runs.
    """
    step = lambda s, _: update(s)  # noqa: E731
    if progress is None:
        return jax.lax.scan(step, state, None, length=length)
    k = min(report_every(num_updates), length)
    blocks, rest = divmod(length, k)

    def payload(last_index, metrics):
        return {"update": last_index + 1, **{name: metrics[name][-1] for name in progress_metrics}}

    def block(s, last_index):
        s, metrics = jax.lax.scan(step, s, None, length=k)
        report(progress, payload(last_index, metrics))
        return s, metrics

    state, metrics = jax.lax.scan(block, state, start + (jnp.arange(blocks) + 1) * k - 1)
    metrics = jax.tree.map(lambda x: x.reshape((blocks * k,) + x.shape[2:]), metrics)
    if rest:
        state, tail = jax.lax.scan(step, state, None, length=rest)
        report(progress, payload(start + length - 1, tail))
        metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), metrics, tail)
    return state, metrics


def make_train_fn(init: Callable[[jax.Array], Any], update: Callable[[Any], tuple[Any, dict]],
                  num_updates: int, progress: ProgressFn | None = None,
                  progress_metrics: tuple[str, ...] = ()) -> Callable[[jax.Array], Result]:
    """``train(key)``: ``init`` then ``num_updates`` updates (progress as in :func:`scan_updates`)."""

    def train(key: jax.Array) -> Result:
        state, metrics = scan_updates(update, init(key), jnp.asarray(0), num_updates, num_updates, progress,
                                      progress_metrics)
        return Result(state, metrics)

    return train


@struct.dataclass
class Trainer:
    """An algorithm instantiated for one config: ``init``/``update`` for the chunked loop, ``train`` fused,
    ``evaluate(state, key, num_episodes, deterministic)`` for the trained policy, and
    ``policy(state, deterministic) -> act(obs, key)``: the trained policy as a function of *raw* (batched)
    observations, with the run's saved normaliser statistics applied (for rendering and custom evaluation);
    ``eval_env(num_envs)``: the env that evaluation runs it in (raw rewards, the training action transform).
    Not a pytree of arrays:
    every field is a Python object (marked static) so a Trainer can be closed over freely."""

    config: Any = struct.field(pytree_node=False)
    env: Any = struct.field(pytree_node=False)
    num_updates: int = struct.field(pytree_node=False)
    steps_per_update: int = struct.field(pytree_node=False)
    init: Callable = struct.field(pytree_node=False)
    update: Callable = struct.field(pytree_node=False)
    train: Callable = struct.field(pytree_node=False)
    evaluate: Callable = struct.field(pytree_node=False)
    policy: Callable = struct.field(pytree_node=False, default=None)
    eval_env: Callable = struct.field(pytree_node=False, default=None)
