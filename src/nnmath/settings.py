"""The settings of a training run, checked before any work is done.

Each bad value is refused with a :class:`~nnmath.errors.SpecError` (a ValueError) that names the
setting, the value and what is allowed: a learning rate finite and > 0, whole numbers of epochs
from 1 to ``MAX_EPOCHS``, batch sizes ≥ 1, seeds that are whole numbers ≥ 0, and so on. Names
(optimizer, schedule, loss) become objects here, with the defaults ``fit`` documents.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from nnmath.errors import SpecError
from nnmath.losses import Loss, get_loss
from nnmath.optimizers import Optimizer, make_optimizer
from nnmath.schedules import Schedule, make_schedule

CLASSIFICATION = "classification"
REGRESSION = "regression"
MAX_EPOCHS = 1_000_000
"""More epochs than any run needs; a larger number is a typo (1e20 would run forever)."""
KERNELS = ("auto", "numpy", "numba")
DTYPES = ("auto", "float32", "float64")
TRAIN_METRICS = ("exact", "running", "loss")
"""How ``fit`` logs the training metrics: the whole training set on the end-of-epoch weights
("exact"), the running means of the epoch's batch costs and scores ("running"), or of the batch
costs alone ("loss": no per-batch argmax or error sums, for callers that read only the loss,
as the scikit-learn estimators do)."""


def _is_whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _whole(name: str, value: Any, low: int, high: int | None = None) -> None:
    if not _is_whole(value) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high:,}" if high is not None else f"≥ {low}"
        raise SpecError(f"{name} must be a whole number {bound}, got {value!r}")


def check_learning_rate(value: Any) -> float:
    """η as a float: finite and > 0, else a SpecError that names a rate to try."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(f"the learning rate must be a number > 0, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise SpecError(
            f"the learning rate must be finite and > 0, got {value!r}; typical rates are "
            "1e-3 (adam) to 1e-1 (sgd)"
        )
    return float(value)


def check_settings(
    *,
    epochs: Any = None,
    batch_size: Any = None,
    learning_rate: Any = None,
    seed: Any = None,
    clip_norm: Any = None,
    patience: Any = None,
    kernel: Any = None,
    train_metrics: Any = None,
    dtype: Any = None,
) -> None:
    """Refuse any given setting outside its range (None: not given, nothing to check)."""
    if epochs is not None:
        _whole("epochs", epochs, 1, MAX_EPOCHS)
    if batch_size is not None:
        _whole("batch_size", batch_size, 1)
    if learning_rate is not None:
        check_learning_rate(learning_rate)
    if seed is not None:
        _whole("the seed", seed, 0)
    if clip_norm is not None and not (
        isinstance(clip_norm, numbers.Real) and math.isfinite(clip_norm) and clip_norm > 0
    ):
        raise SpecError(f"clip_norm must be finite and > 0, got {clip_norm!r}")
    if patience is not None:
        _whole("patience", patience, 1)
    if kernel is not None and kernel not in KERNELS:
        raise SpecError(f"kernel must be 'numpy', 'numba' or 'auto', got {kernel!r}")
    if train_metrics is not None and train_metrics not in TRAIN_METRICS:
        raise SpecError(
            f"train_metrics must be 'exact' (the whole training set evaluated after each epoch), "
            f"'running' (the means of the epoch's batch costs and scores) or 'loss' (the mean of "
            f"the batch costs alone), got {train_metrics!r}"
        )
    if dtype is not None and dtype not in DTYPES:
        raise SpecError(f"dtype must be 'auto', 'float32' or 'float64', got {dtype!r}")


def infer_task(y: Any, output: str | None = None) -> str:
    """Classification for labels of shape (S,) that are integers or feed a softmax output layer;
    regression for anything else."""
    y = np.asarray(y)
    labels = y.ndim == 1 and (np.issubdtype(y.dtype, np.integer) or output == "softmax")
    return CLASSIFICATION if labels else REGRESSION


def default_loss_name(output: str, task: str) -> str:
    """softmax → cross-entropy, sigmoid → binary cross-entropy (classification); else mse."""
    if task == CLASSIFICATION and output == "softmax":
        return "cross-entropy"
    if task == CLASSIFICATION and output == "sigmoid":
        return "binary-cross-entropy"
    return "mse"


def as_loss(loss: Loss | str | None, output: str, task: str) -> Loss:
    """The loss object: given, named, or the default for the output layer and task."""
    if loss is None:
        loss = default_loss_name(output, task)
    return get_loss(loss) if isinstance(loss, str) else loss


def as_optimizer(
    optimizer: Optimizer | str | None, learning_rate: float | None, saved: dict[str, Any] | None
) -> Optimizer:
    """The optimizer: given (its rate replaced by ``learning_rate`` when that is given), named,
    rebuilt from a checkpoint's hyperparameters (``saved``), or Adam; SGD's default rate is 0.01."""
    if learning_rate is not None:
        check_learning_rate(learning_rate)
    if isinstance(optimizer, Optimizer):
        if learning_rate is not None:
            optimizer.learning_rate = optimizer.initial_learning_rate = float(learning_rate)
    elif optimizer is None and saved is not None:
        settings = dict(saved)
        optimizer = make_optimizer(settings.pop("name"), **settings)
    else:
        name = "adam" if optimizer is None else optimizer
        if learning_rate is None and name in ("sgd", "momentum", "nesterov"):
            learning_rate = 0.01
        optimizer = make_optimizer(
            name, **({} if learning_rate is None else {"learning_rate": learning_rate})
        )
    check_learning_rate(optimizer.learning_rate)
    return optimizer


def as_schedule(
    schedule: Schedule | str | None, learning_rate: float, epochs: int
) -> Schedule | None:
    """A schedule over epochs; names get defaults that fit ``epochs`` (cosine to 0 at the end)."""
    if schedule is None or callable(schedule):
        return schedule
    options: dict[str, dict[str, Any]] = {
        "constant": {},
        "cosine": {"total_steps": max(1, epochs)},
        "step": {"step_size": max(1, epochs // 3), "gamma": 0.1},
        "exponential": {"gamma": 0.01 ** (1.0 / max(1, epochs))},  # lr/100 after all epochs
    }
    if schedule not in options:
        raise SpecError(f"unknown schedule {schedule!r}; choose one of: {', '.join(options)}")
    return make_schedule(schedule, learning_rate, **options[schedule])
