"""Hyperparameter sweeps: every (config x seed) combination as one vmapped, jitted program.

    from purerl import ppo, sweep
    res = sweep.run(ppo, ppo.Config(env="CartPole-v1"), grid={"learning_rate": [1e-4, 3e-4, 1e-3]}, seeds=8)
    res.metrics["episode_return"]        # [configs, seeds, log points]
    res.summary()                        # per config: mean / std / IQM (with bootstrap CI) of the final return
    res.best                             # the best config's values

Numeric hyperparameters (pytree leaves of a Config) are swept by ``jax.vmap``: a grid (the Cartesian product
of ``grid``) and/or ``samples`` random draws from ``space`` (uniform or log-uniform ranges). Static fields
(network widths, ``num_envs``, switches) shape the program and cannot be vmapped: sweeping one is a
``ValueError`` that says so (loop over them in Python, one sweep per value).

The combination axis is flattened (``configs * seeds``) and, when more than one device is visible, sharded
over all devices with a ``Mesh`` + ``NamedSharding`` (padded to a multiple of the device count), so
N devices run N times the combinations in the time of one share. ``chunk_size`` bounds how many
combinations run at once (the rest run in later chunks of the same compiled program) when all of them do
not fit in memory.

Several processes (hosts): after ``jax.distributed.initialize`` on every process, each one calls ``run``
with the same arguments; the default ``devices`` are then the devices of all processes. Every process
places only its own shards of the runs on its devices (``jax.make_array_from_callback``), the program runs
once over all of them, and the metrics are gathered to every process (``core.sharding.gather``), so every
process returns the same ``SweepResult``; :meth:`SweepResult.save` writes on process 0 only.

``seed`` is an int or a PRNG key (``jax.random.key(s)`` or the legacy ``jax.random.PRNGKey(s)``; both give
the result of ``seed=s``). Seed ``k`` of every config trains with ``jax.random.split(key, seeds)[k]``, the key
``purerl train --seed s`` gives its seed ``k``; the random draws from ``space`` use the key
``jax.random.fold_in(key, 2**31 - 1)``, which no seed's key takes. The swept values are kept as the Python
floats asked for (``SweepResult.values``, ``sweep.json``); the program computes with their float32 roundings.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh

from purerl.arguments import check_count
from purerl.config import field_docs
from purerl.core.keys import as_key, is_key
from purerl.core.sharding import gather, split_rows

__all__ = ["SweepResult", "combinations", "run", "sample_space"]


_SPACE_STREAM = 2**31 - 1   # fold_in(key, this) draws the random space; split(key, seeds)[k] == fold_in(key, k)
_KEY_FORMS = "an int, a key from jax.random.key(s), or a legacy key from jax.random.PRNGKey(s) (uint32, shape (2,))"


def _seed_key(seed: Any, name: str = "seed") -> jax.Array:
    """One typed PRNG key from ``seed``: an int ``s`` gives ``jax.random.key(s)``; one key of either kind goes
    through :func:`purerl.core.keys.as_key` (``jax.random.PRNGKey(s)`` gives the key of ``s``). Anything else,
    a batch of keys included, is a ``TypeError`` naming ``name`` and the accepted forms."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        try:
            return jax.random.key(int(seed))
        except OverflowError:
            raise ValueError(f"sweep: `{name}` {seed} is too large for a PRNG seed; give a smaller int or a "
                             f"key") from None
    if is_key(seed):
        return as_key(seed, name)
    if hasattr(seed, "dtype") and hasattr(seed, "shape"):
        what = f"an array of dtype {seed.dtype} and shape {tuple(seed.shape)}"
        if any(is_key(seed, n) for n in range(1, np.ndim(seed) + 1)):
            what = (f"a batch of keys of shape {tuple(seed.shape)}; give one key (the sweep splits it into one "
                    f"key per seed)")
    else:
        what = f"{type(seed).__name__} {seed!r}"
    raise TypeError(f"sweep: `{name}` must be {_KEY_FORMS}; got {what}")


def _check_fields(config: Any, names: Sequence[str]) -> None:
    docs = {name: static for name, _, static, _ in field_docs(type(config))}
    for name in names:
        if name not in docs:
            raise ValueError(f"sweep: `{name}` is not a field of {type(config).__module__}.Config; "
                             f"numeric fields: {', '.join(n for n, s in docs.items() if not s)}")
        if docs[name]:
            raise ValueError(f"sweep: `{name}` is a static field of {type(config).__module__}.Config (it shapes the "
                             "compiled program) and cannot be vmapped; run one sweep per value in a Python loop, "
                             f"e.g. `for v in values: sweep.run(algo, cfg.replace({name}=v), ...)`")


def _number(where: str, v: Any) -> float:
    if isinstance(v, (bool, np.bool_, str, bytes)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"sweep: {where} must be a number, got {v!r}")
    return float(v)


def sample_space(space: dict[str, tuple], samples: int, key: Any) -> dict[str, np.ndarray]:
    """``samples`` random points: ``space[name] = (low, high)`` uniform, or ``(low, high, "log")`` log-uniform.
    ``key``: an int or a PRNG key (typed or legacy). The draws are float64 arrays within ``[low, high]``."""
    samples = check_count(samples, "samples", where="sweep")
    key = _seed_key(key, "key")
    if not isinstance(space, Mapping):
        raise TypeError(f"sweep: `space` must be a dict {{field: (low, high[, 'log'])}}, got {space!r}")
    out = {}
    for i, (name, spec) in enumerate(sorted(space.items())):
        if (not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3)
                or (len(spec) == 3 and spec[2] not in ("log", "linear"))):
            raise ValueError(f"sweep: space[{name!r}] = {spec!r}: use (low, high) or (low, high, 'log')")
        low, high = _number(f"space[{name!r}]'s low", spec[0]), _number(f"space[{name!r}]'s high", spec[1])
        if not low < high:
            raise ValueError(f"sweep: space[{name!r}]: low {low} must be below high {high}")
        u = np.asarray(jax.random.uniform(jax.random.fold_in(key, i), (samples,)), np.float64)
        if len(spec) == 3 and spec[2] == "log":
            if low <= 0:
                raise ValueError(f"sweep: space[{name!r}]: a log-uniform range needs low > 0")
            out[name] = np.clip(np.exp(np.log(low) + u * (np.log(high) - np.log(low))), low, high)
        else:
            out[name] = low + u * (high - low)
    return out


def combinations(grid: dict[str, Sequence[float]] | None = None, space: dict[str, tuple] | None = None,
                 samples: int = 0, key: Any = None) -> dict[str, np.ndarray]:
    """The swept values as ``{name: [C]}`` float64 arrays (the values given, not rounded to float32): the grid's
    Cartesian product, each combined with every random sample (or just one of the two). ``key`` (an int or a
    PRNG key; default 0) draws the samples."""
    if grid is not None and not isinstance(grid, Mapping):
        raise TypeError(f"sweep: `grid` must be a dict {{field: [values]}}, got {grid!r}")
    if space is not None and not isinstance(space, Mapping):
        raise TypeError(f"sweep: `space` must be a dict {{field: (low, high[, 'log'])}}, got {space!r}")
    samples = check_count(samples, "samples", 0, where="sweep")
    grid = dict(grid or {})
    for name, vals in grid.items():
        if isinstance(vals, (str, bytes)) or not isinstance(vals, (Sequence, np.ndarray)) or np.ndim(vals) != 1:
            raise TypeError(f"sweep: grid[{name!r}] must be a list of values, e.g. [1e-4, 3e-4], got {vals!r}")
        if len(vals) == 0:
            raise ValueError(f"sweep: grid[{name!r}] has no values; give at least one, e.g. [1e-4, 3e-4]")
        grid[name] = [_number(f"grid[{name!r}]'s value", v) for v in vals]
    if samples and not space:
        raise ValueError(f"sweep: samples={samples} draws from `space`, which is empty; give space={{field: "
                         f"(low, high[, 'log'])}} too, or samples=0")
    names = sorted(grid)
    points = [dict(zip(names, vals, strict=True)) for vals in itertools.product(*(grid[n] for n in names))] or [{}]
    if space:
        if samples < 1:
            raise ValueError("sweep: a random space needs samples >= 1 (the number of draws)")
        drawn = sample_space(space, samples, 0 if key is None else key)
        rand = [{n: drawn[n][i] for n in drawn} for i in range(samples)]
        points = [{**p, **r} for p in points for r in rand]
    if points == [{}]:
        raise ValueError("sweep: give at least one hyperparameter in grid or space")
    return {n: np.asarray([p[n] for p in points], np.float64) for n in points[0]}


@dataclasses.dataclass
class SweepResult:
    """``values[name]``: ``[C]``; ``metrics[name]``: ``[C, S, L]`` (configs, seeds, log points)."""

    values: dict[str, np.ndarray]
    metrics: dict[str, np.ndarray]
    seeds: int
    metric: str = "episode_return"
    compile_s: float = 0.0
    run_s: float = 0.0
    chunks: int = 1
    devices: int = 1
    algo: str = "?"
    config: Any = None
    seed: int | None = None     # the int seed given (None: a key was given)

    @property
    def num_configs(self) -> int:
        return len(next(iter(self.values.values())))

    def final_returns(self) -> np.ndarray:
        """``[C, S]``: per run, the mean of ``metric`` over the last 5% of log points (at least one)."""
        from purerl.run.stats import final_scores

        return final_scores(self.metrics[self.metric])

    def summary(self) -> list[dict]:
        """One row per config, best first: its values and the mean, std and interquartile mean (IQM) of the
        final return over seeds, with the IQM's stratified-bootstrap 95% interval (``iqm_low``, ``iqm_high``;
        :func:`purerl.run.stats.iqm_ci`, resampling the config's seeds, bootstrap seed 0), and ``config_index``,
        its index in ``values`` and the metrics' first axis. Ranked by the IQM, the statistic purerl reports
        (robust to a seed that fails or shines alone), then by the mean; a NaN IQM (a seed with no finished
        episode) ranks last."""
        from purerl.run import stats

        final = self.final_returns()
        rows = []
        for c in range(self.num_configs):
            x = final[c]
            ci = stats.iqm_ci(x)
            rows.append({**{n: float(v[c]) for n, v in self.values.items()}, "mean": float(np.mean(x)),
                         "std": float(np.std(x)), "iqm": ci.point, "iqm_low": ci.low, "iqm_high": ci.high,
                         "config_index": c})
        return sorted(rows, key=lambda r: (np.isnan(r["iqm"]), -np.nan_to_num(r["iqm"]),
                                           -np.nan_to_num(r["mean"], nan=-np.inf), r["config_index"]))

    @property
    def best(self) -> dict:
        """The swept values of the best config (the first row of :meth:`summary`: the highest IQM)."""
        return {n: v for n, v in self.summary()[0].items() if n in self.values}

    def table(self) -> str:
        """:meth:`summary` as text: one line per config, best (highest IQM) first, under a line saying so; the
        first column is the config's index (``config_index``)."""
        names = list(self.values)
        hdr = "".join(f"{n:>16}" for n in names) + f"{'mean':>10}{'std':>9}{'iqm':>10}  {'iqm 95% CI':<20}"
        lines = [f"ranked by IQM over the {self.seeds} seed{'s' if self.seeds != 1 else ''} (best first); "
                 f"config: its index in the sweep's values", f"{'config':>6}" + hdr, "-" * (6 + len(hdr))]
        for r in self.summary():
            band = f"[{r['iqm_low']:.1f}, {r['iqm_high']:.1f}]"
            lines.append(f"{r['config_index']:>6}" + "".join(f"{r[n]:>16.4g}" for n in names)
                         + f"{r['mean']:>10.1f}{r['std']:>9.1f}{r['iqm']:>10.1f}  {band:<20}")
        return "\n".join(lines)

    def save(self, out: str | Path, overwrite: bool = False, *,
             flags: tuple[str, str] = ("`out`", "overwrite=True")) -> Path:
        """Write the sweep directory ``out`` (:func:`purerl.run.sweepdir.write_sweep`, whose module documents
        the files): ``sweep.json`` (algo, env, config, seeds, seed, metric, the swept ``values`` as given,
        ``summary``, ``best``, timings, ``final_returns [C, S]``) and ``metrics.npz`` (every metric as
        ``[config, seed, log point]``). ``purerl plot`` reads such a directory as one curve per config.

        The rules of ``purerl sweep --out``: a directory that already holds a sweep is a ``ValueError`` unless
        ``overwrite``, one that holds a training run always is (a run is never replaced by a sweep), and so is
        one that another process is writing (``out/.lock``); the new files replace the old sweep only once both
        are written, so a refused or failed save leaves ``out`` as it was. ``flags``: how the messages name
        ``out`` and ``overwrite``. In a run of several processes (``jax.distributed``) only process 0 writes;
        the others return ``out`` without touching it."""
        from purerl.config import config_to_dict
        from purerl.run.sweepdir import write_sweep

        out = Path(out)
        if jax.process_index() != 0:
            return out
        return write_sweep(out, algo=self.algo, config=config_to_dict(self.config) if self.config is not None else {},
                           seeds=self.seeds, seed=self.seed, metric=self.metric, values=self.values,
                           metrics=self.metrics, summary=self.summary(), best=self.best,
                           final_returns=self.final_returns(), compile_s=self.compile_s, run_s=self.run_s,
                           overwrite=overwrite, flags=flags)


def run(algo: Any, config: Any, grid: dict[str, Sequence[float]] | None = None, *, space: dict | None = None,
        samples: int = 0, seeds: int = 1, seed: Any = 0, chunk_size: int | None = None,
        devices: Sequence[Any] | None = None, metric: str = "episode_return", log=print) -> SweepResult:
    """Run ``algo`` (a module with ``Config``/``make_train``) for every combination and seed.

    ``seeds``: runs per config; ``seed``: an int or a PRNG key (``jax.random.key(s)`` or ``jax.random.PRNGKey(s)``,
    the same as ``seed=s``); ``samples``: random draws from ``space``; ``chunk_size``: at most this many
    (config, seed) runs per program call (default: all at once); ``devices``: the devices to shard over
    (default: ``jax.devices()``, all devices, those of every process after ``jax.distributed.initialize``).
    Every argument is checked before anything is compiled. With devices of several processes, every
    process must make the same call; each feeds its own devices and all return the whole result."""
    import time

    seeds = check_count(seeds, "seeds", where="sweep")
    if chunk_size is not None:
        chunk_size = check_count(chunk_size, "chunk_size", where="sweep")
    key = _seed_key(seed)
    devices = list(devices) if devices is not None else jax.devices()
    if not devices:
        raise ValueError("sweep: `devices` is empty; give at least one device, or devices=None for all of them")
    here = jax.process_index()
    if jax.process_count() > 1 and not any(d.process_index == here for d in devices):
        raise ValueError(f"sweep: none of `devices` belongs to this process ({here}); every process of a "
                         f"multi-process sweep runs a share of it on its own devices (give jax.devices())")
    if not isinstance(metric, str):
        raise TypeError(f"sweep: `metric` must be a metric's name, got {metric!r}")
    values = combinations(grid, space, samples, jax.random.fold_in(key, _SPACE_STREAM))
    _check_fields(config, list(values))
    config = config.validate()
    for name, v in values.items():   # range-check every value through the Config's own validation
        for x in sorted({float(v.min()), float(v.max())}):
            config.replace(**{name: x}).validate()
    C = len(next(iter(values.values())))
    total = C * seeds
    n_dev = len(devices)
    chunk = min(total if chunk_size is None else chunk_size, total)
    chunk = int(math.ceil(chunk / n_dev) * n_dev)  # every chunk splits evenly over the devices
    n_chunks = int(math.ceil(total / chunk))
    if n_chunks > 1 and log is not None:
        log(f"sweep: {total} runs in {n_chunks} chunks of {chunk} (chunk_size={chunk_size})")

    # flat combination axis: run i is config i // seeds with seed key i % seeds
    impl = jax.random.key_impl(key)
    keys = np.asarray(jax.random.key_data(jax.random.split(key, seeds)))    # [seeds, *key shape], host data
    flat_vals = {n: np.repeat(v.astype(np.float32), seeds) for n, v in values.items()}  # what the program computes with
    flat_keys = np.tile(keys, (C,) + (1,) * (keys.ndim - 1))
    pad = n_chunks * chunk - total

    def one(vals, key_data):
        return algo.make_train(config.replace(**vals))(jax.random.wrap_key_data(key_data, impl=impl)).metrics

    batched = jax.jit(jax.vmap(one))
    mesh = Mesh(np.asarray(devices), ("runs",)) if n_dev > 1 else None

    def place(x: np.ndarray):
        """Host data (the same on every process) as an array split over the mesh: each process puts only the
        rows of its own devices there."""
        if mesh is None:
            return jax.device_put(x, devices[0])
        return split_rows(x, mesh)

    outs, compile_s, run_s = [], 0.0, 0.0
    compiled = None
    for c in range(n_chunks):
        sl = slice(c * chunk, (c + 1) * chunk)
        vals = {n: np.concatenate([v, np.repeat(v[-1:], pad)])[sl] for n, v in flat_vals.items()}
        ks = np.concatenate([flat_keys, np.repeat(flat_keys[-1:], pad, axis=0)])[sl]
        args = (jax.tree.map(place, vals), place(ks))
        if compiled is None:
            t0 = time.perf_counter()
            lowered = batched.lower(*args)
            if metric not in lowered.out_info:   # traced, not compiled yet
                raise ValueError(f"sweep: metric {metric!r} is not among {type(config).__module__}'s metrics: "
                                 f"{', '.join(sorted(lowered.out_info))}")
            compiled = lowered.compile()
            compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        outs.append(gather(jax.block_until_ready(compiled(*args))))
        run_s += time.perf_counter() - t0
    metrics = {k: np.concatenate([o[k] for o in outs])[:total] for k in outs[0]}
    metrics = {k: v.reshape((C, seeds) + v.shape[1:]) for k, v in metrics.items()}
    name = getattr(algo, "__name__", "?").rsplit(".", 1)[-1]
    int_seed = int(seed) if isinstance(seed, (int, np.integer)) else None
    return SweepResult(values, metrics, seeds, metric, compile_s, run_s, n_chunks, n_dev, name, config, int_seed)
