"""Learning curves from run directories against env steps: the mean over seeds with a Student-t 95% band, or
(``aggregate=True``) the interquartile mean with a stratified-bootstrap 95% band (:mod:`purerl.run.stats`);
with runs of several tasks, also a performance profile of their final returns.

    from purerl.run import plot
    plot.plot_runs(["runs/ppo-cartpole", "runs/a2c-cartpole"], "curves.png")
    plot.plot_runs(["runs/ppo-cartpole", "runs/ppo-pendulum"], "iqm.png", aggregate=True)   # + iqm_profile.png

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, so no GUI backend and no global figure
state are touched).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from purerl.run import stats
from purerl.run.rundir import read_config, read_metrics

__all__ = ["mean_and_band", "performance_profiles", "plot_profile", "plot_runs"]


def mean_and_band(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, low, high)`` over seeds of ``values [seeds, points]``: the mean and a Student-t confidence
    interval of it at each point, ``mean -+ t_{(1+confidence)/2, n-1} * std(ddof=1) / sqrt(n)``.

    NaN entries (a seed with no finished episode yet at that point) are left out point by point, so ``n`` is
    the number of seeds with a value there. With one value the band is the mean itself; with none, all three
    are NaN. A 1-D array is one seed.
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"mean_and_band expects values of shape [seeds, points], got shape {x.shape}")
    ok = ~np.isnan(x)
    n = ok.sum(axis=0)
    filled = np.where(ok, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, filled.sum(axis=0) / n, np.nan)
        sq = np.where(ok, np.square(x - mean), 0.0).sum(axis=0)
        sem = np.sqrt(sq / (n - 1)) / np.sqrt(n)
        t = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
    half = np.where(n > 1, t * sem, 0.0)
    return mean, mean - half, mean + half


def _load(run_dirs: str | Path | Sequence[str | Path], metric: str, labels: Sequence[str] | None) -> list[dict]:
    """Each run's ``metric [seeds, points]``, ``env_steps``, label, algo and env."""
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("plot_runs: no run directories given")
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"plot_runs: {len(labels)} labels for {len(run_dirs)} run directories")
    runs = []
    for i, run_dir in enumerate(run_dirs):
        body = read_config(run_dir)
        metrics = read_metrics(run_dir)
        for name in (metric, "env_steps"):
            if name not in metrics:
                raise ValueError(f"run {run_dir} has no metric {name!r}; available metrics: "
                                 f"{', '.join(sorted(metrics))}")
        values = np.atleast_2d(metrics[metric])
        steps = np.atleast_2d(metrics["env_steps"])[0]  # identical for every seed
        if values.shape[-1] != steps.shape[0]:
            raise ValueError(f"run {run_dir}: metric {metric!r} has {values.shape[-1]} log points but env_steps "
                             f"has {steps.shape[0]}")
        algo, env = body.get("algo", "?"), body.get("config", {}).get("env", "?")
        label = labels[i] if labels is not None else f"{algo} on {env}"
        runs.append({"dir": run_dir, "label": label, "algo": algo, "env": env, "steps": steps, "values": values})
    return runs


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, out_png: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def plot_runs(run_dirs: str | Path | Sequence[str | Path], out_png: str | Path, metric: str = "episode_return",
              labels: Sequence[str] | None = None, title: str | None = None, aggregate: bool = False,
              reps: int = stats.CURVE_REPS, seed: int = 0, max_points: int = 200) -> Path:
    """One curve per run directory against the run's ``env_steps``: the seeds' mean of ``metric`` with its
    95% Student-t band (see :func:`mean_and_band`), or with ``aggregate`` the seeds' interquartile mean with
    its stratified-bootstrap 95% band (``reps`` resamples per log point, :func:`purerl.run.stats.iqm_ci`, at
    ``max_points`` log points spread evenly over the run, the first and last included; the numbers drawn are
    also written to ``out_png`` with the suffix ``.json``). Legend labels are
    ``"<algo> on <env>"`` from each run's ``config.json`` unless ``labels`` are given. Writes ``out_png``
    and returns its path."""
    runs = _load(run_dirs, metric, labels)
    fig, ax = _figure()
    drawn = []
    for run in runs:
        if aggregate:
            n = run["steps"].shape[0]
            at = np.unique(np.linspace(0, n - 1, min(n, max(2, int(max_points)))).round().astype(int))
            run["steps"] = run["steps"][at]
            centre, low, high = stats.iqm_ci(run["values"][:, None, at], reps=reps, seed=seed)
            drawn.append({"run": str(run["dir"]), "label": run["label"], "seeds": int(run["values"].shape[0]),
                          "log_points": at.tolist(), "env_steps": run["steps"].tolist(), "iqm": centre.tolist(), "low": low.tolist(),
                          "high": high.tolist()})
        else:
            centre, low, high = mean_and_band(run["values"])
        (line,) = ax.plot(run["steps"], centre, label=run["label"], linewidth=1.8)
        ax.fill_between(run["steps"], low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    seeds = sorted({r["values"].shape[0] for r in runs})
    n = f"{'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}"
    what = "IQM and 95% stratified-bootstrap CI" if aggregate else "mean and 95% CI"
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.set_title(title if title is not None else f"{metric}: {what} over {n}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    out = _save(fig, out_png)
    if aggregate:
        out.with_suffix(".json").write_text(json.dumps(
            {"metric": metric, "statistic": "iqm", "confidence": 0.95, "reps": reps, "seed": seed, "curves": drawn},
            indent=1))
    return out


def performance_profiles(run_dirs: str | Path | Sequence[str | Path], metric: str = "episode_return",
                         labels: Sequence[str] | None = None, taus: np.ndarray | None = None,
                         reps: int = stats.REPS, seed: int = 0) -> dict:
    """Performance profiles of methods over tasks from run directories: each run is one method (its label,
    ``"<algo>"`` by default) on one task (its env); its score per seed is the final ``metric``
    (:func:`purerl.run.stats.final_scores`), normalised per task to ``(score - low) / (high - low)`` with the
    lowest and highest final score of any run of that task given. Every method needs one run of every task,
    with the same seed count on each. Returns ``{"taus", "tasks", "ranges", "methods": {label: Interval}}``."""
    runs = _load(run_dirs, metric, labels)
    if labels is None:
        for r in runs:
            r["label"] = r["algo"]
    tasks = sorted({r["env"] for r in runs})
    if len(tasks) < 2:
        raise ValueError(f"a performance profile compares tasks; every run given is on {tasks[0]} (give runs of "
                         f"at least two envs)")
    finals = {(r["label"], r["env"]): stats.final_scores(r["values"]) for r in runs}
    if len(finals) < len(runs):
        dup = next(k for k in finals if sum((r["label"], r["env"]) == k for r in runs) > 1)
        raise ValueError(f"two runs of {dup[0]} on {dup[1]}: give each a distinct --label")
    ranges = {}
    for t in tasks:
        allv = np.concatenate([v for (m, e), v in finals.items() if e == t])
        if np.isnan(allv).any():
            raise ValueError(f"a run on {t} has a seed with no finished episode (final {metric} is NaN)")
        ranges[t] = (float(allv.min()), float(allv.max()))
    taus = np.linspace(0.0, 1.0, 101) if taus is None else np.asarray(taus, np.float64)
    methods = {}
    for m in dict.fromkeys(r["label"] for r in runs):
        missing = [t for t in tasks if (m, t) not in finals]
        if missing:
            raise ValueError(f"{m} has no run on {', '.join(missing)}: a performance profile needs every method "
                             f"on every task")
        counts = {t: len(finals[m, t]) for t in tasks}
        if len(set(counts.values())) > 1:
            raise ValueError(f"{m}'s runs have different seed counts ({', '.join(f'{t}: {c}' for t, c in counts.items())}); "
                             f"the stratified bootstrap needs the same count on every task")
        cols = []
        for t in tasks:
            lo, hi = ranges[t]
            cols.append((finals[m, t] - lo) / (hi - lo) if hi > lo else np.ones_like(finals[m, t]))
        methods[m] = stats.performance_profile(np.stack(cols, axis=1), taus, reps=reps, seed=seed)
    return {"taus": taus, "tasks": tasks, "ranges": ranges, "methods": methods}


def plot_profile(run_dirs: str | Path | Sequence[str | Path], out_png: str | Path, metric: str = "episode_return",
                 labels: Sequence[str] | None = None, reps: int = stats.REPS, seed: int = 0) -> Path:
    """Draw :func:`performance_profiles`: for each method, the fraction of its runs (seeds x tasks) whose
    normalised final ``metric`` exceeds tau, with a stratified-bootstrap 95% band. Writes ``out_png``."""
    prof = performance_profiles(run_dirs, metric, labels, reps=reps, seed=seed)
    fig, ax = _figure()
    for m, (point, low, high) in prof["methods"].items():
        (line,) = ax.step(prof["taus"], point, where="post", label=m, linewidth=1.8)
        ax.fill_between(prof["taus"], low, high, step="post", color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set_xlabel(f"normalised final {metric} tau (0 and 1: the lowest and highest run of each task)")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_title(f"performance profile over {', '.join(prof['tasks'])} (95% stratified-bootstrap CI)", fontsize=10)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, out_png)
