"""Checkpoints: a run saved halfway, restored and finished equals the uninterrupted run, bit for bit."""

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
    "sac": (sac, sac.Config(env="Pendulum-v1", total_timesteps=620, learning_starts=200, num_evals=3,
                            eval_episodes=2, batch_size=32, hidden_sizes=(16, 16))),   # state holds the replay buffer
}


@pytest.mark.parametrize("name", ["ppo", "sac"])
def test_resumed_run_equals_uninterrupted_run(name, tmp_path):
    algo, cfg = CONFIGS[name]
    trainer = algo.make(cfg)
    key = jax.random.key(0)
    full = jax.jit(trainer.train)(key)
    chunk = jax.jit(lambda s, n: run_chunk(trainer.update, s, n), static_argnums=1)
    k = trainer.num_updates // 2
    first, m1 = chunk(jax.jit(trainer.init)(key), k)
    ckpt.save(tmp_path / "ck", first, step=k, meta={"algo": name, "update": k})
    del first
    state, meta = ckpt.restore(tmp_path / "ck", jax.eval_shape(trainer.init, key))
    assert meta == {"algo": name, "update": k} and ckpt.latest_step(tmp_path / "ck") == k
    last, m2 = chunk(state, trainer.num_updates - k)
    for m in full.metrics:
        np.testing.assert_array_equal(np.concatenate([m1[m], m2[m]]), np.asarray(full.metrics[m]), err_msg=m)
    for a, b in zip(jax.tree.leaves(last), jax.tree.leaves(full.state), strict=True):
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
