"""Config plumbing shared by every algorithm.

An algorithm's ``Config`` is a frozen ``flax.struct.dataclass``. Fields that shape the compiled program
(env id, sizes, switches) are *static*: they live in the treedef and cannot be traced. Every numeric
hyperparameter is a pytree *leaf*, so ``jax.vmap`` can sweep it::

    def run(lr, key):
        return ppo.make_train(cfg.replace(learning_rate=lr))(key)
    jax.vmap(run)(jnp.array([1e-4, 3e-4]), keys)

Validation runs in plain Python before anything is traced; values that are tracers (inside a vmap over
that hyperparameter) are skipped, everything else is checked and reported with the field name and a fix.

:class:`BaseConfig` holds the fields every algorithm has (env, sizes, network, discount) and their checks;
:func:`config_to_dict` / :func:`config_from_dict` are how configs are written to and read from run directories,
presets and ``--config`` files; :data:`RENAMED` maps old field names to new ones, so that configs written
before a rename still load (with a ``FutureWarning`` naming both).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
import warnings
from typing import Any, Iterable

import numpy as np
from flax import struct

try:  # public in jax 0.9-0.11; the fallback keeps validation working if it moves
    from jax.core import Tracer
except ImportError:  # pragma: no cover
    from jax._src.core import Tracer

__all__ = [
    "BaseConfig",
    "RENAMED",
    "Validated",
    "config_from_dict",
    "config_to_dict",
    "static_field",
    "leaf_field",
    "concrete",
    "check",
    "check_config",
    "check_count",
    "check_flag",
    "check_leaf",
    "check_env_fields",
    "never",
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


def check_config(config: Any, config_cls: type) -> None:
    """A ``TypeError`` unless ``config`` is a ``config_cls`` (an algorithm's ``Config``, or a subclass)."""
    if not isinstance(config, config_cls):
        got = type(config)
        name = f"{got.__module__}.{got.__qualname__}" if isinstance(config, Validated) else got.__name__
        raise TypeError(f"`config` must be a {config_cls.__module__}.{config_cls.__qualname__}, got {name}: build "
                        f"it with {config_cls.__module__}.Config(...) (a dict loads with "
                        "purerl.config.config_from_dict)")


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as a Python int of at least ``minimum``: a ``TypeError`` for a non-integer, a ``ValueError``
    naming ``name`` for a smaller one."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer (at least {minimum}), got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` = {value} must be at least {minimum}")
    return int(value)


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a Python bool (``True``/``False``, numpy bools too): a ``TypeError`` naming ``name``
    otherwise (a traced bool cannot choose between two programs)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


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


# --- one validation path for every Config -------------------------------------------------------------------

TORSOS = ("mlp", "cnn")  # the network torsos (purerl.networks.torso_args)

_WHAT = {"bool": "True or False", "int": "an integer", "float": "a finite real number", "str": "a string",
         "ints": "a tuple of positive integers such as (64, 64)"}


def _kind(annotation: Any) -> tuple[str, bool]:
    """``(kind, optional)`` of a field's declared type: bool, int, float, str or ints (a tuple of ints)."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        optional = type(None) in args
        annotation = next(a for a in args if a is not type(None))
    for kind, tp in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if annotation is tp:
            return kind, optional
    if annotation is tuple or typing.get_origin(annotation) is tuple:
        return "ints", optional
    raise TypeError(f"config fields must be declared bool, int, float, str or tuple, not {annotation!r}")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{value!r} ({type(value).__name__})"


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _as_declared(name: str, kind: str, optional: bool, static: bool, v: Any) -> Any:
    """The field's value as its declared type (numpy scalars and lists accepted as what they hold), or a
    ``TypeError``/``ValueError`` naming the field, the value and the fix."""
    if v is None:
        if optional:
            return None
        raise TypeError(f"config field `{name}` must be {_WHAT[kind]}, got None")
    if isinstance(v, Tracer):
        if static:
            raise ValueError(f"config field `{name}` is static: it shapes the compiled program, so it cannot be "
                             f"traced (vmapped or passed through jit); loop over its values in Python, one "
                             f"program per value (purerl.sweep does the same)")
        return v  # a leaf being swept: checked by nobody (the caller chose the values)
    if kind == "bool":
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise TypeError(f"config field `{name}` must be True or False, got {_show(v)}")
    if kind == "int":
        if _is_int(v):
            return int(v)
        fix = f": write {int(v)}" if isinstance(v, float) and v.is_integer() else ""
        raise TypeError(f"config field `{name}` must be an integer, got {_show(v)}{fix}")
    if kind == "str":
        if isinstance(v, str):
            return v
        raise TypeError(f"config field `{name}` must be a string, got {_show(v)}")
    if kind == "ints":
        if isinstance(v, (tuple, list)) and all(_is_int(h) for h in v):
            return tuple(int(h) for h in v)
        raise TypeError(f"config field `{name}` must be {_WHAT[kind]}, got {_show(v)}")
    # a numeric leaf
    if isinstance(v, (bool, np.bool_, str)) or not (isinstance(v, (int, float, np.number)) or hasattr(v, "dtype")):
        raise TypeError(f"config field `{name}` must be a real number, got {_show(v)}")
    if hasattr(v, "shape") and tuple(v.shape) != ():
        raise ValueError(f"config field `{name}` got an array of shape {tuple(v.shape)}: a config holds one value "
                         f"per run; to run several values at once, jax.vmap over them (see the README: many "
                         f"hyperparameter values at once) or use purerl.sweep")
    if hasattr(v, "dtype") and not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
        raise TypeError(f"config field `{name}` must be a real number, got an array of dtype {v.dtype}")
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"config field `{name}` = {x} is not finite: give a finite number")
    return v if hasattr(v, "dtype") and not isinstance(v, np.generic) else x


class Validated:
    """Base of every algorithm's Config: ``validate()`` is the one validation path.

    1. every field's value is checked against its declared type (bool, int, float, str, tuple of ints; numpy
       scalars and lists accepted as what they hold, returned as Python values), numbers must be finite, a
       traced static field or an array in a numeric field says how to sweep instead;
    2. ``_check()``: ranges and relations between fields (each class adds its own, calling ``super``);
    3. ``_applies``: fields that do nothing given the others (e.g. ``vf_clip_eps`` without ``clip_value``) must
       stay at their defaults.
    All of it in plain Python, before anything is traced; the env-dependent checks run in ``make``, where the
    env exists (:func:`check_env_fields`). Returns the validated (coerced) config.
    """

    # field -> (does it apply?, what it is for): declared per class, merged along the class hierarchy
    _applies: dict = {}

    def validate(self):
        hints = typing.get_type_hints(type(self))
        values = {}
        for f in dataclasses.fields(self):
            kind, optional = _kind(hints[f.name])
            values[f.name] = _as_declared(f.name, kind, optional, bool(f.metadata.get("static")),
                                          getattr(self, f.name))
        cfg = self.replace(**values)
        cfg._check()
        cfg._check_applies()
        return cfg

    def _check(self) -> None:
        """Ranges and relations between fields (subclasses extend it, calling super)."""

    def _check_applies(self) -> None:
        rules: dict = {}
        for klass in reversed(type(self).__mro__):
            rules.update(vars(klass).get("_applies", {}))
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, (applies, what) in rules.items():
            value, default = getattr(self, name), defaults[name]
            changed = isinstance(value, Tracer) or not _same(value, default)
            if changed and not applies(self):
                raise ValueError(f"config field `{name}` = {value!r} does not apply: {what}; leave it at its "
                                 f"default ({default!r})")


def never(config: Any) -> bool:
    """The ``_applies`` rule of a field an algorithm inherits and has no use for (DQN's ``actor_lr``): a change
    from the default is refused, and the docs' Config table leaves the field out."""
    return False


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


@struct.dataclass
class BaseConfig(Validated):
    """The fields every algorithm has, with their checks (the on- and off-policy bases re-declare some of
    them to change a default or a help text)."""

    # --- static ---
    env: str = static_field("CartPole-v1", "environment id: a gymnax name, brax/<name>, playground/<name> or "
                            "craftax/<name>")
    env_backend: str | None = static_field(None, "physics: Brax pipeline (generalized, positional, spring, mjx) or "
                                           "Playground MJX impl (jax, the default, or warp)")
    episode_length: int = static_field(1000, "time limit of Brax and Playground episodes (gymnax and Craftax envs "
                                       "carry their own)")
    total_timesteps: int = static_field(500_000, "env steps in the whole run")
    num_envs: int = static_field(4, "parallel environments")
    hidden_sizes: tuple = static_field((64, 64), "MLP widths of the networks")
    activation: str = static_field("tanh", "hidden activation: tanh, relu, elu, gelu, silu")
    torso: str = static_field("mlp", "network torso: mlp, or cnn (convolutions over an image-like observation, "
                              "e.g. MinAtar's 10x10xC grid, before the MLP layers)")
    cnn_channels: tuple = static_field((16,), "cnn torso: output channels of each convolution (stride 1, no "
                                       "padding)")
    cnn_kernel: int = static_field(3, "cnn torso: the convolutions' kernel size")
    layer_norm: bool = static_field(False, "LayerNorm before the activation of every hidden layer (dense and "
                                    "convolutional) of every network")
    unroll: int | None = static_field(None, "lax.scan unroll of the env-step loop (a speed knob, same results); "
                                      "None: chosen per backend when the program is built (see "
                                      "purerl.compiling.PER_BACKEND)")
    # --- leaves ---
    gamma: float = leaf_field(0.99, "discount factor")

    _unroll_default = "onpolicy_unroll"  # the PER_BACKEND entry an unset unroll resolves to
    _applies = {name: (lambda c: c.torso == "cnn", "it shapes the CNN torso; set torso='cnn' to use it")
                for name in ("cnn_channels", "cnn_kernel")}

    @property
    def scan_unroll(self) -> int:
        """``unroll``, or where it is None the fastest value for the backend the program is built for."""
        if self.unroll is not None:
            return self.unroll
        from purerl.compiling import backend_default

        return backend_default(self._unroll_default)

    def _check(self) -> None:
        from purerl.networks import ACTIVATIONS

        for name in ("total_timesteps", "num_envs", "episode_length"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "use a positive integer")
        check(self.unroll is None or self.unroll >= 1, "unroll", self.unroll,
              "use a positive integer, or None for the backend's default")
        check(self.activation in ACTIVATIONS, "activation", self.activation, f"use one of {sorted(ACTIVATIONS)}")
        check(len(self.hidden_sizes) >= 1 and all(h > 0 for h in self.hidden_sizes), "hidden_sizes",
              self.hidden_sizes, "use a tuple of positive ints, e.g. (64, 64)")
        check(self.torso in TORSOS, "torso", self.torso, f"use one of {TORSOS}")
        check(len(self.cnn_channels) >= 1 and all(c > 0 for c in self.cnn_channels), "cnn_channels",
              self.cnn_channels, "use a tuple of positive ints, e.g. (16,) or (32, 64)")
        check(self.cnn_kernel >= 1, "cnn_kernel", self.cnn_kernel, "use a positive integer, e.g. 3")
        check_leaf(self, "gamma", low=0.0, high=1.0)


def check_env_fields(cfg: Any, env: Any, suite: Any) -> None:
    """Fields of ``cfg`` that do nothing for ``env`` (a built env) must stay at their defaults: those that its
    ``suite`` (the env's row of :data:`purerl.envs.SUITES`) takes no notice of (``Suite.ignored_fields``: a
    physics backend, a time limit), and the continuous-action fields for discrete actions."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}

    def refuse(name: str, why: str) -> None:
        raise ValueError(f"config field `{name}` = {getattr(cfg, name)!r} does not apply to env {cfg.env!r}: {why}; "
                         f"leave it at its default ({defaults[name]!r})")

    for name, why in suite.ignored_fields(env.max_episode_steps).items():
        if name in defaults and not _same(getattr(cfg, name), defaults[name]):
            refuse(name, why)
    if getattr(cfg, "torso", "mlp") == "cnn" and len(env.obs_shape) != 3:
        raise ValueError(f"config field `torso` = 'cnn' does not apply to env {cfg.env!r}: its observations have "
                         f"shape {tuple(env.obs_shape)}, and the CNN torso needs an image-like (height, width, "
                         f"channels) one such as MinAtar's; use torso='mlp'")
    if env.is_discrete:
        for name in ("action_transform", "state_dependent_std"):
            if name in defaults and getattr(cfg, name) != defaults[name]:
                refuse(name, "it shapes continuous actions, and this env's actions are discrete")


def field_docs(cfg_cls: type) -> list[tuple[str, Any, bool, str]]:
    """``(name, default, is_static, help)`` for every field of a config class."""
    out = []
    for f in dataclasses.fields(cfg_cls):
        out.append((f.name, f.default, bool(f.metadata.get("static", False)), f.metadata.get("help", "")))
    return out


# --- writing and reading configs ----------------------------------------------------------------------------

# Config fields that were renamed: old name -> new name. Configs that use an old name (run directories,
# presets or --config files written before the rename, --set) still load, with a FutureWarning.
RENAMED = {
    "scale_reward": "normalize_reward",  # a switch (divide by the running return std), not a multiplier
    "adam_eps": "opt_eps",               # one name for the optimiser epsilon (PPO and A2C)
}


def _new_name(config_cls: type, name: str, source: str) -> str:
    """``name``, or its new name (with a ``FutureWarning``) when it was renamed and ``config_cls`` has that."""
    new = RENAMED.get(name)
    if new is None or new not in {f.name for f in dataclasses.fields(config_cls)}:
        return name
    warnings.warn(f"{source}: config field `{name}` was renamed `{new}`; reading it as `{new}`. Write `{new}`: "
                  f"the old name will stop loading in a later release.", FutureWarning, stacklevel=3)
    return new


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.ndarray, np.generic)):
        return x.tolist()
    if isinstance(x, tuple):
        return [_jsonable(v) for v in x]
    return x


def config_to_dict(cfg: Any) -> dict:
    """``{field: value}`` of a config, as JSON/TOML values (tuples as lists, numpy scalars as numbers)."""
    return {f.name: _jsonable(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def config_from_dict(config_cls: type, values: dict, source: str = "config") -> Any:
    """``config_cls(**values)`` with JSON/TOML lists turned back into tuples and renamed fields (:data:`RENAMED`)
    read under their new names; unknown fields are a ``ValueError`` naming them (a config written for another
    algorithm, or by a newer purerl). ``source`` names the file in messages."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    kwargs = {}
    for name, value in values.items():
        new = _new_name(config_cls, name, source)
        if new in kwargs:
            raise ValueError(f"{source}: config field `{new}` is given twice (also under its old name `{name}`); "
                             f"keep `{new}`")
        kwargs[new] = tuple(value) if isinstance(value, list) else value
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ValueError(f"{source}: unknown config field(s) {', '.join(unknown)} for {config_cls.__module__}."
                         f"{config_cls.__name__}; fields: {', '.join(sorted(fields))}")
    return config_cls(**kwargs)


SWITCH_WORDS = {True: ("true", "yes", "on", "1"), False: ("false", "no", "off", "0")}   # a switch's --set spellings


def _coerce(text: str, default: Any, name: str) -> Any:
    t = text.strip()
    if t.lower() in ("none", "null"):
        return None
    if isinstance(default, bool):
        if t.lower() in SWITCH_WORDS[True]:
            return True
        if t.lower() in SWITCH_WORDS[False]:
            return False
        spellings = ", ".join(f"{on}/{off}" for on, off in zip(SWITCH_WORDS[True], SWITCH_WORDS[False]))
        raise ValueError(f"config field `{name}` is a switch: give one of {spellings} (any case), got {text!r}")
    if isinstance(default, tuple):
        inner = t.strip("()[] ")
        parts = inner[:-1].split(",") if inner.endswith(",") else inner.split(",")  # "64," is (64,)
        if not inner or any(not p.strip() for p in parts):
            raise ValueError(f"config field `{name}` expects comma-separated values such as 64,64, got {text!r}")
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
        key = _new_name(type(cfg), key.strip().replace("-", "_"), "--set")
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown config field `{key}` for {type(cfg).__name__}.{hint} "
                             f"Fields: {', '.join(names)}")
        updates[key] = _coerce(val, names[key].default, key)
    return cfg.replace(**updates)
