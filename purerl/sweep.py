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
over all local devices with a ``Mesh`` + ``NamedSharding`` (padded to a multiple of the device count), so
N devices run N times the combinations in the time of one share. ``chunk_size`` bounds how many
combinations run at once (the rest run in later chunks of the same compiled program) when all of them do
not fit in memory.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from purerl.config import field_docs

__all__ = ["SweepResult", "combinations", "run", "sample_space"]


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


def sample_space(space: dict[str, tuple], samples: int, key: jax.Array) -> dict[str, np.ndarray]:
    """``samples`` random points: ``space[name] = (low, high)`` uniform, or ``(low, high, "log")`` log-uniform."""
    out = {}
    for i, (name, spec) in enumerate(sorted(space.items())):
        if len(spec) not in (2, 3) or (len(spec) == 3 and spec[2] not in ("log", "linear")):
            raise ValueError(f"sweep: space[{name!r}] = {spec!r}: use (low, high) or (low, high, 'log')")
        low, high = float(spec[0]), float(spec[1])
        if not low < high:
            raise ValueError(f"sweep: space[{name!r}]: low {low} must be below high {high}")
        u = np.asarray(jax.random.uniform(jax.random.fold_in(key, i), (samples,)), np.float64)
        if len(spec) == 3 and spec[2] == "log":
            if low <= 0:
                raise ValueError(f"sweep: space[{name!r}]: a log-uniform range needs low > 0")
            out[name] = np.exp(np.log(low) + u * (np.log(high) - np.log(low)))
        else:
            out[name] = low + u * (high - low)
    return out


def combinations(grid: dict[str, Sequence[float]] | None = None, space: dict[str, tuple] | None = None,
                 samples: int = 0, key: jax.Array | None = None) -> dict[str, np.ndarray]:
    """The swept values as ``{name: [C]}``: the grid's Cartesian product, each combined with every random
    sample (or just one of the two)."""
    grid = grid or {}
    names = sorted(grid)
    points = [dict(zip(names, vals, strict=True)) for vals in itertools.product(*(list(grid[n]) for n in names))] or [{}]
    if space:
        if samples < 1:
            raise ValueError("sweep: a random space needs samples >= 1")
        drawn = sample_space(space, samples, jax.random.key(0) if key is None else key)
        rand = [{n: drawn[n][i] for n in drawn} for i in range(samples)]
        points = [{**p, **r} for p in points for r in rand]
    if points == [{}]:
        raise ValueError("sweep: give at least one hyperparameter in grid or space")
    return {n: np.asarray([p[n] for p in points], np.float32) for n in points[0]}


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
        :func:`purerl.run.stats.iqm_ci`, resampling the config's seeds, bootstrap seed 0)."""
        from purerl.run import stats

        final = self.final_returns()
        rows = []
        for c in range(self.num_configs):
            x = final[c]
            ci = stats.iqm_ci(x)
            rows.append({**{n: float(v[c]) for n, v in self.values.items()}, "mean": float(np.mean(x)),
                         "std": float(np.std(x)), "iqm": ci.point, "iqm_low": ci.low, "iqm_high": ci.high,
                         "config_index": c})
        return sorted(rows, key=lambda r: -r["mean"])

    @property
    def best(self) -> dict:
        return {n: v for n, v in self.summary()[0].items() if n in self.values}

    def table(self) -> str:
        names = list(self.values)
        hdr = "".join(f"{n:>16}" for n in names) + f"{'mean':>10}{'std':>9}{'iqm':>10}  {'iqm 95% CI':<20}"
        lines = [f"{'rank':>4}" + hdr, "-" * (4 + len(hdr))]
        for i, r in enumerate(self.summary()):
            band = f"[{r['iqm_low']:.1f}, {r['iqm_high']:.1f}]"
            lines.append(f"{i + 1:>4}" + "".join(f"{r[n]:>16.4g}" for n in names)
                         + f"{r['mean']:>10.1f}{r['std']:>9.1f}{r['iqm']:>10.1f}  {band:<20}")
        return "\n".join(lines)


def run(algo: Any, config: Any, grid: dict[str, Sequence[float]] | None = None, *, space: dict | None = None,
        samples: int = 0, seeds: int = 1, seed: int = 0, chunk_size: int | None = None,
        devices: Sequence[Any] | None = None, metric: str = "episode_return", log=print) -> SweepResult:
    """Run ``algo`` (a module with ``Config``/``make_train``) for every combination and seed.

    ``chunk_size``: at most this many (config, seed) runs per program call (default: all at once);
    ``devices``: the devices to shard over (default: all local devices)."""
    import time

    values = combinations(grid, space, samples, jax.random.key(seed + 1))
    _check_fields(config, list(values))
    config = config.validate()
    for name, v in values.items():   # range-check every value through the Config's own validation
        for x in sorted({float(v.min()), float(v.max())}):
            config.replace(**{name: x}).validate()
    C = len(next(iter(values.values())))
    if seeds < 1:
        raise ValueError(f"sweep: seeds must be at least 1, got {seeds}")
    total = C * seeds
    devices = list(devices) if devices is not None else jax.local_devices()
    n_dev = len(devices)
    chunk = total if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"sweep: chunk_size must be at least 1, got {chunk_size}")
    chunk = min(chunk, total)
    chunk = int(math.ceil(chunk / n_dev) * n_dev)  # every chunk splits evenly over the devices
    n_chunks = int(math.ceil(total / chunk))
    if n_chunks > 1 and log is not None:
        log(f"sweep: {total} runs in {n_chunks} chunks of {chunk} (chunk_size={chunk_size})")

    # flat combination axis: run i is config i // seeds with seed key i % seeds
    keys = jax.random.split(jax.random.key(seed), seeds)
    flat_vals = {n: np.repeat(v, seeds) for n, v in values.items()}
    flat_keys = jnp.tile(keys, (C,)) if C > 1 else keys
    pad = n_chunks * chunk - total

    def one(vals, key):
        return algo.make_train(config.replace(**vals))(key).metrics

    batched = jax.jit(jax.vmap(one))
    mesh = Mesh(np.asarray(devices), ("runs",)) if n_dev > 1 else None

    def place(x):
        if mesh is None:
            return x
        return jax.device_put(x, NamedSharding(mesh, PartitionSpec("runs")))

    outs, compile_s, run_s = [], 0.0, 0.0
    compiled = None
    for c in range(n_chunks):
        sl = slice(c * chunk, (c + 1) * chunk)
        vals = {n: np.concatenate([v, np.repeat(v[-1:], pad)])[sl] for n, v in flat_vals.items()}
        ks = jnp.concatenate([flat_keys, jnp.repeat(flat_keys[-1:], pad, axis=0)])[sl]
        args = (jax.tree.map(lambda x: place(jnp.asarray(x)), vals), place(ks))
        if compiled is None:
            t0 = time.perf_counter()
            compiled = batched.lower(*args).compile()
            compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        outs.append(jax.device_get(jax.block_until_ready(compiled(*args))))
        run_s += time.perf_counter() - t0
    metrics = {k: np.concatenate([o[k] for o in outs])[:total] for k in outs[0]}
    metrics = {k: v.reshape((C, seeds) + v.shape[1:]) for k, v in metrics.items()}
    if metric not in metrics:
        raise ValueError(f"sweep: metric {metric!r} not among {sorted(metrics)}")
    return SweepResult(values, metrics, seeds, metric, compile_s, run_s, n_chunks, n_dev)
