"""Throughput: compile and run time of a training program, its env steps per second, and the env-only ceiling.

    purerl bench ppo --env CartPole-v1 --num-envs 4,64 --seeds 1,8 --steps 100000 [--plot bench.png]

    from purerl.run import bench
    rows = bench.run_bench("ppo", ppo.Config(env="CartPole-v1", total_timesteps=100_000), [4, 64], [1, 8])
    print(bench.format_table(rows, bench.device_info()))

For each point (num_envs x seeds) the training program (``make_train(config)``, vmapped over the seeds) is
compiled, called once to warm up and then timed (the run time is the second call, or the median of
``repeats`` calls after the first); env steps/s is every env step the program takes (warm-up steps
included, all seeds) over that run time. The ceiling is the same env stack (``trainer.env``: the
``purerl.envs.make`` wrappers the algorithm uses) stepped with uniformly random actions for as many steps,
with the same envs and seeds, in a jitted scan and nothing else: the most steps/s the env allows, so
``train / ceiling`` is the share of the time the learning leaves to the env.

This module is also the timing code of the scripts in ``benchmarks/`` (:func:`measure`, :func:`interleaved`,
:func:`env_ceiling_fn`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from purerl.arguments import check_count

__all__ = ["device_info", "env_ceiling_fn", "format_table", "interleaved", "measure", "plot_bench", "run_bench",
           "steps_per_seed", "steps_text", "validate_points", "write_report"]


def measure(fn, args, repeats: int, *, warmup: int = 0, compiler_options: dict | None = None):
    """``(compile_s, median run_s, output)`` of ``jax.jit(fn)(args)``: compile time (trace + XLA) is taken
    apart from the run time, which is the median of ``repeats`` (at least 1) timed calls of the compiled
    program after ``warmup`` untimed ones. ``compiler_options``: XLA options (e.g.
    :func:`purerl.compiling.compile_options`)."""
    import jax

    repeats = check_count(repeats, "repeats", where="bench")
    warmup = check_count(warmup, "warmup", 0, where="bench")

    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(args).compile(compiler_options=compiler_options or None)
    compile_s = time.perf_counter() - t0
    out = None
    for _ in range(warmup):
        out = jax.block_until_ready(compiled(args))
        jax.effects_barrier()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(args))
        jax.effects_barrier()  # host callbacks (progress) finished too
        times.append(time.perf_counter() - t0)
    return compile_s, statistics.median(times), out


def interleaved(fns: dict, args, repeats: int) -> dict:
    """Median run time of each compiled function in ``fns``, timed in alternation (round-robin, ``repeats``
    rounds after one warm-up call each), so that slow drifts of the machine hit every variant alike:
    the way to compare variants that differ by a few percent."""
    import jax

    repeats = check_count(repeats, "repeats", where="bench")
    compiled = {name: jax.jit(fn).lower(args).compile() for name, fn in fns.items()}
    for c in compiled.values():
        jax.block_until_ready(c(args))
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, c in compiled.items():
            t0 = time.perf_counter()
            jax.block_until_ready(c(args))
            jax.effects_barrier()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def steps_per_seed(trainer: Any) -> int:
    """The env steps per seed ``trainer.train`` takes (warm-up included): whole updates, so at most
    ``total_timesteps`` on-policy."""
    return int(trainer.env_steps_before + trainer.num_log_points * trainer.steps_per_log_point)


def steps_text(asked: int, points: Sequence[tuple[int, int]]) -> str:
    """The env steps per seed for a table's header: ``asked`` (``total_timesteps``) and, where they differ from
    it, the steps each ``(num_envs, steps)`` point runs in whole updates."""
    run = dict(points)
    if set(run.values()) == {asked}:
        return f"{asked:,} env steps per seed"
    if len(set(run.values())) == 1:
        return f"{asked:,} env steps per seed asked, {next(iter(run.values())):,} run (whole updates)"
    each = ", ".join(f"{s:,} at num_envs {n}" for n, s in run.items())
    return f"{asked:,} env steps per seed asked; run in whole updates: {each}"


def env_ceiling_fn(trainer: Any):
    """``(run(key) -> episodes finished, env steps per seed)``: ``trainer.env`` stepped with uniformly random
    actions (any action of a discrete space, a uniform draw from a box's bounds) for as many env steps as
    ``trainer.train`` takes (warm-up included), through the same rollout loop (auto-reset, episode
    statistics), with no learning."""
    import jax
    import numpy as np

    from purerl.core.trajectory import rollout

    env = trainer.env
    n = env.num_envs
    steps = steps_per_seed(trainer)
    inner = max(1, trainer.steps_per_log_point // n)      # vector steps per rollout call (an update's)
    outer, rest = divmod(steps // n, inner)
    space = env.action_space
    if not env.is_discrete:
        low = np.broadcast_to(np.asarray(space.low, np.float32), (n, *space.shape))
        high = np.broadcast_to(np.asarray(space.high, np.float32), (n, *space.shape))

    def random_policy(obs, key, memory):
        if env.is_discrete:
            return jax.random.randint(key, (n,), 0, env.action_dim), {}, memory
        return jax.random.uniform(key, (n, *space.shape), minval=low, maxval=high), {}, memory

    def run(key):
        env_state, obs = env.reset(key)

        def body(carry, k):
            env_state, obs, total = carry
            ro = rollout(env, random_policy, env_state, obs, k, inner)
            return (ro.env_state, ro.obs, total + ro.tally.count), None

        (env_state, obs, episodes), _ = jax.lax.scan(body, (env_state, obs, 0.0),
                                                     jax.random.split(jax.random.fold_in(key, 1), outer))
        if rest:
            ro = rollout(env, random_policy, env_state, obs, jax.random.fold_in(key, 2), rest)
            episodes = episodes + ro.tally.count
        return episodes

    return run, (outer * inner + rest) * n


def device_info() -> dict:
    """The default device and the jax version, as every table reports them."""
    import jax

    d = jax.devices()[0]
    return {"platform": d.platform, "device_kind": d.device_kind, "device_count": jax.device_count(),
            "jax": jax.__version__}


def _check_counts(num_envs: Sequence[int], seeds: Sequence[int]) -> None:
    if not num_envs or not seeds:
        raise ValueError("bench: give at least one value in --num-envs and in --seeds")
    for name, values in (("--num-envs", num_envs), ("--seeds", seeds)):
        for v in values:
            check_count(v, name, where="bench")
        if len(set(values)) != len(values):
            raise ValueError(f"bench: {name} lists a value twice: {','.join(map(str, values))}")


def validate_points(module: Any, config: Any, num_envs: Sequence[int], seeds: Sequence[int]) -> list:
    """The trainer of every ``num_envs`` value, in order, built from the validated config: a bad value is a
    ``ValueError`` naming the option, before anything is compiled."""
    _check_counts(num_envs, seeds)
    trainers = []
    for n in num_envs:
        try:  # make also checks what only the algorithm checks (e.g. fewer steps than one update)
            trainers.append(module.make(config.replace(num_envs=int(n))))
        except (ValueError, TypeError) as e:
            hint = " (`purerl bench` sets it with --steps)" if "total_timesteps" in str(e) else ""
            raise type(e)(f"bench: at --num-envs {n}: {e}{hint}") from None
    return trainers


def run_bench(algo: str, config: Any, num_envs: Sequence[int], seeds: Sequence[int], *, repeats: int = 1,
              seed: int = 0, log=None, trainers: Sequence[Any] | None = None) -> list[dict]:
    """One row per (num_envs, seeds) point: ``total_timesteps`` (asked per seed), ``steps_per_seed`` (run per
    seed, in whole updates: :func:`steps_per_seed`), ``compile_s``, ``run_s``, ``env_steps`` (all seeds), ``steps_per_s``
    (= ``env_steps / run_s``), the ceiling's ``ceiling_compile_s``, ``ceiling_run_s`` and
    ``ceiling_steps_per_s``, and ``train_over_ceiling``; ``repeats`` (at least 1) timed calls per program after
    a warm-up call, their median reported. The training program is compiled with the options the
    command line uses (:func:`purerl.compiling.compile_options`), the ceiling with the same. ``trainers``: the
    points' trainers from :func:`validate_points`, when the caller validated them already."""
    import jax

    from purerl.compiling import compile_options
    from purerl.run.devices import split_runs
    from purerl.algorithms import module as algo_module

    repeats = check_count(repeats, "repeats", where="bench")
    if trainers is None:
        trainers = validate_points(algo_module(algo), config, num_envs, seeds)
    else:
        _check_counts([t.config.num_envs for t in trainers], seeds)
    options = compile_options()
    rows = []
    for trainer in trainers:
        cfg = trainer.config
        ceil, ceil_steps = env_ceiling_fn(trainer)
        steps = steps_per_seed(trainer)
        for s in seeds:
            keys = split_runs(jax.random.split(jax.random.key(seed), int(s)))   # over the CPU's cores
            c_s, r_s, _ = measure(lambda k: jax.vmap(lambda kk: trainer.train(kk).metrics)(k), keys, repeats,
                                  warmup=1, compiler_options=options)
            cc_s, cr_s, _ = measure(jax.vmap(ceil), keys, repeats, warmup=1, compiler_options=options)
            row = {"algo": algo, "env": cfg.env, "num_envs": cfg.num_envs, "seeds": int(s),
                   "total_timesteps": int(cfg.total_timesteps), "steps_per_seed": steps,
                   "env_steps": steps * int(s), "compile_s": c_s, "run_s": r_s,
                   "steps_per_s": steps * int(s) / r_s, "ceiling_env_steps": ceil_steps * int(s),
                   "ceiling_compile_s": cc_s, "ceiling_run_s": cr_s,
                   "ceiling_steps_per_s": ceil_steps * int(s) / cr_s}
            row["train_over_ceiling"] = row["steps_per_s"] / row["ceiling_steps_per_s"]
            rows.append(row)
            if log is not None:
                log(f"  num_envs {cfg.num_envs:>6} seeds {int(s):>5}: compile {c_s:.2f} s, run {r_s:.2f} s, "
                    f"{row['steps_per_s']:,.0f} env steps/s (ceiling {row['ceiling_steps_per_s']:,.0f})")
    return rows


def format_table(rows: Sequence[dict], device: dict, repeats: int = 1) -> str:
    """The rows as a text table under a line naming the device and the jax version."""
    d = device
    head = (f"device: {d['platform']} ({d['device_kind']}, {d['device_count']} device(s)), jax {d['jax']}; "
            f"run s = {'the second call' if repeats == 1 else f'median of {repeats} calls after the first'}")
    if rows:
        points = [(r["num_envs"], r["steps_per_seed"]) for r in rows]
        head += (f"; {rows[0]['algo']} on {rows[0]['env']}, "
                 f"{steps_text(rows[0].get('total_timesteps', rows[0]['steps_per_seed']), points)}")
    hdr = (f"{'num_envs':>9}{'seeds':>7}{'compile s':>11}{'run s':>9}{'env steps/s':>14}"
           f"{'ceiling steps/s':>17}{'train/ceiling':>15}")
    lines = [head, hdr, "-" * len(hdr)]
    for r in rows:
        lines.append(f"{r['num_envs']:>9}{r['seeds']:>7}{r['compile_s']:>11.2f}{r['run_s']:>9.2f}"
                     f"{r['steps_per_s']:>14,.0f}{r['ceiling_steps_per_s']:>17,.0f}{r['train_over_ceiling']:>15.3f}")
    return "\n".join(lines)


def write_report(out: str | Path, config: Any, rows: Sequence[dict], device: dict, repeats: int = 1) -> Path:
    """Write a benchmark as JSON to ``out`` (what ``purerl bench`` writes; parent directories are created):

        device    :func:`device_info`: platform, device_kind, device_count, jax
        algo, env the benchmarked algorithm and env (those of the rows)
        repeats   the timed calls per point, their median reported
        config    the benchmarked config (:func:`purerl.config.config_to_dict`), before each point's
                  ``num_envs``
        rows      :func:`run_bench`'s rows, one per (num_envs, seeds) point

    Returns the path."""
    import json

    from purerl.config import config_to_dict

    rows = list(rows)
    if not rows:
        raise ValueError("bench.write_report: `rows` is empty; give run_bench's rows")
    body = {"device": dict(device), "algo": rows[0]["algo"], "env": rows[0]["env"], "repeats": repeats,
            "config": config_to_dict(config), "rows": rows}
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2))
    return path


def plot_bench(rows: Sequence[dict], device: dict, out_png: str | Path) -> Path:
    """Env steps/s against num_envs, one colour per seed count: training solid, the env-only ceiling dashed
    (log-log). Writes ``out_png`` and returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for s in sorted({r["seeds"] for r in rows}):
        pts = sorted((r for r in rows if r["seeds"] == s), key=lambda r: r["num_envs"])
        x = [r["num_envs"] for r in pts]
        (line,) = ax.plot(x, [r["steps_per_s"] for r in pts], "o-", label=f"train, {s} seed{'s' * (s != 1)}")
        ax.plot(x, [r["ceiling_steps_per_s"] for r in pts], "s--", color=line.get_color(), alpha=0.7,
                label=f"env only, {s} seed{'s' * (s != 1)}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("num_envs")
    ax.set_ylabel("env steps / s (all seeds)")
    algo_env = f"{rows[0]['algo']} on {rows[0]['env']}: " if rows else ""
    ax.set_title(f"{algo_env}{device['platform']} ({device['device_kind']}), jax {device['jax']}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
