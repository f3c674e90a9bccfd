"""What the on-policy algorithms (REINFORCE, A2C, A3C, TRPO, PPO) share, written once.

* :class:`OnPolicyConfig`: the fields every on-policy algorithm has (env, rollout shape, network, the
  env-side normalisation switches, discount, learning rate, gradient clipping), with their validation.
* :class:`TrainState` and :func:`make_init`: parameters, optimiser state, env state and counters; every
  update ends with :func:`end_update` (the new values, the counters and the episodes that ended).
* :func:`setup` (:func:`make_env`, :func:`make_network`, :func:`env_splitter`): the validated config, the
  wrapped vector env, the actor-critic (or the algorithm's own network) and the env-axis splitter an
  algorithm's ``make`` starts from.
* :func:`env_splitter`: optional splitting of the env batch over devices (one agent, several devices).
* :func:`collect`: one rollout with the current stochastic policy (actions and their log-probabilities), a
  :class:`~purerl.core.trajectory.Rollout` whether or not the policy has memory (:func:`policy_at`);
  :func:`collect_with` the same for any acting function (PQN's epsilon-greedy one).
* :func:`values_and_gae`: ``V(obs)``, ``V(final_obs)`` in two batched calls, then GAE(lambda) targets.
* :func:`policy_gradient_loss`: score-function policy loss with weights, value regression, entropy bonus.
* :func:`make_policy`: the trained policy on raw observations (the policy's mode or a sample, or an
  algorithm's own acting function).
* :func:`make_trainer`: the :class:`~purerl.core.loop.Trainer` of an algorithm's ``init`` and ``update``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh

from purerl import envs
from purerl.config import BaseConfig, check, check_config, check_env_fields, check_leaf, leaf_field, static_field
from purerl.core.evaluation import RecurrentAct
from purerl.core.loop import Trainer, build_trainer, carry_episodes, env_steps
from purerl.core.progress import ProgressFn
from purerl.core.trajectory import EpisodeTally, Rollout, gae, rollout, standardize
from purerl.core.sharding import constrain_envs
from purerl.networks import (ActorCritic, RecurrentActorCritic, policy_noise, sample_with, torso_args,
                             unroll_recurrent)

__all__ = ["OnPolicyConfig", "TrainState", "collect", "collect_with", "end_update", "env_splitter", "make_init",
           "make_env", "make_network", "make_policy", "make_trainer", "policy_at", "policy_gradient_loss", "Setup",
           "setup", "trainer", "values_and_gae"]

@struct.dataclass
class OnPolicyConfig(BaseConfig):
    """The fields every algorithm has (:class:`~purerl.config.BaseConfig`) plus those the on-policy algorithms
    share (each algorithm's Config extends this one and may re-declare a field to change its default)."""

    # --- static ---
    total_timesteps: int = static_field(500_000, "env steps in the whole run (rounded down to whole updates)")
    num_steps: int = static_field(128, "steps per env per update (rollout length)")
    hidden_sizes: tuple = static_field((64, 64), "MLP widths of actor and critic")
    shared_network: bool = static_field(False, "one torso for policy and value heads")
    recurrent: bool = static_field(False, "a GRU actor-critic with memory across an episode's steps (PPO, A2C); "
                                   "PPO's minibatches are then whole env sequences")
    state_dependent_std: bool = static_field(False, "Gaussian log-std as a network output instead of a parameter")
    normalize_obs: bool = static_field(False, "running mean/std observation normalisation")
    normalize_reward: bool = static_field(False, "divide rewards by the running std of discounted returns")
    action_transform: str = static_field("clip", "continuous actions: clip to bounds or rescale from [-1, 1]",
                                         choices=envs.ACTION_TRANSFORMS)
    unroll: int | None = static_field(None, "lax.scan unroll of the rollout (a speed knob, same results); None: "
                                      "8 on a GPU, 1 elsewhere (measured: purerl.compiling.PER_BACKEND)")
    anneal_lr: bool = static_field(False, "decay the learning rate linearly to 0 over the run")
    # --- leaves ---
    learning_rate: float = leaf_field(2.5e-4, "optimiser step size")
    max_grad_norm: float = leaf_field(0.5, "global gradient-norm clip")

    _recurrent_supported = False  # algorithms whose update replays a recurrent policy's memory set it True
    _applies = {"shared_network": (lambda c: not c.recurrent, "the recurrent network has one GRU torso for policy "
                                   "and value already")}

    @property
    def steps_per_update(self) -> int:
        """Env steps collected per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.steps_per_update

    def _check(self) -> None:
        super()._check()
        check(self.num_steps >= 1, "num_steps", self.num_steps, "use a positive integer")
        check(not self.recurrent or self._recurrent_supported, "recurrent", self.recurrent,
              f"{type(self).__module__} has no recurrent policy; use ppo or a2c for recurrent=True")
        check(self.num_updates >= 1, "total_timesteps", self.total_timesteps,
              f"it must be at least num_envs * num_steps = {self.steps_per_update} (one update)")
        check_leaf(self, "learning_rate", low=0.0, low_open=True)
        check_leaf(self, "max_grad_norm", low=0.0, low_open=True)


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    env_state: Any            # includes the observation-normaliser statistics when normalize_obs
    obs: jax.Array
    key: jax.Array
    update_step: jax.Array    # int32 scalar: updates done so far
    last_return: jax.Array    # latest mean episode return (carried when no episode finished)
    last_length: jax.Array
    memory: Any = None        # a recurrent policy's memory per env [N, H] (None for feedforward policies)


def env_splitter(cfg: OnPolicyConfig, mesh: Mesh | None) -> Callable[..., Any]:
    """``shard(tree, axis=0)``: marks the env axis as split over ``mesh`` (:mod:`purerl.core.sharding`);
    the identity without a mesh. ``num_envs`` must be a multiple of the device count."""
    if mesh is not None and cfg.num_envs % mesh.devices.size:
        raise ValueError(f"config field `num_envs` = {cfg.num_envs} must be a multiple of the "
                         f"{mesh.devices.size} devices it is split over")
    return lambda tree, axis=0: constrain_envs(tree, mesh, cfg.num_envs, axis)


def _identity(tree, axis=0):
    return tree


def make_init(env: envs.VecEnv, network: ActorCritic, opt_init: Callable[[Any], Any], shard=_identity):
    """``init(key) -> TrainState``: fresh parameters, optimiser state (``opt_init(params)``) and envs."""

    def init(key: jax.Array) -> TrainState:
        k_params, k_env, k_state = jax.random.split(key, 3)
        env_state, obs = env.reset(k_env)
        env_state, obs = shard(env_state), shard(obs)
        memory = None
        if isinstance(network, RecurrentActorCritic):
            memory = shard(network.initial_hidden(obs.shape[:1]))
            params = network.init(k_params, memory, obs)
        else:
            params = network.init(k_params, obs)
        nan = jnp.full((), jnp.nan, jnp.float32)
        return TrainState(params=params, opt_state=opt_init(params), env_state=env_state, obs=obs, key=k_state,
                          update_step=jnp.zeros((), jnp.int32), last_return=nan, last_length=nan, memory=memory)

    return init


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every on-policy ``make`` starts from (:func:`setup`)."""

    cfg: Any                      # the validated config
    env: envs.VecEnv              # the training env (normalisation and reward scaling as configured)
    network: Any                  # the actor-critic, or what the algorithm's ``network`` builder made
    shard: Callable[..., Any]     # the env-axis splitter for the mesh (:func:`env_splitter`)


def setup(config: OnPolicyConfig, mesh: Mesh | None = None, *, config_cls: type = OnPolicyConfig,
          network: Callable[[Any, envs.VecEnv], Any] | None = None) -> Setup:
    """Validate ``config`` (an instance of the algorithm's ``config_cls``) and build the training env, the
    network (``network(cfg, env)``; default :func:`make_network`, the actor-critic) and the env-axis
    splitter."""
    check_config(config, config_cls)
    cfg = config.validate()
    env = make_env(cfg, cfg.num_envs, train=True)
    build = make_network if network is None else network
    return Setup(cfg=cfg, env=env, network=build(cfg, env), shard=env_splitter(cfg, mesh))


def make_env(cfg: OnPolicyConfig, num_envs: int, train: bool) -> envs.VecEnv:
    """The training env (normalisation and reward scaling as configured) or an evaluation env (raw rewards;
    observations normalised with the training statistics by :func:`make_policy`). Fields of ``cfg`` that do
    nothing for this env are refused here (:func:`~purerl.config.check_env_fields`), where the env exists."""
    env = envs.make(cfg.env, num_envs, backend=cfg.env_backend, episode_length=cfg.episode_length,
                     action_transform=cfg.action_transform, normalize_obs=cfg.normalize_obs and train,
                     normalize_reward=cfg.normalize_reward and train, gamma=cfg.gamma)
    check_env_fields(cfg, env, envs.suite_of(env.env_id))
    return env


def make_network(cfg: OnPolicyConfig, env: envs.VecEnv) -> ActorCritic | RecurrentActorCritic:
    """The actor-critic for ``cfg``: a GRU one (:class:`~purerl.networks.RecurrentActorCritic`) when the config
    has ``recurrent=True``, else feed-forward torsos (:func:`~purerl.networks.torso_args`: MLP, optionally after
    a CNN, optionally with LayerNorm)."""
    torso = torso_args(cfg, env.obs_shape)
    if getattr(cfg, "recurrent", False):
        return RecurrentActorCritic(action_dim=env.action_dim, discrete=env.is_discrete,
                                    state_dependent_std=cfg.state_dependent_std, **torso)
    return ActorCritic(action_dim=env.action_dim, discrete=env.is_discrete, shared=cfg.shared_network,
                       state_dependent_std=cfg.state_dependent_std, **torso)


def policy_at(network: ActorCritic | RecurrentActorCritic, params: Any, memory: Any, obs: jax.Array):
    """``(pi, memory)``: the policy at ``obs`` and the memory after the step. A recurrent network steps its
    ``memory``; a feedforward one has none (takes and returns ``None``)."""
    if isinstance(network, RecurrentActorCritic):
        memory, pi, _ = network.apply(params, memory, obs)
        return pi, memory
    return network.apply(params, obs, method=ActorCritic.policy), memory


def collect(env: envs.VecEnv, network: ActorCritic | RecurrentActorCritic, params: Any, env_state: Any,
            obs: jax.Array, key: jax.Array, num_steps: int, unroll: int = 1, shard=_identity,
            memory: Any = None) -> Rollout:
    """A rollout of the stochastic policy (a :class:`~purerl.core.trajectory.Rollout`);
    ``traj.extras["log_prob"]`` holds the behaviour log-probs. ``shard`` (from :func:`env_splitter`) keeps the
    env axis split over devices in and out. ``memory`` is a recurrent network's (``None`` for a feedforward
    one); the caller keeps the memory the rollout started from, which the update replays the rollout from
    (:func:`values_and_gae`, :func:`forward`)."""

    def policy(o, noise, mem):
        pi, mem = policy_at(network, params, mem, o)
        action = sample_with(pi, noise)
        return action, {"log_prob": pi.log_prob(action)}, mem

    def draw(k, batch_shape):
        return policy_noise(k, batch_shape, network.discrete, network.action_dim)

    return collect_with(env, policy, draw, env_state, obs, key, num_steps, unroll, shard, memory)


def collect_with(env: envs.VecEnv, policy: Callable, draw: Callable, env_state: Any, obs: jax.Array,
                 key: jax.Array, num_steps: int, unroll: int = 1, shard=_identity, memory: Any = None) -> Rollout:
    """A rollout (:func:`~purerl.core.trajectory.rollout`) of any acting function ``policy(obs, x_t, memory) ->
    (action, extras, memory)``, where ``x_t`` is step ``t`` of the randomness ``draw(key, (num_steps,
    num_envs))`` draws ahead for the whole rollout (a pytree of ``[T, N, ...]`` arrays, e.g.
    :func:`~purerl.networks.policy_noise` or :func:`~purerl.core.exploration.greedy_noise`), with the env axis
    kept split over the devices of ``shard`` in and out. :func:`collect` is this with the stochastic policy of
    an actor-critic."""
    with jax.named_scope("rollout"):
        k_noise, k_roll = jax.random.split(key)
        inputs = draw(k_noise, (num_steps, env.num_envs))
        out = rollout(env, policy, shard(env_state), shard(obs), k_roll, num_steps, unroll=unroll,
                      policy_inputs=shard(inputs, 1), memory=shard(memory))
    return Rollout(shard(out.env_state), shard(out.obs), shard(out.memory), shard(out.traj, 1), out.tally)


def end_update(state: TrainState, tally: EpisodeTally, steps_per_update: int, *, params: Any, opt_state: Any,
               env_state: Any, obs: jax.Array, key: jax.Array, **fields) -> tuple[TrainState, dict]:
    """How every on-policy update ends: ``(state, metrics)`` with the new ``params``, ``opt_state``, env state,
    observation, ``key`` and the algorithm's own ``fields`` (e.g. ``memory=``) in the state, ``update_step``
    advanced by one, the episodes that ended in ``tally`` (:func:`~purerl.core.loop.carry_episodes`) and
    ``env_steps`` after this update in the metrics."""
    update_step = state.update_step + 1
    state, episodes = carry_episodes(state, tally, params=params, opt_state=opt_state, env_state=env_state,
                                     obs=obs, key=key, update_step=update_step, **fields)
    return state, {**episodes, "env_steps": env_steps(update_step, steps_per_update)}


def episode_starts(done: jax.Array) -> jax.Array:
    """``first[t] = done[t - 1]`` (``[T, N]``; False at ``t = 0``): where a recurrent policy's memory was zeroed
    before step ``t`` of a rollout that started from the memory it carried."""
    return jnp.concatenate([jnp.zeros_like(done[:1]), done[:-1]], axis=0)


def forward(network: ActorCritic | RecurrentActorCritic, params: Any, batch: dict):
    """``(pi, V)`` at ``batch["obs"]``: one call of a feedforward network (any batch shape), or for a recurrent
    one the sequence ``[T, n, ...]`` replayed from ``batch["memory0"]`` ``[n, H]`` with the memory zeroed where
    ``batch["first"]`` says an episode starts (so the update sees the rollout's memories)."""
    if "memory0" in batch:
        _, pi, v = unroll_recurrent(network, params, batch["memory0"], batch["obs"], batch["first"])
        return pi, v
    return network.apply(params, batch["obs"])


def values_and_gae(network: ActorCritic | RecurrentActorCritic, params: Any, traj, gamma: Any, lam: Any,
                   memory0: Any = None):
    """``(values, advantages, value_targets)`` for a rollout; ``lam = 1`` gives the n-step returns that
    bootstrap from ``V`` at the rollout's end (and at time-limit truncations). A recurrent network is replayed
    over the rollout from ``memory0``, the memory the rollout started from; ``V(final_obs[t])`` continues each
    step's memory (the episode has not ended for it)."""
    with jax.named_scope("advantage"):
        if memory0 is None:
            value_fn = lambda o: network.apply(params, o, method=ActorCritic.value)  # noqa: E731
            values, next_values = value_fn(traj.obs), value_fn(traj.final_obs)
        else:
            memories, _, values = unroll_recurrent(network, params, memory0, traj.obs, episode_starts(traj.done))
            _, _, next_values = network.apply(params, memories, traj.final_obs)
        adv, targets = gae(traj.reward, values, next_values, traj.terminated, traj.done, gamma, lam)
    return values, adv, targets


def policy_gradient_loss(network: ActorCritic, params: Any, batch: dict, ent_coef: Any, vf_coef: Any,
                         normalize_advantages: bool = False) -> tuple[jax.Array, dict]:
    """``-sum(w * log pi(a|s) * A) / n + vf_coef * 0.5 * sum(w * (V(s) - target)^2) / n - ent_coef * H``.

    ``batch`` holds flat ``obs``, ``action``, ``advantage``, ``target`` and optionally ``weight`` (0 drops a
    step; ``n`` is the batch size, a constant, so dropping steps does not reweight the others).
    ``normalize_advantages`` standardises the advantages over the weighted steps first."""
    pi, v = forward(network, params, batch)
    n = batch["advantage"].size
    w = batch.get("weight", jnp.ones_like(batch["advantage"]))
    adv = standardize(batch["advantage"], w) if normalize_advantages else batch["advantage"]
    log_prob = pi.log_prob(batch["action"])
    policy_loss = -jnp.sum(w * log_prob * jax.lax.stop_gradient(adv)) / n
    value_loss = 0.5 * jnp.sum(w * jnp.square(v - batch["target"])) / n
    entropy = jnp.sum(w * pi.entropy()) / jnp.maximum(w.sum(), 1.0)
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def make_policy(network: ActorCritic, train_env: envs.VecEnv, act: Callable | None = None):
    """``policy(state, deterministic=True) -> act(obs, key)`` for any train state with ``params`` and
    ``env_state``: the policy's mode (or a sample) on raw observations, normalised with the state's frozen
    observation statistics. For a recurrent network ``act`` is a
    :class:`~purerl.core.evaluation.RecurrentAct`, which carries the policy's memory through an episode.
    An algorithm whose network is no actor-critic passes its own ``act(state, obs, key, deterministic) ->
    action`` (on the normalised observations)."""

    def policy(state: Any, deterministic: bool = True):
        rms = train_env.obs_normalizer(state.env_state)
        norm = (lambda o: o) if rms is None else rms.normalize  # noqa: E731
        if act is not None:
            return lambda obs, k: act(state, norm(obs), k, deterministic)
        choose = lambda pi, k: pi.mode() if deterministic else pi.sample(seed=k)  # noqa: E731

        def step(memory, obs, k):
            pi, memory = policy_at(network, state.params, memory, norm(obs))
            return choose(pi, k), memory

        if isinstance(network, RecurrentActorCritic):  # the memory is carried by the caller (evaluate_policy)
            return RecurrentAct(network.initial_hidden, step)
        return lambda obs, k: step(None, obs, k)[0]

    return policy


def make_trainer(cfg: OnPolicyConfig, env: envs.VecEnv, network: ActorCritic, *, init: Callable,
                 update: Callable, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
                 policy: Callable | None = None) -> Trainer:
    """The :class:`~purerl.core.loop.Trainer` of an on-policy algorithm: one log point per update of
    ``steps_per_update`` env steps, the fused ``train``, and evaluation of ``policy`` (default
    :func:`make_policy` of ``network``) in evaluation envs (raw rewards, observations normalised with the
    training statistics)."""
    return build_trainer(config=cfg, env=env, num_log_points=cfg.num_updates,
                         steps_per_log_point=cfg.steps_per_update, init=init, update=update,
                         policy=make_policy(network, env) if policy is None else policy,
                         eval_env=lambda n: make_env(cfg, n, train=False), progress=progress,
                         progress_metrics=progress_metrics)


trainer = make_trainer  # the name before off- and on-policy factories were paired (make_trainer in both)
