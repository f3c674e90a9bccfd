"""Statistics over seeds and tasks as Agarwal et al. (2021, "Deep reinforcement learning at the edge of the
statistical precipice") recommend and the ``rliable`` package computes them: the interquartile mean (IQM)
with a stratified-bootstrap percentile confidence interval, and performance profiles.

    from purerl.run import stats
    ci = stats.iqm_ci(final_returns)            # final_returns [seeds] (one task) or [seeds, tasks]
    ci.point, ci.low, ci.high                   # IQM and its 95% interval
    stats.iqm_ci(curves, reps=2000)             # curves [seeds, log points]: an interval at every point

Scores are arrays ``[runs, tasks, ...]`` (a 1-D array is one task's runs; for a single task, add the task
axis with ``scores[:, None]`` when there are trailing axes such as log points). The IQM is the mean of the
middle half of the runs x tasks scores (``scipy.stats.trim_mean(x, 0.25)``: ``n // 4`` scores are cut at each
end of the ``n`` sorted scores). The stratified bootstrap resamples the runs with replacement within each task
(for one task: the seeds with replacement), ``reps`` times, and the interval is the ``(1 - confidence) / 2``
and ``(1 + confidence) / 2`` percentiles of the statistic over the resamples. With trailing axes every
element is resampled on its own, as ``rliable`` does.

This module reimplements the two ``rliable`` functions purerl uses instead of depending on the package:
``rliable`` 1.2.0 does not import with pandas 3 (arch 7.2 fails at import), the pandas that purerl's own
install brings (gymnax requires seaborn, which requires pandas), adds arch and statsmodels, ignores its ``random_state`` argument (it draws from numpy's global generator)
and bootstraps in a Python loop, one resample at a time (here the resamples are drawn and reduced as arrays).
Given ``seed``, the resamples here are the ones ``rliable`` draws after ``np.random.seed(seed)``, so the
numbers are the same (the tests compare them where ``rliable`` is installed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = ["Interval", "aggregate_iqm", "final_scores", "iqm", "iqm_ci", "mean_ci", "performance_profile",
           "stratified_bootstrap"]

REPS = 10_000          # resamples for one number (a final return)
CURVE_REPS = 2_000     # resamples per log point of a curve
_CHUNK = 1 << 22       # resampled scores held at once


class Interval(NamedTuple):
    """A point estimate with a confidence interval (arrays of the statistic's shape, or floats)."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def final_scores(values: np.ndarray) -> np.ndarray:
    """A run's final score per seed from a metric ``[..., log points]``: the mean over the last 5% of the log
    points (at least one), NaN entries left out; the rule ``purerl train``, ``sweep`` and ``plot`` share."""
    import warnings

    x = np.asarray(values, dtype=np.float64)
    tail = max(1, x.shape[-1] // 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all NaN: no episode finished; the score is NaN
        return np.nanmean(x[..., -tail:], axis=-1)


def iqm(scores: np.ndarray, axis: int | None = 0) -> np.ndarray:
    """Interquartile mean along ``axis`` (``None``: over every element): the mean of the scores left after
    cutting ``n // 4`` from each end of the ``n`` sorted scores (``scipy.stats.trim_mean(scores, 0.25)``).
    NaN where a NaN is among the scores."""
    x = np.asarray(scores, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    n = x.shape[axis]
    if n == 0:
        raise ValueError("iqm: no scores")
    cut = n // 4    # as scipy.stats.trim_mean(x, 0.25) cuts; sorting is faster on many short rows than its partition
    kept = np.take(np.sort(x, axis=axis), np.arange(cut, n - cut), axis=axis)
    return np.where(np.isnan(x).any(axis=axis), np.nan, kept.mean(axis=axis))


def _runs_tasks(scores: np.ndarray) -> np.ndarray:
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim < 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"scores must be an array [runs] or [runs, tasks, ...] with at least one of each, got "
                         f"shape {x.shape}")
    return x


def aggregate_iqm(scores: np.ndarray) -> np.ndarray:
    """IQM over runs and tasks together of ``scores [runs, tasks, ...]``: one value per trailing element
    (``rliable.metrics.aggregate_iqm`` applied to ``scores[..., i]``)."""
    x = _runs_tasks(scores)
    return _iqm_runs_tasks(x[None])[0]


def _iqm_runs_tasks(sample: np.ndarray) -> np.ndarray:
    """``[reps, runs, tasks, *rest] -> [reps, *rest]``: the IQM of each resample over runs x tasks, flattened in
    the order ``rliable`` flattens them (run-major)."""
    r, n, m = sample.shape[:3]
    rest = sample.shape[3:]
    flat = np.moveaxis(sample.reshape(r, n * m, *rest), 1, -1)
    return iqm(np.ascontiguousarray(flat), axis=-1)


def stratified_bootstrap(scores: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], reps: int = REPS,
                         seed: int = 0) -> np.ndarray:
    """``statistic`` of ``reps`` stratified resamples of ``scores [runs, tasks, ...]``: ``[reps, ...]``.

    ``statistic`` maps resamples ``[r, runs, tasks, ...]`` to ``[r, ...]``. Each resample draws, for every task
    (and every trailing element), ``runs`` runs with replacement from that task's runs; the indices come from
    ``np.random.RandomState(seed)`` in the order ``rliable``'s ``StratifiedBootstrap`` draws them."""
    x = _runs_tasks(scores)
    if int(reps) < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    rng = np.random.RandomState(seed)
    per = max(1, _CHUNK // x.size)
    out = []
    for start in range(0, int(reps), per):
        r = min(per, int(reps) - start)
        idx = rng.randint(0, x.shape[0], size=(r, *x.shape))
        out.append(np.asarray(statistic(np.take_along_axis(x[None], idx, axis=1))))
    return np.concatenate(out)


def _interval(point: np.ndarray, boot: np.ndarray, confidence: float) -> Interval:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    alpha = (1.0 - confidence) / 2
    low, high = np.percentile(boot, [100 * alpha, 100 * (1.0 - alpha)], axis=0)
    bad = np.isnan(point)     # a NaN score (no episode finished yet at that point): no interval either
    return Interval(point, np.where(bad, np.nan, low), np.where(bad, np.nan, high))


def iqm_ci(scores: np.ndarray, reps: int = REPS, confidence: float = 0.95, seed: int = 0) -> Interval:
    """The IQM over runs (and tasks) of ``scores`` and its stratified-bootstrap percentile interval.

    ``scores``: ``[runs]`` (one task: the interval of a final return over seeds), ``[runs, tasks]`` or
    ``[runs, tasks, points]`` (an interval at every point). Returns floats for ``[runs]`` and ``[runs, tasks]``.
    Where a score is NaN the three values are NaN. Equal to ``rliable.library.get_interval_estimates`` with
    ``aggregate_iqm``, ``reps`` and ``confidence_interval_size=confidence`` after ``np.random.seed(seed)``."""
    x = _runs_tasks(scores)
    point = aggregate_iqm(x)
    boot = stratified_bootstrap(x, _iqm_runs_tasks, reps, seed)
    out = _interval(point, boot, confidence)
    if x.ndim == 2:
        return Interval(*(float(v) for v in out))
    return out


def mean_ci(scores: np.ndarray, reps: int = REPS, confidence: float = 0.95, seed: int = 0) -> Interval:
    """The mean over runs (and tasks) of ``scores`` and its stratified-bootstrap percentile interval: the runs
    resampled with replacement ``reps`` times (within each task, every trailing element on its own, as
    :func:`iqm_ci` does), the interval the ``(1 -+ confidence) / 2`` percentiles of the resampled means.

    Every resampled mean lies within the scores' ``[min, max]``, so the interval does too: a band of returns
    never reaches returns the env cannot give, as a Student-t interval does with few seeds (4 CartPole seeds at
    500, 500, 500 and 10: mean 377.5, Student-t 95% interval [-12, 767]). With few runs it is narrower than a t-interval
    (the bootstrap sees only the runs' own spread). NaN scores (no finished episode yet) are left out: the
    point is the mean of the others, a resample's mean that of its non-NaN draws; where every score is NaN the
    three values are NaN, and with one score the interval is that score. ``scores``: as for :func:`iqm_ci`;
    floats for ``[runs]`` and ``[runs, tasks]``. Without NaN, equal to ``rliable``'s interval estimate of
    ``aggregate_mean`` after ``np.random.seed(seed)``."""
    import warnings

    x = _runs_tasks(scores)

    def mean(sample: np.ndarray) -> np.ndarray:   # [r, runs, tasks, *rest] -> [r, *rest]
        flat = sample.reshape(sample.shape[0], -1, *sample.shape[3:])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN resample: NaN, left out below
            return np.nanmean(flat, axis=1)

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    point = mean(x[None])[0]
    boot = stratified_bootstrap(x, mean, reps, seed)
    alpha = (1.0 - confidence) / 2
    percentile = np.nanpercentile if np.isnan(boot).any() else np.percentile
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = percentile(boot, [100 * alpha, 100 * (1.0 - alpha)], axis=0)
    bad = np.isnan(point)
    out = Interval(point, np.where(bad, np.nan, low), np.where(bad, np.nan, high))
    if x.ndim == 2:
        return Interval(*(float(v) for v in out))
    return out


def performance_profile(scores: np.ndarray, taus: np.ndarray, reps: int = REPS, confidence: float = 0.95,
                        seed: int = 0) -> Interval:
    """The fraction of runs x tasks whose score exceeds each threshold in ``taus`` (a performance profile,
    ``rliable.library.create_performance_profile``), with stratified-bootstrap percentile intervals:
    arrays ``[len(taus)]``. ``scores [runs, tasks]`` should be normalised so that tasks are comparable."""
    x = _runs_tasks(scores)
    if x.ndim != 2:
        raise ValueError(f"performance_profile expects scores [runs, tasks], got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError("performance_profile: a score is NaN (a run with no finished episode?)")
    t = np.asarray(taus, dtype=np.float64).reshape(-1)

    def fraction(sample: np.ndarray) -> np.ndarray:   # [r, runs, tasks] -> [r, taus]
        flat = sample.reshape(sample.shape[0], -1)
        return (flat[:, :, None] > t).mean(axis=1)

    point = fraction(x[None])[0]
    return _interval(point, stratified_bootstrap(x, fraction, reps, seed), confidence)
