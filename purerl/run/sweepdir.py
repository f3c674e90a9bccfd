"""A sweep directory: what ``purerl sweep`` (``SweepResult.save``) writes and ``purerl plot`` reads.

    OUT/sweep.json    format             2 (this layout; absent in directories of older purerl versions)
                      algo, env, config  the algorithm, its env and the base config (every field; the swept
                                         ones hold the base value)
                      seeds, seed        runs per config and the int seed given (null: a PRNG key was given)
                      metric             the metric the sweep ranks by (its final value: the mean of the last 5%
                                         of log points)
                      values             {field: [C]}: each config's swept values, as given (float64)
                      summary            one row per config, best (highest iqm) first: its values, mean, std,
                                         iqm, iqm_low, iqm_high (over seeds) and config_index
                      best               the best config's swept values
                      compile_s, run_s   the sweep's compile and run time
                      final_returns      [C][S]: each run's final ``metric``
    OUT/metrics.npz   every metric as an array [config, seed, log point], under its own name

A directory holds a sweep once its ``sweep.json`` or ``metrics.npz`` is there (:func:`holds_sweep`). Writing one
(:func:`write_sweep`) follows the rules of a run directory (:mod:`purerl.run.rundir`): ``OUT/.lock`` while it is
written (a second writer is refused), a directory holding a sweep is refused unless ``overwrite`` and one
holding a run always, and the new files are written into ``OUT/.starting/`` and moved into ``OUT`` only when both
are whole (the old ``sweep.json`` first removed, the new one moved in last), so a failed write leaves the old
sweep as it was.

The swept values live only in ``sweep.json``, so ``metrics.npz`` holds nothing but metrics and no metric name
can collide with anything. Directories written before ``format`` 2 also stored each swept field's values in
``metrics.npz`` as ``value_<field>``; :func:`read_sweep` leaves those out, so old directories read as new ones.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "SWEEP_FILES", "holds_sweep", "read_sweep", "remove_sweep", "write_sweep"]

FORMAT = 2   # sweep.json's "format": 2 = the swept values only in sweep.json (1, unmarked: also value_<field> in the npz)

SWEEP_FILES = ("sweep.json", "metrics.npz")   # what a sweep writes into its directory; sweep.json marks it


def holds_sweep(out: str | Path) -> bool:
    """Whether directory ``out`` holds (part of) a sweep: its ``sweep.json`` or ``metrics.npz``."""
    return any((Path(out) / name).exists() for name in SWEEP_FILES)


def remove_sweep(out: str | Path) -> None:
    """Delete the sweep in ``out`` (its two files, ``sweep.json`` first; other files are kept)."""
    for name in SWEEP_FILES:
        (Path(out) / name).unlink(missing_ok=True)


def write_sweep(out: str | Path, *, algo: str, config: dict, seeds: int, seed: int | None, metric: str,
                values: dict[str, Any], metrics: dict[str, Any], summary: list[dict], best: dict,
                final_returns: Any, compile_s: float = 0.0, run_s: float = 0.0, overwrite: bool = False,
                flags: tuple[str, str] = ("`out`", "overwrite=True")) -> Path:
    """Write the sweep directory ``out`` (created if missing; see the module docstring): ``values[field]`` are
    the ``[C]`` swept values, ``metrics[name]`` the ``[C, S, L]`` arrays, ``config`` the base config as a dict
    (:func:`purerl.config.config_to_dict`). A directory that holds a run, or a sweep unless ``overwrite``, or
    that another process is writing, is a ``ValueError`` naming the fix (``flags``: how it names ``out`` and
    ``overwrite``), and is left as it was. Returns ``out``."""
    from purerl.run.rundir import NewRun, RunLock, check_out
    from purerl.run.signals import signals_held

    out = Path(out)
    with RunLock(out, flag=flags[0]):
        check_out(out, "sweep", overwrite, flags=flags)
        with NewRun(out, replace=overwrite, marker="sweep.json", remove=remove_sweep) as new:
            (new.path / "sweep.json").write_text(json.dumps({
                "format": FORMAT, "algo": algo, "env": config.get("env"), "config": config, "seeds": seeds,
                "seed": seed, "metric": metric,
                "values": {k: [float(x) for x in np.asarray(v).reshape(-1)] for k, v in values.items()},
                "summary": summary, "best": best, "compile_s": compile_s, "run_s": run_s,
                "final_returns": np.asarray(final_returns).tolist()}, indent=2))
            np.savez_compressed(new.path / "metrics.npz", **{k: np.asarray(v) for k, v in metrics.items()})
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
        raise ValueError(f"{path} has sweep.json but no metrics.npz (a sweep that did not finish writing?); run "
                         f"the sweep again")
    swept = {f"value_{n}" for n in body["values"]} if version == 1 else set()
    try:
        with np.load(npz) as arrays:
            metrics = {k: np.asarray(arrays[k], np.float64) for k in arrays.files if k not in swept}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{npz} is damaged ({e}); run the sweep again") from None
    return body, metrics
