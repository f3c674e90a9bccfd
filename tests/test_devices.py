"""Seeds over the CPU's cores (purerl.run.devices): the device count is set before jax starts, the runner splits
the seeds over the devices, and each device computes its seeds exactly as the one-device program of its share."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from purerl.run import devices


def _python(code: str, xla_flags: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_largest_split():
    assert [devices.largest_split(r, d) for r, d in [(4, 2), (3, 2), (6, 4), (1, 8), (16, 16), (7, 7), (12, 5)]] == \
        [2, 1, 3, 1, 16, 7, 4]


def test_use_cpu_cores_sets_the_count_before_jax_starts_only():
    out = _python("""
        import json
        from purerl.run import devices
        first = devices.use_cpu_cores(3)
        import jax
        n = jax.local_device_count()
        late = devices.use_cpu_cores(2)       # XLA_FLAGS now names 3: that count is in force
        import os
        os.environ.pop("XLA_FLAGS")
        after = devices.use_cpu_cores(2)      # jax's backends have started: nothing can change
        print(json.dumps([first, n, late, after]))
    """)
    assert json.loads(out) == [3, 3, 3, None]
    out = _python("""
        from purerl.run import devices
        import jax
        print(devices.use_cpu_cores(4), jax.local_device_count())
    """, xla_flags="--xla_force_host_platform_device_count=2")
    assert out == "2 2"                       # the user's own XLA_FLAGS wins
    with pytest.raises(ValueError, match="positive integer"):
        devices.use_cpu_cores(0)


def test_split_seeds_equal_each_devices_share_run_alone(tmp_path):
    """4 seeds over 2 devices give per seed what the same runner gives on one device for seeds 0-1 and 2-3 as runs
    of 2 seeds: the split changes where the seeds run, not what is computed. With jax 0.9 every metric is equal
    bit for bit; jax 0.11's partitioned program sums some losses' reductions in another order (measured: the
    last bits of policy_loss, value_loss, approx_kl and grad_norm), so there the episodes (returns, lengths,
    steps: what the policies did over these 8 updates) are equal bit for bit and the losses to float rounding."""
    out = _python(f"""
        import json, numpy as np
        from purerl import ppo
        from purerl.run import devices, rundir, runner
        cfg = ppo.Config(env="CartPole-v1", total_timesteps=8 * 512)
        split = runner.train("ppo", cfg, {str(tmp_path / 'split')!r}, seeds=4, progress=False)
        keys = rundir.train_keys(0, 4)
        devices.local_mesh = lambda runs, axis="seeds": None          # one device from here on
        halves = []
        for i, half in enumerate((keys[:2], keys[2:])):
            rundir.train_keys = lambda seed, seeds, half=half: half
            halves.append(runner.train("ppo", cfg, {str(tmp_path)!r} + f"/half{{i}}", seeds=2, progress=False))
        import jax
        old_jax = tuple(int(x) for x in jax.__version__.split(".")[:2]) < (0, 10)
        exact = [m for m in split.metrics if old_jax or m.startswith(("episode_", "env_steps"))]
        same = all(np.array_equal(split.metrics[m], np.concatenate([h.metrics[m] for h in halves]), equal_nan=True)
                   for m in exact)
        close = all(np.allclose(split.metrics[m], np.concatenate([h.metrics[m] for h in halves]), rtol=1e-5,
                                atol=1e-6, equal_nan=True) for m in split.metrics)
        print(json.dumps([split.summary["devices"], halves[0].summary["devices"], len(split.metrics) > 5,
                          len(exact) >= 3, same, close]))
    """, xla_flags="--xla_force_host_platform_device_count=2")
    assert json.loads(out) == [2, 1, True, True, True, True]


def test_train_command_splits_seeds_by_default_and_cpu_devices_1_turns_it_off(tmp_path):
    def header(*extra):
        done = subprocess.run([sys.executable, "-m", "purerl.cli", "train", "ppo", "--env", "CartPole-v1",
                               "--total-timesteps", "1024", "--seeds", "4", "--no-progress", "--fused", "--no-cache",
                               "--out", str(tmp_path / f"run{len(extra)}{extra[-1] if extra else ''}"), *extra],
                              capture_output=True, text=True, timeout=600,
                              env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"})
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.splitlines()[0]

    assert header("--cpu-devices", "2").endswith("4 seed(s) x 1,024 env steps, split over 2 devices")
    assert header("--cpu-devices", "1").endswith("4 seed(s) x 1,024 env steps")
    split = devices.largest_split(4, devices.cores())
    assert header().endswith("env steps" if split == 1 else f"split over {split} devices")


def test_resume_splits_the_seeds_as_the_run_did(tmp_path):
    """A run trained on one device resumes on one device on a machine of several cores (its config.json records
    the split), so the resumed run equals the uninterrupted one bit for bit."""
    import shutil

    import numpy as np

    def purerl(*args):
        done = subprocess.run([sys.executable, "-m", "purerl.cli", *args, "--no-cache"], capture_output=True,
                              text=True, timeout=600, env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"})
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    run = tmp_path / "run"
    purerl("train", "ppo", "--env", "CartPole-v1", "--total-timesteps", "3072", "--seeds", "2", "--cpu-devices", "1",
           "--checkpoint-every", "2", "--no-progress", "--out", str(run))
    assert json.loads((run / "config.json").read_text())["devices"] == 1
    whole = json.loads((run / "metrics.json").read_text())
    shutil.rmtree(run / "checkpoints" / "6")          # a crash after the checkpoint at update 4
    (run / "summary.json").unlink()
    purerl("resume", str(run), "--no-progress")
    resumed = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "summary.json").read_text())["devices"] == 1
    for name, values in whole.items():
        np.testing.assert_array_equal(np.asarray(resumed[name]), np.asarray(values), err_msg=name)
