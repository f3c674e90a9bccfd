"""benchmarks/claims.py in its tiny mode: the verdicts that are deterministic enough to hold at that size, each
read from a 95% interval over 8 seeds (vmapped); and the rule that reads a verdict from an interval.

Asserted: claims 1 (baseline: unbiased, lower variance), 2 (TD(0) variance below Monte-Carlo; variance grows
and bias shrinks with lambda), 3 (Gaussian score, exact up to float error), 4 (clipping bounds the ratio and
the KL) and 5 (TRPO's accepted KL <= delta, true by construction of the line search). Not asserted at this
size: 6 (the critics have not converged after 3k steps, so Q - MC measures under-fitting, not
overestimation), 7 (the entropy has not reached its target in 3k steps) and 8 (A2C and A3C have not learned
CartPole after 3e4 steps); the full-size run reports them.
"""

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def claims():
    sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("claims")


def _check(rows, claim_numbers):
    assert {r.claim for r in rows} == set(claim_numbers)
    for r in rows:
        assert r.verdict is True, f"claim {r.claim}: {r.statement}: {r.quantity} = {r.value}"
        assert r.rule.startswith("holds if"), r.statement
        point, low, high = r.ci
        assert low <= point <= high, r.statement


def test_claims_1_and_2_gradient_estimators(claims):
    rows = claims.claim_1_2(tiny=True, seed=0)
    _check(rows, (1, 2))
    # GAE(1) is G_t - V(s_t) (up to bootstrapping at the 500-step limit): no bias against the reference.
    bias = next(r for r in rows if r.statement == "bias shrinks with lambda").data["relative_bias"]
    assert bias[-1] < 0.05 and bias[0] > 0.3


def test_claim_3_gaussian_score(claims):
    _check(claims.claim_3(tiny=True, seed=0), (3,))


def test_claim_4_ppo_clipping(claims):
    rows = claims.claim_4(tiny=True, seed=0)
    _check(rows, (4,))
    assert rows[0].data["clipped"]["kl"] < 0.05


def test_claim_5_trpo_trust_region(claims):
    rows = claims.claim_5(tiny=True, seed=0)
    _check(rows, (5,))


def test_table_lists_every_row(claims):
    rows = [claims.Row(1, "s", "q", "0.5", True), claims.Row(8, "t", "r", "1 vs 2", None),
            claims.Row(6, "u", "v", "3", "inconclusive")]
    text = claims.table(rows)
    assert "holds" in text and "(reported)" in text and "inconclusive" in text and text.count("\n") == 4


def test_verdict_is_read_from_the_interval(claims):
    from purerl.run.stats import Interval

    assert claims.read_ci(Interval(0.5, 0.2, 0.8), below=1.0) is True
    assert claims.read_ci(Interval(1.5, 1.2, 1.8), below=1.0) is False
    assert claims.read_ci(Interval(0.9, 0.7, 1.1), below=1.0) == "inconclusive"
    assert claims.read_ci(Interval(0.5, 0.2, 0.8), above=0.0) is True
    assert claims.read_ci(Interval(-0.5, -0.8, -0.2), above=0.0) is False
    assert claims.read_ci(Interval(0.1, -0.1, 0.3), above=0.0) == "inconclusive"
    assert claims.both(True, True) is True
    assert claims.both(True, "inconclusive") == "inconclusive"
    assert claims.both("inconclusive", False) is False
    # the interval is the project's IQM with its stratified-bootstrap CI
    per_seed = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0]
    ci = claims.iqm_ci(per_seed)
    assert ci.point == 4.5 and ci.low < 4.5 < ci.high
