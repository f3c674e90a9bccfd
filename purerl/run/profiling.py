"""Where a compiled training program spends its time: loop structure, program size, time per phase.

Three views of one function, each cheap to read:

* :func:`loop_structure`: every ``scan``/``while``/``cond`` in the traced program with its named scope, trip
  count and unroll, and the number of sequential loop iterations one call executes. On a CPU every iteration
  runs its body's kernels one after another, each with a dispatch cost; on a GPU each is a kernel launch.
* :func:`program_size`: instructions and fusions in the optimised HLO.
* :func:`phase_profile`: one run under ``jax.profiler``; every kernel ("thunk") the runtime executed is
  credited to the innermost of ``phases`` in its ``jax.named_scope`` path (algorithms mark their phases
  with named scopes, which change no computation). A fusion spanning two scopes is credited to the scope of
  its root instruction. Time between kernels (loop control, the runtime's own bookkeeping) is reported as
  ``(between kernels)``.
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import jax

__all__ = ["Loop", "loop_structure", "sequential_iterations", "program_size", "phase_profile", "PhaseTimes"]


@dataclass
class Loop:
    kind: str                 # "scan", "while" or "cond"
    scope: str                # the named scope it was traced in ("" at top level)
    length: int | None        # scan trip count (None for while/cond)
    unroll: int               # scan unroll factor (1 for while/cond)
    depth: int
    executions: float         # how often this loop runs per call (product of the enclosing trip counts)
    children: list = field(default_factory=list)

    @property
    def iterations(self) -> float:
        """Sequential iterations (of the unrolled body) per execution."""
        if self.kind == "scan":
            return math.ceil(self.length / max(1, self.unroll))
        return 1.0 if self.kind == "cond" else float("nan")


def _subjaxprs(eqn) -> list:
    out = []
    for v in eqn.params.values():
        for x in v if isinstance(v, (tuple, list)) else (v,):
            if hasattr(x, "jaxpr") and hasattr(x, "consts"):
                out.append(x.jaxpr)
            elif type(x).__name__ == "Jaxpr":
                out.append(x)
    return out


def loop_structure(fn: Callable, *args) -> list[Loop]:
    """The loops of ``fn(*args)`` as a forest (children nested in their parent's ``children``)."""
    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr

    def walk(j, depth: int, executions: float, prefix: str) -> list[Loop]:
        found = []
        for eqn in j.eqns:
            scope = "/".join(p for p in (prefix, str(eqn.source_info.name_stack)) if p)
            name = eqn.primitive.name
            if name in ("scan", "while", "cond"):
                length = eqn.params.get("length") if name == "scan" else None
                unroll = int(eqn.params.get("unroll", 1)) if name == "scan" else 1
                loop = Loop(name, scope, length, unroll, depth, executions)
                inner = executions * (loop.iterations if name == "scan" else 1.0)
                for sub in _subjaxprs(eqn):
                    loop.children += walk(sub, depth + 1, inner, scope)
                found.append(loop)
            else:
                for sub in _subjaxprs(eqn):
                    found += walk(sub, depth, executions, scope)
        return found

    return walk(jaxpr, 0, 1.0, "")


def _flatten(loops: Sequence[Loop]) -> list[Loop]:
    out = []
    for lp in loops:
        out.append(lp)
        out += _flatten(lp.children)
    return out


def sequential_iterations(loops: Sequence[Loop]) -> float:
    """Loop iterations one call executes, summed over every scan (each nested one counted per execution)."""
    return sum(lp.executions * lp.iterations for lp in _flatten(loops) if lp.kind == "scan")


def format_loops(loops: Sequence[Loop]) -> str:
    lines = []
    for lp in _flatten(loops):
        what = (f"scan x{lp.length}" + (f" (unroll {lp.unroll})" if lp.unroll > 1 else "")) if lp.kind == "scan" \
            else lp.kind
        runs = f"runs {lp.executions:g}x per call" if lp.executions != 1 else "runs once per call"
        lines.append(f"{'  ' * lp.depth}{what:<22} {lp.scope or '(top)':<48} {runs}")
    return "\n".join(lines)


_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*\S+(?:\s*\{[^}]*\})?\s+([\w\-]+)\(")
_OPNAME = re.compile(r'op_name="([^"]*)"')


def _hlo_instructions(compiled) -> dict[str, tuple[str, str]]:
    """``{instruction name: (opcode, op_name)}`` of the optimised HLO."""
    out = {}
    for line in compiled.as_text().splitlines():
        m = _INSTR.match(line)
        if m:
            op = _OPNAME.search(line)
            out[m.group(1)] = (m.group(2), op.group(1) if op else "")
    return out


def program_size(compiled) -> dict:
    """Size of the optimised HLO: instructions, fusions, dots (matrix products) and its text length."""
    instrs = _hlo_instructions(compiled)
    opcodes = [op for op, _ in instrs.values()]
    return {"instructions": len(instrs), "fusions": opcodes.count("fusion"),
            "dots": opcodes.count("dot") + opcodes.count("custom-call"), "text_kib": len(compiled.as_text()) / 1024}


@dataclass
class PhaseTimes:
    """Per-phase kernel time of one profiled call (microseconds), kernel counts, and the call's wall time."""

    micros: dict
    kernels: dict
    wall_s: float

    def per(self, n: float) -> "PhaseTimes":
        return PhaseTimes({k: v / n for k, v in self.micros.items()}, {k: v / n for k, v in self.kernels.items()},
                          self.wall_s / n)


_CONTROL = {"while", "conditional", "call", "tuple", "get-tuple-element", "parameter", "constant", "bitcast"}
_WRAPPERS = re.compile(r"^(?:[a-z_]+\()+|\)+$")


def _phase_of(op_name: str, phases: Sequence[str]) -> str:
    found = "(other)"
    for part in op_name.split("/"):
        part = _WRAPPERS.sub("", part)  # transpose(jvp(critic)) -> critic
        if part in phases:
            found = part
    return found


def phase_profile(compiled, args: tuple, phases: Sequence[str]) -> PhaseTimes:
    """Run ``compiled(*args)`` once under the profiler and credit every executed kernel to a phase."""
    instrs = _hlo_instructions(compiled)
    jax.block_until_ready(compiled(*args))  # warm
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d, create_perfetto_trace=True)
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        wall = time.perf_counter() - t0
        jax.profiler.stop_trace()
        path = glob.glob(f"{d}/**/perfetto_trace.json.gz", recursive=True)[0]
        with gzip.open(path) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    micros: dict[str, float] = {}
    kernels: dict[str, float] = {}
    for ev in events:
        if ev.get("ph") != "X" or ev.get("name") not in instrs:
            continue
        opcode, op_name = instrs[ev["name"]]
        if opcode in _CONTROL:
            continue
        ph = _phase_of(op_name, phases)
        micros[ph] = micros.get(ph, 0.0) + float(ev.get("dur", 0.0))
        kernels[ph] = kernels.get(ph, 0) + 1
    micros["(between kernels)"] = max(0.0, wall * 1e6 - sum(micros.values()))
    return PhaseTimes(micros, kernels, wall)


def compile_timed(fn: Callable, *args) -> tuple[Any, float]:
    """``(compiled, seconds)`` for ``jax.jit(fn)`` at ``args`` (tracing and XLA compilation together)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0
