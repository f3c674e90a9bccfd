"""Where and when a measurement was made: every results file the benchmark scripts write carries this.

    from provenance import provenance
    record = {"provenance": provenance(), ...}

``provenance()`` gives the date (UTC), the machine (CPU model, the cores this process may use, the default
device), the jax, jaxlib and Python versions, the purerl commit measured, the command that ran and the load average (other jobs on a shared
machine slow a wall-clock measurement); ``describe(p)`` the one line a page
shows under a table; ``command`` and ``load_average`` alone for scripts whose main process imports no jax
(peers.py). Only the standard library and jax; no purerl import.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """The CPU cores this process may run on (its affinity, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def purerl_source() -> str:
    """The git commit of the purerl package that is imported (``+ local changes`` when its files differ from
    it), or its folder where it is not in a git checkout."""
    import importlib.util
    import subprocess

    spec = importlib.util.find_spec("purerl")
    if spec is None or not spec.origin:
        return "purerl not found"
    pkg = Path(spec.origin).parent
    try:
        commit = subprocess.run(["git", "-C", str(pkg), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(pkg), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(pkg)
    return commit[:12] + (" + local changes" if dirty else "")


def _relative(arg: str) -> str:
    """A path inside the repository as the repository's relative path (the command reads the same anywhere)."""
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return arg[len(root):] if arg.startswith(root) else arg


def command(argv: list[str] | None = None) -> str:
    """The command that ran (``sys.argv`` unless given), paths inside the repository relative to it."""
    return " ".join(["python", *(_relative(a) for a in (sys.argv if argv is None else argv))])


def load_average() -> float | None:
    """The 1-minute load average now (None where the system has none): above the cores, other jobs share the
    machine and wall-clock times run longer than on an idle one."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def provenance(argv: list[str] | None = None) -> dict:
    import jax
    import jaxlib

    d = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_name(),
        "cores": cores(),
        "backend": d.platform,
        "device": d.device_kind if d.platform != "cpu" else "cpu",
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": platform.python_version(),
        "purerl": purerl_source(),
        "command": command(argv),
        # the machine may be shared: the 1-minute load average when the measurement started
        "load_average": load_average(),
    }


def describe(p: dict) -> str:
    """A measurement's record as pages and printouts state it: ``2026-12-04 22:40 UTC on AMD EPYC (2 cores),
    jax 0.9.2, Python 3.11.7; load average 3.1 at the start`` (docs/hooks.py uses this function too)."""
    where = (f"{p['cpu']} ({p['cores']} cores)" if p.get("backend", "cpu") == "cpu"
             else f"{p.get('device_count', 1)}x {p['device']} (host {p['cpu']}, {p['cores']} cores)")
    load = p.get("load_average")
    shared = f"; load average {load:.1f} at the start" if load is not None else ""
    return f"{p['date']} on {where}, jax {p['jax']}, Python {p['python']}{shared}"
