"""purerl: reinforcement learning as pure, fused JAX programs.

    from purerl import ppo
    result = jax.jit(ppo.make_train(ppo.Config(env="CartPole-v1")))(jax.random.key(0))

Algorithm modules are imported on first use (``purerl.ppo``), so ``import purerl`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from purerl.algorithms import ALGORITHMS as _ALGORITHMS  # the registry: no jax imported

_SUBMODULES = tuple(a.name for a in _ALGORITHMS) + ("algorithms", "sweep", "envs", "networks", "config", "core", "cli",
                                                    "compiling")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"purerl.{name}")
    if name == "jit":  # purerl.jit: jax.jit with purerl's compile options (see purerl.compiling)
        return importlib.import_module("purerl.compiling").jit
    raise AttributeError(f"module 'purerl' has no attribute {name!r}")


__all__ = list(_SUBMODULES) + ["jit"]
