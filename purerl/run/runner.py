"""Training into a run directory: chunks, checkpoints, resume, the non-finite guard, progress and loggers.

A run lives the life of :mod:`purerl.run.lifecycle`: its compiled programs are ``init`` followed by chunks of
``update`` (:func:`purerl.core.loop.scan_updates`), vmapped over seeds: ``checkpoint_every`` updates per chunk,
or a tenth of the run when that is 0. After each chunk the host

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

Several processes (hosts, after ``jax.distributed.initialize``; ``purerl train --coordinator ...``): every
process calls :func:`train` with the same arguments, the seeds are split over the devices of all processes
(``seeds`` must be a multiple of ``jax.device_count()``), and every process runs the same programs on its own
seeds. The metrics, the finite check and the evaluation come out of those programs whole on every process,
so every process makes the same decisions; the processes agree after each chunk whether a stop signal came to
any of them. Process 0 alone holds the lock and writes the run directory; a checkpoint holds the state of
every seed (gathered from all processes), so the run can be resumed, evaluated or exported on one machine.
A second stop signal ends a process of several at once, without saving (the newest checkpoint stays).
"""

from __future__ import annotations

import contextlib
import importlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from purerl import algorithms, compiling
from purerl.config import check_count, config_from_dict, config_to_dict
from purerl.run import rundir
from purerl.run.guard import NonFiniteError, find_non_finite, finite_flags
from purerl.run.lifecycle import (CheckpointError, Job, Layout, Start, any_process, chunk_length, live,
                                  progress_meta, restored_metrics)
from purerl.run.progressbar import ProgressBar
from purerl.run.signals import Interrupted, Starting

# NonFiniteError, Interrupted, ProgressBar and find_non_finite live in guard, signals and progressbar, and
# CheckpointError in lifecycle; they are named here too, where a run's outcome meets them.
__all__ = ["CheckpointError", "Interrupted", "NonFiniteError", "ProgressBar", "RunOutcome", "RunRefused", "claim",
           "find_non_finite", "resume", "train"]


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
    start_update: int = 0  # updates done before this call (where a resumed run continued; 0 for a new run)
    trainer: Any = None    # the Trainer that ran (its config, sizes, evaluate and policy)
    signal: int | None = None  # the stop signal that ended an interrupted run (signal.SIGINT = 2, SIGTERM = 15)
    evaluation: dict = field(default_factory=dict)  # a finished run's trainer.evaluate output, per seed
    summary: dict = field(default_factory=dict)     # a finished run's summary.json (rundir.run_summary)

    @property
    def finished(self) -> bool:
        return self.updates_done == self.num_updates and self.error is None


class RunRefused(ValueError):
    """A run of several processes refused before it started, by every process alike (a seed count that does not
    split over the devices, or process 0's run directory): they can all end the ordinary way."""


def claim(out: Path, held: contextlib.ExitStack, kind: str = "run", overwrite: bool = False,
          flags: tuple[str, str] = ("--out", "--overwrite")) -> None:
    """Process 0 locks ``out`` (:class:`purerl.run.rundir.RunLock`, held until ``held`` closes) and checks that a
    ``kind`` (``"run"`` or ``"sweep"``) may be written there (:func:`purerl.run.rundir.check_out`: not a file,
    not a result of the other kind, not one of its own without ``overwrite``); every process learns the
    verdict. A refusal is the ``ValueError`` itself in one process, :class:`RunRefused` in each of several.
    ``flags``: how the messages name ``out`` and ``overwrite`` (the command line's by default)."""
    refused = None   # process 0 alone looks at the directory
    if jax.process_index() == 0:
        try:
            held.enter_context(rundir.RunLock(out, flag=flags[0]))
            rundir.check_out(out, kind, overwrite, flags=flags)
        except (ValueError, OSError) as e:
            refused = e
    if any_process(refused is not None):
        if jax.process_count() == 1:
            raise refused
        raise RunRefused(" ".join(str(refused).split()) if refused is not None else
                         f"process 0 cannot write the {kind} into its --out {out} (its own message says why); "
                         f"nothing was {'trained' if kind == 'run' else 'run'}") from refused


def seed_layout(seeds: int) -> Layout:
    """Where a run's seeds live: on this process's default device; split over this process's devices (a CPU
    presented as one device per core, :mod:`purerl.run.devices`: the most of them the seeds split over evenly);
    or split over the devices of every process of a run of several (``jax.distributed``), refused
    (:class:`RunRefused`) unless they split evenly."""
    from jax.sharding import Mesh

    from purerl.run.devices import local_mesh

    if jax.process_count() == 1:
        return Layout(local_mesh(seeds))
    n = jax.device_count()
    if seeds % n:
        near = " or ".join(f"--seeds {k}" for k in (n * (seeds // n), n * (seeds // n + 1)) if k)
        raise RunRefused(f"seeds = {seeds} cannot be split evenly over the {n} devices of the "
                         f"{jax.process_count()} processes: give a multiple of {n} ({near})")
    return Layout(Mesh(np.asarray(jax.devices()), ("seeds",)))


def _exact_env_steps(metrics: dict, trainer: Any, first_update: int) -> dict:
    """``env_steps`` as exact int64 counts (in the program it is float32, exact only up to 2^24)."""
    if "env_steps" in metrics:
        steps = np.asarray(metrics["env_steps"])
        n = steps.shape[1]
        exact = trainer.env_steps_before + (first_update + np.arange(n, dtype=np.int64)) * trainer.steps_per_log_point
        metrics = dict(metrics, env_steps=np.broadcast_to(exact, steps.shape).copy())
    return metrics


def _check_run_args(seeds: Any, seed: Any, checkpoint_every: Any, eval_episodes: Any, fused: bool) -> None:
    for name, value, low in (("seeds", seeds, 1), ("checkpoint_every", checkpoint_every, 0),
                             ("eval_episodes", eval_episodes, 0), ("seed", seed, None)):
        check_count(value, name, low, note=" (0 saves at the end only)" * (name == "checkpoint_every"))
    if fused and checkpoint_every:
        raise ValueError("a fused run is one program: it cannot save every N updates; drop fused or "
                         "checkpoint_every")


class Training(Job):
    """A training run as a :class:`purerl.run.lifecycle.Job`: ``trainer``'s ``init`` and chunks of its
    ``update``, vmapped over ``seeds``, with the run directory's files, the progress bar and the loggers. The
    programs needed only later (the finite check, the final evaluation, a shorter last chunk) compile on a
    second thread, beside the chunk program and then while the first chunks run: XLA compiles with the GIL
    released, and on a CPU training rarely keeps every core busy."""

    def __init__(self, algo: str, cfg: Any, trainer: Any, *, seeds: int, seed: int, checkpoint_every: int,
                 fused: bool, progress: bool, loggers: tuple, eval_episodes: int, layout: Layout):
        self.algo, self.cfg, self.trainer, self.seeds, self.seed = algo, cfg, trainer, seeds, seed
        self.checkpoint_every, self.fused, self.progress, self.eval_episodes = checkpoint_every, fused, progress, \
            eval_episodes
        self.layout = layout
        self.loggers = loggers if layout.primary else ()
        self.num_updates = trainer.num_log_points
        self.every = self.num_updates if fused else chunk_length(self.num_updates, checkpoint_every)
        self.save_every = bool(checkpoint_every)
        self.keys = layout.keys(rundir.train_keys(seed, seeds))
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="purerl-compile")
        self.bar = self.flags = self.eval = self.last = None

    def _chunk_program(self, n: int):
        from purerl.core.loop import scan_updates

        # One seed: the bar shows the latest return too; many: steps only (one callback per report, not per seed).
        pm = ("episode_return",) if self.seeds == 1 else ()
        trainer, total, bar = self.trainer, self.num_updates, self.bar
        step = lambda s, start: scan_updates(trainer.update, s, start, n, total, bar, pm)  # noqa: E731
        return compiling.compile(jax.vmap(step, in_axes=(0, None)), self.shape, np.int32(0),
                                 **self.layout.jit_kwargs("rows", "whole"))

    def compile(self, start: Start, check: Any) -> Any:
        # Every process runs the same programs (the bar's callback included); only process 0 draws the bar.
        self.bar = ProgressBar(self.seeds, start.done) if self.progress else None
        # traced once: the state's shape and its program
        initial = jax.jit(jax.vmap(self.trainer.init), **self.layout.jit_kwargs("rows")).trace(self.keys)
        self.shape = self.layout.shapes(initial.out_info)
        check()
        # The initial state's program compiles (XLA, without the GIL) on the second thread while this one
        # traces the chunk program; a shorter last chunk, when the run does not divide into equal ones,
        # compiles there later.
        if not start.resumed:
            init_program = self.pool.submit(lambda: initial.lower().compile(compiling.compile_options("once")))
        left = self.num_updates - start.done
        rest = left % self.every
        self.chunks = {min(self.every, left): self._chunk_program(min(self.every, left))}
        check()
        if rest and left > self.every:
            self.last = self.pool.submit(lambda: self._chunk_program(rest))
        if start.resumed:
            return start.state
        return jax.block_until_ready(init_program.result()(self.keys))

    def begin(self, out: Path | None) -> None:
        """Queue the finite check, the evaluation and the checkpointer's import (once training runs: compiling
        beside the training program's own compilation would slow that one down); open the loggers and the bar."""
        for log in self.loggers:
            log.open(out, self.algo, self.cfg, self.seeds)
        whole = self.layout.jit_kwargs("whole")
        self.flags = self.pool.submit(lambda: compiling.compile(finite_flags, self.shape, kind="once", **whole))
        if self.eval_episodes:
            evaluate = jax.vmap(lambda s, k: self.trainer.evaluate(s, k, self.eval_episodes))
            keys = self.layout.keys(rundir.eval_keys(self.seed, self.seeds))
            self.eval = self.pool.submit(lambda: compiling.compile(evaluate, self.shape, keys, kind="once", **whole))
        self.pool.submit(lambda: importlib.import_module("orbax.checkpoint"))
        if self.bar is not None and self.primary:
            self.bar.start(self.num_updates, self.trainer.steps_per_log_point)

    def ready(self, n: int) -> None:
        if n not in self.chunks:
            self.chunks[n] = self.last.result()

    def chunk(self, state: Any, done: int, n: int) -> tuple[Any, dict]:
        return self.chunks[n](state, np.int32(done))

    def host_metrics(self, metrics: dict, first: int) -> dict:
        return _exact_env_steps(jax.device_get(metrics), self.trainer, first)

    def check(self, metrics: dict, state: Any, first: int) -> NonFiniteError | None:
        return find_non_finite(metrics, state, first, self.flags.result())

    def logged(self, metrics: dict, first: int) -> None:
        if self.bar is not None and self.seeds > 1 and "episode_return" in metrics:
            last_ret = np.asarray(metrics["episode_return"], dtype=np.float64)[:, -1]
            self.bar.show_return(float(np.nanmean(last_ret)) if np.isfinite(last_ret).any() else float("nan"))
        for log in self.loggers:
            log.write(metrics, first)

    def meta(self, step: int, metrics: dict) -> dict:
        return {"algo": self.algo, "seeds": self.seeds, "seed": self.seed, "config": config_to_dict(self.cfg),
                **progress_meta(step, self.num_updates, metrics), "checkpoint_every": self.checkpoint_every}

    def write_start(self, path: Path) -> None:
        rundir.write_config(path, self.algo, self.cfg, self.seeds, self.seed,
                            {"checkpoint_every": self.checkpoint_every, "fused": self.fused,
                             "devices": self.layout.devices})

    def end(self) -> None:
        if self.bar is not None:
            self.bar.close()
        for log in self.loggers:
            log.close()

    def write_files(self, path: Path, record: Any) -> None:
        rundir.write_metrics(path, record.metrics)

    def finish(self, record: Any, out: Path | None) -> RunOutcome:
        metrics = record.metrics
        evaluation, summary = {}, {}
        if record.finished:
            if self.eval is not None:
                evaluation = jax.device_get(self.eval.result()(record.state, self.layout.keys(
                    rundir.eval_keys(self.seed, self.seeds))))
            summary = rundir.run_summary(self.algo, self.cfg.env, self.seeds, self.trainer, metrics, evaluation,
                                         record.compile_s, record.run_s, record.start, record.done,
                                         self.num_updates, self.layout.devices)
            if self.primary:
                rundir.write_summary(out, summary)
        return RunOutcome(record.state, metrics, record.compile_s, record.run_s, record.done, self.num_updates,
                          interrupted=record.interrupted, error=record.error, start_update=record.start,
                          trainer=self.trainer, signal=record.signal, evaluation=evaluation, summary=summary)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def train(algo: str, cfg: Any, out: str | Path, *, seeds: int = 1, seed: int = 0, checkpoint_every: int = 0,
          fused: bool = False, progress: bool = False, loggers: tuple = (), eval_episodes: int = 0,
          overwrite: bool = False) -> RunOutcome:
    """Train ``algo`` with ``cfg`` for ``seeds`` vmapped seeds into run directory ``out`` (config.json,
    metrics.json/csv, checkpoints/). See the module docstring. Never raises on divergence: the outcome's
    ``error`` holds the :class:`NonFiniteError` and the newest checkpoint is the last good state.

    ``out`` is locked while the run writes it (``out/.lock``; a second run into it is refused). A directory
    that already holds a run is refused unless ``overwrite``, one that holds a sweep always (:func:`claim`). The
    new run's files stay in ``out/.starting/`` until its first checkpoint is saved (at the end, on a stop
    signal, or after ``checkpoint_every`` updates) and only then replace the old run: a start that fails or is
    stopped before that leaves ``out`` as it was.

    With ``eval_episodes``, a finished run's policy is evaluated deterministically for that many episodes
    per seed; ``outcome.evaluation`` holds ``trainer.evaluate``'s output per seed."""
    _check_run_args(seeds, seed, checkpoint_every, eval_episodes, fused)
    with Starting() as starting:
        out = Path(out)
        mod = algorithms.module(algo)
        cfg = cfg.validate()
        trainer = mod.make(cfg)
        layout = seed_layout(seeds)
        with contextlib.ExitStack() as held:
            claim(out, held, "run", overwrite)
            job = Training(algo, cfg, trainer, seeds=seeds, seed=seed, checkpoint_every=checkpoint_every,
                           fused=fused, progress=progress, loggers=loggers, eval_episodes=eval_episodes,
                           layout=layout)
            return live(job, out, Start(), starting=starting, overwrite=overwrite)


def resume(out: str | Path, *, progress: bool = False, loggers: tuple = (), eval_episodes: int = 0) -> RunOutcome:
    """Continue the run in ``out`` from its newest checkpoint with the same config, seeds and chunking;
    the finished run equals the uninterrupted one bit for bit. (A sweep directory resumes with
    :func:`purerl.sweep.resume`; ``purerl resume DIR`` takes either.)"""
    from purerl.run import checkpoint as ckpt

    if jax.process_count() > 1:
        raise ValueError("resume a run in one process (without --coordinator): a run trained on several processes "
                         "saved every seed's state in its checkpoints, so one process continues it")
    out = Path(out)
    if rundir.kind_of(out) == "sweep":
        raise ValueError(f"{out} holds a sweep: continue it with purerl.sweep.resume (`purerl resume {out}`)")
    body = rundir.read_config(out)
    mod = algorithms.module(body["algo"])
    cfg = config_from_dict(mod.Config, body["config"], source=str(out / "config.json")).validate()
    trainer = mod.make(cfg)
    with rundir.RunLock(out, flag=None):   # resume writes where the run is: no other directory to offer
        if ckpt.latest_step(out / "checkpoints") is None:
            raise ValueError(f"{out} has no checkpoint to resume from (the run stopped before its first save): "
                             f"start it again with `purerl train {body['algo']} --config {out / 'config.json'} "
                             f"--out {out} --overwrite`")
        template = jax.eval_shape(jax.vmap(trainer.init), rundir.train_keys(body["seed"], body["seeds"]))
        state, meta = ckpt.restore(out / "checkpoints", template)
        every = int(body.get("checkpoint_every", meta.get("checkpoint_every", 0)))
        if meta.get("updates_done") == meta.get("num_updates"):
            raise ValueError(f"the run in {out} is finished ({meta['updates_done']} of {meta['num_updates']} "
                             f"updates): nothing to resume")
        _check_run_args(body["seeds"], body["seed"], every, eval_episodes, False)
        with Starting() as starting:  # this process holds the lock already
            job = Training(body["algo"], cfg, trainer, seeds=body["seeds"], seed=body["seed"],
                           checkpoint_every=every, fused=False, progress=progress, loggers=loggers,
                           eval_episodes=eval_episodes, layout=seed_layout(body["seeds"]))
            start = Start(resumed=True, state=state, done=int(meta["updates_done"]), metrics=restored_metrics(meta))
            return live(job, out, start, starting=starting)
