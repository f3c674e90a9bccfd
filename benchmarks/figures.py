"""The README's two figures: learning curves of several algorithms (mean and 95% band over seeds) and speed
against the peers.

    python benchmarks/figures.py                  # both; the speed figure needs benchmarks/results/peers.json
    python benchmarks/figures.py --only curves    # or --only speed; --seeds N (default 8)

Learning curves: each algorithm's default Config with only ``env`` set (and its budget; the off-policy ones
with 64x64 networks), all seeds as one vmapped program (cached in ``benchmarks/results/curves/``), the per-update ``episode_return`` (on-policy, CartPole-v1) or the periodic deterministic
``eval_return`` (off-policy, Pendulum-v1). Speed: the medians that ``benchmarks/peers.py`` wrote (run and
compile time per workload, purerl beside rejax and PureJaxRL's quoted figures). Writes
``docs/figures/learning_curves.png`` and ``docs/figures/speed.png`` and prints the numbers they show.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "figures"

# per env: (module, total env steps per seed); the off-policy ones with 64x64 networks (the peers benchmark's
# size: the default 256x256 makes the 8-seed figure take half an hour on a 2-core CPU)
CURVES = {
    "CartPole-v1": [("ppo", 500_000), ("a2c", 500_000), ("trpo", 500_000), ("reinforce", 1_000_000)],
    "Pendulum-v1": [("sac", 20_000), ("td3", 30_000), ("ddpg", 30_000)],
}
OVERRIDES = {"sac": {"hidden_sizes": (64, 64)}, "td3": {"hidden_sizes": (64, 64)}, "ddpg": {"hidden_sizes": (64, 64)}}
CACHE = ROOT / "benchmarks" / "results" / "curves"

# PureJaxRL is a script, not a package: its figures are quoted in benchmarks/peers.py's table.
PUREJAXRL_QUOTED = {"ppo1": (3.66, 7.40), "ppo16": (42.2, None), "sac": (None, None)}


def learning_curves(seeds: int) -> dict:
    import importlib

    import jax

    from purerl.run.plot import mean_and_band

    out = {}
    for env, algos in CURVES.items():
        for name, steps in algos:
            mod = importlib.import_module(f"purerl.{name}")
            cfg = mod.Config(env=env, total_timesteps=steps, **OVERRIDES.get(name, {}))
            cached = CACHE / f"{name}_{env}_{steps}_{seeds}.npz"   # a rerun draws without training again
            t = time.perf_counter()
            if cached.is_file():
                data = dict(np.load(cached))
                metric, values, x = str(data["metric"]), data["values"], data["x"]
            else:
                train = jax.jit(jax.vmap(mod.make_train(cfg)))
                metrics = jax.device_get(train(jax.random.split(jax.random.key(0), seeds)).metrics)
                metric = "eval_return" if "eval_return" in metrics else "episode_return"
                values = np.asarray(metrics[metric], dtype=np.float64)
                x = np.asarray(metrics["env_steps"], dtype=np.float64)[0]
                CACHE.mkdir(parents=True, exist_ok=True)
                np.savez(cached, metric=metric, values=values, x=x)
            seconds = time.perf_counter() - t
            mean, low, high = mean_and_band(values)
            out[(env, name)] = (x, mean, low, high, metric)
            print(f"{name:<10} {env:<12} {seeds} seeds x {steps:>9,} steps: final {metric} {mean[-1]:8.1f} "
                  f"[{low[-1]:.1f}, {high[-1]:.1f}]  ({seconds:.0f} s with compile)", flush=True)
    return out


def plot_curves(curves: dict, seeds: int, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.8), dpi=110)
    FigureCanvasAgg(fig)
    for i, env in enumerate(CURVES):
        ax = fig.add_subplot(1, len(CURVES), i + 1)
        for (e, name), (x, mean, low, high, metric) in curves.items():
            if e != env:
                continue
            (line,) = ax.plot(x, mean, label=name.upper(), linewidth=1.6)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(f"{env}: {'episode return' if env == 'CartPole-v1' else 'deterministic evaluation'}")
        ax.set_xlabel("environment steps per seed")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Default configs with only env set (off-policy: 64x64 networks): mean and 95% CI over {seeds} "
                 f"seeds, each algorithm one vmapped program", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_speed(peers: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    res = peers["results"]
    workloads = [("ppo1", "PPO CartPole 5e5\n1 seed"), ("ppo16", "PPO CartPole 5e5\n16 seeds"),
                 ("sac", "SAC Pendulum 2e4\n1 seed")]
    systems = [("PureJaxRL (quoted)", None), ("rejax 0.1.3", "rejax"), ("purerl", "purerl")]
    fig = Figure(figsize=(10.0, 3.6), dpi=110)
    FigureCanvasAgg(fig)
    for j, (kind, label) in enumerate((("run_s", "run time (s)"), ("compile_s", "compile time (s)"))):
        ax = fig.add_subplot(1, 2, j + 1)
        width = 0.27
        for i, (sys_label, key) in enumerate(systems):
            vals = []
            for w, _ in workloads:
                if key is None:
                    q = PUREJAXRL_QUOTED[w][0 if kind == "run_s" else 1]
                    vals.append(np.nan if q is None else q)
                else:
                    vals.append(res[w][key][kind])
            xs = np.arange(len(workloads)) + (i - 1) * width
            bars = ax.bar(xs, vals, width, label=sys_label)
            for b, v in zip(bars, vals):
                if np.isfinite(v):
                    ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                                fontsize=7)
        ax.set_xticks(np.arange(len(workloads)), [w[1] for w in workloads], fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        if j == 0:
            ax.legend(fontsize=8)
    fig.suptitle(f"benchmarks/peers.py, {peers['machine']}, {peers['date']} (medians; lower is better)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=("curves", "speed"), default=None)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--peers", default=str(ROOT / "benchmarks" / "results" / "peers.json"),
                   help="peers.py's results file")
    args = p.parse_args()
    FIGURES.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "speed"):
        peers = Path(args.peers)
        if not peers.is_file():
            raise SystemExit(f"figures.py: no {peers}; run `python benchmarks/peers.py --small` first")
        plot_speed(json.loads(peers.read_text()), FIGURES / "speed.png")
        print(f"wrote {FIGURES / 'speed.png'}")
    if args.only in (None, "curves"):
        import jax

        print(f"{platform.machine()}, jax {jax.__version__}, {jax.default_backend()}")
        plot_curves(learning_curves(args.seeds), args.seeds, FIGURES / "learning_curves.png")
        print(f"wrote {FIGURES / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
