"""Exporting a trained policy to a file that runs without purerl: JAX's serialised StableHLO or ONNX.

    from purerl.run.export import export_policy
    export_policy("runs/ppo-cartpole", format="jax")     # -> runs/ppo-cartpole/policy.jax
    export_policy("runs/ppo-cartpole", format="onnx")    # -> runs/ppo-cartpole/policy.onnx (purerl[onnx])

What is exported is the run's deterministic policy, exactly what ``trainer.policy(state)`` computes: raw
observations in (``float32 [batch, obs_dim]``), the run's saved observation-normaliser statistics folded
in as constants, the actions the env itself takes out (``int32 [batch]`` for a discrete env, the argmax of
the logits; ``float32 [batch, action_dim]`` within the env's bounds for a continuous one). The batch size is
symbolic: one file serves any batch. A recurrent policy takes and returns its memory:
``(memory [batch, H], obs) -> (action, memory)``, an episode starting from zeros ``[batch, H]``.

* ``jax``: :func:`jax.export.export` serialised (StableHLO with its calling convention), lowered for CPU and
  CUDA by default; a consumer needs jax (the same or a newer version than the exporter's) and flatbuffers,
  which jax's deserialiser imports but jax does not install (``pip install jax flatbuffers``; purerl requires
  it): ``jax.export.deserialize(data).call(obs)``.
* ``onnx``: converted by jax2onnx (the ``purerl[onnx]`` extra, with onnxruntime); inputs named ``obs``
  (and ``memory``), outputs ``action`` (and ``next_memory``); the model's metadata (:func:`onnx_metadata`)
  names the producer, the algorithm, env and checkpoint (``step``: the updates done), and the seed exported
  from a run directory (``seed_index``). A policy using an operation the converter lacks is a ``ValueError``
  naming it.

Each artefact is checked after it is written: loaded back (jax's deserializer, an onnxruntime session) and
its actions compared with ``trainer.policy(state)`` on a batch of observations.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["FORMATS", "ONNX_INSTALL", "ExportedPolicy", "PolicyFunction", "export_policy", "export_trainer_policy",
           "onnx_metadata", "policy_function", "to_jax", "to_onnx"]

FORMATS = ("jax", "onnx")
SUFFIX = {"jax": ".jax", "onnx": ".onnx"}
ONNX_INSTALL = 'pip install "purerl[onnx]"'
DEFAULT_PLATFORMS = ("cpu", "cuda")
DEFAULT_OPSET = 21       # onnxruntime 1.20 and newer run it (jax2onnx emits opset-18 forms of some ops)
CHECK_BATCH = 256        # observations the written artefact is checked on


@dataclasses.dataclass(frozen=True)
class ExportedPolicy:
    """What :func:`export_policy` wrote: the file (this object is path-like: ``open(exported, "rb")`` works),
    its format, and its inputs and outputs as ``"name dtype [dims]"`` lines."""

    path: Path
    format: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def signature(self) -> str:
        return f"({', '.join(self.inputs)}) -> ({', '.join(self.outputs)})"


@dataclasses.dataclass(frozen=True)
class PolicyFunction:
    """A policy as a pure function of arrays, with its inputs' shapes (a symbolic batch dimension) and names.
    ``fn(obs) -> action`` or, recurrent, ``fn(memory, obs) -> (action, memory)``."""

    fn: Callable[..., Any]
    inputs: tuple[Any, ...]          # jax.ShapeDtypeStruct each, leading dimension the symbol ``batch``
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    @property
    def recurrent(self) -> bool:
        return len(self.inputs) == 2

    def described(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The inputs and outputs as ``"name dtype [dims]"``."""
        import jax

        outs = jax.eval_shape(self.fn, *self.inputs)
        outs = outs if self.recurrent else (outs,)

        def text(name, s):
            return f"{name} {np.dtype(s.dtype).name} [{', '.join(str(d) for d in s.shape)}]"

        return (tuple(text(n, s) for n, s in zip(self.input_names, self.inputs, strict=True)),
                tuple(text(n, s) for n, s in zip(self.output_names, outs, strict=True)))


def policy_function(trainer: Any, state: Any) -> PolicyFunction:
    """The deterministic ``trainer.policy(state)`` of one (unbatched) train state as a :class:`PolicyFunction`;
    the state's arrays (parameters, normaliser statistics) become constants of the function."""
    import jax
    import jax.numpy as jnp

    from purerl.core.evaluation import RecurrentAct

    act = trainer.policy(state, deterministic=True)   # checks that the state is one of this trainer's
    (batch,) = jax.export.symbolic_shape("batch")
    obs = jax.ShapeDtypeStruct((batch, trainer.env.obs_dim), jnp.float32)
    if isinstance(act, RecurrentAct):
        memory = jax.eval_shape(lambda: act.initial((1,)))
        if not isinstance(memory, jax.ShapeDtypeStruct):
            raise ValueError(f"this recurrent policy's memory is a {type(memory).__name__} of arrays; only a "
                             f"single memory array [batch, H] can be exported")
        spec = jax.ShapeDtypeStruct((batch,) + tuple(memory.shape[1:]), memory.dtype)
        return PolicyFunction(lambda m, o: tuple(act.step(m, o)), (spec, obs), ("memory", "obs"),
                              ("action", "next_memory"))
    return PolicyFunction(lambda o: act(o), (obs,), ("obs",), ("action",))


def to_jax(policy: PolicyFunction, platforms: tuple[str, ...] = DEFAULT_PLATFORMS) -> bytes:
    """``policy`` serialised by :mod:`jax.export` (for ``platforms``), loadable with
    ``jax.export.deserialize``."""
    import jax

    platforms = _platforms(platforms)
    try:
        exported = jax.export.export(jax.jit(policy.fn), platforms=platforms)(*policy.inputs)
    except Exception as e:  # noqa: BLE001 - a lowering the platform lacks: say which, on one line
        raise ValueError(f"the policy cannot be exported for platforms {', '.join(platforms)}: "
                         f"{_one_line(e)[:300]}") from e
    return bytes(exported.serialize())


def to_onnx(policy: PolicyFunction, opset: int = DEFAULT_OPSET, metadata: dict[str, str] | None = None) -> bytes:
    """``policy`` converted to an ONNX model by jax2onnx (``purerl[onnx]``). An operation the converter has no
    rule for is a ``ValueError`` naming it (found before converting); ``ImportError`` without the extra."""
    import jax
    import jax.extend.core as jex

    j2o, _ = _onnx_modules()
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 18:
        raise ValueError(f"opset must be an ONNX opset version of at least 18, got {opset!r}")
    closed = _dead_code_removed(jax.make_jaxpr(policy.fn)(*policy.inputs))
    missing = _unconvertible(closed)
    if missing:
        raise ValueError(f"this policy cannot be exported to ONNX: jax2onnx {_version('jax2onnx')} has no "
                         f"conversion for the JAX operation{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(repr(p) for p in missing)}; export it with format 'jax' instead")
    quiet = logging.getLogger("onnx_ir")   # "value type ... not known" lines about shape constants
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        model = j2o.to_onnx(jex.jaxpr_as_fun(closed), list(policy.inputs), model_name="purerl_policy",
                            opset=opset, input_names=list(policy.input_names),
                            output_names=list(policy.output_names))
    except Exception as e:  # noqa: BLE001 - e.g. a rule that exists but not for these parameters: one line
        prim = re.search(r"primitive '([^']+)'", str(e))
        what = f"the JAX operation {prim.group(1)!r}" if prim else "this policy"
        raise ValueError(f"this policy cannot be exported to ONNX: jax2onnx {_version('jax2onnx')} cannot "
                         f"convert {what} ({type(e).__name__}: {_one_line(e)[:200]}); export it with format "
                         f"'jax' instead") from e
    finally:
        quiet.setLevel(level)
    _drop_unused_initializers(model.graph)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    return model.SerializeToString()


def onnx_metadata(trainer: Any, state: Any) -> dict[str, str]:
    """What an ONNX file exported from ``trainer`` and one train ``state`` says about itself: ``producer``
    (``purerl``), ``algo`` (the algorithm of the trainer's config), ``env`` and ``step`` (the updates the state
    has done: the checkpoint of a run directory). :func:`export_policy` adds ``seed_index``."""
    from purerl import algorithms

    meta = {"producer": "purerl"}
    algo = type(trainer.config).__module__.rpartition(".")[2]
    if algo in algorithms.NAMES:
        meta["algo"] = algo
    env = getattr(trainer.config, "env", None)
    if isinstance(env, str):
        meta["env"] = env
    for counter in ("update_step", "log_point"):   # on-policy and off-policy states: updates (log points) done
        value = getattr(state, counter, None)
        if value is not None and np.ndim(value) == 0:
            meta["step"] = str(int(value))
            break
    return meta


def export_trainer_policy(trainer: Any, state: Any, out: str | Path, format: str = "jax", *,  # noqa: A002
                          platforms: tuple[str, ...] = DEFAULT_PLATFORMS, opset: int = DEFAULT_OPSET,
                          metadata: dict[str, str] | None = None, check: bool = True) -> ExportedPolicy:
    """Write ``trainer.policy(state)`` (one train state, not a batch of seeds) to ``out`` in ``format``
    (``"jax"`` or ``"onnx"``) and, with ``check``, compare the written file's actions with the policy's. An ONNX
    file's metadata is :func:`onnx_metadata` with ``metadata``'s entries added (or replacing them)."""
    format = _format(format)
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file path (e.g. {out / ('policy' + SUFFIX[format])})")
    policy = policy_function(trainer, state)
    if format == "onnx":
        metadata = {**onnx_metadata(trainer, state), **(metadata or {})}
    data = to_jax(policy, platforms) if format == "jax" else to_onnx(policy, opset, metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    tmp.write_bytes(data)
    try:
        if check:
            _check(policy, tmp, format)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    inputs, outputs = policy.described()
    return ExportedPolicy(out, format, inputs, outputs)


def export_policy(run_dir: str | Path, *, step: int | None = None, format: str = "jax",  # noqa: A002
                  out: str | Path | None = None, seed_index: int = 0,
                  platforms: tuple[str, ...] = DEFAULT_PLATFORMS, opset: int = DEFAULT_OPSET,
                  check: bool = True) -> ExportedPolicy:
    """Export the deterministic policy of the run in ``run_dir`` (checkpoint ``step``, default the newest; seed
    ``seed_index`` of a several-seed run) to ``out`` (default ``run_dir/policy.jax`` or ``policy.onnx``);
    returns the :class:`ExportedPolicy` written (path-like). See the module docstring for what the file holds.
    ``platforms`` (jax format) are the backends the file can run on; ``opset`` (onnx) the ONNX opset."""
    from purerl.run import rundir

    format = _format(format)
    if format == "onnx":
        _onnx_modules()  # say what to install before loading anything
    if isinstance(seed_index, bool) or not isinstance(seed_index, (int, np.integer)):
        raise TypeError(f"seed_index must be an int, got {type(seed_index).__name__}")
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ValueError(f"{run_dir} does not exist; give a run directory written by `purerl train`")
    run = rundir.load(run_dir, step=step)
    if not 0 <= seed_index < run.seeds:
        raise ValueError(f"seed_index must lie in [0, {run.seeds - 1}] for this {run.seeds}-seed run, got "
                         f"{seed_index}")
    out = Path(out) if out is not None else run.path / f"policy{SUFFIX[format]}"
    metadata = {"algo": run.algo, "env": run.config.env, "step": str(run.step), "seed_index": str(seed_index)}
    return export_trainer_policy(run.trainer, run.seed_state(seed_index), out, format, platforms=platforms,
                                 opset=opset, metadata=metadata, check=check)


# --- helpers ------------------------------------------------------------------------------------------------

def _format(format: str) -> str:  # noqa: A002
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    return format


def _platforms(platforms: Any) -> tuple[str, ...]:
    if isinstance(platforms, str):
        platforms = tuple(p.strip() for p in platforms.split(",") if p.strip())
    platforms = tuple(platforms)
    known = ("cpu", "cuda", "rocm", "tpu")
    bad = [p for p in platforms if p not in known]
    if not platforms or bad:
        raise ValueError(f"platforms must be some of {', '.join(known)}, got {', '.join(map(str, platforms)) or 'none'}")
    return platforms


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _onnx_modules():
    """``(jax2onnx, onnxruntime)``, or an ``ImportError`` that says what to install."""
    try:
        import jax2onnx
        import onnxruntime
    except ImportError as e:
        raise ImportError(f"ONNX export needs jax2onnx and onnxruntime ({e.name or 'one of them'} is not "
                          f"installed): {ONNX_INSTALL}") from e
    return jax2onnx, onnxruntime


def _dead_code_removed(closed: Any) -> Any:
    """``closed`` without the operations its outputs do not depend on (e.g. the unused key of a deterministic
    policy), through JAX's own dead-code elimination where this jax has it."""
    try:
        import jax.extend.core as jex
        from jax._src.interpreters import partial_eval as pe

        jaxpr, _ = pe.dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars), instantiate=True)
        return jex.ClosedJaxpr(jaxpr, closed.consts)
    except Exception:  # noqa: BLE001 - private API moved: convert as traced
        return closed


def _primitives(closed: Any) -> list[str]:
    """The names of every primitive in ``closed`` and the jaxprs nested in its equations, in order."""
    import jax.extend.core as jex

    seen: list[str] = []

    def sub(value):
        if isinstance(value, jex.ClosedJaxpr):
            yield value.jaxpr
        elif isinstance(value, jex.Jaxpr):
            yield value
        elif isinstance(value, (tuple, list)):
            for v in value:
                yield from sub(v)

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name not in seen:
                seen.append(eqn.primitive.name)
            for value in eqn.params.values():
                for inner in sub(value):
                    walk(inner)

    walk(closed.jaxpr)
    return seen


def _unconvertible(closed: Any) -> list[str]:
    """The primitives of ``closed`` that jax2onnx has no conversion rule for (none if its registry moved)."""
    try:
        from jax2onnx.plugins.plugin_system import PLUGIN_REGISTRY, import_all_plugins

        import_all_plugins()
    except Exception:  # noqa: BLE001 - the converter's own error remains
        return []
    return [p for p in _primitives(closed) if p not in PLUGIN_REGISTRY]


def _drop_unused_initializers(graph: Any) -> None:
    """Remove the constants no node reads (onnxruntime warns about each one when it loads the model)."""
    used = {name for node in graph.node for name in node.input}
    for attr in (a for node in graph.node for a in node.attribute):
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            used |= {name for node in g.node for name in node.input}
    used |= {o.name for o in graph.output}
    keep = [init for init in graph.initializer if init.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def _check(policy: PolicyFunction, path: Path, format: str) -> None:  # noqa: A002
    """Load the written artefact as a consumer would and compare its actions with the policy's on
    :data:`CHECK_BATCH` observations (and memories)."""
    import jax

    rng = np.random.default_rng(0)
    args = [rng.normal(size=(CHECK_BATCH,) + tuple(s.shape[1:])).astype(s.dtype) for s in policy.inputs]
    want = jax.jit(policy.fn)(*args)
    want = [np.asarray(w) for w in (want if policy.recurrent else (want,))]
    if format == "jax":
        got = jax.export.deserialize(bytearray(path.read_bytes())).call(*args)
        got = [np.asarray(g) for g in (got if policy.recurrent else (got,))]
    else:
        _, ort = _onnx_modules()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        got = session.run(None, dict(zip(policy.input_names, args, strict=True)))
    for name, w, g in zip(policy.output_names, want, got, strict=True):
        if g.shape != w.shape or g.dtype != w.dtype:
            raise ValueError(f"the exported {format} policy's {name} is {g.dtype} {g.shape}, the policy's "
                             f"{w.dtype} {w.shape}")
        exact = np.issubdtype(w.dtype, np.integer)
        if exact:
            agree = float(np.mean(g == w))
            if agree < 0.99:   # an argmax may flip where two logits tie to rounding; nowhere else
                raise ValueError(f"the exported {format} policy's {name} differs from the policy's on "
                                 f"{1 - agree:.1%} of {CHECK_BATCH} observations")
        elif not np.allclose(g, w, rtol=1e-4, atol=1e-5):
            raise ValueError(f"the exported {format} policy's {name} differs from the policy's by up to "
                             f"{np.max(np.abs(g - w)):.3g}")
