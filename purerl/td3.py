"""Twin Delayed DDPG (Fujimoto et al., 2018), as one fused program.

    cfg = td3.Config(env="Pendulum-v1", total_timesteps=30_000)
    result = jax.jit(td3.make_train(cfg))(jax.random.key(0))

TD3 is DDPG (:mod:`purerl.ddpg`, which holds the learning rule) with three changes, on by default here:

* clipped double Q-learning: two critics, the target takes their minimum
  ``r + gamma (1 - terminated) min_j Q'_j(s', a')``; the actor follows the first critic;
* delayed policy updates: the actor and all target networks move once per ``policy_delay`` (2) critic steps;
* target policy smoothing: ``a' = clip(mu'(s') + clip(N(0, target_noise^2), -c, c), -1, 1)`` with
  ``target_noise`` 0.2 and ``c = target_noise_clip`` 0.5 (in ``[-1, 1]`` action units).

Exploration is Gaussian with std ``exploration_std`` (0.1).
"""

from __future__ import annotations

from flax import struct
from jax.sharding import Mesh

from purerl import ddpg
from purerl.config import leaf_field, static_field
from purerl.core import offpolicy
from purerl.core.loop import Result, Trainer
from purerl.core.progress import ProgressFn

__all__ = ["Config", "make", "make_train", "Result"]


@struct.dataclass
class Config(ddpg.Config):
    num_critics: int = static_field(2, "critics; the target takes their minimum")
    policy_delay: int = static_field(2, "critic steps per actor and target step")
    target_noise: float = leaf_field(0.2, "std of target policy smoothing noise (0 = off)")


def make(config: Config, progress: ProgressFn | None = None, progress_metrics: tuple[str, ...] = (),
         mesh: Mesh | None = None) -> Trainer:
    """Build TD3 for ``config``: validated here, in Python, before anything is traced.

    ``mesh``: split the env batch over these devices (:mod:`purerl.core.sharding`); same result up to
    float error, ``num_envs`` a multiple of the device count."""
    return offpolicy.build(config, ddpg.make_agent, progress, progress_metrics, mesh, config_cls=Config)


def make_train(config: Config, progress: ProgressFn | None = None):
    """``train(key) -> Result``: the whole TD3 run, pure and jittable (vmap it over keys or leaves)."""
    return make(config, progress).train
