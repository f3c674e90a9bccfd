"""Shuffling a flat batch into minibatches."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def flatten_time_env(tree: Any) -> Any:
    """``[T, N, ...] -> [T * N, ...]`` for every leaf."""
    return jax.tree.map(lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), tree)


def shuffled_minibatches(key: jax.Array, batch: Any, num_minibatches: int) -> Any:
    """A random permutation of ``batch`` (leading axis ``B``) split into ``[num_minibatches, B // M, ...]``."""
    size = jax.tree.leaves(batch)[0].shape[0]
    perm = jax.random.permutation(key, size)
    return jax.tree.map(
        lambda x: jnp.reshape(jnp.take(x, perm, axis=0), (num_minibatches, -1) + x.shape[1:]), batch)
