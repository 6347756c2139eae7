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

from nnmath.callbacks import Callback
from nnmath.losses import Loss
from nnmath.network import MLP
from nnmath.optimizers import Optimizer
from nnmath.penalties import L2
from nnmath.training import History, fit

Array = Any


def penalty(alpha: float) -> L2 | None:
    """scikit-learn's L2 term: (α / (2 Σ_batch w)) Σ_l ‖W⁽ˡ⁾‖², none when α = 0."""
    return L2(alpha, per_sample=True) if alpha else None


def cost_and_gradients(
    model: MLP, X: Array, T: Array, loss: Loss, alpha: float, sample_weight: Array | None
) -> tuple[float, list[Array]]:
    """C and [∂C/∂W1, ∂C/∂b1, …] on one batch (X, T), as defined above; X is not checked."""
    value, grads = model.loss_and_gradients(
        X, T, loss, check=False, sample_weight=sample_weight, penalty=penalty(alpha)
    )
    return value, grads.flat()


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
    dtype: str,
    seed: int = 0,
) -> History:
    """``nnmath.training.fit`` with scikit-learn's cost: mini-batches in ``order``'s row order
    (anything with ``permutation(S)``), the running mean of the batch costs logged as ``loss``,
    computed in ``dtype`` (written back into the model, in its own dtype, after every epoch);
    ``seed`` seeds dropout's masks."""
    return fit(
        model,
        X,
        T,
        loss=loss,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        rng=order,
        seed=seed,
        schedule=schedule,
        callbacks=callbacks,
        task=task,
        train_metrics="loss",  # loss_curve_ is all the estimator reads of the training metrics
        progress=False,
        sample_weight=sample_weight,
        penalty=penalty(alpha),
        dtype=dtype,
    )
