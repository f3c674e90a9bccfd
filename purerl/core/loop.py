"""The chunked training loop every algorithm shares: ``train(key) = scan(update, init(key))``.

Algorithms provide ``init(key) -> state`` and ``update(state) -> (state, metrics)`` and get a
:class:`Trainer` from :func:`build_trainer`. The runner (:mod:`purerl.run.runner`) runs a run's updates in
chunks with :func:`scan_updates` (one compiled chunk for every chunk, live progress), checkpoints the state
between chunks and resumes bit-identically; :func:`run_chunk` is the same loop without progress.
:func:`carry_episodes` and :func:`env_steps` are how every algorithm's update ends.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purerl.config import check_count, check_flag
from purerl.core.evaluation import RecurrentAct, make_evaluate
from purerl.keys import as_key
from purerl.core.progress import ProgressFn, report, report_every


@struct.dataclass
class Result:
    """What ``train(key)`` returns: the final train state and metrics with a leading log-point axis."""

    state: Any
    metrics: dict

    @property
    def params(self) -> Any:
        return self.state.params


def env_steps(count: jax.Array, steps_each: int) -> jax.Array:
    """Env steps after ``count`` updates (or iterations) of ``steps_each`` steps, as float32: exact up to 2^24
    (16.7M), then to float32's 7 significant digits. An int32 count (jax's default integer) would wrap
    negative after 2^31 steps, which long Brax runs reach; the runner writes exact counts to its files."""
    return jnp.asarray(count).astype(jnp.float32) * steps_each


def carry_episodes(state: Any, tally: Any, **fields) -> tuple[Any, dict]:
    """``(state, episode_metrics)`` at the end of an update, on- and off-policy: the metrics of the episodes that
    ended (``tally.summary``, :class:`~purerl.core.trajectory.EpisodeTally`), and ``state`` with their mean
    return and length as its ``last_return``/``last_length`` (kept from before when none ended) and ``fields``
    replaced."""
    episodes = tally.summary(state.last_return, state.last_length)
    return state.replace(last_return=episodes["episode_return"], last_length=episodes["episode_length"],
                         **fields), episodes


def run_chunk(update: Callable[[Any], tuple[Any, dict]], state: Any, length: int) -> tuple[Any, dict]:
    """Apply ``update`` ``length`` times (``length`` log points); metrics are stacked along a leading axis."""
    return jax.lax.scan(lambda s, _: update(s), state, None, length=length)


def scan_updates(update: Callable[[Any], tuple[Any, dict]], state: Any, start: jax.Array, length: int,
                 num_log_points: int, progress: ProgressFn | None = None,
                 progress_metrics: tuple[str, ...] = ()) -> tuple[Any, dict]:
    """Log points ``start .. start + length - 1`` (calls of ``update``) of a run of ``num_log_points``, reporting
    progress.

    ``progress`` (a host function) receives ``{"update": i, **{name: metrics[name]}}`` after every
    ``report_every(num_log_points)``-th update and after the last one (see :mod:`purerl.core.progress`), ``i``
    counting updates from 1. ``start`` may be traced, so one compiled chunk serves every chunk of a run. The
    report sits in a ``lax.cond`` on the update index, which comes from the scan's xs and never from the state:
    it is not batched by ``jax.vmap``, so the branch stays a branch (not a select), the loop holds one copy of
    the update whatever ``length`` is, and with no ``progress_metrics`` a vmapped run makes one call per report,
    not one per seed. Ask for metrics (e.g. ``("episode_return",)``) only for unvmapped runs.
    """
    if progress is None:
        return jax.lax.scan(lambda s, _: update(s), state, None, length=length)
    every = report_every(num_log_points)
    last = start + length - 1

    def step(s, i):
        s, metrics = update(s)
        payload = {"update": i + 1, **{name: metrics[name] for name in progress_metrics}}
        jax.lax.cond(((i + 1) % every == 0) | (i == last), lambda p: report(progress, p), lambda p: None, payload)
        return s, metrics

    return jax.lax.scan(step, state, start + jnp.arange(length))


def make_train_fn(init: Callable[[jax.Array], Any], update: Callable[[Any], tuple[Any, dict]],
                  num_log_points: int, progress: ProgressFn | None = None,
                  progress_metrics: tuple[str, ...] = ()) -> Callable[[jax.Array], Result]:
    """``train(key)``: ``init`` then ``num_log_points`` updates (progress as in :func:`scan_updates`)."""

    def train(key: jax.Array) -> Result:
        state, metrics = scan_updates(update, init(key), jnp.asarray(0), num_log_points, num_log_points, progress,
                                      progress_metrics)
        return Result(state, metrics)

    return train


@struct.dataclass
class Trainer:
    """An algorithm instantiated for one config (built by :func:`build_trainer`). Not a pytree of arrays: every
    field is a Python object (marked static), so a Trainer can be closed over freely.

    * ``init(key) -> state`` and ``update(state) -> (state, metrics)``: the chunked loop; one ``update`` is one
      *log point* (one row of metrics): one update for the on-policy algorithms (one round of all workers for
      A3C), ``iterations_per_log_point`` env-step/gradient iterations and an evaluation for the off-policy ones;
    * ``num_log_points`` updates make the run, each collecting ``steps_per_log_point`` env steps per seed
      (after ``env_steps_before`` warm-up steps, off-policy);
    * ``train(key) -> Result``: the whole run fused;
    * ``evaluate(state, key, num_episodes=10, deterministic=True)``: the trained policy's episodes;
    * ``policy(state, deterministic=True) -> act(obs, key=None)``: the trained policy as a function of *raw*
      (batched) observations, with the run's saved normaliser statistics applied, returning the actions the
      env itself takes (within its bounds: an off-policy agent's ``[-1, 1]`` actions rescaled, an on-policy
      Gaussian's clipped), so that stepping ``purerl.envs.make_base(env_id, n)`` (or the suite's own env) with
      them reproduces ``evaluate``; ``key`` is only needed when ``deterministic`` is False;
    * ``agent_policy(state, deterministic=True)``: the same policy's actions as the agent emits them, before
      the env's action transform: what ``eval_env`` and ``env`` take (evaluation and rendering use it);
    * ``eval_env(num_envs)``: the env that evaluation runs it in (raw rewards, the training action transform).

    Keys may be typed (``jax.random.key``) or legacy uint32 (``jax.random.PRNGKey``), alone or under
    ``jax.vmap``; a state must come from this trainer's config (same structure and shapes).
    """

    config: Any = struct.field(pytree_node=False)
    env: Any = struct.field(pytree_node=False)
    num_log_points: int = struct.field(pytree_node=False)
    steps_per_log_point: int = struct.field(pytree_node=False)
    init: Callable = struct.field(pytree_node=False)
    update: Callable = struct.field(pytree_node=False)
    train: Callable = struct.field(pytree_node=False)
    evaluate: Callable = struct.field(pytree_node=False)
    policy: Callable = struct.field(pytree_node=False)
    agent_policy: Callable = struct.field(pytree_node=False)
    eval_env: Callable = struct.field(pytree_node=False)
    env_steps_before: int = struct.field(pytree_node=False, default=0)  # per seed, before update 1 (warm-up)


class StateCheck:
    """Checks that a train state comes from one trainer's config: the structure and leaf shapes of
    ``init``'s output (computed once, by ``jax.eval_shape``, without running anything). A state with one extra
    leading axis everywhere is a batch of states (a vmapped run's), which is named as such."""

    def __init__(self, init: Callable[[jax.Array], Any]):
        self._init = init
        self._spec = None

    def spec(self) -> Any:
        if self._spec is None:
            self._spec = jax.eval_shape(lambda: self._init(jax.random.key(0)))  # traced only, the key too
        return self._spec

    def __call__(self, state: Any, where: str, name: str = "state") -> None:
        spec = self.spec()
        leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
        spec_leaves, spec_def = jax.tree_util.tree_flatten_with_path(spec)
        if treedef != spec_def:
            raise ValueError(f"`{name}` passed to {where} does not come from this trainer: its structure is not the "
                             f"train state of this algorithm and config ({type(state).__name__} with "
                             f"{len(leaves)} arrays, expected {type(spec).__name__} with {len(spec_leaves)}). "
                             "Use a state from this trainer's init/train (or a checkpoint of the same config).")
        shapes = [tuple(np.shape(x)) for _, x in leaves]
        want = [tuple(x.shape) for _, x in spec_leaves]
        if shapes == want:
            return
        if all(len(s) == len(w) + 1 and s[1:] == w for s, w in zip(shapes, want, strict=True)):
            raise ValueError(f"`{name}` passed to {where} is a batch of {shapes[0][0]} train states (a vmapped "
                             f"run's); call it under jax.vmap, e.g. jax.vmap({where.split('.')[-1]}, ...)(states, "
                             "...), or take one seed's state with jax.tree.map(lambda x: x[i], states)")
        path, s, w = next((p, s, w) for (p, _), s, w in zip(leaves, shapes, want, strict=True) if s != w)
        raise ValueError(f"`{name}` passed to {where} does not come from this trainer's config: "
                         f"{name}{jax.tree_util.keystr(path)} has shape {s}, this config's has {w} (another env, "
                         "num_envs, network or buffer size)")


def _checked_act(act: Any, obs_dim: int, deterministic: bool, to_env: Callable[[jax.Array], jax.Array]) -> Any:
    """``act(obs, key=None)`` (or a :class:`RecurrentAct`) checking its arguments and mapping its actions
    through ``to_env``."""

    def obs_key(obs, key):
        if np.ndim(obs) < 1 or np.shape(obs)[-1] != obs_dim:
            raise ValueError(f"`obs` must be observations of this env, shape [..., {obs_dim}], got shape "
                             f"{tuple(np.shape(obs))}")
        if key is None:
            if not deterministic:
                raise TypeError("`key` is needed by a stochastic policy (deterministic=False): pass a typed key "
                                "(jax.random.key(seed)) or a legacy uint32 key (jax.random.PRNGKey(seed))")
            key = jax.random.key(0)  # unused by the mode
        return obs, as_key(key, "key")

    if isinstance(act, RecurrentAct):
        def step(memory, obs, key=None):
            action, memory = act.step(memory, *obs_key(obs, key))
            return to_env(action), memory

        return RecurrentAct(act.initial, step)

    def checked(obs, key=None):
        return to_env(act(*obs_key(obs, key)))

    return checked


def build_trainer(*, config: Any, env: Any, num_log_points: int, steps_per_log_point: int,
                  init: Callable[[jax.Array], Any], update: Callable[[Any], tuple[Any, dict]],
                  policy: Callable[[Any, bool], Any], eval_env: Callable[[int], Any],
                  progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
                  env_steps_before: int = 0) -> Trainer:
    """The :class:`Trainer` of an algorithm's ``init``, ``update`` and ``policy(state, deterministic)`` (the
    agent's actions, as ``eval_env`` takes them), with the checks every public entry point makes: keys of
    either kind (:func:`purerl.keys.as_key`), states of this config (:class:`StateCheck`), counts and
    switches; all raised while tracing, before anything is compiled."""
    state_check = StateCheck(init)

    def init_(key: jax.Array) -> Any:
        return init(as_key(key, "key"))

    def update_(state: Any) -> tuple[Any, dict]:
        state_check(state, "update")
        return update(state)

    train = make_train_fn(init_, update, num_log_points, progress, progress_metrics)

    def eval_env_(num_envs: int = 1) -> Any:
        return eval_env(check_count(num_envs, "num_envs"))

    evaluate = make_evaluate(policy, eval_env)

    def evaluate_(state: Any, key: jax.Array, num_episodes: int = 10, deterministic: bool = True) -> dict:
        num_episodes = check_count(num_episodes, "num_episodes")
        deterministic = check_flag(deterministic, "deterministic")
        state_check(state, "evaluate")
        return evaluate(state, as_key(key, "key"), num_episodes, deterministic)

    def agent_policy_(state: Any, deterministic: bool = True) -> Any:
        deterministic = check_flag(deterministic, "deterministic")
        state_check(state, "policy")
        return _checked_act(policy(state, deterministic), env.obs_dim, deterministic, lambda a: a)

    def policy_(state: Any, deterministic: bool = True) -> Any:
        deterministic = check_flag(deterministic, "deterministic")
        state_check(state, "policy")
        return _checked_act(policy(state, deterministic), env.obs_dim, deterministic, env.to_env_action)

    return Trainer(config=config, env=env, num_log_points=num_log_points, steps_per_log_point=steps_per_log_point,
                   init=init_, update=update_, train=train, evaluate=evaluate_, policy=policy_,
                   agent_policy=agent_policy_, eval_env=eval_env_, env_steps_before=env_steps_before)
