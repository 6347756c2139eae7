"""Training: mini-batch gradient descent with validation, early stopping, checkpoints and callbacks.

One epoch is one pass over the training rows in a fresh random order (``datasets.batches``, drawn
from the explicit generator ``rng``). Each mini-batch (X_b, T_b) takes one step:

    C, g = gradients(X_b, T_b)       C = (1/|b|) Σ_s ℓ(a_s, t_s) and g = ∂C/∂θ for θ in parameters()
    g ← g · min(1, c / ‖g‖)          only with clip_norm = c (‖g‖ the norm of all gradients at once)
    θ ← optimizer.step(θ, g)         in place

``gradients`` is one swappable function (default :func:`default_gradients`: ``fast.FastStep`` for
float32 NumPy models, else :func:`backprop`, the engine's δ recursion), so a faster implementation
of the same math plugs in without touching the loop. On the default fast step, plain SGD is the
step's fused ``sgd_step`` (:func:`batch_update`). The inputs are validated once per ``fit``, never
per batch.

After each epoch the model is evaluated on the whole training set (``loss`` and ``accuracy`` for
classification; ``loss``, ``mse``, ``mae`` and ``r2`` for regression) and on the validation set
(the same names prefixed ``val_``): these are the values of the weights at the end of the epoch,
not running averages over batches. A float32 model is evaluated through a ``FastStep``'s buffers,
any other by the engine's forward pass (:func:`epoch_evaluator`). With ``train_metrics="running"``
the training set is not evaluated again: ``loss`` is then the running mean of the batch costs
(Σ_b |b| C_b / S over the epoch's batches, each C_b on the weights before its own step), as
scikit-learn and Keras report it, and no other training metric is logged (the validation metrics
stay exact). A NaN or Inf loss stops training at once with a
:class:`~nnmath.errors.DivergenceError` naming the epoch and batch.

Same seed, same data, same settings: bit-identical weights (float64 and float32 alike), and a run
resumed from the checkpoint of epoch k ends exactly where the uninterrupted run does.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nnmath.callbacks import Callback, ProgressBar
from nnmath.datasets import Dataset, Standardizer, batches, load_dataset, split_for_evaluation
from nnmath.errors import DataError, DivergenceError, ShapeError, SpecError
from nnmath.fast import FastStep
from nnmath.losses import Loss, as_sample_weight, as_targets, cost, fuse, get_loss
from nnmath.metrics import classification_metrics, regression_metrics
from nnmath.modelfile import TrainedModel, save_checkpoint
from nnmath.network import MLP
from nnmath.optimizers import SGD, Optimizer, clip_grad_norm, make_optimizer
from nnmath.penalties import Penalty, penalty_scale
from nnmath.schedules import Schedule, make_schedule
from nnmath.spec import NetworkSpec, parse_spec

Array = Any
GradientFn = Callable[..., tuple[float, list[Array]]]
"""(X_batch, T_batch) -> (cost C, [∂C/∂W1, ∂C/∂b1, ∂C/∂W2, …] in the order of parameters());
with sample weights ``fit`` calls it as (X_batch, T_batch, w_batch)."""

CLASSIFICATION = "classification"
REGRESSION = "regression"
TRAIN_METRICS = ("exact", "running")
"""How ``fit`` logs the training metrics: the whole training set on the end-of-epoch weights
("exact"), or the running mean of the epoch's batch costs ("running", the loss only)."""

# ---- the pieces fit is made of --------------------------------------------------------------------


def infer_task(y: Array, output: str | None = None) -> str:
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


def backprop(model: MLP, loss: Loss, penalty: Penalty | None = None) -> GradientFn:
    """The default gradient function: the engine's forward pass and δ recursion, unchecked.

    (X, T[, w]) -> (C, grads): C = Σ w ℓ / Σ w + k P(W) with the optional sample weights w and
    ``penalty`` (see ``MLP.loss_and_gradients``). It reads the model's current parameters on
    every call, so the optimizer's in-place updates are seen by the next batch.
    """

    def gradients(X: Array, T: Array, sample_weight: Array | None = None) -> tuple[float, list]:
        value, grads = model.loss_and_gradients(
            X, T, loss, check=False, sample_weight=sample_weight, penalty=penalty
        )
        return value, grads.flat()

    return gradients


def with_penalty(gradients: GradientFn, model: MLP, penalty: Penalty) -> GradientFn:
    """A gradient function plus a penalty: C + k P(W) and ∂C/∂W⁽ˡ⁾ + k ∂P/∂W⁽ˡ⁾ (biases as they are),
    k = 1, or 1/Σ w for a per-sample penalty; for a user's own ``gradients`` in ``fit``."""

    def penalised(X: Array, T: Array, *weights: Array) -> tuple[float, list[Array]]:
        value, grads = gradients(X, T, *weights)
        total = float(len(X)) if not weights else float(np.sum(weights[0]))
        k = penalty_scale(penalty, total)
        Ws = [linear.W for linear in model.linears]
        grads = list(grads)
        for index, W in enumerate(Ws):
            grads[2 * index] = grads[2 * index] + k * penalty.grad(W)  # [dW1, db1, dW2, …]
        return value + k * penalty.value(Ws), grads

    return penalised


def fast_step(
    model: MLP,
    loss: Loss,
    batch_size: int,
    kernel: str = "numpy",
    penalty: Penalty | None = None,
) -> FastStep | None:
    """``fast.FastStep`` (the same math in reused buffers, see docs/speed.md) for a float32 NumPy
    model, None for any other (float64 stays on the engine's own path)."""
    if isinstance(model.linears[0].W, np.ndarray) and model.dtype == np.float32:
        return FastStep(model, loss, batch_size, kernel=kernel, penalty=penalty)
    return None


def default_gradients(
    model: MLP, loss: Loss, batch_size: int, penalty: Penalty | None = None
) -> GradientFn:
    """:func:`fast_step`'s ``loss_and_gradients`` for a float32 NumPy model, else :func:`backprop`."""
    step = fast_step(model, loss, batch_size, penalty=penalty)
    return backprop(model, loss, penalty) if step is None else step.loss_and_gradients


def evaluate_arrays(
    model: MLP,
    X: Array,
    T: Array,
    loss: Loss,
    task: str,
    labels: Array | None = None,
    sample_weight: Array | None = None,
    penalty: Penalty | None = None,
) -> dict[str, float]:
    """The cost and the task's metrics of ``model`` on (X, T), one forward pass, no input check.

    T is the target matrix (S, n_out); ``labels`` the class indices (classification only). With
    ``sample_weight`` the cost and the metrics are weighted means; with ``penalty`` the cost
    includes k P(W) (k from the weight sum of these rows).
    """
    Z, _ = model.forward(X, stop=len(model.layers) - 1, check=False)
    A, _ = model.layers[-1].forward(Z)
    fused = fuse(model.output, loss)
    value = (
        cost(fused, Z, T, sample_weight) if fused is not None else cost(loss, A, T, sample_weight)
    )
    value = float(value)
    if penalty is not None:
        total = float(len(X)) if sample_weight is None else float(np.sum(sample_weight))
        value += penalty_scale(penalty, total) * penalty.value([L.W for L in model.linears])
    return _logs(value, A, T, task, labels, sample_weight)


def evaluate_fast(
    step: FastStep,
    X: Array,
    T: Array,
    task: str,
    labels: Array | None = None,
    sample_weight: Array | None = None,
) -> dict[str, float]:
    """:func:`evaluate_arrays` through a ``FastStep``'s buffers (``FastStep.evaluate``, in chunks
    of its batch size): the same cost and metrics, with no engine forward pass."""
    value, A = step.evaluate(X, T if labels is None else labels, sample_weight)
    return _logs(value, A, T, task, labels, sample_weight)


def _logs(
    value: float,
    A: Array,
    T: Array,
    task: str,
    labels: Array | None,
    sample_weight: Array | None = None,
) -> dict[str, float]:
    """The cost and the task's metrics of the outputs A: accuracy, or MSE, MAE and R²."""
    logs = {"loss": float(value)}
    if task == CLASSIFICATION:
        logs.update(classification_metrics(labels, A, sample_weight))
    else:
        logs.update(regression_metrics(T, A, sample_weight))
    return logs


def batch_update(
    gradients: GradientFn,
    optimizer: Optimizer,
    params: Sequence[Array],
    clip_norm: float | None = None,
    step: FastStep | None = None,
) -> Callable[..., float]:
    """(X_b, T_b[, w_b]) -> C: one batch's update of ``params`` in place, returning its cost.

    In general: C, g = gradients(X_b, T_b); g ← g · min(1, c / ‖g‖) with ``clip_norm`` c;
    θ ← optimizer.step(θ, g), not taken when C is NaN or Inf. Plain SGD (no momentum, no weight
    decay, no clipping) on a ``FastStep`` is the step's fused ``sgd_step``: the same update with η
    folded into the backward pass (float32 round-off apart), no optimizer call, and the update of a
    batch whose cost is not finite already made when C is returned.
    """
    plain_sgd = type(optimizer) is SGD and not optimizer.momentum and not optimizer.weight_decay
    if step is not None and plain_sgd and clip_norm is None:

        def fused(X: Array, T: Array, *weights: Array) -> float:
            optimizer.t += 1  # the optimizer's step count, as optimizer.step would keep it
            return step.sgd_step(X, T, optimizer.learning_rate, *weights)

        return fused

    def update(X: Array, T: Array, *weights: Array) -> float:
        value, grads = gradients(X, T, *weights)
        if math.isfinite(value):
            if clip_norm is not None:
                clip_grad_norm(grads, clip_norm)
            optimizer.step(params, grads)
        return value

    return update


EVALUATION_ROWS = 1024
"""The rows per chunk of the fast per-epoch evaluation (its buffers hold this many)."""


def epoch_evaluator(
    model: MLP, loss: Loss, task: str, n_rows: int, penalty: Penalty | None = None
) -> Callable[..., dict[str, float]]:
    """(X, T, labels[, w]) -> the logs of :func:`evaluate_arrays`, as ``fit`` computes them.

    A float32 NumPy model is evaluated through its own ``FastStep`` (:func:`evaluate_fast`, in
    chunks of up to ``EVALUATION_ROWS`` rows); any other through the engine's forward pass, so
    float64 training logs exactly what it always has.
    """
    step = fast_step(model, loss, max(1, min(n_rows, EVALUATION_ROWS)), penalty=penalty)
    if step is None:
        return lambda X, T, labels, w=None: evaluate_arrays(
            model, X, T, loss, task, labels, w, penalty
        )
    return lambda X, T, labels, w=None: evaluate_fast(step, X, T, task, labels, w)


@dataclass
class History:
    """Per-epoch metrics as lists (``history["val_loss"][k]`` is epoch k + 1's), and how it ended.

    ``metrics`` always has ``epoch`` and ``learning_rate``; ``seconds`` holds each epoch's wall time
    (kept apart so that two identical runs have identical ``metrics``). ``best_epoch`` is the epoch
    whose weights early stopping restored (None without early stopping).
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.metrics.get("epoch", []))

    def append(self, logs: dict[str, float], seconds: float) -> None:
        for key, value in logs.items():
            self.metrics.setdefault(key, []).append(value)
        self.seconds.append(seconds)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.metrics:
            raise KeyError(f"no metric {key!r} in this history; it has {', '.join(self.metrics)}")
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    def last(self) -> dict[str, float]:
        """The metrics of the last epoch run."""
        return {key: values[-1] for key, values in self.metrics.items() if values}

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {key: list(values) for key, values in self.metrics.items()},
            "seconds": list(self.seconds),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(
            metrics={key: [float(v) for v in values] for key, values in data["metrics"].items()},
            seconds=[float(s) for s in data.get("seconds", [])],
            best_epoch=data.get("best_epoch"),
            stopped_early=bool(data.get("stopped_early", False)),
        )


def _improves(monitor: str) -> str:
    """Whether a larger value of ``monitor`` is better ("max": accuracy, r2) or worse ("min")."""
    return "max" if monitor.removeprefix("val_") in ("accuracy", "r2") else "min"


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    It keeps a copy of the weights of the best epoch; ``restore`` writes them back in place.
    """

    monitor: str
    patience: int
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = 0
    wait: int = 0
    best_weights: list[np.ndarray] | None = None

    def update(self, epoch: int, logs: dict[str, float], params: Sequence[Array]) -> bool:
        """Record epoch ``epoch``'s value; True when patience has run out."""
        value = logs[self.monitor]
        sign = 1.0 if _improves(self.monitor) == "max" else -1.0
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.best_weights = [np.array(p, copy=True) for p in params]
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, params: Sequence[Array]) -> None:
        if self.best_weights is not None:
            for p, best in zip(params, self.best_weights, strict=True):
                np.copyto(p, best)


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly: the checkpoint taken after epoch ``epoch``.

    ``weights`` are the parameters [W1, b1, …] at the end of that epoch (before any early-stopping
    restore), ``rng_state`` the shuffling generator's ``bit_generator.state``, ``stopped`` whether
    early stopping had already ended the run.
    """

    epoch: int
    weights: list[np.ndarray]
    optimizer: dict[str, Any]
    optimizer_state: dict[str, Any]
    rng_state: dict[str, Any]
    history: History
    early_stopping: EarlyStopping | None = None
    validation_rows: np.ndarray | None = None
    stopped: bool = False

    def to_parts(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-ready header, named arrays): how a checkpoint file stores this state."""
        arrays: dict[str, np.ndarray] = {}
        for i, w in enumerate(self.weights):
            arrays[f"state.weights.{i}"] = np.asarray(w)
        optimizer_scalars = {}
        for key, value in self.optimizer_state.items():
            if isinstance(value, np.ndarray):
                arrays[f"state.optimizer.{key}"] = value
            else:
                optimizer_scalars[key] = value
        early = None
        if self.early_stopping is not None:
            es = self.early_stopping
            early = {k.name: getattr(es, k.name) for k in fields(es) if k.name != "best_weights"}
            for i, w in enumerate(es.best_weights or []):
                arrays[f"state.best.{i}"] = np.asarray(w)
        if self.validation_rows is not None:
            arrays["state.validation_rows"] = np.asarray(self.validation_rows, dtype=np.int64)
        header = {
            "epoch": self.epoch,
            "optimizer": self.optimizer,
            "optimizer_scalars": optimizer_scalars,
            "rng_state": self.rng_state,
            "history": self.history.to_dict(),
            "early_stopping": early,
            "stopped": self.stopped,
        }
        return header, arrays

    @classmethod
    def from_parts(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrainingState:
        def numbered(prefix: str) -> list[np.ndarray]:
            count = sum(key.startswith(prefix) for key in arrays)
            return [arrays[f"{prefix}{i}"] for i in range(count)]

        optimizer_state: dict[str, Any] = dict(header["optimizer_scalars"])
        prefix = "state.optimizer."
        for key, value in arrays.items():
            if key.startswith(prefix):
                optimizer_state[key[len(prefix) :]] = value
        early = None
        if header["early_stopping"] is not None:
            early = EarlyStopping(**header["early_stopping"])
            early.best_weights = numbered("state.best.") or None
        return cls(
            epoch=int(header["epoch"]),
            weights=numbered("state.weights."),
            optimizer=header["optimizer"],
            optimizer_state=optimizer_state,
            rng_state=header["rng_state"],
            history=History.from_dict(header["history"]),
            early_stopping=early,
            validation_rows=arrays.get("state.validation_rows"),
            stopped=bool(header["stopped"]),
        )


def _validation_rows(
    n_samples: int, fraction: float, labels: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """round(fraction · S) row indices for validation, per class in proportion when labelled."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"validation_fraction must lie strictly between 0 and 1, got {fraction}")
    n_val = round(fraction * n_samples)
    if not 1 <= n_val <= n_samples - 1:
        raise DataError(
            f"a validation fraction of {fraction} of {n_samples} samples gives {n_val} rows; "
            "both parts need at least one: use more data or another fraction"
        )
    if labels is None:
        return np.sort(rng.permutation(n_samples)[:n_val])
    classes, counts = np.unique(labels, return_counts=True)
    take, remainders = np.divmod(counts * n_val, n_samples)  # largest-remainder rounding
    take[np.argsort(-remainders, kind="stable")[: n_val - take.sum()]] += 1
    rows = [
        rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(rows))


def _rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    """A Generator whose bit generator (PCG64, Philox, …) continues from ``state``."""
    bit_generator = getattr(np.random, str(state.get("bit_generator", "")), None)
    if bit_generator is None:
        raise DataError(f"cannot restore a random generator of kind {state.get('bit_generator')!r}")
    rng = np.random.Generator(bit_generator())
    rng.bit_generator.state = state
    return rng


def _as_schedule(
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


def _as_optimizer(
    optimizer: Optimizer | str | None, learning_rate: float | None, resume: TrainingState | None
) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if learning_rate is not None:
            optimizer.learning_rate = optimizer.initial_learning_rate = float(learning_rate)
        return optimizer
    if optimizer is None and resume is not None:
        settings = dict(resume.optimizer)
        return make_optimizer(settings.pop("name"), **settings)
    name = "adam" if optimizer is None else optimizer
    if learning_rate is None and name in ("sgd", "momentum", "nesterov"):
        learning_rate = 0.01
    return make_optimizer(
        name, **({} if learning_rate is None else {"learning_rate": learning_rate})
    )


def _divergence(epoch: int, batch: int, n_batches: int, value: float, lr: float) -> DivergenceError:
    where = f"epoch {epoch}, batch {batch} of {n_batches}" if batch else f"the end of epoch {epoch}"
    return DivergenceError(
        f"training diverged at {where}: the loss is {value}. Lower the learning rate (it is "
        f"{lr:g}; try {lr / 10:g}), clip the gradients (clip_norm=1.0, or --clip-norm 1.0 on the "
        "command line), or standardise the inputs (zero mean, unit variance per feature)"
    )


def _check_finite_logs(logs: dict[str, float], epoch: int, lr: float) -> None:
    for key in ("loss", "val_loss"):
        if key in logs and not math.isfinite(logs[key]):
            raise _divergence(epoch, 0, 0, logs[key], lr)


# ---- fit --------------------------------------------------------------------------------------


def fit(
    model: MLP,
    X: Array,
    y: Array,
    *,
    loss: Loss | str | None = None,
    optimizer: Optimizer | str | None = None,
    learning_rate: float | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int = 0,
    rng: np.random.Generator | None = None,
    validation: tuple[Array, ...] | None = None,
    validation_fraction: float = 0.0,
    patience: int | None = None,
    monitor: str | None = None,
    min_delta: float = 0.0,
    schedule: Schedule | str | None = None,
    clip_norm: float | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = False,
    checkpoint: str | Path | Callable[[TrainingState], None] | None = None,
    resume: TrainingState | None = None,
    gradients: GradientFn | None = None,
    task: str | None = None,
    kernel: str = "numpy",
    train_metrics: Literal["exact", "running"] = "exact",
    sample_weight: Array | None = None,
    penalty: Penalty | None = None,
) -> History:
    """Train ``model`` in place on (X, y) by mini-batch gradient descent; return the History.

    - y: class indices (S,) for classification, targets (S,) or (S, k) for regression (``task``
      is inferred: integer labels are classes). X is converted to the model's dtype once.
    - loss: a Loss or its name; default cross-entropy for softmax, binary cross-entropy for sigmoid
      outputs, mse otherwise. optimizer: an Optimizer or a name (default "adam"), with
      ``learning_rate`` (default: the optimizer's, 0.01 for SGD).
    - Shuffling and the validation split draw from ``rng`` (default ``default_rng(seed)``).
    - validation: a held-out (X_val, y_val), or ``validation_fraction`` of the rows (per class in
      proportion, for classification) set aside before the first epoch.
    - patience: early stopping; after ``patience`` epochs in which ``monitor`` (default val_loss, or
      loss without validation data) has not improved by more than ``min_delta``, training stops.
      With patience set, the model ends with the weights of its best epoch.
    - schedule: a function epoch → learning rate (see ``schedules``) or a name (constant, cosine,
      step, exponential) fitted to ``epochs``; it is applied at the start of each epoch.
    - clip_norm: rescale each batch's gradients to a global L2 norm of at most this.
    - callbacks: objects with ``on_epoch_end(epoch, logs) -> bool`` (True stops training).
    - progress: a tqdm bar per epoch on stderr; None shows it only when stderr is a terminal.
    - checkpoint: a path (a checkpoint file is written after every epoch, atomically) or a
      function that receives each epoch's TrainingState; ``resume`` continues from one, to the
      same total of ``epochs``.
    - gradients: the per-batch (X_b, T_b) -> (cost, grads) function; by default
      :func:`default_gradients` (the fast step for float32 NumPy models, else :func:`backprop`).
      With the fast step, plain SGD (no momentum, weight decay or clipping) is its fused
      ``sgd_step`` (see :func:`batch_update`), and the per-epoch metrics of a float32 model are
      computed through a FastStep too (:func:`epoch_evaluator`); float64 runs the engine's path.
    - kernel: the fast step's kernel for a float32 model, "numpy", "numba" (``pip install
      'nnmath[numba]'``: a compiled step, faster on small networks, but the first call in a
      process loads or compiles it, ~0.3–2 s) or "auto" (numba where installed and able).
    - train_metrics: "exact" (default): after each epoch, the training set's ``loss`` and
      ``accuracy`` (or ``mse``, ``mae``, ``r2``) on the end-of-epoch weights, one more pass over
      it. "running": no such pass; ``loss`` is the mean of the batch costs the steps computed,
      weighted by batch size, Σ_b |b| C_b / S (each C_b on the weights before its own step: what
      scikit-learn's ``loss_curve_`` and Keras's ``fit`` report), and no other training metric is
      logged (no ``accuracy``, ``mse``, …; monitor ``loss`` or a ``val_`` metric). Validation
      metrics are exact either way.
    - sample_weight: w (S,), one weight ≥ 0 per row: every cost becomes the weighted mean
      Σ_s w_s ℓ_s / Σ_s w_s (the plain mean when all w_s = 1). Weights travel with their rows
      through the shuffling, the batches and the validation split; the logged training metrics
      (loss, accuracy or mse/mae/r2) are weighted means too. A held-out set takes weights as a
      third element, ``validation=(X_val, y_val, w_val)``; the ``val_`` metrics are weighted
      whenever the validation rows have weights (also those split off by
      ``validation_fraction``). A batch whose weights are all 0 is skipped. A ``gradients``
      function is then called as gradients(X_b, T_b, w_b).
    - penalty: a term of the cost on the weight matrices, ``penalties.L2(alpha)`` or
      ``penalties.L1(alpha)``: C = Σ w ℓ / Σ w + k P(W), with k = 1, or k = 1/Σ_batch w for
      ``per_sample=True`` (scikit-learn's convention). The logged ``loss`` and ``val_loss``
      include it (as Keras's do), with k from the weight sum of the rows evaluated.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise SpecError(f"epochs must be a whole number ≥ 0, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError(f"batch_size must be a whole number ≥ 1, got {batch_size!r}")
    if clip_norm is not None and not clip_norm > 0:
        raise SpecError(f"clip_norm must be > 0, got {clip_norm!r}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise SpecError(f"patience must be a whole number ≥ 1, got {patience!r}")
    if validation is not None and validation_fraction:
        raise SpecError("give validation=(X_val, y_val) or validation_fraction, not both")
    if validation is not None and len(validation) not in (2, 3):
        raise SpecError("validation must be (X_val, y_val) or (X_val, y_val, w_val)")
    if penalty is not None and not (hasattr(penalty, "value") and hasattr(penalty, "grad")):
        raise SpecError(
            f"penalty must be a penalty record such as nnmath.penalties.L2(alpha), got {penalty!r}"
        )
    if kernel not in ("numpy", "numba", "auto"):
        raise SpecError(f"kernel must be 'numpy', 'numba' or 'auto', got {kernel!r}")
    if train_metrics not in TRAIN_METRICS:
        raise SpecError(
            f"train_metrics must be 'exact' (the whole training set evaluated after each epoch) "
            f"or 'running' (the mean of the epoch's batch costs), got {train_metrics!r}"
        )
    exact = train_metrics == "exact"

    # Validate and convert once: every batch below runs unchecked.
    X = np.asarray(X)
    y = np.asarray(y)
    task = infer_task(y, model.output) if task is None else task
    if task not in (CLASSIFICATION, REGRESSION):
        raise SpecError(f"task must be 'classification' or 'regression', got {task!r}")
    model.check_input(X)
    if len(y) != len(X):
        raise ShapeError(f"X has {len(X)} rows but y has {len(y)}; give one target per row")
    X = X.astype(model.dtype, copy=False)
    T = as_targets(y if task == CLASSIFICATION else y.reshape(len(y), -1), model.n_out, model.dtype)
    if task == CLASSIFICATION:  # as_targets has checked them: whole numbers 0 … C − 1
        y = labels = y.astype(np.int64)
    else:
        labels = None
    w = None
    if sample_weight is not None:
        w = as_sample_weight(np.asarray(sample_weight), len(X), model.dtype)
    if loss is None:
        loss = default_loss_name(model.output, task)
    if isinstance(loss, str):
        loss = get_loss(loss)
    optimizer = _as_optimizer(optimizer, learning_rate, resume)
    params = model.parameters()
    step = fast_step(model, loss, batch_size, kernel, penalty) if gradients is None else None
    if gradients is None:
        gradients = backprop(model, loss, penalty) if step is None else step.loss_and_gradients
    elif penalty is not None:
        gradients = with_penalty(gradients, model, penalty)

    if resume is not None:
        rng = _rng_from_state(resume.rng_state)
        for p, saved in zip(params, resume.weights, strict=True):
            np.copyto(p, saved)
        optimizer.load_state_dict(resume.optimizer_state)
        history = copy.deepcopy(resume.history)
        start = resume.epoch
        val_rows = resume.validation_rows
    else:
        rng = np.random.default_rng(seed) if rng is None else rng
        history, start, val_rows = History(), 0, None
        if validation is None and validation_fraction:
            val_rows = _validation_rows(len(X), validation_fraction, labels, rng)

    if val_rows is not None:
        if len(val_rows) and int(val_rows.max()) >= len(X):
            raise DataError(
                f"the checkpoint's validation rows go up to row {int(val_rows.max())}, but X has "
                f"{len(X)} rows: resume with the data the run started with"
            )
        keep = np.ones(len(X), dtype=bool)
        keep[val_rows] = False
        validation = (X[val_rows], y[val_rows], None if w is None else w[val_rows])
        X, T = X[keep], T[keep]
        labels = None if labels is None else labels[keep]
        w = None if w is None else w[keep]
        if w is not None and not float(np.sum(w)) > 0:
            raise DataError("the training rows left after the validation split all weigh 0")
    w_val = None
    if validation is not None:
        X_val, y_val = np.asarray(validation[0]), np.asarray(validation[1])
        if len(validation) == 3 and validation[2] is not None:
            w_val = as_sample_weight(np.asarray(validation[2]), len(X_val), model.dtype)
        model.check_input(X_val)
        X_val = X_val.astype(model.dtype, copy=False)
        T_val = as_targets(
            y_val if task == CLASSIFICATION else y_val.reshape(len(y_val), -1),
            model.n_out,
            model.dtype,
        )
        labels_val = y_val.astype(np.int64) if task == CLASSIFICATION else None

    monitor = monitor or ("val_loss" if validation is not None else "loss")
    early: EarlyStopping | None = None
    if resume is not None and resume.early_stopping is not None:
        early = copy.deepcopy(resume.early_stopping)
    elif patience is not None:
        early = EarlyStopping(monitor, patience, min_delta)
    schedule = _as_schedule(schedule, optimizer.initial_learning_rate, epochs)
    bar = ProgressBar(epochs, initial=start, enabled=progress)
    callbacks = [*callbacks, bar]
    stopped = resume is not None and resume.stopped
    n_batches = math.ceil(len(X) / batch_size)
    # the fast step takes class labels as they are: no one-hot rows gathered per batch
    targets = labels if step is not None and labels is not None else T
    update = batch_update(gradients, optimizer, params, clip_norm, step)
    evaluate = epoch_evaluator(
        model,
        loss,
        task,
        max(len(X) if exact else 0, 0 if validation is None else len(X_val)),
        penalty,
    )

    try:
        # Overflow inside a diverging step is reported below as a DivergenceError, not as warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for epoch in range(start + 1, epochs + 1):
                if stopped:
                    break
                began = time.perf_counter()
                if schedule is not None:
                    optimizer.learning_rate = schedule(epoch - 1)
                total = 0.0  # Σ_b |b| C_b (Σ_b W_b C_b, W_b = Σ w over batch b): the running loss
                weight = 0.0
                for batch, rows in enumerate(batches(len(X), batch_size, rng), start=1):
                    if w is None:
                        value, batch_weight = update(X[rows], targets[rows]), len(rows)
                    else:
                        batch_weight = float(np.sum(w[rows]))
                        if not batch_weight > 0:
                            continue  # no data weighs in this batch: no step
                        value = update(X[rows], targets[rows], w[rows])
                    if not math.isfinite(value):
                        raise _divergence(epoch, batch, n_batches, value, optimizer.learning_rate)
                    total += batch_weight * value
                    weight += batch_weight

                logs: dict[str, float] = {"epoch": float(epoch)}
                if exact:
                    logs.update(evaluate(X, T, labels, w))
                else:
                    logs["loss"] = total / max(weight, 1)
                if validation is not None:
                    val = evaluate(X_val, T_val, labels_val, w_val)
                    logs.update({f"val_{key}": value for key, value in val.items()})
                logs["learning_rate"] = float(optimizer.learning_rate)
                _check_finite_logs(logs, epoch, optimizer.learning_rate)
                history.append(logs, time.perf_counter() - began)

                if early is not None:
                    if early.monitor not in logs:
                        raise SpecError(
                            f"early stopping watches {early.monitor!r}, which is not logged; "
                            f"logged: {', '.join(logs)}"
                        )
                    stopped = early.update(epoch, logs, params)
                if checkpoint is not None:
                    state = TrainingState(
                        epoch=epoch,
                        weights=[np.array(p, copy=True) for p in params],
                        optimizer=optimizer.hyperparameters(),
                        optimizer_state=optimizer.state_dict(),
                        rng_state=copy.deepcopy(rng.bit_generator.state),
                        history=copy.deepcopy(history),
                        early_stopping=copy.deepcopy(early),
                        validation_rows=None if val_rows is None else val_rows.copy(),
                        stopped=stopped,
                    )
                    if callable(checkpoint):
                        checkpoint(state)
                    else:
                        save_checkpoint(checkpoint, TrainedModel(model, loss, task), state)
                for callback in callbacks:
                    stopped = bool(callback.on_epoch_end(epoch, dict(logs))) or stopped
        if early is not None:
            early.restore(params)
            history.best_epoch = early.best_epoch or None
            history.stopped_early = early.wait >= early.patience
    finally:
        for callback in callbacks:
            end = getattr(callback, "on_train_end", None)
            if end is not None:
                end(history)
    return history


# ---- training a model on a data set: what `nnmath train` runs ----------------------------------


@dataclass(frozen=True)
class Defaults:
    """Hidden layers and schedule that train a data set well in seconds (see docs/training.md)."""

    hidden: str
    epochs: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: str | None = None
    validation_fraction: float = 0.1


DATASET_DEFAULTS: dict[str, Defaults] = {
    "digits": Defaults("512relu", 30, 32, 1e-3),
    # MNIST-1D has its own test split and needs every training row: no validation split.
    "mnist1d": Defaults("256relu-256relu", 80, 100, 1e-2, "cosine", validation_fraction=0.0),
    "iris": Defaults("8tanh", 100, 16, 1e-2),
    "wine": Defaults("32relu", 60, 16, 1e-3),
    "breast-cancer": Defaults("32relu", 40, 32, 1e-3),
    "diabetes": Defaults("32relu", 200, 32, 1e-3),
    "spirals": Defaults("64relu-64relu", 300, 32, 3e-3),
    "spirals3": Defaults("64relu-64relu", 300, 32, 3e-3),
    "xor": Defaults("16tanh", 100, 32, 1e-2),
    "moons": Defaults("32relu", 100, 32, 1e-2),
    "circles": Defaults("32relu", 100, 32, 1e-2),
    "blobs": Defaults("16relu", 50, 32, 1e-2),
}
GENERIC_DEFAULTS = Defaults("64relu", 50, 32, 1e-3)


def complete_spec(
    spec: str | None, n_in: int, n_out: int, task: str, hidden: str = GENERIC_DEFAULTS.hidden
) -> NetworkSpec:
    """The full spec for data with ``n_in`` features and ``n_out`` classes or targets.

    ``spec`` may be a full spec (``64-128relu-10softmax``), hidden layers only (``128relu`` or
    ``256relu-256relu``: the input width and the output layer, softmax for classes and identity
    for regression, are added), everything but the input width (``128relu-10softmax``, told apart
    by its softmax end), or None (``hidden`` is used). A full spec must fit the data: its
    input width must be ``n_in`` and its output must be ``n_out`` softmax units (or one sigmoid
    unit for two classes) for classification, ``n_out`` non-softmax units for regression.
    """
    text = (hidden if spec is None else spec).strip()
    if text.split("-")[0].isdigit():
        full = parse_spec(text)
    elif text.endswith("softmax"):  # hidden layers and the output layer: only the input is missing
        full = parse_spec(f"{n_in}-{text}")
    else:
        output = f"{n_out}softmax" if task == CLASSIFICATION else f"{n_out}"
        full = parse_spec(f"{n_in}-{text}-{output}")
    if full.n_in != n_in:
        hidden_part = "-".join(str(layer) for layer in full.layers[:-1]) or "64relu"
        raise SpecError(
            f"spec {str(full)!r} starts with {full.n_in} inputs but the data has {n_in} "
            f"features: start it with {n_in}- (e.g. '{n_in}-{hidden_part}-{full.layers[-1]}'), "
            f"or give only the hidden layers ('{hidden_part}')"
        )
    last = full.layers[-1]
    if task == CLASSIFICATION:
        binary_sigmoid = last.activation == "sigmoid" and last.size == 1 and n_out == 2
        if not (last.activation == "softmax" and last.size == n_out) and not binary_sigmoid:
            raise SpecError(
                f"spec {str(full)!r} ends with the layer {str(last)!r}, but the data has {n_out} "
                f"classes: a classifier's output layer must be '{n_out}softmax'"
                + (" (or '1sigmoid' for two classes)" if n_out == 2 else "")
            )
    elif last.activation == "softmax" or last.size != n_out:
        raise SpecError(
            f"spec {str(full)!r} ends with the layer {str(last)!r}, but the data has {n_out} "
            f"regression target(s): end the spec with '{n_out}' (identity output)"
        )
    return full


@dataclass(frozen=True)
class TrainConfig:
    """The settings of ``nnmath train``; None means the data set's default (``DATASET_DEFAULTS``)."""

    data: str = "digits"
    target: str | None = None
    spec: str | None = None
    loss: str | None = None
    optimizer: str = "adam"
    learning_rate: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    test_fraction: float = 0.2
    validation_fraction: float | None = None
    patience: int | None = None
    schedule: str | None = None
    clip_norm: float | None = None
    dtype: str = "float64"
    kernel: str = "numpy"
    standardize: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def resolved(self, dataset_name: str) -> TrainConfig:
        """This config with the data set's defaults filled in where a field is None."""
        defaults = DATASET_DEFAULTS.get(dataset_name, GENERIC_DEFAULTS)
        return replace(
            self,
            spec=self.spec if self.spec is not None else defaults.hidden,
            epochs=self.epochs if self.epochs is not None else defaults.epochs,
            batch_size=self.batch_size if self.batch_size is not None else defaults.batch_size,
            learning_rate=(
                self.learning_rate if self.learning_rate is not None else defaults.learning_rate
            ),
            schedule=self.schedule if self.schedule is not None else defaults.schedule,
            validation_fraction=(
                self.validation_fraction
                if self.validation_fraction is not None
                else defaults.validation_fraction
            ),
        )


@dataclass
class TrainingResult:
    """What :func:`train_dataset` returns: the model, its history, held-out metrics and splits."""

    model: TrainedModel
    history: History
    test_metrics: dict[str, float]
    config: TrainConfig
    train: Dataset
    test: Dataset
    seconds: float


def prepare_split(config: TrainConfig) -> tuple[Dataset, Dataset, np.random.Generator]:
    """(train, test, rng): the data set split as ``config.seed`` dictates, and the generator after.

    The same config always gives the same split, so a resumed run or ``nnmath evaluate`` sees
    exactly the rows the original run held out.
    """
    dataset = load_dataset(config.data, target=config.target, seed=config.seed)
    rng = np.random.default_rng(config.seed)
    train, test = split_for_evaluation(dataset, config.test_fraction, rng)
    return train, test, rng


def train_dataset(
    config: TrainConfig,
    *,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint: str | Path | None = None,
    resume: TrainingState | None = None,
    on_start: Callable[[TrainedModel, Dataset, Dataset, TrainConfig], None] | None = None,
) -> TrainingResult:
    """Load the data, split off a test set, standardise, build the network, fit, evaluate.

    Inputs are standardised with the training split's statistics (regression targets too); the
    returned TrainedModel carries those transforms, so it takes raw inputs and returns outputs in
    the data's own units. ``checkpoint`` writes a checkpoint file after every epoch; ``resume``
    continues from one (use the config stored with it). ``on_start(model, train, test, config)``
    is called once the data is split and the network built, before the first epoch.
    """
    began = time.perf_counter()
    train, test, rng = prepare_split(config)
    config = config.resolved(train.name)
    task = train.task
    spec = complete_spec(config.spec, train.n_features, train.n_outputs, task)
    try:
        dtype = np.dtype(config.dtype)
    except TypeError as error:
        raise SpecError(f"unknown dtype {config.dtype!r}; use float32 or float64") from error
    if dtype not in (np.float32, np.float64):
        raise SpecError(f"dtype must be float32 or float64, got {config.dtype!r}")
    network = MLP(spec, rng=rng, dtype=dtype)
    loss = get_loss(config.loss or default_loss_name(network.output, task))
    model = TrainedModel(
        network=network,
        loss=loss,
        task=task,
        class_names=train.class_names,
        feature_names=train.feature_names,
        target_name=train.target_name,
        standardizer=Standardizer.fit(train.X) if config.standardize else None,
        target_standardizer=(
            Standardizer.fit(train.y) if config.standardize and task == REGRESSION else None
        ),
    )
    X, y = model.network_inputs(train.X), model.network_targets(train.y)
    if on_start is not None:
        on_start(model, train, test, config)
    optimizer = make_optimizer(config.optimizer, learning_rate=config.learning_rate)
    write = None
    if checkpoint is not None:

        def write(state: TrainingState) -> None:
            save_checkpoint(checkpoint, model, state, config.to_dict())

    history = fit(
        network,
        X,
        y,
        loss=loss,
        optimizer=optimizer,
        epochs=config.epochs,
        batch_size=config.batch_size,
        rng=rng,
        validation_fraction=config.validation_fraction,
        patience=config.patience,
        schedule=config.schedule,
        clip_norm=config.clip_norm,
        kernel=config.kernel,
        callbacks=callbacks,
        progress=progress,
        checkpoint=write,
        resume=resume,
        task=task,
    )
    test_metrics = model.evaluate(test.X, test.y)
    seconds = time.perf_counter() - began
    model.metadata = {
        "data": config.data,
        "n_train": train.n_samples,
        "n_test": test.n_samples,
        "config": config.to_dict(),
        "epochs_run": history.epochs,
        "best_epoch": history.best_epoch,
        "final": history.last(),
        "test": test_metrics,
        "seconds": round(seconds, 3),
        "optimizer": optimizer.hyperparameters(),
    }
    return TrainingResult(model, history, test_metrics, config, train, test, seconds)
