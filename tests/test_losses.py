"""Every algorithm's loss, a top-level pure function, against values computed by hand.

The policies here are fixed distributions (a fake network returns them from its "params"), so each expected
number follows from the loss's formula in a few lines of arithmetic, written out in the comments.
"""

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import ddpg, pqn, ppo, sac, trpo
from purerl.core import offpolicy, onpolicy

LOG2 = math.log(2.0)


class FixedNetwork:
    """``apply(params, obs) -> (pi, V)`` with ``pi`` a categorical over 2 actions with logits
    ``params["logits"]`` ``[B, 2]`` and ``V = params["v"]`` ``[B]`` (``obs`` is ignored)."""

    def apply(self, params, obs):
        return distrax.Categorical(logits=params["logits"]), params["v"]


def uniform(n):
    """Uniform over 2 actions for ``n`` steps: ``log pi(a|s) = log 1/2``, entropy ``log 2``."""
    return jnp.zeros((n, 2))


def test_ppo_loss_clips_ratio_and_value_as_computed_by_hand():
    # step 0: pi = 1/2, pi_old = 1/4 -> ratio 2, A = +1: min(2 * 1, clip(2) = 1.2 * 1) = 1.2
    # step 1: pi = 1/2, pi_old = 1   -> ratio 1/2, A = -1: min(-0.5, clip(0.5) = 0.8 * -1) = -0.8
    # policy_loss = -mean(1.2, -0.8) = -0.2
    # values V = (1, 0), old values (0.5, 0.5), targets (2, 0): unclipped errors (1, 0); clipped values
    # 0.5 + clip(0.5, +-0.2) = 0.7 and 0.5 + clip(-0.5) = 0.3 -> errors (1.69, 0.09); max -> (1.69, 0.09)
    # value_loss = 0.5 * mean = 0.445; entropy = log 2; approx_kl = mean((r - 1) - log r)
    #   = ((1 - log 2) + (-0.5 + log 2)) / 2 = 0.25; both ratios leave [0.8, 1.2]: clip_frac = 1
    params = {"logits": uniform(2), "v": jnp.array([1.0, 0.0])}
    batch = {"obs": jnp.zeros((2, 1)), "action": jnp.array([0, 1]),
             "log_prob": jnp.log(jnp.array([0.25, 1.0])), "value": jnp.array([0.5, 0.5]),
             "advantage": jnp.array([1.0, -1.0]), "target": jnp.array([2.0, 0.0])}
    cfg = ppo.Config(normalize_advantages=False, clip_eps=0.2, clip_value=True, vf_clip_eps=0.2, vf_coef=0.5,
                     ent_coef=0.01)
    total, aux = ppo.loss(FixedNetwork(), params, batch, cfg)
    assert float(aux["policy_loss"]) == pytest.approx(-0.2, abs=1e-6)
    assert float(aux["value_loss"]) == pytest.approx(0.445, abs=1e-6)
    assert float(aux["entropy"]) == pytest.approx(LOG2, abs=1e-6)
    assert float(aux["approx_kl"]) == pytest.approx(0.25, abs=1e-6)
    assert float(aux["clip_frac"]) == 1.0
    assert float(total) == pytest.approx(-0.2 + 0.5 * 0.445 - 0.01 * LOG2, abs=1e-6)
    # without value clipping the errors are (1, 0): value_loss = 0.25
    _, aux = ppo.loss(FixedNetwork(), params, batch, cfg.replace(clip_value=False))
    assert float(aux["value_loss"]) == pytest.approx(0.25, abs=1e-6)


def test_ppo_loss_gradient_stops_at_the_clip():
    # A = +1 and ratio 2 > 1 + eps: the clipped term is the minimum, which does not depend on the params
    params = {"logits": uniform(1), "v": jnp.zeros(1)}
    batch = {"obs": jnp.zeros((1, 1)), "action": jnp.array([0]), "log_prob": jnp.log(jnp.array([0.25])),
             "value": jnp.zeros(1), "advantage": jnp.ones(1), "target": jnp.zeros(1)}
    cfg = ppo.Config(normalize_advantages=False, ent_coef=0.0)
    grads, _ = jax.grad(ppo.loss, argnums=1, has_aux=True)(FixedNetwork(), params, batch, cfg)
    np.testing.assert_array_equal(np.asarray(grads["logits"]), 0.0)


def test_policy_gradient_loss_weights_steps_as_computed_by_hand():
    # log pi = log 1/2 everywhere; n = 3 steps, the last one dropped (weight 0)
    # policy_loss = -sum(w log pi A) / n = -(log(1/2) * 1 + log(1/2) * -2) / 3 = log(1/2) / 3
    # value_loss = 0.5 * sum(w (V - target)^2) / n = 0.5 * (1 + 0) / 3 = 1/6; entropy = log 2 (weighted mean)
    params = {"logits": uniform(3), "v": jnp.array([0.0, 1.0, 2.0])}
    batch = {"obs": jnp.zeros((3, 1)), "action": jnp.array([0, 1, 0]), "advantage": jnp.array([1.0, -2.0, 4.0]),
             "target": jnp.array([1.0, 1.0, 0.0]), "weight": jnp.array([1.0, 1.0, 0.0])}
    total, aux = onpolicy.policy_gradient_loss(FixedNetwork(), params, batch, ent_coef=0.01, vf_coef=0.5)
    assert float(aux["policy_loss"]) == pytest.approx(math.log(0.5) / 3, abs=1e-6)
    assert float(aux["value_loss"]) == pytest.approx(1 / 6, abs=1e-6)
    assert float(aux["entropy"]) == pytest.approx(LOG2, abs=1e-6)
    assert float(total) == pytest.approx(math.log(0.5) / 3 + 0.5 / 6 - 0.01 * LOG2, abs=1e-6)
    # standardised over the kept steps: mean -0.5, std 1.5 -> A = (1, -1, 3): the kept terms cancel
    _, aux = onpolicy.policy_gradient_loss(FixedNetwork(), params, batch, 0.0, 0.5, normalize_advantages=True)
    assert float(aux["policy_loss"]) == pytest.approx(0.0, abs=1e-6)


def test_trpo_surrogate_is_the_mean_importance_weighted_advantage():
    # ratios exp(log 2) = 2 and exp(-log 2) = 1/2: (2 * 3 + 0.5 * -2) / 2 = 2.5
    value = trpo.surrogate(jnp.array([0.0, -LOG2]), jnp.array([-LOG2, 0.0]), jnp.array([3.0, -2.0]))
    assert float(value) == pytest.approx(2.5, abs=1e-6)


def test_td_target_bootstraps_only_where_not_terminated():
    # 2 * 1 + 0.9 * 10 = 11;  terminated: 2 * 2 = 4
    target = offpolicy.td_target(jnp.array([1.0, 2.0]), jnp.array([False, True]), jnp.array([10.0, 10.0]),
                                 gamma=0.9, reward_scale=2.0)
    np.testing.assert_allclose(np.asarray(target), [11.0, 4.0], rtol=1e-6)


def test_critic_loss_sums_the_critics_mean_squared_errors():
    # critic 1: mean(0^2, 1^2) = 0.5; critic 2: mean(2^2, 3^2) = 6.5; 0.5 * (0.5 + 6.5) = 3.5
    q = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    assert float(offpolicy.critic_loss(q, jnp.array([1.0, 1.0]))) == pytest.approx(3.5, abs=1e-6)


def test_sac_actor_loss_and_temperature_loss_by_hand():
    # mean(alpha log pi - Q) = mean(0.5 * -1 - 2, 0.5 * -3 - 0) = mean(-2.5, -1.5) = -2
    assert float(sac.actor_loss(jnp.array([-1.0, -3.0]), jnp.array([2.0, 0.0]), 0.5)) == pytest.approx(-2.0)
    # -log(alpha) * (target - entropy) = -0.5 * (-1 - -3) = -1; d/dlog_alpha = -(target - entropy) = -2 < 0:
    # gradient descent raises alpha while the entropy (-3) is below the target (-1)
    value, grad = jax.value_and_grad(sac.temperature_loss)(jnp.asarray(0.5), jnp.asarray(-3.0), -1.0)
    assert float(value) == pytest.approx(-1.0) and float(grad) == pytest.approx(-2.0)
    # the entropy is held fixed: no gradient flows into it
    assert float(jax.grad(sac.temperature_loss, argnums=1)(jnp.asarray(0.5), jnp.asarray(-3.0), -1.0)) == 0.0


def test_ddpg_actor_loss_follows_the_first_critic():
    q = jnp.array([[1.0, 3.0], [-100.0, -100.0]])  # the second critic is ignored
    assert float(ddpg.actor_loss(q)) == pytest.approx(-2.0)


class FixedQ:
    """``apply(params, obs) -> params["q"]``: Q-values ``[B, A]`` fixed by the "params" (``obs`` is ignored)."""

    def apply(self, params, obs):
        return params["q"]


def test_pqn_loss_regresses_the_taken_actions_q_on_the_returns_by_hand():
    # Q = [[1, 3], [2, 0], [0, 5]], actions (1, 0, 1): Q(s, a) = (3, 2, 5); returns (2, 2, 1): errors (1, 0, 4)
    # squared: mean 0.5 err^2 = 0.5 (1 + 0 + 16) / 3 = 17/6; its gradient err / 3 at the taken action only
    # huber (delta 1): (0.5, 0, 4 - 0.5) -> mean 4/3; its gradient clip(err, -1, 1) / 3
    params = {"q": jnp.array([[1.0, 3.0], [2.0, 0.0], [0.0, 5.0]])}
    batch = {"obs": jnp.zeros((3, 1)), "action": jnp.array([1, 0, 1]), "target": jnp.array([2.0, 2.0, 1.0])}
    cfg = pqn.Config()
    value, aux = pqn.loss(FixedQ(), params, batch, cfg)
    assert float(value) == pytest.approx(17 / 6, abs=1e-6) and float(aux["td_loss"]) == float(value)
    assert float(aux["q"]) == pytest.approx(10 / 3, abs=1e-6)
    grad = jax.grad(lambda p: pqn.loss(FixedQ(), p, batch, cfg)[0])(params)["q"]
    np.testing.assert_allclose(np.asarray(grad), [[0, 1 / 3], [0, 0], [0, 4 / 3]], atol=1e-6)
    huber = cfg.replace(td_loss="huber")
    assert float(pqn.loss(FixedQ(), params, batch, huber)[0]) == pytest.approx(4 / 3, abs=1e-6)
    grad = jax.grad(lambda p: pqn.loss(FixedQ(), p, batch, huber)[0])(params)["q"]
    np.testing.assert_allclose(np.asarray(grad), [[0, 1 / 3], [0, 0], [0, 1 / 3]], atol=1e-6)
    # the returns are targets, not a path for the gradient
    to_target = jax.grad(lambda g: pqn.loss(FixedQ(), params, {**batch, "target": g}, cfg)[0])(batch["target"])
    assert not np.asarray(to_target).any()
