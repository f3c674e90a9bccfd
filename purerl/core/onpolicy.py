"""The on-policy loop (REINFORCE, A2C, A3C, TRPO, PPO, PQN) and what those algorithms share, written once.

An on-policy algorithm is a ``Config``, its losses and ``make_agent(cfg, env) ->`` :class:`Agent`
(:mod:`purerl.core.agent`: ``init``, ``explore``, ``learn``, plus ``draw`` and ``policy``); :func:`build`
makes its :class:`~purerl.core.loop.Trainer`. One update of the loop (:func:`make_trainer`):

1. collect ``num_steps`` steps in every env with ``agent.explore`` (:func:`collect_with`: its randomness drawn
   ahead by ``agent.draw``; a recurrent policy's memory carried and zeroed at episode ends);
2. set this update's learning rate in the optimiser state (``anneal_lr``: :func:`~purerl.core.optim.annealed`);
3. ``agent.learn(state, rollout, key)``: the algorithm's own step (advantages, batches, gradient steps);
4. :func:`end_update`: the env state, observation, memory and key to continue from, the update counter and
   the episodes that ended.

An agent with ``workers`` > 1 (A3C) has that many groups of ``num_envs`` envs that take turns within an
update: each collects a rollout with the state ``agent.behaviour`` gives it (A3C: parameters some updates
old) and the agent learns from it, one after another. Observation normalisation and reward scaling are the
env's (:func:`make_env`); evaluation and the trained policy normalise observations with the training statistics
(over every worker's envs); ``mesh`` splits the env batch over devices (:func:`env_splitter`).

What the algorithms share besides the loop:

* :class:`OnPolicyConfig`: the fields every on-policy algorithm has (env, rollout shape, network, the
  env-side normalisation switches, discount, learning rate, gradient clipping), with their validation.
* :class:`TrainState`: parameters, optimiser state, env state and counters (an algorithm with more state
  subclasses it).
* :func:`make_env`, :func:`make_network` (the actor-critic), :func:`actor_critic` (the :class:`Agent` fields
  of an actor-critic: sampling, its noise, evaluation, memory) and :func:`network_init` (fresh parameters and
  optimiser state).
* :func:`collect`: one rollout with an actor-critic's stochastic policy (actions and their log-probabilities),
  a :class:`~purerl.core.trajectory.Rollout` whether or not the policy has memory (:func:`policy_at`).
* :func:`values_and_gae`: ``V(obs)``, ``V(final_obs)`` in two batched calls, then GAE(lambda) targets;
  :func:`forward` and :func:`episode_starts` replay a recurrent policy over a rollout.
* :func:`policy_gradient_loss`: score-function policy loss with weights, value regression, entropy bonus.
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
from purerl.core import agent as agent_protocol
from purerl.core import optim
from purerl.core.evaluation import RecurrentAct
from purerl.core.loop import Trainer, build_trainer, carry_episodes, env_steps
from purerl.core.progress import ProgressFn
from purerl.core.trajectory import EpisodeTally, Rollout, gae, rollout, standardize
from purerl.core.sharding import constrain_envs
from purerl.networks import (ActorCritic, RecurrentActorCritic, policy_noise, sample_with, torso_args,
                             unroll_recurrent)

__all__ = ["Agent", "OnPolicyConfig", "TrainState", "actor_critic", "build", "collect", "collect_with",
           "end_update", "env_splitter", "episode_starts", "forward", "make_env", "make_network", "make_trainer",
           "network_init", "policy_at", "policy_gradient_loss", "values_and_gae", "worker_keys"]


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
    def steps_per_log_point(self) -> int:
        """Env steps per log point, which is one update: ``num_envs * num_steps`` (A3C: of every worker)."""
        return self.num_envs * self.num_steps

    @property
    def num_log_points(self) -> int:
        """Log points (updates) in the run: ``total_timesteps // steps_per_log_point``."""
        return self.total_timesteps // self.steps_per_log_point

    def _check(self) -> None:
        super()._check()
        check(self.num_steps >= 1, "num_steps", self.num_steps, "use a positive integer")
        check(not self.recurrent or self._recurrent_supported, "recurrent", self.recurrent,
              f"{type(self).__module__} has no recurrent policy; use ppo or a2c for recurrent=True")
        check(self.num_log_points >= 1, "total_timesteps", self.total_timesteps,
              f"it must be at least num_envs * num_steps = {self.steps_per_log_point} (one update)")
        check_leaf(self, "learning_rate", low=0.0, low_open=True)
        check_leaf(self, "max_grad_norm", low=0.0, low_open=True)


@struct.dataclass
class TrainState:
    """The on-policy train state. An agent's ``init`` gives its own fields (``params``, ``opt_state`` and those of
    an algorithm's subclass); the loop fills in the rest."""

    params: Any = None
    opt_state: Any = None
    env_state: Any = None          # includes the observation-normaliser statistics when normalize_obs
    obs: jax.Array = None
    key: jax.Array = None
    update_step: jax.Array = None  # int32 scalar: updates done so far
    last_return: jax.Array = None  # latest mean episode return (carried when no episode finished)
    last_length: jax.Array = None
    memory: Any = None             # a recurrent policy's memory per env [N, H] (None for feedforward policies)


@dataclasses.dataclass(frozen=True)
class Agent(agent_protocol.Agent):
    """An on-policy algorithm's agent (:mod:`purerl.core.agent`): ``init(key, obs) -> TrainState`` (its own
    fields set), ``explore(state, obs, x, memory) -> (action, extras, memory)``, ``learn(state, rollout, key) ->
    (state, metrics)`` (``state`` with its new ``params``, ``opt_state`` and own fields), and:

    * ``draw(key, (T, N))``: the randomness of a rollout's ``explore`` calls, drawn ahead (``x`` is step ``t``);
    * ``policy(state, deterministic) -> act(obs, key)``, or a :class:`~purerl.core.evaluation.RecurrentAct`:
      the trained policy on normalised observations (evaluation, ``Trainer.policy``, export);
    * ``initial_memory(batch_shape)``: a recurrent policy's memory at an episode's start (None: no memory);
    * ``workers``: groups of ``num_envs`` envs taking turns within an update, each collecting with
      ``behaviour(state, key) -> state`` (default: the state itself) and learned from in turn (A3C).

    :func:`actor_critic` gives ``explore``, ``draw``, ``policy`` and ``initial_memory`` for an actor-critic."""

    draw: Callable[[jax.Array, tuple], Any] = None
    policy: Callable[[TrainState, bool], Any] = None
    initial_memory: Callable[[tuple], Any] | None = None
    behaviour: Callable[[TrainState, jax.Array], TrainState] | None = None
    workers: int = 1


def env_splitter(cfg: OnPolicyConfig, mesh: Mesh | None) -> Callable[..., Any]:
    """``shard(tree, axis=0)``: marks the env axis as split over ``mesh`` (:mod:`purerl.core.sharding`);
    the identity without a mesh. ``num_envs`` must be a multiple of the device count."""
    if mesh is not None and cfg.num_envs % mesh.devices.size:
        raise ValueError(f"config field `num_envs` = {cfg.num_envs} must be a multiple of the "
                         f"{mesh.devices.size} devices it is split over")
    return lambda tree, axis=0: constrain_envs(tree, mesh, cfg.num_envs, axis)


def _identity(tree, axis=0):
    return tree


def make_env(cfg: OnPolicyConfig, num_envs: int, train: bool) -> envs.VecEnv:
    """The training env (normalisation and reward scaling as configured) or an evaluation env (raw rewards;
    observations normalised with the training statistics by the trainer's policy). Fields of ``cfg`` that do
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


def network_init(network: Any, opt_init: Callable[[Any], Any]) -> Callable[[jax.Array, jax.Array], TrainState]:
    """An agent's ``init(key, obs)`` for one network: its fresh parameters (a recurrent one's from the zero
    memory) and their optimiser state ``opt_init(params)``."""

    def init(key: jax.Array, obs: jax.Array) -> TrainState:
        if isinstance(network, RecurrentActorCritic):
            params = network.init(key, network.initial_hidden(obs.shape[:1]), obs)
        else:
            params = network.init(key, obs)
        return TrainState(params=params, opt_state=opt_init(params))

    return init


def policy_at(network: ActorCritic | RecurrentActorCritic, params: Any, memory: Any, obs: jax.Array):
    """``(pi, memory)``: the policy at ``obs`` and the memory after the step. A recurrent network steps its
    ``memory``; a feedforward one has none (takes and returns ``None``)."""
    if isinstance(network, RecurrentActorCritic):
        memory, pi, _ = network.apply(params, memory, obs)
        return pi, memory
    return network.apply(params, obs, method=ActorCritic.policy), memory


def _sample(network: ActorCritic | RecurrentActorCritic, params: Any, obs: jax.Array, noise: jax.Array,
            memory: Any) -> tuple[jax.Array, dict, Any]:
    """The stochastic policy's action from drawn ``noise``, its log-probability and the memory after the step."""
    pi, memory = policy_at(network, params, memory, obs)
    action = sample_with(pi, noise)
    return action, {"log_prob": pi.log_prob(action)}, memory


def actor_critic(network: ActorCritic | RecurrentActorCritic) -> dict:
    """The :class:`Agent` fields of an actor-critic ``network``: ``explore`` samples the policy (from noise drawn
    ahead by ``draw``, :func:`~purerl.networks.policy_noise`) and records each action's log-probability as
    ``extras["log_prob"]``; ``policy`` takes the policy's mode (or a sample) and carries a recurrent network's
    memory through an episode (``initial_memory``)."""

    def explore(state: TrainState, obs, noise, memory):
        return _sample(network, state.params, obs, noise, memory)

    def draw(key, batch_shape):
        return policy_noise(key, batch_shape, network.discrete, network.action_dim)

    def policy(state: TrainState, deterministic: bool = True):
        choose = lambda pi, k: pi.mode() if deterministic else pi.sample(seed=k)  # noqa: E731

        def step(memory, obs, k):
            pi, memory = policy_at(network, state.params, memory, obs)
            return choose(pi, k), memory

        if isinstance(network, RecurrentActorCritic):  # the memory is carried by the caller (evaluate_policy)
            return RecurrentAct(network.initial_hidden, step)
        return lambda obs, k: step(None, obs, k)[0]

    memory = network.initial_hidden if isinstance(network, RecurrentActorCritic) else None
    return {"explore": explore, "draw": draw, "policy": policy, "initial_memory": memory}


def collect(env: envs.VecEnv, network: ActorCritic | RecurrentActorCritic, params: Any, env_state: Any,
            obs: jax.Array, key: jax.Array, num_steps: int, unroll: int = 1, shard=_identity,
            memory: Any = None) -> Rollout:
    """A rollout of an actor-critic's stochastic policy at ``params`` (a
    :class:`~purerl.core.trajectory.Rollout`); ``traj.extras["log_prob"]`` holds the behaviour log-probs: the
    loop's collection for an agent made with :func:`actor_critic`. ``shard`` (from :func:`env_splitter`) keeps
    the env axis split over devices in and out. ``memory`` is a recurrent network's (``None`` for a feedforward
    one); the caller keeps the memory the rollout started from, which the update replays the rollout from
    (:func:`values_and_gae`, :func:`forward`)."""
    fields = actor_critic(network)
    return collect_with(env, lambda o, x, m: _sample(network, params, o, x, m), fields["draw"], env_state, obs,
                        key, num_steps, unroll, shard, memory)


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


def end_update(state: TrainState, tally: EpisodeTally, steps_per_log_point: int,
               **fields) -> tuple[TrainState, dict]:
    """How every on-policy update ends: ``(state, metrics)`` with ``fields`` replaced in the state (the env
    state, observation, memory and key to continue from, and whatever else changed), ``update_step``
    advanced by one, the episodes that ended in ``tally`` (:func:`~purerl.core.loop.carry_episodes`) and
    ``env_steps`` after this update in the metrics."""
    update_step = state.update_step + 1
    state, episodes = carry_episodes(state, tally, update_step=update_step, **fields)
    return state, {**episodes, "env_steps": env_steps(update_step, steps_per_log_point)}


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


def worker_keys(key: jax.Array, workers: int) -> tuple[jax.Array, jax.Array]:
    """``(next_state_key, keys [workers, 3])`` for one update of an agent with workers: per worker the keys of
    its ``behaviour``, its rollout and its learning step."""
    key, k_round = jax.random.split(key)
    return key, jax.vmap(lambda k: jax.random.split(k, 3))(jax.random.split(k_round, workers))


def build(config: OnPolicyConfig, make_agent: Callable[[Any, envs.VecEnv], Agent],
          progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (), mesh: Mesh | None = None, *,
          config_cls: type = OnPolicyConfig) -> Trainer:
    """What every on-policy ``make`` is: validate ``config`` (an instance of the algorithm's ``config_cls``),
    build the training env and the algorithm's agent (``make_agent(cfg, env)``) and wrap it in the loop
    (:func:`make_trainer`). ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`);
    the same result up to float error, ``num_envs`` a multiple of the device count."""
    check_config(config, config_cls)
    cfg = config.validate()
    env = make_env(cfg, cfg.num_envs, train=True)
    shard = env_splitter(cfg, mesh)
    return make_trainer(cfg, env, make_agent(cfg, env), shard, progress, progress_metrics)


def make_trainer(cfg: OnPolicyConfig, env: envs.VecEnv, agent: Agent, shard=_identity,
                 progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = ()) -> Trainer:
    """The on-policy loop around ``agent`` (``cfg`` validated, ``env`` the training env; see the module
    docstring): one log point per update of ``steps_per_log_point`` env steps, the fused ``train``, and evaluation
    of ``agent.policy`` in evaluation envs (raw rewards, observations normalised with the training
    statistics)."""
    workers = agent.workers

    def init(key: jax.Array) -> TrainState:
        k_params, k_env, k_state = jax.random.split(key, 3)
        if workers == 1:
            env_state, obs = env.reset(k_env)
            env_state, obs = shard(env_state), shard(obs)
            first = obs
        else:  # each worker's envs, on a leading worker axis
            env_state, obs = jax.vmap(env.reset)(jax.random.split(k_env, workers))
            first = obs[0]
        memory = None if agent.initial_memory is None else shard(agent.initial_memory(first.shape[:1]))
        nan = jnp.full((), jnp.nan, jnp.float32)
        return agent.init(k_params, first).replace(env_state=env_state, obs=obs, key=k_state,
                                                   update_step=jnp.zeros((), jnp.int32), last_return=nan,
                                                   last_length=nan, memory=memory)

    def turn(state, env_state, obs, keys, step):
        """One rollout of ``state``'s behaviour in one group of envs, and the agent's learning step on it at
        optimiser step ``step`` of ``workers * num_log_points``."""
        k_behaviour, k_roll, k_learn = keys
        acting = state if agent.behaviour is None else agent.behaviour(state, k_behaviour)
        ro = collect_with(env, lambda o, x, m: agent.explore(acting, o, x, m), agent.draw, env_state, obs, k_roll,
                          cfg.num_steps, cfg.scan_unroll, shard, acting.memory)
        opt_state, _ = optim.annealed(state.opt_state, cfg.learning_rate, step, workers * cfg.num_log_points,
                                      cfg.anneal_lr)
        state, metrics = agent.learn(state.replace(opt_state=opt_state), ro._replace(behaviour=acting), k_learn)
        return state, ro, metrics

    def update(state: TrainState) -> tuple[TrainState, dict]:
        if workers == 1:
            key, k_roll, k_learn = jax.random.split(state.key, 3)
            state, ro, metrics = turn(state, state.env_state, state.obs, (k_learn, k_roll, k_learn),
                                      state.update_step)
            state, out = end_update(state, ro.tally, cfg.steps_per_log_point, env_state=ro.env_state, obs=ro.obs,
                                    key=key, memory=ro.memory)
            return state, {**out, **metrics}
        key, keys = worker_keys(state.key, workers)

        def worker(s, xs):
            w, env_state, obs, k = xs
            s, ro, metrics = turn(s, env_state, obs, (k[0], k[1], k[2]), s.update_step * workers + w)
            return s, (ro.env_state, ro.obs, ro.tally, metrics)

        state, (env_state, obs, tallies, metrics) = jax.lax.scan(
            worker, state, (jnp.arange(workers), state.env_state, state.obs, keys))
        tally = EpisodeTally(*(jnp.sum(x) for x in (tallies.return_sum, tallies.length_sum, tallies.count)))
        state, out = end_update(state, tally, cfg.steps_per_log_point, env_state=env_state, obs=obs, key=key)
        return state, {**out, **{k: jnp.mean(v) for k, v in metrics.items()}}

    def policy(state: TrainState, deterministic: bool = True):
        """``agent.policy`` on raw observations, normalised with the state's frozen statistics (merged over the
        workers' envs)."""
        rms = env.obs_normalizer(state.env_state)
        if rms is not None and workers > 1:
            rms = rms.merged()
        act = agent.policy(state, deterministic)
        if rms is None:
            return act
        if isinstance(act, RecurrentAct):
            return RecurrentAct(act.initial, lambda memory, obs, k: act.step(memory, rms.normalize(obs), k))
        return lambda obs, k: act(rms.normalize(obs), k)

    return build_trainer(config=cfg, env=env, num_log_points=cfg.num_log_points,
                         steps_per_log_point=cfg.steps_per_log_point, init=init, update=update, policy=policy,
                         eval_env=lambda n: make_env(cfg, n, train=False), progress=progress,
                         progress_metrics=progress_metrics)
