"""Config plumbing shared by every algorithm.

An algorithm's ``Config`` is a frozen ``flax.struct.dataclass``. Fields that shape the compiled program
(env id, sizes, switches) are *static*: they live in the treedef and cannot be traced. Every numeric
hyperparameter is a pytree *leaf*, so ``jax.vmap`` can sweep it::

    def run(lr, key):
        return ppo.make_train(cfg.replace(learning_rate=lr))(key)
    jax.vmap(run)(jnp.array([1e-4, 3e-4]), keys)

Validation runs in plain Python before anything is traced; values that are tracers (inside a vmap over
that hyperparameter) are skipped, everything else is checked and reported with the field name and a fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Iterable

from flax import struct

try:  # public in jax 0.9-0.11; the fallback keeps validation working if it moves
    from jax.core import Tracer
except ImportError:  # pragma: no cover
    from jax._src.core import Tracer

__all__ = [
    "static_field",
    "leaf_field",
    "concrete",
    "check",
    "check_leaf",
    "field_docs",
    "apply_overrides",
]


def static_field(default: Any, help: str = "") -> Any:
    """A field that shapes the program (not traceable)."""
    return struct.field(pytree_node=False, default=default, metadata={"help": help, "static": True})


def leaf_field(default: Any, help: str = "") -> Any:
    """A numeric hyperparameter: a pytree leaf, so it can be traced and vmapped."""
    return struct.field(pytree_node=True, default=default, metadata={"help": help, "static": False})


def concrete(x: Any) -> float | None:
    """``float(x)`` when ``x`` is a concrete scalar, ``None`` when it is a tracer (being swept)."""
    if x is None or isinstance(x, Tracer):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def check(ok: bool, field: str, value: Any, fix: str) -> None:
    if not ok:
        raise ValueError(f"config field `{field}` = {value!r} is invalid: {fix}")


def check_leaf(cfg: Any, field: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> None:
    """Range-check a numeric leaf if it is concrete (tracers are checked by nobody: the caller sweeps them)."""
    raw = getattr(cfg, field)
    v = concrete(raw)
    if v is None:
        if raw is not None and not isinstance(raw, Tracer) and not hasattr(raw, "shape"):
            raise TypeError(f"config field `{field}` must be a number, got {type(raw).__name__} {raw!r}")
        return
    if math.isnan(v):
        raise ValueError(f"config field `{field}` is NaN: give a number")
    lo_txt = "(" if low_open else "["
    hi_txt = ")" if high_open else "]"
    rng = f"{lo_txt}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_txt}"
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"config field `{field}` = {v!r} is out of range: it must lie in {rng}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"config field `{field}` = {v!r} is out of range: it must lie in {rng}")


def field_docs(cfg_cls: type) -> list[tuple[str, Any, bool, str]]:
    """``(name, default, is_static, help)`` for every field of a config class."""
    out = []
    for f in dataclasses.fields(cfg_cls):
        out.append((f.name, f.default, bool(f.metadata.get("static", False)), f.metadata.get("help", "")))
    return out


def _coerce(text: str, default: Any, name: str) -> Any:
    t = text.strip()
    if t.lower() in ("none", "null"):
        return None
    if isinstance(default, bool):
        if t.lower() in ("1", "true", "yes", "on"):
            return True
        if t.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"config field `{name}` expects true/false, got {text!r}")
    if isinstance(default, tuple):
        parts = [p for p in t.strip("()[] ").split(",") if p.strip()]
        elem = default[0] if default else 0
        return tuple(_coerce(p, elem, name) for p in parts)
    if isinstance(default, int):
        try:
            return int(float(t)) if float(t).is_integer() else int(t)
        except ValueError:
            raise ValueError(f"config field `{name}` expects an integer, got {text!r}") from None
    if isinstance(default, float) or default is None:
        try:
            return float(t)
        except ValueError:
            if default is None:
                return t
            raise ValueError(f"config field `{name}` expects a number, got {text!r}") from None
    return t


def apply_overrides(cfg: Any, items: Iterable[str]) -> Any:
    """Apply ``field=value`` strings (the command line's ``--set``) to a config, coercing by field type."""
    names = {f.name: f for f in dataclasses.fields(cfg)}
    updates = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects field=value, got {item!r}")
        key, val = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown config field `{key}` for {type(cfg).__name__}.{hint} "
                             f"Fields: {', '.join(names)}")
        updates[key] = _coerce(val, names[key].default, key)
    return cfg.replace(**updates)
