"""Training: mini-batch gradient descent with validation, early stopping, checkpoints and callbacks.

``fit`` is the loop below, each line a named step of this module or of one beside it:

    C₀ ← the training cost before the first step               start_run (History.initial_loss)
    for epoch = 1 … epochs:
        η ← schedule(epoch)                                      set_learning_rate
        for each mini-batch b of a fresh shuffle:                train_epoch
            C_b ← one step on b, θ updated in place              steps.py (fused on the fast path)
            stop if C_b is NaN/Inf or explodes                   divergence.py
        logs ← loss and metrics on the end-of-epoch weights      evaluate_epoch
        stop if they or θ diverged; record them                  divergence.py, history.py
        early stopping, checkpoint, callbacks                    early_stopping.py, checkpoint.py
    restore the best weights (early stopping)                    finish_run

One epoch is one pass over the training rows in a fresh random order (``datasets.batches``, drawn
from the explicit generator ``rng``). The logged metrics are the values of the weights at the end of
the epoch on the whole training set (``loss`` and ``accuracy`` for classification; ``loss``,
``mse``, ``mae`` and ``r2`` for regression) and on the validation set (the same names prefixed
``val_``), not running averages; ``train_metrics="running"`` logs the running mean of the batch
costs instead (scikit-learn's and Keras's ``loss``) and skips the pass over the training set.

Speed: NumPy models train on the fast path (``steps.py``): a float32 copy whose parameters are one
vector, ``fast.FastStep``'s buffers, and the optimizer's rule applied once to the whole vector.
float32 is the default arithmetic (``dtype="auto"``) even for a float64 model, which receives the
trained values after every epoch; ``dtype="float64"`` trains in float64.

Same seed, same data, same settings: bit-identical weights, and a run resumed from the checkpoint of
epoch k ends exactly where the uninterrupted run does.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nnmath.callbacks import Callback, CallbackList, ProgressBar
from nnmath.checkpoint import TrainingState, capture_state, rng_from_state
from nnmath.datasets import batches
from nnmath.divergence import DivergenceWatch
from nnmath.early_stopping import EarlyStopping
from nnmath.errors import SpecError
from nnmath.evaluation import EVALUATION_ROWS, epoch_evaluator, evaluate_arrays, evaluate_fast
from nnmath.history import History
from nnmath.losses import Loss
from nnmath.modelfile import TrainedModel, save_checkpoint
from nnmath.network import MLP
from nnmath.optimizers import Optimizer
from nnmath.penalties import Penalty
from nnmath.rows import Rows, held_out_rows, prepare_rows, split_off, validation_rows
from nnmath.schedules import Schedule
from nnmath.settings import (
    CLASSIFICATION,
    REGRESSION,
    TRAIN_METRICS,
    as_loss,
    as_optimizer,
    as_schedule,
    check_settings,
    default_loss_name,
    infer_task,
)
from nnmath.steps import (
    GradientFn,
    RunningMetrics,
    Stepper,
    backprop,
    batch_update,
    default_gradients,
    fast_step,
    fast_stepper,
    general_stepper,
    with_penalty,
)

__all__ = [  # fit, and the names callers have imported from here
    "CLASSIFICATION",
    "EVALUATION_ROWS",
    "REGRESSION",
    "TRAIN_METRICS",
    "EarlyStopping",
    "GradientFn",
    "History",
    "TrainingState",
    "backprop",
    "batch_update",
    "check_settings",
    "default_gradients",
    "default_loss_name",
    "epoch_evaluator",
    "evaluate_arrays",
    "evaluate_fast",
    "fast_step",
    "fit",
    "infer_task",
    "with_penalty",
]

Array = Any


# ---- the state of a run between epochs ------------------------------------------------------------


@dataclass
class Run:
    """What changes from epoch to epoch, and what a checkpoint saves of it."""

    rng: np.random.Generator
    history: History
    early: EarlyStopping | None
    val_rows: np.ndarray | None
    start: int  # the epochs already run (0, or a checkpoint's epoch)
    stopped: bool = False


def begin_run(
    resume: TrainingState | None,
    rng: np.random.Generator,
    rows: Rows,
    validation_fraction: float,
    early: EarlyStopping | None,
) -> Run:
    """A fresh run (its validation rows drawn from ``rng``), or the one a checkpoint continues."""
    if resume is not None:
        return Run(
            rng=rng_from_state(resume.rng_state),
            history=History.from_dict(resume.history.to_dict()),
            early=early if resume.early_stopping is None else copy.deepcopy(resume.early_stopping),
            val_rows=resume.validation_rows,
            start=resume.epoch,
            stopped=resume.stopped,
        )
    val_rows = None
    if validation_fraction:
        val_rows = validation_rows(len(rows), validation_fraction, rows.labels, rng)
    return Run(rng, History(), early, val_rows, start=0)


@dataclass
class Loop:
    """What stays the same from epoch to epoch: the step, the rows, the settings, the hooks."""

    stepper: Stepper
    train: Rows
    held_out: Rows | None
    optimizer: Optimizer
    schedule: Schedule | None
    epochs: int
    batch_size: int
    exact: bool  # train_metrics == "exact"
    running: RunningMetrics
    hooks: CallbackList
    checkpoint: str | Path | Callable[[TrainingState], None] | None
    trained_model: Callable[[], TrainedModel]  # the model as a checkpoint file stores it


# ---- the loop -------------------------------------------------------------------------------------


def run_epochs(run: Run, loop: Loop) -> History:
    """Epochs run.start + 1 … epochs, until one stops the run; then restore and report."""
    logs: dict[str, float] = {}
    try:
        # Overflow inside a diverging step is reported as a DivergenceError, not as warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            watch = DivergenceWatch(initial_loss(run, loop))
            loop.hooks.on_train_begin()
            for epoch in range(run.start + 1, loop.epochs + 1):
                if run.stopped:
                    break
                logs = run_epoch(run, loop, watch, epoch)
        finish_run(run, loop.stepper)
    finally:
        loop.hooks.on_train_end(logs)
    return run.history


def run_epoch(run: Run, loop: Loop, watch: DivergenceWatch, epoch: int) -> dict[str, float]:
    """One epoch: set η, a step per batch, evaluate, check, record, early stopping, checkpoint."""
    loop.hooks.on_epoch_begin(epoch)
    run.history.on_epoch_begin(epoch)
    eta = set_learning_rate(loop.optimizer, loop.schedule, epoch)
    running = train_epoch(loop, run.rng, epoch, watch, eta)
    logs = evaluate_epoch(loop, running, epoch, eta)
    watch.check_epoch(epoch, logs, loop.stepper.params, eta)
    run.history.on_epoch_end(epoch, logs)
    loop.stepper.sync()
    if run.early is not None:
        run.stopped = run.early.update(epoch, logs, loop.stepper.params)
    write_checkpoint(loop, run, epoch)
    run.stopped = loop.hooks.on_epoch_end(epoch, logs) or run.stopped
    return logs


def initial_loss(run: Run, loop: Loop) -> float:
    """C₀, the training cost before the first step, recorded in the History once per run (a run
    resumed from a checkpoint written before it was recorded takes its first logged loss)."""
    history, train = run.history, loop.train
    if history.initial_loss is None:
        if history.epochs:
            history.initial_loss = history["loss"][0]
        else:
            logs = loop.stepper.evaluate(train.X, train.T, train.labels, train.w)
            history.initial_loss = logs["loss"]
    return history.initial_loss


def set_learning_rate(optimizer: Optimizer, schedule: Schedule | None, epoch: int) -> float:
    """η ← schedule(epoch − 1) at the start of each epoch (unchanged without a schedule)."""
    if schedule is not None:
        optimizer.learning_rate = schedule(epoch - 1)
    return optimizer.learning_rate


def train_epoch(
    loop: Loop, rng: np.random.Generator, epoch: int, watch: DivergenceWatch, eta: float
) -> dict[str, float]:
    """One pass over the rows in a fresh random order, one step per batch; returns the running
    metrics (``RunningMetrics``; a batch whose weights sum to 0 takes no step)."""
    rows, update, running = loop.train, loop.stepper.update, loop.running
    n_batches = math.ceil(len(rows) / loop.batch_size)
    # the fast step takes class labels as they are; a gradients function gets the target rows T
    X, w = rows.X, rows.w
    targets = rows.targets if loop.stepper.step is not None else rows.T
    running.start()
    for batch, index in enumerate(batches(len(rows), loop.batch_size, rng), start=1):
        if w is None:
            value, batch_weight = update(X[index], targets[index]), float(len(index))
        else:
            batch_weight = float(np.sum(w[index]))
            if not batch_weight > 0:
                continue
            value = update(X[index], targets[index], w[index])
        watch.check_batch(epoch, batch, n_batches, value, eta)
        running.add(value, batch_weight)
    return running.logs()


def evaluate_epoch(
    loop: Loop, running: dict[str, float], epoch: int, eta: float
) -> dict[str, float]:
    """The epoch's logs: the epoch, the training metrics (exact, or the running ones), the
    ``val_`` metrics, the learning rate."""
    logs: dict[str, float] = {"epoch": float(epoch)}
    evaluate, train, held_out = loop.stepper.evaluate, loop.train, loop.held_out
    if loop.exact:
        logs.update(evaluate(train.X, train.T, train.labels, train.w))
    else:
        logs.update(running)
    if held_out is not None:
        val = evaluate(held_out.X, held_out.T, held_out.labels, held_out.w)
        logs.update({f"val_{key}": value for key, value in val.items()})
    logs["learning_rate"] = float(eta)
    return logs


def write_checkpoint(loop: Loop, run: Run, epoch: int) -> None:
    """Hand the epoch's TrainingState to ``checkpoint``, or write it to the file it names."""
    if loop.checkpoint is None:
        return
    state = capture_state(
        epoch, loop.stepper.params, loop.optimizer, run.rng, run.history, run.early,
        run.val_rows, run.stopped,
    )  # fmt: skip
    if callable(loop.checkpoint):
        loop.checkpoint(state)
    else:
        save_checkpoint(loop.checkpoint, loop.trained_model(), state)


def finish_run(run: Run, stepper: Stepper) -> None:
    """Restore the best epoch's weights (early stopping), judge progress, update the model."""
    if run.early is not None:
        run.early.restore(stepper.params)
        run.history.best_epoch = run.early.best_epoch or None
        run.history.stopped_early = run.early.stopped
    run.history.judge_progress()
    stepper.sync()


# ---- fit ------------------------------------------------------------------------------------------


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
    kernel: str = "auto",
    train_metrics: Literal["exact", "running"] = "running",
    sample_weight: Array | None = None,
    penalty: Penalty | None = None,
    dtype: str = "auto",
) -> History:
    """Train ``model`` in place on (X, y) by mini-batch gradient descent; return the History.

    - y: class indices (S,) for classification, targets (S,) or (S, k) for regression (``task``
      is inferred: integer labels are classes). X is checked and converted once.
    - loss: a Loss or its name; default cross-entropy for softmax, binary cross-entropy for sigmoid
      outputs, mse otherwise. optimizer: an Optimizer or a name (default "adam"), with
      ``learning_rate`` (default: the optimizer's, 0.01 for SGD); it must be finite and > 0.
    - epochs: 1 to 1,000,000; seed: a whole number ≥ 0. Shuffling and the validation split draw
      from ``rng`` (default ``default_rng(seed)``).
    - validation: a held-out (X_val, y_val) or (X_val, y_val, w_val), or ``validation_fraction``
      of the rows (per class in proportion, for classification) set aside before the first epoch.
    - patience: early stopping; after ``patience`` epochs in which ``monitor`` (default val_loss, or
      loss without validation data) has not improved by more than ``min_delta``, training stops,
      and the model ends with the weights of its best epoch.
    - schedule: a function epoch → learning rate (see ``schedules``) or a name (constant, cosine,
      step, exponential) fitted to ``epochs``; it is applied at the start of each epoch.
    - clip_norm: rescale each batch's gradients to a global L2 norm of at most this.
    - callbacks: Keras-style objects (``callbacks.Callback``: ``on_train_begin``,
      ``on_epoch_begin``, ``on_epoch_end`` returning True to stop, ``on_train_end``).
    - progress: a tqdm bar per epoch on stderr; None shows it only when stderr is a terminal.
    - checkpoint: a path (a checkpoint file is written after every epoch, atomically) or a
      function that receives each epoch's TrainingState; ``resume`` continues from one, to the
      same total of ``epochs``.
    - dtype: the arithmetic of training. "auto" (default): float32 (a float64 model is trained
      through a float32 copy and receives its values after every epoch); "float64" or "float32"
      to choose. With ``gradients``, the model's own dtype (the function computes on its arrays).
    - gradients: a per-batch (X_b, T_b[, w_b]) -> (cost, grads) function of the caller's,
      computing on the model's own arrays (``backprop(model, loss)`` is the engine's); without
      it, NumPy models train on the fast path (``steps.py``).
    - kernel: the fast step's kernel: "numpy", "numba" (``pip install 'nnmath[numba]'``: a
      compiled step; the first call in a process loads or compiles it, ~0.5–2 s) or "auto"
      (default: numba where it pays for itself, see ``choose_kernel``; else numpy).
    - train_metrics: "exact" (default): after each epoch, the training set's ``loss`` and
      ``accuracy`` (or ``mse``, ``mae``, ``r2``) on the end-of-epoch weights. "running": no such
      pass; ``loss`` is the mean of the batch costs the steps computed, weighted by batch size
      (each on the weights before its own step: what scikit-learn's ``loss_curve_`` and Keras
      report), and no other training metric is logged. Validation metrics are exact either way.
    - sample_weight: w (S,), one weight ≥ 0 per row: every cost becomes the weighted mean
      Σ_s w_s ℓ_s / Σ_s w_s (the plain mean when all w_s = 1). Weights travel with their rows
      through the shuffling, the batches and the validation split; the logged training metrics
      are weighted means too, and the ``val_`` metrics whenever the validation rows have weights
      (a third element of ``validation``, or those split off by ``validation_fraction``). A batch
      whose weights are all 0 is skipped. A ``gradients`` function gets (X_b, T_b, w_b).
    - penalty: a term of the cost on the weight matrices, ``penalties.L2(alpha)`` or
      ``penalties.L1(alpha)``: C = Σ w ℓ / Σ w + k P(W), with k = 1, or k = 1/Σ_batch w for
      ``per_sample=True`` (scikit-learn's convention). The logged ``loss`` and ``val_loss``
      include it (as Keras's do), with k from the weight sum of the rows evaluated.

    A batch cost or logged loss that is NaN, Inf or over 1000 × the initial loss (and over 100), or
    a parameter that is NaN or Inf, stops training with a DivergenceError (see ``divergence``).
    """
    check_settings(
        epochs=epochs, batch_size=batch_size, seed=seed, clip_norm=clip_norm,
        patience=patience, kernel=kernel, train_metrics=train_metrics, dtype=dtype,
    )  # fmt: skip
    if validation is not None and validation_fraction:
        raise SpecError("give validation=(X_val, y_val) or validation_fraction, not both")
    _check_model_and_penalty(model, penalty)
    task = infer_task(y, model.output) if task is None else task
    if task not in (CLASSIFICATION, REGRESSION):
        raise SpecError(f"task must be 'classification' or 'regression', got {task!r}")
    arithmetic = training_dtype(model, dtype, gradients)
    rows = prepare_rows(model, X, y, task, sample_weight, arithmetic)
    held_out = None if validation is None else held_out_rows(model, validation, task, arithmetic)
    loss = as_loss(loss, model.output, task)
    optimizer = as_optimizer(optimizer, learning_rate, None if resume is None else resume.optimizer)
    if resume is not None:
        optimizer.load_state_dict(resume.optimizer_state)
    early = None
    if patience is not None:
        default_monitor = "val_loss" if validation is not None or validation_fraction else "loss"
        early = EarlyStopping(monitor or default_monitor, patience, min_delta)
    run = begin_run(resume, np.random.default_rng(seed) if rng is None else rng, rows,
                    validation_fraction, early)  # fmt: skip
    train, held_out = (rows, held_out) if run.val_rows is None else split_off(rows, run.val_rows)
    steps = (epochs - run.start) * math.ceil(len(train) / batch_size)
    stepper = make_stepper(
        model, loss, optimizer, gradients=gradients, batch_size=batch_size,
        kernel=choose_kernel(kernel, steps),
        penalty=penalty, clip_norm=clip_norm, dtype=arithmetic, task=task,
        evaluation_rows=max(len(train), len(held_out or ())),
        keep_score=train_metrics == "running",
    )  # fmt: skip
    for p, saved in zip(stepper.params, [] if resume is None else resume.weights, strict=False):
        np.copyto(p, saved)
    loop = Loop(
        stepper, train, held_out, optimizer,
        as_schedule(schedule, optimizer.initial_learning_rate, epochs), epochs, batch_size,
        exact=train_metrics == "exact", running=RunningMetrics(train, stepper.step),
        hooks=CallbackList([*callbacks, ProgressBar(epochs, initial=run.start, enabled=progress)]),
        checkpoint=checkpoint, trained_model=lambda: TrainedModel(model, loss, task),
    )  # fmt: skip
    return run_epochs(run, loop)


def training_dtype(model: MLP, dtype: str, gradients: GradientFn | None) -> np.dtype:
    """The arithmetic of training: the model's own with a ``gradients`` function (it computes on
    the model's arrays), else ``dtype``, where "auto" is float32."""
    if gradients is None:
        return np.dtype("float32" if dtype == "auto" else dtype)
    if dtype != "auto" and np.dtype(dtype) != np.dtype(model.dtype):
        raise SpecError(
            f"a gradients function computes on the model's own {np.dtype(model.dtype)} "
            f"arrays: leave dtype='auto', or convert the model (model.astype('{dtype}'))"
        )
    return np.dtype(model.dtype)


def make_stepper(
    model: MLP,
    loss: Loss,
    optimizer: Optimizer,
    *,
    gradients: GradientFn | None,
    batch_size: int,
    kernel: str,
    penalty: Penalty | None,
    clip_norm: float | None,
    dtype: np.dtype,
    task: str,
    evaluation_rows: int,
    keep_score: bool,
) -> Stepper:
    """The fast path for a NumPy model (no ``gradients``), else the general path (steps.py)."""
    eval_rows = max(1, min(evaluation_rows, EVALUATION_ROWS))
    if gradients is not None:
        return general_stepper(
            model, loss, optimizer, gradients, penalty, clip_norm, eval_rows, task
        )
    return fast_stepper(
        model, loss, optimizer, batch_size=batch_size, dtype=dtype, kernel=kernel,
        penalty=penalty, clip_norm=clip_norm, evaluation_rows=eval_rows, task=task,
        keep_score=keep_score,
    )  # fmt: skip


NUMBA_PAYS_OFF_STEPS = 20_000
"""From this many steps on, ``kernel="auto"`` loads the numba kernel: importing numba and loading
its compiled step costs ~0.5 s of CPU once per process, and with Adam it saves ~60–70 µs per step
on the small networks it helps (docs/speed.md), so it pays for itself after some 8,000 steps."""


def choose_kernel(kernel: str, steps: int) -> str:
    """The fast step's kernel: "auto" is numba when its step is already loaded in this process,
    or when numba is installed and the run has at least NUMBA_PAYS_OFF_STEPS steps; else numpy
    (``FastStep`` falls back to numpy where numba cannot compute the network)."""
    if kernel != "auto":
        return kernel
    from nnmath.fast import numba_loaded

    if numba_loaded():
        return "auto"
    if steps >= NUMBA_PAYS_OFF_STEPS and importlib.util.find_spec("numba") is not None:
        return "auto"
    return "numpy"


def _check_model_and_penalty(model: MLP, penalty: Penalty | None) -> None:
    if not isinstance(model.linears[0].W, np.ndarray):
        raise SpecError(
            "fit trains NumPy models; convert yours with nnmath.backend.convert(model, numpy)"
        )
    if penalty is not None and not (hasattr(penalty, "value") and hasattr(penalty, "grad")):
        raise SpecError(
            f"penalty must be a penalty record such as nnmath.penalties.L2(alpha), got {penalty!r}"
        )


# ---- the data-set recipe moved to nnmath.recipe --------------------------------------------------

_RECIPE_NAMES = (
    "DATASET_DEFAULTS",
    "Defaults",
    "GENERIC_DEFAULTS",
    "TrainConfig",
    "TrainingResult",
    "complete_spec",
    "prepare_split",
    "train_dataset",
)


def __getattr__(name: str) -> Any:
    """``nnmath.training.TrainConfig`` and the recipe's other names, where callers found them
    before they moved to ``nnmath.recipe`` (which imports this module, not the reverse)."""
    if name in _RECIPE_NAMES:
        import nnmath.recipe

        return getattr(nnmath.recipe, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
