"""Config plumbing shared by every algorithm.

An algorithm's ``Config`` is a frozen ``flax.struct.dataclass``. Fields that shape the compiled program
(env id, sizes, switches) are *static*: they live in the treedef and cannot be traced. Every numeric
hyperparameter is a pytree *leaf*, so ``jax.vmap`` can sweep it::

    def run(lr, key):
        return ppo.make_train(cfg.replace(learning_rate=lr))(key)
    jax.vmap(run)(jnp.array([1e-4, 3e-4]), keys)

Validation runs in plain Python before anything is traced; values that are tracers (inside a vmap over
that hyperparameter) are skipped, everything else is checked and reported with the field name and a fix.

:func:`schema` reads each field's declaration (its type annotation: bool, int, float, str, tuple of ints,
optional; its ``choices``) into a :class:`Setting`, the one place that checks a Python value, parses a
command-line string (``--set``), and gives the type the docs and ``--help`` show.

:class:`BaseConfig` holds the fields every algorithm has (env, sizes, network, discount) and their checks;
:func:`config_to_dict` / :func:`config_from_dict` are how configs are written to and read from run directories,
presets and ``--config`` files; :data:`RENAMED` maps old field names to new ones, so that configs written
before a rename still load (with a ``FutureWarning`` naming both).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
import warnings
from typing import Any, Iterable

import numpy as np
from flax import struct

from purerl.arguments import check_count, check_flag, parse_int, parse_switch, shown

try:  # public in jax 0.9-0.11; the fallback keeps validation working if it moves
    from jax.core import Tracer
except ImportError:  # pragma: no cover
    from jax._src.core import Tracer

__all__ = [
    "BaseConfig",
    "RENAMED",
    "Setting",
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
    "schema",
]


def static_field(default: Any, help: str = "", *, choices: Iterable[str] | None = None) -> Any:
    """A field that shapes the program (not traceable). ``choices``: the values a ``str`` field may take (the
    schema refuses any other, and the docs list them); a subclass that re-declares the field to change its
    default or help keeps them."""
    metadata = {"help": help, "static": True}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return struct.field(pytree_node=False, default=default, metadata=metadata)


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


# --- the schema: what each field's declaration says it takes ----------------------------------------------

TORSOS = ("mlp", "cnn")  # the network torsos (purerl.networks.torso_args)
ACTIVATION_NAMES = ("tanh", "relu", "elu", "gelu", "silu")  # the hidden activations (purerl.networks.ACTIVATIONS)

_KINDS = {bool: "bool", int: "int", float: "float", str: "str"}
_WHAT = {"bool": "True or False", "int": "an integer", "float": "a finite real number", "str": "a string",
         "ints": "a tuple of positive integers such as (64, 64)"}
_TYPE = {"bool": "bool", "int": "int", "float": "float", "str": "str", "ints": "tuple of ints"}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One config field as its declaration describes it: its type annotation gives ``kind`` (``bool``,
    ``int``, ``float``, ``str``, or ``ints``: a tuple of ints) and ``optional`` (``X | None``), the field
    gives ``static``, ``default``, ``help`` and ``choices`` (:func:`static_field`).

    Everything that depends on a field's type reads it here: :meth:`value` checks and converts a Python value
    (:meth:`Validated.validate`, :func:`config_from_dict`), :meth:`parse` a command-line string (``--set``,
    :func:`apply_overrides`), :meth:`text` writes a value as ``--set`` takes it, and :attr:`type_text` is
    the type the docs' Config tables and ``purerl train ALGO --help`` show."""

    name: str
    kind: str
    optional: bool
    static: bool
    default: Any
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        return f"config field `{self.name}`"

    @property
    def what(self) -> str:
        """What the field takes, in words (for messages)."""
        return f"one of {_listing(self.choices)}" if self.choices else _WHAT[self.kind]

    @property
    def type_text(self) -> str:
        """The field's type as the docs show it: ``int``, ``float or None``, ``one of mlp, cnn``..."""
        base = f"one of {', '.join(self.choices)}" if self.choices else _TYPE[self.kind]
        return base + " or None" * self.optional

    def value(self, v: Any) -> Any:
        """``v`` as the declared type (numpy scalars and lists accepted as what they hold, returned as Python
        values; a leaf's 0-d array kept), or a ``TypeError``/``ValueError`` naming the field, the value and the
        fix. A traced leaf (being swept) passes unchecked; a traced static field is refused."""
        if v is None:
            if self.optional:
                return None
            raise TypeError(f"{self.label} must be {self.what}, got None")
        if isinstance(v, Tracer):
            if self.static:
                raise ValueError(f"{self.label} is static: it shapes the compiled program, so it cannot be "
                                 f"traced (vmapped or passed through jit); loop over its values in Python, one "
                                 f"program per value (purerl.sweep does the same)")
            return v  # a leaf being swept: checked by nobody (the caller chose the values)
        if self.kind == "bool":
            return check_flag(v, self.label)
        if self.kind == "int":
            return check_count(v, self.label, minimum=None)
        if self.kind == "str":
            if not isinstance(v, str):
                raise TypeError(f"{self.label} must be {self.what}, got {shown(v)}")
            if self.choices and v not in self.choices:
                close = difflib.get_close_matches(v, self.choices, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{self.label} = {v!r} is invalid: use one of {_listing(self.choices)}{hint}")
            return v
        if self.kind == "ints":
            if isinstance(v, (tuple, list)) and all(_is_int(h) for h in v):
                return tuple(int(h) for h in v)
            raise TypeError(f"{self.label} must be {self.what}, got {shown(v)}")
        return self._number(v)

    def _number(self, v: Any) -> Any:
        if isinstance(v, (bool, np.bool_, str)) or not (isinstance(v, (int, float, np.number)) or hasattr(v, "dtype")):
            raise TypeError(f"{self.label} must be a real number, got {shown(v)}")
        if hasattr(v, "shape") and tuple(v.shape) != ():
            raise ValueError(f"{self.label} got an array of shape {tuple(v.shape)}: a config holds one value per "
                             f"run; to run several values at once, jax.vmap over them (see the README: many "
                             f"hyperparameter values at once) or use purerl.sweep")
        if hasattr(v, "dtype") and not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise TypeError(f"{self.label} must be a real number, got an array of dtype {v.dtype}")
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"{self.label} = {x} is not finite: give a finite number")
        return v if hasattr(v, "dtype") and not isinstance(v, np.generic) else x

    def parse(self, text: str) -> Any:
        """The value a command-line string gives (``64,64``, ``yes``, ``1e6``, ``none``), checked by
        :meth:`value`; a ``ValueError`` naming the field and the spelling it expects otherwise."""
        t = text.strip()
        if t.lower() in ("none", "null") and (self.optional or self.kind != "str"):   # "none" may be a choice
            if not self.optional:
                raise ValueError(f"{self.label} cannot be None: give {self.what}")
            return None
        try:
            if self.kind == "bool":
                return self.value(parse_switch(t, self.label))
            if self.kind == "int":
                return self.value(parse_int(t))
            if self.kind == "float":
                return self.value(_parse_float(t))
            if self.kind == "ints":
                inner = t.strip("()[] ")
                parts = inner[:-1].split(",") if inner.endswith(",") else inner.split(",")   # "64," is (64,)
                try:
                    return self.value(tuple(parse_int(p) for p in parts))
                except ValueError:   # an empty part, or one that is not a whole number
                    raise ValueError(f"expects comma-separated values (whole numbers) such as 64,64, got "
                                     f"{text!r}") from None
            return self.value(t)
        except ValueError as e:
            message = str(e)
            raise ValueError(message if message.startswith(self.label) else f"{self.label} {message}") from None

    def text(self, value: Any) -> str:
        """``value`` written as :meth:`parse` reads it back (``--set FIELD=TEXT``)."""
        if value is None:
            return "none"
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "ints":
            return ",".join(str(int(h)) for h in value)
        return repr(float(value)) if self.kind == "float" else str(value)


def _listing(choices: Iterable[str]) -> str:
    return ", ".join(repr(c) for c in choices)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expects a number such as 0.99 or 3e-4, got {text!r}") from None


def _kind(annotation: Any) -> tuple[str, bool]:
    """``(kind, optional)`` of a field's declared type: bool, int, float, str or ints (a tuple of ints)."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        optional = type(None) in args
        annotation = next(a for a in args if a is not type(None))
    if annotation in _KINDS:
        return _KINDS[annotation], optional
    if annotation is tuple or typing.get_origin(annotation) is tuple:
        return "ints", optional
    raise TypeError(f"config fields must be declared bool, int, float, str or tuple, not {annotation!r}")


@functools.cache
def schema(config_cls: type) -> dict[str, Setting]:
    """``{name: Setting}`` of every field of a config class, in declaration order, read from the fields'
    type annotations and declarations (a re-declared field keeps the ``choices`` of the one it overrides)."""
    hints = typing.get_type_hints(config_cls)
    out = {}
    for f in dataclasses.fields(config_cls):
        kind, optional = _kind(hints[f.name])
        choices = _choices(config_cls, f.name)
        if choices is not None and kind != "str":
            raise TypeError(f"config field `{f.name}` has choices, so it must be declared str, not {hints[f.name]!r}")
        out[f.name] = Setting(f.name, kind, optional, bool(f.metadata.get("static")), f.default,
                              f.metadata.get("help", ""), choices)
    return out


def _choices(config_cls: type, name: str) -> tuple[str, ...] | None:
    """The ``choices`` of field ``name``: its own declaration's, else those of the nearest base class's."""
    for klass in config_cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and "choices" in f.metadata:
            return f.metadata["choices"]
    return None


class Validated:
    """Base of every algorithm's Config: ``validate()`` is the one validation path.

    1. every field's value is checked against its declared type by the schema (:meth:`Setting.value`: bool,
       int, float, str with its choices, tuple of ints; numpy scalars and lists accepted as what they hold,
       returned as Python values), numbers must be finite, a traced static field or an array in a numeric field
       says how to sweep instead;
    2. ``_check()``: ranges and relations between fields (each class adds its own, calling ``super``);
    3. ``_applies``: fields that do nothing given the others (e.g. ``vf_clip_eps`` without ``clip_value``) must
       stay at their defaults.
    All of it in plain Python, before anything is traced; the env-dependent checks run in ``make``, where the
    env exists (:func:`check_env_fields`). Returns the validated (coerced) config.
    """

    # field -> (does it apply?, what it is for): declared per class, merged along the class hierarchy
    _applies: dict = {}

    def validate(self):
        cfg = self.replace(**{name: s.value(getattr(self, name)) for name, s in schema(type(self)).items()})
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
    activation: str = static_field("tanh", "hidden activation: tanh, relu, elu, gelu, silu", choices=ACTIVATION_NAMES)
    torso: str = static_field("mlp", "network torso: mlp, or cnn (convolutions over an image-like observation, "
                              "e.g. MinAtar's 10x10xC grid, before the MLP layers)", choices=TORSOS)
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
        for name in ("total_timesteps", "num_envs", "episode_length"):
            check(getattr(self, name) >= 1, name, getattr(self, name), "use a positive integer")
        check(self.unroll is None or self.unroll >= 1, "unroll", self.unroll,
              "use a positive integer, or None for the backend's default")
        check(len(self.hidden_sizes) >= 1 and all(h > 0 for h in self.hidden_sizes), "hidden_sizes",
              self.hidden_sizes, "use a tuple of positive ints, e.g. (64, 64)")
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
    """``(name, default, is_static, help)`` for every field of a config class (:func:`schema` has the rest)."""
    return [(s.name, s.default, s.static, s.help) for s in schema(cfg_cls).values()]


# --- writing and reading configs ----------------------------------------------------------------------------

# Config fields that were renamed: old name -> new name. Configs that use an old name (run directories,
# presets or --config files written before the rename, --set) still load, with a FutureWarning.
RENAMED = {
    "scale_reward": "normalize_reward",  # a switch (divide by the running return std), not a multiplier
    "adam_eps": "opt_eps",               # one name for the optimiser epsilon (PPO and A2C)
    "num_evals": "num_log_points",       # one word for a log point (the off-policy ones; evaluation is optional)
}


def _new_name(config_cls: type, name: str, source: str) -> str:
    """``name``, or its new name (with a ``FutureWarning``) when it was renamed and ``config_cls`` has that."""
    new = RENAMED.get(name)
    if new is None or new not in schema(config_cls):
        return name
    warnings.warn(f"{source}: config field `{name}` was renamed `{new}`; reading it as `{new}`. Write `{new}`: "
                  f"the old name will stop loading in a later release.", FutureWarning, stacklevel=4)
    return new


def _settings(config_cls: type, names: Iterable[str], source: str) -> dict[str, Setting]:
    """``{name as given: its Setting}``, renamed fields (:data:`RENAMED`) under their new names (with a
    ``FutureWarning``); a ``ValueError`` names every unknown field (with the closest known name) and a field
    given twice (under its old and new names)."""
    fields = schema(config_cls)
    found, unknown = {}, []
    for name in names:
        new = _new_name(config_cls, name, source)
        before = next((given for given, s in found.items() if s.name == new), None)
        if new not in fields:
            unknown.append(name)
        elif before is not None:
            raise ValueError(f"{source}: config field `{new}` is given twice (also under its old name "
                             f"`{before if name == new else name}`); keep `{new}`")
        else:
            found[name] = fields[new]
    if unknown:
        close = [m for u in unknown for m in difflib.get_close_matches(u, fields, n=1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"{source}: unknown config field(s) {', '.join(sorted(unknown))} for "
                         f"{config_cls.__module__}.{config_cls.__name__}{hint}; fields: {', '.join(fields)}")
    return found


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
    """``config_cls(**values)`` with each value checked and converted by the schema (:meth:`Setting.value`:
    JSON/TOML lists back into tuples) and renamed fields (:data:`RENAMED`) read under their new names; an
    unknown field (a config written for another algorithm, or by a newer purerl) or a value of the wrong type
    is an error naming it. ``source`` names the file in messages."""
    settings = _settings(config_cls, values, source)
    return config_cls(**{s.name: _sourced(s.value, values[name], source) for name, s in settings.items()})


def apply_overrides(cfg: Any, items: Iterable[str]) -> Any:
    """Apply ``field=value`` strings (the command line's ``--set``) to a config, each parsed as its field's
    declared type (:meth:`Setting.parse`)."""
    updates = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects field=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        s = _settings(type(cfg), [key], "--set")[key]
        updates[s.name] = _sourced(s.parse, text, "--set")
    return cfg.replace(**updates)


def _sourced(convert: Any, value: Any, source: str) -> Any:
    """``convert(value)``, an error prefixed with ``source`` (the file or option the value came from)."""
    try:
        return convert(value)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{source}: {e}") from None
