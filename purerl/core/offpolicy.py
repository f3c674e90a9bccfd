"""The off-policy loop (DDPG, TD3, SAC, discrete SAC, DQN) and what those algorithms share, written once.

* :class:`OffPolicyConfig`: the fields every off-policy algorithm has (env, replay, schedule, evaluation).
* :func:`make_replay`: a flashbax item buffer of transitions with a bounded capacity; the vectorised envs
  add ``num_envs`` transitions per step, sampling is uniform over slots already written.
  :func:`make_sequence_replay`: a flashbax trajectory buffer, one row per env, whose samples are
  ``sequence_length`` consecutive transitions of one env (DQN's n-step returns).
  :func:`sample_after_add`: an item buffer's sample after an add, read from the storage before it, so that
  the loop's add writes the buffer in place (XLA copied the whole buffer every step before).
* :func:`td_target` and :func:`critic_loss`: the critics' target and regression loss (DDPG, TD3, SAC).
* :func:`polyak`: target-network averaging ``target <- tau * online + (1 - tau) * target``.
* :func:`explore_noise`: Gaussian or Ornstein-Uhlenbeck exploration for deterministic actors.
* :func:`make_trainer`: the training loop. ``init`` fills the replay buffer with ``learning_starts`` env
  steps (rounded up to whole vector steps) of uniform random actions. After that every *iteration* steps
  every env once with the exploring policy, adds the transitions to the buffer and runs ``gradient_steps``
  gradient updates on sampled batches (no branch in the loop: the warm-up is not part of it). One *log
  point* (the ``update`` of :class:`~purerl.core.loop.Trainer`) is ``(total_timesteps - warm-up) /
  (num_envs * num_log_points)`` iterations followed by a deterministic evaluation.

Continuous actions are in ``[-1, 1]^A`` everywhere inside; the env stack rescales them to the env's bounds.
Discrete actions are integer indices.
Replay stores ``(obs, action, reward, next_obs, terminated)`` with ``next_obs`` the observation *before*
any auto-reset, so a time-limit truncation bootstraps from ``Q(next_obs, .)`` and only a termination cuts
the return (the target is ``r + gamma * (1 - terminated) * Q'``).

Observation normalisation (``normalize_obs``, Brax's SAC scheme) lives here too, for every off-policy
algorithm alike: replay keeps the *raw* observations; a running mean and variance
(:class:`~purerl.envs.wrappers.RunningMeanStd`, :attr:`OffPolicyState.obs_rms`) folds in the observation of
every transition added (warm-up included), after the step that acted on it; the agent only ever sees
observations normalised with the statistics of the moment: when it acts (the statistics before the step),
when it learns (each sampled batch's ``obs`` and ``next_obs``, with the statistics that include the step just
taken) and when it is evaluated (:meth:`Trainer.policy <purerl.core.loop.Trainer>`, the evaluation and an
exported policy: the state's statistics, frozen). With ``normalize_obs`` False, ``obs_rms`` is None and
nothing changes.

An algorithm supplies an :class:`Agent` (the protocol of :mod:`purerl.core.agent`): ``init(key, obs) ->
agent_state``, ``explore(agent_state, obs, key, explore_state) -> (action, extras, explore_state)`` (``extras``
unused here), ``learn(agent_state, batch, key) -> (agent_state, metrics)`` and ``act(agent_state, obs) ->
action`` (deterministic, for evaluation). ``agent_state.params`` is what :attr:`Result.params` returns. The
agent also says what the loop must know of its actions and exploration, with continuous defaults
(:func:`continuous_actions`, :func:`discrete_actions`): which action spaces it accepts (``discrete``), one action
as the replay buffer stores it (``action_spec``), the warm-up's uniformly random actions (``warmup_actions``),
and its per-env exploration state: the initial one (``explore_init``) and the one an env starts its next episode
with (``explore_reset``). An agent whose exploration state is one for all envs (``explore_shared``: DQN's
epsilon schedule, a count of env steps) acts with the run's own in ``Trainer.policy(state,
deterministic=False)``, and may log it (``explore_metrics``). An agent that learns from ``sequence_length`` > 1
consecutive transitions gets batches with a time axis (``[B, L, ...]``, each row one env's consecutive steps,
auto-resets included) whose transitions also hold ``done`` (terminated or truncated), so that it can tell where
episodes end inside a sequence.

``make(config, mesh=...)`` splits the env batch over the devices of ``mesh`` (:mod:`purerl.core.sharding`), as
the on-policy loop does: every array with the env axis (env states, observations, exploration states, a
sequence replay's rows) is marked as split along it, the rest (networks, an item replay) replicated; the result
equals the single-device run up to float rounding.

Words: *env randomness* is what ``env.step`` takes in place of a key (one step of ``env.step_noise``, drawn
ahead of the loop by :func:`~purerl.core.trajectory.scan_env`, fresh reset states included); the
*exploration state* is the per-env state of an exploration process (DDPG's Ornstein-Uhlenbeck noise, zeroed
at episode ends; stored in :attr:`OffPolicyState.noise`, the name checkpoints hold); a policy's own sampling
takes a key.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flashbax
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from purerl import envs
from purerl.config import BaseConfig, check, check_config, check_env_fields, check_leaf, leaf_field, static_field
from purerl.core import agent as agent_protocol
from purerl.core.evaluation import evaluate_policy
from purerl.core.loop import Trainer, build_trainer, carry_episodes, env_steps
from purerl.core.progress import ProgressFn
from purerl.core.sharding import constrain_envs
from purerl.core.trajectory import EpisodeTally, scan_env
from purerl.envs.wrappers import RunningMeanStd
from purerl.keys import split_keys

__all__ = ["OffPolicyConfig", "Agent", "OffPolicyState", "critic_loss", "make_replay", "make_sequence_replay",
           "polyak", "td_target", "explore_noise", "continuous_actions", "discrete_actions", "normalized", "make_env",
           "make_trainer", "build", "EXPLORATION_NOISES"]

EXPLORATION_NOISES = ("gaussian", "ou")


@struct.dataclass
class OffPolicyConfig(BaseConfig):
    """The fields every algorithm has (:class:`~purerl.config.BaseConfig`) plus those DDPG, TD3 and SAC share
    (each algorithm's Config extends this one)."""

    # --- static ---
    env: str = static_field("Pendulum-v1", "environment id with continuous actions: gymnax, brax/<name> or "
                                 "playground/<name>")
    total_timesteps: int = static_field(100_000, "env steps in the whole run (rounded down to whole log points)")
    num_envs: int = static_field(1, "parallel environments; each iteration adds num_envs transitions")
    buffer_size: int = static_field(1_000_000, "replay capacity in transitions (capped at total_timesteps)")
    batch_size: int = static_field(256, "transitions sampled from the replay buffer per gradient step")
    learning_starts: int = static_field(1_000, "env steps of uniform random actions before the first update")
    gradient_steps: int = static_field(1, "gradient updates per iteration (per num_envs env steps)")
    hidden_sizes: tuple = static_field((256, 256), "MLP widths of actor and critics")
    activation: str = static_field("relu", "hidden activation: tanh, relu, elu, gelu, silu")
    num_log_points: int = static_field(20, "log points over the run; each ends with a deterministic evaluation "
                                       "(with eval_episodes > 0)")
    eval_episodes: int = static_field(10, "episodes per evaluation (0: no evaluation, training returns only)")
    unroll: int | None = static_field(None, "lax.scan unroll of the env-step/update loop (a speed knob, same "
                                      "results); None: 1 on every backend (purerl.compiling.PER_BACKEND)")
    normalize_obs: bool = static_field(False, "normalise observations by a running mean/std of the collected ones "
                                       "(Brax's SAC): replay keeps raw observations, the networks see them "
                                       "normalised with the current statistics")
    # --- leaves ---
    tau: float = leaf_field(0.005, "Polyak averaging rate of the target networks")
    actor_lr: float = leaf_field(3e-4, "actor Adam step size")
    critic_lr: float = leaf_field(3e-4, "critic Adam step size")
    reward_scale: float = leaf_field(1.0, "rewards are multiplied by this in the critic target")

    _unroll_default = "offpolicy_unroll"

    @property
    def warmup_iterations(self) -> int:
        """Vector-env steps of random actions that fill the buffer before learning."""
        return -(-self.learning_starts // self.num_envs)

    @property
    def iterations(self) -> int:
        """Vector-env steps in the run, warm-up included."""
        return self.warmup_iterations + self.num_log_points * self.iterations_per_log_point

    @property
    def iterations_per_log_point(self) -> int:
        """Vector-env steps (each followed by ``gradient_steps`` gradient steps) per log point."""
        return (self.total_timesteps // self.num_envs - self.warmup_iterations) // self.num_log_points

    @property
    def steps_per_log_point(self) -> int:
        """Env steps per log point: ``iterations_per_log_point * num_envs``."""
        return self.iterations_per_log_point * self.num_envs

    @property
    def capacity(self) -> int:
        return max(self.batch_size, min(self.buffer_size, self.iterations * self.num_envs))

    def _check(self) -> None:
        super()._check()
        for name in ("buffer_size", "batch_size", "gradient_steps", "num_log_points"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "use a positive integer")
        for name in ("learning_starts", "eval_episodes"):
            check(getattr(self, name) >= 0, name, getattr(self, name), "use a non-negative integer")
        check(self.buffer_size >= self.batch_size, "buffer_size", self.buffer_size,
              f"the replay buffer must hold at least one batch (batch_size = {self.batch_size})")
        check(self.buffer_size >= self.num_envs, "buffer_size", self.buffer_size,
              f"the replay buffer must hold what one vector step adds (num_envs = {self.num_envs} transitions)")
        check(self.learning_starts < self.total_timesteps, "learning_starts", self.learning_starts,
              f"it must be below total_timesteps ({self.total_timesteps}), or nothing is learned")
        check(self.iterations_per_log_point >= 1, "total_timesteps", self.total_timesteps,
              f"after the warm-up of learning_starts = {self.learning_starts} steps it must leave at least "
              f"num_envs * num_log_points = {self.num_envs * self.num_log_points} steps")
        check_leaf(self, "tau", low=0.0, high=1.0, low_open=True)
        check_leaf(self, "actor_lr", low=0.0, low_open=True)
        check_leaf(self, "critic_lr", low=0.0, low_open=True)
        check_leaf(self, "reward_scale", low=0.0, low_open=True)


@dataclasses.dataclass(frozen=True)
class Agent(agent_protocol.Agent):
    """What an off-policy algorithm plugs into :func:`make_trainer` (see the module docstring): the protocol's
    ``init``, ``explore`` and ``learn`` (:class:`purerl.core.agent.Agent`), its deterministic ``act``, and what the
    loop must know of its actions and exploration; left at None, ``action_spec``, ``warmup_actions``,
    ``explore_init`` and ``explore_reset`` are those of :func:`continuous_actions` for the env's action size."""

    act: Callable[[Any, jax.Array], jax.Array]
    discrete: bool = False                                     # the action space it accepts
    action_spec: jax.ShapeDtypeStruct | None = None            # one action as stored in the replay buffer
    warmup_actions: Callable[[jax.Array, tuple], jax.Array] | None = None  # (key, batch shape) -> uniform actions
    explore_init: Callable[[int], Any] | None = None           # num_envs -> the initial exploration state
    explore_reset: Callable[[Any, jax.Array], Any] | None = None  # (state, done [N]) -> state after episode ends
    explore_shared: bool = False        # one exploration state for all envs: the sampling policy acts with the run's
    explore_metrics: Callable[[Any], dict] | None = None       # exploration state -> metrics of each log point
    sequence_length: int = 1            # consecutive transitions per sampled item (1: single transitions)


def continuous_actions(action_dim: int) -> dict:
    """The :class:`Agent` fields of an agent acting in ``[-1, 1]^action_dim``: float actions, uniform warm-up
    actions in the box, and an ``[N, action_dim]`` exploration state (DDPG's Ornstein-Uhlenbeck noise; zeros
    an agent may leave unused) zeroed where an episode ended."""
    return {"discrete": False, "action_spec": jax.ShapeDtypeStruct((action_dim,), jnp.float32),
            "warmup_actions": lambda key, shape: jax.random.uniform(key, shape + (action_dim,), minval=-1.0,
                                                                    maxval=1.0),
            "explore_init": lambda n: jnp.zeros((n, action_dim), jnp.float32),
            "explore_reset": lambda x, done: jnp.where(done[:, None], 0.0, x)}


def discrete_actions(num_actions: int) -> dict:
    """The :class:`Agent` fields of an agent choosing one of ``num_actions`` actions: int32 indices, uniformly
    drawn warm-up actions and no exploration state (``None``)."""
    return {"discrete": True, "action_spec": jax.ShapeDtypeStruct((), jnp.int32),
            "warmup_actions": lambda key, shape: jax.random.randint(key, shape, 0, num_actions),
            "explore_init": lambda n: None, "explore_reset": lambda x, done: x}


def _with_defaults(agent: Agent, action_dim: int) -> Agent:
    defaults = continuous_actions(action_dim)
    return dataclasses.replace(agent, **{k: v for k, v in defaults.items()
                                         if k != "discrete" and getattr(agent, k) is None})


@struct.dataclass
class OffPolicyState:
    agent: Any              # the algorithm's state: params, target params, optimiser states, ...
    buffer: Any             # flashbax buffer state
    env_state: Any
    obs: jax.Array
    noise: Any              # the agent's per-env exploration state ([N, A] Ornstein-Uhlenbeck for DDPG, zeros
                            # for SAC, None for discrete SAC)
    key: jax.Array
    iteration: jax.Array    # int32: vector-env steps so far
    log_point: jax.Array    # int32: log points so far
    last_return: jax.Array
    last_length: jax.Array
    obs_rms: RunningMeanStd | None = None   # the observation statistics with normalize_obs, else None

    @property
    def params(self) -> Any:
        return self.agent.params

    @property
    def explore_state(self) -> Any:
        """The per-env exploration state (the field ``noise``)."""
        return self.noise


def make_replay(capacity: int, batch_size: int):
    """A flashbax item buffer: ``add(state, batch)`` with a leading axis of any size (the envs of one vector
    step), ``sample(state, key)`` returning ``.experience`` with a leading ``batch_size`` axis, drawn uniformly
    from written slots only."""
    return flashbax.make_item_buffer(max_length=capacity, min_length=1, sample_batch_size=batch_size,
                                     add_sequences=False, add_batches=True)


def sample_after_add(replay, before: Any, after: Any, items: Any, key: jax.Array) -> Any:
    """``replay.sample(after, key).experience`` for an item buffer ``after = replay.add(before, items)``
    (``items`` with a leading axis of ``N``), read from ``before``'s storage with the ``N`` items just added
    patched in: the same slots (flashbax's own sampling, on ``after``'s write position) and the same values.
    Only ``after``'s write position is read, so the add's write can come after this read."""
    capacity = jax.tree.leaves(before.experience)[0].shape[1]
    n = jax.tree.leaves(items)[0].shape[0]
    # flashbax's slots for `after` (its sampling run once, on a stand-in storage of slot numbers), then one gather
    # per field from the old storage (`[1, capacity, ...]`: an item buffer is one row)
    slot = replay.sample(after.replace(experience={"slot": jnp.arange(capacity)[None]}), key).experience["slot"]
    offset = (slot - before.current_index) % capacity          # 0..N-1 for the slots written by this add
    fresh, j = offset < n, jnp.minimum(offset, n - 1)

    def patch(stored, added):
        old = stored[0, slot]
        return jnp.where(jnp.reshape(fresh, fresh.shape + (1,) * (old.ndim - 1)), added[j], old)

    return jax.tree.map(patch, before.experience, items)


def make_sequence_replay(capacity: int, batch_size: int, num_envs: int, sequence_length: int):
    """A flashbax trajectory buffer holding about ``capacity`` transitions as ``num_envs`` rows (one per env) of
    ``capacity // num_envs`` steps: ``add(state, batch)`` takes ``[num_envs, 1, ...]`` (one vector step),
    ``sample(state, key).experience`` is ``[batch_size, sequence_length, ...]``: per item one env's
    ``sequence_length`` consecutive steps, drawn uniformly from the sequences that lie in written steps (never
    across the oldest and the newest step of a full buffer)."""
    return flashbax.make_trajectory_buffer(add_batch_size=num_envs, sample_batch_size=batch_size,
                                           sample_sequence_length=sequence_length, period=1,
                                           min_length_time_axis=sequence_length,
                                           max_length_time_axis=max(sequence_length, capacity // num_envs))


def td_target(reward: jax.Array, terminated: jax.Array, next_value: jax.Array, gamma: Any,
              reward_scale: Any = 1.0) -> jax.Array:
    """The critics' regression target ``reward_scale * r + gamma * (1 - terminated) * next_value``, where
    ``next_value`` is the target networks' value of ``s'`` (SAC's includes the entropy term)."""
    return reward_scale * reward + gamma * (1.0 - terminated.astype(jnp.float32)) * next_value


def critic_loss(q: jax.Array, target: jax.Array) -> jax.Array:
    """``0.5 * sum_j mean_b (q[j, b] - target[b])^2``: every critic ``j`` of an ensemble ``q`` ``[C, B]``
    regresses on the same target (the sum keeps each critic's gradient independent of their number)."""
    return 0.5 * jnp.sum(jnp.mean(jnp.square(q - target), axis=-1))


def polyak(target: Any, online: Any, tau: Any) -> Any:
    """``tau * online + (1 - tau) * target`` leaf by leaf."""
    return optax.incremental_update(online, target, tau)


def explore_noise(kind: str, action: jax.Array, explore_state: jax.Array, key: jax.Array, std: Any,
                  ou_theta: Any = 0.15, ou_dt: Any = 1e-2) -> tuple[jax.Array, jax.Array]:
    """Perturb a deterministic action in ``[-1, 1]``: independent Gaussian ``N(0, std^2)`` per step, or an
    Ornstein-Uhlenbeck process ``x += -theta x dt + std sqrt(dt) eps`` whose value ``x`` is the exploration
    state (stationary std ``std / sqrt(2 theta)``; the loop zeroes it at episode ends). Returns the clipped
    action and the new exploration state (unchanged for Gaussian noise)."""
    eps = jax.random.normal(key, action.shape, action.dtype)
    if kind == "gaussian":
        return jnp.clip(action + std * eps, -1.0, 1.0), explore_state
    x = explore_state - ou_theta * explore_state * ou_dt + std * jnp.sqrt(ou_dt) * eps
    return jnp.clip(action + x, -1.0, 1.0), x


def _nanmean(x: jax.Array) -> jax.Array:
    ok = ~jnp.isnan(x)
    return jnp.where(ok.any(), jnp.sum(jnp.where(ok, x, 0.0)) / jnp.maximum(ok.sum(), 1), jnp.nan)


def normalized(rms: RunningMeanStd | None, obs: jax.Array) -> jax.Array:
    """``obs`` normalised with the statistics ``rms`` (over the last axis, any leading axes), or as it is
    without statistics (``normalize_obs`` False)."""
    return obs if rms is None else rms.normalize(obs)


def make_env(cfg: OffPolicyConfig, num_envs: int) -> envs.VecEnv:
    return envs.make(cfg.env, num_envs, backend=cfg.env_backend, episode_length=cfg.episode_length,
                     action_transform="rescale")


def env_splitter(cfg: OffPolicyConfig, mesh: Mesh | None):
    """``shard(tree, axis=0)``: marks the env axis as split over ``mesh`` (:mod:`purerl.core.sharding`); the
    identity without a mesh. ``num_envs`` must be a multiple of the device count."""
    if mesh is not None and cfg.num_envs % mesh.devices.size:
        raise ValueError(f"config field `num_envs` = {cfg.num_envs} must be a multiple of the "
                         f"{mesh.devices.size} devices it is split over")
    return lambda tree, axis=0: constrain_envs(tree, mesh, cfg.num_envs, axis)


def make_trainer(cfg: OffPolicyConfig, agent: Agent, progress: ProgressFn | None = None,
                 progress_metrics: tuple[str, ...] = (), mesh: Mesh | None = None) -> Trainer:
    """The shared loop around ``agent`` (``cfg`` already validated), its env batch split over ``mesh``."""
    env = make_env(cfg, cfg.num_envs)
    eval_env = make_env(cfg, cfg.eval_episodes) if cfg.eval_episodes > 0 else None
    agent = _with_defaults(agent, env.action_dim)
    shard = env_splitter(cfg, mesh)
    sequences = agent.sequence_length > 1
    replay = (make_sequence_replay(cfg.capacity, cfg.batch_size, cfg.num_envs, agent.sequence_length) if sequences
              else make_replay(cfg.capacity, cfg.batch_size))

    def transition(obs, action, ts):
        item = {"obs": obs, "action": action, "reward": ts.reward, "next_obs": ts.final_obs,
                "terminated": ts.terminated}
        return {**item, "done": ts.done} if sequences else item

    def add(buffer, item):
        if not sequences:
            return replay.add(buffer, item)
        return replay.add(buffer, jax.tree.map(lambda x: x[:, None], item))   # [N, 1, ...]: one step per env

    def init(key: jax.Array) -> OffPolicyState:
        """Fresh networks and envs, and a replay buffer holding the warm-up steps (uniform random actions)."""
        k_agent, k_env, k_warm, k_state = jax.random.split(key, 4)
        env_state, obs = shard(env.reset(k_env))
        agent_state = agent.init(k_agent, obs)
        example = {"obs": obs[0], "action": jnp.zeros(agent.action_spec.shape, agent.action_spec.dtype),
                   "reward": jnp.zeros((), jnp.float32), "next_obs": obs[0], "terminated": jnp.zeros((), bool)}
        if sequences:
            example["done"] = jnp.zeros((), bool)

        def warmup(carry, inp):
            env_state, obs, buffer, tally, rms = carry
            action, env_random = inp
            env_state, ts = env.step(env_random, env_state, action)
            rms = None if rms is None else rms.update(obs)
            env_state, next_obs = shard((env_state, ts.obs))
            return (env_state, next_obs, add(buffer, transition(obs, action, ts)), tally.add(ts.done, ts.info),
                    rms), None

        k_act, k_env = jax.random.split(k_warm)
        actions = shard(agent.warmup_actions(k_act, (cfg.warmup_iterations, cfg.num_envs)), 1)
        rms = RunningMeanStd.create((env.obs_dim,)) if cfg.normalize_obs else None
        (env_state, obs, buffer, tally, rms), _ = scan_env(
            env, warmup, (env_state, obs, shard(replay.init(example)), EpisodeTally.zero(), rms), k_env,
            cfg.warmup_iterations, actions)
        nan = jnp.full((), jnp.nan, jnp.float32)
        zero = jnp.zeros((), jnp.int32)
        return OffPolicyState(agent_state, shard(buffer), env_state, obs, shard(agent.explore_init(cfg.num_envs)),
                              k_state, zero + cfg.warmup_iterations, zero, tally.mean_return(nan),
                              tally.mean_length(nan), rms)

    def iteration(carry, inp):
        s, tally = carry
        (k_explore, k_grads), env_random = inp
        with jax.named_scope("act"):
            action, _, explore_state = agent.explore(s.agent, normalized(s.obs_rms, s.obs), k_explore,
                                                     s.explore_state)
        with jax.named_scope("env_step"):
            env_state, ts = env.step(env_random, s.env_state, action)
        item = transition(s.obs, action, ts)
        # With an item buffer, the gradient steps read the buffer as it was before this step's add, with the
        # added items patched in (the same batches: `sample_after_add`), and the add writes after them: XLA then
        # updates the buffer in place. (Reading the updated buffer, XLA's CPU backend fused the write into the
        # sample's gather, which read the old buffer beside the new one: a copy of the whole buffer per step.)
        with jax.named_scope("replay_add"):
            added = shard(add(s.buffer, item))   # with an item buffer: only its write position is read here
        rms = None if s.obs_rms is None else s.obs_rms.update(s.obs)
        explore_state = agent.explore_reset(explore_state, ts.done)  # for the next episode

        def gradient_step(a, k):
            with jax.named_scope("replay_sample"):
                batch = (replay.sample(added, k[0]).experience if sequences
                         else sample_after_add(replay, s.buffer, added, item, k[0]))
            if rms is not None:
                batch = {**batch, "obs": rms.normalize(batch["obs"]), "next_obs": rms.normalize(batch["next_obs"])}
            return agent.learn(a, batch, k[1])

        agent_state, metrics = jax.lax.scan(gradient_step, s.agent, k_grads)
        if sequences:
            buffer = added
        else:
            # The write position plus a zero that XLA cannot see to be zero, computed from the last gradient step's
            # losses (an output of the gradient steps' loop, each step reading every field of its batch; without
            # float metrics, from the learned state): a data dependency that orders the write after every read of
            # the old buffer. (Summing every step's losses instead made DQN's loop 10% slower on a CPU.)
            floats = [leaf for leaf in jax.tree.leaves(metrics)
                      if leaf.size and jnp.issubdtype(leaf.dtype, jnp.floating)]
            seen = ([leaf.ravel()[-1] for leaf in floats] if floats else
                    [leaf.ravel()[0] for leaf in jax.tree.leaves(agent_state)
                     if leaf.size and jnp.issubdtype(leaf.dtype, jnp.floating)])
            after_reads = jnp.minimum(sum(jnp.isnan(x).astype(jnp.int32) for x in seen), 0)
            with jax.named_scope("replay_add"):
                buffer = shard(add(s.buffer.replace(current_index=s.buffer.current_index + after_reads), item))
        env_state, obs, explore_state = shard((env_state, ts.obs, explore_state))
        s = s.replace(agent=agent_state, buffer=buffer, env_state=env_state, obs=obs, noise=explore_state,
                      iteration=s.iteration + 1, obs_rms=rms)
        return (s, tally.add(ts.done, ts.info)), metrics

    def update(state: OffPolicyState) -> tuple[OffPolicyState, dict]:
        # Every key the log point's iterations use is split here, ahead of the loop: a key split inside a
        # loop body is a loop of its own on a CPU (jax's rolled threefry).
        key, k_iter, k_env = jax.random.split(state.key, 3)
        n = cfg.iterations_per_log_point
        keys = split_keys(k_iter, (n, 1 + 2 * cfg.gradient_steps))
        xs = (keys[:, 0], jnp.reshape(keys[:, 1:], (n, cfg.gradient_steps, 2)))
        (state, tally), metrics = scan_env(env, iteration, (state.replace(key=key), EpisodeTally.zero()), k_env,
                                           n, xs, cfg.scan_unroll)
        # Means over the log point's gradient steps; a metric may be NaN on steps where it does not apply
        # (the actor loss on TD3's critic-only steps) and is averaged over the others.
        out = {k: _nanmean(v) for k, v in metrics.items()}
        if agent.explore_metrics is not None:
            out.update(agent.explore_metrics(state.explore_state))
        key, k_eval = jax.random.split(state.key)
        log_point = state.log_point + 1
        if eval_env is not None:
            with jax.named_scope("evaluation"):
                out["eval_return"] = evaluate_policy(eval_env, policy(state), k_eval)["mean"]
        state, episodes = carry_episodes(state, tally, key=key, log_point=log_point)
        return state, {**out, **episodes, "env_steps": env_steps(state.iteration, cfg.num_envs),
                       "gradient_steps": log_point * cfg.iterations_per_log_point * cfg.gradient_steps}

    def policy(state: OffPolicyState, deterministic: bool = True):
        """The deterministic action, or with ``deterministic`` False the training-time exploration, of raw
        observations (normalised here with the state's statistics, when it has them)."""
        if deterministic:
            return lambda o, k: agent.act(state.agent, normalized(state.obs_rms, o))
        return lambda o, k: agent.explore(state.agent, normalized(state.obs_rms, o), k,
                                          state.explore_state if agent.explore_shared
                                          else agent.explore_init(o.shape[0]))[0]

    return build_trainer(config=cfg, env=env, num_log_points=cfg.num_log_points,
                         steps_per_log_point=cfg.steps_per_log_point,
                         init=init, update=update, policy=policy,
                         eval_env=lambda num: make_env(cfg, num),  # ``eval_env`` above is the in-run one
                         progress=progress, progress_metrics=progress_metrics,
                         env_steps_before=cfg.warmup_iterations * cfg.num_envs)


def build(config: OffPolicyConfig, make_agent: Callable[[Any, envs.VecEnv], Agent], progress: ProgressFn | None = None,
          progress_metrics: tuple[str, ...] = (), mesh: Mesh | None = None, *,
          config_cls: type = OffPolicyConfig) -> Trainer:
    """What every off-policy ``make`` is: validate ``config`` (an instance of the algorithm's ``config_cls``),
    build the algorithm's agent for the env (``make_agent(cfg, env)``: its action size or count and observation
    shape), check that the agent accepts the env's action space and wrap it in the shared loop, the env batch
    split over ``mesh`` (:mod:`purerl.core.sharding`; ``num_envs`` a multiple of the device count)."""
    check_config(config, config_cls)
    cfg = config.validate()
    env = make_env(cfg, 1)
    check_env_fields(cfg, env, envs.suite_of(env.env_id))
    agent = make_agent(cfg, env)
    if env.is_discrete != agent.discrete:
        kind, other = ("discrete", "continuous (Box)") if env.is_discrete else ("continuous", "discrete")
        fix = ("a continuous env such as 'Pendulum-v1' or 'brax/hopper', or dqn, sac_discrete or PPO for discrete "
               "actions" if env.is_discrete else "a discrete env such as 'CartPole-v1', or sac, td3 or ddpg for "
               "continuous actions")
        raise ValueError(f"config field `env` = {cfg.env!r} has {kind} actions; {type(cfg).__module__} needs "
                         f"{other} actions. Use {fix}.")
    return make_trainer(cfg, agent, progress, progress_metrics, mesh)
