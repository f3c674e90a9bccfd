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


def env_steps(update_step: jax.Array, steps_per_update: int) -> jax.Array:
    """Env steps after ``update_step`` updates of ``steps_per_update`` steps, as float32: exact up to 2^24
    (16.7M), then to float32's 7 significant digits. An int32 count (jax's default integer) would wrap
    negative after 2^31 steps, which long Brax runs reach; the runner writes exact counts to its files."""
    return jnp.asarray(update_step).astype(jnp.float32) * steps_per_update


def run_chunk(update: Callable[[Any], tuple[Any, dict]], state: Any, num_updates: int) -> tuple[Any, dict]:
    """Apply ``update`` ``num_updates`` times; metrics are stacked along a leading axis."""
    return jax.lax.scan(lambda s, _: update(s), state, None, length=num_updates)


def scan_updates(update: Callable[[Any], tuple[Any, dict]], state: Any, start: jax.Array, length: int,
                 num_updates: int, progress: ProgressFn | None = None,
                 progress_metrics: tuple[str, ...] = ()) -> tuple[Any, dict]:
    """Updates ``start .. start + length - 1`` of a ``num_updates``-update run, reporting progress.

    ``progress`` (a host function) receives ``{"update": i, **{name: metrics[name]}}`` after every
    ``report_every(num_updates)``-th update and after the last one (see :mod:`purerl.core.progress`), ``i``
    counting updates from 1. ``start`` may be traced, so one compiled chunk serves every chunk of a run. The
    report sits in a ``lax.cond`` on the update index, which comes from the scan's xs and never from the state:
    it is not batched by ``jax.vmap``, so the branch stays a branch (not a select), the loop holds one copy of
    the update whatever ``length`` is, and with no ``progress_metrics`` a vmapped run makes one call per report,
    not one per seed. Ask for metrics (e.g. ``("episode_return",)``) only for unvmapped runs.
    """
    if progress is None:
        return jax.lax.scan(lambda s, _: update(s), state, None, length=length)
    every = report_every(num_updates)
    last = start + length - 1

    def step(s, i):
        s, metrics = update(s)
        payload = {"update": i + 1, **{name: metrics[name] for name in progress_metrics}}
        jax.lax.cond(((i + 1) % every == 0) | (i == last), lambda p: report(progress, p), lambda p: None, payload)
        return s, metrics

    return jax.lax.scan(step, state, start + jnp.arange(length))


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
    """An algorithm instantiated for one config. Not a pytree of arrays: every field is a Python object (marked
    static), so a Trainer can be closed over freely.

    * ``init(key) -> state`` and ``update(state) -> (state, metrics)``: the chunked loop; one ``update`` is one
      *log point* (one row of metrics): one update for the on-policy algorithms (one round of all workers for
      A3C), ``iterations_per_log`` env-step/gradient iterations and an evaluation for the off-policy ones;
    * ``num_log_points`` updates make the run, each collecting ``steps_per_log_point`` env steps per seed
      (after ``env_steps_before`` warm-up steps, off-policy);
    * ``train(key) -> Result``: the whole run fused;
    * ``evaluate(state, key, num_episodes, deterministic)``: the trained policy's episodes;
    * ``policy(state, deterministic) -> act(obs, key)``: the trained policy as a function of *raw* (batched)
      observations, with the run's saved normaliser statistics applied (for rendering and custom evaluation);
    * ``eval_env(num_envs)``: the env that evaluation runs it in (raw rewards, the training action transform).
    """

    config: Any = struct.field(pytree_node=False)
    env: Any = struct.field(pytree_node=False)
    num_log_points: int = struct.field(pytree_node=False)
    steps_per_log_point: int = struct.field(pytree_node=False)
    init: Callable = struct.field(pytree_node=False)
    update: Callable = struct.field(pytree_node=False)
    train: Callable = struct.field(pytree_node=False)
    evaluate: Callable = struct.field(pytree_node=False)
    policy: Callable = struct.field(pytree_node=False)
    eval_env: Callable = struct.field(pytree_node=False)
    env_steps_before: int = struct.field(pytree_node=False, default=0)  # per seed, before update 1 (warm-up)
