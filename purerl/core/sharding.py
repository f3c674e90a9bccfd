"""Splitting one agent's env batch over devices (data parallelism by sharding annotations).

An on-policy update is a function of the whole env batch: rollouts are independent per env, and the loss
is a mean over samples. Annotating every array whose leading axis is the env axis as split over a 1-D
device mesh lets XLA (GSPMD) partition the same program: each device steps its share of the envs, and the
gradient of the mean loss becomes per-device partial gradients summed across devices (an all-reduce),
so parameters stay identical everywhere. The program's meaning does not change, only where its pieces
run, so the result equals the single-device run up to float summation order.

    mesh = purerl.core.sharding.env_mesh()             # all local devices
    trainer = ppo.make(cfg, mesh=mesh)                 # num_envs must be a multiple of the device count
    result = jax.jit(trainer.train)(key)

Several processes (hosts): call ``jax.distributed.initialize`` on every process first (see the README);
``env_mesh()`` then spans the devices of all processes, every process runs the same program, each steps the
envs of its own devices, and the gradients are summed across processes by XLA's collectives. The key given
to ``train`` must be the same on every process; read the results with
``jax.experimental.multihost_utils.process_allgather``.

Runs that are independent of each other (the seeds of ``purerl train --seeds K``, the configs x seeds of a
sweep) are split over devices the other way: a 1-D mesh over their leading (vmapped) axis, each process
placing only the rows of its own devices (:func:`split_rows`, :func:`split_key_rows`).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["constrain_envs", "env_mesh", "gather", "split_key_rows", "split_rows"]

AXIS = "envs"


def env_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh named ``"envs"`` over ``devices`` (default: ``jax.devices()``, all devices, those of every
    process after ``jax.distributed.initialize``)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (AXIS,))


def constrain_envs(tree: Any, mesh: Mesh | None, num_envs: int, axis: int = 0) -> Any:
    """Mark every leaf whose dimension ``axis`` has size ``num_envs`` as split over the mesh along it; other
    leaves (statistics, parameters) replicated. A no-op without a mesh. A leaf that merely happens to have
    that size is split too, which costs communication but never changes a result."""
    if mesh is None:
        return tree
    n_dev = mesh.devices.size

    def one(x):
        if not hasattr(x, "ndim"):
            return x
        if x.ndim > axis and x.shape[axis] == num_envs and num_envs % n_dev == 0:
            spec = PartitionSpec(*([None] * axis + [AXIS]))
        else:
            spec = PartitionSpec()
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))

    return jax.tree.map(one, tree)


def split_rows(x: Any, mesh: Mesh) -> jax.Array:
    """Host data, the same on every process, as an array split along its first axis over ``mesh`` (1-D): each
    process puts only the rows of its own devices there (``jax.make_array_from_callback``), so this works for a
    mesh over the devices of several processes. The first axis must be a multiple of the mesh size."""
    x = np.asarray(x)
    sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def gather(tree: Any) -> Any:
    """Every leaf whole on this process, as host arrays: ``jax.device_get`` when the leaves lie on this process's
    devices; otherwise (split over the devices of several processes) ``process_allgather``, a collective that
    every process calls at the same point. Typed PRNG keys come back as their raw key data."""
    from purerl.keys import is_typed_key

    tree = jax.tree.map(lambda x: jax.random.key_data(x) if is_typed_key(x) else x, tree)
    if all(getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(tree)):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def split_key_rows(keys: Any, mesh: Mesh) -> jax.Array:
    """:func:`split_rows` for an array of typed PRNG keys (their raw data is split, then wrapped again)."""
    impl = jax.random.key_impl(keys)
    return jax.random.wrap_key_data(split_rows(jax.random.key_data(keys), mesh), impl=impl)
