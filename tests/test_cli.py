import json
import os
import subprocess
import sys

import numpy as np


def _purerl(*args, cwd):
    return subprocess.run([sys.executable, "-m", "purerl.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_train_writes_run_directory_and_summary(tmp_path):
    out = tmp_path / "run"
    p = _purerl("train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "2048", "--num-envs", "4",
                "--seeds", "2", "--set", "num_steps=64", "--set", "hidden_sizes=16,16", "--out", str(out),
                cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "final return" in p.stdout and "compile" in p.stdout and "env steps/s" in p.stdout
    for name in ("config.json", "metrics.csv", "metrics.json", "params.msgpack", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == 2 and summary["env_steps_per_seed"] == 2048
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.asarray(metrics["env_steps"]).shape == (2, 8)          # [seeds, log points]
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["num_steps"] == 64 and config["hidden_sizes"] == [16, 16]
    lines = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 2 * 8


def test_bad_config_is_a_clear_error(tmp_path):
    p = _purerl("train", "ppo", "--set", "gamma=1.5", "--no-progress", cwd=tmp_path)
    assert p.returncode == 2 and "`gamma`" in p.stderr
    p = _purerl("train", "ppo", "--env", "CartPol-v1", "--no-progress", cwd=tmp_path)
    assert p.returncode == 2 and "CartPole-v1" in p.stderr


def test_train_sac_from_the_command_line(tmp_path):
    out = tmp_path / "sac"
    p = _purerl("train", "sac", "--env", "Pendulum-v1", "--total-timesteps", "600", "--set", "learning_starts=200",
                "--set", "hidden_sizes=16,16", "--set", "batch_size=32", "--set", "num_evals=3",
                "--eval-episodes", "2", "--no-progress", "--out", str(out), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.asarray(metrics["eval_return"]).shape == (1, 3)
    assert np.isfinite(np.asarray(metrics["critic_loss"])).all()
    p = _purerl("train", "td3", "--env", "CartPole-v1", "--no-progress", cwd=tmp_path)
    assert p.returncode == 2 and "discrete" in p.stderr
