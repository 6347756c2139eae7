"""The estimators' two doors into nnmath's engine: ``fit`` for the stochastic solvers and the cost
with its gradient for L-BFGS.

The cost is scikit-learn's, per batch b of weighted samples (weights w_s, 1 when none are given):

    C_b = (Σ_{s∈b} w_s ℓ(a_s, t_s)) / Σ_{s∈b} w_s  +  (α / (2 Σ_{s∈b} w_s)) Σ_l ‖W⁽ˡ⁾‖²_F

(biases are not penalised), so ∂C_b/∂W⁽ˡ⁾ gains α W⁽ˡ⁾ / Σ_{s∈b} w_s. L-BFGS takes the whole
training set as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnmath.callbacks import Callback
from nnmath.losses import Loss
from nnmath.network import MLP
from nnmath.optimizers import Optimizer
from nnmath.training import History, fit

Array = Any


def cost_and_gradients(
    model: MLP, X: Array, T: Array, loss: Loss, alpha: float, sample_weight: Array | None
) -> tuple[float, list[Array]]:
    """C and [∂C/∂W1, ∂C/∂b1, …] on one batch (X, T), as defined above; X is not checked."""
    if sample_weight is not None:
        raise NotImplementedError("sample_weight waits for the engine's weighted cost")
    value, grads = model.loss_and_gradients(X, T, loss, check=False)
    flat = grads.flat()
    if alpha:
        S = len(X)
        for index, linear in enumerate(model.linears):
            flat[2 * index] = flat[2 * index] + (alpha / S) * linear.W
            value += 0.5 * alpha / S * float(np.sum(linear.W * linear.W))
    return value, flat


def train(
    model: MLP,
    X: Array,
    T: Array,
    *,
    loss: Loss,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int,
    order: Any,
    schedule: str | None,
    callbacks: Sequence[Callback],
    task: str,
    alpha: float,
    sample_weight: Array | None,
) -> History:
    """``nnmath.training.fit`` with scikit-learn's cost: mini-batches in ``order``'s row order
    (anything with ``permutation(S)``), the running mean of the batch costs logged as ``loss``."""
    if sample_weight is not None:
        raise NotImplementedError("sample_weight waits for the engine's weighted cost")
    return fit(
        model,
        X,
        T,
        loss=loss,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        rng=order,
        schedule=schedule,
        callbacks=callbacks,
        task=task,
        train_metrics="running",
        progress=False,
        gradients=lambda Xb, Tb: cost_and_gradients(model, Xb, Tb, loss, alpha, None),
    )
