"""The algorithm registry: every algorithm purerl ships, one row each. The command line, the run directory, the
package's lazy imports and the benchmark scripts read it; adding an algorithm is a module with ``Config``,
``make`` and ``make_train``, and a row here.

This module imports nothing heavy (no jax): ``purerl`` and the command line read it before any algorithm loads.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

__all__ = ["Algorithm", "ALGORITHMS", "NAMES", "OFF_POLICY", "ON_POLICY", "get", "module"]


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its name (the module ``purerl.<name>`` and the command line's ``ALGO``), its family
    (``"on-policy"`` or ``"off-policy"``), the action spaces it takes and what it is, in short."""

    name: str
    family: str
    actions: tuple[str, ...]
    summary: str

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"purerl.{self.name}")


ALGORITHMS = (
    Algorithm("ppo", "on-policy", ("discrete", "continuous"), "clipped surrogate, epochs of minibatches"),
    Algorithm("reinforce", "on-policy", ("discrete", "continuous"),
              "Monte-Carlo returns; no, moving-average or learned baseline"),
    Algorithm("a2c", "on-policy", ("discrete", "continuous"), "n-step or GAE advantages, synchronous envs"),
    Algorithm("a3c", "on-policy", ("discrete", "continuous"),
              "asynchronous workers' stale gradients, emulated in one program"),
    Algorithm("trpo", "on-policy", ("discrete", "continuous"), "natural gradient by conjugate gradient, KL line search"),
    Algorithm("pqn", "on-policy", ("discrete",),
              "Q(lambda) over parallel envs, LayerNorm, no replay or target network, epsilon-greedy"),
    Algorithm("ddpg", "off-policy", ("continuous",), "deterministic actor, replay buffer, Gaussian or OU noise"),
    Algorithm("td3", "off-policy", ("continuous",), "twin critics, delayed policy, target smoothing"),
    Algorithm("sac", "off-policy", ("continuous",), "tanh-Gaussian actor, twin critics, automatic temperature"),
    Algorithm("sac_discrete", "off-policy", ("discrete",),
              "categorical actor, exact sums over actions, twin critics, fixed or tuned temperature"),
    Algorithm("dqn", "off-policy", ("discrete",),
              "Q-network, replay, target network, epsilon-greedy; Double DQN, dueling head, n-step returns"),
)

NAMES = tuple(sorted(a.name for a in ALGORITHMS))
ON_POLICY = tuple(a.name for a in ALGORITHMS if a.family == "on-policy")
OFF_POLICY = tuple(a.name for a in ALGORITHMS if a.family == "off-policy")


def get(name: str) -> Algorithm:
    """The registry row of ``name`` (``ValueError`` naming the choices otherwise)."""
    for a in ALGORITHMS:
        if a.name == name:
            return a
    raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(NAMES)}")


def module(name: str) -> ModuleType:
    """The module ``purerl.<name>`` of an algorithm (``ValueError`` naming the choices otherwise)."""
    return get(name).module
