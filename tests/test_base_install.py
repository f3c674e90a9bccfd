"""What the README's install (`pip install -e .`, no extras) does on its own: `purerl train` and `purerl export` in
the default (jax) format, and the exported file loaded by a process that imports jax and nothing of purerl's,
which needs only jax and flatbuffers (what the README tells a consumer to install).

The normal suite runs this file in its environment, which has extras; CI also runs it in a virtual environment
made with the base install and pytest only (.ci/run), where PURERL_BASE_INSTALL=1 makes the test first check
that no extra is installed, so a dependency that only an extra brings cannot hide here."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

# One import of each extra in pyproject.toml that the base install does not bring (brax requires tensorboardX,
# the tensorboard extra's package): none may be present in the base-install environment.
EXTRAS = {"dev": "xdist", "docs": "mkdocs", "playground": "mujoco_playground", "craftax": "craftax",
          "onnx": "jax2onnx", "wandb": "wandb", "cuda12": "jax_cuda12_plugin", "cuda13": "jax_cuda13_plugin"}

# Loads policy.jax and prints the actions of the observations in obs.npy; run with only the packages of
# `pip install jax flatbuffers` on its path.
CONSUMER = """
import json
import numpy as np
import jax

with open("policy.jax", "rb") as f:
    policy = jax.export.deserialize(f.read())
print(json.dumps(np.asarray(policy.call(np.load("obs.npy"))).tolist()))
"""


def _installed_with(*names: str) -> set[str]:
    """The distributions ``pip install NAMES`` brings: ``names`` and their requirements (without extras),
    transitively, as this environment resolved them."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found, todo = set(), list(names)
    while todo:
        dist = metadata.distribution(todo.pop())
        if dist.metadata["Name"] in found:
            continue
        found.add(dist.metadata["Name"])
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def _site_of(tmp_path: Path, distributions: set[str]) -> Path:
    """A directory holding (links to) the files of ``distributions`` only: a Python started with ``-S`` and
    this directory on its path sees no other installed package."""
    from importlib import metadata

    site = tmp_path / f"site-{len(list(tmp_path.glob('site-*')))}"
    site.mkdir()
    for name in distributions:
        dist = metadata.distribution(name)
        for top in {f.parts[0] for f in dist.files or () if f.parts[0] not in ("..", "__pycache__")}:
            if not (site / top).exists():
                (site / top).symlink_to(dist.locate_file(top))
    return site


def _run(cmd, cwd, path=None):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("PYTHONPATH", None)
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_train_export_and_load_with_the_base_install(tmp_path):
    if os.environ.get("PURERL_BASE_INSTALL") == "1":   # CI's base-install environment: really without extras
        present = [extra for extra, module in EXTRAS.items() if importlib.util.find_spec(module) is not None]
        assert not present, f"the base-install environment has the extras {present}"
    script = Path(sys.executable).with_name("purerl")   # the command the install puts beside its python
    purerl = [str(script)] if script.exists() else [sys.executable, "-m", "purerl.cli"]
    if os.environ.get("PURERL_BASE_INSTALL") == "1":
        assert script.exists(), f"the install put no `purerl` command beside {sys.executable}"

    p = _run([*purerl, "train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "512", "--num-envs", "4",
              "--set", "num_steps=32", "--set", "num_minibatches=2", "--set", "hidden_sizes=16,16",
              "--set", "normalize_obs=true", "--out", "run", "--no-progress", "--no-cache"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    p = _run([*purerl, "export", "run", "--no-cache"], tmp_path)          # the default format: jax
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert p.stdout.startswith("wrote run/policy.jax (jax): (obs float32 [batch, 4]) -> (action int32 [batch])")

    obs = np.random.default_rng(0).normal(scale=3.0, size=(64, 4)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    (tmp_path / "policy.jax").write_bytes((tmp_path / "run" / "policy.jax").read_bytes())
    consumer = _installed_with("jax", "flatbuffers")     # what the README tells a consumer to install
    assert "purerl" not in consumer and {"jaxlib", "numpy"} <= consumer
    p = _run([sys.executable, "-S", "-c", CONSUMER], tmp_path, _site_of(tmp_path, consumer))
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    # and flatbuffers is needed: without it jax cannot read the file
    p = _run([sys.executable, "-S", "-c", CONSUMER], tmp_path, _site_of(tmp_path, consumer - {"flatbuffers"}))
    assert p.returncode != 0 and "install 'flatbuffers'" in p.stderr, p.stderr[-3000:]

    from purerl.run import rundir

    run = rundir.load(tmp_path / "run")
    want = np.asarray(run.trainer.policy(run.seed_state(0))(obs))
    assert got == want.tolist() and len(set(got)) == 2   # the run's policy, both actions occurring
