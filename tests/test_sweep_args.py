"""sweep.run's arguments: the seed as an int or a key (the same result), counts checked before anything is
compiled, the swept values kept as given; `purerl sweep`'s flags. A stand-in algorithm (a random draw per
key scaled by the learning rate) keeps every program tiny; tests/test_sweep.py runs the real ones."""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import ppo, sweep

CFG = ppo.Config(env="CartPole-v1")   # only its type and validation are used: the stand-in never builds PPO
GRID = {"learning_rate": [1e-4, 3e-4]}
SPACE = {"gamma": (0.9, 0.99)}


def _fake_algo(calls):
    """An algorithm module whose trainer's 3 updates log the 3 draws of ``uniform(key, (3,))``, scaled."""
    def make(cfg):
        calls.append(cfg)

        def update(state):
            ret = jax.random.uniform(state["key"], (3,)) * 1e6 * cfg.learning_rate * cfg.gamma
            i = state["i"]
            return ({"key": state["key"], "i": i + 1},
                    {"episode_return": ret[i], "env_steps": (i + 1).astype(jnp.float32)})

        return types.SimpleNamespace(init=lambda key: {"key": key, "i": jnp.int32(0)}, update=update,
                                     num_log_points=3)

    return types.SimpleNamespace(__name__="purerl.fake", make=make)


def test_a_key_seed_gives_the_int_seeds_result_bit_for_bit():
    calls = []
    algo = _fake_algo(calls)
    runs = [sweep.run(algo, CFG, GRID, space=SPACE, samples=2, seeds=3, seed=s, log=None)
            for s in (7, np.int64(7), jax.random.key(7), jax.random.PRNGKey(7))]
    for other in runs[1:]:
        for name in runs[0].values:
            np.testing.assert_array_equal(other.values[name], runs[0].values[name])   # the same random draws
        np.testing.assert_array_equal(other.metrics["episode_return"], runs[0].metrics["episode_return"])
    assert runs[0].seed == 7 and runs[2].seed is None
    # seed k of every config trains with split(key(7), seeds)[k], the key `purerl train --seed 7` gives seed k
    res, keys = runs[0], jax.random.split(jax.random.key(7), 3)
    assert res.values["learning_rate"].tolist() == [1e-4, 1e-4, 3e-4, 3e-4]
    for c in range(4):
        lr, gamma = np.float32(res.values["learning_rate"][c]), np.float32(res.values["gamma"][c])
        for k in range(3):
            want = jax.random.uniform(keys[k], (3,)) * 1e6 * lr * gamma
            np.testing.assert_allclose(res.metrics["episode_return"][c, k], want, rtol=1e-6)
    other = sweep.run(algo, CFG, GRID, space=SPACE, samples=2, seeds=3, seed=8, log=None)
    assert not np.array_equal(other.metrics["episode_return"], res.metrics["episode_return"])
    assert not np.array_equal(other.values["gamma"], res.values["gamma"])


@pytest.mark.parametrize("seed", [1.5, "0", True, None, np.zeros(3, np.uint32), np.zeros(2, np.int32),
                                  jax.random.split(jax.random.PRNGKey(0), 2), jax.random.split(jax.random.key(0), 2)],
                         ids=["float", "str", "bool", "none", "uint32x3", "int32x2", "legacy-batch", "typed-batch"])
def test_a_seed_that_is_neither_an_int_nor_one_key_is_a_type_error_naming_seed(seed):
    calls = []
    with pytest.raises(TypeError, match=r"`seed`.*jax\.random\.key\(s\).*jax\.random\.PRNGKey\(s\)"):
        sweep.run(_fake_algo(calls), CFG, GRID, seeds=2, seed=seed, log=None)
    assert calls == []    # nothing was traced


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"seeds": 0}, ValueError, "`seeds` must be at least 1"),
    ({"seeds": 2.0}, TypeError, "`seeds` must be a whole number"),
    ({"chunk_size": 0}, ValueError, "`chunk_size` must be at least 1"),
    ({"space": SPACE, "samples": 0}, ValueError, "samples >= 1"),
    ({"space": SPACE, "samples": -2}, ValueError, "`samples` must be at least 0"),
    ({"samples": 3}, ValueError, "samples=3 draws from `space`"),
    ({"grid": {"learning_rate": []}}, ValueError, r"grid\['learning_rate'\] has no values"),
    ({"grid": {"learning_rate": 1e-3}}, TypeError, r"grid\['learning_rate'\] must be a list"),
    ({"grid": {"learning_rate": ["1e-3"]}}, TypeError, r"grid\['learning_rate'\]'s value must be a number"),
    ({"space": {"gamma": 0.9}, "samples": 2}, ValueError, r"space\['gamma'\]"),
    ({"devices": []}, ValueError, "`devices` is empty"),
], ids=["seeds0", "seeds-float", "chunk0", "samples0", "samples-neg", "samples-no-space", "grid-empty",
        "grid-scalar", "grid-str", "space-scalar", "devices-empty"])
def test_every_count_is_checked_before_anything_is_traced(kwargs, error, needle):
    calls = []
    kwargs = {"grid": GRID, **kwargs}
    with pytest.raises(error, match=needle):
        sweep.run(_fake_algo(calls), CFG, log=None, **kwargs)
    assert calls == []


def test_an_unknown_metric_is_named_before_compiling():
    with pytest.raises(ValueError, match="metric 'eval_return' is not among.*env_steps, episode_return"):
        sweep.run(_fake_algo([]), CFG, GRID, metric="eval_return", log=None)


def test_swept_values_are_stored_as_given_not_as_float32(tmp_path):
    res = sweep.run(_fake_algo([]), CFG, GRID, seeds=2, log=None)
    assert res.values["learning_rate"].tolist() == [1e-4, 3e-4]          # not 9.999999747378752e-05
    assert [r["learning_rate"] for r in res.summary()] in ([1e-4, 3e-4], [3e-4, 1e-4])
    assert res.best["learning_rate"] in (1e-4, 3e-4)
    res.save(tmp_path / "sw")
    body = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert body["values"] == {"learning_rate": [1e-4, 3e-4]}
    assert {r["learning_rate"] for r in body["summary"]} == {1e-4, 3e-4} and body["best"] == res.best
    assert body["algo"] == "fake" and body["env"] == "CartPole-v1" and body["seed"] == 0
    assert body["metric"] == "episode_return" and body["config"]["num_envs"] == CFG.num_envs
    with np.load(tmp_path / "sw" / "metrics.npz") as npz:
        np.testing.assert_array_equal(npz["episode_return"], res.metrics["episode_return"])
        assert sorted(npz.files) == sorted(res.metrics)      # metrics only: the values live in sweep.json
    # random draws: the float64 values drawn, within their bounds (a float32 round trip can leave them)
    drawn = sweep.sample_space({"learning_rate": (1e-5, 1e-1, "log")}, 50, jax.random.key(3))["learning_rate"]
    vals = sweep.combinations(space={"learning_rate": (1e-5, 1e-1, "log")}, samples=50, key=jax.random.key(3))
    assert vals["learning_rate"].dtype == np.float64
    np.testing.assert_array_equal(vals["learning_rate"], drawn)
    assert drawn.min() >= 1e-5 and drawn.max() <= 1e-1


@pytest.mark.parametrize("args, needle", [
    (["--seeds", "0"], "argument --seeds: must be at least 1, got 0"),
    (["--chunk-size", "0"], "argument --chunk-size: must be at least 1, got 0"),
    (["--samples", "-1"], "argument --samples: must be at least 0, got -1"),
    (["--samples", "2"], "--samples 2 draws from --random"),
    (["--random", "gamma=0.9:0.99"], "--random needs --samples"),
    (["--random", "gamma=a:b", "--samples", "2"], "--random gamma: low and high must be numbers"),
    (["--grid", "gamma="], "--grid gamma: give at least one value"),
], ids=["seeds", "chunk", "samples-neg", "samples-alone", "random-alone", "random-nan", "grid-empty"])
def test_bad_sweep_flags_are_one_line_before_building_anything(args, needle, capsys, monkeypatch):
    from purerl import cli

    def boom(*a, **k):
        raise AssertionError("sweep.run was reached")

    monkeypatch.setattr(sweep, "run", boom)
    try:
        code = cli.main(["sweep", "ppo", "--no-cache", "--grid", "learning_rate=1e-3", *args])
    except SystemExit as e:   # argparse's own errors: a count below its minimum
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------ the sweep directory's guard (purerl sweep --out)

def _run_dir(path):
    """A directory holding a training run's files (as `purerl train` writes them; content not read)."""
    (path / "checkpoints" / "8").mkdir(parents=True)
    (path / "config.json").write_text('{"algo": "ppo", "seeds": 1, "seed": 0, "config": {}}')
    (path / "metrics.json").write_text('{"episode_return": [[1.0]], "env_steps": [[1]]}')
    return path


@pytest.fixture(scope="module")
def two_results():
    """Two different sweep results of the stand-in algorithm (2 and 3 seeds)."""
    return [sweep.run(_fake_algo([]), CFG, GRID, seeds=s, log=None) for s in (2, 3)]


def test_save_refuses_a_sweep_a_run_a_file_and_a_locked_directory_leaving_each_byte_identical(tmp_path, two_results):
    import os
    import socket
    import subprocess
    import sys

    from _helpers import digest
    from purerl.run import sweepdir

    first, second = two_results
    sw = first.save(tmp_path / "sw")
    (sw / "episode_return.png").write_bytes(b"a plot drawn from the sweep")
    before = digest(sw)
    with pytest.raises(ValueError, match=r"`out` .*sw already holds a sweep: choose another `out`, or pass "
                                         r"overwrite=True to replace it"):
        second.save(sw)
    assert digest(sw) == before
    run = _run_dir(tmp_path / "run")
    run_before = digest(run)
    for overwrite in (False, True):      # a run is never replaced by a sweep
        with pytest.raises(ValueError, match=r"holds a run \(config.json, checkpoints/\), not a sweep"):
            second.save(run, overwrite=overwrite)
        assert digest(run) == run_before
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        second.save(tmp_path / "file")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:                                 # another process writes it: refused even with overwrite
        (sw / ".lock").write_text(f"{socket.gethostname()} {sleeper.pid}")
        locked = digest(sw)
        with pytest.raises(ValueError, match="being written by another purerl run"):
            second.save(sw, overwrite=True)
        assert digest(sw) == locked
    finally:
        sleeper.kill()
        sleeper.wait()
    os.unlink(sw / ".lock")
    # overwrite replaces the sweep: its two files, nothing else in the directory, no lock or staging left
    second.save(sw, overwrite=True)
    body, metrics = sweepdir.read_sweep(sw)
    assert body["seeds"] == 3 and metrics["episode_return"].shape[1] == 3
    assert sorted(p.name for p in sw.iterdir()) == ["episode_return.png", "metrics.npz", "sweep.json"]
    assert (sw / "episode_return.png").read_bytes() == b"a plot drawn from the sweep"


def test_a_save_that_fails_while_writing_keeps_the_old_sweep(tmp_path, two_results, monkeypatch):
    from _helpers import digest
    from purerl.run import sweepdir

    first, second = two_results
    sw = first.save(tmp_path / "sw")
    before = digest(sw)

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sweepdir.np, "savez_compressed", full_disk)
    with pytest.raises(OSError, match="No space left"):
        second.save(sw, overwrite=True)
    assert digest(sw) == before          # the old sweep whole; no .starting, no .lock
    with pytest.raises(OSError, match="No space left"):
        second.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()   # a directory created for the save is removed again


def test_sweep_command_guards_its_out_directory(tmp_path, two_results, monkeypatch, capsys):
    """`purerl sweep --out` follows `train`'s rules, refusing before anything is compiled: a sweep there is
    refused without --overwrite, a run always; a refused, failed or interrupted sweep leaves the directory
    byte-identical; --overwrite replaces the old sweep."""
    from _helpers import digest
    from purerl import cli
    from purerl.run import sweepdir

    first, second = two_results
    results = iter([first])
    monkeypatch.setattr(sweep, "run", lambda *a, **k: next(results))
    sw, run = tmp_path / "sw", _run_dir(tmp_path / "run")
    args = ["sweep", "ppo", "--no-cache", "--grid", "learning_rate=1e-4,3e-4"]
    assert cli.main([*args, "--out", str(sw)]) == 0
    assert sweepdir.read_sweep(sw)[0]["seeds"] == 2
    capsys.readouterr()
    before, run_before = digest(sw), digest(run)
    for extra, where, needle in (([], sw, f"--out {sw} already holds a sweep: choose another --out, or pass "
                                          f"--overwrite to replace it"),
                                 ([], run, f"--out {run} holds a run (config.json, checkpoints/), not a sweep: "
                                           f"choose another --out (--overwrite replaces only a sweep, never a run)"),
                                 (["--overwrite"], run, "holds a run")):
        code = cli.main([*args, "--out", str(where), *extra])   # sweep.run's iterator is spent: not reached
        err = capsys.readouterr().err
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert digest(sw) == before and digest(run) == run_before

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run", interrupted)
    assert cli.main([*args, "--out", str(sw), "--overwrite"]) == 130
    assert digest(sw) == before                                  # the old sweep stays, unlocked
    monkeypatch.setattr(sweep, "run", lambda *a, **k: second)
    assert cli.main([*args, "--out", str(sw), "--overwrite"]) == 0
    assert sweepdir.read_sweep(sw)[0]["seeds"] == 3 and sorted(p.name for p in sw.iterdir()) == SWEEP_LISTING


SWEEP_LISTING = ["metrics.npz", "sweep.json"]


def test_the_sweep_table_shows_config_indices_ranked_by_iqm():
    """Ranked by the IQM, the statistic purerl reports, not by the mean (here the two orders are opposite), and
    each line starts with the config's index, not its rank."""
    from purerl.run import stats

    final = np.array([[0.0, 10.0, 10.0, 10.0],      # IQM 10, mean 7.5
                      [9.0, 9.0, 9.0, 9.0],         # IQM 9, mean 9
                      [100.0, 0.0, 0.0, 0.0],       # IQM 0, mean 25: one seed shines alone
                      [np.nan, 1.0, 1.0, 1.0]])     # no finished episode in one seed: ranked last
    res = sweep.SweepResult(values={"learning_rate": np.array([1e-4, 3e-4, 1e-3, 3e-3])},
                            metrics={"episode_return": final[:, :, None]}, seeds=4)
    rows = res.summary()
    assert [r["config_index"] for r in rows] == [0, 1, 2, 3]
    assert [r["iqm"] for r in rows[:3]] == [stats.iqm(final[c]) for c in range(3)] == [10.0, 9.0, 0.0]
    assert res.best == {"learning_rate": 1e-4}
    lines = res.table().splitlines()
    assert lines[0].startswith("ranked by IQM over the 4 seeds (best first); config: its index")
    assert lines[1].split()[:2] == ["config", "learning_rate"]
    assert [line.split()[:2] for line in lines[3:]] == [["0", "0.0001"], ["1", "0.0003"], ["2", "0.001"],
                                                        ["3", "0.003"]]
