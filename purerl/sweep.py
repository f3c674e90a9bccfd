"""Hyperparameter sweeps: every (config x seed) combination as one vmapped, jitted program.

    from purerl import ppo, sweep
    res = sweep.run(ppo, ppo.Config(env="CartPole-v1"), grid={"learning_rate": [1e-4, 3e-4, 1e-3]}, seeds=8)
    res.metrics["episode_return"]        # [configs, seeds, log points]
    res.summary()                        # per config: mean / std / IQM (with bootstrap CI) of the final return
    res.best                             # the best config's values

A sweep lives the life of a training run (:mod:`purerl.run.lifecycle`): the initial state of every run, then
chunks of ``checkpoint_every`` updates (a tenth of the run by default) of all of them, each chunk checked for
NaN/inf (a divergence stops the sweep, as it stops a run: ``SweepResult.error`` names the first bad update,
config and seed). With a directory (``out``; ``purerl sweep --out``) the whole sweep state (every config x
seed run's train state) is saved at the end, on Ctrl-C or SIGTERM (which stop it after the running chunk),
before a divergence and, with ``checkpoint_every``, after every chunk; :func:`resume` (``purerl resume DIR``)
continues it, and the resumed sweep equals the uninterrupted one bit for bit. The directory's files are
documented in :mod:`purerl.run.sweepdir`.

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

import contextlib
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
from purerl.keys import as_key, is_key, is_typed_key
from purerl.core.sharding import gather
from purerl.run.guard import NonFiniteError, find_non_finite, finite_flags
from purerl.run.lifecycle import Job, Layout, Start, chunk_length, live, progress_meta, restored_metrics

__all__ = ["SweepResult", "combinations", "resume", "run", "sample_space"]


_SPACE_STREAM = 2**31 - 1   # fold_in(key, this) draws the random space; split(key, seeds)[k] == fold_in(key, k)
_KEY_FORMS = "an int, a key from jax.random.key(s), or a legacy key from jax.random.PRNGKey(s) (uint32, shape (2,))"


def _seed_key(seed: Any, name: str = "seed") -> jax.Array:
    """One typed PRNG key from ``seed``: an int ``s`` gives ``jax.random.key(s)``; one key of either kind goes
    through :func:`purerl.keys.as_key` (``jax.random.PRNGKey(s)`` gives the key of ``s``). Anything else,
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
    """``values[name]``: ``[C]``; ``metrics[name]``: ``[C, S, L]`` (configs, seeds, log points). A sweep stopped
    before its end (``interrupted``: a stop signal; ``error``: the non-finite guard's
    :class:`~purerl.run.guard.NonFiniteError`) holds the log points up to ``updates_done`` of ``num_updates``;
    ``out``: the sweep directory it was written to as it ran (None: kept in memory)."""

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
    updates_done: int = 0
    num_updates: int = 0
    start_update: int = 0       # the updates done before this process (where a resumed sweep continued)
    interrupted: bool = False
    signal: int | None = None   # the stop signal that ended an interrupted sweep
    error: NonFiniteError | None = None
    out: Path | None = None

    @property
    def finished(self) -> bool:
        return self.updates_done == self.num_updates and self.error is None

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
        """:meth:`summary` as text: one line per config, best (highest IQM) first, under a line saying so (and,
        for a sweep stopped before its end, where and why); the first column is the config's index
        (``config_index``)."""
        names = list(self.values)
        hdr = "".join(f"{n:>16}" for n in names) + f"{'mean':>10}{'std':>9}{'iqm':>10}  {'iqm 95% CI':<20}"
        lines = [f"ranked by IQM over the {self.seeds} seed{'s' if self.seeds != 1 else ''} (best first); "
                 f"config: its index in the sweep's values", f"{'config':>6}" + hdr, "-" * (6 + len(hdr))]
        if not self.finished:
            why = f"the guard stopped it: {self.error}" if self.error is not None else "interrupted"
            lines.insert(0, f"a partial sweep: {self.updates_done} of {self.num_updates} updates ({why})")
        for r in self.summary():
            band = f"[{r['iqm_low']:.1f}, {r['iqm_high']:.1f}]"
            lines.append(f"{r['config_index']:>6}" + "".join(f"{r[n]:>16.4g}" for n in names)
                         + f"{r['mean']:>10.1f}{r['std']:>9.1f}{r['iqm']:>10.1f}  {band:<20}")
        return "\n".join(lines)

    def body(self, **more: Any) -> dict:
        """The ``sweep.json`` record of this result (:func:`purerl.run.sweepdir.sweep_body`)."""
        from purerl.config import config_to_dict
        from purerl.run.sweepdir import sweep_body

        results = ({"summary": self.summary(), "best": self.best, "final_returns": self.final_returns()}
                   if self.metrics and np.size(self.metrics[self.metric]) else {})
        if self.num_updates:
            more = {"updates_done": self.updates_done, "num_updates": self.num_updates, **more}
        return sweep_body(algo=self.algo, config=config_to_dict(self.config) if self.config is not None else {},
                          seeds=self.seeds, seed=self.seed, metric=self.metric, values=self.values,
                          compile_s=self.compile_s, run_s=self.run_s, **results, **more)

    def save(self, out: str | Path, overwrite: bool = False, *,
             flags: tuple[str, str] = ("`out`", "overwrite=True")) -> Path:
        """Write the sweep directory ``out`` (:func:`purerl.run.sweepdir.write_sweep`, whose module documents
        the files): ``sweep.json`` (algo, env, config, seeds, seed, metric, the swept ``values`` as given,
        ``summary``, ``best``, timings, ``final_returns [C, S]``) and ``metrics.npz`` (every metric as
        ``[config, seed, log point]``). ``purerl plot`` reads such a directory as one curve per config. A result
        that :func:`run` wrote to ``out`` as it ran (``self.out``) is there already: nothing more is written.

        The rules of ``purerl sweep --out``: a directory that already holds a sweep is a ``ValueError`` unless
        ``overwrite``, one that holds a training run always is (a run is never replaced by a sweep), and so is
        one that another process is writing (``out/.lock``); the new files replace the old sweep only once both
        are written, so a refused or failed save leaves ``out`` as it was. ``flags``: how the messages name
        ``out`` and ``overwrite``. In a run of several processes (``jax.distributed``) only process 0 writes;
        the others return ``out`` without touching it."""
        from purerl.run.sweepdir import write_sweep

        out = Path(out)
        if jax.process_index() != 0 or (self.out is not None and out.resolve() == Path(self.out).resolve()):
            return out
        body = self.body()
        return write_sweep(out, **{k: body[k] for k in ("algo", "config", "seeds", "seed", "metric")},
                           values=self.values, metrics=self.metrics, summary=body.get("summary"),
                           best=body.get("best"), final_returns=body.get("final_returns"), compile_s=self.compile_s,
                           run_s=self.run_s, overwrite=overwrite, flags=flags,
                           **{k: body[k] for k in ("updates_done", "num_updates") if k in body})


class Sweep(Job):
    """A sweep as a :class:`purerl.run.lifecycle.Job`: every (config x seed) run of ``values`` as one row of a
    flat run axis (run ``i`` is config ``i // seeds`` with seed key ``i % seeds``), in groups of ``chunk_size``
    runs (padded to a multiple of the devices, split over them), the same compiled programs serving every
    group: ``init`` of every run, then chunks of ``update`` that also give the finite flags of the state after
    them. With more than one group, a group's state waits on the host while the others run, so the memory a
    sweep needs on its devices is one group's. ``key``: the sweep's PRNG key (None when resuming: the saved
    state holds every run's), ``impl`` its implementation's name."""

    kind = "sweep"

    def __init__(self, algo: Any, config: Any, values: dict[str, np.ndarray], *, seeds: int, seed: int | None,
                 key: Any, impl: str, chunk_size: int | None, devices: Sequence[Any], metric: str,
                 checkpoint_every: int, log: Any):
        self.algo, self.config, self.values, self.seeds, self.seed = algo, config, values, seeds, seed
        self.key, self.impl, self.chunk_size, self.metric, self.log = key, impl, chunk_size, metric, log
        self.checkpoint_every = checkpoint_every
        self.name = getattr(algo, "__name__", "?").rsplit(".", 1)[-1]
        self.num_updates = algo.make(config).num_log_points
        self.every = chunk_length(self.num_updates, checkpoint_every)
        self.save_every = bool(checkpoint_every)
        self.configs = len(next(iter(values.values())))
        self.total = self.configs * seeds
        n_dev = len(devices)
        group = min(self.total if chunk_size is None else chunk_size, self.total)
        self.group = int(math.ceil(group / n_dev) * n_dev)  # every group splits evenly over the devices
        self.groups = int(math.ceil(self.total / self.group))
        self.layout = Layout(Mesh(np.asarray(devices), ("runs",)) if n_dev > 1 else None, device=devices[0])
        self.flags = None   # the finite flags of the state after the latest chunk

    def _trainer(self, vals: dict) -> Any:
        return self.algo.make(self.config.replace(**vals))

    def _rows(self, x: np.ndarray, g: int) -> np.ndarray:
        """Group ``g``'s rows of ``x`` (``[total, ...]``), the last run repeated to fill the last group."""
        pad = self.groups * self.group - self.total
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]) if pad else x
        return x[g * self.group:(g + 1) * self.group]

    def state_shape(self, runs: int) -> Any:
        """The shapes of ``runs`` runs' train state (what a checkpoint restores into)."""
        keys = jax.random.split(jax.random.key(0, impl=self.impl), runs)
        vals = {n: jax.ShapeDtypeStruct((runs,), np.float32) for n in self.values}
        return jax.eval_shape(jax.vmap(lambda v, k: self._trainer(v).init(k)), vals, keys)

    def _device(self, host: Any) -> Any:
        """A group's state from the host (typed keys as their data) onto the layout's devices."""
        impl = lambda t: getattr(t.dtype, "_impl", None)  # noqa: E731
        return jax.tree.map(lambda t, x: jax.random.wrap_key_data(self.layout.place(np.asarray(x)), impl=impl(t))
                            if is_typed_key(t) else self.layout.place(np.asarray(x)), self.shape, host)

    def _chunk_program(self, n: int, check_metric: bool = False) -> Any:
        from purerl import compiling
        from purerl.core.loop import scan_updates

        total = self.num_updates

        def step(vals, state, start):
            one = lambda v, s: scan_updates(self._trainer(v).update, s, start, n, total)  # noqa: E731
            state, metrics = jax.vmap(one)(vals, state)
            return state, metrics, finite_flags(state)

        lowered = jax.jit(step, **self.layout.jit_kwargs("rows", "whole", "whole")).lower(
            self.vals[0], self.shape, np.int32(0))
        if check_metric and self.metric not in lowered.out_info[1]:   # traced, not compiled yet
            raise ValueError(f"sweep: metric {self.metric!r} is not among {type(self.config).__module__}'s "
                             f"metrics: {', '.join(sorted(lowered.out_info[1]))}")
        return lowered.compile(compiling.compile_options("train"))

    def compile(self, start: Start, check: Any) -> Any:
        from purerl import compiling

        flat = {n: np.repeat(v.astype(np.float32), self.seeds) for n, v in self.values.items()}  # what it computes with
        self.vals = [jax.tree.map(self.layout.place, {n: self._rows(v, g) for n, v in flat.items()})
                     for g in range(self.groups)]
        if start.resumed:
            keys = jax.random.split(jax.random.key(0, impl=self.impl), self.seeds)   # for the shapes only
        else:
            keys = jax.random.split(self.key, self.seeds)   # seed k of every config: split(key, seeds)[k]
        data = np.asarray(jax.random.key_data(keys))
        data = np.tile(data, (self.configs,) + (1,) * (data.ndim - 1))
        keys = [self.layout.place(jax.random.wrap_key_data(self._rows(data, g), impl=self.impl))
                for g in range(self.groups)]
        init = jax.jit(jax.vmap(lambda v, k: self._trainer(v).init(k)), **self.layout.jit_kwargs("rows"))
        lowered = init.lower(self.vals[0], keys[0])
        self.shape = self.layout.shapes(lowered.out_info)
        check()
        first = min(self.every, self.num_updates - start.done)
        self.chunks = {first: self._chunk_program(first, check_metric=True)}
        rest = (self.num_updates - start.done) % self.every
        if rest and rest not in self.chunks:
            self.chunks[rest] = self._chunk_program(rest)
        check()
        if self.groups > 1 and self.log is not None:
            self.log(f"sweep: {self.total} runs in {self.groups} chunks of {self.group} "
                     f"(chunk_size={self.chunk_size})")
        if start.resumed:   # the restored runs, the last one repeated to fill the last group
            whole = gather(start.state)
            groups = [jax.tree.map(lambda x, g=g: self._rows(np.asarray(x), g), whole) for g in range(self.groups)]
            return [self._device(groups[0])] if self.groups == 1 else groups
        program = lowered.compile(compiling.compile_options("once"))
        states = [jax.block_until_ready(program(self.vals[g], keys[g])) for g in range(self.groups)]
        return states if self.groups == 1 else [gather(s) for s in states]

    def chunk(self, state: list, done: int, n: int) -> tuple[list, dict]:
        states, metrics, flags = [], [], []
        for g in range(self.groups):
            s = state[g] if self.groups == 1 else self._device(state[g])
            s, m, f = self.chunks[n](self.vals[g], s, np.int32(done))
            states.append(s if self.groups == 1 else gather(s))
            metrics.append(jax.device_get(m))
            flags.append(jax.device_get(f))
        join = lambda *xs: np.concatenate(xs)[:self.total]  # noqa: E731
        self.flags = jax.tree.map(join, *flags)
        return states, jax.tree.map(join, *metrics)

    def check(self, metrics: dict, state: Any, first: int) -> NonFiniteError | None:
        return find_non_finite(metrics, state, first, flags=lambda _: self.flags,
                               runs=lambda i: f"config {i // self.seeds}, seed index {i % self.seeds}")

    def whole(self, state: list) -> Any:
        """Every run's state, ``[configs * seeds, ...]`` (the padding left out)."""
        if self.groups == 1:
            whole = self.layout.whole(state[0])
            return whole if self.group == self.total else jax.tree.map(lambda x: x[:self.total], whole)
        return jax.tree.map(lambda *xs: np.concatenate(xs)[:self.total], *state)

    def meta(self, step: int, metrics: dict) -> dict:
        return {"kind": "sweep", "runs": self.total, **progress_meta(step, self.num_updates, metrics)}

    def new_files(self, out: Path, overwrite: bool) -> Any:
        from purerl.run.rundir import NewRun
        from purerl.run.sweepdir import remove_sweep

        return NewRun(out, replace=overwrite, marker="sweep.json", remove=remove_sweep)

    def _resume_keys(self) -> dict:
        return {"key_impl": self.impl, "chunk_size": self.chunk_size, "checkpoint_every": self.checkpoint_every,
                "devices": self.layout.devices}

    def write_start(self, path: Path) -> None:
        from purerl.run import sweepdir

        sweepdir.write_files(path, self.result(None).body(**self._resume_keys()))

    def write_files(self, path: Path, record: Any) -> None:
        from purerl.run import sweepdir

        if record.parts:
            result = self.result(record)
            sweepdir.write_files(path, result.body(**self._resume_keys()), result.metrics)

    def result(self, record: Any, out: Path | None = None) -> SweepResult:
        """The sweep's :class:`SweepResult` at ``record`` (None: before its first update)."""
        metrics = record.metrics if record is not None else {}
        metrics = {k: v.reshape((self.configs, self.seeds) + v.shape[1:]) for k, v in metrics.items()}
        kw = dict(compile_s=record.compile_s, run_s=record.run_s, updates_done=record.done,
                  start_update=record.start, interrupted=record.interrupted, signal=record.signal,
                  error=record.error) if record is not None else {}
        return SweepResult(self.values, metrics, self.seeds, self.metric, chunks=self.groups,
                           devices=self.layout.devices, algo=self.name, config=self.config, seed=self.seed,
                           num_updates=self.num_updates, out=out, **kw)

    def finish(self, record: Any, out: Path | None) -> SweepResult:
        return self.result(record, out if out is not None and self.primary else None)


def _prepare(algo: Any, config: Any, grid: Any, *, space: Any, samples: Any, seeds: Any, seed: Any,
             chunk_size: Any, devices: Any, metric: Any, checkpoint_every: Any, log: Any) -> Sweep:
    """The sweep's :class:`Sweep`, every argument checked; nothing is traced."""
    seeds = check_count(seeds, "seeds", where="sweep")
    if chunk_size is not None:
        chunk_size = check_count(chunk_size, "chunk_size", where="sweep")
    checkpoint_every = check_count(checkpoint_every, "checkpoint_every", 0, where="sweep",
                                   note=" (0: chunks of a tenth of the run, saved at the end only)")
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
    if not callable(getattr(algo, "make", None)):
        raise TypeError(f"sweep: `algo` must be an algorithm module with make(config) -> Trainer (as purerl.ppo), "
                        f"got {algo!r}")
    values = combinations(grid, space, samples, jax.random.fold_in(key, _SPACE_STREAM))
    _check_fields(config, list(values))
    config = config.validate()
    for name, v in values.items():   # range-check every value through the Config's own validation
        for x in sorted({float(v.min()), float(v.max())}):
            config.replace(**{name: x}).validate()
    int_seed = int(seed) if isinstance(seed, (int, np.integer)) else None
    return Sweep(algo, config, values, seeds=seeds, seed=int_seed, key=key, impl=str(jax.random.key_impl(key)),
                 chunk_size=chunk_size, devices=devices, metric=metric, checkpoint_every=checkpoint_every, log=log)


def run(algo: Any, config: Any, grid: dict[str, Sequence[float]] | None = None, *, space: dict | None = None,
        samples: int = 0, seeds: int = 1, seed: Any = 0, chunk_size: int | None = None,
        devices: Sequence[Any] | None = None, metric: str = "episode_return", log=print,
        out: str | Path | None = None, overwrite: bool = False, checkpoint_every: int = 0) -> SweepResult:
    """Run ``algo`` (an algorithm module: ``Config`` and ``make(config) -> Trainer``) for every combination and
    seed.

    ``seeds``: runs per config; ``seed``: an int or a PRNG key (``jax.random.key(s)`` or ``jax.random.PRNGKey(s)``,
    the same as ``seed=s``); ``samples``: random draws from ``space``; ``chunk_size``: at most this many
    (config, seed) runs per program call (default: all at once); ``devices``: the devices to shard over
    (default: ``jax.devices()``, all devices, those of every process after ``jax.distributed.initialize``).
    Every argument is checked before anything is compiled. With devices of several processes, every
    process must make the same call; each feeds its own devices and all return the whole result.

    ``out``: a sweep directory to write as the sweep runs (:mod:`purerl.run.sweepdir`: ``sweep.json``,
    ``metrics.npz``, ``checkpoints/``), refused if it holds a run, or a sweep unless ``overwrite``; Ctrl-C or
    SIGTERM then stops the sweep after the running chunk and saves it, and :func:`resume` continues it. The
    whole sweep state is saved at the end, on a stop, before a divergence and, with ``checkpoint_every``,
    after every chunk of that many updates (by default a chunk is a tenth of the run). Without ``out``
    nothing is written, and Ctrl-C raises ``KeyboardInterrupt`` as usual. Never raises on divergence: the
    result's ``error`` holds the :class:`~purerl.run.guard.NonFiniteError`, its metrics end at the failure."""
    from purerl.run.runner import claim
    from purerl.run.signals import Starting

    if out is None:
        return live(_prepare(algo, config, grid, space=space, samples=samples, seeds=seeds, seed=seed,
                             chunk_size=chunk_size, devices=devices, metric=metric,
                             checkpoint_every=checkpoint_every, log=log), None, Start())
    with Starting() as starting:
        job = _prepare(algo, config, grid, space=space, samples=samples, seeds=seeds, seed=seed,
                       chunk_size=chunk_size, devices=devices, metric=metric, checkpoint_every=checkpoint_every,
                       log=log)
        with contextlib.ExitStack() as held:
            claim(Path(out), held, "sweep", overwrite, flags=("`out`", "overwrite=True"))
            return live(job, Path(out), Start(), starting=starting, overwrite=overwrite)


def resume(out: str | Path, *, devices: Sequence[Any] | None = None, log=print) -> SweepResult:
    """Continue the sweep in directory ``out`` (written by :func:`run` with ``out``, or ``purerl sweep``) from its
    newest checkpoint with its own config, values and chunking; the finished sweep equals the uninterrupted
    one bit for bit when it runs on as many devices (``devices``, default ``jax.devices()``; ``purerl resume``
    takes as many as the sweep used)."""
    from purerl import algorithms
    from purerl.config import config_from_dict
    from purerl.run import checkpoint as ckpt
    from purerl.run import rundir, sweepdir
    from purerl.run.signals import Starting

    if jax.process_count() > 1:
        raise ValueError("resume a sweep in one process (without --coordinator): its checkpoints hold every run's "
                         "state, so one process continues it")
    out = Path(out)
    body = sweepdir.read_resumable(out)
    mod = algorithms.module(body["algo"])
    config = config_from_dict(mod.Config, body["config"], source=str(out / "sweep.json")).validate()
    values = {k: np.asarray(v, np.float64) for k, v in body["values"].items()}
    devices = list(devices) if devices is not None else jax.devices()
    job = Sweep(mod, config, values, seeds=body["seeds"], seed=body["seed"], key=None, impl=body["key_impl"],
                chunk_size=body["chunk_size"], devices=devices, metric=body["metric"],
                checkpoint_every=body["checkpoint_every"], log=log)
    with rundir.RunLock(out, flag=None):
        if ckpt.latest_step(out / "checkpoints") is None:
            raise ValueError(f"{out} has no checkpoint to resume from (the sweep stopped before its first save): "
                             f"run it again with --overwrite")
        state, meta = ckpt.restore(out / "checkpoints", job.state_shape(job.total))
        if meta.get("updates_done") == meta.get("num_updates"):
            raise ValueError(f"the sweep in {out} is finished ({meta['updates_done']} of {meta['num_updates']} "
                             f"updates): nothing to resume")
        with Starting() as starting:
            start = Start(resumed=True, state=state, done=int(meta["updates_done"]), metrics=restored_metrics(meta))
            return live(job, out, start, starting=starting)
