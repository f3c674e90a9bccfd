"""The non-finite guard: the first NaN/inf among a chunk's metrics or in the train state, named."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["MAY_BE_NAN", "STATE_MAY_BE_NAN", "NonFiniteError", "find_non_finite", "finite_flags"]

# Metrics allowed to be NaN: no episode has finished yet at that log point.
MAY_BE_NAN = frozenset({"episode_return", "episode_length"})
# Train-state fields allowed to be NaN: the latest episode means, NaN until the first episode ends.
STATE_MAY_BE_NAN = frozenset({"last_return", "last_length"})


class NonFiniteError(RuntimeError):
    """A loss, statistic or parameter became NaN or infinite."""

    def __init__(self, message: str, update: int, quantity: str, seed: int):
        super().__init__(message)
        self.update, self.quantity, self.seed = update, quantity, seed


def find_non_finite(metrics: dict, state: Any, first_update: int, flags: Any = None,
                    runs: Any = None) -> NonFiniteError | None:
    """The first non-finite metric (arrays ``[seed, update]``, update ``first_update`` at index 0) or, if
    none, the first non-finite floating-point leaf of ``state`` (leading seed axis); ``None`` when all are
    finite. Updates are counted from 1. ``flags``: a compiled :func:`finite_flags` for ``state``'s shape (or
    any function of ``state`` that gives its flags). ``runs``: how the message names the run at an index of
    the leading axis (default ``seed index I``; a sweep names its config and seed)."""
    where = runs or (lambda i: f"seed index {i}")
    worst = None
    for name in sorted(metrics):
        if name in MAY_BE_NAN:
            continue
        bad = ~np.isfinite(np.asarray(metrics[name], dtype=np.float64))
        if bad.ndim < 2 or not bad.any():
            continue
        bad = bad.reshape(bad.shape[0], bad.shape[1], -1).any(axis=2)
        upd = int(np.argmax(bad.any(axis=0)))
        seed = int(np.argmax(bad[:, upd]))
        if worst is None or upd < worst[0]:
            worst = (upd, name, seed)
    if worst is not None:
        upd, name, seed = worst
        n = first_update + upd
        value = np.asarray(metrics[name])[seed, upd]
        return NonFiniteError(f"non-finite `{name}` ({value}) at update {n} ({where(seed)}): training "
                              f"diverged", n, name, seed)
    flags = jax.tree_util.tree_flatten_with_path(jax.device_get((flags or jax.jit(finite_flags))(state)))[0]
    for path, ok in flags:
        ok = np.asarray(ok)
        if not ok.all() and getattr(path[-1], "name", None) not in STATE_MAY_BE_NAN:
            seed = int(np.argmin(ok))
            name = jax.tree_util.keystr(path)
            last = first_update + len(next(iter(metrics.values()))[0]) - 1 if metrics else first_update
            return NonFiniteError(f"non-finite train-state array `{name}` after update {last} ({where(seed)}): "
                                  f"training diverged", last, name, seed)
    return None


def finite_flags(state: Any) -> Any:
    """Per seed, whether each floating-point leaf of ``state`` is finite (jit it: computed where the state
    lives, only the flags travel to the host)."""
    import jax.numpy as jnp

    def flag(x):
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.isfinite(x).reshape(x.shape[0], -1).all(axis=1)
        return jnp.ones(x.shape[:1], bool)

    return jax.tree.map(flag, state)
