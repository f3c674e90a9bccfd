"""Deep Q-Networks (Mnih et al., 2015), with Double DQN, a dueling head and n-step returns, on the shared
off-policy core.

    cfg = dqn.Config(env="CartPole-v1")                  # the Config defaults (see the dqn-cartpole preset)
    result = jax.jit(dqn.make_train(cfg))(jax.random.key(0))
    result.metrics["eval_return"]          # [num_log_points]: greedy evaluation at each log point

A Q-network ``Q(s, .)`` (:class:`~purerl.networks.DiscreteQNetwork`: one output per action, or with
``dueling`` a value and an advantage head) regresses ``Q(s_t, a_t)`` on the n-step target

    y = sum_{k<=m} gamma^k r_{t+k} + gamma^(m+1) (1 - terminated_{t+m}) V'(s_{t+m+1})

where ``m`` is the last step counted: ``n_step - 1``, or the first step inside the n steps whose episode ended
(a termination cuts the return; a time-limit truncation bootstraps from the episode's final observation, which
the replay holds as that step's ``next_obs``). ``V'(s) = max_a Q'(s, a)`` with the target network ``Q'``, or with
``double`` (van Hasselt et al., 2016) ``Q'(s, argmax_a Q(s, a))``: the online network chooses the action, the
target network values it. The loss is half the squared TD error, or Huber's (``td_loss="huber"``: the squared error
for TD errors within 1 and the absolute one beyond, whose gradient is the TD error clipped to [-1, 1], as the DQN
paper does). After every ``target_update_period``-th gradient step the target moves to ``tau * online + (1 -
tau) * target``: a hard copy every C steps with ``tau=1``, Polyak averaging with period 1 and a small ``tau``.

Exploration is epsilon-greedy (:mod:`purerl.core.exploration`): epsilon moves linearly from ``epsilon_start``
to ``epsilon_finish`` over the first ``epsilon_anneal_fraction`` of ``total_timesteps`` env steps and stays
there. The schedule's position, the env steps taken so far (warm-up included), is the agent's exploration state
(``OffPolicyState.explore_state``: one int32 count for all envs), so a checkpoint resumes the schedule where it
was and ``Trainer.policy(state, deterministic=False)`` acts with the run's current epsilon. Evaluation is
greedy.

The losses and targets are top-level functions (:func:`n_step_return`, :func:`bootstrap_value`,
:func:`loss`, :func:`update_target`); the loop (replay, warm-up, evaluation) is
:mod:`purerl.core.offpolicy`, whose replay samples ``n_step`` consecutive steps of one env when ``n_step`` > 1.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh

from purerl.config import check, check_leaf, leaf_field, never, static_field
from purerl.core import offpolicy, optim
from purerl.core.exploration import epsilon_greedy, greedy_noise, linear_schedule
from purerl.core.loop import Result, Trainer
from purerl.core.progress import ProgressFn
from purerl.networks import DiscreteQNetwork, torso_args

__all__ = ["AgentState", "Config", "Result", "TD_LOSSES", "bootstrap_value", "epsilon_at", "loss", "make",
           "make_agent", "make_train", "n_step_return", "update_target"]

TD_LOSSES = ("squared", "huber")


@struct.dataclass
class Config(offpolicy.OffPolicyConfig):
    """The off-policy fields (:class:`purerl.core.offpolicy.OffPolicyConfig`) with DQN's own and defaults for
    CartPole-v1."""

    env: str = static_field("CartPole-v1", "environment id with discrete actions (gymnax, MinAtar, probe/...)")
    total_timesteps: int = static_field(500_000, "env steps in the whole run (rounded down to whole log points)")
    num_envs: int = static_field(10, "parallel environments; each iteration adds num_envs transitions")
    buffer_size: int = static_field(10_000, "replay capacity in transitions (capped at total_timesteps)")
    batch_size: int = static_field(128, "transitions (or n-step sequences) sampled per gradient step")
    learning_starts: int = static_field(10_000, "env steps of uniform random actions before the first update")
    hidden_sizes: tuple = static_field((120, 84), "MLP widths of the Q-network")
    td_loss: str = static_field("squared", "TD loss: squared (half the squared error) or huber (Huber with delta "
                                "1, the DQN paper's clipped error)", choices=TD_LOSSES)
    double: bool = static_field(False, "Double DQN: the online network chooses the next action, the target "
                                "network values it")
    dueling: bool = static_field(False, "dueling head: Q = V + A - mean A (Wang et al., 2016)")
    n_step: int = static_field(1, "steps of reward before bootstrapping (n-step returns; 1: one-step TD)")
    target_update_period: int = static_field(50, "gradient steps between target-network updates (each moves it "
                                             "by tau: a hard copy with tau=1)")
    learning_rate: float = leaf_field(2.5e-4, "Adam step size of the Q-network")
    max_grad_norm: Optional[float] = leaf_field(10.0, "global gradient-norm clip (None: no clipping)")
    tau: float = leaf_field(1.0, "target update rate: target <- tau * online + (1 - tau) * target at each "
                            "update (1: a hard copy)")
    epsilon_start: float = leaf_field(1.0, "exploration epsilon at the start of the run")
    epsilon_finish: float = leaf_field(0.05, "exploration epsilon after the decay, held to the end")
    epsilon_anneal_fraction: float = leaf_field(0.5, "fraction of total_timesteps over which epsilon moves "
                                                "linearly from epsilon_start to epsilon_finish (0: "
                                                "epsilon_finish from the start)")

    _applies = {name: (never, "DQN has one network, the Q-network, whose step size is learning_rate")
                for name in ("actor_lr", "critic_lr")}

    def _check(self) -> None:
        super()._check()
        check(self.n_step >= 1, "n_step", self.n_step, "use an integer >= 1 (1: one-step TD targets)")
        check(self.target_update_period >= 1, "target_update_period", self.target_update_period,
              "use a positive integer: gradient steps between target updates (1 with tau < 1: Polyak averaging "
              "after every step)")
        check(self.learning_starts >= (self.n_step - 1) * self.num_envs, "learning_starts", self.learning_starts,
              f"with n_step = {self.n_step} the replay must hold n_step consecutive steps of every env before the "
              f"first update: use at least (n_step - 1) * num_envs = {(self.n_step - 1) * self.num_envs}")
        check(self.n_step <= max(1, self.capacity // self.num_envs), "n_step", self.n_step,
              f"the replay keeps {self.capacity // self.num_envs} steps per env (buffer_size / num_envs, capped "
              f"by the run); use a smaller n_step or a larger buffer_size")
        for name in ("epsilon_start", "epsilon_finish", "epsilon_anneal_fraction"):
            check_leaf(self, name, low=0.0, high=1.0)
        check_leaf(self, "learning_rate", low=0.0, low_open=True)
        check_leaf(self, "max_grad_norm", low=0.0, low_open=True)


@struct.dataclass
class AgentState:
    params: Any         # the Q-network's
    target: Any         # the target network's
    opt_state: Any
    steps: jax.Array    # int32: gradient steps taken


def n_step_return(reward: jax.Array, terminated: jax.Array, done: jax.Array,
                  gamma: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The n-step return of a sequence of ``n`` consecutive steps of one env (last axis: ``[..., n]``) and how to
    bootstrap it: ``(ret, discount, last)`` with the target ``ret + discount * V'(next_obs[last])``.

    ``last`` is the first step whose episode ended (``done``: terminated or truncated), or ``n - 1``; the
    steps after it belong to the next episode and do not count. ``ret = sum_{k<=last} gamma^k reward_k``,
    ``discount = gamma^(last + 1)``, or 0 where step ``last`` terminated (a truncation bootstraps from the
    final observation, the ``next_obs`` the replay holds for that step). With ``n = 1`` this is
    :func:`purerl.core.offpolicy.td_target`'s ``r + gamma (1 - terminated) V'``."""
    done = done.astype(jnp.int32)
    n = reward.shape[-1]
    counted = (jnp.cumsum(done, axis=-1) - done) == 0          # no episode end before step k
    last = jnp.sum(counted, axis=-1) - 1
    powers = jnp.power(jnp.asarray(gamma, jnp.float32), jnp.arange(n, dtype=jnp.float32))
    ret = jnp.sum(jnp.where(counted, powers * reward, 0.0), axis=-1)
    cut = jnp.take_along_axis(terminated, last[..., None], axis=-1)[..., 0]
    discount = jnp.power(jnp.asarray(gamma, jnp.float32), (last + 1).astype(jnp.float32))
    return ret, jnp.where(cut, 0.0, discount), last


def bootstrap_value(target_q: jax.Array, online_q: jax.Array | None = None) -> jax.Array:
    """``V'(s')`` from the target network's ``Q'(s', .)`` ``[..., A]``: ``max_a Q'(s', a)``, or with the online
    network's ``Q(s', .)`` (Double DQN) ``Q'(s', argmax_a Q(s', a))``."""
    if online_q is None:
        return jnp.max(target_q, axis=-1)
    best = jnp.argmax(online_q, axis=-1)
    return jnp.take_along_axis(target_q, best[..., None], axis=-1)[..., 0]


def loss(q: jax.Array, target: jax.Array, kind: str = "squared") -> jax.Array:
    """``mean_b l(q[b] - target[b])`` with ``l(e) = e^2 / 2`` (``"squared"``), or Huber's ``e^2 / 2`` for
    ``|e| <= 1`` and ``|e| - 1/2`` beyond (``"huber"``). The target is held fixed."""
    err = q - jax.lax.stop_gradient(target)
    if kind == "squared":
        return 0.5 * jnp.mean(jnp.square(err))
    if kind != "huber":
        raise ValueError(f"unknown TD loss {kind!r}: use one of {TD_LOSSES}")
    a = jnp.abs(err)
    return jnp.mean(jnp.where(a <= 1.0, 0.5 * jnp.square(err), a - 0.5))


def update_target(target: Any, online: Any, tau: Any, step: jax.Array, period: int) -> Any:
    """The target network after gradient step ``step`` (counted from 1): ``tau * online + (1 - tau) * target``
    when ``step`` is a multiple of ``period``, else ``target`` unchanged."""
    moved = offpolicy.polyak(target, online, tau)
    if period == 1:
        return moved
    due = step % period == 0
    return jax.tree.map(lambda m, t: jnp.where(due, m, t), moved, target)


def epsilon_at(cfg: Config, env_steps: Any) -> jax.Array:
    """The exploration epsilon after ``env_steps`` env steps of a run of ``cfg``: ``epsilon_start`` moved
    linearly to ``epsilon_finish`` over ``epsilon_anneal_fraction * total_timesteps`` steps, then held."""
    return linear_schedule(cfg.epsilon_start, cfg.epsilon_finish, env_steps,
                           cfg.epsilon_anneal_fraction * cfg.total_timesteps)


def make_agent(cfg: Config, env) -> offpolicy.Agent:
    """The learning rule for a validated ``cfg`` and the env's action count and observation shape (the training
    loop is added by :func:`make`)."""
    num_actions = env.action_dim
    qnet = DiscreteQNetwork(num_actions, dueling=cfg.dueling, **torso_args(cfg, env.obs_shape))
    tx = optim.make_optimizer("adam", cfg.learning_rate, max_grad_norm=cfg.max_grad_norm)

    def init(key, obs):
        params = qnet.init(key, obs)
        return AgentState(params, params, tx.init(params), jnp.zeros((), jnp.int32))

    def loss_fn(params, target_params, batch):
        if cfg.n_step == 1:   # single transitions: a time axis of one step, and no episode end to look for
            batch = {**jax.tree.map(lambda x: x[:, None], batch), "done": batch["terminated"][:, None]}
        with jax.named_scope("target"):
            ret, discount, last = n_step_return(cfg.reward_scale * batch["reward"], batch["terminated"],
                                                batch["done"], cfg.gamma)
            next_obs = jnp.take_along_axis(batch["next_obs"], last[:, None, None], axis=1)[:, 0]
            obs = batch["obs"][:, 0]
            if cfg.double:   # the online network at s and s' in one call; only the first half is learned
                q_both = qnet.apply(params, jnp.concatenate([obs, next_obs]))
                q, next_online = q_both[:obs.shape[0]], jax.lax.stop_gradient(q_both[obs.shape[0]:])
            else:
                q, next_online = qnet.apply(params, obs), None
            value = bootstrap_value(qnet.apply(target_params, next_obs), next_online)
            target = jax.lax.stop_gradient(ret + discount * value)
        q_taken = jnp.take_along_axis(q, batch["action"][:, 0, None].astype(jnp.int32), axis=-1)[:, 0]
        td = loss(q_taken, target, cfg.td_loss)
        return td, {"td_loss": td, "q": jnp.mean(q_taken), "target_q": jnp.mean(target)}

    def learn(a: AgentState, batch: dict, key: jax.Array):
        grads, aux = jax.grad(loss_fn, has_aux=True)(a.params, a.target, batch)
        with jax.named_scope("optimizer"):
            params, opt_state = optim.apply(tx, a.params, grads, a.opt_state)
        steps = a.steps + 1
        with jax.named_scope("targets"):
            target = update_target(a.target, params, cfg.tau, steps, cfg.target_update_period)
        return AgentState(params, target, opt_state, steps), aux

    def explore(a: AgentState, obs, key, env_steps):
        action = epsilon_greedy(qnet.apply(a.params, obs), epsilon_at(cfg, env_steps),
                                greedy_noise(key, obs.shape[:-1], num_actions))
        return action, {}, env_steps + obs.shape[0]

    def act(a: AgentState, obs):
        return jnp.argmax(qnet.apply(a.params, obs), axis=-1).astype(jnp.int32)

    warmup_steps = cfg.warmup_iterations * cfg.num_envs   # the uniform warm-up counts toward the schedule
    actions = {**offpolicy.discrete_actions(num_actions),
               "explore_init": lambda n: jnp.asarray(warmup_steps, jnp.int32),
               "explore_reset": lambda x, done: x}
    return offpolicy.Agent(init, explore, learn, act, **actions, explore_shared=True,
                           explore_metrics=lambda env_steps: {"epsilon": epsilon_at(cfg, env_steps)},
                           sequence_length=cfg.n_step)


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build DQN for ``config``: validated here, in Python, before anything is traced.

    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return offpolicy.build(config, make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
