"""The files `purerl eval`, `purerl bench` and `purerl sweep` write, through the functions in purerl/run/ that
the command line and the Python API share: eval.json (rundir.eval_report / write_eval_report), the bench JSON
(bench.write_report), a sweep directory (sweepdir.write_sweep / read_sweep, which also reads the older layout
that stored the swept values in metrics.npz as value_<field>). Stand-ins keep every program tiny; the commands
themselves run in tests/test_cli.py, test_bench.py and test_sweep.py."""

import json
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import ppo, sweep
from purerl.config import config_to_dict
from purerl.run import bench, plot, rundir, stats, sweepdir

# ------------------------------------------------------------------------------------------------ eval.json


def _fake_run(path: Path, seeds: int = 3) -> rundir.Run:
    """A loaded run whose policy's episode returns are known: seed i's state is 10 * i, the deterministic
    policy returns state + episode index, the stochastic one minus that; lengths are random draws of the key."""
    def evaluate(state, key, num_episodes, deterministic):
        ep = jnp.arange(num_episodes, dtype=jnp.float32)
        return {"returns": (state + ep) * (1.0 if deterministic else -1.0),
                "lengths": jax.random.randint(key, (num_episodes,), 0, 1000)}

    trainer = types.SimpleNamespace(evaluate=evaluate)
    return rundir.Run(path=path, algo="ppo", module=ppo, config=ppo.Config(env="CartPole-v1"), seeds=seeds, seed=0,
                      trainer=trainer, state=10.0 * jnp.arange(seeds, dtype=jnp.float32), step=7, meta={})


def test_eval_report_holds_each_policys_returns_and_their_statistics(tmp_path):
    run = _fake_run(tmp_path)
    report = rundir.eval_report(run, episodes=4, seed=5)
    assert {k: report[k] for k in ("run", "algo", "env", "updates", "episodes_per_seed", "seeds")} == {
        "run": str(tmp_path), "algo": "ppo", "env": "CartPole-v1", "updates": 7, "episodes_per_seed": 4, "seeds": 3}
    keys = jax.random.split(jax.random.key(5), 3)     # one key per seed, from the seed given
    lengths = np.stack([np.asarray(jax.random.randint(k, (4,), 0, 1000)) for k in keys])
    for mode, sign in (("deterministic", 1.0), ("stochastic", -1.0)):
        r = report[mode]
        returns = sign * (10.0 * np.arange(3)[:, None] + np.arange(4)[None])
        assert r["returns"] == returns.tolist() and r["lengths"] == lengths.tolist()
        assert (r["mean"], r["std"], r["min"], r["max"]) == (returns.mean(), returns.std(), returns.min(),
                                                             returns.max())
        assert r["per_seed_mean"] == returns.mean(axis=1).tolist()
        ci = stats.iqm_ci(returns.mean(axis=1), seed=5)
        assert (r["iqm"], r["iqm_ci"]) == (ci.point, [ci.low, ci.high])
    path = rundir.write_eval_report(report)
    assert path == tmp_path / "eval.json" and json.loads(path.read_text()) == report
    other = rundir.write_eval_report(report, tmp_path / "other.json")
    assert json.loads(other.read_text()) == report


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"episodes": 0}, ValueError, "`episodes`"), ({"episodes": 2.5}, TypeError, "`episodes`"),
    ({"seed": -1}, ValueError, "`seed`"), ({"seed": 2**32}, ValueError, "`seed`"),
    ({"seed": "1"}, TypeError, "`seed`")])
def test_eval_report_checks_its_arguments_before_evaluating(tmp_path, kwargs, error, needle):
    run = _fake_run(tmp_path)
    run.trainer.evaluate = None        # evaluating would fail differently
    with pytest.raises(error, match=needle):
        rundir.eval_report(run, **kwargs)
    with pytest.raises(TypeError, match="`run` must be a loaded run"):
        rundir.eval_report(str(tmp_path))


# ------------------------------------------------------------------------------------------------ bench JSON


def test_bench_report_is_the_device_config_and_rows(tmp_path):
    cfg = ppo.Config(env="CartPole-v1", num_envs=8)
    rows = [{"algo": "ppo", "env": "CartPole-v1", "num_envs": n, "seeds": 1, "steps_per_s": 100.0 * n}
            for n in (4, 16)]
    device = {"platform": "cpu", "device_kind": "cpu", "device_count": 1, "jax": jax.__version__}
    path = bench.write_report(tmp_path / "new" / "b.json", cfg, rows, device, repeats=3)
    assert path == tmp_path / "new" / "b.json"
    assert json.loads(path.read_text()) == {"device": device, "algo": "ppo", "env": "CartPole-v1", "repeats": 3,
                                            "config": json.loads(json.dumps(config_to_dict(cfg))), "rows": rows}
    with pytest.raises(ValueError, match="`rows` is empty"):
        bench.write_report(tmp_path / "c.json", cfg, [], device)


# ------------------------------------------------------------------------------------------- sweep directory


def _result(metrics: dict, lrs=(1e-4, 3e-4)) -> sweep.SweepResult:
    return sweep.SweepResult(values={"learning_rate": np.asarray(lrs)}, metrics=metrics, seeds=2, algo="ppo",
                             config=ppo.Config(env="CartPole-v1"), seed=0)


def test_a_metric_named_like_a_swept_value_survives_save_and_read(tmp_path):
    # A metric `value_learning_rate` in a learning-rate sweep: the old layout stored the swept values under
    # that very name in metrics.npz (saving raised, reading dropped the metric); now the npz holds metrics only.
    rng = np.random.default_rng(0)
    metrics = {"episode_return": rng.uniform(0, 500, (2, 2, 5)), "value_learning_rate": rng.normal(size=(2, 2, 5)),
               "env_steps": np.broadcast_to(np.arange(1.0, 6.0) * 100, (2, 2, 5))}
    out = _result(metrics).save(tmp_path / "sw")
    body, read = sweepdir.read_sweep(out)
    assert body["format"] == sweepdir.FORMAT and body["values"] == {"learning_rate": [1e-4, 3e-4]}
    assert sorted(read) == sorted(metrics)
    for name, v in metrics.items():
        np.testing.assert_array_equal(read[name], v)
    with np.load(out / "metrics.npz") as npz:
        assert sorted(npz.files) == sorted(metrics)          # nothing but metrics
    curves = plot.load_curves([out], metric="value_learning_rate")
    for c in curves:
        np.testing.assert_array_equal(c["values"], metrics["value_learning_rate"][c["config_index"]])
        assert c["swept"] == {"learning_rate": [1e-4, 3e-4][c["config_index"]]}


def _old_sweep(path: Path, returns: np.ndarray, lrs: list) -> Path:
    """A sweep directory as purerl wrote it before sweep.json had a `format`: the swept values also in the npz."""
    path.mkdir()
    steps = np.broadcast_to(np.arange(1, returns.shape[-1] + 1) * 100.0, returns.shape)
    (path / "sweep.json").write_text(json.dumps({
        "algo": "ppo", "env": "CartPole-v1", "config": {"env": "CartPole-v1", "learning_rate": 2.5e-4},
        "seeds": returns.shape[1], "seed": 0, "metric": "episode_return", "values": {"learning_rate": lrs},
        "summary": [{"learning_rate": lrs[c], "config_index": c} for c in range(len(lrs))]}))
    np.savez_compressed(path / "metrics.npz", episode_return=returns, env_steps=steps,
                        value_learning_rate=np.asarray(lrs))
    return path


def test_an_old_sweep_directory_reads_and_plots_as_before(tmp_path):
    from purerl import cli

    returns = np.random.default_rng(1).uniform(0, 500, (2, 3, 6))
    old = _old_sweep(tmp_path / "old", returns, [1e-3, 1e-2])
    body, metrics = sweepdir.read_sweep(old)
    assert sorted(metrics) == ["env_steps", "episode_return"]   # the old value_<field> entry is not a metric
    np.testing.assert_array_equal(metrics["episode_return"], returns)
    assert cli.main(["plot", str(old), "--out", str(tmp_path / "old.png"), "--reps", "20"]) == 0
    curves = json.loads((tmp_path / "old.json").read_text())["curves"]
    assert [c["label"] for c in curves] == ["ppo on CartPole-v1 (learning_rate=0.001)",
                                            "ppo on CartPole-v1 (learning_rate=0.01)"]
    for c in curves:
        np.testing.assert_allclose(c["mean"], returns[c["config_index"]].mean(axis=0))


def test_a_damaged_or_newer_sweep_directory_is_a_value_error_naming_the_file(tmp_path):
    metrics = {"episode_return": np.zeros((2, 2, 3)), "env_steps": np.ones((2, 2, 3))}
    out = _result(metrics).save(tmp_path / "sw")
    body = json.loads((out / "sweep.json").read_text())
    (out / "sweep.json").write_text(json.dumps({**body, "format": sweepdir.FORMAT + 1}))
    with pytest.raises(ValueError, match=f"format {sweepdir.FORMAT + 1}, newer than"):
        sweepdir.read_sweep(out)
    (out / "sweep.json").write_text(json.dumps(body))
    (out / "metrics.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="metrics.npz is damaged"):
        sweepdir.read_sweep(out)
    (out / "sweep.json").write_text("{")
    with pytest.raises(ValueError, match="sweep.json is damaged"):
        sweepdir.read_sweep(out)
