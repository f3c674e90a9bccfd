"""The README's two figures, drawn from results files the benchmark scripts write (nothing is trained or timed
here):

    python benchmarks/figures.py                  # both
    python benchmarks/figures.py --only curves    # or --only speed

``docs/figures/learning_curves.png``: from ``docs/results/algorithms.json`` (``benchmarks/algorithms.py``):
the on-policy presets on CartPole-v1, whose curves are the training episodes' return (sampled actions), and
the off-policy presets on Pendulum-v1, whose curves are the deterministic policy's evaluation return; the IQM
over the seeds (one vmapped program per algorithm) and its 95% stratified-bootstrap CI at each point.

``docs/figures/speed.png``: from ``docs/results/peers-cpu.json`` (``benchmarks/peers.py`` on a CPU): run and
compile time (medians) of each workload, purerl beside the peers it was measured with; compile time for
``purerl.jit`` and for plain ``jax.jit``. Figures that the results file marks as quoted (PureJaxRL's, when it
was not run) are drawn hatched and labelled "quoted".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIGURES = ROOT / "docs" / "figures"
RESULTS = ROOT / "docs" / "results"
sys.path.insert(0, str(HERE))

from algorithms import steps_axis  # noqa: E402
from provenance import describe  # noqa: E402

# the combined figure's panels: env -> the algorithms drawn and what their curve is
PANELS = {
    "CartPole-v1": (("ppo", "a2c", "a3c", "trpo", "reinforce"),
                    "training episode return (sampled actions)"),
    "Pendulum-v1": (("sac", "td3", "ddpg"), "evaluation return (deterministic policy)"),
}
STYLES = {"ppo": ("C0", "-", "o"), "a2c": ("C1", "--", "s"), "a3c": ("C2", "-.", "^"), "trpo": ("C3", ":", "D"),
          "reinforce": ("C4", "-", "v"), "sac": ("C0", "-", "o"), "td3": ("C1", "--", "s"),
          "ddpg": ("C3", ":", "D")}


def _num(values: list) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def plot_curves(results: dict, path: Path) -> list[str]:
    """Two panels from algorithms.json; returns the lines it prints (what it drew)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    said, seeds, provs = [], set(), []
    for i, (env, (algos, ylabel)) in enumerate(PANELS.items()):
        ax = fig.add_subplot(1, len(PANELS), i + 1)
        for algo in algos:
            run = next((r for r in results["runs"].get(algo, []) if r["env"] == env), None)
            if run is None:
                continue
            c = run["curve"]
            x, iqm = np.asarray(c["env_steps"]), _num(c["iqm"])
            color, ls, marker = STYLES[algo]
            ax.fill_between(x, _num(c["low"]), _num(c["high"]), color=color, alpha=0.15, linewidth=0)
            ax.plot(x, iqm, color=color, linestyle=ls, marker=marker, markevery=max(1, len(x) // 8), markersize=4,
                    linewidth=1.5, label=f"{algo.upper()} ({run['preset']})")
            seeds.add(run["budget"]["seeds"])
            provs.append(run["provenance"])
            f = run["final"]
            said.append(f"{algo:<10} {env:<12} final {run['metric']} IQM {f['iqm']:.1f} [{f['low']:.1f}, "
                        f"{f['high']:.1f}]")
        ax.set_title(f"{env}: {ylabel}", fontsize=9)
        steps_axis(ax)
        ax.set_ylabel(f"{'training episode' if i == 0 else 'evaluation'} return (undiscounted)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    when = provs[0] if provs else {}
    fig.suptitle(f"Shipped presets: IQM and 95% stratified-bootstrap CI over {'/'.join(map(str, sorted(seeds)))} "
                 f"seeds, each algorithm one vmapped program (benchmarks/algorithms.py, "
                 f"{when.get('date', '?')[:10]}, jax {when.get('jax', '?')})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return said


WORKLOADS = [("ppo1", "PPO CartPole 5e5\n1 seed"), ("ppo16", "PPO CartPole 5e5\n16 seeds vmapped"),
             ("sac", "SAC Pendulum 2e4\n1 seed"), ("dqn", "DQN CartPole 5e5\n1 seed"),
             ("pqn", "PQN CartPole 5e5\n1 seed")]


def plot_speed(peers: dict, path: Path) -> list[str]:
    """Run and compile bars from peers.py's JSON (its ``table`` records)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    recs = {r["row"]: r for r in peers["table"]}
    rows = [(w, label) for w, label in WORKLOADS if w in recs]
    fig = Figure(figsize=(13.0, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    said = []
    panels = (("run_s", "run time (s, median)", [("purejaxrl", "PureJaxRL"), ("rejax", peers.get("rejax", "rejax")),
                                                 ("purerl", "purerl")]),
              ("compile_s", "compile time (s, median)", [("purejaxrl", "PureJaxRL"), ("rejax", peers.get("rejax", "rejax")),
                                                         ("purerl", "purerl (purerl.jit)"),
                                                         ("purerl-jax.jit", "purerl (plain jax.jit)")]))
    colors = {"purejaxrl": "C2", "rejax": "C1", "purerl": "C0", "purerl-jax.jit": "C9"}
    for j, (kind, ylabel, systems) in enumerate(panels):
        ax = fig.add_subplot(1, 2, j + 1)
        width = 0.8 / len(systems)
        quoted_any = False
        for i, (key, name) in enumerate(systems):
            vals, quoted = [], []
            for w, _ in rows:
                if key == "purerl-jax.jit":
                    v, q = recs[w].get("purerl_compile_s_jax_jit"), False
                else:
                    s = recs[w]["systems"].get(key) or {}
                    v, q = s.get(kind), bool(s.get("quoted"))
                vals.append(np.nan if v is None else v)
                quoted.append(q)
            xs = np.arange(len(rows)) + (i - (len(systems) - 1) / 2) * width
            if any(quoted) and all(q for q, v in zip(quoted, vals, strict=True) if np.isfinite(v)):
                name += " (quoted)"
            bars = ax.bar(xs, vals, width, color=colors[key], label=name)
            for b, v, q in zip(bars, vals, quoted, strict=True):
                if q:
                    quoted_any = True
                    b.set_hatch("///")
                    b.set_facecolor("white")
                    b.set_edgecolor(colors[key])
                if np.isfinite(v):
                    ax.annotate(f"{v:.1f}" + ("\nquoted" if q else ""), (b.get_x() + b.get_width() / 2, v),
                                ha="center", va="bottom", fontsize=6)
            said.append(f"{kind:<9} {name:<24} " + "  ".join(f"{w} {v:.2f}{'(quoted)' if q else ''}"
                                                             for (w, _), v, q in zip(rows, vals, quoted, strict=True)
                                                             if np.isfinite(v)))
        ax.set_xticks(np.arange(len(rows)), [label for _, label in rows], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("workload")
        top = np.nanmax([b.get_height() for b in ax.patches] or [1.0])
        ax.set_ylim(0, 1.55 * top)    # room for the legend above the bars
        ax.grid(axis="y", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if quoted_any:
            handles.append(Patch(facecolor="white", edgecolor="k", hatch="///"))
            labels.append("quoted, not measured here")
        ax.legend(handles, labels, fontsize=7, loc="upper right", ncol=2)
    seeded = " (numbers of an earlier version of the script)" if peers.get("seeded") else ""
    fig.suptitle(f"benchmarks/peers.py: {peers.get('header', peers.get('date', '?')).split(';')[0]}, jax "
                 f"{peers.get('jax')}{seeded}; lower is better", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return said


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=("curves", "speed"), default=None)
    p.add_argument("--algorithms", default=str(RESULTS / "algorithms.json"), help="benchmarks/algorithms.py's results")
    p.add_argument("--peers", default=str(RESULTS / "peers-cpu.json"), help="benchmarks/peers.py's results on a CPU")
    p.add_argument("--out-dir", default=str(FIGURES))
    args = p.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for what, src, fn, name in (("speed", args.peers, plot_speed, "speed.png"),
                                ("curves", args.algorithms, plot_curves, "learning_curves.png")):
        if args.only not in (None, what):
            continue
        path = Path(src)
        if not path.is_file():
            raise SystemExit(f"figures.py: no {path}; run the script that writes it first")
        data = json.loads(path.read_text())
        for line in fn(data, out / name):
            print(" ", line)
        if what == "curves":
            first = next(iter(data["runs"].values()))[0]
            print(f"  ({describe(first['provenance'])})")
        print(f"wrote {out / name} from {path}")


if __name__ == "__main__":
    main()
