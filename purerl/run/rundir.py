"""A run directory: what ``purerl train`` writes and ``purerl eval/render/plot/resume`` read.

    OUT/config.json     {"algo", "seeds", "seed", "config": {field: value}, "checkpoint_every", "fused",
                        "devices" (how many devices one process split the seeds over; ``purerl resume`` splits
                        them the same way, so the resumed run equals the uninterrupted one bit for bit)}
                        (enough to rebuild the trainer)
    OUT/metrics.json    {name: [seed][log point]}   and the same as OUT/metrics.csv
    OUT/summary.json    written when a run (or its resumed part) finishes (:func:`run_summary`), by the
                        command line and by :func:`purerl.run.runner.train`/``resume`` alike:
                          algo, env, seeds;
                          env_steps_per_seed          the run's env steps per seed, warm-up included (the
                                                      last ``env_steps`` of the metrics);
                          warmup_env_steps_per_seed   of those, the off-policy warm-up (0 on-policy);
                          final_return_mean/_std      mean of the last 5% of log points, over seeds;
                          eval_return_mean/_std       the deterministic evaluation at the end, over seeds;
                          compile_s                   this process: tracing and compiling, and the initial
                                                      state (the warm-up runs in it);
                          run_s                       this process: the training chunks it ran;
                          process_env_steps           env steps (all seeds) of the updates this process ran;
                          env_steps_per_s             process_env_steps / run_s;
                          start_update, num_updates   the updates done before this process (0, or where a
                                                      resumed run continued) and the run's total;
                          devices                     the devices this process split the seeds over (a CPU:
                                                      one per core, :mod:`purerl.run.devices`)
    OUT/eval.json       written by ``purerl eval`` (:func:`eval_report`, :func:`write_eval_report`): the
                        deterministic and stochastic returns of a checkpoint's policy, per seed and episode
    OUT/checkpoints/N/  the whole train state after N updates (orbax; the two newest are kept, the last one is
                        the final state), vmapped over seeds
    OUT/.lock           while a run writes OUT (:class:`RunLock`)
    OUT/.starting/      while a new run has not saved its first checkpoint (:class:`NewRun`)

A directory holds one kind of result, a run or a sweep (:mod:`purerl.run.sweepdir`, which has checkpoints too
and which ``purerl resume`` continues as well); :func:`check_out` refuses to write one into a directory that
holds the other, or over one of its own kind without ``overwrite``. Both are written through the lifecycle of
:mod:`purerl.run.lifecycle`.

A directory holds a run once its ``config.json`` is there; a new run's files appear in it together with its
first checkpoint, so a run that was stopped before that leaves no trace (see :class:`NewRun`).

:func:`load` rebuilds the algorithm's trainer from ``config.json`` and restores a checkpoint into it, so
everything downstream (evaluation with the saved normaliser statistics, rendering, resuming) sees exactly
the trained state.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from purerl import algorithms

__all__ = ["NewRun", "Run", "RunLock", "check_out", "eval_report", "holds_run", "kind_of",
           "load", "read_config", "read_metrics", "remove_run", "run_summary", "write_config", "write_eval_report",
           "write_metrics", "write_summary"]

# What a run writes into its directory (besides the lock): removed by ``--overwrite``.
RUN_FILES = ("config.json", "metrics.json", "metrics.csv", "summary.json", "eval.json")

# Where a new run's files wait for its first checkpoint (see NewRun).
STAGING = ".starting"


def write_config(out: Path, algo: str, cfg: Any, seeds: int, seed: int, extra: dict | None = None) -> None:
    from purerl.config import config_to_dict

    out.mkdir(parents=True, exist_ok=True)
    body = {"algo": algo, "seeds": seeds, "seed": seed, "config": config_to_dict(cfg), **(extra or {})}
    (out / "config.json").write_text(json.dumps(body, indent=2))


def read_config(path: str | Path) -> dict:
    """``config.json`` of the run at ``path`` (a run directory or the file itself), checked for the keys a
    run needs; a missing, unreadable or damaged file is a ``ValueError`` naming it."""
    path = Path(path)
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{path} is not a purerl run directory (no config.json)")
    try:
        body = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{file} is damaged ({e}); it is the run's config: restore it, or train the run "
                         f"again") from None
    missing = [k for k in ("algo", "seeds", "seed", "config") if not isinstance(body, dict) or k not in body]
    if missing:
        raise ValueError(f"{file} is not a purerl run config: it lacks {', '.join(missing)}")
    return body


def holds_run(out: Path) -> bool:
    """Whether directory ``out`` holds (part of) a run: its config or checkpoints."""
    return (out / "config.json").exists() or (out / "checkpoints").exists()


def remove_run(out: Path) -> None:
    """Delete the run in ``out`` (its files and checkpoints; other files are kept)."""
    import shutil

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def kind_of(out: str | Path) -> str | None:
    """What directory ``out`` holds: ``"sweep"`` (:func:`purerl.run.sweepdir.holds_sweep`; a sweep has
    checkpoints too), ``"run"`` (:func:`holds_run`) or ``None`` (neither, or no directory)."""
    from purerl.run.sweepdir import holds_sweep

    out = Path(out)
    if not out.is_dir():
        return None
    return "sweep" if holds_sweep(out) else "run" if holds_run(out) else None


_MARKS = {"run": "config.json, checkpoints/", "sweep": "sweep.json, metrics.npz"}


def check_out(out: str | Path, kind: str, overwrite: bool = False, *,
              flags: tuple[str, str] = ("--out", "--overwrite")) -> None:
    """Whether a ``kind`` (``"run"`` or ``"sweep"``) may be written into ``out``: a ``ValueError`` naming the fix
    when ``out`` is a file, holds a result of the other kind (refused even with ``overwrite``: a run is never
    replaced by a sweep, nor a sweep by a run), or already holds one of its own kind and ``overwrite`` is not
    given. ``flags``: how the message names the directory and the overwrite switch (the command line's by
    default; ``SweepResult.save`` names its arguments)."""
    name, switch = flags
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name} {out} is a file; give a directory for the {kind} (it is created if missing)")
    there = kind_of(out)
    if there is None:
        return
    if there != kind:
        raise ValueError(f"{name} {out} holds a {there} ({_MARKS[there]}), not a {kind}: choose another {name} "
                         f"({switch} replaces only a {kind}, never a {there})")
    if not overwrite:
        resume = f"continue it with `purerl resume {out}`, " if kind == "run" else ""
        raise ValueError(f"{name} {out} already holds a {kind}: {resume}choose another {name}, or pass {switch} to "
                         f"replace it")


class NewRun:
    """The files of a run that starts in ``out`` (whose :class:`RunLock` the caller holds), kept in
    ``out/.starting/`` until the run can be resumed: :meth:`commit`, called once its first checkpoint is saved
    (or when it stops with nothing to resume but something to show, a divergence's metrics), moves them into
    ``out`` — after deleting the run there when ``replace`` (``--overwrite``) — each entry by a rename on the
    same file system, ``marker`` (what marks a run: ``config.json``) last. Leaving the ``with`` block without a
    commit deletes them, so a start that is stopped or fails at any point before that leaves ``out`` as it was
    (and a directory created for the lock is removed with the lock). A ``.starting`` left by a killed process is
    deleted when the next run starts in ``out``. :attr:`path` is where the run's files go: the staging
    directory, then ``out``. A sweep directory is written the same way (``marker="sweep.json"``, ``remove``
    deleting the old sweep's files: :func:`purerl.run.sweepdir.write_sweep`)."""

    def __init__(self, out: str | Path, replace: bool = False, *, marker: str = "config.json",
                 remove: Any = remove_run):
        self.out = Path(out)
        self.staging = self.out / STAGING
        self.replace = replace
        self.marker = marker
        self.remove = remove
        self.committed = False
        self._failed = False

    def __enter__(self) -> "NewRun":
        import shutil

        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        return self

    @property
    def path(self) -> Path:
        return self.out if self.committed else self.staging

    def commit(self) -> None:
        """Move the run into ``out`` (once; later calls do nothing)."""
        import os

        if self.committed:
            return
        self._failed = True  # until every entry is in place: a failed move leaves the staged files for the user
        if self.replace:
            self.remove(self.out)
        entries = sorted(self.staging.iterdir(), key=lambda p: (p.name == self.marker, p.name))
        for entry in entries:
            os.replace(entry, self.out / entry.name)
        self.staging.rmdir()
        self.committed, self._failed = True, False

    def __exit__(self, *exc) -> None:
        import shutil

        if not self.committed and not self._failed:
            shutil.rmtree(self.staging, ignore_errors=True)


_HELD: dict[str, int] = {}   # the lock files this process holds, with how many RunLocks entered each


class RunLock:
    """``out/.lock`` while a run (or a sweep) writes ``out``: created exclusively, holding the writer's host and
    pid, removed on exit. A lock left by a process that no longer runs on this host is taken over; one this
    process holds already is entered again (and released by the outermost exit). A directory that did not
    exist is created, and removed again on exit if nothing but the lock was written into it (a start that
    failed leaves no directory behind). ``flag``: how a refusal names the directory's option (``None``: the
    command has none, as ``purerl resume``)."""

    def __init__(self, out: str | Path, flag: str | None = "--out"):
        self.out = Path(out)
        self.file = self.out / ".lock"
        self.flag = flag
        self.created = False
        self.nested = False

    def __enter__(self) -> "RunLock":
        import os
        import socket

        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"{self.flag or 'the directory'} {self.out} is a file; give a directory for the "
                             f"results (it is created if missing)")
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        me = f"{socket.gethostname()} {os.getpid()}"
        if _HELD.get(self._key()) and self._owner() == me:
            _HELD[self._key()] += 1
            self.nested = True
            return self
        for _ in range(2):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except BaseException as e:
                if not isinstance(e, FileExistsError):  # a Ctrl-C may land right after the lock was created
                    if self._owner() in ("", me):
                        self.__exit__()
                    raise
                if not self._stale():
                    owner = self._owner() or "unknown"
                    self._cleanup()
                    instead = f" or choose another {self.flag}" if self.flag else ""
                    raise ValueError(f"{self.out} is being written by another purerl run (host and pid: {owner}); "
                                     f"wait for it to finish{instead}. If no run is writing it, delete "
                                     f"{self.file}") from None
                self.file.unlink(missing_ok=True)
                continue
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(me)
            except BaseException:  # e.g. a Ctrl-C between creating the lock and entering the block: no __exit__
                self.__exit__()
                raise
            _HELD[self._key()] = 1
            return self
        raise ValueError(f"could not lock {self.out}: {self.file} keeps reappearing; is another run starting?")

    def _key(self) -> str:
        return str(self.file.resolve())

    def _owner(self) -> str | None:
        try:
            return self.file.read_text().strip()
        except OSError:
            return None

    def _stale(self) -> bool:
        """A lock whose process is gone (same host only; another host's lock is never taken over)."""
        import os
        import socket

        owner = (self._owner() or "").split()
        if len(owner) != 2 or owner[0] != socket.gethostname() or not owner[1].isdigit():
            return False
        try:
            os.kill(int(owner[1]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _cleanup(self) -> None:
        if self.created:
            try:
                self.out.rmdir()  # only if empty
            except OSError:
                pass

    def __exit__(self, *exc) -> None:
        if self.nested:
            _HELD[self._key()] -= 1
            return
        _HELD.pop(self._key(), None)
        self.file.unlink(missing_ok=True)
        self._cleanup()


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


def run_summary(algo: str, env: str, seeds: int, trainer: Any, metrics: dict, evaluation: dict, compile_s: float,
                run_s: float, start_update: int, updates_done: int, num_updates: int, devices: int = 1) -> dict:
    """The summary.json record of a finished run (or of its resumed part): see the module docstring."""
    from purerl.run.stats import final_scores

    warmup = int(trainer.env_steps_before)  # off-policy: random steps that fill the buffer in the initial state
    per_seed = warmup + trainer.num_log_points * trainer.steps_per_log_point  # = the metrics' last env_steps
    process_steps = (updates_done - start_update) * trainer.steps_per_log_point * seeds
    final = final_scores(metrics["episode_return"])  # per seed: mean over the last 5% of log points
    eval_mean = np.asarray(evaluation["mean"]) if "mean" in evaluation else None
    return {
        "algo": algo, "env": env, "seeds": seeds, "env_steps_per_seed": per_seed,
        "warmup_env_steps_per_seed": warmup,
        "final_return_mean": float(np.mean(final)), "final_return_std": float(np.std(final)),
        "eval_return_mean": None if eval_mean is None else float(np.mean(eval_mean)),
        "eval_return_std": None if eval_mean is None else float(np.std(eval_mean)),
        "compile_s": compile_s, "run_s": run_s,
        "process_env_steps": process_steps, "env_steps_per_s": process_steps / run_s if run_s > 0 else None,
        "start_update": start_update, "num_updates": num_updates, "devices": devices,
    }


def write_summary(out: Path, summary: dict) -> None:
    (Path(out) / "summary.json").write_text(json.dumps(summary, indent=2))


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """The run's metrics as arrays ``[seed, log point]``."""
    file = Path(path) / "metrics.json"
    if not file.is_file():
        raise ValueError(f"{path} has no metrics.json (a run that was interrupted before its first log point?)")
    return {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(file.read_text()).items()}


@dataclasses.dataclass
class Run:
    """A loaded run directory. ``state`` has a leading seed axis; ``seed_state(i)`` takes one seed's."""

    path: Path
    algo: str
    module: Any
    config: Any
    seeds: int
    seed: int
    trainer: Any
    state: Any
    step: int
    meta: dict

    def seed_state(self, i: int = 0) -> Any:
        import jax

        return jax.tree.map(lambda x: x[i], self.state)


def train_keys(seed: int, seeds: int):
    """The per-seed keys of a run (``purerl train --seed S --seeds K``)."""
    import jax

    return jax.random.split(jax.random.key(seed), seeds)


def eval_keys(seed: int, seeds: int):
    """The per-seed keys of a run's final evaluation (``purerl train`` prints and saves it)."""
    import jax

    return jax.random.split(jax.random.key(seed + 1), seeds)


def load(path: str | Path, step: int | None = None, **make_kwargs: Any) -> Run:
    """Rebuild the trainer of the run at ``path`` and restore checkpoint ``step`` (default the newest). A
    checkpoint that cannot be read is a ``ValueError`` (:class:`purerl.run.checkpoint.CheckpointUnreadable`)
    naming it and the newest step that still loads."""
    import jax

    from purerl.config import config_from_dict
    from purerl.run import checkpoint as ckpt

    path = Path(path)
    body = read_config(path)
    mod = algorithms.module(body["algo"])
    cfg = config_from_dict(mod.Config, body["config"], source=str(path / "config.json"))
    trainer = mod.make(cfg, **make_kwargs)
    template = jax.eval_shape(jax.vmap(trainer.init), train_keys(body["seed"], body["seeds"]))
    if ckpt.latest_step(path / "checkpoints") is None:
        raise ValueError(f"{path} holds no checkpoint of its train state (was it written by an older purerl, or "
                         f"interrupted before its first checkpoint?)")
    try:
        state, meta = ckpt.restore(path / "checkpoints", template, step)
    except ckpt.CheckpointUnreadable as e:   # the way to a step that loads, as the commands that load runs take it
        raise ckpt.CheckpointUnreadable(e.directory, e.step, e.reason, e.loads,
                                        how=f"--step {e.loads} reads it (step={e.loads} in Python)") from None
    return Run(path, body["algo"], mod, cfg, body["seeds"], body["seed"], trainer, state,
               int(meta.get("updates_done", -1)), meta)


EVAL_MODES = (("deterministic", True), ("stochastic", False))   # eval.json's policies: the mode, sampled actions


def eval_report(run: Run, episodes: int = 10, seed: int = 1234) -> dict:
    """Evaluate the policy of a loaded run (:func:`load`, with the run's saved normaliser statistics): each seed's
    state plays ``episodes`` episodes with the policy's mode and ``episodes`` with sampled actions, the episode
    keys split from ``jax.random.key(seed)`` one per seed. Returns the ``eval.json`` record
    (:func:`write_eval_report` writes it):

        run, algo, env                the run directory, its algorithm and env
        updates                       the updates of the evaluated checkpoint
        episodes_per_seed, seeds
        deterministic, stochastic     one record per policy:
          returns, lengths              [seed][episode]
          mean, std, min, max           over all seeds' episodes
          per_seed_mean                 [seed]: each seed's mean return
          iqm, iqm_ci                   the interquartile mean of the per-seed means and its 95% stratified-
                                        bootstrap interval [low, high] (:func:`purerl.run.stats.iqm_ci`, bootstrap
                                        seed ``seed``)
    """
    import jax

    from purerl.config import check_count
    from purerl.run import stats

    if not isinstance(run, Run):
        raise TypeError(f"`run` must be a loaded run (purerl.run.rundir.load(path)), got {type(run).__name__}")
    episodes = check_count(episodes, "episodes")
    seed = check_count(seed, "seed", minimum=0)
    if seed >= 2**32:
        raise ValueError(f"`seed` = {seed} must lie in [0, 2**32 - 1] (it also seeds the numpy bootstrap)")
    keys = jax.random.split(jax.random.key(seed), run.seeds)
    report = {"run": str(run.path), "algo": run.algo, "env": run.config.env, "updates": run.step,
              "episodes_per_seed": episodes, "seeds": run.seeds}
    for mode, det in EVAL_MODES:
        fn = jax.jit(jax.vmap(lambda s, k, d=det: run.trainer.evaluate(s, k, episodes, d)))
        res = jax.device_get(fn(run.state, keys))
        returns = np.asarray(res["returns"], dtype=np.float64)   # [seeds, episodes]
        ci = stats.iqm_ci(returns.mean(axis=1), seed=seed)   # over the seeds' mean returns
        report[mode] = {"mean": float(returns.mean()), "std": float(returns.std()), "min": float(returns.min()),
                        "max": float(returns.max()), "per_seed_mean": returns.mean(axis=1).tolist(),
                        "returns": returns.tolist(), "lengths": np.asarray(res["lengths"]).tolist(),
                        "iqm": ci.point, "iqm_ci": [ci.low, ci.high]}
    return report


def write_eval_report(report: dict, out: str | Path | None = None) -> Path:
    """Write :func:`eval_report`'s record as JSON to ``out`` (default: ``eval.json`` in the evaluated run's
    directory); returns the path."""
    path = Path(out) if out is not None else Path(report["run"]) / "eval.json"
    path.write_text(json.dumps(report, indent=2))
    return path
