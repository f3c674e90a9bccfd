"""Every algorithm's preset config on its classic-control env, 8 seeds as one vmapped program: learning curves
and final returns as the IQM with a 95% stratified-bootstrap CI, the budget and the wall time.

    python benchmarks/algorithms.py                 # every run below (about 15-20 minutes on a 2-core CPU)
    python benchmarks/algorithms.py --only ppo,sac  # these algorithms' runs only
    python benchmarks/algorithms.py --tiny --out-dir /tmp/x   # seconds-sized budgets (the tests' mode)

Each run is a shipped preset (``purerl/presets/NAME.toml``, applied to the algorithm's Config), trained as
``jax.jit(jax.vmap(train))(keys)`` with ``--seeds`` keys split from ``jax.random.key(--seed)``; the compile
(trace + XLA) is timed apart from the run (the first call of the compiled program, which is the whole run:
``purerl.run.bench.measure``). Then each seed's final state is evaluated deterministically for
``--eval-episodes`` episodes.

The curve is the metric the algorithm logs per log point: on-policy, ``episode_return`` (the mean return of
the training episodes, with the policy's sampling noise, that finished in that update); off-policy,
``eval_return`` (the deterministic policy's mean return over ``eval_episodes`` episodes at the end of each
log point). Per seed its final score is ``purerl.run.stats.final_scores`` (the mean over the last 5% of the
log points); the IQM over seeds and its 95% stratified-bootstrap percentile interval are
``purerl.run.stats.iqm_ci`` (10,000 resamples for a final number, 2,000 at each of at most 100 points of a
curve).

Writes ``docs/results/algorithms.json`` (with the date, the machine, the jax version and the command) and
``docs/figures/algorithms/ALGO.png``; the algorithm pages of the documentation show the numbers from the JSON
(the ``<!-- results: ALGO -->`` placeholder of docs/hooks.py). ``--only`` keeps the other algorithms' entries
of an existing results file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from provenance import describe, provenance  # noqa: E402

from purerl import algorithms  # noqa: E402

# (algorithm, preset): CartPole-v1 for the discrete-action runs (the on-policy algorithms, PQN, discrete SAC, DQN),
# Pendulum-v1 for the continuous off-policy ones and PPO's continuous run.
RUNS = [("ppo", "ppo-cartpole"), ("ppo", "ppo-pendulum"), ("reinforce", "reinforce-cartpole"),
        ("a2c", "a2c-cartpole"), ("a3c", "a3c-cartpole"), ("trpo", "trpo-cartpole"), ("pqn", "pqn-cartpole"),
        ("ddpg", "ddpg-pendulum"), ("td3", "td3-pendulum"), ("sac", "sac-pendulum"),
        ("sac_discrete", "sac_discrete-cartpole"), ("dqn", "dqn-cartpole")]
ALGOS = tuple(a.name for a in algorithms.ALGORITHMS)  # the registry's order: on-policy first
MAX_POINTS = 100
RESULTS = ROOT / "docs" / "results" / "algorithms.json"
FIGURES = ROOT / "docs" / "figures" / "algorithms"

METRIC_LABELS = {
    "episode_return": "training episode return (undiscounted, sampled actions)",
    "eval_return": "evaluation return (deterministic policy, undiscounted)",
}


def tiny_overrides(algo: str, cfg) -> dict:  # noqa: ANN001
    """Seconds-sized budgets for the tests: a few updates (on-policy) or 1,500 steps (off-policy)."""
    if algo in algorithms.OFF_POLICY:
        return {"total_timesteps": 1_500, "learning_starts": 500, "num_log_points": 3, "eval_episodes": 2}
    batch = cfg.num_envs * getattr(cfg, "num_steps", 1) * getattr(cfg, "num_workers", 1)
    return {"total_timesteps": 4 * batch}


def subsample(n: int, most: int = MAX_POINTS) -> np.ndarray:
    """At most ``most`` evenly spaced indices of ``n`` log points, the last one always among them."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, most)).astype(int))


def _floats(x: np.ndarray) -> list:
    """A JSON list: NaN (no finished episode yet) as null."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(x, dtype=np.float64).reshape(-1)]


def run_one(algo: str, preset_name: str, seeds: int, seed: int, eval_episodes: int, tiny: bool) -> dict:
    import importlib

    import jax

    from purerl import presets
    from purerl.run import stats
    from purerl.run.bench import measure

    module = importlib.import_module(f"purerl.{algo}")
    preset = presets.load(preset_name)
    cfg = preset.apply(module.Config)
    if tiny:
        cfg = cfg.replace(**tiny_overrides(algo, cfg))
    trainer = module.make(cfg)
    keys = jax.random.split(jax.random.key(seed), seeds)
    compile_s, run_s, res = measure(jax.vmap(trainer.train), keys, repeats=1)
    evaluate = jax.jit(jax.vmap(lambda s, k: trainer.evaluate(s, k, eval_episodes)))
    ev = evaluate(res.state, jax.random.split(jax.random.key(seed + 1), seeds))
    eval_per_seed = np.asarray(ev["returns"], dtype=np.float64).mean(axis=1)

    metrics = jax.device_get(res.metrics)
    metric = "eval_return" if "eval_return" in metrics else "episode_return"
    values = np.asarray(metrics[metric], dtype=np.float64)                   # [seeds, log points]
    steps = np.asarray(metrics["env_steps"], dtype=np.float64)[0]
    final = stats.final_scores(values)                                        # [seeds]
    final_ci = stats.iqm_ci(final)
    eval_ci = stats.iqm_ci(eval_per_seed)
    idx = subsample(values.shape[1])
    curve = stats.iqm_ci(values[:, None, idx], reps=stats.CURVE_REPS)
    budget = {"total_timesteps": int(cfg.total_timesteps), "env_steps_per_seed": int(steps[-1]),
              "num_envs": int(cfg.num_envs), "seeds": seeds, "log_points": int(values.shape[1])}
    for name in ("num_steps", "num_workers", "num_epochs", "num_minibatches", "batch_size", "learning_starts",
                 "num_log_points", "eval_episodes", "hidden_sizes"):
        if hasattr(cfg, name):
            v = getattr(cfg, name)
            budget[name] = list(v) if isinstance(v, tuple) else v
    return {
        "algo": algo, "preset": preset_name, "env": cfg.env, "metric": metric, "budget": budget,
        "config_changes": {**preset.config, **(tiny_overrides(algo, preset.apply(module.Config)) if tiny else {})},
        "compile_s": compile_s, "run_s": run_s,
        "final": {"per_seed": _floats(final), "iqm": final_ci.point, "low": final_ci.low, "high": final_ci.high,
                  "rule": "per seed: mean of the metric over the last 5% of the log points (at least one)"},
        "eval": {"episodes": eval_episodes, "per_seed": _floats(eval_per_seed), "iqm": eval_ci.point,
                 "low": eval_ci.low, "high": eval_ci.high},
        "curve": {"env_steps": _floats(steps[idx]), "iqm": _floats(curve.point), "low": _floats(curve.low),
                  "high": _floats(curve.high), "per_seed": [_floats(v) for v in values[:, idx]]},
    }


def steps_axis(ax) -> None:  # noqa: ANN001 - a matplotlib Axes
    """The x axis of a learning curve: environment steps per seed, ticks as 50k, 1.5M."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(6))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: "0" if v == 0 else f"{v / 1e6:g}M" if abs(v) >= 1e6 else f"{v / 1e3:g}k"))
    ax.set_xlabel("environment steps per seed")


def _num(x: float | None) -> float:
    return np.nan if x is None else x


def plot(algo: str, runs: list[dict], prov: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.4, 5.2 * len(runs)), 4.1), dpi=110)
    FigureCanvasAgg(fig)
    for i, r in enumerate(runs):
        ax = fig.add_subplot(1, len(runs), i + 1)
        c = r["curve"]
        x = np.asarray(c["env_steps"])
        for k, seed_curve in enumerate(c["per_seed"]):
            ax.plot(x, [_num(v) for v in seed_curve], color="0.6", linewidth=0.7, alpha=0.6,
                    label="single seeds" if k == 0 else None)
        iqm = np.asarray([_num(v) for v in c["iqm"]])
        ax.fill_between(x, [_num(v) for v in c["low"]], [_num(v) for v in c["high"]], color="C0", alpha=0.25,
                        linewidth=0, label="95% CI (stratified bootstrap)")
        ax.plot(x, iqm, color="C0", linewidth=1.8, label="IQM")
        steps_axis(ax)
        ax.set_ylabel(METRIC_LABELS[r["metric"]], fontsize=8)
        ax.set_title(f"{r['env']} (preset {r['preset']})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    b = runs[0]["budget"]
    fig.suptitle(f"{algo.upper().replace('_', ' ')}: IQM over {b['seeds']} seeds (one vmapped program) with its 95% CI\n"
                 f"benchmarks/algorithms.py, {prov['date'][:10]}, jax {prov['jax']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=None, help=f"comma-separated algorithms from {','.join(ALGOS)}")
    ap.add_argument("--seeds", type=int, default=8, help="seeds per run, vmapped in one program (at least 8 for "
                                                         "the pages)")
    ap.add_argument("--seed", type=int, default=0, help="the key the seeds are split from")
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument("--tiny", action="store_true", help="seconds-sized budgets (the tests' mode)")
    ap.add_argument("--plot-only", action="store_true", help="redraw the figures from the results file, train "
                                                              "nothing")
    ap.add_argument("--out-dir", default=None, help="write results/algorithms.json and figures/algorithms/ under "
                                                    "this folder instead of docs/")
    args = ap.parse_args(argv)
    only = args.only.split(",") if args.only else list(ALGOS)
    unknown = [a for a in only if a not in ALGOS]
    if unknown:
        ap.error(f"--only: unknown algorithm(s) {', '.join(unknown)}; choose from {', '.join(ALGOS)}")
    if args.seeds < 1:
        ap.error(f"--seeds must be at least 1, got {args.seeds}")
    results = Path(args.out_dir) / "results" / "algorithms.json" if args.out_dir else RESULTS
    figures = Path(args.out_dir) / "figures" / "algorithms" if args.out_dir else FIGURES
    results.parent.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)

    if args.plot_only:
        data = json.loads(results.read_text())
        for algo in only:
            if data["runs"].get(algo):
                plot(algo, data["runs"][algo], data["runs"][algo][0]["provenance"], figures / f"{algo}.png")
                print(f"drew {figures / f'{algo}.png'}")
        return
    prov = provenance(argv if argv is None else [str(Path(__file__).relative_to(ROOT)), *argv])
    print(describe(prov), "(TINY budgets)" if args.tiny else "", flush=True)
    old = json.loads(results.read_text()) if results.is_file() and args.only else {}
    out = {"runs": {a: v for a, v in old.get("runs", {}).items() if a not in only}}
    t_all = time.perf_counter()
    for algo in only:
        runs = []
        for a, preset in RUNS:
            if a != algo:
                continue
            t = time.perf_counter()
            r = run_one(a, preset, args.seeds, args.seed, args.eval_episodes, args.tiny)
            r["provenance"] = prov
            r["tiny"] = args.tiny
            runs.append(r)
            f = r["final"]
            print(f"  {a:<12} {preset:<21} {r['budget']['env_steps_per_seed']:>9,} steps x {args.seeds} seeds: "
                  f"final {r['metric']} IQM {f['iqm']:8.1f} [{f['low']:.1f}, {f['high']:.1f}], eval IQM "
                  f"{r['eval']['iqm']:.1f}; compile {r['compile_s']:.1f} s, run {r['run_s']:.1f} s "
                  f"({time.perf_counter() - t:.0f} s in all)", flush=True)
        out["runs"][algo] = runs
        plot(algo, runs, prov, figures / f"{algo}.png")
        results.write_text(json.dumps(out, indent=1) + "\n")   # after every algorithm: a cut run keeps its rows
    print(f"wrote {results} and {figures}/ ({time.perf_counter() - t_all:.0f} s)")


if __name__ == "__main__":
    main()
