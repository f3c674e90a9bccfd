"""`purerl bench` and purerl.run.bench: the table and JSON it writes, the env-only ceiling, bad input."""

import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import ppo, sac
from purerl.run import bench

TINY = ["--env", "CartPole-v1", "--set", "num_steps=32", "--set", "hidden_sizes=8,8", "--set", "num_minibatches=2"]


def _purerl(*args, cwd):
    return subprocess.run([sys.executable, "-m", "purerl.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_bench_writes_a_table_whose_sps_is_steps_over_run_seconds(tmp_path):
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    p = _purerl("bench", "ppo", *TINY, "--num-envs", "4", "--seeds", "1,2", "--steps", "512", "--out", str(out),
                "--plot", str(png), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["device"]["platform"] == "cpu" and data["device"]["jax"] == jax.__version__
    assert "device: cpu" in p.stdout and f"jax {jax.__version__}" in p.stdout
    rows = data["rows"]
    assert [(r["num_envs"], r["seeds"]) for r in rows] == [(4, 1), (4, 2)]
    for r in rows:
        assert r["steps_per_seed"] == 512          # 4 updates of 4 x 32 env steps
        assert r["env_steps"] == 512 * r["seeds"] == r["ceiling_env_steps"]
        assert r["steps_per_s"] == r["env_steps"] / r["run_s"]
        assert r["ceiling_steps_per_s"] == r["ceiling_env_steps"] / r["ceiling_run_s"]
        assert r["train_over_ceiling"] == r["steps_per_s"] / r["ceiling_steps_per_s"]
        line = (f"{r['num_envs']:>9}{r['seeds']:>7}{r['compile_s']:>11.2f}{r['run_s']:>9.2f}{r['steps_per_s']:>14,.0f}"
                f"{r['ceiling_steps_per_s']:>17,.0f}{r['train_over_ceiling']:>15.3f}")
        assert line in p.stdout.splitlines()       # the printed table is the JSON's numbers
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (700, 450)


def test_bad_bench_input_is_one_line_before_compiling(tmp_path, capsys, monkeypatch):
    from purerl import cli

    monkeypatch.setattr(bench, "run_bench", None)    # nothing may get as far as compiling
    out = tmp_path / "b.json"
    for args, needle in ((["--num-envs", "4,x"], "--num-envs"), (["--seeds", "0"], "--seeds"),
                         (["--steps", "100"], "--steps"), (["--steps", "512", "--num-envs", "4,64"], "--steps"),
                         (["--out", "b.txt"], ".json"), (["--set", "gamma=2"], "`gamma`"),
                         (["--repeats", "0"], "--repeats"), (["--env", "CartPol-v1"], "CartPole-v1"),
                         (["--num-envs", "0"], "--num-envs"), (["--steps", "0"], "total_timesteps")):
        try:
            code = cli.main(["bench", "ppo", *TINY, "--out", str(out), *args])
        except SystemExit as e:   # argparse's one-line error
            code = e.code
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert needle in err and len(err.strip().splitlines()) == 1, (args, err)
        assert not out.exists()


def test_ceiling_steps_the_trainers_env_as_many_steps_with_random_actions():
    trainer = ppo.make(ppo.Config(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=4 * 32 * 5,
                                  hidden_sizes=(8, 8), num_minibatches=2))
    run, steps = bench.env_ceiling_fn(trainer)
    assert steps == trainer.num_log_points * trainer.steps_per_log_point == 640
    episodes = float(jax.jit(run)(jax.random.key(0)))
    assert 640 / 40 < episodes < 640 / 12     # random CartPole episodes last about 22 steps
    off = sac.make(sac.Config(env="Pendulum-v1", total_timesteps=600, learning_starts=200, hidden_sizes=(8, 8),
                              batch_size=16, num_log_points=2))
    _, steps = bench.env_ceiling_fn(off)       # the warm-up steps count too
    assert steps == off.env_steps_before + off.num_log_points * off.steps_per_log_point == 600


def test_measure_times_the_call_after_the_warmup():
    calls = []

    def fn(x):
        # the warm-up call returns at once, the timed one takes at least 0.3 s
        jax.debug.callback(lambda: (time.sleep(0.3) if calls else None, calls.append(1)))
        return x + 1

    compile_s, run_s, out = bench.measure(fn, jnp.zeros(3), repeats=1, warmup=1)
    assert len(calls) == 2 and run_s >= 0.3   # a timed warm-up call would have taken no time
    np.testing.assert_array_equal(out, np.ones(3))
    with pytest.raises(ValueError, match="--seeds"):
        bench.validate_points(ppo, ppo.Config(), [4], [1, 1])


def test_every_repeat_count_is_checked_before_compiling(monkeypatch):
    monkeypatch.setattr(bench, "measure", None)     # run_bench must stop before timing anything
    cfg = ppo.Config(env="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=512, hidden_sizes=(8,),
                     num_minibatches=2)
    for repeats, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError)):
        with pytest.raises(error, match="`repeats`"):
            bench.run_bench("ppo", cfg, [4], [1], repeats=repeats)
    with pytest.raises(ValueError, match="bench: --seeds must be at least 1, got 0"):   # also with trainers given
        bench.run_bench("ppo", cfg, [4], [0], trainers=[ppo.make(cfg)])
    monkeypatch.undo()
    compiled = []
    fn = lambda x: compiled.append(1) or x    # noqa: E731 - traced (appends) only if it gets that far
    for kwargs in ({"repeats": 0}, {"repeats": 1, "warmup": -1}):
        with pytest.raises(ValueError, match="`repeats`|`warmup`"):
            bench.measure(fn, jnp.zeros(2), **kwargs)
    with pytest.raises(ValueError, match="`repeats`"):
        bench.interleaved({"a": fn}, jnp.zeros(2), 0)
    assert compiled == []
