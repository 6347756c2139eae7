"""Training: mini-batch gradient descent with validation, early stopping, checkpoints and callbacks.

``fit`` sets a run up in named steps, then runs the loop below, each line a named step of this
module or of one beside it:

    check the settings, the model and the penalty                settings.py
    the rows, targets, weights and validation rows, once         prepare_data (rows.py)
    the loss, the optimizer, early stopping                      pair_loss, prepare_optimizer, …
    a fresh run, or the one a checkpoint continues               begin_run
    the step of every batch, the metrics, the hooks              build_loop, build_step

    C₀ ← the training cost before the first step                 initial_loss (History.initial_loss)
    for epoch = 1 … epochs:                                      run_epochs, run_epoch
        η ← schedule(epoch)                                      set_learning_rate
        for each mini-batch b of a fresh shuffle:                train_epoch
            C_b ← one step on b, θ updated in place              steps.py (fused on the fast path)
            stop if C_b is NaN/Inf or explodes                   divergence.py
        logs ← the training metrics, the val_ metrics            evaluate_epoch
        stop if they or θ diverged; record them                  divergence.py, history.py
        early stopping, checkpoint, callbacks                    early_stopping.py, checkpoint.py
    restore the best weights (early stopping)                    finish_run

One epoch is one pass over the training rows in a fresh random order (``datasets.batches``, drawn
from the explicit generator ``rng``). The logged training metrics (``loss`` and ``accuracy`` for
classification; ``loss``, ``mse``, ``mae`` and ``r2`` for regression) are by default running means
of what the steps computed, each batch on the weights before its own step
(``train_metrics="running"``, as Keras and scikit-learn log them); ``train_metrics="exact"``
evaluates the end-of-epoch weights on the whole training set instead. The validation metrics (the
same names prefixed ``val_``) are always those of the end-of-epoch weights.

Speed: NumPy models train on the fast path (``steps.py``): a float32 copy whose parameters are one
vector, ``fast.FastStep``'s buffers, and the optimizer's rule applied once to the whole vector.
A network with batch norm or dropout trains through the engine instead (``steps.modes_stepper``),
in training mode with dropout's masks from a child generator; its logs are in evaluation mode.
float32 is the default arithmetic (``dtype="auto"``) even for a float64 model, which receives the
trained values after every epoch; ``dtype="float64"`` trains in float64.

Same seed, same data, same settings: bit-identical weights, and a run resumed from the checkpoint of
epoch k ends exactly where the uninterrupted run does.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nnmath.callbacks import Callback, CallbackList, ProgressBar
from nnmath.checkpoint import TrainingState, capture_state, rng_from_state
from nnmath.datasets.stream import StreamRows
from nnmath.distributed import (
    ReducedEvaluator,
    ReducedRunning,
    ReplicaCheck,
    as_communicator,
    on_root,
    reduction,
)
from nnmath.divergence import DivergenceWatch
from nnmath.early_stopping import EarlyStopping
from nnmath.errors import SpecError
from nnmath.evaluation import EVALUATION_ROWS, epoch_evaluator, evaluate_arrays, evaluate_fast
from nnmath.history import History
from nnmath.losses import Loss
from nnmath.modelfile import TrainedModel, save_checkpoint
from nnmath.network import MLP, check_memory
from nnmath.optimizers import Optimizer
from nnmath.pairing import check_pair, check_targets
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
    Reduce,
    RunningMetrics,
    Stepper,
    backprop,
    batch_update,
    default_gradients,
    fast_step,
    fast_stepper,
    general_stepper,
    modes_stepper,
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

TRAINING_COPIES = 6
"""Copies of the parameters a run holds: the model, the training copy, its gradient, two moments
of Adam, the evaluation's copy (``check_memory`` refuses a network that cannot fit them)."""


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
    masks: np.random.Generator | None = None  # dropout's masks (networks with batch norm/dropout)


def begin_run(
    resume: TrainingState | None,
    rng: np.random.Generator,
    rows: Rows,
    validation_fraction: float,
    early: EarlyStopping | None,
    modes: bool = False,
    seed: int = 0,
) -> Run:
    """A fresh run (its validation rows drawn from ``rng``), or the one a checkpoint continues;
    with ``modes`` (batch norm or dropout) also the generator of dropout's masks."""
    if resume is not None:
        masks = None if resume.masks_state is None else rng_from_state(resume.masks_state)
        return Run(
            rng=rng_from_state(resume.rng_state),
            history=History.from_dict(resume.history.to_dict()),
            early=early if resume.early_stopping is None else copy.deepcopy(resume.early_stopping),
            val_rows=resume.validation_rows,
            start=resume.epoch,
            stopped=resume.stopped,
            masks=masks if masks is not None or not modes else mask_generator(rng, seed),
        )
    masks = mask_generator(rng, seed) if modes else None
    val_rows = None
    if validation_fraction:
        val_rows = validation_rows(len(rows), validation_fraction, rows.labels, rng)
    return Run(rng, History(), early, val_rows, start=0, masks=masks)


def mask_generator(rng: Any, seed: int) -> np.random.Generator:
    """The generator of dropout's masks: a child of the shuffling generator (``spawn``: its own
    stream, which leaves the shuffling's unchanged), or of ``seed`` where ``rng`` is no Generator
    that can spawn (a row order of the caller's). A checkpoint saves its state."""
    if isinstance(rng, np.random.Generator):
        try:
            return rng.spawn(1)[0]
        except (TypeError, ValueError):  # a bit generator without a SeedSequence
            return np.random.default_rng(int(rng.integers(2**63)))
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])


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
    batch_norm: bool = False  # a batch of one row takes no step


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
    if run.early is not None:  # the weights with their running statistics
        run.stopped = run.early.update(epoch, logs, loop.stepper.arrays())
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
            history.initial_loss = train.evaluate(loop.stepper.evaluate)["loss"]
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
    labels = loop.stepper.step is not None
    running.start()
    for batch, (X, targets, w, batch_weight) in enumerate(
        rows.batches(loop.batch_size, rng, epoch, labels), start=1
    ):
        # a batch of one row takes no step with batch norm, which cannot normalize it (see fit);
        # an empty local share still does on a distributed run: its rank joins the Allreduce
        if not batch_weight > 0 or (loop.batch_norm and len(X) < 2):
            continue
        value = update(X, targets) if w is None else update(X, targets, w)
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
        logs.update(train.evaluate(evaluate))
    else:
        logs.update(running)
    if held_out is not None:
        val = held_out.evaluate(evaluate)
        logs.update({f"val_{key}": value for key, value in val.items()})
    logs["learning_rate"] = float(eta)
    return logs


def write_checkpoint(loop: Loop, run: Run, epoch: int) -> None:
    """Hand the epoch's TrainingState to ``checkpoint``, or write it to the file it names."""
    if loop.checkpoint is None:
        return
    state = capture_state(
        epoch, loop.stepper.arrays(), loop.optimizer, run.rng, run.history, run.early,
        run.val_rows, run.stopped, run.masks,
    )  # fmt: skip
    if callable(loop.checkpoint):
        loop.checkpoint(state)
    else:
        save_checkpoint(loop.checkpoint, loop.trained_model(), state)


def finish_run(run: Run, stepper: Stepper) -> None:
    """Restore the best epoch's weights (early stopping), judge progress, update the model."""
    if run.early is not None:
        run.early.restore(stepper.arrays())
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
    train_metrics: Literal["exact", "running", "loss"] = "running",
    sample_weight: Array | None = None,
    penalty: Penalty | None = None,
    dtype: str = "auto",
    comm: Any = None,
) -> History:
    """Train ``model`` in place on (X, y) by mini-batch gradient descent; return the History.

    - y: class indices (S,) for classification, targets (S,) or (S, k) for regression (``task``
      is inferred: integer labels are classes). X is checked and converted once.
    - loss: a Loss or its name; default cross-entropy for a softmax classifier, binary
      cross-entropy for a sigmoid one, mse otherwise. optimizer: an Optimizer or a name (default
      "adam"), with ``learning_rate`` (default: the optimizer's, 0.01 for SGD); it must be finite
      and > 0.
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
    - train_metrics: "running" (default): no pass over the training set; the training metrics
      are running means of what each step computed on the weights before its own step (what
      Keras and scikit-learn's ``loss_curve_`` report), weighted by batch size: ``loss``, and on
      the fast path also ``accuracy`` (or ``mse``, ``mae``, ``r2``); with a ``gradients``
      function only ``loss``. "loss": the running ``loss`` alone (no running accuracy or errors
      on the fast path). "exact": after each epoch, those metrics of the end-of-epoch weights on
      the whole training set. Validation metrics are exact either way.
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

    - batch norm and dropout (``MLP("4-16relu+bn+dropout(0.2)-3softmax")``): the steps run in
      training mode (dropout's masks from a child of ``rng``, saved in checkpoints), the logged
      metrics in evaluation mode; early stopping and checkpoints keep the running statistics with
      the weights; a last batch of one row is left out of each epoch (batch norm cannot normalize
      it; a warning says so), and ``batch_size`` must be ≥ 2.
    - X may also be a ``datasets.stream.StreamRows`` (rows read from disk in pieces, y None,
      ``validation`` another part of the same stream): see docs/distributed.md.
    - comm: data-parallel training over MPI (``MPI.COMM_WORLD``, or a
      ``distributed.Communicator``; ``pip install 'nnmath[mpi]'``, run with ``mpiexec -n N``).
      Every rank calls ``fit`` with the same data and settings; each batch is split across the
      ranks, the gradients are summed by one Allreduce and divided by the batch's weight, and
      every rank takes the same step: the weights equal one process's (docs/distributed.md).
      Rank 0 alone shows progress and writes checkpoints. None, or one rank: ordinary training.

    A batch cost or logged loss that is NaN, Inf or over 1000 × the initial loss (and over 100), or
    a parameter that is NaN or Inf, stops training with a DivergenceError (see ``divergence``).
    """
    check_settings(
        epochs=epochs, batch_size=batch_size, seed=seed, clip_norm=clip_norm,
        patience=patience, kernel=kernel, train_metrics=train_metrics, dtype=dtype,
    )  # fmt: skip
    _check_model_and_penalty(model, penalty)
    data = prepare_data(
        model, X, y, task=task, validation=validation, validation_fraction=validation_fraction,
        sample_weight=sample_weight, arithmetic=training_dtype(model, dtype, gradients),
    )  # fmt: skip
    loss = pair_loss(loss, model, data)
    optimizer = prepare_optimizer(optimizer, learning_rate, resume)
    early = early_stopping_rule(patience, monitor, min_delta, data.validated)
    run = begin_run(resume, np.random.default_rng(seed) if rng is None else rng, data.train,
                    validation_fraction, early, model.mode_dependent, seed)  # fmt: skip
    loop = build_loop(
        model, data.split(run.val_rows), run, loss, optimizer, resume=resume,
        comm=as_communicator(comm), gradients=gradients, batch_size=batch_size, kernel=kernel,
        penalty=penalty, clip_norm=clip_norm, train_metrics=train_metrics, epochs=epochs,
        schedule=schedule, callbacks=callbacks, progress=progress, checkpoint=checkpoint,
    )  # fmt: skip
    return run_epochs(run, loop)


# ---- fit's steps, in the order it takes them -----------------------------------------------------


@dataclass
class Data:
    """The rows of a run, checked and converted once (``rows.py``), in training's arithmetic:
    ``train`` (every row until ``split`` sets the validation rows aside), ``held_out`` (the
    validation rows, or None), the task, and whether the run has validation rows at all."""

    train: Rows | StreamRows
    held_out: Rows | StreamRows | None
    task: str
    dtype: np.dtype
    validated: bool  # validation rows given, or a fraction of the rows to set aside

    @property
    def streamed(self) -> bool:
        """True for rows read from disk in pieces (``datasets.stream.StreamRows``)."""
        return isinstance(self.train, StreamRows)

    @property
    def evaluation_rows(self) -> int:
        """The most rows one evaluation takes: the larger of the two parts."""
        return max(len(self.train), len(self.held_out or ()))

    def split(self, val_rows: np.ndarray | None) -> Data:
        """The rows ``val_rows`` (a fresh split's, or a checkpoint's) moved to ``held_out``."""
        if val_rows is None:
            return self
        train, held_out = split_off(self.train, val_rows)
        return replace(self, train=train, held_out=held_out)


def prepare_data(
    model: MLP,
    X: Array,
    y: Array,
    *,
    task: str | None,
    validation: tuple[Array, ...] | StreamRows | None,
    validation_fraction: float,
    sample_weight: Array | None,
    arithmetic: np.dtype,
) -> Data:
    """(X, y, w) and the validation rows checked and converted once; the task inferred from y
    where not given. A stream (``StreamRows``) brings its own targets, task and held-out part."""
    if validation is not None and validation_fraction:
        raise SpecError("give validation=(X_val, y_val) or validation_fraction, not both")
    streamed = check_stream_settings(X, y, validation, validation_fraction, sample_weight)
    task = X.task if streamed else infer_task(y, model.output) if task is None else task
    if task not in (CLASSIFICATION, REGRESSION):
        raise SpecError(f"task must be 'classification' or 'regression', got {task!r}")
    validated = validation is not None or bool(validation_fraction)
    if streamed:
        return Data(X, validation, task, arithmetic, validated)
    rows = prepare_rows(model, X, y, task, sample_weight, arithmetic)
    held_out = None if validation is None else held_out_rows(model, validation, task, arithmetic)
    return Data(rows, held_out, task, arithmetic, validated)


def pair_loss(loss: Loss | str | None, model: MLP, data: Data) -> Loss:
    """The loss (given, named, or the output layer's default), checked against the output layer
    (the rules of ``nnmath.pairing``) and against the targets, where they are in memory."""
    loss = as_loss(loss, model.output, data.task)
    check_pair(model.output, model.n_out, loss)
    if not data.streamed:  # a stream's targets are read batch by batch
        check_targets(loss, data.train.T)
    return loss


def prepare_optimizer(
    optimizer: Optimizer | str | None, learning_rate: float | None, resume: TrainingState | None
) -> Optimizer:
    """The optimizer (given, named, or Adam; a resumed run without one rebuilds the checkpoint's),
    with the checkpoint's state (moments, step count) when resuming."""
    optimizer = as_optimizer(optimizer, learning_rate, None if resume is None else resume.optimizer)
    if resume is not None:
        optimizer.load_state_dict(resume.optimizer_state)
    return optimizer


def early_stopping_rule(
    patience: int | None, monitor: str | None, min_delta: float, validated: bool
) -> EarlyStopping | None:
    """Early stopping on ``monitor`` (by default val_loss, or loss without validation rows); None
    without ``patience``."""
    if patience is None:
        return None
    return EarlyStopping(monitor or ("val_loss" if validated else "loss"), patience, min_delta)


def build_loop(
    model: MLP,
    data: Data,
    run: Run,
    loss: Loss,
    optimizer: Optimizer,
    *,
    resume: TrainingState | None,
    comm: Any,
    gradients: GradientFn | None,
    batch_size: int,
    kernel: str,
    penalty: Penalty | None,
    clip_norm: float | None,
    train_metrics: str,
    epochs: int,
    schedule: Schedule | str | None,
    callbacks: Sequence[Callback],
    progress: bool | None,
    checkpoint: str | Path | Callable[[TrainingState], None] | None,
) -> Loop:
    """What stays the same from epoch to epoch: the step (``build_step``), the rows, the schedule
    and the hooks. On several processes the step is the same plus one reduction, and rank 0
    alone writes the checkpoints and shows progress."""
    reduce = reduction(comm, penalty, split=not data.streamed)  # None on one process
    steps = (epochs - run.start) * math.ceil(len(data.train) / batch_size)
    stepper, running = build_step(
        model, data, run, loss, optimizer, reduce, comm, resume=resume, gradients=gradients,
        batch_size=batch_size, kernel=choose_kernel(kernel, steps), penalty=penalty,
        clip_norm=clip_norm, keep_score=train_metrics == "running" and not data.streamed,
    )  # fmt: skip
    if reduce is not None:
        writer = checkpoint_writer(checkpoint, model, loss, data.task)
        checkpoint, callbacks, progress = rank_duties(
            comm, writer, callbacks, progress, stepper.params
        )
    return Loop(
        stepper, data.train, data.held_out, optimizer,
        as_schedule(schedule, optimizer.initial_learning_rate, epochs), epochs, batch_size,
        exact=train_metrics == "exact", running=running,
        hooks=CallbackList([*callbacks, ProgressBar(epochs, initial=run.start, enabled=progress)]),
        checkpoint=checkpoint, trained_model=lambda: TrainedModel(model, loss, data.task),
        batch_norm=any(norm is not None for norm in model.batch_norms),
    )  # fmt: skip


def build_step(
    model: MLP,
    data: Data,
    run: Run,
    loss: Loss,
    optimizer: Optimizer,
    reduce: Reduce | None,
    comm: Any,
    *,
    resume: TrainingState | None,
    gradients: GradientFn | None,
    batch_size: int,
    kernel: str,
    penalty: Penalty | None,
    clip_norm: float | None,
    keep_score: bool,
) -> tuple[Stepper, Any]:
    """The step of every batch and the running metrics, once the room for them is checked: the
    stepper of ``make_stepper`` with a resumed run's arrays loaded, and the metrics' sums reduced
    over ranks and a stream's pieces (``reduced_metrics``)."""
    evaluation_rows = min(data.evaluation_rows, EVALUATION_ROWS)
    check_memory(model.spec, data.dtype, TRAINING_COPIES, batch_size + evaluation_rows)
    _check_modes(model, batch_size, len(data.train), data.streamed or reduce is not None)
    stepper = make_stepper(
        model, loss, optimizer, gradients=gradients, batch_size=batch_size, kernel=kernel,
        penalty=None if reduce is not None else penalty, clip_norm=clip_norm, dtype=data.dtype,
        task=data.task, evaluation_rows=data.evaluation_rows, keep_score=keep_score,
        reduce=reduce, masks=run.masks,
    )  # fmt: skip
    for p, saved in zip(stepper.arrays(), [] if resume is None else resume.weights, strict=False):
        np.copyto(p, saved)  # the weights, then the running statistics, of the checkpoint
    return reduced_metrics(
        stepper, RunningMetrics(data.train, stepper.step), comm, reduce, data.streamed, model,
        loss, penalty, data.evaluation_rows,
    )  # fmt: skip


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
    reduce: Reduce | None = None,
    masks: np.random.Generator | None = None,
) -> Stepper:
    """The fast path for a NumPy model (no ``gradients``), the engine for a network with batch norm
    or dropout (dropout's masks from ``masks``), else the general path (steps.py)."""
    eval_rows = max(1, min(evaluation_rows, EVALUATION_ROWS))
    if gradients is None and model.mode_dependent:
        return modes_stepper(
            model, loss, optimizer, masks=masks, dtype=dtype, penalty=penalty,
            clip_norm=clip_norm, evaluation_rows=eval_rows, task=task,
        )  # fmt: skip
    if gradients is not None:
        return general_stepper(
            model, loss, optimizer, gradients, penalty, clip_norm, eval_rows, task, reduce
        )
    return fast_stepper(
        model, loss, optimizer, batch_size=batch_size, dtype=dtype, kernel=kernel,
        penalty=penalty, clip_norm=clip_norm, evaluation_rows=eval_rows, task=task,
        keep_score=keep_score, reduce=reduce,
    )  # fmt: skip


def reduced_metrics(
    stepper: Stepper,
    running: RunningMetrics,
    comm: Any,
    reduce: Reduce | None,
    streamed: bool,
    model: MLP,
    loss: Loss,
    penalty: Penalty | None,
    rows: int,
) -> tuple[Stepper, Any]:
    """The stepper and running metrics, with the metrics' sums reduced over pieces (a stream) and
    ranks (``distributed.ReducedEvaluator``, ``ReducedRunning``); as they are on one process."""
    if reduce is not None or streamed:
        evaluate = ReducedEvaluator(comm, model, stepper.params, loss, penalty, rows)
        stepper = replace(stepper, evaluate=evaluate)
    if reduce is not None:
        running = ReducedRunning(comm, running, reduce)
    return stepper, running


def rank_duties(
    comm: Any,
    checkpoint: Callable[[TrainingState], None] | None,
    callbacks: Sequence[Callback],
    progress: bool | None,
    params: Sequence[Array],
) -> tuple[Callable[[TrainingState], None] | None, list[Any], bool | None]:
    """Rank 0 alone writes the checkpoints (a failure there stops every rank) and shows progress;
    with ``check_replicas``, every rank compares a hash of its weights after each epoch."""
    checks = [ReplicaCheck(comm, params)] if comm.check_replicas else []
    shown = progress if comm.is_root else False
    return on_root(comm, checkpoint, "the checkpoint"), [*callbacks, *checks], shown


def check_stream_settings(
    X: Any,
    y: Any,
    validation: Any,
    validation_fraction: float,
    sample_weight: Any,
) -> bool:
    """Whether X is a stream's rows (``datasets.stream.StreamRows``); a stream brings its own
    targets and held-out part, so y, weights and fractions are refused."""
    if not isinstance(X, StreamRows):
        return False
    if y is not None or sample_weight is not None or validation_fraction:
        raise SpecError(
            "a stream brings its own targets and split: call fit(model, rows, None, "
            "validation=...) without sample_weight or validation_fraction"
        )
    if validation is not None and not isinstance(validation, StreamRows):
        raise SpecError("a stream's validation rows are another StreamRows of the same stream")
    return True


def checkpoint_writer(
    checkpoint: str | Path | Callable[[TrainingState], None] | None,
    model: MLP,
    loss: Loss,
    task: str,
) -> Callable[[TrainingState], None] | None:
    """``checkpoint`` as a function of the epoch's TrainingState (a path: the file written)."""
    if checkpoint is None or callable(checkpoint):
        return checkpoint
    return lambda state: save_checkpoint(checkpoint, TrainedModel(model, loss, task), state)


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


def _check_modes(model: MLP, batch_size: int, rows: int, distributed: bool) -> None:
    """Batch norm needs batches of at least 2 rows; a last batch of one row is left out of each
    epoch (said once, as a warning). Batch norm and dropout are not trained across processes or
    streams (each rank's statistics and masks would differ from one process's)."""
    if not model.mode_dependent:
        return
    if distributed:
        raise SpecError(
            f"{model.spec} has batch norm or dropout, which distributed and streamed training "
            "do not compute yet (each rank would normalize its own rows); train it in one process"
        )
    if not any(norm is not None for norm in model.batch_norms):
        return
    if batch_size < 2:
        raise SpecError(
            "batch norm normalizes each mini-batch by its own mean and variance, which one row "
            "does not have: use batch_size 2 or more"
        )
    if rows % batch_size == 1:
        warnings.warn(
            f"{rows} rows in batches of {batch_size} leave a last batch of one row, which batch "
            "norm cannot normalize: each epoch leaves that row (a different one each epoch) out "
            "of its steps",
            stacklevel=3,
        )


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
