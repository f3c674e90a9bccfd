"""The chunked training loop every algorithm shares: ``train(key) = scan(update, init(key))``.

Algorithms provide ``init(key) -> state`` and ``update(state) -> (state, metrics)``; the runner can call
``run_chunk`` for part of the updates, checkpoint the state in between and resume bit-identically.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
from flax import struct


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


def make_train_fn(init: Callable[[jax.Array], Any], update: Callable[[Any], tuple[Any, dict]],
                  num_updates: int) -> Callable[[jax.Array], Result]:
    def train(key: jax.Array) -> Result:
        state, metrics = run_chunk(update, init(key), num_updates)
        return Result(state, metrics)

    return train


@struct.dataclass
class Trainer:
    """An algorithm instantiated for one config: ``init``/``update`` for the chunked loop, ``train`` fused,
    ``evaluate(state, key, num_episodes, deterministic)`` for the trained policy. Not a pytree of arrays:
    every field is a Python object (marked static) so a Trainer can be closed over freely."""

    config: Any = struct.field(pytree_node=False)
    env: Any = struct.field(pytree_node=False)
    num_updates: int = struct.field(pytree_node=False)
    steps_per_update: int = struct.field(pytree_node=False)
    init: Callable = struct.field(pytree_node=False)
    update: Callable = struct.field(pytree_node=False)
    train: Callable = struct.field(pytree_node=False)
    evaluate: Callable = struct.field(pytree_node=False)
