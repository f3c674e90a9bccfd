"""Compiling purerl's programs: ``purerl.jit`` and the XLA options the command line uses.

On a CPU, XLA spends most of a training program's compile time in LLVM's optimisation of its kernels. For
these programs (many small kernels inside loops; the matrix products are library calls either way), LLVM's
``-O1`` compiles faster than the default ``-O3`` with the same run time. Programs that run once (the initial
state, a final evaluation, a finiteness check) compile at ``-O0``, faster still, and their run time is
milliseconds either way. Each row of the speed table in docs/benchmarks.md (docs/results/peers-cpu.json) compiles
purerl's program both ways, with ``purerl.jit`` and with plain ``jax.jit``.

    train = jax.jit(ppo.make_train(cfg))          # works as always
    train = purerl.jit(ppo.make_train(cfg))       # the same program, compiled with purerl's options

On other backends these options are left at XLA's defaults.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

__all__ = ["compile_options", "jit", "compile", "backend_default", "PER_BACKEND"]

# Loop sizes whose fastest value differs by backend, resolved when a program is built (``jax.default_backend()``)
# wherever a Config leaves them at None. A GPU launches one kernel sequence per loop iteration, and unrolling the
# rollout cuts the iterations: PPO ran faster with 8 there; on a CPU the same unroll ran slower (a larger loop
# body, no launch cost to save). The
# off-policy loop's body holds every gradient step of an iteration, so unrolling it multiplies the program; it is
# unmeasured on accelerators and stays at 1.
PER_BACKEND = {
    "onpolicy_unroll": {"gpu": 8, "default": 1},
    "offpolicy_unroll": {"default": 1},
    # How the CNN torso computes a convolution (purerl.networks.ConvSpec): a training step of a MinAtar-sized Q
    # network (16 3x3 convolutions on 10x10x4, Dense 128, Adam) took 1.3 ms as one matrix product over gathered
    # patches against 13 ms with XLA's convolution on a 2-core CPU at batch 128 (0.5 against 2.0 ms at 32, 11
    # against 113 ms at 1024); accelerators keep XLA's (cuDNN on a GPU), unmeasured against patches there.
    "conv": {"cpu": "patches", "default": "xla"},
}

_CPU = {
    "train": {"xla_backend_optimization_level": 1},
    "once": {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True},
}


def backend_default(name: str, backend: str | None = None) -> int | str:
    """The value of ``PER_BACKEND[name]`` for ``backend`` (default: ``jax.default_backend()``: "cpu", "gpu",
    "tpu")."""
    table = PER_BACKEND[name]
    return table.get(backend or jax.default_backend(), table["default"])


def compile_options(kind: str = "train") -> dict:
    """XLA compile options for a program that trains (``"train"``) or runs once (``"once"``), for the
    default backend (empty where XLA's defaults are kept)."""
    if kind not in _CPU:
        raise ValueError(f"kind must be 'train' or 'once', got {kind!r}")
    return dict(_CPU[kind]) if jax.default_backend() == "cpu" else {}


def jit(fn: Callable, kind: str = "train", **jit_kwargs: Any) -> Callable:
    """``jax.jit(fn)`` with :func:`compile_options` (``kind``) for the default backend."""
    return jax.jit(fn, compiler_options=compile_options(kind), **jit_kwargs)


def compile(fn: Callable, *args: Any, kind: str = "train", **jit_kwargs: Any) -> Any:  # noqa: A001 - jax's stage name
    """``jax.jit(fn, **jit_kwargs).lower(*args).compile(...)`` with :func:`compile_options` (``kind``); ``args``
    may be ``jax.ShapeDtypeStruct`` trees (with a ``sharding`` where the program's inputs are split)."""
    return jax.jit(fn, **jit_kwargs).lower(*args).compile(compiler_options=compile_options(kind))
