"""PRNG keys at purerl's boundaries: both kinds JAX users pass, normalised once.

JAX has two kinds of PRNG key. A *typed* key (``jax.random.key(0)``) is an array of dtype ``key<fry>`` and
shape ``()``; a *legacy* key (``jax.random.PRNGKey(0)``, what PureJaxRL, rejax, Brax and most tutorials use)
is a ``uint32`` array of shape ``(2,)`` holding the same threefry key data. Every public function of purerl that
takes a key passes it through :func:`as_key`, which returns the typed key, so ``jax.random.PRNGKey(s)`` and
``jax.random.key(s)`` give the same results bit for bit and no other code cares which kind arrived. Under
``jax.vmap`` the function sees one key of the batch, so batches of either kind work as well.

Anything else (a Python int, a float array, a key of the wrong shape) is a ``TypeError`` naming the argument
and the two accepted forms, raised while the caller's program is traced, before anything is compiled.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["as_key", "is_key", "is_typed_key", "split_keys", "KEY_FORMS"]

KEY_FORMS = "a typed key (jax.random.key(seed)) or a legacy uint32 key (jax.random.PRNGKey(seed))"


@functools.lru_cache(maxsize=None)
def _legacy_shape() -> tuple[int, ...]:
    """The key-data shape of the default PRNG implementation: ``(2,)`` for threefry."""
    return tuple(jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape)


def is_typed_key(x: Any) -> bool:
    """Whether ``x`` is a typed key array (``jax.random.key``), of any shape."""
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def is_key(x: Any, batch_ndim: int = 0) -> bool:
    """Whether ``x`` is a key of either kind with ``batch_ndim`` leading batch axes."""
    if is_typed_key(x):
        return np.ndim(x) == batch_ndim
    shape = tuple(getattr(x, "shape", ()))
    return (getattr(x, "dtype", None) == jnp.uint32 and len(shape) == batch_ndim + len(_legacy_shape())
            and shape[batch_ndim:] == _legacy_shape())


def as_key(key: Any, name: str = "key", batch_ndim: int = 0) -> jax.Array:
    """``key`` as a typed PRNG key, from a typed key or a legacy uint32 key (``batch_ndim`` leading batch axes,
    0 for one key). A ``TypeError`` naming ``name`` for anything else."""
    if is_typed_key(key):
        if np.ndim(key) == batch_ndim:
            return key
        raise TypeError(_wrong_shape(name, key, batch_ndim))
    if getattr(key, "dtype", None) == jnp.uint32 and hasattr(key, "shape"):
        if is_key(key, batch_ndim):
            return jax.random.wrap_key_data(key)
        raise TypeError(_wrong_shape(name, key, batch_ndim))
    what = (f"{type(key).__name__} {key!r}" if isinstance(key, (int, float, str, bool)) or key is None
            else f"an array of dtype {getattr(key, 'dtype', '?')} and shape {tuple(getattr(key, 'shape', ()))}"
            if hasattr(key, "dtype") else type(key).__name__)
    hint = f"; for seed {key}, pass jax.random.key({key})" if isinstance(key, int) and not isinstance(key, bool) \
        else ""
    raise TypeError(f"`{name}` must be {KEY_FORMS}, got {what}{hint}")


def _wrong_shape(name: str, key: Any, batch_ndim: int) -> str:
    one = "one key" if batch_ndim == 0 else f"keys with {batch_ndim} leading batch axis/axes"
    got = f"shape {tuple(key.shape)}" + (" (typed)" if is_typed_key(key) else " (uint32)")
    extra = (" For a batch of keys (several seeds), call it under jax.vmap: jax.vmap(f)(jax.random.split(key, n))."
             if batch_ndim == 0 and np.ndim(key) > (0 if is_typed_key(key) else 1) else "")
    return (f"`{name}` must be {one}: {KEY_FORMS}, shape () typed or {_legacy_shape()} uint32 per key; got "
            f"{got}.{extra}")


def split_keys(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``jax.random.split(key, shape)`` for a multi-dimensional ``shape``, split flat and reshaped: the same
    keys' kind, and XLA compiles a one-dimensional split several times faster."""
    return jnp.reshape(jax.random.split(key, int(np.prod(shape))), tuple(shape))
