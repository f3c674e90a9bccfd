"""benchmarks/claims.py in its tiny mode: the verdicts that are deterministic enough to hold at that size, each
read from a 95% interval over 8 seeds (vmapped); and the rule that reads a verdict from an interval.

Asserted: claims 1 (baseline: unbiased, lower variance), 2 (TD(0) variance below Monte-Carlo; variance grows
and bias shrinks with lambda), 3 (Gaussian score, exact up to float error), 4 (clipping bounds the ratio and
the KL), 5 (TRPO's accepted KL <= delta, true by construction of the line search) and 9 (DQN overestimates
where every true value is 0, Double DQN less). Not asserted at this size: 6 (the critics have not converged
after 3k steps, so Q - MC measures under-fitting, not overestimation), 7 (the entropy has not reached its
target in 3k steps) and 8 (A2C and A3C have not learned CartPole after 3e4 steps); the full-size run reports
them.

And the stored results (docs/results/claims.json): every row's statement, value, rule and verdict are what
today's rules make of the row's stored data, and the three verdicts that once read stronger than their
evidence (the baseline's bias, TD3's twin minimum, A3C's staleness) read as the evidence supports.
"""

import importlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RESULTS = ROOT / "docs" / "results" / "claims.json"


@pytest.fixture(scope="module")
def claims():
    sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("claims")


def _check(rows, claim_numbers, unresolved=()):
    """Every row holds, except those in ``unresolved``, which at the tiny size may be inconclusive (never FAILS)."""
    assert {r.claim for r in rows} == set(claim_numbers)
    for r in rows:
        expected = (True, "inconclusive") if r.key in unresolved else (True,)
        assert r.verdict in expected, f"claim {r.claim}: {r.statement}: {r.quantity} = {r.value}: {r.verdict}"
        assert r.rule.startswith("holds if"), r.statement
        point, low, high = r.ci
        assert low <= point <= high, r.statement


def test_claims_1_and_2_gradient_estimators(claims):
    rows = claims.claim_1_2(tiny=True, seed=0)
    # With 8 batches a group, the smallest step of the bias (lambda 0 -> 0.5, under 0.01) is not resolved.
    _check(rows, (1, 2), unresolved={"bias-shrinks"})
    # GAE(1) is G_t - V(s_t) (up to bootstrapping at the 500-step limit): no bias against the reference.
    bias = next(r for r in rows if r.key == "bias-shrinks").data["relative_bias"]
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


def test_claim_9_dqn_overestimates_and_double_dqn_reduces_it(claims):
    rows = claims.claim_9(tiny=True, seed=0)
    _check(rows, (9,))
    plain, double = (next(r for r in rows if r.key == k) for k in ("dqn-overestimates", "double-reduces"))
    assert plain.ci[1] > 0 and double.ci[2] < plain.ci[1]


def test_a_run_of_some_claims_updates_the_results_file_and_keeps_the_others(claims, tmp_path, monkeypatch):
    """``--only 9`` replaces the stored rows of claim 9 (adding them if there were none), keeps every other row
    and the file's provenance, and says which claims a later run measured (the Claims page names it)."""
    base = json.loads(RESULTS.read_text())
    base["rows"] = [r for r in base["rows"] if r["claim"] != 9]
    base.pop("updates", None)
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(base))
    stored9 = [r for r in json.loads(RESULTS.read_text())["rows"] if r["claim"] == 9]
    monkeypatch.setitem(claims.CLAIMS, 9, lambda tiny, seed: claims.judge_all({r["key"]: r["data"] for r in stored9}))
    for _ in range(2):                                   # a second run replaces the first one's rows and note
        claims.main(["--only", "9", "--out", str(path)])
        merged = json.loads(path.read_text())
        assert [r["key"] for r in merged["rows"]] == [r["key"] for r in base["rows"]] + [r["key"] for r in stored9]
        assert merged["rows"][:len(base["rows"])] == base["rows"] and merged["provenance"] == base["provenance"]
        assert [u["claims"] for u in merged["updates"]] == [[9]]
    merged["tiny"] = True                                # a file of the other mode is not merged into
    path.write_text(json.dumps(merged))
    claims.main(["--only", "9", "--out", str(path)])
    assert {r["claim"] for r in json.loads(path.read_text())["rows"]} == {9}


def test_table_lists_every_row(claims):
    holds = [claims.Check("x", (0.5, 0.2, 0.8), below=1.0)]
    unsure = [claims.Check("x", (3.0, 1.0, 5.0), above=2.0)]
    rows = [claims.Row(1, "k1", "s", "q", "0.5", holds), claims.Row(8, "k2", "t", "r", "1 vs 2", []),
            claims.Row(6, "k3", "u", "v", "3", unsure)]
    assert [r.verdict for r in rows] == [True, None, "inconclusive"]
    text = claims.table(rows)
    assert "holds" in text and "(reported)" in text and "inconclusive" in text and text.count("\n") == 4


def test_a_check_reads_its_interval_against_its_thresholds(claims):
    Check = claims.Check
    assert Check("x", (0.5, 0.2, 0.8), below=1.0).verdict() is True
    assert Check("x", (1.5, 1.2, 1.8), below=1.0).verdict() is False
    assert Check("x", (1.0, 1.0, 1.8), below=1.0).verdict() is False           # at the threshold: not below
    assert Check("x", (0.9, 0.7, 1.1), below=1.0).verdict() == "inconclusive"
    assert Check("x", (0.5, 0.2, 0.8), above=0.0).verdict() is True
    assert Check("x", (-0.5, -0.8, -0.2), above=0.0).verdict() is False
    assert Check("x", (0.1, -0.1, 0.3), above=0.0).verdict() == "inconclusive"
    # against a rival's interval [3, 23]: holds wholly below its lower end, fails wholly above its upper end
    rival = dict(below=3.0, fail=23.0)
    assert Check("x", (1.0, 0.5, 2.9), **rival).verdict() is True
    assert Check("x", (26.0, 24.0, 30.0), **rival).verdict() is False
    assert Check("x", (26.0, 15.0, 30.0), **rival).verdict() == "inconclusive"
    with pytest.raises(ValueError, match="one of below and above"):
        Check("x", (0, 0, 0))
    assert claims.both(True, True) is True
    assert claims.both(True, "inconclusive") == "inconclusive"
    assert claims.both("inconclusive", False) is False
    # the rule's text is written from the checks that decide
    checks = [Check("TD3's Q - MC", (-26.0, -33.0, -15.0), below=0.0),
              Check("TD3's Q - MC", (-26.0, -33.0, -15.0), below=3.1, fail=23.4, threshold="DDPG's low (+3.1)",
                    fail_text="DDPG's high (+23.4)")]
    assert claims.rule_text(checks) == (
        "holds if the CI of TD3's Q - MC lies below 0 and below DDPG's low (+3.1); FAILS if it lies wholly at or "
        "above 0 or at or above DDPG's high (+23.4); inconclusive otherwise")
    # the interval is the project's IQM with its stratified-bootstrap CI
    per_seed = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0]
    ci = claims.iqm_ci(per_seed)
    assert ci.point == 4.5 and ci.low < 4.5 < ci.high


def test_stored_verdicts_are_what_the_rules_make_of_the_stored_numbers(claims):
    stored = json.loads(RESULTS.read_text())["rows"]
    remade = claims.load(RESULTS)
    assert [r["key"] for r in stored] == [r.key for r in remade]
    for row, new in zip(stored, remade, strict=True):
        again = asdict(new)
        for name in ("statement", "quantity", "value", "verdict", "rule", "ci", "checks"):
            assert row[name] == json.loads(json.dumps(again[name])), (row["key"], name)
        for check in new.checks:                 # each check's interval is the IQM CI of the stored data
            point, low, high = check.ci
            assert low <= point <= high, row["key"]


def test_the_verdicts_read_no_stronger_than_their_evidence(claims):
    rows = {r.key: r for r in claims.load(RESULTS)}
    # The baseline's bias: the normalised squared bias is ~1 without bias; its interval reaches past 2 (a bias
    # as large as the standard error of a 50-batch mean), so "no bias beyond that noise" is not shown.
    unbiased = rows["baseline-unbiased"]
    point, low, high = unbiased.ci
    assert low <= 2.0 < high and unbiased.verdict == "inconclusive"
    assert "unbiased" not in unbiased.statement and "50 batches" in unbiased.statement
    # TD3: below zero and below DDPG's interval (the overestimation is gone) but larger in size than DDPG's IQM;
    # the size comparison is its own row, which the overlapping intervals leave open.
    ddpg, td3 = rows["ddpg-overestimates"], rows["td3-removes"]
    assert ddpg.verdict is True and ddpg.ci[1] > 0
    assert td3.verdict is True and td3.ci[2] < 0 and td3.ci[2] < ddpg.ci[1]
    assert "underestimates" in td3.statement and "reduces" not in td3.statement
    size = rows["td3-size"]
    assert size.ci[0] > abs(ddpg.ci[0]) and size.verdict == "inconclusive"
    # A3C: staleness is isolated by K = 8 against K = 0 (the same workers and updates), not by A2C.
    stale = rows["a3c-staleness"]
    results = stale.data["results"]
    assert results["a3c_K8"]["staleness"] > 0 == results["a3c_K0"]["staleness"] and stale.verdict is True
    assert "does not isolate staleness" in rows["a3c-vs-a2c"].quantity


def test_rejudge_rewrites_only_what_the_rules_make(claims, tmp_path):
    data = json.loads(RESULTS.read_text())
    row = next(r for r in data["rows"] if r["key"] == "td3-removes")
    row["verdict"], row["rule"], row["statement"] = False, "holds if anything", "TD3 reduces it"
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(data))
    claims.main(["--rejudge", "--out", str(path)])
    again = json.loads(path.read_text())
    fixed = next(r for r in again["rows"] if r["key"] == "td3-removes")
    assert fixed["verdict"] is True and fixed["rule"].startswith("holds if the CI of TD3's Q - MC lies below 0")
    assert again["provenance"] == data["provenance"] and again["rejudged"]
    assert [r["data"] for r in again["rows"]] == [r["data"] for r in data["rows"]]
