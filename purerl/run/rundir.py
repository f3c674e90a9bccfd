"""A run directory: what ``purerl train`` writes and ``purerl eval/render/plot`` and ``--resume`` read.

    OUT/config.json     {"algo", "seeds", "seed", "config": {field: value}}  (enough to rebuild the trainer)
    OUT/metrics.json    {name: [seed][log point]}   and the same as OUT/metrics.csv
    OUT/summary.json    final/eval returns, compile and run times
    OUT/checkpoints/N/  the whole train state after N updates (orbax; the two newest are kept, the last one is
                        the final state), vmapped over seeds

:func:`load` rebuilds the algorithm's trainer from ``config.json`` and restores a checkpoint into it, so
everything downstream (evaluation with the saved normaliser statistics, rendering, resuming) sees exactly
the trained state.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ALGOS", "Run", "algo_module", "config_from_dict", "config_to_dict", "load", "read_config",
           "read_metrics", "write_config"]

ALGOS = ("a2c", "a3c", "ddpg", "ppo", "reinforce", "sac", "td3", "trpo")


def algo_module(name: str):
    """The module ``purerl.<name>`` of an algorithm (``ValueError`` naming the choices otherwise)."""
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {name!r}; available: {', '.join(ALGOS)}")
    return importlib.import_module(f"purerl.{name}")


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.ndarray, np.generic)):
        return x.tolist()
    if isinstance(x, tuple):
        return [_jsonable(v) for v in x]
    return x


def config_to_dict(cfg: Any) -> dict:
    return {f.name: _jsonable(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def config_from_dict(config_cls: type, values: dict, source: str = "config") -> Any:
    """``config_cls(**values)`` with JSON/TOML lists turned back into tuples; unknown fields are a
    ``ValueError`` naming them (a config written for another algorithm, or by a newer purerl)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown config field(s) {', '.join(unknown)} for {config_cls.__module__}."
                         f"{config_cls.__name__}; fields: {', '.join(fields)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return config_cls(**kwargs)


def write_config(out: Path, algo: str, cfg: Any, seeds: int, seed: int, extra: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    body = {"algo": algo, "seeds": seeds, "seed": seed, "config": config_to_dict(cfg), **(extra or {})}
    (out / "config.json").write_text(json.dumps(body, indent=2))


def read_config(path: str | Path) -> dict:
    path = Path(path)
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{path} is not a purerl run directory (no config.json)")
    return json.loads(file.read_text())


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """The run's metrics as arrays ``[seed, log point]``."""
    file = Path(path) / "metrics.json"
    if not file.is_file():
        raise ValueError(f"{path} has no metrics.json (a run that was interrupted before its first log point?)")
    return {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(file.read_text()).items()}


@dataclasses.dataclass
class Run:
    """A loaded run directory. ``state`` has a leading seed axis; ``seed_state(i)`` takes one seed's."""

    path: Path
    algo: str
    module: Any
    config: Any
    seeds: int
    seed: int
    trainer: Any
    state: Any
    step: int
    meta: dict

    def seed_state(self, i: int = 0) -> Any:
        import jax

        return jax.tree.map(lambda x: x[i], self.state)


def train_keys(seed: int, seeds: int):
    """The per-seed keys of a run (``purerl train --seed S --seeds K``)."""
    import jax

    return jax.random.split(jax.random.key(seed), seeds)


def eval_keys(seed: int, seeds: int):
    """The per-seed keys of a run's final evaluation (``purerl train`` prints and saves it)."""
    import jax

    return jax.random.split(jax.random.key(seed + 1), seeds)


def load(path: str | Path, step: int | None = None, **make_kwargs: Any) -> Run:
    """Rebuild the trainer of the run at ``path`` and restore checkpoint ``step`` (default the newest)."""
    import jax

    from purerl.run import checkpoint as ckpt

    path = Path(path)
    body = read_config(path)
    mod = algo_module(body["algo"])
    cfg = config_from_dict(mod.Config, body["config"], source=str(path / "config.json"))
    trainer = mod.make(cfg, **make_kwargs)
    template = jax.eval_shape(jax.vmap(trainer.init), train_keys(body["seed"], body["seeds"]))
    if ckpt.latest_step(path / "checkpoints") is None:
        raise ValueError(f"{path} holds no checkpoint of its train state (was it written by an older purerl, or "
                         f"interrupted before its first checkpoint?)")
    state, meta = ckpt.restore(path / "checkpoints", template, step)
    return Run(path, body["algo"], mod, cfg, body["seeds"], body["seed"], trainer, state,
               int(meta.get("updates_done", -1)), meta)
