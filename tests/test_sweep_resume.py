"""A sweep lives the life of a training run (purerl.run.lifecycle): its whole state is checkpointed, a stopped
sweep resumes (`purerl resume DIR`, sweep.resume) to the uninterrupted sweep bit for bit, and the non-finite
guard stops a sweep whose values diverge as it stops a run."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import cli, ppo, sweep
from purerl.run import checkpoint as ckpt
from purerl.run import rundir, sweepdir
from _helpers import stop_in

SMALL = ppo.Config(env="CartPole-v1", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 6, num_minibatches=2,
                   num_epochs=1, hidden_sizes=(8, 8))
GRID = {"learning_rate": [1e-3, 1e-2]}


def _leaves(tree):
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
            for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("chunk_size", [None, 3], ids=["one-group", "groups-of-3"])
def test_a_stopped_sweep_resumes_to_the_uninterrupted_sweep_bit_for_bit(tmp_path, monkeypatch, chunk_size):
    # 2 configs x 2 seeds, 6 updates in chunks of 2; with chunk_size 3 the 4 runs go in 2 groups (the last padded)
    # whose states wait on the host in turn
    kw = dict(seeds=2, chunk_size=chunk_size, checkpoint_every=2, log=None)
    whole = sweep.run(ppo, SMALL, GRID, out=tmp_path / "whole", **kw)
    assert whole.finished and whole.metrics["episode_return"].shape == (2, 2, 6) and whole.out == tmp_path / "whole"
    assert ckpt.latest_step(tmp_path / "whole" / "checkpoints") == 6
    stop_in(monkeypatch, 2)                                        # Ctrl-C during the second chunk
    stopped = sweep.run(ppo, SMALL, GRID, out=tmp_path / "sw", **kw)
    assert stopped.interrupted and stopped.updates_done == 4 and stopped.signal == signal.SIGINT
    assert ckpt.latest_step(tmp_path / "sw" / "checkpoints") == 4 and not (tmp_path / "sw" / ".starting").exists()
    body, metrics = sweepdir.read_sweep(tmp_path / "sw")             # a stopped sweep reads (and plots) too
    assert body["updates_done"] == 4 and metrics["episode_return"].shape == (2, 2, 4)
    monkeypatch.undo()
    resumed = sweep.resume(tmp_path / "sw", log=None)
    assert resumed.finished and resumed.start_update == 4 and resumed.updates_done == 6
    assert set(resumed.metrics) == set(whole.metrics)
    for k in whole.metrics:
        np.testing.assert_array_equal(resumed.metrics[k], whole.metrics[k], err_msg=k)
        assert resumed.metrics[k].dtype == whole.metrics[k].dtype, k
    # the final checkpoints hold the same state of every run; the files say the same
    runs = sweep.Sweep(ppo, SMALL, {k: np.asarray(v) for k, v in GRID.items()}, seeds=2, seed=0, key=None,
                       impl="threefry2x32", chunk_size=chunk_size, devices=jax.devices()[:1], metric="episode_return",
                       checkpoint_every=2, log=None)
    a, meta_a = ckpt.restore(tmp_path / "whole" / "checkpoints", runs.state_shape(4))
    b, meta_b = ckpt.restore(tmp_path / "sw" / "checkpoints", runs.state_shape(4))
    assert meta_a["updates_done"] == meta_b["updates_done"] == 6 and meta_b["runs"] == 4
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    sa, sb = (json.loads((tmp_path / d / "sweep.json").read_text()) for d in ("whole", "sw"))
    assert sa["summary"] == sb["summary"] and sa["final_returns"] == sb["final_returns"] and sb["updates_done"] == 6
    with pytest.raises(ValueError, match="is finished"):
        sweep.resume(tmp_path / "sw", log=None)


def test_the_guard_stops_a_sweep_whose_learning_rate_diverges_as_it_stops_a_run(tmp_path, capsys):
    out = tmp_path / "sw"
    code = cli.main(["sweep", "ppo", "--env", "CartPole-v1", "--num-envs", "4", "--total-timesteps", str(4 * 16 * 6),
                     "--set", "num_steps=16", "--set", "hidden_sizes=8,8", "--set", "num_minibatches=2",
                     "--grid", "learning_rate=1e-3,1e30", "--seeds", "2", "--no-cache", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_DIVERGED, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("purerl: stopped: non-finite `"), err
    assert "at update 1 (config 1, seed index 0): training diverged" in err            # the Ctrl-C-free shape of
    assert "there is no good state to keep" in err and "`purerl sweep` again" in err     # train's message
    assert f"{out}/metrics.npz" in err
    body, metrics = sweepdir.read_sweep(out)
    assert body["updates_done"] == 0 and metrics["episode_return"].shape[:2] == (2, 2)   # the bad chunk's metrics


@pytest.fixture
def nan_from_update_3_above_lr_1(monkeypatch):
    """PPO whose policy loss becomes NaN from update 3 on where the learning rate is above 1 (a stand-in for a
    learning rate that diverges after a few updates)."""
    original = ppo.make

    def make(cfg, **kwargs):
        trainer = original(cfg, **kwargs)

        def update(state):
            state, metrics = trainer.update(state)
            bad = (state.update_step >= 3) & (cfg.learning_rate > 1.0)
            metrics["policy_loss"] = jnp.where(bad, jnp.nan, metrics["policy_loss"])
            return state, metrics

        return trainer.replace(update=update)

    monkeypatch.setattr(ppo, "make", make)


def test_a_sweep_that_diverges_later_keeps_the_state_before_the_bad_chunk(tmp_path, nan_from_update_3_above_lr_1,
                                                                          capsys):
    out = tmp_path / "sw"
    code = cli.main(["sweep", "ppo", "--env", "CartPole-v1", "--num-envs", "4", "--total-timesteps", str(4 * 16 * 6),
                     "--set", "num_steps=16", "--set", "hidden_sizes=8,8", "--set", "num_minibatches=2",
                     "--grid", "learning_rate=1e-3,10", "--seeds", "2", "--no-cache", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_DIVERGED and err.count("\n") == 1, err
    assert "non-finite `policy_loss` (nan) at update 3 (config 1, seed index 0)" in err
    assert f"the last good checkpoint is {out / 'checkpoints'}/2 (after update 2)" in err   # chunks of 1 update
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["2"]   # saved before the divergence only
    body, metrics = sweepdir.read_sweep(out)
    assert body["updates_done"] == 2 and np.isnan(metrics["policy_loss"][1, :, 2]).all()
    assert np.isfinite(metrics["policy_loss"][:, :, :2]).all() and np.isfinite(metrics["policy_loss"][0]).all()


def test_a_sweep_of_an_older_purerl_reads_but_does_not_resume(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "sweep.json").write_text(json.dumps({
        "format": 2, "algo": "ppo", "env": "CartPole-v1", "config": {"env": "CartPole-v1"}, "seeds": 2, "seed": 0,
        "metric": "episode_return", "values": {"learning_rate": [1e-3, 1e-2]},
        "summary": [{"learning_rate": 1e-3, "config_index": 0}, {"learning_rate": 1e-2, "config_index": 1}]}))
    np.savez_compressed(old / "metrics.npz", episode_return=np.ones((2, 2, 3)), env_steps=np.ones((2, 2, 3)))
    assert rundir.kind_of(old) == "sweep" and sweepdir.read_sweep(old)[1]["episode_return"].shape == (2, 2, 3)
    assert cli.main(["resume", str(old), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be resumed" in err and "older purerl (format 2)" in err, err


def _purerl(*args, cwd):
    # Ctrl-C as in a terminal: a test runner's worker may ignore SIGINT, and purerl leaves an ignored one ignored
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from purerl.cli import console; sys.argv[0] = 'purerl'; console()")
    return subprocess.Popen([sys.executable, "-c", code, *args, "--no-cache"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**{k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}, "JAX_PLATFORMS": "cpu"})


@pytest.mark.slow
def test_ctrl_c_to_purerl_sweep_then_purerl_resume_equals_the_uninterrupted_sweep(tmp_path):
    # 1000 updates in chunks of 100: the uninterrupted sweep and the one stopped by Ctrl-C run side by side, on one
    # device; `purerl resume` takes as many as the sweep recorded
    args = ["sweep", "ppo", "--env", "CartPole-v1", "--num-envs", "4", "--total-timesteps", str(4 * 16 * 1000),
            "--set", "num_steps=16", "--set", "hidden_sizes=8,8", "--set", "num_minibatches=2",
            "--grid", "learning_rate=1e-3,3e-3", "--seeds", "2", "--checkpoint-every", "100"]
    whole = _purerl(*args, "--out", "whole", "--cpu-devices", "1", cwd=tmp_path)
    stopped = _purerl(*args, "--out", "sw", "--cpu-devices", "1", cwd=tmp_path)
    deadline = time.time() + 400
    while not (tmp_path / "sw" / ".starting" / "sweep.json").exists():   # written when the chunks start
        assert stopped.poll() is None, stopped.communicate()[1][-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    stopped.send_signal(signal.SIGINT)
    _, err = stopped.communicate(timeout=400)
    assert stopped.returncode == 130, err[-3000:]
    assert "SIGINT: stopping after the running chunk (updates 1-100 of 1000) and saving the sweep" in err
    sw = tmp_path / "sw"
    step = ckpt.latest_step(sw / "checkpoints")
    assert f"saved the state after {step}/1000 updates to {sw.relative_to(tmp_path) / 'checkpoints'}" in err
    assert "continue with `purerl resume sw`" in err and 100 <= step < 1000
    assert json.loads((sw / "sweep.json").read_text())["devices"] == 1
    resumed = _purerl("resume", "sw", cwd=tmp_path)   # on the one device the sweep used (its sweep.json says so)
    out, err = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, err[-3000:]
    assert f"resumed after update {step} of 1000" in out and "ranked by IQM" in out
    assert whole.wait(timeout=400) == 0, whole.communicate()[1][-3000:]
    a, b = sweepdir.read_sweep(tmp_path / "whole"), sweepdir.read_sweep(sw)
    assert b[0]["updates_done"] == 1000 and b[0]["summary"] == a[0]["summary"]
    for k in a[1]:
        np.testing.assert_array_equal(b[1][k], a[1][k], err_msg=k)
