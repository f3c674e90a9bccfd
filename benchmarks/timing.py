"""The one timing helper every benchmark script uses: compile once, then the median of timed runs."""

from __future__ import annotations

import statistics
import time

import jax


def measure(fn, args, repeats: int):
    """``(compile_s, median run_s, output)`` of ``jax.jit(fn)(args)``: compile time (trace + XLA) is taken
    apart from the run time, which is the median of ``repeats`` calls of the compiled program."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(args).compile()
    compile_s = time.perf_counter() - t0
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(args))
        jax.effects_barrier()  # host callbacks (progress) finished too
        times.append(time.perf_counter() - t0)
    return compile_s, statistics.median(times), out


def interleaved(fns: dict, args, repeats: int) -> dict:
    """Median run time of each compiled function in ``fns``, timed in alternation (round-robin, ``repeats``
    rounds after one warm-up call each), so that slow drifts of the machine hit every variant alike:
    the way to compare variants that differ by a few percent."""
    compiled = {name: jax.jit(fn).lower(args).compile() for name, fn in fns.items()}
    for c in compiled.values():
        jax.block_until_ready(c(args))
    times = {name: [] for name in fns}
    for _ in range(max(1, repeats)):
        for name, c in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(c(args))
            jax.effects_barrier()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}
