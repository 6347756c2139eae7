"""Divergence: the rule that stops a run whose steps overshoot, with advice that fixes it.

A run diverges when, measured against its initial loss C₀ (the training cost on the weights before
the first step, ``History.initial_loss``):

- a batch's cost is NaN or ±Inf, or
- a batch's cost explodes: C_b > ``EXPLOSION_FACTOR`` · C₀ (a thousand times) and
  C_b > ``EXPLOSION_FLOOR`` (100, so that a tiny C₀ cannot make an ordinary cost look explosive), or
- after an epoch, the logged loss or validation loss is NaN, Inf or explodes by the same rule, or
  any parameter is NaN or Inf.

The first batch that breaks the rule raises a :class:`~nnmath.errors.DivergenceError` at once,
naming the epoch, the batch, the loss and a smaller finite learning rate to try (η/10), with the
other remedies (clipping, standardising the inputs). ``fit`` then returns nothing and the command
line saves no model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnmath.errors import DivergenceError

Array = Any

EXPLOSION_FACTOR = 1e3
"""A batch cost above this multiple of the initial loss (and above EXPLOSION_FLOOR) diverged."""
EXPLOSION_FLOOR = 1e2
"""Costs up to this are never called explosive, whatever the initial loss."""


def explodes(value: float, initial_loss: float | None) -> bool:
    """NaN or Inf, or above both EXPLOSION_FACTOR · C₀ and EXPLOSION_FLOOR."""
    if not math.isfinite(value):
        return True
    if initial_loss is None or not math.isfinite(initial_loss):
        return False
    return value > EXPLOSION_FACTOR * abs(initial_loss) and value > EXPLOSION_FLOOR


def divergence_error(
    where: str, what: str, value: float, learning_rate: float, initial_loss: float | None
) -> DivergenceError:
    """The message: where it happened, what went wrong, and what to try."""
    grew = ""
    if math.isfinite(value) and initial_loss is not None:
        grew = f", over {EXPLOSION_FACTOR:g} times its starting value {initial_loss:.4g}"
    return DivergenceError(
        f"training diverged at {where}: {what} is {value:.4g}{grew}. Lower the learning rate "
        f"(it is {learning_rate:g}; try {learning_rate / 10:g}), clip the gradients "
        "(clip_norm=1.0, or --clip-norm 1.0 on the command line), or standardise the inputs "
        "(zero mean, unit variance per feature)"
    )


class DivergenceWatch:
    """Checks each batch's cost and each epoch's logs and parameters against the rule above."""

    def __init__(self, initial_loss: float | None) -> None:
        self.initial_loss = initial_loss

    def check_batch(
        self, epoch: int, batch: int, n_batches: int, value: float, learning_rate: float
    ) -> None:
        """DivergenceError when the batch's cost is NaN/Inf or explodes against the initial loss."""
        if explodes(value, self.initial_loss):
            where = f"epoch {epoch}, batch {batch} of {n_batches}"
            raise divergence_error(where, "the loss", value, learning_rate, self.initial_loss)

    def check_epoch(
        self,
        epoch: int,
        logs: dict[str, float],
        params: Sequence[Array],
        learning_rate: float,
    ) -> None:
        """DivergenceError when the epoch's ``loss`` or ``val_loss`` explodes, or a parameter holds
        NaN or Inf."""
        where = f"the end of epoch {epoch}"
        for key in ("loss", "val_loss"):
            if key in logs and explodes(logs[key], self.initial_loss):
                raise divergence_error(
                    where,
                    f"the {key.replace('_', ' ')}",
                    logs[key],
                    learning_rate,
                    self.initial_loss,
                )
        for index, p in enumerate(params):
            if not bool(np.isfinite(p).all()):
                name = f"{'Wb'[index % 2]}{index // 2 + 1}"
                raise divergence_error(
                    where, f"a parameter of {name}", math.nan, learning_rate, self.initial_loss
                )
