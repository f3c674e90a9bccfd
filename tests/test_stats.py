"""IQM, stratified-bootstrap confidence intervals and performance profiles (purerl.run.stats), checked against
hand computations and against rliable (recorded values, and rliable itself where it is installed)."""

import numpy as np
import pytest

from purerl.run import stats

X = np.array([3.0, 10.0, 1.0, 7.0, 4.0, 12.0, 5.0, 8.0])   # 8 seeds; sorted 1 3 4 5 | 7 8 | 10 12


def _loop_bootstrap_iqm(scores, reps, seed, confidence=0.95):
    """The stratified bootstrap written out: for each resample and each task (and trailing element), draw the
    runs with replacement, sort the runs x tasks scores, cut a quarter at each end, average the rest; then the
    percentiles. Index draws in rliable's order: one [runs, tasks, ...] block per resample."""
    x = np.asarray(scores, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    n, m = x.shape[:2]
    rest = x.shape[2:]
    rs = np.random.RandomState(seed)
    boot = np.empty((reps, *rest))
    for r in range(reps):
        idx = rs.randint(0, n, size=x.shape)
        for j in np.ndindex(*rest):
            sample = [x[(idx[(i, t, *j)], t, *j)] for i in range(n) for t in range(m)]
            s = np.sort(sample)
            cut = len(s) // 4
            boot[(r, *j)] = s[cut:len(s) - cut].mean()
    alpha = (1 - confidence) / 2
    return np.percentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)


def test_iqm_and_bootstrap_ci_match_a_hand_computation():
    assert stats.iqm(X) == 6.0                               # mean of 4, 5, 7, 8
    assert stats.iqm(X[:5]) == pytest.approx((3 + 4 + 7) / 3)   # 5 seeds: one cut at each end of 1 3 4 7 10
    ci = stats.iqm_ci(X, reps=500, seed=7)
    assert ci.point == 6.0
    low, high = _loop_bootstrap_iqm(X, 500, 7)
    assert (ci.low, ci.high) == (low, high)                  # integer scores: the sums are exact
    # rliable 1.2.0: np.random.seed(7); get_interval_estimates({"a": X[:, None]}, lambda s:
    # np.array([metrics.aggregate_iqm(s)]), reps=500) gave point 6.0 and interval [3.25, 9.25]
    assert (ci.low, ci.high) == (3.25, 9.25)
    assert stats.iqm_ci(X, reps=500, seed=8) != ci          # the seed picks the resamples
    wide = stats.iqm_ci(X, reps=500, seed=7, confidence=0.99)
    assert wide.low <= ci.low and wide.high >= ci.high


def test_several_tasks_resample_within_each_task_and_curves_per_point():
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=(6, 3)) * 8)          # [runs, tasks], integers
    ci = stats.iqm_ci(scores, reps=300, seed=3)
    s = np.sort(scores.ravel())
    assert ci.point == s[4:14].mean()                        # 18 scores: cut 4 at each end
    assert (ci.low, ci.high) == tuple(_loop_bootstrap_iqm(scores, 300, 3))
    # stratified: a resample holds each task's runs only in that task's column
    tasks = np.stack([np.arange(4.0), 100 + np.arange(4.0)], axis=1)
    boot = stats.stratified_bootstrap(tasks, lambda s: s, reps=50, seed=0)
    assert boot.shape == (50, 4, 2)
    assert set(np.unique(boot[..., 0])) <= {0, 1, 2, 3} and set(np.unique(boot[..., 1])) <= {100, 101, 102, 103}
    # curves [seeds, 1 task, points]: an interval at each point, NaN where a seed has no value yet
    curves = np.round(rng.normal(size=(5, 1, 4)) * 10)
    curves[2, 0, 0] = np.nan
    c = stats.iqm_ci(curves, reps=40, seed=4)
    for p in range(1, 4):
        assert c.point[p] == np.sort(curves[:, 0, p])[1:4].mean()
    assert np.isnan([c.point[0], c.low[0], c.high[0]]).all()
    # every point draws its own indices (the NaN point too, so the draws of the others stay where they are)
    low, high = _loop_bootstrap_iqm(np.nan_to_num(curves), 40, 4)
    np.testing.assert_array_equal(c.low[1:], low[1:])
    np.testing.assert_array_equal(c.high[1:], high[1:])


def test_performance_profile_is_the_fraction_above_each_threshold():
    scores = np.array([[0.1, 0.9], [0.5, 0.3], [0.7, 0.7]])  # [runs, tasks], normalised
    prof = stats.performance_profile(scores, [0.0, 0.4, 0.8, 0.95], reps=200, seed=0)
    np.testing.assert_array_equal(prof.point, [1.0, 4 / 6, 1 / 6, 0.0])
    assert (prof.low <= prof.point).all() and (prof.point <= prof.high).all()
    assert prof.low[0] == prof.high[0] == 1.0 and prof.low[3] == prof.high[3] == 0.0


def test_final_scores_and_bad_input():
    values = np.array([[np.nan] * 18 + [1.0, 3.0, 5.0, 7.0], [2.0] * 22])
    np.testing.assert_array_equal(stats.final_scores(values), [7.0, 2.0])     # 22 points: the last one
    np.testing.assert_array_equal(stats.final_scores(np.arange(40.0)), 38.5)   # 40 points: the last two
    with pytest.raises(ValueError, match="reps"):
        stats.iqm_ci(X, reps=0)
    with pytest.raises(ValueError, match="confidence"):
        stats.iqm_ci(X, confidence=95)
    with pytest.raises(ValueError, match="shape"):
        stats.iqm_ci(np.zeros((0, 3)))


def _rliable():
    try:
        from rliable import library, metrics
    except Exception as e:   # not installed, or rliable 1.2.0's arch failing to import with pandas 3
        pytest.skip(f"rliable cannot be imported here ({type(e).__name__})")
    return library, metrics


def test_equal_to_rliable_where_it_is_installed():
    rly, metrics = _rliable()
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(6, 3))
    np.random.seed(3)
    point, ci = rly.get_interval_estimates({"a": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=300)
    mine = stats.iqm_ci(scores, reps=300, seed=3)
    assert mine.point == pytest.approx(point["a"][0], rel=1e-12)
    np.testing.assert_allclose([mine.low, mine.high], ci["a"].ravel(), rtol=1e-12)

    curves = rng.normal(size=(5, 1, 7))
    np.random.seed(4)
    point, ci = rly.get_interval_estimates(
        {"a": curves}, lambda s: np.array([metrics.aggregate_iqm(s[..., i]) for i in range(s.shape[-1])]), reps=200)
    mine = stats.iqm_ci(curves, reps=200, seed=4)
    np.testing.assert_allclose(mine.point, point["a"], rtol=1e-12)
    np.testing.assert_allclose(np.stack([mine.low, mine.high]), ci["a"], rtol=1e-12)

    taus = np.linspace(-1, 1, 5)
    np.random.seed(5)
    prof, pci = rly.create_performance_profile({"a": scores}, taus, reps=100)
    mine = stats.performance_profile(scores, taus, reps=100, seed=5)
    np.testing.assert_allclose(mine.point, prof["a"], rtol=1e-12)
    np.testing.assert_allclose(np.stack([mine.low, mine.high]), pci["a"], rtol=1e-12)
