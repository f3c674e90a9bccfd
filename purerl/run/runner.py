"""Training into a run directory: chunks, checkpoints, resume, the non-finite guard, progress and loggers.

The compiled run is ``init`` followed by chunks of ``update`` (:func:`purerl.core.loop.scan_updates`), vmapped
over seeds: ``checkpoint_every`` updates per chunk, or a tenth of the run when that is 0. After each chunk
the host

1. checks every loss/statistic and every floating-point array of the train state for NaN/inf; on the first
   non-finite value it saves the last good state (the one before the chunk) and stops with a
   :class:`NonFiniteError` naming the first bad update and quantity;
2. saves the whole train state (orbax) with the config and the metrics so far when ``checkpoint_every`` is
   set (otherwise only at the end), so :func:`resume` continues bit for bit where the run stopped;
3. hands the chunk's metrics to the loggers (TensorBoard, Weights & Biases).

A new run's files are kept in ``out/.starting/`` until its first checkpoint is saved, then moved into ``out``
(:class:`purerl.run.rundir.NewRun`): a run directory always holds a run that can be resumed (or a finished or
diverged one), and a start that is stopped before that leaves nothing. A stop signal while the run starts
(validation, tracing, compiling) raises :class:`Interrupted`. Once training runs, Ctrl-C (SIGINT) or SIGTERM
lets the running chunk finish, saves it and returns, whatever ``checkpoint_every`` is; a second one abandons
the running chunk and saves the state after the last finished one. With ``fused=True`` the run is one chunk of
all its updates (a first signal cannot stop it early) and the guard inspects its metrics and final state
afterwards. ``env_steps`` in the run's files is an exact int64 count. Fused or chunked, a run starts from the
same compiled initial-state program and runs the same update; being different compiled programs, they agree to
float rounding. A resumed run executes the same compiled programs as the uninterrupted one (the chunk length
is kept), so those two are equal bit for bit.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from purerl import compiling
from purerl.config import config_from_dict, config_to_dict
from purerl.run import rundir

__all__ = ["CheckpointError", "Interrupted", "NonFiniteError", "ProgressBar", "RunOutcome", "find_non_finite", "resume", "train"]

# Metrics allowed to be NaN: no episode has finished yet at that log point.
MAY_BE_NAN = frozenset({"episode_return", "episode_length"})
# Train-state fields allowed to be NaN: the latest episode means, NaN until the first episode ends.
STATE_MAY_BE_NAN = frozenset({"last_return", "last_length"})


class NonFiniteError(RuntimeError):
    """A loss, statistic or parameter became NaN or infinite."""

    def __init__(self, message: str, update: int, quantity: str, seed: int):
        super().__init__(message)
        self.update, self.quantity, self.seed = update, quantity, seed


class ProgressBar:
    """Host side of the in-jit progress callback: a tqdm bar over env steps (per seed) with the rate, ETA
    and, for one seed, the latest episode return."""

    def __init__(self, seeds: int, initial_updates: int = 0, file: Any = None):
        self.seeds = seeds
        self.file = file
        self._lock = threading.Lock()
        self._done = 0
        self._initial = initial_updates
        self.steps_per_update = 0
        self.bar = None

    def start(self, num_updates: int, steps_per_update: int) -> None:
        """Open the bar (after compilation, so its rate is the run's)."""
        from tqdm.auto import tqdm

        self.steps_per_update = steps_per_update
        self._done = self._initial * steps_per_update
        desc = "train" if self.seeds == 1 else f"train ({self.seeds} seeds)"
        self.bar = tqdm(total=num_updates * steps_per_update, initial=self._done, unit="step", unit_scale=True,
                        dynamic_ncols=True, desc=desc, file=self.file or sys.stderr)

    def __call__(self, payload: dict) -> None:
        if self.bar is None:  # a report before start(): nothing to draw yet
            return
        steps = int(payload["update"]) * self.steps_per_update
        with self._lock:
            if steps > self._done:
                self.bar.update(steps - self._done)
                self._done = steps
            if "episode_return" in payload:
                ret = float(payload["episode_return"])
                if ret == ret:
                    self.bar.set_postfix(ret=f"{ret:.1f}", refresh=False)

    def show_return(self, value: float) -> None:
        """Show a return computed on the host (the mean over seeds after a chunk)."""
        if self.bar is not None and value == value:
            with self._lock:
                self.bar.set_postfix(ret=f"{value:.1f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def find_non_finite(metrics: dict, state: Any, first_update: int, flags: Any = None) -> NonFiniteError | None:
    """The first non-finite metric (arrays ``[seed, update]``, update ``first_update`` at index 0) or, if
    none, the first non-finite floating-point leaf of ``state`` (leading seed axis); ``None`` when all are
    finite. Updates are counted from 1. ``flags``: a compiled :func:`finite_flags` for ``state``'s shape."""
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
        return NonFiniteError(f"non-finite `{name}` ({value}) at update {n} (seed index {seed}): training "
                              f"diverged", n, name, seed)
    flags = jax.tree_util.tree_flatten_with_path(jax.device_get((flags or jax.jit(finite_flags))(state)))[0]
    for path, ok in flags:
        ok = np.asarray(ok)
        if not ok.all() and getattr(path[-1], "name", None) not in STATE_MAY_BE_NAN:
            seed = int(np.argmin(ok))
            name = jax.tree_util.keystr(path)
            last = first_update + len(next(iter(metrics.values()))[0]) - 1 if metrics else first_update
            return NonFiniteError(f"non-finite train-state array `{name}` after update {last} (seed index {seed}): "
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


def chunk_length(num_updates: int, checkpoint_every: int = 0) -> int:
    """Updates per chunk: ``checkpoint_every``, or about a tenth of the run, preferring a length that divides
    the run into 5 to 20 equal chunks (one compiled program then serves every chunk)."""
    if checkpoint_every:
        return checkpoint_every
    exact = [d for d in range(1, num_updates + 1) if num_updates % d == 0 and 5 <= num_updates // d <= 20]
    if exact:
        return min(exact, key=lambda d: (abs(num_updates // d - 10), d))
    return max(1, -(-num_updates // 10))


@dataclass
class RunOutcome:
    """What :func:`train`/:func:`resume` produced: the final state (vmapped over seeds), all metrics as
    numpy ``[seed, log point]``, timings, and whether the run was interrupted or stopped by the guard."""

    state: Any
    metrics: dict
    compile_s: float
    run_s: float
    updates_done: int
    num_updates: int
    interrupted: bool = False
    error: NonFiniteError | None = None
    extra: dict = field(default_factory=dict)
    start_update: int = 0  # updates done before this call (where a resumed run continued; 0 for a new run)

    @property
    def finished(self) -> bool:
        return self.updates_done == self.num_updates and self.error is None


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([np.asarray(p[k]) for p in parts], axis=1) for k in parts[0]} if parts else {}


def write_metrics(out: Path, metrics: dict) -> None:
    """Metrics with axes ``[seed, log_point]`` as JSON (nested lists) and CSV (one row per seed and point)."""
    import csv

    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    if not arrays:
        return
    with open(out / "metrics.json", "w") as f:
        json.dump({k: v.tolist() for k, v in arrays.items()}, f)
    names = sorted(arrays)
    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "log_point"] + names)
        n_seeds, n_points = arrays[names[0]].shape[:2]
        for s in range(n_seeds):
            for i in range(n_points):
                w.writerow([s, i] + [float(arrays[k][s, i]) for k in names])


def _meta(algo: str, cfg: Any, seeds: int, seed: int, done: int, num_updates: int, every: int,
          metrics: dict) -> dict:
    return {"algo": algo, "seeds": seeds, "seed": seed, "config": config_to_dict(cfg),
            "updates_done": done, "num_updates": num_updates, "checkpoint_every": every,
            "metrics": {k: np.asarray(v).tolist() for k, v in metrics.items()},
            "metric_dtypes": {k: str(np.asarray(v).dtype) for k, v in metrics.items()}}


class _Programs:
    """The compiled programs of one run besides the training chunks. Those needed only later (the finite
    check, the final evaluation, a shorter last chunk) compile on a second thread, beside the chunk program
    and then while the first chunks run: XLA compiles with the GIL released, and on a CPU training rarely
    keeps every core busy."""

    def __init__(self, trainer: Any, shape: Any, keys: Any, eval_episodes: int):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="purerl-compile")
        self.trainer, self.shape, self.keys, self.eval_episodes = trainer, shape, keys, eval_episodes
        self.flags = self.eval = None

    def start(self) -> None:
        """Queue the finite check, the evaluation and the checkpointer's import (call once training runs:
        compiling beside the training program's own compilation would slow that one down)."""
        self.flags = self.later(lambda: compiling.compile(finite_flags, self.shape, kind="once"))
        if self.eval_episodes:
            evaluate = jax.vmap(lambda s, k: self.trainer.evaluate(s, k, self.eval_episodes))
            self.eval = self.later(lambda: compiling.compile(evaluate, self.shape, self.keys, kind="once"))
        self.later(lambda: importlib.import_module("orbax.checkpoint"))

    def later(self, compile_fn):
        return self.pool.submit(compile_fn)

    def check(self, metrics: dict, state: Any, first_update: int) -> NonFiniteError | None:
        return find_non_finite(metrics, state, first_update, self.flags.result())

    def evaluate(self, state: Any) -> dict:
        return jax.device_get(self.eval.result()(state, self.keys)) if self.eval is not None else {}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT or SIGTERM) that arrived while a run was starting: nothing was written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class CheckpointError(OSError):
    """A checkpoint could not be written (a full disk, a lost mount); the newest good one is named."""


class _Abandon(Exception):
    """Raised by the second stop signal while the host waits for a chunk: leave that chunk unfinished."""


class _Stops:
    """SIGINT/SIGTERM while a run trains (main thread only). The first asks the run to stop after the running
    chunk and save; the second abandons the running chunk (the state after the last finished one is saved);
    after that the signals act as they did before the run."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, describe: Any, starting: "_Starting | None" = None):
        self.received: list[int] = []
        self.waiting = False
        self.describe = describe  # () -> what the first signal's message says will happen
        self.active = threading.current_thread() is threading.main_thread()
        self.previous: dict = {}
        self.starting = starting

    def __enter__(self) -> "_Stops":
        """Take over the signals; from a :class:`_Starting` without a moment in which neither handles them
        (their handlers are replaced by these, and the ones from before the start are restored on exit)."""
        if self.active:
            handed = self.starting.previous if self.starting is not None else {}
            try:
                for s in self.SIGNALS:
                    before = handed.get(s, signal.getsignal(s))
                    if before in (signal.SIG_IGN, None):  # one the user chose to ignore (nohup) stays ignored
                        continue
                    signal.signal(s, self._handle)
                    self.previous[s] = before
            except BaseException:  # a stop signal while handing over: the start's handlers stay in charge
                self._restore()
                raise
            if self.starting is not None:
                self.starting.previous = {}
        return self

    def _restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)
        self.previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        name = signal.Signals(signum).name
        if len(self.received) == 1:
            print(f"\npurerl: {name}: {self.describe()}; send it again (Ctrl-C) to stop at once", file=sys.stderr,
                  flush=True)
            return
        self._restore()
        print(f"\npurerl: {name} again: stopping now", file=sys.stderr, flush=True)
        if self.waiting:
            raise _Abandon()

    @property
    def stop(self) -> bool:
        return bool(self.received)

    @property
    def abandon(self) -> bool:
        return len(self.received) >= 2

    def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()``'s outputs once computed, waiting so that a second signal can interrupt (``_Abandon``). The
        call runs on a helper thread: a program with a host callback (the progress bar) runs synchronously in
        the calling thread, and Python runs signal handlers in the main thread only between its own steps."""
        if not self.active:
            return jax.block_until_ready(fn())
        result: list = []
        done = threading.Event()

        def call():
            try:
                result.append((True, jax.block_until_ready(fn())))
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                result.append((False, e))
            finally:
                done.set()

        threading.Thread(target=call, daemon=True, name="purerl-chunk").start()
        self.waiting = True
        try:
            while not done.wait(0.05):  # short slices: the handlers run between them
                if self.abandon:
                    raise _Abandon()
        finally:
            self.waiting = False
        ok, value = result[0]
        if not ok:
            raise value
        return value

    def __exit__(self, *exc) -> None:
        self._restore()


class _Starting:
    """While a run starts (validation, tracing, compiling): SIGTERM and Ctrl-C raise :class:`Interrupted`, so a
    stopped start cleans up after itself and says that nothing was written. Python prints and then ignores an
    exception raised while it runs a garbage-collection callback (jax has one) or a finaliser; a stop signal
    that lands there is recorded, printed nothing for, and raised at the next :meth:`check` or when the start
    ends. :meth:`end` (or a :class:`_Stops` given this object) hands over to the training loop's own handling."""

    def __init__(self):
        self.active = threading.current_thread() is threading.main_thread()
        self.ended = False
        self.previous: dict = {}
        self.seen: int | None = None
        self._hook: Any = None

    def __enter__(self) -> "_Starting":
        if self.active:
            for signum in (signal.SIGTERM, signal.SIGINT):
                if signal.getsignal(signum) not in (signal.SIG_IGN, None):
                    self.previous[signum] = signal.signal(signum, self._handle)
            self._hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = signum
        raise Interrupted(signum)

    def _unraisable(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            return  # recorded in self.seen; raised again by check() or end()
        self._hook(unraisable)

    def check(self) -> None:
        """Raise a stop signal that arrived during the start and was swallowed on the way."""
        if self.seen is not None and not self.ended:
            raise Interrupted(self.seen)

    def end(self, raise_pending: bool = True) -> None:
        if not self.ended:
            self.ended = True
            for signum, handler in self.previous.items():
                signal.signal(signum, handler)
            self.previous = {}
            if self._hook is not None and sys.unraisablehook == self._unraisable:
                sys.unraisablehook = self._hook
            if raise_pending and self.seen is not None:
                raise Interrupted(self.seen)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        starting = not self.ended
        self.end(raise_pending=exc is None)
        if starting and isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
            raise Interrupted(signal.SIGINT) from None


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM wait while the block runs (main thread): recorded, then raised again for the handlers
    of before once it is over, so that moving a new run into its directory is never cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) not in (signal.SIG_IGN, None):
            previous[s] = signal.signal(s, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in pending:
            signal.raise_signal(s)


def _exact_env_steps(metrics: dict, trainer: Any, first_update: int) -> dict:
    """``env_steps`` as exact int64 counts (in the program it is float32, exact only up to 2^24)."""
    if "env_steps" in metrics:
        steps = np.asarray(metrics["env_steps"])
        n = steps.shape[1]
        exact = trainer.env_steps_before + (first_update + np.arange(n, dtype=np.int64)) * trainer.steps_per_log_point
        metrics = dict(metrics, env_steps=np.broadcast_to(exact, steps.shape).copy())
    return metrics


def train(algo: str, cfg: Any, out: str | Path, *, seeds: int = 1, seed: int = 0, checkpoint_every: int = 0,
          fused: bool = False, progress: bool = False, loggers: tuple = (), eval_episodes: int = 0,
          overwrite: bool = False, _resume: tuple | None = None) -> RunOutcome:
    """Train ``algo`` with ``cfg`` for ``seeds`` vmapped seeds into run directory ``out`` (config.json,
    metrics.json/csv, checkpoints/). See the module docstring. Never raises on divergence: the outcome's
    ``error`` holds the :class:`NonFiniteError` and the newest checkpoint is the last good state.

    ``out`` is locked while the run writes it (``out/.lock``; a second run into it is refused). A directory
    that already holds a run is refused unless ``overwrite``. The new run's files stay in ``out/.starting/``
    until its first checkpoint is saved (at the end, on a stop signal, or after ``checkpoint_every`` updates)
    and only then replace the old run: a start that fails or is stopped before that leaves ``out`` as it was.

    With ``eval_episodes``, a finished run's policy is evaluated deterministically for that many episodes
    per seed; ``outcome.extra["eval"]`` holds ``trainer.evaluate``'s output per seed."""
    for name, value, low in (("seeds", seeds, 1), ("checkpoint_every", checkpoint_every, 0),
                             ("eval_episodes", eval_episodes, 0), ("seed", seed, None)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (low is not None and value < low):
            raise ValueError(f"{name} must be an integer" + (f" of at least {low}" if low is not None else "") +
                             f", got {value!r}" + (" (checkpoint_every = 0 saves at the end only)"
                                                    if name == "checkpoint_every" else ""))
    if fused and checkpoint_every:
        raise ValueError("a fused run is one program: it cannot save every N updates; drop fused or "
                         "checkpoint_every")
    with _Starting() as starting:
        out = Path(out)
        mod = rundir.algo_module(algo)
        cfg = cfg.validate()
        trainer = _resume[3] if _resume is not None else mod.make(cfg)  # resume() built it for the restore template
        if _resume is not None:  # resume() holds the lock
            return _train(algo, cfg, out, trainer, seeds, seed, checkpoint_every, False, progress, loggers,
                          eval_episodes, False, _resume, starting)
        with rundir.RunLock(out):
            if rundir.holds_run(out) and not overwrite:
                raise ValueError(f"--out {out} already holds a run: continue it with `purerl resume {out}`, "
                                 f"choose another --out, or pass --overwrite to replace it")
            return _train(algo, cfg, out, trainer, seeds, seed, checkpoint_every, fused, progress, loggers,
                          eval_episodes, overwrite, None, starting)


def _train(algo: str, cfg: Any, out: Path, trainer: Any, seeds: int, seed: int, checkpoint_every: int,
           fused: bool, progress: bool, loggers: tuple, eval_episodes: int, overwrite: bool,
           _resume: tuple | None, starting: _Starting) -> RunOutcome:
    from purerl.core.loop import scan_updates
    from purerl.run import checkpoint as ckpt

    keys = rundir.train_keys(seed, seeds)
    done0 = _resume[1] if _resume else 0
    bar = ProgressBar(seeds, done0) if progress else None
    # One seed: the bar shows the latest return too; many: steps only (one callback per report, not per seed).
    pm = ("episode_return",) if seeds == 1 else ()
    n_total = trainer.num_log_points

    t0 = time.perf_counter()
    initial = jax.jit(jax.vmap(trainer.init)).trace(keys)   # traced once: the state's shape and its program
    shape = initial.out_info
    starting.check()
    programs = _Programs(trainer, shape, rundir.eval_keys(seed, seeds), eval_episodes)
    try:
        every = n_total if fused else chunk_length(n_total, checkpoint_every)  # fused: one chunk, the whole run
        done = done0

        def chunk_program(n: int):
            step = lambda s, start: scan_updates(trainer.update, s, start, n, n_total, bar, pm)  # noqa: E731
            return compiling.compile(jax.vmap(step, in_axes=(0, None)), shape, np.int32(0))

        # The initial state's program compiles (XLA, without the GIL) on the second thread while this one
        # traces the chunk program; a shorter last chunk, when the run does not divide into equal ones,
        # compiles there later.
        if _resume is None:
            init_program = programs.later(lambda: initial.lower().compile(compiling.compile_options("once")))
        else:
            state, done, previous_metrics, _ = _resume
            parts = [previous_metrics] if previous_metrics else []
        rest = (n_total - done) % every
        chunks = {min(every, n_total - done): chunk_program(min(every, n_total - done))}
        starting.check()
        last = programs.later(lambda: chunk_program(rest)) if rest and n_total - done > every else None
        if _resume is None:
            state = jax.block_until_ready(init_program.result()(keys))
            parts = []
        compile_s = time.perf_counter() - t0
        saved = done if _resume is not None else None  # the step of the run's newest checkpoint (None: none yet)
        new = None  # a new run's files until its first checkpoint (rundir.NewRun); a resumed run writes into out

        def here() -> Path:
            return new.path if new is not None else out

        def commit() -> None:
            if new is not None and not new.committed:
                with _signals_held():
                    new.commit()

        def save(state, step):
            where = here() / "checkpoints"
            try:
                ckpt.save(where, state, step=step,
                          meta=_meta(algo, cfg, seeds, seed, step, n_total, checkpoint_every, _concat(parts)))
            except Exception as e:  # noqa: BLE001 - orbax and tensorstore raise several kinds
                good = ckpt.latest_step(where) if where.is_dir() else None
                keep = (f"the newest good checkpoint is {where}/{good} (after update {good}; "
                        f"`purerl resume {out}` continues from it)" if good is not None else
                        "there is no earlier checkpoint")
                raise CheckpointError(f"could not save the checkpoint after update {step} to {where}: "
                                      f"{e}; {keep}") from e
            commit()  # a new run's first checkpoint: the run moves into out
            return step

        def describe() -> str:
            if fused:
                return "a fused run is one program: it stops and saves at its end"
            return (f"stopping after the running chunk (updates {done + 1}-{min(done + every, n_total)} of {n_total})"
                    f" and saving the run")

        error = None
        with _Stops(describe, starting) as stops, contextlib.ExitStack() as files:
            starting.end()  # a stop signal swallowed during the start is raised here, before anything is written
            if _resume is None:
                new = files.enter_context(rundir.NewRun(out, replace=overwrite))
                rundir.write_config(new.path, algo, cfg, seeds, seed,
                                    {"checkpoint_every": checkpoint_every, "fused": fused})
            for log in loggers:
                log.open(out, algo, cfg, seeds)
            try:
                programs.start()
                if bar is not None:
                    bar.start(n_total, trainer.steps_per_log_point)
                run_s = 0.0
                while done < n_total and not stops.abandon:
                    n = min(every, n_total - done)
                    if n not in chunks:
                        chunks[n] = last.result()
                    t1 = time.perf_counter()
                    try:
                        new_state, metrics = stops.run(functools.partial(chunks[n], state, np.int32(done)))
                    except _Abandon:
                        break
                    run_s += time.perf_counter() - t1
                    metrics = _exact_env_steps(jax.device_get(metrics), trainer, done + 1)
                    error = programs.check(metrics, new_state, done + 1)
                    if error is not None:  # save the last good state; record the metrics up to the failure
                        if done > (saved or 0):
                            saved = save(state, done)
                        commit()  # nothing to resume when it failed in the first chunk, but metrics to read
                        parts.append(metrics)
                        break
                    state = new_state
                    parts.append(metrics)
                    if bar is not None and seeds > 1 and "episode_return" in metrics:
                        last_ret = np.asarray(metrics["episode_return"], dtype=np.float64)[:, -1]
                        bar.show_return(float(np.nanmean(last_ret)) if np.isfinite(last_ret).any()
                                        else float("nan"))
                    log_chunk(loggers, metrics, done + 1)
                    done += n
                    if checkpoint_every or done == n_total or stops.stop:
                        saved = save(state, done)
                    if stops.stop:
                        break
                if stops.abandon and saved != done:  # the last finished chunk's state (the initial one at worst)
                    saved = save(state, done)
            finally:
                if bar is not None:
                    bar.close()
                _close(loggers)
                write_metrics(here(), _concat(parts))
        metrics = _concat(parts)
        extra = {"trainer": trainer}
        if stops.received:
            extra["signal"] = stops.received[0]
        if done == n_total and error is None:
            extra["eval"] = programs.evaluate(state)
        return RunOutcome(state, metrics, compile_s, run_s, done, n_total,
                          interrupted=stops.stop and done < n_total, error=error, extra=extra, start_update=done0)
    finally:
        programs.close()


def log_chunk(loggers: tuple, metrics: dict, first: int) -> None:
    for log in loggers:
        log.write(metrics, first)


def _close(loggers) -> None:
    for log in loggers:
        log.close()


def resume(out: str | Path, *, progress: bool = False, loggers: tuple = (), eval_episodes: int = 0) -> RunOutcome:
    """Continue the run in ``out`` from its newest checkpoint with the same config, seeds and chunking;
    the finished run equals the uninterrupted one bit for bit."""
    from purerl.run import checkpoint as ckpt

    out = Path(out)
    body = rundir.read_config(out)
    mod = rundir.algo_module(body["algo"])
    cfg = config_from_dict(mod.Config, body["config"], source=str(out / "config.json"))
    trainer = mod.make(cfg.validate())
    with rundir.RunLock(out):
        if ckpt.latest_step(out / "checkpoints") is None:
            raise ValueError(f"{out} has no checkpoint to resume from (the run stopped before its first save): "
                             f"start it again with `purerl train {body['algo']} --config {out / 'config.json'} "
                             f"--out {out} --overwrite`")
        template = jax.eval_shape(jax.vmap(trainer.init), rundir.train_keys(body["seed"], body["seeds"]))
        state, meta = ckpt.restore(out / "checkpoints", template)
        dtypes = meta.get("metric_dtypes", {})
        metrics = {k: np.asarray(v, dtype=dtypes.get(k, "float32")) for k, v in meta.get("metrics", {}).items()}
        every = int(body.get("checkpoint_every", meta.get("checkpoint_every", 0)))
        if meta.get("updates_done") == meta.get("num_updates"):
            raise ValueError(f"the run in {out} is finished ({meta['updates_done']} of {meta['num_updates']} "
                             f"updates): nothing to resume")
        return train(body["algo"], cfg, out, seeds=body["seeds"], seed=body["seed"], checkpoint_every=every,
                     progress=progress, loggers=loggers, eval_episodes=eval_episodes,
                     _resume=(state, int(meta["updates_done"]), metrics, trainer))
