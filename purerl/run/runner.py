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
import functools
import importlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from purerl import compiling
from purerl.config import check_count, config_from_dict, config_to_dict
from purerl.run import rundir
from purerl.run.rundir import write_metrics
from purerl.run.guard import NonFiniteError, find_non_finite, finite_flags
from purerl.run.progressbar import ProgressBar
from purerl.run.signals import Abandon, Interrupted, Starting, Stops, signals_held

# NonFiniteError, Interrupted, ProgressBar and find_non_finite live in guard, signals and progressbar; they are
# named here too, where a run's outcome meets them.
__all__ = ["CheckpointError", "Interrupted", "NonFiniteError", "ProgressBar", "RunOutcome", "RunRefused", "claim",
           "find_non_finite", "resume", "train"]


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
    start_update: int = 0  # updates done before this call (where a resumed run continued; 0 for a new run)
    trainer: Any = None    # the Trainer that ran (its config, sizes, evaluate and policy)
    signal: int | None = None  # the stop signal that ended an interrupted run (signal.SIGINT = 2, SIGTERM = 15)
    evaluation: dict = field(default_factory=dict)  # a finished run's trainer.evaluate output, per seed
    summary: dict = field(default_factory=dict)     # a finished run's summary.json (rundir.run_summary)

    @property
    def finished(self) -> bool:
        return self.updates_done == self.num_updates and self.error is None


def _concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([np.asarray(p[k]) for p in parts], axis=1) for k in parts[0]} if parts else {}


def _meta(algo: str, cfg: Any, seeds: int, seed: int, done: int, num_updates: int, every: int,
          metrics: dict) -> dict:
    return {"algo": algo, "seeds": seeds, "seed": seed, "config": config_to_dict(cfg),
            "updates_done": done, "num_updates": num_updates, "checkpoint_every": every,
            "metrics": {k: np.asarray(v).tolist() for k, v in metrics.items()},
            "metric_dtypes": {k: str(np.asarray(v).dtype) for k, v in metrics.items()}}


class RunRefused(ValueError):
    """A run of several processes refused before it started, by every process alike (a seed count that does not
    split over the devices, or process 0's run directory): they can all end the ordinary way."""


def any_process(flag: bool) -> bool:
    """Whether ``flag`` holds on any process (several processes: a collective, every process calls it at the
    same point)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.asarray(multihost_utils.process_allgather(np.int32(flag))).any())


def claim(out: Path, held: contextlib.ExitStack, kind: str = "run", overwrite: bool = False) -> None:
    """Process 0 locks ``out`` (:class:`purerl.run.rundir.RunLock`, held until ``held`` closes) and checks that a
    ``kind`` (``"run"`` or ``"sweep"``) may be written there (:func:`purerl.run.rundir.check_out`: not a file,
    not a result of the other kind, not one of its own without ``overwrite``); every process learns the
    verdict. A refusal is the ``ValueError`` itself in one process, :class:`RunRefused` in each of several."""
    refused = None   # process 0 alone looks at the directory
    if jax.process_index() == 0:
        try:
            held.enter_context(rundir.RunLock(out))
            rundir.check_out(out, kind, overwrite)
        except (ValueError, OSError) as e:
            refused = e
    if any_process(refused is not None):
        if jax.process_count() == 1:
            raise refused
        raise RunRefused(" ".join(str(refused).split()) if refused is not None else
                         f"process 0 cannot write the {kind} into its --out {out} (its own message says why); "
                         f"nothing was {'trained' if kind == 'run' else 'run'}") from refused


class _Layout:
    """Where a run's seeds live: on this process's default device (``mesh`` None); split over this process's
    devices (a CPU presented as one device per core, :mod:`purerl.run.devices`: the most of them the seeds split
    over evenly); or split over the devices of every process of a run of several (``jax.distributed``), with
    the programs' small outputs (metrics, finite flags, evaluation) replicated to every process. Each device runs
    its share of the seeds as the one-device program of that many seeds would."""

    def __init__(self, seeds: int):
        from jax.sharding import Mesh

        from purerl.run.devices import local_mesh

        self.mesh = None
        self.primary = jax.process_index() == 0
        self.several = jax.process_count() > 1
        if self.several:
            n = jax.device_count()
            if seeds % n:
                near = " or ".join(f"--seeds {k}" for k in (n * (seeds // n), n * (seeds // n + 1)) if k)
                raise RunRefused(f"seeds = {seeds} cannot be split evenly over the {n} devices of the "
                                 f"{jax.process_count()} processes: give a multiple of {n} ({near})")
            self.mesh = Mesh(np.asarray(jax.devices()), ("seeds",))
        else:
            self.mesh = local_mesh(seeds)

    @property
    def devices(self) -> int:
        """How many devices the seeds are split over."""
        return 1 if self.mesh is None else int(self.mesh.devices.size)

    def keys(self, keys: Any) -> Any:
        from purerl.core.sharding import split_keys

        return keys if self.mesh is None else split_keys(keys, self.mesh)

    def jit_kwargs(self, *outs: str) -> dict:
        """``out_shardings`` for a program whose outputs are ``"rows"`` (split by seed) or ``"whole"``
        (replicated); nothing for one process."""
        if self.mesh is None:
            return {}
        from jax.sharding import NamedSharding, PartitionSpec

        each = {"rows": NamedSharding(self.mesh, PartitionSpec("seeds")),
                "whole": NamedSharding(self.mesh, PartitionSpec())}
        return {"out_shardings": each[outs[0]] if len(outs) == 1 else tuple(each[o] for o in outs)}

    def shapes(self, shape: Any) -> Any:
        """The state's shapes as a program's input: split by seed on several processes."""
        if self.mesh is None:
            return shape
        rows = self.jit_kwargs("rows")["out_shardings"]
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=rows), shape)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any process (a collective: every process calls it at the same point)."""
        return any_process(flag) if self.several else flag

    def whole(self, state: Any) -> Any:
        """The state of every seed on this process, as host arrays (gathered from all processes: a
        collective); typed keys as their raw data, which :mod:`purerl.run.checkpoint` stores anyway."""
        if not self.several:
            return state
        from purerl.core.sharding import gather

        return gather(state)


class _Programs:
    """The compiled programs of one run besides the training chunks. Those needed only later (the finite
    check, the final evaluation, a shorter last chunk) compile on a second thread, beside the chunk program
    and then while the first chunks run: XLA compiles with the GIL released, and on a CPU training rarely
    keeps every core busy."""

    def __init__(self, trainer: Any, shape: Any, keys: Any, eval_episodes: int, layout: _Layout):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="purerl-compile")
        self.trainer, self.shape, self.keys, self.eval_episodes = trainer, shape, keys, eval_episodes
        self.layout = layout
        self.flags = self.eval = None

    def start(self) -> None:
        """Queue the finite check, the evaluation and the checkpointer's import (call once training runs:
        compiling beside the training program's own compilation would slow that one down)."""
        whole = self.layout.jit_kwargs("whole")
        self.flags = self.later(lambda: compiling.compile(finite_flags, self.shape, kind="once", **whole))
        if self.eval_episodes:
            evaluate = jax.vmap(lambda s, k: self.trainer.evaluate(s, k, self.eval_episodes))
            self.eval = self.later(lambda: compiling.compile(evaluate, self.shape, self.keys, kind="once", **whole))
        self.later(lambda: importlib.import_module("orbax.checkpoint"))

    def later(self, compile_fn):
        return self.pool.submit(compile_fn)

    def check(self, metrics: dict, state: Any, first_update: int) -> NonFiniteError | None:
        return find_non_finite(metrics, state, first_update, self.flags.result())

    def evaluate(self, state: Any) -> dict:
        return jax.device_get(self.eval.result()(state, self.keys)) if self.eval is not None else {}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class CheckpointError(OSError):
    """A checkpoint could not be written (a full disk, a lost mount); the newest good one is named."""


def _exact_env_steps(metrics: dict, trainer: Any, first_update: int) -> dict:
    """``env_steps`` as exact int64 counts (in the program it is float32, exact only up to 2^24)."""
    if "env_steps" in metrics:
        steps = np.asarray(metrics["env_steps"])
        n = steps.shape[1]
        exact = trainer.env_steps_before + (first_update + np.arange(n, dtype=np.int64)) * trainer.steps_per_log_point
        metrics = dict(metrics, env_steps=np.broadcast_to(exact, steps.shape).copy())
    return metrics


@dataclass(frozen=True)
class _Resumed:
    """Where :func:`resume` continues a run: the restored state after ``done`` updates, the metrics up to it,
    and the trainer built for the restore's template."""

    state: Any
    done: int
    metrics: dict
    trainer: Any


def _check_run_args(seeds: Any, seed: Any, checkpoint_every: Any, eval_episodes: Any, fused: bool) -> None:
    for name, value, low in (("seeds", seeds, 1), ("checkpoint_every", checkpoint_every, 0),
                             ("eval_episodes", eval_episodes, 0), ("seed", seed, None)):
        check_count(value, name, low, note=" (0 saves at the end only)" * (name == "checkpoint_every"))
    if fused and checkpoint_every:
        raise ValueError("a fused run is one program: it cannot save every N updates; drop fused or "
                         "checkpoint_every")


def train(algo: str, cfg: Any, out: str | Path, *, seeds: int = 1, seed: int = 0, checkpoint_every: int = 0,
          fused: bool = False, progress: bool = False, loggers: tuple = (), eval_episodes: int = 0,
          overwrite: bool = False) -> RunOutcome:
    """Train ``algo`` with ``cfg`` for ``seeds`` vmapped seeds into run directory ``out`` (config.json,
    metrics.json/csv, checkpoints/). See the module docstring. Never raises on divergence: the outcome's
    ``error`` holds the :class:`NonFiniteError` and the newest checkpoint is the last good state.

    ``out`` is locked while the run writes it (``out/.lock``; a second run into it is refused). A directory
    that already holds a run is refused unless ``overwrite``, one that holds a sweep always (:func:`claim`). The new run's files stay in ``out/.starting/``
    until its first checkpoint is saved (at the end, on a stop signal, or after ``checkpoint_every`` updates)
    and only then replace the old run: a start that fails or is stopped before that leaves ``out`` as it was.

    With ``eval_episodes``, a finished run's policy is evaluated deterministically for that many episodes
    per seed; ``outcome.evaluation`` holds ``trainer.evaluate``'s output per seed."""
    _check_run_args(seeds, seed, checkpoint_every, eval_episodes, fused)
    with Starting() as starting:
        out = Path(out)
        mod = rundir.algo_module(algo)
        cfg = cfg.validate()
        trainer = mod.make(cfg)
        layout = _Layout(seeds)
        with contextlib.ExitStack() as held:
            claim(out, held, "run", overwrite)
            return _train(algo, cfg, out, trainer, seeds=seeds, seed=seed, checkpoint_every=checkpoint_every,
                          fused=fused, progress=progress, loggers=loggers, eval_episodes=eval_episodes,
                          overwrite=overwrite, resumed=None, starting=starting, layout=layout)


def _train(algo: str, cfg: Any, out: Path, trainer: Any, *, seeds: int, seed: int, checkpoint_every: int,
           fused: bool, progress: bool, loggers: tuple, eval_episodes: int, overwrite: bool,
           resumed: _Resumed | None, starting: Starting, layout: _Layout | None = None) -> RunOutcome:
    from purerl.core.loop import scan_updates
    from purerl.run import checkpoint as ckpt

    layout = layout or _Layout(seeds)
    primary = layout.primary
    loggers = loggers if primary else ()
    keys = layout.keys(rundir.train_keys(seed, seeds))
    done0 = resumed.done if resumed is not None else 0
    # Every process runs the same programs (the bar's callback included); only process 0 draws the bar.
    bar = ProgressBar(seeds, done0) if progress else None
    # One seed: the bar shows the latest return too; many: steps only (one callback per report, not per seed).
    pm = ("episode_return",) if seeds == 1 else ()
    n_total = trainer.num_log_points

    t0 = time.perf_counter()
    # traced once: the state's shape and its program
    initial = jax.jit(jax.vmap(trainer.init), **layout.jit_kwargs("rows")).trace(keys)
    shape = layout.shapes(initial.out_info)
    starting.check()
    programs = _Programs(trainer, shape, layout.keys(rundir.eval_keys(seed, seeds)), eval_episodes, layout)
    try:
        every = n_total if fused else chunk_length(n_total, checkpoint_every)  # fused: one chunk, the whole run
        done = done0

        def chunk_program(n: int):
            step = lambda s, start: scan_updates(trainer.update, s, start, n, n_total, bar, pm)  # noqa: E731
            return compiling.compile(jax.vmap(step, in_axes=(0, None)), shape, np.int32(0),
                                     **layout.jit_kwargs("rows", "whole"))

        # The initial state's program compiles (XLA, without the GIL) on the second thread while this one
        # traces the chunk program; a shorter last chunk, when the run does not divide into equal ones,
        # compiles there later.
        if resumed is None:
            init_program = programs.later(lambda: initial.lower().compile(compiling.compile_options("once")))
        else:
            state, done, previous_metrics = resumed.state, resumed.done, resumed.metrics
            parts = [previous_metrics] if previous_metrics else []
        rest = (n_total - done) % every
        chunks = {min(every, n_total - done): chunk_program(min(every, n_total - done))}
        starting.check()
        last = programs.later(lambda: chunk_program(rest)) if rest and n_total - done > every else None
        if resumed is None:
            state = jax.block_until_ready(init_program.result()(keys))
            parts = []
        compile_s = time.perf_counter() - t0
        saved = done if resumed is not None else None  # the step of the run's newest checkpoint (None: none yet)
        new = None  # a new run's files until its first checkpoint (rundir.NewRun); a resumed run writes into out

        def here() -> Path:
            return new.path if new is not None else out

        def commit() -> None:
            if new is not None and not new.committed:
                with signals_held():
                    new.commit()

        def save(state, step):
            where = here() / "checkpoints"
            state = layout.whole(state)   # several processes: every one takes part; process 0 writes
            if not primary:
                return step
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
                    + (" and saving the run" if primary else "; process 0 saves the run"))

        error = None
        with Stops(describe, starting) as stops, contextlib.ExitStack() as files:
            starting.end()  # a stop signal swallowed during the start is raised here, before anything is written
            if resumed is None and primary:
                new = files.enter_context(rundir.NewRun(out, replace=overwrite))
                rundir.write_config(new.path, algo, cfg, seeds, seed,
                                    {"checkpoint_every": checkpoint_every, "fused": fused,
                                     "devices": layout.devices})
            for log in loggers:
                log.open(out, algo, cfg, seeds)
            try:
                programs.start()
                if bar is not None and primary:
                    bar.start(n_total, trainer.steps_per_log_point)
                run_s, stop = 0.0, False
                while done < n_total and not stops.abandon:
                    n = min(every, n_total - done)
                    if n not in chunks:
                        chunks[n] = last.result()
                    t1 = time.perf_counter()
                    try:
                        new_state, metrics = stops.run(functools.partial(chunks[n], state, np.int32(done)))
                    except Abandon:
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
                    stop = layout.any(stops.stop)   # several processes stop after the same chunk
                    if checkpoint_every or done == n_total or stop:
                        saved = save(state, done)
                    if stop:
                        break
                if stops.abandon and layout.several:   # the others may be inside a chunk: no saving
                    raise KeyboardInterrupt(f"a second stop signal: process {jax.process_index()} of "
                                            f"{jax.process_count()} stopped at once, without saving")
                if stops.abandon and saved != done:  # the last finished chunk's state (the initial one at worst)
                    saved = save(state, done)
            finally:
                if bar is not None:
                    bar.close()
                _close(loggers)
                if primary:
                    write_metrics(here(), _concat(parts))
        metrics = _concat(parts)
        evaluation, summary = {}, {}
        if done == n_total and error is None:
            evaluation = programs.evaluate(state)
            summary = rundir.run_summary(algo, cfg.env, seeds, trainer, metrics, evaluation, compile_s, run_s,
                                         done0, done, n_total, layout.devices)
            if primary:
                rundir.write_summary(out, summary)
        return RunOutcome(state, metrics, compile_s, run_s, done, n_total,
                          interrupted=(stops.stop or stop) and done < n_total, error=error, start_update=done0,
                          trainer=trainer, signal=stops.received[0] if stops.received else None,
                          evaluation=evaluation, summary=summary)
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

    if jax.process_count() > 1:
        raise ValueError("resume a run in one process (without --coordinator): a run trained on several processes "
                         "saved every seed's state in its checkpoints, so one process continues it")
    out = Path(out)
    body = rundir.read_config(out)
    mod = rundir.algo_module(body["algo"])
    cfg = config_from_dict(mod.Config, body["config"], source=str(out / "config.json"))
    trainer = mod.make(cfg.validate())
    with rundir.RunLock(out, flag=None):   # resume writes where the run is: no other directory to offer
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
        _check_run_args(body["seeds"], body["seed"], every, eval_episodes, False)
        with Starting() as starting:  # this process holds the lock already
            return _train(body["algo"], cfg.validate(), out, trainer, seeds=body["seeds"], seed=body["seed"],
                          checkpoint_every=every, fused=False, progress=progress, loggers=loggers,
                          eval_episodes=eval_episodes, overwrite=False, starting=starting,
                          resumed=_Resumed(state, int(meta["updates_done"]), metrics, trainer))
