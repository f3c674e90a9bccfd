"""Live progress out of a compiled run, at a bounded rate.

``train`` stays pure: when the caller asks for progress, a ``jax.debug.callback`` fires on at most
``MAX_REPORTS`` of the updates (plus the last one). Under ``jax.vmap`` a callback whose arguments are
batched is unrolled into one call per batch element (jax's batching rule for debug callbacks), so the
training loop passes batched metrics only when asked (see :func:`purerl.core.loop.make_train_fn`).
"""

from __future__ import annotations

from typing import Callable

import jax

MAX_REPORTS = 100

ProgressFn = Callable[[dict], None]


def report_every(num_updates: int, max_reports: int = MAX_REPORTS) -> int:
    return max(1, -(-num_updates // max_reports))  # ceil: at most max_reports reports


def maybe_report(progress: ProgressFn | None, update_index: jax.Array, num_updates: int, payload: dict) -> None:
    """Call ``progress(payload)`` on the host every ``report_every(num_updates)`` updates and at the end."""
    if progress is None:
        return
    k = report_every(num_updates)
    due = ((update_index + 1) % k == 0) | (update_index + 1 == num_updates)
    jax.lax.cond(due, lambda p: jax.debug.callback(progress, p), lambda p: None, payload)
