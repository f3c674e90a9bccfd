"""A sweep directory: what ``purerl sweep`` (:func:`purerl.sweep.run` with ``out``, ``SweepResult.save``) writes
and ``purerl plot`` and ``purerl resume`` read.

    OUT/sweep.json    format             3 (this layout; 2: no checkpoints, nothing to resume from; absent, 1, in
                                         directories of older purerl versions)
                      algo, env, config  the algorithm, its env and the base config (every field; the swept
                                         ones hold the base value)
                      seeds, seed        runs per config and the int seed given (null: a PRNG key was given)
                      metric             the metric the sweep ranks by (its final value: the mean of the last 5%
                                         of log points)
                      values             {field: [C]}: each config's swept values, as given (float64)
                      updates_done,      the log points the metrics hold and the run's total (fewer in a sweep
                      num_updates        stopped by a stop signal or by the non-finite guard)
                      summary            one row per config, best (highest iqm) first: its values, mean, std,
                                         iqm, iqm_low, iqm_high (over seeds) and config_index
                      best               the best config's swept values
                      compile_s, run_s   the sweep's compile and run time (this process's part of a resumed one)
                      final_returns      [C][S]: each run's final ``metric``
                      and, where the sweep ran with a directory (what ``purerl resume`` needs besides the config
                      and values):
                      key_impl           the PRNG implementation of the runs' keys (the train state's shape)
                      chunk_size         runs per program call as given (null: all at once)
                      checkpoint_every   updates per chunk as given (0: a tenth of the run, saved at the end)
                      devices            the devices the runs were split over (``purerl resume`` splits them
                                         the same way, so the resumed sweep equals the uninterrupted one bit for bit)
    OUT/metrics.npz   every metric as an array [config, seed, log point], under its own name
    OUT/checkpoints/N/  the whole sweep state after N updates (orbax; the two newest are kept): every run's
                      train state on one leading axis of configs x seeds (run i is config i // seeds, seed
                      i % seeds), with the metrics up to N in its meta
    OUT/.lock, OUT/.starting/   as in a run directory

A directory holds a sweep once its ``sweep.json`` or ``metrics.npz`` is there (:func:`holds_sweep`). A sweep
that runs into a directory (:func:`purerl.sweep.run` with ``out``) lives as a training run does
(:mod:`purerl.run.lifecycle`): ``OUT/.lock`` while it runs, its files in ``OUT/.starting/`` until its first
checkpoint (at the end, on a stop signal, before a divergence, or after ``checkpoint_every`` updates) and only
then moved into ``OUT`` (``sweep.json`` last), replacing an old sweep with ``overwrite``; ``sweep.json`` (from
the start, with what resume needs) and ``metrics.npz`` (when the sweep stops or finishes) are each replaced
whole (:func:`write_files`). Writing a finished result (:func:`write_sweep`, ``SweepResult.save``) follows the
same rules of a run directory (:mod:`purerl.run.rundir`): a directory holding a sweep is refused unless
``overwrite`` and one holding a run always, and the new files move in only when both are whole.

The swept values live only in ``sweep.json``, so ``metrics.npz`` holds nothing but metrics and no metric name
can collide with anything. Directories written before ``format`` 2 also stored each swept field's values in
``metrics.npz`` as ``value_<field>``; :func:`read_sweep` leaves those out, so old directories read as new ones.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "RESUME_KEYS", "SWEEP_FILES", "holds_sweep", "read_resumable", "read_sweep", "remove_sweep",
           "sweep_body", "write_files", "write_sweep"]

# sweep.json's "format": 3 = what resume needs and checkpoints/; 2 = the swept values only in sweep.json (1, unmarked:
# also value_<field> in the npz)
FORMAT = 3

RESUME_KEYS = ("key_impl", "chunk_size", "checkpoint_every", "devices", "updates_done", "num_updates")

SWEEP_FILES = ("sweep.json", "metrics.npz")   # what a sweep writes into its directory; sweep.json marks it


def holds_sweep(out: str | Path) -> bool:
    """Whether directory ``out`` holds (part of) a sweep: its ``sweep.json`` or ``metrics.npz``."""
    return any((Path(out) / name).exists() for name in SWEEP_FILES)


def remove_sweep(out: str | Path) -> None:
    """Delete the sweep in ``out`` (its two files, ``sweep.json`` first, and its checkpoints; other files are
    kept)."""
    import shutil

    for name in SWEEP_FILES:
        (Path(out) / name).unlink(missing_ok=True)
    shutil.rmtree(Path(out) / "checkpoints", ignore_errors=True)


def sweep_body(*, algo: str, config: dict, seeds: int, seed: int | None, metric: str, values: dict[str, Any],
               summary: list[dict] | None = None, best: dict | None = None, final_returns: Any = None,
               compile_s: float = 0.0, run_s: float = 0.0, **more: Any) -> dict:
    """The ``sweep.json`` record (see the module docstring): the sweep's description, its results once it has
    some (``summary``), and ``more`` (``updates_done``, ``num_updates`` and the :data:`RESUME_KEYS`)."""
    body = {"format": FORMAT, "algo": algo, "env": config.get("env"), "config": config, "seeds": seeds,
            "seed": seed, "metric": metric,
            "values": {k: [float(x) for x in np.asarray(v).reshape(-1)] for k, v in values.items()}, **more}
    if summary is not None:
        body.update(summary=summary, best=best, compile_s=compile_s, run_s=run_s,
                    final_returns=np.asarray(final_returns).tolist())
    return body


def _replace(path: Path, write: Any) -> None:
    """Write ``path`` whole: into a hidden file beside it, then renamed over it."""
    part = path.with_name(f".{path.name}.part")
    try:
        write(part)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def write_files(path: str | Path, body: dict, metrics: dict[str, Any] | None = None) -> None:
    """``metrics.npz`` (when ``metrics`` are given) and then ``sweep.json`` into directory ``path``, each
    replacing the old one whole."""
    path = Path(path)
    if metrics is not None:
        arrays = {k: np.asarray(v) for k, v in metrics.items()}

        def npz(file: Path) -> None:
            with open(file, "wb") as f:   # a file object: numpy would add ".npz" to the hidden name
                np.savez_compressed(f, **arrays)

        _replace(path / "metrics.npz", npz)
    _replace(path / "sweep.json", lambda f: f.write_text(json.dumps(body, indent=2)))


def write_sweep(out: str | Path, *, algo: str, config: dict, seeds: int, seed: int | None, metric: str,
                values: dict[str, Any], metrics: dict[str, Any], summary: list[dict], best: dict,
                final_returns: Any, compile_s: float = 0.0, run_s: float = 0.0, overwrite: bool = False,
                flags: tuple[str, str] = ("`out`", "overwrite=True"), **more: Any) -> Path:
    """Write the sweep directory ``out`` of a sweep's results (created if missing; see the module docstring):
    ``values[field]`` are the ``[C]`` swept values, ``metrics[name]`` the ``[C, S, L]`` arrays, ``config`` the
    base config as a dict (:func:`purerl.config.config_to_dict`), ``more`` further ``sweep.json`` keys
    (``updates_done``, ``num_updates``). A directory that holds a run, or a sweep unless ``overwrite``, or that
    another process is writing, is a ``ValueError`` naming the fix (``flags``: how it names ``out`` and
    ``overwrite``), and is left as it was. Returns ``out``."""
    from purerl.run.rundir import NewRun, RunLock, check_out
    from purerl.run.signals import signals_held

    out = Path(out)
    with RunLock(out, flag=flags[0]):
        check_out(out, "sweep", overwrite, flags=flags)
        with NewRun(out, replace=overwrite, marker="sweep.json", remove=remove_sweep) as new:
            write_files(new.path, sweep_body(algo=algo, config=config, seeds=seeds, seed=seed, metric=metric,
                                             values=values, summary=summary, best=best, final_returns=final_returns,
                                             compile_s=compile_s, run_s=run_s, **more), metrics)
            with signals_held():   # a Ctrl-C waits for the two renames
                new.commit()
    return out


def read_sweep(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(sweep.json's record, the metrics)`` of the sweep directory ``path``, each metric a float64 array
    ``[config, seed, log point]``; a missing or damaged file is a ``ValueError`` naming it. Directories of older
    versions (no ``format`` in sweep.json) read the same: their ``value_<field>`` entries are left out."""
    path = Path(path)
    file = path / "sweep.json"
    try:
        body = json.loads(file.read_text())
        if not isinstance(body, dict) or not isinstance(body.get("values"), dict) or not body["values"]:
            raise ValueError("it has no swept `values`")
        version = body.get("format", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"its `format` {version!r} is not a format number")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ValueError(f"{file} is damaged ({e}); run the sweep again") from None
    if version > FORMAT:
        raise ValueError(f"{file} has format {version}, newer than this purerl reads ({FORMAT}); upgrade purerl")
    npz = path / "metrics.npz"
    if not npz.is_file():
        again = (f"`purerl resume {path}` continues it" if (path / "checkpoints").is_dir() else
                 "run the sweep again")
        raise ValueError(f"{path} has sweep.json but no metrics.npz (a sweep stopped before its first chunk ended, "
                         f"or one that did not finish writing); {again}")
    swept = {f"value_{n}" for n in body["values"]} if version == 1 else set()
    try:
        with np.load(npz) as arrays:
            metrics = {k: np.asarray(arrays[k], np.float64) for k in arrays.files if k not in swept}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{npz} is damaged ({e}); run the sweep again") from None
    return body, metrics


def read_resumable(path: str | Path) -> dict:
    """``sweep.json`` of the sweep directory ``path`` with what ``purerl resume`` needs (format 3, written by a
    sweep that ran into its directory); otherwise a ``ValueError`` that says why it cannot be resumed."""
    path = Path(path)
    file = path / "sweep.json"
    try:
        body = json.loads(file.read_text())
        if not isinstance(body, dict):
            raise ValueError("it is not a JSON object")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ValueError(f"{file} is damaged ({e}); it describes the sweep: run the sweep again") from None
    version = body.get("format", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT:
        raise ValueError(f"{file} has format {version}, newer than this purerl reads ({FORMAT}); upgrade purerl")
    missing = [k for k in ("algo", "config", "seeds", "metric", "values", *RESUME_KEYS) if k not in body]
    if missing:
        why = (f"was written by an older purerl (format {version})" if version != FORMAT else
               "was written whole after the sweep (SweepResult.save), not as it ran")
        raise ValueError(f"the sweep in {path} cannot be resumed: its sweep.json {why} and holds no checkpoints; "
                         f"run the sweep again")
    return body
