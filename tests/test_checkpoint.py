"""Checkpoints: a run saved halfway, restored and finished equals the uninterrupted run, bit for bit. Equal by
construction: both execute the same compiled programs; only the state's trip through the disk differs."""

import shutil

import jax
import numpy as np
import pytest

from purerl import dqn, pqn, ppo, sac
from purerl.core.loop import run_chunk
from purerl.run import checkpoint as ckpt

CONFIGS = {
    "ppo": (ppo, ppo.Config(env="CartPole-v1", total_timesteps=4 * 32 * 6, num_envs=4, num_steps=32,
                            num_minibatches=2, hidden_sizes=(16, 16))),
    "ppo-recurrent": (ppo, ppo.Config(env="CartPole-v1", total_timesteps=4 * 32 * 4, num_envs=4, num_steps=32,
                                      num_minibatches=2, hidden_sizes=(16, 16), recurrent=True)),  # state holds memory
    "sac": (sac, sac.Config(env="Pendulum-v1", total_timesteps=600, learning_starts=200, num_log_points=4,
                            eval_episodes=2, batch_size=32, hidden_sizes=(16, 16))),   # state holds the replay buffer
    "sac-normalized": (sac, sac.Config(env="Pendulum-v1", total_timesteps=600, learning_starts=200, num_log_points=4,
                                       eval_episodes=2, batch_size=32, hidden_sizes=(16, 16),
                                       normalize_obs=True)),   # and the observation statistics
    # the sequence replay of n-step returns and the epsilon schedule's count
    "dqn": (dqn, dqn.Config(env="CartPole-v1", total_timesteps=600, learning_starts=200, num_envs=2, num_log_points=4,
                            eval_episodes=2, batch_size=32, hidden_sizes=(16, 16), n_step=3,
                            target_update_period=7)),
    "pqn": (pqn, pqn.Config(env="CartPole-v1", total_timesteps=4 * 16 * 6, num_envs=4, num_steps=16,
                            num_minibatches=2, hidden_sizes=(16,), epsilon_anneal_fraction=1.0)),  # epsilon moves
}


@pytest.mark.parametrize("name", ["ppo", "ppo-recurrent", "sac", "sac-normalized", "dqn", "pqn"])
def test_resumed_run_equals_uninterrupted_run(name, tmp_path):
    algo, cfg = CONFIGS[name]
    trainer = algo.make(cfg)
    key = jax.random.key(0)
    k = trainer.num_log_points // 2
    assert 2 * k == trainer.num_log_points
    half = jax.jit(lambda s: run_chunk(trainer.update, s, k))   # one program for both halves of both runs
    middle, m1 = half(jax.jit(trainer.init)(key))
    ckpt.save(tmp_path / "ck", middle, step=k, meta={"algo": name, "update": k})
    if name == "ppo-recurrent":
        assert np.abs(np.asarray(middle.memory)).max() > 0   # a memory that is saved and restored
    if name == "sac-normalized":
        assert float(middle.obs_rms.count) > 200 and np.abs(np.asarray(middle.obs_rms.mean)).max() > 0
    middle_rms = jax.device_get(getattr(middle, "obs_rms", None))
    full, m2 = half(middle)                                       # uninterrupted: the state stays in memory
    del middle
    state, meta = ckpt.restore(tmp_path / "ck", jax.eval_shape(trainer.init, key))
    if name == "sac-normalized":                                  # the statistics came back from the disk
        np.testing.assert_array_equal(np.asarray(state.obs_rms.var), np.asarray(middle_rms.var))
        np.testing.assert_array_equal(np.asarray(state.obs_rms.count), np.asarray(middle_rms.count))
    assert meta == {"algo": name, "update": k} and ckpt.latest_step(tmp_path / "ck") == k
    last, m2_resumed = half(state)                                # resumed: the state went through the disk
    for m in m2:
        np.testing.assert_array_equal(np.asarray(m2_resumed[m]), np.asarray(m2[m]), err_msg=m)
    assert np.isfinite(np.asarray(m1[next(iter(m1))])).all()
    for a, b in zip(jax.tree.leaves(last), jax.tree.leaves(full), strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_mismatched_or_damaged_checkpoint_is_a_clear_error(tmp_path):
    algo, cfg = CONFIGS["ppo"]
    trainer = algo.make(cfg)
    key = jax.random.key(0)
    ckpt.save(tmp_path / "ck", jax.jit(trainer.init)(key), step=0)
    other = algo.make(cfg.replace(hidden_sizes=(8, 8)))
    with pytest.raises(ValueError, match="checkpoint"):
        ckpt.restore(tmp_path / "ck", jax.eval_shape(other.init, key))
    sac_trainer = sac.make(CONFIGS["sac"][1])
    with pytest.raises(ValueError, match="checkpoint"):
        ckpt.restore(tmp_path / "ck", jax.eval_shape(sac_trainer.init, key))
    shutil.rmtree(tmp_path / "ck" / "0" / "state")
    with pytest.raises(ValueError, match="checkpoint"):
        ckpt.restore(tmp_path / "ck", jax.eval_shape(trainer.init, key))
    with pytest.raises(ValueError, match="no checkpoint"):
        ckpt.restore(tmp_path / "nothing", jax.eval_shape(trainer.init, key))


def _tree(x: float, seed: int) -> dict:
    return {"w": np.full((3,), x, np.float32), "n": np.int32(seed), "key": jax.random.key(seed)}


def _assert_tree_equal(got: dict, want: dict) -> None:
    np.testing.assert_array_equal(np.asarray(got["w"]), want["w"])
    assert int(got["n"]) == int(want["n"])
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(got["key"])),
                                  np.asarray(jax.random.key_data(want["key"])))


def test_saving_a_step_that_exists_replaces_it(tmp_path):
    where = tmp_path / "ck"
    template = jax.eval_shape(lambda: _tree(0.0, 0))
    ckpt.save(where, _tree(1.0, 1), step=1, meta={"v": "a1"})
    ckpt.save(where, _tree(2.0, 2), step=2, meta={"v": "a2"})
    ckpt.save(where, _tree(3.0, 3), step=2, meta={"v": "b2"})        # the same step again: replaced
    assert ckpt.latest_step(where) == 2
    assert sorted(p.name for p in where.iterdir()) == ["1", "2"]       # nothing left beside the steps
    state, meta = ckpt.restore(where, template)
    assert meta == {"v": "b2"}
    _assert_tree_equal(state, _tree(3.0, 3))
    state, meta = ckpt.restore(where, template, step=1)              # the other step is untouched
    assert meta == {"v": "a1"}
    _assert_tree_equal(state, _tree(1.0, 1))
    ckpt.save(where, _tree(4.0, 4), step=1, meta={"v": "b1"})        # an older step can be replaced too
    assert sorted(p.name for p in where.iterdir()) == ["1", "2"] and ckpt.latest_step(where) == 2
    state, meta = ckpt.restore(where, template, step=1)
    assert meta == {"v": "b1"}
    _assert_tree_equal(state, _tree(4.0, 4))


def test_a_failed_replace_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    where = tmp_path / "ck"
    template = jax.eval_shape(lambda: _tree(0.0, 0))
    ckpt.save(where, _tree(1.0, 1), step=5, meta={"v": "old"})
    write = ckpt._write

    def fail_midway(directory, state, step, meta):   # a write that dies after part of the new checkpoint exists
        write(directory, state, step, meta)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "_write", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save(where, _tree(2.0, 2), step=5, meta={"v": "new"})
    monkeypatch.setattr(ckpt, "_write", write)
    assert sorted(p.name for p in where.iterdir()) == ["5"]
    state, meta = ckpt.restore(where, template)
    assert meta == {"v": "old"}
    _assert_tree_equal(state, _tree(1.0, 1))
    (where / ".replace-5" / "5").mkdir(parents=True)   # left by an interrupted replace: not a step of the run,
    assert ckpt.latest_step(where) == 5 and ckpt.restore(where, template)[1] == {"v": "old"}
    ckpt.save(where, _tree(2.0, 2), step=5, meta={"v": "new"})    # and cleared by the next replace
    assert sorted(p.name for p in where.iterdir()) == ["5"]
    state, meta = ckpt.restore(where, template)
    assert meta == {"v": "new"}
    _assert_tree_equal(state, _tree(2.0, 2))


# --- a damaged checkpoint in a run directory: one line naming it and the newest step that still loads ---------

def _damage(step_dir):
    """Overwrite the array data of checkpoint ``step_dir`` (the chunk files of its state) with random bytes of
    the same sizes, as a bad disk or a copy gone wrong would."""
    rng = np.random.default_rng(7)
    files = [f for f in (step_dir / "state").glob("ocdbt.process_*/d/*") if f.is_file()]
    assert files
    for f in files:
        f.write_bytes(rng.integers(0, 256, f.stat().st_size, dtype=np.uint8).tobytes())


def _snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _cli(*args):
    """``purerl ARGS --no-cache`` in this process: (exit code, stdout and stderr)."""
    import contextlib
    import io

    from purerl import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main([*args, "--no-cache"])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def damaged_run(tmp_path_factory):
    """A 6-update PPO run that kept checkpoints 4 and 6, with checkpoint 6's array data overwritten."""
    from purerl.run import runner

    out = tmp_path_factory.mktemp("damaged") / "run"
    outcome = runner.train("ppo", CONFIGS["ppo"][1], out, checkpoint_every=2)
    assert outcome.error is None and not outcome.interrupted
    assert sorted(int(p.name) for p in (out / "checkpoints").iterdir()) == [4, 6]
    _damage(out / "checkpoints" / "6")
    return out


def test_a_damaged_checkpoint_names_the_newest_step_that_loads(damaged_run):
    from purerl.run import rundir

    newest = damaged_run / "checkpoints" / "6"
    with pytest.raises(ValueError) as raised:
        rundir.load(damaged_run)
    text = str(raised.value)
    assert isinstance(raised.value, ckpt.CheckpointUnreadable) and (raised.value.step, raised.value.loads) == (6, 4)
    assert f"checkpoint {newest} is damaged" in text and "checkpoint 4 still loads: --step 4" in text
    assert "\n" not in text and len(text) < 600
    assert rundir.load(damaged_run, step=4).step == 4          # what the message points to does load
    before = _snapshot(damaged_run)
    for command, how in (("eval", "--step 4 reads it"), ("export", "--step 4 reads it"),
                         ("resume", f"delete {newest} to make it the newest")):
        code, text = _cli(command, str(damaged_run))
        assert code == 2 and text.count("\n") == 1 and text.startswith("purerl: error: "), (command, text)
        assert f"checkpoint {newest} is damaged" in text and f"checkpoint 4 still loads: {how}" in text, text
    assert _snapshot(damaged_run) == before                    # nothing written, nothing deleted
    code, text = _cli("eval", str(damaged_run), "--step", "4", "--episodes", "1")
    assert code == 0, text


def test_resume_continues_from_the_step_that_loads_once_the_damaged_one_is_deleted(damaged_run, tmp_path):
    from purerl.run import rundir, runner

    run = tmp_path / "run"
    shutil.copytree(damaged_run, run)
    shutil.rmtree(run / "checkpoints" / "6")                   # as resume's message says
    outcome = runner.resume(run)
    assert outcome.error is None and not outcome.interrupted
    assert rundir.load(run).step == 6                          # updates 5 and 6 ran again from checkpoint 4


def test_no_checkpoint_that_loads_is_said(damaged_run, tmp_path):
    from purerl.run import rundir

    run = tmp_path / "run"
    shutil.copytree(damaged_run, run)
    _damage(run / "checkpoints" / "4")
    with pytest.raises(ValueError, match=f"no checkpoint in {run / 'checkpoints'} loads") as raised:
        rundir.load(run)
    assert raised.value.loads is None
    assert f"checkpoint {run / 'checkpoints' / '6'} cannot be restored" in str(raised.value)
    code, text = _cli("export", str(run))
    assert code == 2 and text.count("\n") == 1 and "no checkpoint in" in text, text
