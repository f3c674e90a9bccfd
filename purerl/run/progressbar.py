"""The live progress bar of a run (the host side of the in-jit progress callback)."""

from __future__ import annotations

import sys
import threading
from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """Host side of the in-jit progress callback: a tqdm bar over env steps (per seed) with the rate, ETA
    and, for one seed, the latest episode return. The complete bar (100%) is drawn once, by :meth:`close`:
    the last report and a return shown after it only update what that line will say."""

    def __init__(self, seeds: int, initial_updates: int = 0, file: Any = None):
        self.seeds = seeds
        self.file = file
        self._lock = threading.Lock()
        self._done = 0
        self._initial = initial_updates
        self.steps_per_log_point = 0
        self.bar = None

    def start(self, num_log_points: int, steps_per_log_point: int) -> None:
        """Open the bar (after compilation, so its rate is the run's)."""
        from tqdm.auto import tqdm

        self.steps_per_log_point = steps_per_log_point
        self._done = self._initial * steps_per_log_point
        desc = "train" if self.seeds == 1 else f"train ({self.seeds} seeds)"
        self.bar = tqdm(total=num_log_points * steps_per_log_point, initial=self._done, unit="step", unit_scale=True,
                        dynamic_ncols=True, desc=desc, file=self.file or sys.stderr)

    def __call__(self, payload: dict) -> None:
        if self.bar is None:  # a report before start(): nothing to draw yet
            return
        steps = int(payload["update"]) * self.steps_per_log_point
        with self._lock:
            if steps > self._done:
                if steps >= self.bar.total:   # the last report: close() draws the complete bar
                    self.bar.n = self.bar.total
                else:
                    self.bar.update(steps - self._done)
                self._done = steps
            if "episode_return" in payload:
                ret = float(payload["episode_return"])
                if ret == ret:
                    self.bar.set_postfix(ret=f"{ret:.1f}", refresh=False)

    def show_return(self, value: float) -> None:
        """Show a return computed on the host (the mean over seeds after a chunk)."""
        if self.bar is not None and value == value:
            with self._lock:
                self.bar.set_postfix(ret=f"{value:.1f}", refresh=self.bar.n < self.bar.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
