"""Optional metric sinks next to the always-written CSV/JSON: TensorBoard event files and Weights & Biases.

A logger gets each chunk's metrics (numpy arrays ``[seed, log point]``) as the run goes, with the env steps
per seed (the ``env_steps`` metric) as the x-axis. TensorBoard writes one event directory per seed
(``OUT/tensorboard/seed_K``) so its UI overlays the seeds; W&B logs the mean over seeds of each metric
(and, for several seeds, ``name/seed_K`` per seed) to one W&B run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TensorBoardLogger", "WandbLogger"]


def _steps(metrics: dict, first_update: int) -> np.ndarray:
    if "env_steps" in metrics:
        return np.asarray(metrics["env_steps"])[0].astype(np.int64)
    n = np.asarray(next(iter(metrics.values()))).shape[1]
    return np.arange(first_update, first_update + n, dtype=np.int64)


class TensorBoardLogger:
    """TensorBoard event files through ``tensorboardX`` (``pip install 'purerl[tensorboard]'``)."""

    def __init__(self, logdir: str | Path | None = None):
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ValueError("--tensorboard needs the tensorboardX package: pip install 'purerl[tensorboard]'") from None
        self.logdir = None if logdir is None else Path(logdir)
        self.writers: list[Any] = []

    def open(self, out: Path, algo: str, cfg: Any, seeds: int) -> None:
        from tensorboardX import SummaryWriter

        root = self.logdir or Path(out) / "tensorboard"
        self.writers = [SummaryWriter(str(root / f"seed_{s}")) for s in range(seeds)]
        for w in self.writers:
            w.add_text("config", f"{algo} {cfg}", 0)

    def write(self, metrics: dict, first_update: int) -> None:
        steps = _steps(metrics, first_update)
        for name, values in sorted(metrics.items()):
            values = np.asarray(values, dtype=np.float64)
            for s, w in enumerate(self.writers):
                for i, step in enumerate(steps):
                    if np.isfinite(values[s, i]):
                        w.add_scalar(name, float(values[s, i]), int(step))
        for w in self.writers:
            w.flush()

    def close(self) -> None:
        for w in self.writers:
            w.close()
        self.writers = []


class WandbLogger:
    """Weights & Biases (``pip install wandb``; log in first). ``project``/``entity`` as W&B names them."""

    def __init__(self, project: str, entity: str | None = None, name: str | None = None):
        try:
            import wandb
        except ImportError:
            raise ValueError("--wandb needs the wandb package: pip install wandb (and `wandb login`)") from None
        self.wandb = wandb
        self.project, self.entity, self.name = project, entity, name
        self.run = None

    def open(self, out: Path, algo: str, cfg: Any, seeds: int) -> None:
        from purerl.config import config_to_dict

        self.run = self.wandb.init(project=self.project, entity=self.entity, name=self.name or Path(out).name,
                                   dir=str(out), config={"algo": algo, "seeds": seeds, **config_to_dict(cfg)},
                                   resume="allow")

    def write(self, metrics: dict, first_update: int) -> None:
        steps = _steps(metrics, first_update)
        for i, step in enumerate(steps):
            row = {}
            for name, values in metrics.items():
                col = np.asarray(values, dtype=np.float64)[:, i]
                if np.isfinite(col).any():
                    row[name] = float(np.nanmean(col))
                if col.shape[0] > 1:
                    row.update({f"{name}/seed_{s}": float(v) for s, v in enumerate(col) if np.isfinite(v)})
            self.run.log(row, step=int(step))

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
