"""Learning curves from run and sweep directories against env steps: the mean over seeds with a 95%
percentile-bootstrap band of the mean, or (``aggregate=True``) the interquartile mean with a
stratified-bootstrap 95% band (:mod:`purerl.run.stats`); with runs of several tasks, also a performance
profile of their final returns.

    from purerl.run import plot
    plot.plot_runs(["runs/ppo-cartpole", "runs/a2c-cartpole"], "curves.png")
    plot.plot_runs(["runs/ppo-cartpole", "runs/ppo-pendulum"], "iqm.png", aggregate=True)   # + iqm_profile.png
    plot.plot_runs(["runs/sweep-ppo"], "sweep.png")     # a sweep directory: one curve per config (the best 10)

A run directory (``purerl train``: ``config.json``, ``metrics.json``; :mod:`purerl.run.rundir`) gives one curve;
a sweep directory (``purerl sweep`` / ``SweepResult.save``: ``sweep.json``, ``metrics.npz``;
:mod:`purerl.run.sweepdir`) one curve per config over its
seeds, the ``top`` best in the sweep's own ranking. Legend labels are ``"<algo> on <env>"``; curves that would
share one get the config values that differ between them (a sweep's swept values, a learning rate, a seed),
and the directory's name if those do not tell them apart.

The bands lie within the data's range: both are bootstrap percentile intervals, whose resampled means (or
IQMs) are means of the seeds' own values; a Student-t band of 4 CartPole seeds reaches above 500.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, so no GUI backend and no global figure
state are touched).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from purerl.arguments import check_count
from purerl.run import stats
from purerl.run.rundir import read_config, read_metrics
from purerl.run.sweepdir import read_sweep

__all__ = ["load_curves", "mean_and_band", "performance_profiles", "plot_profile", "plot_runs"]

TOP = 10   # a sweep directory's best configs drawn by default


def mean_and_band(values: np.ndarray, confidence: float = 0.95, reps: int = stats.CURVE_REPS,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, low, high)`` over seeds of ``values [seeds, points]``: the mean at each point and the
    percentile-bootstrap ``confidence`` interval of it (:func:`purerl.run.stats.mean_ci`: the seeds resampled
    with replacement ``reps`` times with ``np.random.RandomState(seed)``), which lies within the seeds' range.

    NaN entries (a seed with no finished episode yet at that point) are left out point by point. With one
    value the band is the mean itself; with none, all three are NaN. A 1-D array is one seed.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"mean_and_band expects values of shape [seeds, points], got shape {x.shape}")
    return tuple(stats.mean_ci(x[:, None, :], reps=reps, confidence=confidence, seed=seed))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(_fmt, v))
    return str(v)


def _curves_of_run(run_dir: Path, metric: str) -> list[dict]:
    body = read_config(run_dir)
    metrics = read_metrics(run_dir)
    _check_metrics(run_dir, metrics, metric, "")
    values = np.atleast_2d(metrics[metric])
    steps = np.atleast_2d(metrics["env_steps"])[0]  # identical for every seed
    if values.shape[-1] != steps.shape[0]:
        raise ValueError(f"run {run_dir}: metric {metric!r} has {values.shape[-1]} log points but env_steps "
                         f"has {steps.shape[0]}")
    algo, env = body.get("algo", "?"), body.get("config", {}).get("env", "?")
    config = {**body.get("config", {}), "seed": body.get("seed"), "seeds": body.get("seeds")}
    return [{"dir": run_dir, "algo": algo, "env": env, "steps": steps, "values": values, "config": config,
             "swept": {}, "config_index": None}]


def _check_metrics(path: Path, metrics: dict, metric: str, what: str) -> None:
    for name in (metric, "env_steps"):
        if name not in metrics:
            raise ValueError(f"{what}run {path} has no metric {name!r}; available metrics: "
                             f"{', '.join(sorted(metrics))}")


def _curves_of_sweep(sweep_dir: Path, metric: str, top: int | None) -> list[dict]:
    """One curve per config of a sweep directory, its ``top`` best first (the sweep's ranking)."""
    body, metrics = read_sweep(sweep_dir)
    _check_metrics(sweep_dir, metrics, metric, "sweep ")
    values, steps = metrics[metric], metrics["env_steps"]
    if values.ndim != 3 or steps.shape[:2] != values.shape[:2] or steps.shape[-1] != values.shape[-1]:
        raise ValueError(f"sweep {sweep_dir}: metric {metric!r} has shape {values.shape} and env_steps "
                         f"{steps.shape}; both should be [config, seed, log point]")
    n = values.shape[0]
    order = [r.get("config_index") for r in body.get("summary", []) if isinstance(r, dict)]
    if sorted(order) != list(range(n)):
        order = list(range(n))
    algo, env = body.get("algo", "?"), body.get("env") or body.get("config", {}).get("env", "?")
    swept_names = sorted(body["values"])
    curves = []
    for c in order[:top]:
        swept = {k: float(body["values"][k][c]) for k in swept_names}
        config = {**body.get("config", {}), **swept, "seed": body.get("seed"), "seeds": body.get("seeds")}
        curves.append({"dir": sweep_dir, "algo": algo, "env": env, "steps": steps[c, 0], "values": values[c],
                       "config": config, "swept": swept, "config_index": c, "configs_in_sweep": n})
    return curves


def _distinct_labels(curves: list[dict], base: list[str]) -> list[str]:
    """``base`` labels made distinct: where several curves share one, each gets the config values that differ
    within that group (at most 4 fields), then, if still shared, its directory's name, then its position."""
    def value(i: int, k: str) -> str:
        cfg = curves[i]["config"]
        return json.dumps(cfg[k], default=str, sort_keys=True) if k in cfg else "\0missing"

    labels = list(base)
    for label in sorted(set(labels)):
        group = [i for i, lab in enumerate(labels) if lab == label]
        if len(group) < 2:
            continue
        keys = sorted({k for i in group for k in curves[i]["config"]})
        differ = [k for k in keys if len({value(i, k) for i in group}) > 1]
        swept = [k for k in differ if any(k in curves[i]["swept"] for i in group)]
        differ = swept + [k for k in differ if k not in swept]   # a sweep's own values first
        if differ:
            shown = differ[:4]
            for i in group:
                cfg = curves[i]["config"]
                parts = [f"{k}={_fmt(cfg[k]) if k in cfg else '-'}" for k in shown]
                labels[i] = f"{label} ({', '.join(parts)}{', ...' if len(differ) > 4 else ''})"
    for attempt in ("dir", "index"):
        counts = {lab: labels.count(lab) for lab in labels}
        if all(c == 1 for c in counts.values()):
            break
        for i, lab in enumerate(labels):
            if counts[lab] > 1:
                labels[i] = f"{lab} [{curves[i]['dir'].name}]" if attempt == "dir" else f"{lab} #{i + 1}"
    return labels


def load_curves(run_dirs: str | Path | Sequence[str | Path], metric: str = "episode_return",
                labels: Sequence[str] | None = None, top: int | None = TOP) -> list[dict]:
    """The curves of run and sweep directories, in order: each a dict with ``dir``, ``label``, ``method`` (for
    performance profiles), ``algo``, ``env``, ``steps [points]``, ``values [seeds, points]`` of ``metric``,
    ``config`` (its config with ``seed``/``seeds``), ``swept`` (a sweep config's swept values, else ``{}``) and
    ``config_index`` (within its sweep, else ``None``). A sweep directory gives its ``top`` best configs (its
    own ranking; ``None``: all); ``labels`` (one per directory) replace ``"<algo> on <env>"``, a sweep's configs adding
    their swept values."""
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ValueError("plot_runs: no run directories given")
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"plot_runs: {len(labels)} labels for {len(run_dirs)} run directories")
    if top is not None:
        top = check_count(top, "top", where="plot_runs")
    curves = []
    for i, d in enumerate(run_dirs):
        is_sweep = d.is_dir() and (d / "sweep.json").is_file() and not (d / "config.json").is_file()
        for c in (_curves_of_sweep(d, metric, top) if is_sweep else _curves_of_run(d, metric)):
            c["given"] = labels[i] if labels is not None else None
            curves.append(c)
    for c in curves:
        swept = ", ".join(f"{k}={_fmt(v)}" for k, v in c["swept"].items())
        name = c["given"] if c["given"] is not None else c["algo"]
        c["method"] = f"{name} ({swept})" if swept else name
    if labels is not None:
        for c in curves:
            c["label"] = c["method"]
    else:
        for c, lab in zip(curves, _distinct_labels(curves, [f"{c['algo']} on {c['env']}" for c in curves]),
                          strict=True):
            c["label"] = lab
    for c in curves:
        del c["given"]
    return curves


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
              reps: int = stats.CURVE_REPS, seed: int = 0, max_points: int = 200, top: int = TOP) -> Path:
    """One curve per run directory (and per config of a sweep directory, its ``top`` best; see
    :func:`load_curves` for the labels) against ``env_steps``: the seeds' mean of ``metric`` with its 95%
    percentile-bootstrap band (:func:`mean_and_band`), or with ``aggregate`` the seeds' interquartile mean with
    its stratified-bootstrap 95% band (:func:`purerl.run.stats.iqm_ci`); ``reps`` resamples per log point with
    bootstrap seed ``seed``, at ``max_points`` log points spread evenly over the run, the first and last
    included. The numbers drawn are also written to ``out_png`` with the suffix ``.json``. Writes ``out_png``
    and returns its path. Every argument is checked before anything is read."""
    reps = check_count(reps, "reps", where="plot_runs")
    max_points = check_count(max_points, "max_points", 2, where="plot_runs")
    curves = load_curves(run_dirs, metric, labels, top)
    fig, ax = _figure()
    drawn = []
    for run in curves:
        n = run["steps"].shape[0]
        at = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int))
        steps = run["steps"][at]
        if aggregate:
            centre, low, high = stats.iqm_ci(run["values"][:, None, at], reps=reps, seed=seed)
        else:
            centre, low, high = mean_and_band(run["values"][:, at], reps=reps, seed=seed)
        drawn.append({"run": str(run["dir"]), "label": run["label"], "config_index": run["config_index"],
                      "swept": run["swept"], "seeds": int(run["values"].shape[0]), "log_points": at.tolist(),
                      "env_steps": steps.tolist(), ("iqm" if aggregate else "mean"): centre.tolist(),
                      "low": low.tolist(), "high": high.tolist()})
        (line,) = ax.plot(steps, centre, label=run["label"], linewidth=1.8)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.25 if len(curves) < 6 else 0.12,
                        linewidth=0)
    seeds = sorted({r["values"].shape[0] for r in curves})
    n = f"{'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}"
    what = ("IQM, 95% stratified-bootstrap CI" if aggregate else "mean, 95% bootstrap CI of the mean")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.set_title(title if title is not None else f"{metric}: {what} over {n}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8 if len(curves) > 4 else 10)
    out = _save(fig, out_png)
    out.with_suffix(".json").write_text(json.dumps(
        {"metric": metric, "statistic": "iqm" if aggregate else "mean", "confidence": 0.95,
         "interval": "stratified bootstrap, percentile" if aggregate else "bootstrap over seeds, percentile",
         "reps": reps, "seed": seed, "curves": drawn}, indent=1))
    return out


def performance_profiles(run_dirs: str | Path | Sequence[str | Path], metric: str = "episode_return",
                         labels: Sequence[str] | None = None, taus: np.ndarray | None = None,
                         reps: int = stats.REPS, seed: int = 0, top: int | None = None) -> dict:
    """Performance profiles of methods over tasks from run directories: each run is one method (its label,
    ``"<algo>"`` by default) on one task (its env); its score per seed is the final ``metric``
    (:func:`purerl.run.stats.final_scores`), normalised per task to ``(score - low) / (high - low)`` with the
    lowest and highest final score of any run of that task given. A sweep directory's configs are methods
    ``"<algo> (<swept values>)"`` (all of them unless ``top``), so sweeps of one grid on several tasks compare
    config by config. Every method needs one run of every task, with the same seed count on each. Returns ``{"taus", "tasks", "ranges", "methods": {label: Interval}}``."""
    runs = load_curves(run_dirs, metric, labels, top)
    for r in runs:
        r["label"] = r["method"]
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
                 labels: Sequence[str] | None = None, reps: int = stats.REPS, seed: int = 0,
                 top: int | None = None) -> Path:
    """Draw :func:`performance_profiles`: for each method, the fraction of its runs (seeds x tasks) whose
    normalised final ``metric`` exceeds tau, with a stratified-bootstrap 95% band. Writes ``out_png``."""
    prof = performance_profiles(run_dirs, metric, labels, reps=reps, seed=seed, top=top)
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
