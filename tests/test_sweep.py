"""Sweeps: grid/random combinations x seeds as one program; sharded over 4 CPU devices == unsharded."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from purerl import ppo, sac, sweep

SMALL = ppo.Config(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 6, num_minibatches=2,
                   num_epochs=2, hidden_sizes=(16, 16))


def test_sweep_equals_individual_runs_and_ranks_configs():
    res = sweep.run(ppo, SMALL, grid={"learning_rate": [1e-3, 1e-2], "clip_eps": [0.1, 0.3]}, seeds=2, log=None)
    assert res.metrics["episode_return"].shape == (4, 2, SMALL.num_log_points)
    np.testing.assert_allclose(res.values["clip_eps"], [0.1, 0.1, 0.3, 0.3])   # product over sorted names
    np.testing.assert_allclose(res.values["learning_rate"], [1e-3, 1e-2, 1e-3, 1e-2], rtol=1e-6)
    keys = jax.random.split(jax.random.key(0), 2)
    single = jax.jit(ppo.make_train(SMALL.replace(learning_rate=1e-2, clip_eps=0.3)))(keys[1])
    np.testing.assert_allclose(res.metrics["episode_return"][3, 1], single.metrics["episode_return"], rtol=1e-5)
    rows = res.summary()
    assert [r["iqm"] for r in rows] == sorted((r["iqm"] for r in rows), reverse=True)
    final = res.final_returns()
    assert rows[0]["mean"] == pytest.approx(final[rows[0]["config_index"]].mean())
    from purerl.run import stats

    for r in rows:   # 2 seeds: the IQM cuts none; its interval is the stratified bootstrap over the seeds
        x = final[r["config_index"]]
        ci = stats.iqm_ci(x)
        assert r["iqm"] == pytest.approx(x.mean()) and (r["iqm_low"], r["iqm_high"]) == (ci.low, ci.high)
        assert r["iqm_low"] <= r["iqm"] <= r["iqm_high"]
    assert res.best == {"learning_rate": pytest.approx(rows[0]["learning_rate"]),
                        "clip_eps": pytest.approx(rows[0]["clip_eps"])}


def test_random_space_is_log_uniform_within_bounds():
    vals = sweep.combinations(space={"learning_rate": (1e-5, 1e-1, "log"), "gamma": (0.9, 0.99)}, samples=2000,
                              key=jax.random.key(0))
    lr = vals["learning_rate"]
    assert lr.min() >= 1e-5 and lr.max() <= 1e-1
    # log-uniform: each decade holds about a quarter of the draws
    counts = np.histogram(np.log10(lr), bins=[-5, -4, -3, -2, -1])[0] / len(lr)
    assert np.all(np.abs(counts - 0.25) < 0.05), counts
    assert vals["gamma"].min() >= 0.9 and vals["gamma"].max() <= 0.99


def test_sweeping_a_static_field_or_bad_value_is_a_clear_error():
    with pytest.raises(ValueError, match="`num_envs` is a static field.*Python loop"):
        sweep.run(ppo, SMALL, grid={"num_envs": [4, 8]}, log=None)
    with pytest.raises(ValueError, match="`learnin_rate` is not a field"):
        sweep.run(ppo, SMALL, grid={"learnin_rate": [1e-3]}, log=None)
    with pytest.raises(ValueError, match="`gamma`"):
        sweep.run(ppo, SMALL, grid={"gamma": [0.9, 1.5]}, log=None)
    with pytest.raises(ValueError, match="`tau`"):
        sweep.run(sac, sac.Config(), grid={"tau": [0.0, 0.1]}, log=None)


SHARDED = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import json, jax, numpy as np
    from purerl import ppo, sweep
    cfg = ppo.Config(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 6, num_minibatches=2,
                     num_epochs=2, hidden_sizes=(16, 16))
    grid = {"learning_rate": [1e-3, 3e-3, 1e-2]}
    msgs = []
    sharded = sweep.run(ppo, cfg, grid, seeds=2, log=msgs.append)
    single = sweep.run(ppo, cfg, grid, seeds=2, devices=jax.local_devices()[:1], log=msgs.append)
    chunked = sweep.run(ppo, cfg, grid, seeds=2, chunk_size=4, log=msgs.append)
    err = max(float(np.max(np.abs(a.metrics[k] - single.metrics[k]))) for a in (sharded, chunked) for k in single.metrics)
    print(json.dumps({"devices": [sharded.devices, single.devices, chunked.devices],
                      "chunks": [sharded.chunks, chunked.chunks], "max_abs_diff": err, "msgs": msgs}))
""")


def test_sharded_and_chunked_sweeps_equal_the_unsharded_one():
    p = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["devices"] == [4, 1, 4]
    assert out["chunks"] == [1, 2]                       # 6 runs in chunks of 4 (a multiple of the 4 devices)
    assert out["max_abs_diff"] < 1e-3
    assert any("2 chunks" in m for m in out["msgs"])


def test_sweep_command_prints_ranked_table(tmp_path):
    p = subprocess.run([sys.executable, "-m", "purerl.cli", "sweep", "ppo", "--env", "CartPole-v1",
                        "--total-timesteps", "768", "--num-envs", "4", "--grid", "learning_rate=1e-3,1e-2",
                        "--seeds", "2", "--set", "num_steps=32", "--set", "hidden_sizes=16,16",
                        "--set", "num_minibatches=2", "--out", str(tmp_path / "sw")],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "ranked by IQM" in p.stdout and "config   learning_rate" in p.stdout
    data = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert len(data["summary"]) == 2 and np.asarray(data["final_returns"]).shape == (2, 2)
    assert data["values"] == {"learning_rate": [1e-3, 1e-2]}            # as given, not their float32 roundings
    assert {r["learning_rate"] for r in data["summary"]} == {1e-3, 1e-2}
    assert data["algo"] == "ppo" and data["seed"] == 0 and data["config"]["num_steps"] == 32
    assert (tmp_path / "sw" / "metrics.npz").is_file()
    # `purerl plot` draws the sweep directory: one curve per config, the mean over its seeds
    from purerl import cli

    assert cli.main(["plot", str(tmp_path / "sw"), "--out", str(tmp_path / "sw.png"), "--reps", "50"]) == 0
    curves = json.loads((tmp_path / "sw.json").read_text())["curves"]
    with np.load(tmp_path / "sw" / "metrics.npz") as npz:
        ret = npz["episode_return"]
    assert sorted(c["label"] for c in curves) == ["ppo on CartPole-v1 (learning_rate=0.001)",
                                                  "ppo on CartPole-v1 (learning_rate=0.01)"]
    for c in curves:
        np.testing.assert_allclose(c["mean"], np.nanmean(ret[c["config_index"]], axis=0))
    p = subprocess.run([sys.executable, "-m", "purerl.cli", "sweep", "ppo", "--grid", "num_steps=32,64"],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert p.returncode == 2 and "static field" in p.stderr
