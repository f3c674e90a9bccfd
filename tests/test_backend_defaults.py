"""Loop sizes chosen per backend when the program is built (purerl.compiling.PER_BACKEND), unless set."""

import re

import jax
import numpy as np
import pytest

from purerl import compiling, ppo, sac

TINY = ppo.Config(env="CartPole-v1", num_envs=2, num_steps=16, total_timesteps=96, num_minibatches=2, num_epochs=1,
                  hidden_sizes=(8,))


def test_an_unset_unroll_resolves_per_backend():
    assert ppo.Config().unroll is None and sac.Config().unroll is None
    assert compiling.backend_default("onpolicy_unroll", "gpu") == 8
    assert compiling.backend_default("onpolicy_unroll", "cpu") == 1
    assert compiling.backend_default("onpolicy_unroll", "tpu") == 1
    assert compiling.backend_default("offpolicy_unroll", "gpu") == 1
    assert ppo.Config().scan_unroll == compiling.backend_default("onpolicy_unroll", jax.default_backend())
    assert ppo.Config(unroll=3).scan_unroll == 3 and sac.Config(unroll=2).scan_unroll == 2


def _rollout_unrolls(cfg):
    jaxpr = jax.make_jaxpr(ppo.make(cfg).train)(jax.random.key(0))
    return {int(u) for u in re.findall(r"unroll=(\d+)", str(jaxpr))}


def test_the_program_is_built_with_the_resolved_unroll(monkeypatch):
    """What the program holds is what the table says for the backend it is built on."""
    backend = jax.default_backend()
    monkeypatch.setitem(compiling.PER_BACKEND, "onpolicy_unroll", {backend: 4, "default": 1})
    assert 4 in _rollout_unrolls(TINY)
    monkeypatch.setitem(compiling.PER_BACKEND, "onpolicy_unroll", {"default": 1})
    assert 4 not in _rollout_unrolls(TINY) and 2 in _rollout_unrolls(TINY.replace(unroll=2))


def test_the_same_results_whatever_the_unroll():
    a = jax.jit(ppo.make_train(TINY.replace(unroll=1)))(jax.random.key(1))
    b = jax.jit(ppo.make_train(TINY.replace(unroll=8)))(jax.random.key(1))
    for name in ("episode_return", "policy_loss", "value_loss", "entropy"):
        np.testing.assert_allclose(a.metrics[name], b.metrics[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value", [0, -2])
def test_a_bad_unroll_names_the_field(value):
    with pytest.raises(ValueError, match="`unroll`"):
        ppo.Config(unroll=value).validate()
