"""Checkpoints: a run saved halfway, restored and finished equals the uninterrupted run, bit for bit. Equal by
construction: both execute the same compiled programs; only the state's trip through the disk differs."""

import shutil

import jax
import numpy as np
import pytest

from purerl import ppo, sac
from purerl.core.loop import run_chunk
from purerl.run import checkpoint as ckpt

CONFIGS = {
    "ppo": (ppo, ppo.Config(env="CartPole-v1", total_timesteps=4 * 32 * 6, num_envs=4, num_steps=32,
                            num_minibatches=2, hidden_sizes=(16, 16))),
    "ppo-recurrent": (ppo, ppo.Config(env="CartPole-v1", total_timesteps=4 * 32 * 4, num_envs=4, num_steps=32,
                                      num_minibatches=2, hidden_sizes=(16, 16), recurrent=True)),  # state holds memory
    "sac": (sac, sac.Config(env="Pendulum-v1", total_timesteps=600, learning_starts=200, num_evals=4,
                            eval_episodes=2, batch_size=32, hidden_sizes=(16, 16))),   # state holds the replay buffer
}


@pytest.mark.parametrize("name", ["ppo", "ppo-recurrent", "sac"])
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
    full, m2 = half(middle)                                       # uninterrupted: the state stays in memory
    del middle
    state, meta = ckpt.restore(tmp_path / "ck", jax.eval_shape(trainer.init, key))
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
