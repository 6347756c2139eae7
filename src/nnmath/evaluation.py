"""Evaluation: the cost and the task's metrics of a model on a whole data set, as ``fit`` logs them.

``evaluate_arrays`` is the clear version: the engine's forward pass, then the cost (through the
fused output pair where there is one) and accuracy, or MSE, MAE and R². ``evaluate_fast`` computes
the same numbers through a ``FastStep``'s buffers, in chunks, with no allocation per layer; it is
what ``fit`` uses for NumPy models (``epoch_evaluator``), and tests tie the two together.

With sample weights the cost and every metric are weighted means (Σ_s w_s (·) / Σ_s w_s); with a
penalty the cost includes k P(W), k taken from the weight sum of the rows evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnmath.fast import FastStep
from nnmath.losses import Loss, cost, fuse
from nnmath.metrics import classification_metrics, regression_metrics
from nnmath.network import MLP
from nnmath.penalties import Penalty, penalty_scale
from nnmath.settings import CLASSIFICATION

Array = Any
Logs = dict[str, float]
Evaluator = Callable[..., Logs]
"""(X, T, labels[, w]) -> {"loss": …, "accuracy": …} or {"loss", "mse", "mae", "r2"}."""

EVALUATION_ROWS = 1024
"""The rows per chunk of the fast evaluation (its buffers hold this many)."""


def task_logs(
    value: float,
    A: Array,
    T: Array,
    task: str,
    labels: Array | None,
    sample_weight: Array | None = None,
) -> Logs:
    """The cost and the task's metrics of the outputs A: accuracy, or MSE, MAE and R²."""
    logs = {"loss": float(value)}
    if task == CLASSIFICATION:
        logs.update(classification_metrics(labels, A, sample_weight))
    else:
        logs.update(regression_metrics(T, A, sample_weight))
    return logs


def evaluate_arrays(
    model: MLP,
    X: Array,
    T: Array,
    loss: Loss,
    task: str,
    labels: Array | None = None,
    sample_weight: Array | None = None,
    penalty: Penalty | None = None,
) -> Logs:
    """The cost and the task's metrics of ``model`` on (X, T), one forward pass, no input check.

    T is the target matrix (S, n_out); ``labels`` the class indices (classification only). With
    ``sample_weight`` the cost and the metrics are weighted means; with ``penalty`` the cost
    includes k P(W) (k from the weight sum of these rows).
    """
    Z, _ = model.forward(X, stop=len(model.layers) - 1, check=False)
    A, _ = model.layers[-1].forward(Z)
    fused = fuse(model.output, loss)
    if fused is not None:
        value = float(cost(fused, Z, T, sample_weight))
    else:
        value = float(cost(loss, A, T, sample_weight))
    if penalty is not None:
        total = float(len(X)) if sample_weight is None else float(np.sum(sample_weight))
        value += penalty_scale(penalty, total) * penalty.value([L.W for L in model.linears])
    return task_logs(value, A, T, task, labels, sample_weight)


def evaluate_fast(
    step: FastStep,
    X: Array,
    T: Array,
    task: str,
    labels: Array | None = None,
    sample_weight: Array | None = None,
) -> Logs:
    """:func:`evaluate_arrays` through a ``FastStep``'s buffers (``FastStep.evaluate``, in chunks
    of its batch size): the same cost and metrics, with no engine forward pass."""
    value, A = step.evaluate(X, T if labels is None else labels, sample_weight)
    return task_logs(value, A, T, task, labels, sample_weight)


def epoch_evaluator(
    model: MLP, loss: Loss, task: str, n_rows: int, penalty: Penalty | None = None
) -> Evaluator:
    """(X, T, labels[, w]) -> the logs of :func:`evaluate_arrays`, as ``fit`` computes them.

    A NumPy model is evaluated through its own ``FastStep`` (:func:`evaluate_fast`, in chunks of
    up to ``EVALUATION_ROWS`` rows); any other (PyTorch, CuPy, … arrays), and a network with batch
    norm or dropout (which the fast step does not compute), through the engine, in evaluation
    mode (running statistics, no dropout).
    """
    if not isinstance(model.linears[0].W, np.ndarray) or model.mode_dependent:
        return lambda X, T, labels, w=None: evaluate_arrays(
            model, X, T, loss, task, labels, w, penalty
        )
    step = FastStep(model, loss, max(1, min(n_rows, EVALUATION_ROWS)), penalty=penalty)
    return lambda X, T, labels, w=None: evaluate_fast(step, X, T, task, labels, w)
