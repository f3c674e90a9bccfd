"""Running mean/variance, updated with whole batches (Chan et al.'s parallel algorithm)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningMeanStd:
    mean: jax.Array
    var: jax.Array
    count: jax.Array  # float32 so it can grow past int32 with large batches

    @staticmethod
    def create(shape: tuple[int, ...] = ()) -> "RunningMeanStd":
        # A tiny prior count keeps the first normalisation finite without biasing later statistics.
        return RunningMeanStd(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                              jnp.asarray(1e-4, jnp.float32))

    def update(self, batch: jax.Array) -> "RunningMeanStd":
        """Fold in ``batch`` (leading axis = samples)."""
        batch = batch.astype(jnp.float32)
        b_mean = batch.mean(axis=0)
        b_var = batch.var(axis=0)
        b_count = jnp.asarray(batch.shape[0], jnp.float32)
        delta = b_mean - self.mean
        tot = self.count + b_count
        mean = self.mean + delta * b_count / tot
        m2 = self.var * self.count + b_var * b_count + jnp.square(delta) * self.count * b_count / tot
        return RunningMeanStd(mean, m2 / tot, tot)

    @property
    def std(self) -> jax.Array:
        return jnp.sqrt(self.var + 1e-8)

    def normalize(self, x: jax.Array, clip: float = 10.0) -> jax.Array:
        return jnp.clip((x - self.mean) / self.std, -clip, clip)
