"""The checks of plain arguments, one for each kind, as Python values and as command-line strings.

:func:`check_count` is how every count (seeds, envs, episodes, repeats, chunk sizes, log points...) is checked,
in the Python API (``sweep.run``, ``runner.train``, ``plot_runs``, bench, ``envs.make``, a trainer's
``evaluate``) and on the command line (:func:`parse_count`, the ``type`` of every count option):
one wording, naming the argument and the fix. :func:`check_flag` and :func:`parse_switch` do the same for a
switch. The config schema (:mod:`purerl.config`) parses its integer and switch fields with these.

This module imports no jax (nor numpy): the command line parses its options with it before it knows whether
the command needs jax.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["SWITCH_WORDS", "check_count", "check_flag", "parse_count", "parse_int", "parse_switch", "shown"]

# a switch's command-line spellings (any case)
SWITCH_WORDS = {True: ("true", "yes", "on", "1"), False: ("false", "no", "off", "0")}


def _label(name: str) -> str:
    """How a message names the argument: a Python name in backticks, an option (``--seeds``) or a phrase
    that quotes itself (``config field `gamma```) as it is, nothing for ``""`` (argparse puts
    ``argument --seeds:`` before the message itself)."""
    return name if not name or name.startswith("-") or "`" in name else f"`{name}`"


def _say(where: str, name: str, rest: str) -> str:
    return f"{where}: " * bool(where) + " ".join(part for part in (_label(name), rest) if part)


def shown(value: Any) -> str:
    """A value as messages show it: a string as such, anything else with its type."""
    return f"the string {value!r}" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _is_bool(value: Any) -> bool:
    kind = type(value)   # numpy's bool (numpy.bool, numpy.bool_ before numpy 2) is known without importing numpy
    return isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"))


def check_count(value: Any, name: str, minimum: int | None = 1, *, where: str = "", note: str = "") -> int:
    """``value`` as a Python ``int`` of at least ``minimum`` (``None``: any integer).

    A value that is not a whole number (a bool, a float, a string) is a ``TypeError``, a smaller one a
    ``ValueError``; both name the argument ``name`` (``"seeds"`` is written `` `seeds` ``, an option such as
    ``"--seeds"`` as it is), prefixed by ``where`` (``"sweep"``: who checks it) and followed by ``note``.
    Integers of numpy (or any type with ``__index__``) are accepted as the ``int`` they hold.
    """
    if _is_bool(value) or not hasattr(value, "__index__"):
        least = f" of at least {minimum}" if minimum is not None else ""
        fix = f": write {int(value)}" if isinstance(value, float) and value.is_integer() else ""
        raise TypeError(_say(where, name, f"must be a whole number (an int){least}, got {shown(value)}{fix}{note}"))
    number = int(value.__index__())
    if minimum is not None and number < minimum:
        raise ValueError(_say(where, name, f"must be at least {minimum}, got {number}{note}"))
    return number


def parse_int(text: str) -> int:
    """A whole number as written on a command line: ``100000``, ``-3``, ``1e5``, ``1_000_000``, ``2.0``; a
    ``ValueError`` for anything else (``1.5``, ``1e5x``, ``inf``)."""
    t = text.strip()
    try:
        return int(t)    # exact, however large
    except ValueError:
        pass
    try:
        number = float(t)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not number.is_integer():
        raise ValueError(f"expects a whole number such as 100000 or 1e5, got {text!r}")
    return int(number)


def parse_count(text: str, name: str = "", minimum: int | None = 1, *, where: str = "") -> int:
    """:func:`parse_int` then :func:`check_count`: a count given on the command line, a ``ValueError`` naming
    ``name`` either way (a command line has no types)."""
    try:
        return check_count(parse_int(text), name, minimum, where=where)
    except ValueError as e:
        if str(e).startswith("expects"):
            raise ValueError(_say(where, name, str(e))) from None
        raise


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a Python bool (``True``/``False``, numpy's bools too): a ``TypeError`` naming ``name``
    otherwise (a traced bool cannot choose between two programs)."""
    if not _is_bool(value):
        raise TypeError(_say("", name, f"must be True or False, got {shown(value)}"))
    return bool(value)


def parse_switch(text: str, name: str = "") -> bool:
    """A switch as written on a command line: one of :data:`SWITCH_WORDS` in any case, a ``ValueError`` naming
    ``name`` otherwise."""
    word = text.strip().lower()
    for value, words in SWITCH_WORDS.items():
        if word in words:
            return value
    spellings = ", ".join(f"{on}/{off}" for on, off in zip(SWITCH_WORDS[True], SWITCH_WORDS[False]))
    raise ValueError(_say("", name, f"is a switch: give one of {spellings} (any case), got {text!r}"))
