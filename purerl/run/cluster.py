"""Running one command on several processes (hosts) through JAX's own distributed runtime.

Every process runs the same program; ``jax.distributed`` connects them (process 0 hosts the coordination
service at the coordinator address), ``jax.devices()`` then lists the devices of all of them and XLA runs the
collectives (on CPUs through gloo). Nothing here coordinates anything itself: :func:`connect` only calls
``jax.distributed.initialize`` with bounded timeouts, and :func:`supervise` keeps the ``purerl`` command's
output readable when the runtime ends a process because another one died.

A process that dies ends the others within a bounded time: a collective that needs it fails at once (gloo
reports the closed connection), and the coordination service, which expects a heartbeat from every process
every ``heartbeat_timeout`` seconds, ends every process when one misses it (also while they compute without
talking to each other). The runtime ends a process by aborting it with a fatal C++ log message; under
:func:`supervise` the ``purerl`` command prints one line instead.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

EXIT_CLUSTER = 4   # the `purerl` exit code of a process whose cluster lost a process
_CHILD = "PURERL_CLUSTER_CHILD"
# glog lines (I/W/E/F, date, time, thread, file:line]) and the lines an abort adds after them
_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\]")
# gloo prints "[Gloo] Rank R is connected to P peer ranks. Expected number of connected peer ranks is : P" from
# C++ when it connects; written in pieces, its tail can land on a line of its own
_GLOO_TAIL = "Expected number of connected peer ranks"
_LOST = ("gloo", "connection reset by peer", "connection closed by peer", "heartbeat", "coordination service",
         "socket closed", "failed to connect to", "barrier")


@dataclass(frozen=True)
class Cluster:
    """Where this process sits in a run of several processes."""

    coordinator: str
    num_processes: int
    process_id: int
    heartbeat_timeout: int = 100
    connect_timeout: int = 300

    def describe(self) -> str:
        return f"process {self.process_id} of {self.num_processes} (coordinator {self.coordinator})"


def check(coordinator: str | None, num_processes: int | None, process_id: int | None,
          heartbeat_timeout: int = 100, connect_timeout: int = 300) -> Cluster | None:
    """The cluster the command-line flags describe, checked (``None``: a run of one process). A ``ValueError``
    names the flag at fault."""
    given = [f for f, v in (("--coordinator", coordinator), ("--num-processes", num_processes),
                            ("--process-id", process_id)) if v is not None]
    if not given:
        return None
    if len(given) < 3:
        missing = sorted({"--coordinator", "--num-processes", "--process-id"} - set(given))
        raise ValueError(f"{', '.join(given)} needs {' and '.join(missing)} too: a run of several processes "
                         f"gives every process --coordinator HOST:PORT (process 0's address), --num-processes N "
                         f"and its own --process-id I")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--coordinator must be HOST:PORT (process 0's address and a free port, e.g. "
                         f"10.0.0.1:1234), got {coordinator!r}")
    if num_processes < 1:
        raise ValueError(f"--num-processes must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must lie in [0, {num_processes - 1}] for --num-processes {num_processes}, "
                         f"got {process_id}")
    for flag, value in (("--heartbeat-timeout", heartbeat_timeout), ("--connect-timeout", connect_timeout)):
        if value < 1:
            raise ValueError(f"{flag} must be at least 1 second, got {value}")
    return Cluster(coordinator, num_processes, process_id, heartbeat_timeout, connect_timeout)


def connect(cluster: Cluster) -> None:
    """Join the cluster: ``jax.distributed.initialize`` (before any other jax computation), with CPU
    collectives through gloo. Waits at most ``connect_timeout`` seconds for the other processes."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=cluster.coordinator, num_processes=cluster.num_processes,
                               process_id=cluster.process_id, initialization_timeout=cluster.connect_timeout,
                               heartbeat_timeout_seconds=cluster.heartbeat_timeout,
                               shutdown_timeout_seconds=max(10, cluster.heartbeat_timeout))


def lost_message(cluster: Cluster, detail: str = "") -> str:
    """The one line a process prints when its cluster lost a process."""
    why = f" ({detail})" if detail else ""
    return (f"purerl: error: {cluster.describe()}: another process of the run stopped or became unreachable"
            f"{why}; this process stops too, and nothing more is written. Start every process again.")


def is_lost(error: BaseException) -> bool:
    """Whether ``error`` is the runtime's report of a process that went away (a failed collective or a
    coordination-service error), not a fault of this process's own program."""
    text = str(error).lower()
    return type(error).__name__ in ("JaxRuntimeError", "XlaRuntimeError") and any(w in text for w in _LOST)


def exit_lost(cluster: Cluster, error: BaseException | None = None) -> None:
    """Print :func:`lost_message` and end the process at once (``jax.distributed``'s shutdown at exit would
    wait for the lost process and then abort)."""
    detail = ""
    if error is not None:
        text = " ".join(str(error).split())
        detail = text[:160] + ("..." if len(text) > 160 else "")
    sys.stdout.flush()
    print(lost_message(cluster, detail), file=sys.stderr, flush=True)
    os._exit(EXIT_CLUSTER)


def is_child() -> bool:
    return os.environ.get(_CHILD) == "1"


def _die_with_parent() -> None:   # runs in the child before exec: a killed supervisor takes its child along
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG (Linux)
    except Exception:  # noqa: BLE001 - elsewhere the child outlives a killed supervisor, as any process would
        pass


def supervise(argv: list[str], cluster: Cluster) -> int:
    """Run ``purerl ARGV`` in a child process and pass its output through, without the runtime's C++ log
    lines; when the runtime aborts the child because the cluster lost a process, print one line
    (:func:`lost_message`) and return :data:`EXIT_CLUSTER`. Stop signals are passed on to the child."""
    env = dict(os.environ, **{_CHILD: "1"})
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # its own session: a Ctrl-C at the terminal reaches the child once, through this process
    child = subprocess.Popen([sys.executable, "-m", "purerl.cli", *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, start_new_session=True,
                             preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    fatal: list[str] = []

    def pump(source, sink) -> None:
        for raw in iter(source.readline, b""):
            line = raw.decode(errors="replace")
            if fatal or line.startswith("F") and _LOG_LINE.match(line):   # the abort's message and stack
                fatal.append(line)
            elif not (_LOG_LINE.match(line) or "[Gloo]" in line or _GLOO_TAIL in line):
                sink.write(line)
                sink.flush()

    readers = [threading.Thread(target=pump, args=pair, daemon=True)
               for pair in ((child.stdout, sys.stdout), (child.stderr, sys.stderr))]
    for r in readers:
        r.start()

    def forward(signum, _frame):
        child.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    for r in readers:
        r.join(timeout=5)
    if fatal:
        text = " ".join(" ".join(fatal).split()).lower()
        if any(w in text for w in _LOST):
            sys.stdout.flush()
            print(lost_message(cluster, "the JAX distributed runtime ended it"), file=sys.stderr, flush=True)
            return EXIT_CLUSTER
        sys.stderr.writelines(fatal)
    return code if code >= 0 else 128 - code
