"""One life for every run: ``purerl train``, ``purerl resume`` and ``purerl sweep`` (and their Python API,
:func:`purerl.run.runner.train`/``resume`` and :func:`purerl.sweep.run`/``resume``) go through the same phases.

1. **start and compile** (:meth:`Job.compile`): the job's programs are traced and compiled, and its starting
   state made: the initial state of a new run, or the state restored from a checkpoint (a :class:`Start`);
2. **chunks** (:func:`run_chunks`): ``every`` updates at a time (:func:`chunk_length`), and after each chunk
   the non-finite guard (:meth:`Job.check`: on the first NaN/inf the state before the chunk is saved and the
   loop ends with the :class:`~purerl.run.guard.NonFiniteError`), the loggers (:meth:`Job.logged`) and a
   checkpoint when one is due (:class:`Store`: after every chunk with ``checkpoint_every``, at the end, on a
   stop request); a stop request ends the loop after the running chunk, a second one at once (the state after
   the last finished chunk is saved);
3. **finish** (:meth:`Job.finish`): the job's results (a training run's evaluation and ``summary.json``, a
   sweep's ranking).

What the phases share is a :class:`Record` (the state, the updates done, the metrics so far, the newest saved
step, timings); what they act on comes in as arguments: the stop requests (``stops``: ``stop``, ``abandon``,
``received`` and ``run(fn)``; :class:`purerl.run.signals.Stops` where a run has a directory, :class:`NoStops`
in a test or for a sweep kept in memory), the output (``store``; ``None`` keeps the run in memory) and, in a run
of several processes, the agreement after each chunk (:meth:`Job.any`). So each phase runs in a test without
signals, subprocesses or files. :func:`live` puts the phases together with their edges: the directory's
staging until the first checkpoint (:class:`purerl.run.rundir.NewRun`), the stop signals, and the files
written when the loop ends, however it ends.

A resumed run executes the same compiled programs as the uninterrupted one (the chunk length is kept), so the
two are equal bit for bit.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from purerl.run.guard import NonFiniteError
from purerl.run.signals import Abandon, Stops, signals_held

__all__ = ["CheckpointError", "Job", "Layout", "NoStops", "Record", "Start", "Store", "any_process", "chunk_length",
           "concat", "live", "progress_meta", "run_chunks"]


def chunk_length(num_updates: int, checkpoint_every: int = 0) -> int:
    """Updates per chunk: ``checkpoint_every``, or about a tenth of the run, preferring a length that divides
    the run into 5 to 20 equal chunks (one compiled program then serves every chunk)."""
    if checkpoint_every:
        return checkpoint_every
    exact = [d for d in range(1, num_updates + 1) if num_updates % d == 0 and 5 <= num_updates // d <= 20]
    if exact:
        return min(exact, key=lambda d: (abs(num_updates // d - 10), d))
    return max(1, -(-num_updates // 10))


def concat(parts: list[dict]) -> dict:
    """The chunks' metrics ``[run, update]`` joined along the updates."""
    return {k: np.concatenate([np.asarray(p[k]) for p in parts], axis=1) for k in parts[0]} if parts else {}


def progress_meta(done: int, num_updates: int, metrics: dict) -> dict:
    """What every checkpoint's meta holds besides the job's own keys: the updates done of the run's total and
    the metrics up to them (JSON lists, with their dtypes, so a resumed run's metrics are the same arrays)."""
    return {"updates_done": done, "num_updates": num_updates,
            "metrics": {k: np.asarray(v).tolist() for k, v in metrics.items()},
            "metric_dtypes": {k: str(np.asarray(v).dtype) for k, v in metrics.items()}}


def restored_metrics(meta: dict) -> dict:
    """The metrics a checkpoint's meta holds (:func:`progress_meta`), as the arrays they were."""
    dtypes = meta.get("metric_dtypes", {})
    return {k: np.asarray(v, dtype=dtypes.get(k, "float32")) for k, v in meta.get("metrics", {}).items()}


def any_process(flag: bool) -> bool:
    """Whether ``flag`` holds on any process (several processes: a collective, every process calls it at the
    same point)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.asarray(multihost_utils.process_allgather(np.int32(flag))).any())


class Layout:
    """Where a job's independent runs (seeds, configs x seeds) live: on one device (``mesh`` None: this process's
    default device, or ``device``), or split by rows over a 1-D ``mesh``, which may span the devices of several
    processes (``jax.distributed``); the programs' small outputs (metrics, finite flags, evaluation) are then
    replicated to every process. Each device runs its share of the runs as the one-device program of that many
    runs would."""

    def __init__(self, mesh: Any = None, device: Any = None):
        self.mesh, self.device = mesh, device
        self.primary = jax.process_index() == 0
        self.several = jax.process_count() > 1

    @property
    def devices(self) -> int:
        """How many devices the runs are split over."""
        return 1 if self.mesh is None else int(self.mesh.devices.size)

    def keys(self, keys: Any) -> Any:
        from purerl.core.sharding import split_key_rows

        return keys if self.mesh is None else split_key_rows(keys, self.mesh)

    def place(self, rows: Any) -> Any:
        """Host data (the same on every process) on the layout's devices, split by rows over the mesh."""
        from purerl.keys import is_typed_key
        from purerl.core.sharding import split_key_rows, split_rows

        if self.mesh is None:
            return jax.device_put(rows, self.device) if self.device is not None else rows
        return split_key_rows(rows, self.mesh) if is_typed_key(rows) else split_rows(rows, self.mesh)

    def jit_kwargs(self, *outs: str) -> dict:
        """``out_shardings`` for a program whose outputs are ``"rows"`` (split by run) or ``"whole"``
        (replicated); nothing on one device."""
        if self.mesh is None:
            return {}
        from jax.sharding import NamedSharding, PartitionSpec

        each = {"rows": NamedSharding(self.mesh, PartitionSpec(self.mesh.axis_names[0])),
                "whole": NamedSharding(self.mesh, PartitionSpec())}
        return {"out_shardings": each[outs[0]] if len(outs) == 1 else tuple(each[o] for o in outs)}

    def shapes(self, shape: Any) -> Any:
        """The state's shapes as a program's input: split by run on several processes."""
        if self.mesh is None:
            return shape
        rows = self.jit_kwargs("rows")["out_shardings"]
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=rows), shape)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any process (a collective: every process calls it at the same point)."""
        return any_process(flag) if self.several else flag

    def whole(self, state: Any) -> Any:
        """The state of every run on this process, as host arrays (gathered from all processes: a
        collective); typed keys as their raw data, which :mod:`purerl.run.checkpoint` stores anyway."""
        if not self.several:
            return state
        from purerl.core.sharding import gather

        return gather(state)


@dataclass
class Start:
    """Where a run starts: a new run (``resumed`` False: the job's initial state), or ``state`` after ``done``
    updates with the ``metrics`` up to them (a checkpoint's)."""

    resumed: bool = False
    state: Any = None
    done: int = 0
    metrics: dict = field(default_factory=dict)


@dataclass
class Record:
    """The lifecycle's state, which each phase reads and advances: the train state after ``done`` updates
    (``start`` of them done before this process), the metrics of every chunk so far (``parts``; :attr:`metrics`
    joins them), the newest checkpoint's step (``saved``; None: none yet), the compile and run seconds, and how
    the loop ended: ``error`` (the guard's), ``stopped`` (a stop request, agreed by every process), ``signal``
    (the first stop signal this process received)."""

    state: Any
    done: int
    num_updates: int
    start: int = 0
    parts: list = field(default_factory=list)
    saved: int | None = None
    compile_s: float = 0.0
    run_s: float = 0.0
    error: NonFiniteError | None = None
    stopped: bool = False
    signal: int | None = None

    @property
    def metrics(self) -> dict:
        return concat(self.parts)

    @property
    def finished(self) -> bool:
        return self.done == self.num_updates and self.error is None

    @property
    def interrupted(self) -> bool:
        return self.stopped and self.done < self.num_updates


class NoStops:
    """Stop requests that never come (a run kept in memory, where Ctrl-C raises ``KeyboardInterrupt`` as
    usual); the shape :func:`run_chunks` expects of ``stops``, for tests to subclass (a stop after chunk k)."""

    received: list = []
    stop = False
    abandon = False

    def run(self, fn: Callable[[], Any]) -> Any:
        return jax.block_until_ready(fn())

    def __enter__(self) -> "NoStops":
        return self

    def __exit__(self, *exc) -> None:
        pass


class CheckpointError(OSError):
    """A checkpoint could not be written (a full disk, a lost mount); the newest good one is named."""


class Job:
    """What a lifecycle runs: a training run (:mod:`purerl.run.runner`) or a sweep (:mod:`purerl.sweep`). A
    subclass supplies its programs and files; the defaults are those of a job with nothing to open or close.

    ``num_updates``: log points of the whole run; ``every``: updates per chunk; ``save_every``: a checkpoint
    after every chunk (``checkpoint_every``), not only at the end, on a stop and before a divergence;
    ``layout``: where the runs live (:class:`Layout`: process 0 writes, every process decides alike);
    ``fused``: one chunk of the whole run; ``kind``: ``"run"`` or ``"sweep"``, as messages name it."""

    num_updates: int
    every: int
    save_every: bool = False
    fused: bool = False
    kind = "run"
    layout: Layout

    @property
    def primary(self) -> bool:
        return self.layout.primary

    def compile(self, start: Start, check: Callable[[], None]) -> Any:
        """Trace and compile the programs; return the starting state (a new run's initial state, computed, or
        ``start.state``). ``check()`` raises a stop signal that came while starting."""
        raise NotImplementedError

    def ready(self, n: int) -> None:
        """Before a chunk of ``n`` updates is timed: wait for its program if it compiles in the background."""

    def chunk(self, state: Any, done: int, n: int) -> tuple[Any, dict]:
        """Updates ``done + 1`` to ``done + n``: the new state and the chunk's metrics (``[run, update]``)."""
        raise NotImplementedError

    def host_metrics(self, metrics: dict, first: int) -> dict:
        """The chunk's metrics as host arrays (updates from ``first``)."""
        return jax.device_get(metrics)

    def check(self, metrics: dict, state: Any, first: int) -> NonFiniteError | None:
        """The non-finite guard on a chunk's metrics and the state after it (:func:`purerl.run.guard.find_non_finite`)."""
        raise NotImplementedError

    def logged(self, metrics: dict, first: int) -> None:
        """A good chunk's metrics, for the loggers and the progress bar."""

    def any(self, flag: bool) -> bool:
        return self.layout.any(flag)

    def whole(self, state: Any) -> Any:
        """The state of every run, for a checkpoint (a collective in a run of several processes)."""
        return self.layout.whole(state)

    def meta(self, step: int, metrics: dict) -> dict:
        """A checkpoint's meta (at least :func:`progress_meta`)."""
        return progress_meta(step, self.num_updates, metrics)

    def new_files(self, out: Path, overwrite: bool) -> Any:
        """The staging of a new run's files (:class:`purerl.run.rundir.NewRun`)."""
        from purerl.run import rundir

        return rundir.NewRun(out, replace=overwrite)

    def write_start(self, path: Path) -> None:
        """A new run's first file (its config), into the staging directory."""

    def begin(self, out: Path | None) -> None:
        """Training starts: queue background compiles, open the bar and the loggers."""

    def end(self) -> None:
        """The loop ended, however: close the bar and the loggers."""

    def write_files(self, path: Path, record: Record) -> None:
        """The metrics so far, when the loop has ended (process 0)."""

    def finish(self, record: Record, out: Path | None) -> Any:
        """The job's result."""
        return record

    def close(self) -> None:
        """The lifecycle is over: stop background compiles."""

    def describe(self, done: int) -> str:
        """What the first stop signal's message says will happen."""
        if self.fused:
            return f"a fused {self.kind} is one program: it stops and saves at its end"
        return (f"stopping after the running chunk (updates {done + 1}-{min(done + self.every, self.num_updates)} "
                f"of {self.num_updates})" + (f" and saving the {self.kind}" if self.primary else
                                             f"; process 0 saves the {self.kind}"))


class Store:
    """A run's directory ``out``: its checkpoints (``checkpoints/STEP``, the whole state of every run, written
    by process 0 while every process takes part in gathering it) and files. A new run's go to its staging
    directory (``new``, a :class:`purerl.run.rundir.NewRun`) until the first checkpoint commits them into
    ``out``."""

    def __init__(self, out: Path, primary: bool = True):
        self.out, self.primary = Path(out), primary
        self.new = None

    @property
    def path(self) -> Path:
        """Where the run's files go now: the staging directory until the commit, then ``out``."""
        return self.new.path if self.new is not None else self.out

    def commit(self) -> None:
        """Move a new run's files into ``out`` (once; a stop signal waits for it)."""
        if self.new is not None and not self.new.committed:
            with signals_held():
                self.new.commit()

    def save(self, job: Job, state: Any, step: int, metrics: dict) -> None:
        """Checkpoint ``step``: ``state`` with ``job.meta(step, metrics)``; then commit a new run. A failed write
        is a :class:`CheckpointError` naming the newest good checkpoint."""
        from purerl.run import checkpoint as ckpt

        state = job.whole(state)   # several processes: every one takes part; process 0 writes
        if not self.primary:
            return
        where = self.path / "checkpoints"
        try:
            ckpt.save(where, state, step=step, meta=job.meta(step, metrics))
        except Exception as e:  # noqa: BLE001 - orbax and tensorstore raise several kinds
            good = ckpt.latest_step(where) if where.is_dir() else None
            keep = (f"the newest good checkpoint is {where}/{good} (after update {good}; `purerl resume "
                    f"{self.out}` continues from it)" if good is not None else "there is no earlier checkpoint")
            raise CheckpointError(f"could not save the checkpoint after update {step} to {where}: {e}; {keep}") from e
        self.commit()


def run_chunks(job: Job, record: Record, stops: Any, store: Store | None = None) -> Record:
    """The chunks of a run from ``record`` on, each followed by the guard, the loggers and a checkpoint when one
    is due (see the module docstring); ``record`` is advanced in place (so a caller that catches an exception
    still has the metrics up to it) and returned. ``stops``: :class:`NoStops` or
    :class:`purerl.run.signals.Stops`; ``store``: where checkpoints go (None: nowhere)."""

    def save(state: Any, step: int) -> None:
        if store is not None:
            store.save(job, state, step, record.metrics)
        record.saved = step

    total = job.num_updates
    while record.done < total and not stops.abandon:
        n = min(job.every, total - record.done)
        job.ready(n)
        t1 = time.perf_counter()
        try:
            new_state, metrics = stops.run(functools.partial(job.chunk, record.state, record.done, n))
        except Abandon:
            break
        record.run_s += time.perf_counter() - t1
        first = record.done + 1
        metrics = job.host_metrics(metrics, first)
        record.error = job.check(metrics, new_state, first)
        if record.error is not None:  # save the last good state; record the metrics up to the failure
            if record.done > (record.saved or 0):
                save(record.state, record.done)
            if store is not None:
                store.commit()   # nothing to resume when it failed in the first chunk, but metrics to read
            record.parts.append(metrics)
            break
        record.state = new_state
        record.parts.append(metrics)
        job.logged(metrics, first)
        record.done += n
        record.stopped = job.any(stops.stop)   # several processes stop after the same chunk
        if job.save_every or record.done == total or record.stopped:
            save(record.state, record.done)
        if record.stopped:
            break
    if stops.abandon:
        record.stopped = True
        if job.layout.several:   # the others may be inside a chunk: no saving
            raise KeyboardInterrupt(f"a second stop signal: process {jax.process_index()} of "
                                    f"{jax.process_count()} stopped at once, without saving")
        if record.saved != record.done:  # the last finished chunk's state (the initial one at worst)
            save(record.state, record.done)
    return record


def live(job: Job, out: Path | None, start: Start, *, starting: Any = None, overwrite: bool = False,
         stops: Any = None) -> Any:
    """Run ``job`` from ``start`` through its whole life (see the module docstring) and return
    ``job.finish(...)``. ``out``: its directory (None: kept in memory, nothing saved); the caller holds its
    lock. ``starting``: the :class:`purerl.run.signals.Starting` around the start, ended when training begins.
    ``stops``: the stop requests (default: :class:`purerl.run.signals.Stops` with a directory, :class:`NoStops`
    without)."""
    try:
        t0 = time.perf_counter()
        state = job.compile(start, starting.check if starting is not None else lambda: None)
        record = Record(state, start.done, job.num_updates, start=start.done,
                        parts=[start.metrics] if start.metrics else [],
                        saved=start.done if start.resumed else None, compile_s=time.perf_counter() - t0)
        store = Store(out, job.primary) if out is not None else None
        if stops is None:
            stops = Stops(lambda: job.describe(record.done), starting) if store is not None else NoStops()
        with stops, contextlib.ExitStack() as files:
            if starting is not None:
                starting.end()  # a stop signal swallowed during the start is raised here, before anything is written
            if store is not None and not start.resumed and job.primary:
                store.new = files.enter_context(job.new_files(store.out, overwrite))
                job.write_start(store.new.path)
            try:
                job.begin(out)
                run_chunks(job, record, stops, store)
            finally:
                job.end()
                if store is not None and job.primary:
                    job.write_files(store.path, record)
        record.signal = stops.received[0] if stops.received else None
        record.stopped = record.stopped or stops.stop
        return job.finish(record, out)
    finally:
        job.close()
