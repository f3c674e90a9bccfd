"""`purerl train` compiles only the programs the runner needs: no env code runs eagerly before training (eager
jax compiles every primitive on its own: building brax/ant and asking its observation size used to take 636 XLA
compilations on a CPU, about 190 on a GPU where each costs a launch and a compile).

Each count is taken in a fresh process (the suites cache their env objects, so an earlier test in the same
process would hide a regression), from jax.monitoring's backend-compile events, with the compilation cache off.
"""

import json
import os
import subprocess
import sys

import pytest

MAX_COMPILATIONS = 10  # init, the chunk, the finite check, the evaluation, and a few scalar conversions

COUNT = r"""
import json, sys
from jax import monitoring
events = []
monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: events.append(event) if event == "/jax/core/compile/backend_compile_duration"
    else None)
from purerl import cli
code = cli.main(sys.argv[2:])
json.dump({"code": code, "compilations": len(events)}, open(sys.argv[1], "w"))
"""


def count_compilations(tmp_path, *args):
    out = tmp_path / "count.json"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", COUNT, str(out), "train", *args, "--out", str(tmp_path / "run"),
                           "--no-progress", "--no-cache"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["code"] == 0
    return result["compilations"]


def test_a_brax_run_compiles_at_most_ten_programs(tmp_path):
    n = count_compilations(tmp_path, "ppo", "--env", "brax/ant", "--num-envs", "2", "--total-timesteps", "256",
                           "--set", "num_steps=32", "--set", "num_minibatches=2", "--set", "hidden_sizes=16",
                           "--eval-episodes", "1")
    assert 4 <= n <= MAX_COMPILATIONS, n


@pytest.mark.slow
def test_a_playground_run_compiles_at_most_ten_programs(tmp_path):
    pytest.importorskip("mujoco_playground")
    n = count_compilations(tmp_path, "ppo", "--env", "playground/PendulumSwingup", "--num-envs", "2",
                           "--total-timesteps", "256", "--set", "num_steps=32", "--set", "num_minibatches=2",
                           "--set", "hidden_sizes=16", "--eval-episodes", "1")
    assert 4 <= n <= MAX_COMPILATIONS, n
