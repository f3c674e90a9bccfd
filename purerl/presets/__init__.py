"""Tuned configs shipped as data: ``purerl/presets/NAME.toml``.

A preset file names its algorithm, the config fields it sets (everything else keeps the Config default)
and the return it reaches, measured by ``benchmarks/presets.py`` (or, for the presets that the algorithm pages
show, taken from docs/results/algorithms.json by ``benchmarks/presets.py --from-results``)::

    algo = "ppo"
    description = "PPO on CartPole-v1"
    reaches = "eval return 500.0 +- 0.0 over 4 seeds (benchmarks/presets.py, CPU, 2026-11-24)"

    [config]
    env = "CartPole-v1"
    total_timesteps = 500000

``purerl train ALGO --preset NAME`` (or ``--config FILE`` with a file of the same form, or a run's
``config.json``) starts from it; ``--set`` and the direct flags still override single fields.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import tomllib

__all__ = ["Preset", "load", "load_file", "names"]

HERE = Path(__file__).parent


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    algo: str | None
    config: dict
    description: str = ""
    reaches: str = ""
    source: str = ""  # how error messages name it: "preset NAME" or "--config PATH"

    def apply(self, config_cls: type) -> Any:
        """The algorithm's Config with this preset's fields set."""
        from purerl.config import config_from_dict

        return config_from_dict(config_cls, self.config, source=self.source or f"preset {self.name}")


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.toml"))


def load_file(path: str | Path) -> Preset:
    """A preset from a TOML or JSON file: ``{algo?, description?, reaches?, config: {...}}`` (a run's
    ``config.json`` has this form too)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--config: {path} is a directory; give a TOML/JSON file with a [config] table, or a "
                         f"run's config.json")
    if not path.is_file():
        raise ValueError(f"--config: no such file {path}")
    try:
        body = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"--config: {path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {e}") from e
    if not isinstance(body, dict) or not isinstance(body.get("config"), dict):
        raise ValueError(f"--config: {path} needs a `config` table of field = value (see purerl/presets/*.toml)")
    return Preset(path.stem, body.get("algo"), body["config"], body.get("description", ""), body.get("reaches", ""),
                  f"--config {path}")


def load(name: str) -> Preset:
    path = HERE / f"{name}.toml"
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(name, names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"--preset: unknown preset {name!r}.{hint} Available: {', '.join(names())}")
    preset = load_file(path)
    return dataclasses.replace(preset, name=name, source=f"preset {name}")
