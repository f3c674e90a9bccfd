"""REINFORCE (Williams, 1992), with or without a baseline, as one fused program.

    cfg = reinforce.Config(env="CartPole-v1")              # baseline="value": REINFORCE with baseline
    result = jax.jit(reinforce.make_train(cfg))(jax.random.key(0))

Each update runs ``num_steps`` steps in each of ``num_envs`` envs and forms the Monte-Carlo reward-to-go
``G_t = sum_k gamma^k r_{t+k}`` up to the end of the step's episode (:func:`purerl.core.trajectory.reward_to_go`).
Each env contributes its current episode up to its end and nothing after it: ``num_steps`` must be at
least the env's episode limit, so that episode always ends inside the rollout (its return is complete,
never truncated or bootstrapped), and the steps after it, whose episodes might not end in time, get
weight 0 (:func:`purerl.core.trajectory.first_episode`). Which steps count is thus decided by the past only,
which keeps the estimator's expectation independent of the baseline. The envs are not reset between
updates, so an episode cut by one rollout's end is finished (and used) by the next. The policy moves
along ``sum_t w_t grad log pi(a_t|s_t) (G_t - b_t) / (T N)`` with the baseline ``b``:

* ``"none"``: ``b = 0`` (plain REINFORCE);
* ``"mean"``: an exponential moving average (``baseline_decay``) of the returns of earlier batches;
* ``"value"``: a learned ``V(s)`` regressed on ``G`` (weight ``vf_coef``), REINFORCE with baseline.

A baseline that does not depend on the action leaves the expected gradient unchanged and, when it tracks
the return, lowers its variance (``tests/test_onpolicy_family.py`` measures both). Adam, global-norm clipping.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh

from purerl.config import check, check_leaf, leaf_field, static_field
from purerl.core import onpolicy, optim
from purerl.core.loop import Result, Trainer
from purerl.core.progress import ProgressFn
from purerl.core.trajectory import first_episode, flatten_time_env, reward_to_go
from purerl.networks import ActorCritic

__all__ = ["BASELINES", "Config", "Result", "State", "make", "make_agent", "make_train", "score_function_batch"]

BASELINES = ("none", "mean", "value")


@struct.dataclass
class Config(onpolicy.OnPolicyConfig):
    total_timesteps: int = static_field(1_000_000, "env steps in the whole run (rounded down to whole updates)")
    num_envs: int = static_field(4, "parallel environments")
    num_steps: int = static_field(500, "steps per env per update; at least the env's episode limit "
                                       "(classic control: 200-500)")
    baseline: str = static_field("value", "none, mean (moving average of returns) or value (learned V(s))",
                                 choices=BASELINES)
    normalize_advantages: bool = static_field(True, "standardise G - b over the batch's complete steps "
                                              "(which also removes a constant baseline: none = mean)")
    anneal_lr: bool = static_field(True, "decay the learning rate linearly to 0 over the run")
    learning_rate: float = leaf_field(3e-3, "Adam step size")
    max_grad_norm: float = leaf_field(1.0, "global gradient-norm clip")
    vf_coef: float = leaf_field(0.5, "value loss coefficient (baseline=value)")
    ent_coef: float = leaf_field(0.0, "entropy bonus coefficient")
    baseline_decay: float = leaf_field(0.9, "moving-average decay of the mean baseline (baseline=mean)")

    _applies = {"baseline_decay": (lambda c: c.baseline == "mean", "it is the moving average's decay, used only "
                                   "with baseline='mean'"),
                "vf_coef": (lambda c: c.baseline == "value", "it weighs the learned baseline's loss, used only with "
                            "baseline='value'")}

    def _check(self) -> None:
        super()._check()
        check_leaf(self, "vf_coef", low=0.0)
        check_leaf(self, "ent_coef", low=0.0)
        check_leaf(self, "baseline_decay", low=0.0, high=1.0)


@struct.dataclass
class State(onpolicy.TrainState):
    mean_return: jax.Array = None  # the "mean" baseline: moving average of earlier batches' returns


def score_function_batch(traj, gamma, baseline: jax.Array) -> dict:
    """The flat REINFORCE batch of a rollout: ``advantage = G - baseline``, ``target = G`` and ``weight`` =
    whether the step belongs to its env's first episode in the rollout and that episode ended inside it.
    ``baseline`` broadcasts against ``[T, N]``."""
    g, complete = reward_to_go(traj.reward, traj.done, gamma)
    weight = (complete & first_episode(traj.done)).astype(jnp.float32)
    return flatten_time_env({"obs": traj.obs, "action": traj.action, "advantage": g - baseline, "target": g,
                             "weight": weight})


def make_agent(cfg: Config, env) -> onpolicy.Agent:
    """REINFORCE's learning step for a validated ``cfg`` and its training env: one Adam step on the score-function
    loss of the rollout's complete returns minus the baseline (:func:`score_function_batch`), and the moving
    average of the returns (the ``"mean"`` baseline)."""
    check(cfg.num_steps >= env.max_episode_steps, "num_steps", cfg.num_steps,
          f"REINFORCE needs every env's current episode to end inside the rollout: use at least the episode "
          f"limit of {cfg.env} ({env.max_episode_steps})")
    network = onpolicy.make_network(cfg, env)
    tx = optim.make_optimizer("adam", cfg.learning_rate, max_grad_norm=cfg.max_grad_norm)
    fresh = onpolicy.network_init(network, tx.init)
    vf_coef = cfg.vf_coef if cfg.baseline == "value" else 0.0

    def init(key: jax.Array, obs: jax.Array) -> State:
        s = fresh(key, obs)
        return State(params=s.params, opt_state=s.opt_state, mean_return=jnp.zeros((), jnp.float32))

    def learn(state: State, ro, key: jax.Array):
        traj = ro.traj
        if cfg.baseline == "value":
            baseline = network.apply(state.params, traj.obs, method=ActorCritic.value)
        elif cfg.baseline == "mean":
            baseline = state.mean_return
        else:
            baseline = jnp.zeros(())
        batch = score_function_batch(traj, cfg.gamma, baseline)
        grads, aux = jax.grad(onpolicy.policy_gradient_loss, argnums=1, has_aux=True)(
            network, state.params, batch, cfg.ent_coef, vf_coef, cfg.normalize_advantages)
        params, opt_state = optim.apply(tx, state.params, grads, state.opt_state)
        w = batch["weight"]
        used = jnp.sum(w)
        batch_mean = jnp.sum(w * batch["target"]) / jnp.maximum(used, 1.0)
        mean_return = jnp.where(used > 0, cfg.baseline_decay * state.mean_return
                                + (1.0 - cfg.baseline_decay) * batch_mean, state.mean_return)
        return state.replace(params=params, opt_state=opt_state, mean_return=mean_return), {
            **aux, "complete_frac": used / w.shape[0],
            "baseline": jnp.mean(jnp.broadcast_to(baseline, traj.reward.shape))}

    return onpolicy.Agent(init=init, learn=learn, **onpolicy.actor_critic(network))


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build REINFORCE for ``config``: validated here, in Python, before anything is traced.

    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return onpolicy.build(config, make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole REINFORCE run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
