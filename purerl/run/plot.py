"""Learning curves from run directories: the mean over seeds with a 95% confidence band, against env steps.

    from purerl.run import plot
    plot.plot_runs(["runs/ppo-cartpole", "runs/a2c-cartpole"], "curves.png")

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, so no GUI backend and no global figure
state are touched).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from purerl.run.rundir import read_config, read_metrics

__all__ = ["mean_and_band", "plot_runs"]


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


def plot_runs(run_dirs: str | Path | Sequence[str | Path], out_png: str | Path, metric: str = "episode_return",
              labels: Sequence[str] | None = None, title: str | None = None) -> Path:
    """One curve per run directory: the seeds' mean of ``metric`` with its 95% confidence band (see
    :func:`mean_and_band`), against the run's ``env_steps``. Legend labels are ``"<algo> on <env>"`` from
    each run's ``config.json`` unless ``labels`` are given. Writes ``out_png`` and returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("plot_runs: no run directories given")
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"plot_runs: {len(labels)} labels for {len(run_dirs)} run directories")

    curves = []
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
        if labels is not None:
            label = labels[i]
        else:
            label = f"{body.get('algo', '?')} on {body.get('config', {}).get('env', '?')}"
        curves.append((steps, values, label))

    fig = Figure(figsize=(7.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for steps, values, label in curves:
        mean, low, high = mean_and_band(values)
        (line,) = ax.plot(steps, mean, label=label, linewidth=1.8)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.25, linewidth=0)
    seeds = sorted({v.shape[0] for _, v, _ in curves})
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.set_title(title if title is not None else
                 f"{metric}: mean and 95% CI over {'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
