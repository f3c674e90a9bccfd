"""Using every core of a CPU: one jax device per core, and independent runs (seeds, sweep configs) split over them.

XLA runs one program on one CPU device with a pool of threads, but a training program's kernels are small and
leave cores idle. Runs that are independent of each other split better: with the host CPU presented as one
device per core (XLA's ``--xla_force_host_platform_device_count``), ``purerl train --seeds K``, ``purerl sweep``,
``purerl bench`` and ``benchmarks/results.py`` place their seeds (and configs) over those devices, each device
running its share as the one-device program of that many seeds would (bit for bit with jax 0.9; with jax 0.11
XLA's split program may sum a loss's reduction in another order, a difference in the last bits). The measured
gain is in
docs/benchmarks.md ("Seeds over the CPU's cores").

    from purerl.run import devices
    devices.use_cpu_cores()          # before jax's first computation; then jax.devices() has one CPU per core

The count must be set before jax creates its CPU backend (its first computation or device query): this module
imports no jax, and :func:`use_cpu_cores` says whether it could still set it. Other backends (a GPU) are not
affected: jax's default devices stay the accelerators.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["FLAG", "cores", "largest_split", "local_mesh", "split_runs", "use_cpu_cores"]

FLAG = "--xla_force_host_platform_device_count"


def cores() -> int:
    """The CPU cores this process may run on (its affinity, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _backends_started() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):   # an older or newer jax without the check: assume started
        return True


def use_cpu_cores(count: int | None = None) -> int | None:
    """Present the host CPU as ``count`` jax devices (default: :func:`cores`), by adding ``FLAG`` to
    ``XLA_FLAGS``. Returns the count now in force: the one set here, the one ``XLA_FLAGS`` already names (a user's
    own setting wins), or None when jax's backends have started and nothing can change any more (the CPU keeps
    the devices it has). ``count=1`` sets nothing: one device, as jax's default."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"cpu devices must be a positive integer, got {count!r}")
    flags = os.environ.get("XLA_FLAGS", "")
    found = re.search(re.escape(FLAG) + r"=(\d+)", flags)
    if found:
        return int(found.group(1))
    if _backends_started():
        return None
    n = cores() if count is None else count
    if n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={n}".strip()
    return n


def largest_split(runs: int, devices: int) -> int:
    """The most devices ``runs`` independent runs split over evenly: the largest divisor of ``runs`` that is at
    most ``devices`` (1 for a prime number of runs larger than the devices)."""
    return max(d for d in range(1, min(runs, devices) + 1) if runs % d == 0)


def local_mesh(runs: int, axis: str = "seeds"):
    """A 1-D mesh named ``axis`` over the most of this process's devices that ``runs`` independent runs split over
    evenly (:func:`largest_split`), or None where that is one device."""
    import jax
    import numpy as np
    from jax.sharding import Mesh

    n = largest_split(runs, jax.local_device_count())
    return None if n == 1 else Mesh(np.asarray(jax.local_devices()[:n]), (axis,))


def split_runs(keys):
    """``keys`` (one per independent run, leading axis) placed over :func:`local_mesh`'s devices, or as they are
    on one device: a ``jit(vmap(train))`` over them then runs each device's share there."""
    from purerl.core.sharding import split_key_rows

    mesh = local_mesh(keys.shape[0])
    return keys if mesh is None else split_key_rows(keys, mesh)
