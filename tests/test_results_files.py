"""Measured numbers in the README and the docs come from results files that benchmark scripts write, each with
the date, the machine and the jax version of its measurement.

* docs/results/algorithms.json (benchmarks/algorithms.py): every algorithm, >= 8 seeds, full budgets; its
  IQMs and intervals are what ``purerl.run.stats.iqm_ci`` gives for the per-seed scores it stores; every
  algorithm page shows them through docs/hooks.py (``<!-- results: ALGO -->``), and the script itself runs
  end to end in its tiny mode.
* docs/results/claims.json (benchmarks/claims.py): every claim's value with its interval, pass rule and
  verdict, over >= 8 seeds; the Claims page is generated from it.
* docs/results/peers-cpu.json (benchmarks/peers.py): the README's speed table is the one
  ``peers.readme_table`` writes from it, and the Benchmarks page's table is its Markdown.
* The README's presets tables are ``benchmarks/presets.readme_tables()``: the presets of docs/results/
  algorithms.json with that file's numbers (their ``reaches`` lines too), the others from the ``reaches``
  lines benchmarks/presets.py wrote.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from purerl import presets
from purerl.algorithms import ALGORITHMS
from purerl.run import stats
from _helpers import docs_hooks, stop_in

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RESULTS = DOCS / "results"
BENCHMARKS = ROOT / "benchmarks"
ALGOS = tuple(a.name for a in ALGORITHMS)
PROVENANCE = {"date", "cpu", "cores", "backend", "jax", "python", "purerl", "command"}


def hooks():
    return docs_hooks()


def benchmark(name: str):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _check_interval(d: dict, per_seed: list) -> None:
    ci = stats.iqm_ci(np.asarray(per_seed, dtype=np.float64))
    np.testing.assert_allclose([d["iqm"], d["low"], d["high"]], [ci.point, ci.low, ci.high], rtol=1e-12)
    assert d["low"] <= d["iqm"] <= d["high"]


def _check_run(r: dict, seeds: int = 8) -> None:
    assert r["budget"]["seeds"] >= seeds
    assert len(r["final"]["per_seed"]) == r["budget"]["seeds"] == len(r["curve"]["per_seed"])
    _check_interval(r["final"], r["final"]["per_seed"])
    _check_interval(r["eval"], r["eval"]["per_seed"])
    c = r["curve"]
    assert len(c["env_steps"]) == len(c["iqm"]) == len(c["low"]) == len(c["high"]) <= 100
    assert c["env_steps"][-1] == r["budget"]["env_steps_per_seed"]
    for lo, mid, hi in zip(c["low"], c["iqm"], c["high"], strict=True):
        if mid is not None:
            assert lo <= mid <= hi
    # the last curve point's IQM is the IQM of the seeds' last values
    last = [s[-1] for s in c["per_seed"]]
    if None not in last:
        assert c["iqm"][-1] == pytest.approx(float(stats.iqm(np.asarray(last))))
    assert r["compile_s"] > 0 and r["run_s"] > 0
    assert PROVENANCE <= set(r["provenance"])


def test_algorithm_results_cover_every_algorithm_with_intervals():
    data = _load("algorithms")
    assert set(data["runs"]) == set(ALGOS)
    for algo, runs in data["runs"].items():
        assert runs, algo
        for r in runs:
            assert r["algo"] == algo and not r["tiny"]
            assert r["preset"] in presets.names()
            assert r["budget"]["total_timesteps"] == presets.load(r["preset"]).config["total_timesteps"]
            _check_run(r)
        assert (DOCS / "figures" / "algorithms" / f"{algo}.png").is_file()
    envs = {r["env"] for runs in data["runs"].values() for r in runs}
    assert envs == {"CartPole-v1", "Pendulum-v1"}


def test_algorithm_pages_show_the_results_file():
    data = _load("algorithms")
    for algo in ALGOS:
        page = (DOCS / "algorithms" / f"{algo}.md").read_text()
        assert f"<!-- results: {algo} -->" in page, algo
        text = hooks().algorithm_results(algo)
        for r in data["runs"][algo]:
            f, e = r["final"], r["eval"]
            assert f"{f['iqm']:.1f} [{f['low']:.1f}, {f['high']:.1f}]" in text
            assert f"{e['iqm']:.1f} [{e['low']:.1f}, {e['high']:.1f}]" in text
            assert f"{r['compile_s']:.1f} s | {r['run_s']:.1f} s" in text
            assert r["provenance"]["date"] in text and f"jax {r['provenance']['jax']}" in text
            assert f"{r['budget']['env_steps_per_seed']:,} env steps per seed" in text
            # each return says what it is; times taken on a loaded machine say so
            assert f"{f['iqm']:.1f} [{f['low']:.1f}, {f['high']:.1f}]: " + (
                "training episodes" if r["metric"] == "episode_return" else "the deterministic evaluation") in text
            assert f"{e['episodes']} new episodes per seed" in text
            p = r["provenance"]
            assert ("(shared machine)" in text) == (p["load_average"] > p["cores"])
        off_policy = data["runs"][algo][0]["metric"] == "eval_return"
        assert ("Both returns evaluate the same final deterministic policy" in text) == off_policy
        assert ("The two returns measure different policies" in text) == (not off_policy)
        assert f"(../figures/algorithms/{algo}.png)" in text


@pytest.mark.slow
def test_algorithms_script_tiny(tmp_path):
    """The script end to end in its tiny mode: 8 seeds of REINFORCE vmapped, a results file whose intervals
    are the statistics of its per-seed scores, the figure, and --only keeping another algorithm's entry."""
    algorithms = benchmark("algorithms")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "algorithms.json").write_text(json.dumps({"runs": {"sac": ["kept"]}}))
    algorithms.main(["--tiny", "--only", "reinforce", "--out-dir", str(tmp_path)])
    data = json.loads((tmp_path / "results" / "algorithms.json").read_text())
    assert data["runs"]["sac"] == ["kept"]
    (r,) = data["runs"]["reinforce"]
    assert r["tiny"] and r["preset"] == "reinforce-cartpole" and r["metric"] == "episode_return"
    _check_run(r)
    assert (tmp_path / "figures" / "algorithms" / "reinforce.png").stat().st_size > 10_000
    assert "Tiny budgets: these numbers measure nothing" in hooks().algorithm_results("reinforce", data)


def test_claims_results_have_intervals_rules_and_verdicts():
    data = _load("claims")
    assert not data["tiny"] and data["seeds"] >= 8
    assert PROVENANCE <= set(data["provenance"])
    assert {r["claim"] for r in data["rows"]} == set(range(1, 10))
    text = hooks().claims_table()
    for u in data.get("updates", []):      # claims measured again by a run of their own (--only) say so
        assert "measured later by a run of" in text and f"--only {','.join(map(str, u['claims']))}`" in text
        assert u["provenance"]["date"] in text
    if data.get("updates"):
        assert "minutes for all claims" not in text
    for r in data["rows"]:
        assert r["verdict"] in (True, False, None, "inconclusive"), r
        if r["verdict"] is not None:
            assert r["rule"].startswith("holds if"), r["statement"]
        if r["ci"] is not None:
            point, low, high = r["ci"]
            assert low <= point <= high, r["statement"]
        assert hooks().cell(r["value"]) in text
    assert data["provenance"]["date"] in text
    assert "<!-- claims-table -->" in (DOCS / "claims.md").read_text()


def test_peers_results_have_three_rounds_and_show_their_spread():
    """The speed table is measured over 3 rounds or more, and its Markdown is what peers.py makes of the
    timings the file holds (medians with the range of the single timings)."""
    peers = benchmark("peers")
    data = _load("peers-cpu")
    assert data["markdown"] == peers.build_table(data["results"], {**data, "header": peers.header(data)})[0]
    assert data["rounds"] >= peers.MIN_ROUNDS, (
        f"docs/results/peers-cpu.json has {data['rounds']} round(s); rerun `python benchmarks/peers.py --small "
        f"--pjr .peers/purejaxrl` (after `bash benchmarks/peers_env.sh`) on an idle machine")
    run = next(ln for ln in data["markdown"] if "(`ppo1`): run" in ln)
    assert re.search(r"\d\.\d\d s \(\d+\.\d\d-\d+\.\d\d\)", run), run


def test_readme_speed_table_is_the_peers_results_file():
    peers = benchmark("peers")
    data = _load("peers-cpu")
    assert {"date", "systems", "table", "markdown"} <= set(data)
    me = data["systems"]["purerl"]
    assert me["backend"] == "cpu" and me["cores"] and me["cpu"] and me["jax"]
    expected = peers.readme_table(data)
    readme = (ROOT / "README.md").read_text()
    assert expected in readme, f"the README's speed table should read:\n{expected}"
    recs = {r["row"]: r for r in data["table"]}
    # every CPU workload of the README's table is in the file: PPO, SAC and the value-based DQN and PQN rows
    assert set(peers.README_ROWS) <= set(recs), f"rerun `python benchmarks/peers.py --small`: {sorted(recs)}"
    for row, title in peers.README_ROWS.items():
        line = next(ln for ln in readme.splitlines() if ln.startswith(f"| {title} |"))
        run, compile_ = line.split("|")[2:4]
        assert f": {recs[row]['ratio_run']:.2f}x" in run and f": {recs[row]['ratio_compile']:.2f}x" in compile_
    page = (DOCS / "benchmarks.md").read_text()
    assert "<!-- results-table: peers-cpu -->" in page
    assert hooks().results_table("peers-cpu").splitlines()[0].startswith(data["date"])


def test_readme_presets_tables_are_the_results_and_reaches_lines():
    """One preset, one set of numbers: a preset that docs/results/algorithms.json measured (its algorithm page)
    has that file's numbers in its reaches line and in the README, and appears in no other table; the README's
    tables are what benchmarks/presets.py writes from the file and the reaches lines."""
    bench = benchmark("presets")
    readme = (ROOT / "README.md").read_text()
    tables = bench.readme_tables()
    assert tables in readme, f"the README's Presets tables should read:\n{tables}"
    runs = bench.algorithm_runs()
    assert set(runs) == {preset for _, preset in benchmark("algorithms").RUNS}
    rows = re.findall(r"^\| ([a-z0-9_-]+) \| ([0-9.e]+) \| ([^|]+) \| ([^|]+) \|$", readme, re.MULTILINE)
    names = [r[0] for r in rows]
    assert len(names) == len(set(names)) >= 16, names          # no preset in two tables
    for name, r in runs.items():
        reaches = presets.load(name).reaches
        assert reaches == bench.reaches_from_run(r), name
        e = r["eval"]
        assert f"eval return IQM {e['iqm']:.1f} [95% CI {e['low']:.1f}, {e['high']:.1f}]" in reaches
        assert f"{r['run_s']:.0f} s for all seeds" in reaches and r["provenance"]["date"][:10] in reaches
        shown = next(row for row in rows if row[0] == name)
        assert shown[2] == f"{e['iqm']:.1f} [{e['low']:.1f}, {e['high']:.1f}]"
        # a time measured on a loaded machine says so
        p = r["provenance"]
        assert shown[3].startswith(f"{r['run_s']:.0f}")
        assert ("load" in shown[3]) == (p["load_average"] > p["cores"]) and ("shared machine" in reaches) == (
            p["load_average"] > p["cores"]), (name, shown)
    for name, _, shown, run_s in rows:
        if name in runs:
            continue
        m = bench.MEASURED.match(presets.load(name).reaches)
        assert m, name
        assert shown.startswith(f"{float(m.group(1)):.1f}") and run_s == m.group(5), (name, shown)


def test_presets_script_reaches_lines_read_back_and_say_when_the_machine_was_shared():
    """What benchmarks/presets.py writes into a reaches line is what readme_tables() reads back, and a time
    measured with the load average above the cores says so."""
    bench = benchmark("presets")
    r = {"eval_mean": -81.04, "eval_std": 4.1, "train_mean": -87.1, "train_std": 3.8, "seeds": 4, "env_steps": 499_712,
         "run_s": 17.2, "compile_s": 14.0, "load_average": 3.5, "cores": 2}
    text = bench.reaches_text(r, "CPU 2 cores, jax 0.9.2", "2026-01-02")
    m = bench.MEASURED.match(text)
    assert m and m.groups() == ("-81.0", "4.1", "4", "499,712", "17", "CPU 2 cores, jax 0.9.2", "2026-01-02")
    assert "on a shared machine (load average 3.5 on 2 cores)" in text
    assert "shared" not in bench.reaches_text({**r, "load_average": 0.3}, "CPU 2 cores, jax 0.9.2", "2026-01-02")


def test_presets_script_leaves_the_algorithm_pages_presets_alone():
    """benchmarks/presets.py --write refuses a preset whose numbers come from docs/results/algorithms.json
    (before anything is trained), and measures none of them by default."""
    bench = benchmark("presets")
    with pytest.raises(SystemExit, match="trpo-cartpole come from docs/results/algorithms.json"):
        bench.main(["--only", "ppo-acrobot", "trpo-cartpole", "--write"])


# Paths of the machines purerl was written on and the tools there: a clone has none of them.
OUTSIDE = ("../shared", "/work/", "/root/", ".mirror", "wheels.sh", "`fetch` tool", "$OUT/")


def _tracked_files() -> list[Path]:
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / n for n in names.decode().split("\0") if n and not n.startswith("tests/")]


def test_repository_names_nothing_outside_itself():
    """No tracked file outside tests/ (code, docs, benchmarks, results files, README) needs or names a folder
    beside the checkout, a path of one machine or a tool that a clone does not have."""
    found = []
    for path in _tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            found += [f"{path.relative_to(ROOT)}:{i}: {word}" for word in OUTSIDE if word in line]
    assert not found, "\n".join(found)


def test_pages_state_no_measurement_without_a_results_file():
    """Measurements that no results file holds are gone from the pages: the table of "measurements behind code
    choices" and the REINFORCE stall rate; the code no longer points to that table."""
    gone = {"docs/benchmarks.md": "Measurements behind code choices", "docs/choosing.md": "one seed in ten",
            "README.md": "18 times each", "docs/installation.md": "18 times each"}
    for name, phrase in gone.items():
        assert phrase not in (ROOT / name).read_text(), name
    for path in (ROOT / "purerl").rglob("*.py"):
        assert "Measurements behind code choices" not in path.read_text(), path


def test_results_record_their_command_relative_to_the_repository():
    """provenance() records the command with paths inside the checkout relative to it, and every results
    file's command reads that way."""
    provenance = benchmark("provenance")
    p = provenance.provenance([str(BENCHMARKS / "algorithms.py"), "--out-dir", str(ROOT / "docs"), "/elsewhere"])
    assert p["command"] == "python benchmarks/algorithms.py --out-dir docs /elsewhere"
    assert isinstance(p["load_average"], float)
    commands = [r["provenance"]["command"] for runs in _load("algorithms")["runs"].values() for r in runs]
    commands += [_load("claims")["provenance"]["command"]]
    for command in commands:
        script = command.split()[1]
        assert script.startswith("benchmarks/") and not Path(script).is_absolute(), command


def test_readme_minatar_table_is_the_results_cells():
    """The README's MinAtar lines are what benchmarks/results.py makes of docs/results/cells (measured cells with
    their IQM, the rest as dashes), so a new cell file shows there only through the generator."""
    results = benchmark("results")
    expected = results.readme_table(results.load_cells())
    assert expected in (ROOT / "README.md").read_text(), f"the README's MinAtar table should read:\n{expected}"
    measured = [r for r in results.load_cells() if r["suite"] == "minatar" and not r.get("tiny")]
    for r in measured:   # every measured cell's number is on its row
        label = f"| {r['algo'].upper()}{' (CNN)' if r['preset'].endswith('-cnn') else ''}, "
        line = next(ln for ln in expected.splitlines() if ln.startswith(label))
        assert f"{r['final']['iqm']:.1f}" in line, (r["cell"], line)


def test_cpu_devices_results_give_the_ratio_of_their_medians():
    """docs/benchmarks.md shows the measured ratio of seeds split over every core to one device: the file holds
    3 rounds or more, alternated, with both settings in each, and its ratio and table are the medians of the
    timings it holds."""
    import statistics

    data = _load("cpu-devices")
    assert data["rounds"] >= 3 and data["cores"] >= 2
    for r in range(data["rounds"]):
        assert sorted(t["devices"] for t in data["timings"] if t["round"] == r) == [1, data["cores"]]
    med = {d: statistics.median(t["run_s"] for t in data["timings"] if t["devices"] == d) for d in (1, data["cores"])}
    assert data["run_ratio"] == pytest.approx(med[data["cores"]] / med[1], rel=1e-12)
    assert f"**{data['run_ratio']:.2f}**" in data["markdown"][-1]
    assert "<!-- results-table: cpu-devices -->" in (ROOT / "docs" / "benchmarks.md").read_text()


def test_a_results_cell_stopped_in_its_run_directory_resumes_to_the_uninterrupted_cell(tmp_path, monkeypatch):
    """benchmarks/results.py --run-dir: a cell stopped after its second of four chunks says so, and the same call
    continues it from that checkpoint to the record of the cell run without a stop (the same chunked programs, so
    equal bit for bit), its times the sum of its two segments."""
    results = benchmark("results")
    cell = results.Cell("dqn-cartpole", "CartPole-v1", 192, seeds=2, eval_episodes=2, cpu_overrides=(
        ("num_envs", 4), ("learning_starts", 64), ("buffer_size", 256), ("batch_size", 16), ("hidden_sizes", (16, 16)),
        ("num_log_points", 4), ("epsilon_anneal_fraction", 0.5)))
    run = functools.partial(results.run_cell, cell, 192, 2, 0, cells_dir=tmp_path, chunks=4)
    whole = run(run_dir=tmp_path / "whole")
    assert [(g["from_update"], g["to_update"]) for g in whole["segments"]] == [(0, 4)]

    stop_in(monkeypatch, 2)
    with pytest.raises(SystemExit, match=r"stopped at update 2 of 4; the same command with --run-dir .* resumes it"):
        run(run_dir=tmp_path / "stopped")
    monkeypatch.undo()
    changed = dataclasses.replace(cell, cpu_overrides=cell.cpu_overrides[:-1] + (("epsilon_anneal_fraction", 0.25),))
    with pytest.raises(SystemExit, match=r"other settings than the cell now has \(epsilon_anneal_fraction: 0.5 there, "
                                         r"0.25 now\); remove .*stopped.* to start the cell afresh"):
        results.run_cell(changed, 192, 2, 0, cells_dir=tmp_path, chunks=4, run_dir=tmp_path / "stopped")
    resumed = run(run_dir=tmp_path / "stopped")

    segments = resumed["segments"]
    assert [(g["from_update"], g["to_update"]) for g in segments] == [(0, 2), (2, 4)]
    assert resumed["run_s"] == sum(g["run_s"] for g in segments)
    assert resumed["compile_s"] == sum(g["compile_s"] for g in segments)
    assert resumed["steps"] == whole["steps"] == 64 + 4 * 32
    for part in ("final", "eval", "curve"):
        assert resumed[part] == whole[part], part
    # a finished run whose cell file was not written is read back, not trained again
    again = run(run_dir=tmp_path / "stopped")
    assert again["segments"] == segments and again["final"] == resumed["final"]
