"""A sweep directory: what ``purerl sweep`` (``SweepResult.save``) writes and ``purerl plot`` reads.

    OUT/sweep.json    format             2 (this layout; absent in directories of older purerl versions)
                      algo, env, config  the algorithm, its env and the base config (every field; the swept
                                         ones hold the base value)
                      seeds, seed        runs per config and the int seed given (null: a PRNG key was given)
                      metric             the metric the sweep ranks by (its final value: the mean of the last 5%
                                         of log points)
                      values             {field: [C]}: each config's swept values, as given (float64)
                      summary            one row per config, best first: its values, mean, std, iqm, iqm_low,
                                         iqm_high (over seeds) and config_index
                      best               the best config's swept values
                      compile_s, run_s   the sweep's compile and run time
                      final_returns      [C][S]: each run's final ``metric``
    OUT/metrics.npz   every metric as an array [config, seed, log point], under its own name

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

__all__ = ["FORMAT", "read_sweep", "write_sweep"]

FORMAT = 2   # sweep.json's "format": 2 = the swept values only in sweep.json (1, unmarked: also value_<field> in the npz)


def write_sweep(out: str | Path, *, algo: str, config: dict, seeds: int, seed: int | None, metric: str,
                values: dict[str, Any], metrics: dict[str, Any], summary: list[dict], best: dict,
                final_returns: Any, compile_s: float = 0.0, run_s: float = 0.0) -> Path:
    """Write the sweep directory ``out`` (created if missing; see the module docstring): ``values[field]`` are
    the ``[C]`` swept values, ``metrics[name]`` the ``[C, S, L]`` arrays, ``config`` the base config as a dict
    (:func:`purerl.config.config_to_dict`). Returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({
        "format": FORMAT, "algo": algo, "env": config.get("env"), "config": config, "seeds": seeds, "seed": seed,
        "metric": metric, "values": {k: [float(x) for x in np.asarray(v).reshape(-1)] for k, v in values.items()},
        "summary": summary, "best": best, "compile_s": compile_s, "run_s": run_s,
        "final_returns": np.asarray(final_returns).tolist()}, indent=2))
    np.savez_compressed(out / "metrics.npz", **{k: np.asarray(v) for k, v in metrics.items()})
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
