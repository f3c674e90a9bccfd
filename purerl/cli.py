"""The ``purerl`` command: the outside-of-jit layer (progress bar, timing, run directory).

    purerl train ALGO --env ENV [--total-timesteps N] [--num-envs N] [--seeds K]
                     [--set field=value ...] [--out DIR] [--no-progress]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

ALGOS = {name: f"purerl.{name}" for name in ("ppo", "reinforce", "a2c", "a3c", "trpo", "ddpg", "td3", "sac")}


def _algo(name: str):
    if name not in ALGOS:
        raise SystemExit(f"purerl: unknown algorithm {name!r}; available: {', '.join(sorted(ALGOS))}")
    return importlib.import_module(ALGOS[name])


class ProgressBar:
    """Host side of the in-jit progress callback: a tqdm bar over env steps (per seed)."""

    def __init__(self, seeds: int):
        self.seeds = seeds
        self._lock = threading.Lock()
        self._done = 0
        self.steps_per_update = 0
        self.bar = None

    def start(self, num_updates: int, steps_per_update: int) -> None:
        """Open the bar (after compilation, so its rate is the run's)."""
        from tqdm.auto import tqdm

        self.steps_per_update = steps_per_update
        desc = "train" if self.seeds == 1 else f"train ({self.seeds} seeds)"
        self.bar = tqdm(total=num_updates * steps_per_update, unit="step", unit_scale=True, dynamic_ncols=True,
                        desc=desc, file=sys.stderr)

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

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, (np.ndarray, np.generic)):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    return x


def _write_metrics(out: Path, metrics: dict) -> None:
    """Metrics with axes ``[seed, log_point]`` as JSON (nested lists) and CSV (one row per seed and point)."""
    import numpy as np

    arrays = {k: np.asarray(v) for k, v in metrics.items()}
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


def _train_in_chunks(trainer, keys, args, out: Path, bar):
    """Run ``init`` then ``update`` in chunks of ``--checkpoint-every`` updates, saving the whole vmapped
    train state (and the metrics so far) after each chunk. Ctrl-C (SIGINT) lets the running chunk finish,
    saves it and returns ``None``. Returns ``(Result, compile_s, run_s)``."""
    import signal

    import jax
    import numpy as np

    from purerl.core.loop import Result, run_chunk
    from purerl.run import checkpoint as ckpt

    every = args.checkpoint_every
    if every < 1:
        raise ValueError(f"--checkpoint-every must be at least 1 update, got {every}")
    chunks = {}

    def chunk_fn(n):
        if n not in chunks:
            chunks[n] = jax.jit(jax.vmap(lambda s: run_chunk(trainer.update, s, n)))
        return chunks[n]

    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        t0 = time.perf_counter()
        state = jax.block_until_ready(jax.jit(jax.vmap(trainer.init))(keys))
        first = chunk_fn(min(every, trainer.num_updates))
        first.lower(state).compile()
        compile_s = time.perf_counter() - t0
        if bar is not None:
            bar.start(trainer.num_updates, trainer.steps_per_update)
        parts, done, run_s = [], 0, 0.0
        while done < trainer.num_updates:
            n = min(every, trainer.num_updates - done)
            t0 = time.perf_counter()
            state, metrics = jax.block_until_ready(chunk_fn(n)(state))
            run_s += time.perf_counter() - t0
            parts.append(jax.device_get(metrics))
            done += n
            ckpt.save(out / "checkpoints", state, step=done, meta={"algo": args.algo, "updates_done": done,
                                                                  "num_updates": trainer.num_updates})
            if bar is not None:
                bar({"update": done})
            if interrupted and done < trainer.num_updates:
                _write_metrics(out, {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]})
                print(f"purerl: interrupted; saved the state after {done}/{trainer.num_updates} updates to "
                      f"{out / 'checkpoints'} (metrics so far in {out}/metrics.csv)", file=sys.stderr)
                if bar is not None:
                    bar.close()
                return None, compile_s, run_s
    finally:
        signal.signal(signal.SIGINT, previous)
    metrics = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    return Result(state, metrics), compile_s, run_s


def train_command(args: argparse.Namespace) -> dict:
    import jax
    import numpy as np
    from flax import serialization

    from purerl.config import apply_overrides

    mod = _algo(args.algo)
    cfg = mod.Config()
    direct = {"env": args.env, "total_timesteps": args.total_timesteps, "num_envs": args.num_envs}
    cfg = cfg.replace(**{k: v for k, v in direct.items() if v is not None})
    cfg = apply_overrides(cfg, args.set or [])
    cfg = cfg.validate()
    seeds = args.seeds
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")

    # Seeds are always a vmapped axis (size 1 included): one code path, and a single seed gives exactly
    # the result of an unvmapped run. With one seed the bar also shows the latest return; with many it
    # shows steps only, so the callback fires once per report rather than once per seed.
    bar = None if args.no_progress else ProgressBar(seeds)
    trainer = mod.make(cfg, progress=bar, progress_metrics=("episode_return",) if seeds == 1 else ())
    total = trainer.num_updates * trainer.steps_per_update
    keys = jax.random.split(jax.random.key(args.seed), seeds)

    out = Path(args.out) if args.out else Path("runs") / f"{args.algo}-{cfg.env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.checkpoint_every:
        result, compile_s, run_s = _train_in_chunks(trainer, keys, args, out, bar)
        if result is None:
            return {"interrupted": True}
    else:
        t0 = time.perf_counter()
        compiled = jax.jit(jax.vmap(trainer.train)).lower(keys).compile()
        compile_s = time.perf_counter() - t0
        if bar is not None:
            bar.start(trainer.num_updates, trainer.steps_per_update)
        t0 = time.perf_counter()
        result = jax.block_until_ready(compiled(keys))
        jax.effects_barrier()
        run_s = time.perf_counter() - t0
    if bar is not None:
        bar.close()

    eval_keys = jax.random.split(jax.random.key(args.seed + 1), seeds)
    eval_out = jax.jit(jax.vmap(lambda s, k: trainer.evaluate(s, k, args.eval_episodes)))(result.state, eval_keys)

    ret = np.asarray(result.metrics["episode_return"])
    tail = max(1, ret.shape[1] // 20)  # final return: mean over the last 5% of log points, per seed
    final = np.nanmean(ret[:, -tail:], axis=1)
    eval_mean = np.asarray(eval_out["mean"])
    summary = {
        "algo": args.algo, "env": cfg.env, "seeds": seeds, "env_steps_per_seed": int(total),
        "final_return_mean": float(np.mean(final)), "final_return_std": float(np.std(final)),
        "eval_return_mean": float(np.mean(eval_mean)), "eval_return_std": float(np.std(eval_mean)),
        "compile_s": compile_s, "run_s": run_s, "env_steps_per_s": total * seeds / run_s,
    }

    out.mkdir(parents=True, exist_ok=True)
    config_dict = {f.name: _jsonable(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    (out / "config.json").write_text(json.dumps({"algo": args.algo, "seeds": seeds, "seed": args.seed,
                                                 "config": config_dict}, indent=2))
    _write_metrics(out, result.metrics)
    obs_rms = jax.vmap(trainer.env.obs_normalizer)(result.state.env_state)
    (out / "params.msgpack").write_bytes(serialization.to_bytes({"params": result.state.params,
                                                                 "obs_rms": obs_rms}))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    pm = "±"
    print(f"{args.algo} on {cfg.env}: {seeds} seed(s) x {total:,} env steps")
    print(f"  final return   {summary['final_return_mean']:.1f} {pm} {summary['final_return_std']:.1f}"
          f"   (mean of the last 5% of updates; over seeds)")
    print(f"  eval return    {summary['eval_return_mean']:.1f} {pm} {summary['eval_return_std']:.1f}"
          f"   ({args.eval_episodes} deterministic episodes per seed)")
    print(f"  compile        {compile_s:.2f} s")
    print(f"  run            {run_s:.2f} s   ({summary['env_steps_per_s']:,.0f} env steps/s)")
    print(f"  wrote          {out}/  (config.json, metrics.csv, metrics.json, params.msgpack, summary.json)")
    return summary


def _parse_grid(items: list[str] | None) -> dict[str, list[float]]:
    grid = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--grid expects field=v1,v2,..., got {item!r}")
        name, vals = item.split("=", 1)
        try:
            grid[name.strip().replace("-", "_")] = [float(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--grid {name}: values must be numbers, got {vals!r}") from None
    return grid


def _parse_space(items: list[str] | None) -> dict[str, tuple]:
    space = {}
    for item in items or []:
        name, _, spec = item.partition("=")
        parts = spec.split(":")
        if not name or len(parts) not in (2, 3):
            raise ValueError(f"--random expects field=low:high or field=low:high:log, got {item!r}")
        space[name.strip().replace("-", "_")] = (float(parts[0]), float(parts[1]), *parts[2:])
    return space


def sweep_command(args: argparse.Namespace) -> Any:
    from purerl import sweep
    from purerl.config import apply_overrides

    mod = _algo(args.algo)
    cfg = mod.Config()
    direct = {"env": args.env, "total_timesteps": args.total_timesteps, "num_envs": args.num_envs}
    cfg = apply_overrides(cfg.replace(**{k: v for k, v in direct.items() if v is not None}), args.set or [])
    res = sweep.run(mod, cfg, _parse_grid(args.grid), space=_parse_space(args.random), samples=args.samples,
                    seeds=args.seeds, seed=args.seed, chunk_size=args.chunk_size)
    print(f"{args.algo} on {cfg.env}: {res.num_configs} config(s) x {res.seeds} seed(s) on {res.devices} device(s), "
          f"{res.chunks} chunk(s); compile {res.compile_s:.1f} s, run {res.run_s:.1f} s")
    print(f"final {res.metric} (mean of the last 5% of log points), ranked:")
    print(res.table())
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{args.algo}-{cfg.env.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({
        "algo": args.algo, "env": cfg.env, "seeds": res.seeds, "values": {k: v.tolist() for k, v in res.values.items()},
        "summary": res.summary(), "best": res.best, "compile_s": res.compile_s, "run_s": res.run_s,
        "final_returns": res.final_returns().tolist()}, indent=2))
    import numpy as np

    np.savez_compressed(out / "metrics.npz", **{k: np.asarray(v) for k, v in res.metrics.items()},
                        **{f"value_{k}": v for k, v in res.values.items()})
    print(f"  wrote {out}/  (sweep.json, metrics.npz with [config, seed, log point] arrays)")
    return res


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="purerl", description="Fused JAX policy-gradient RL.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an agent", description="Train ALGO on ENV; every Config field "
                       "can be set with --set field=value.")
    t.add_argument("algo", help=f"algorithm: {', '.join(sorted(ALGOS))}")
    t.add_argument("--env", default=None, help="env id (gymnax name or brax/<name>); default: the Config's")
    t.add_argument("--total-timesteps", type=int, default=None, help="env steps per seed")
    t.add_argument("--num-envs", type=int, default=None, help="parallel environments")
    t.add_argument("--seeds", type=int, default=1, help="independent seeds, vmapped in one program")
    t.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    t.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override any Config field (repeatable)")
    t.add_argument("--out", default=None, help="run directory (default runs/ALGO-ENV-TIME)")
    t.add_argument("--eval-episodes", type=int, default=10, help="deterministic evaluation episodes per seed")
    t.add_argument("--no-progress", action="store_true", help="no live progress bar")
    t.add_argument("--checkpoint-every", type=int, default=0, metavar="UPDATES",
                   help="run in chunks of this many updates (log points), saving the whole train state to "
                   "OUT/checkpoints after each; Ctrl-C then saves before exiting (default 0: one fused program)")
    w = sub.add_parser("sweep", help="sweep numeric hyperparameters x seeds in one vmapped program",
                       description="Every combination of --grid values (and --samples random draws from "
                       "--random ranges) x --seeds, as one jitted program sharded over the local devices.")
    w.add_argument("algo", help=f"algorithm: {', '.join(sorted(ALGOS))}")
    w.add_argument("--env", default=None, help="env id; default: the Config's")
    w.add_argument("--total-timesteps", type=int, default=None, help="env steps per run")
    w.add_argument("--num-envs", type=int, default=None, help="parallel environments per run")
    w.add_argument("--grid", action="append", metavar="FIELD=V1,V2,...", help="grid values (repeatable)")
    w.add_argument("--random", action="append", metavar="FIELD=LOW:HIGH[:log]",
                   help="random range, uniform or log-uniform (repeatable; with --samples)")
    w.add_argument("--samples", type=int, default=0, help="random draws from the --random ranges")
    w.add_argument("--seeds", type=int, default=4, help="seeds per config")
    w.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    w.add_argument("--chunk-size", type=int, default=None, help="at most this many runs per program call")
    w.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a base Config field")
    w.add_argument("--out", default=None, help="output directory (default runs/sweep-ALGO-ENV-TIME)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            if train_command(args).get("interrupted"):
                return 130
        elif args.command == "sweep":
            sweep_command(args)
    except (ValueError, TypeError) as e:
        print(f"purerl: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
