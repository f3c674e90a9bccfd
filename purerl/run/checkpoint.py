"""Checkpoints of a whole train state with orbax, for bit-identical resumption.

A train state (parameters, optimiser states, normaliser statistics, replay buffer, env states, PRNG key,
counters: everything ``update`` reads) is a pytree of arrays; a run that saves it after ``k`` updates and
later restores it and runs the remaining updates ends exactly where the uninterrupted run ends, because
``train`` is ``init`` followed by a scan of ``update`` (:mod:`purerl.core.loop`).

    ckpt.save(run_dir / "checkpoints", state, step=k, meta={"algo": "ppo", "config": {...}})
    template = jax.eval_shape(trainer.init, key)          # shapes and dtypes only, nothing computed
    state, meta = ckpt.restore(run_dir / "checkpoints", template)

``save`` keeps the two newest steps. Saving a step that already exists replaces it: the new checkpoint is
written in full beside the old one (``DIR/.replace-STEP/``) and then swapped in, so a failed write leaves the
old checkpoint as it was.

Typed PRNG keys are stored as their raw key data and re-wrapped on restore; arrays with no elements (MJX's
``Data`` has some, e.g. ``act`` of a model without actuator activations), which orbax refuses to write, are
stored as one-element stand-ins and restored as the template's empty arrays. A checkpoint that does not
match the template (another config, algorithm or seed count) or that is unreadable raises a ``ValueError``
that says which; one whose files are damaged (bytes overwritten, a truncated copy) is a
:class:`CheckpointUnreadable` (a ``ValueError`` too) naming the newest other step that still restores, if any.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

from purerl.keys import is_typed_key

__all__ = ["CheckpointUnreadable", "latest_step", "restore", "save"]


def _storable(x: Any) -> Any:
    if is_typed_key(x):
        return jax.random.key_data(x)
    if hasattr(x, "shape") and 0 in tuple(x.shape):
        return np.zeros((1,), x.dtype)  # numpy: an eager jnp.zeros would compile a program per dtype
    return x


def _to_storable(state: Any) -> Any:
    return jax.tree.map(_storable, state)


def _manager(directory: Path, create: bool):
    import orbax.checkpoint as ocp

    # In a run of several processes (jax.distributed) process 0 alone writes and reads the run's checkpoints,
    # holding every seed's state as host arrays: orbax must not wait for the other processes.
    alone = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(),
                                               active_processes={jax.process_index()})
    several = jax.process_count() > 1
    if several and create:   # orbax creates the directory only with every process taking part
        directory.mkdir(parents=True, exist_ok=True)
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=create and not several,
                                           **({"multiprocessing_options": alone} if several else {}))
    return ocp.CheckpointManager(directory.resolve(), options=options,
                                 item_names=("state", "meta"))


def _write(directory: Path, state: Any, step: int, meta: dict | None) -> None:
    import orbax.checkpoint as ocp

    with _manager(directory, create=True) as mngr:
        mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(_to_storable(state)),
                                                meta=ocp.args.JsonSave(meta or {})), force=True)
        mngr.wait_until_finished()


def save(directory: str | Path, state: Any, step: int, meta: dict | None = None) -> Path:
    """Write ``state`` (and JSON ``meta``) as checkpoint ``step`` under ``directory``; the two newest are kept.
    The write is finished (and atomic: a partial write never looks like a checkpoint) when this returns.

    A checkpoint ``step`` that already exists is replaced: the new one is written in full in
    ``directory/.replace-STEP/`` first, then the old one is moved out and the new one in, and the old one is
    deleted. If the write fails, the old checkpoint stays as it was."""
    directory, step = Path(directory), int(step)
    target = directory / str(step)
    if not target.exists():
        _write(directory, state, step, meta)
        return target
    staging = directory / f".replace-{step}"
    shutil.rmtree(staging, ignore_errors=True)   # left by a replace that was interrupted
    try:
        _write(staging, state, step, meta)
        target.rename(staging / "old")
        (staging / str(step)).rename(target)
    except BaseException:
        if not target.exists() and (staging / "old").is_dir():
            (staging / "old").rename(target)
        raise
    finally:
        if target.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def latest_step(directory: str | Path) -> int | None:
    directory = Path(directory)
    if not directory.is_dir():
        return None
    with _manager(directory, create=False) as mngr:
        return mngr.latest_step()


class CheckpointUnreadable(ValueError):
    """Checkpoint :attr:`step` in :attr:`directory` could not be restored (:attr:`reason`, one line): its files
    are damaged, or it holds another state than the template's. :attr:`loads` is the newest other step of the
    directory that restores into the same template (then the failing one is damaged), or ``None`` if none
    does. The one-line message says both, and ``how`` to use the step that loads (by default: delete the
    damaged one, which makes an older step the newest)."""

    def __init__(self, directory: str | Path, step: int, reason: str, loads: int | None, how: str | None = None):
        self.directory, self.step, self.reason, self.loads = Path(directory), int(step), reason, loads
        path = self.directory / str(self.step)
        if loads is None:
            text = (f"checkpoint {path} cannot be restored into this run's state ({reason}): it is damaged, or it "
                    f"belongs to another algorithm, config or seed count; no checkpoint in {self.directory} loads")
        else:
            text = (f"checkpoint {path} is damaged and cannot be read ({reason}); checkpoint {loads} still loads: "
                    f"{how or f'delete {path} to make it the newest'}")
        super().__init__(text)


def _reason(e: BaseException) -> str:
    """One short line for a failed restore: the innermost cause's first line (orbax wraps TensorStore's error,
    whose text carries the whole store spec), its middle elided past 200 characters."""
    seen = {id(e)}
    while (e.__cause__ or e.__context__) is not None and id(e.__cause__ or e.__context__) not in seen:
        e = e.__cause__ or e.__context__
        seen.add(id(e))
    text = " ".join(str(e).split("[tensorstore_spec")[0].split()) or type(e).__name__
    return text if len(text) <= 200 else f"{text[:90]} ... {text[-100:]}"


def _restore_step(mngr: Any, step: int, storable: Any) -> tuple[Any, dict]:
    import orbax.checkpoint as ocp

    meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    got = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(storable)))["state"]
    return got, meta


def restore(directory: str | Path, template: Any, step: int | None = None) -> tuple[Any, dict]:
    """``(state, meta)`` from checkpoint ``step`` (default: the newest) with the structure, shapes and dtypes
    of ``template`` (e.g. ``jax.eval_shape(trainer.init, key)``). A checkpoint that cannot be read into the
    template is a :class:`CheckpointUnreadable` naming the newest other step that can."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"no checkpoint directory at {directory}")
    # onto this process's default device, whatever devices the saving run split its state over (a run over
    # the cores of a CPU is read by `purerl eval` on one device)
    here = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    storable = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=here),
                            jax.eval_shape(_to_storable, template))
    with _manager(directory, create=False) as mngr:
        step = mngr.latest_step() if step is None else int(step)
        if step is None:
            raise ValueError(f"no checkpoint in {directory}")
        if step not in mngr.all_steps():
            raise ValueError(f"no checkpoint {step} in {directory}; it holds {sorted(mngr.all_steps())} (the two "
                             f"newest of the run are kept)")
        try:
            got, meta = _restore_step(mngr, step, storable)
        except Exception as e:  # noqa: BLE001 - orbax and TensorStore raise bare Exceptions for damaged data
            raise CheckpointUnreadable(directory, step, _reason(e), _newest_loading(mngr, step, storable)) from None
    leaves_t, treedef = jax.tree.flatten(template)
    leaves_t, treedef = jax.tree.flatten(template)
    leaves_g = jax.tree.leaves(got)
    if len(leaves_g) != len(leaves_t):
        raise ValueError(f"checkpoint {directory}/{step} holds {len(leaves_g)} arrays, this run's state "
                         f"{len(leaves_t)}: it belongs to another algorithm or config")
    out = []
    for t, g in zip(leaves_t, leaves_g, strict=True):
        g = np.asarray(g)
        if is_typed_key(t):
            out.append(jax.random.wrap_key_data(g, impl=getattr(t.dtype, "_impl", None)))
            continue
        if 0 in tuple(t.shape):
            out.append(jax.numpy.zeros(t.shape, t.dtype))
            continue
        if g.shape != tuple(t.shape) or g.dtype != t.dtype:
            raise ValueError(f"checkpoint {directory}/{step} has an array of shape {g.shape} {g.dtype} where this "
                             f"run's state has {tuple(t.shape)} {t.dtype}: another config or seed count")
        out.append(jax.numpy.asarray(g))
    return jax.tree.unflatten(treedef, out), meta


def _newest_loading(mngr: Any, failed: int, storable: Any) -> int | None:
    """The newest step other than ``failed`` that restores into ``storable``, or ``None``."""
    for other in sorted((s for s in mngr.all_steps() if s != failed), reverse=True):
        try:
            _restore_step(mngr, other, storable)
        except Exception:  # noqa: BLE001 - this one does not load either
            continue
        return int(other)
    return None
