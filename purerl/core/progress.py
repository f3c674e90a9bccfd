"""Live progress out of a compiled run, at a bounded rate.

``train`` stays pure: when the caller asks for progress, a ``jax.debug.callback`` fires after every
``report_every(num_log_points)``-th update (at most ``MAX_REPORTS`` per run, plus the last update), inside a
``lax.cond`` on the update index (:func:`purerl.core.loop.scan_updates`). Under ``jax.vmap`` a callback whose
arguments are batched is unrolled into one call per batch element (jax's batching rule for debug
callbacks), so the training loop passes batched metrics only when asked (see
:func:`purerl.core.loop.make_train_fn`).
"""

from __future__ import annotations

from typing import Callable

import jax

MAX_REPORTS = 50

ProgressFn = Callable[[dict], None]


def report_every(num_log_points: int, max_reports: int = MAX_REPORTS) -> int:
    return max(1, -(-num_log_points // max_reports))  # ceil: at most max_reports reports


def report(progress: ProgressFn | None, payload: dict) -> None:
    """Call ``progress(payload)`` on the host (nothing when ``progress`` is None)."""
    if progress is not None:
        jax.debug.callback(progress, payload)
