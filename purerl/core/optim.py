"""The one optimiser path every algorithm uses.

:func:`make_optimizer` builds an optax transformation: global-norm clipping (optional), then Adam, RAdam or RMSProp
with its step size held in the optimiser state (``optax.inject_hyperparams``), applied leaf by leaf. (Applying
it to one flat vector of every parameter, ``optax.flatten``, was no faster for CartPole's and Pendulum's
networks on a CPU, twice as slow for MinAtar's 400-input MLP and up to ten times for a CNN, whose gradients XLA
then computed in a slow layout.)

The step size is set explicitly where an algorithm anneals it (:func:`annealed`: :func:`set_learning_rate`
to :func:`linear_decay` of the update counter), so a schedule never depends on how many optimiser steps were
skipped; per-group step sizes (SAC's actor, critics and temperature) come from :func:`by_group`.

    tx = make_optimizer("adam", cfg.learning_rate, max_grad_norm=cfg.max_grad_norm, eps=1e-5)
    opt_state = tx.init(params)
    params, opt_state = apply(tx, params, grads, opt_state)
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax

__all__ = ["OPTIMIZERS", "annealed", "apply", "by_group", "learning_rate", "linear_decay", "make_optimizer",
           "set_learning_rate"]

OPTIMIZERS = ("adam", "radam", "rmsprop")


def make_optimizer(kind: str = "adam", learning_rate: Any = 3e-4, *, max_grad_norm: Any = None,
                   eps: Any = 1e-8, decay: Any = 0.99) -> optax.GradientTransformation:
    """Clip by global norm (``max_grad_norm``; None: no clipping), then Adam (``eps``), RAdam (rectified Adam,
    Liu et al., 2020; ``eps``) or RMSProp (``decay``, ``eps``) with step size ``learning_rate``. Numeric arguments
    may be traced (swept with ``jax.vmap``)."""
    if kind == "adam":
        scale = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate, eps=eps)
    elif kind == "radam":
        scale = optax.inject_hyperparams(optax.radam)(learning_rate=learning_rate, eps=eps)
    elif kind == "rmsprop":
        scale = optax.inject_hyperparams(optax.rmsprop)(learning_rate=learning_rate, decay=decay, eps=eps)
    else:
        raise ValueError(f"unknown optimizer {kind!r}: use one of {OPTIMIZERS}")
    clip = [] if max_grad_norm is None else [optax.clip_by_global_norm(max_grad_norm)]
    return optax.chain(*clip, scale)


def by_group(**groups: optax.GradientTransformation) -> optax.GradientTransformation:
    """One optimiser per top-level key of the parameter dict, e.g.
    ``by_group(actor=make_optimizer(...), critic=make_optimizer(...))`` for ``{"actor": ..., "critic": ...}``."""
    return optax.multi_transform(groups, lambda params: {name: name for name in params})


def apply(tx: optax.GradientTransformation, params: Any, grads: Any, opt_state: Any) -> tuple[Any, Any]:
    """One optimiser step: ``(new_params, new_opt_state)``."""
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def set_learning_rate(opt_state: Any, value: Any) -> Any:
    """``opt_state`` with every step size held in it replaced by ``value``."""
    return optax.tree_utils.tree_set(opt_state, learning_rate=jnp.asarray(value, jnp.float32))


def learning_rate(opt_state: Any) -> Any:
    """The step size held in ``opt_state`` (the first, for grouped optimisers)."""
    return optax.tree_utils.tree_get(opt_state, "learning_rate")


def linear_decay(value: Any, step: Any, num_steps: int) -> Any:
    """``value`` decayed linearly to 0 over the run's ``num_steps`` optimiser steps: ``value * (1 - step /
    num_steps)``."""
    return value * (1.0 - jnp.asarray(step, jnp.float32) / num_steps)


def annealed(opt_state: Any, value: Any, step: Any, num_steps: int, anneal: bool) -> tuple[Any, Any]:
    """``(opt_state, learning_rate)`` for optimiser step ``step`` of ``num_steps``: with ``anneal``, the step size
    :func:`linear_decay` ``(value, step, num_steps)`` set in ``opt_state``; without, ``value`` and ``opt_state``
    as they are (it holds ``value`` from ``make_optimizer``)."""
    if not anneal:
        return opt_state, value
    lr = linear_decay(value, step, num_steps)
    return set_learning_rate(opt_state, lr), lr
