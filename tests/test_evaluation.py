"""Evaluation runs until every episode has ended, in blocks, not over the whole time limit; recording an episode
sees the same randomness, so a rendered episode is the evaluated one."""

import jax
import jax.numpy as jnp
import numpy as np

from purerl import envs
from purerl.core import evaluation
from purerl.core.evaluation import evaluate_policy


def test_evaluation_stops_after_the_block_in_which_the_last_episode_ended():
    env = envs.make("CartPole-v1", 3)   # time limit 500 steps: 8 blocks of 64
    calls = []

    def push_left(obs, key):   # CartPole falls within about 10 steps
        jax.debug.callback(lambda: calls.append(1))
        return jnp.zeros(obs.shape[0], jnp.int32)

    out = jax.jit(lambda k: evaluate_policy(env, push_left, k))(jax.random.key(0))
    jax.effects_barrier()
    assert bool(out["finished"].all()) and float(out["max"]) < evaluation.EVAL_BLOCK
    assert len(calls) == evaluation.EVAL_BLOCK          # one block ran, not 500 steps


def test_a_recorded_evaluation_is_the_evaluated_one_and_spans_the_time_limit():
    env = envs.make("CartPole-v1", 4)
    balance = lambda o, k: (o[:, 2] + o[:, 3] > 0).astype(jnp.int32)  # noqa: E731
    plain = jax.jit(lambda k: evaluate_policy(env, balance, k))(jax.random.key(3))
    recorded = jax.jit(lambda k: evaluate_policy(env, balance, k, record=lambda s: s.inner.x))(jax.random.key(3))
    np.testing.assert_array_equal(plain["returns"], recorded["returns"])
    assert recorded["trace"]["done"].shape == (500, 4)
    done = np.asarray(recorded["trace"]["done"])
    first_end = done.argmax(axis=0) + 1
    np.testing.assert_array_equal(np.where(done.any(axis=0), first_end, 0), np.asarray(plain["lengths"]))
