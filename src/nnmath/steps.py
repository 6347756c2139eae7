"""One batch's step: the gradient function and the optimizer's update, fused on the fast path.

Every batch (X_b, T_b), with sample weights w_b when given, takes one step:

    C, g = gradients(X_b, T_b, w_b)    C = Σ_s w_s ℓ_s / Σ_s w_s + k P(W),  g = ∂C/∂θ
    g ← g · min(1, c / ‖g‖)            only with clip_norm = c (‖g‖ the norm of all gradients)
    θ ← optimizer's rule(θ, g)         in place; not taken when C is NaN or Inf

``fit`` runs it through a ``Stepper``, in one of two ways:

- **the fast path** (the default for NumPy models): the model is copied into the training dtype
  with every parameter a view of one vector θ (``fast.flat_parameters``); a ``fast.FastStep``
  computes C and ∂C/∂θ into one vector g in reused buffers; the optimizer's rule then runs once
  over the whole of θ (``optimizers.FlatUpdate``: one NumPy call per formula, not one per formula
  and array), and plain SGD has η folded into the backward pass (``FastStep.sgd_step``). After each
  epoch ``sync()`` writes θ into the model's own arrays, cast to the model's dtype.
- **the general path** (a caller's ``gradients`` function, or PyTorch, CuPy, … arrays): the
  model's own arrays, ``gradients`` (default :func:`backprop`, the engine's δ recursion) and
  ``optimizer.step``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.evaluation import Evaluator, epoch_evaluator
from nnmath.fast import (
    CompiledUpdate,
    FastStep,
    flat_parameters,
    has_compiled_rule,
    parameter_views,
    stored_transposed,
)
from nnmath.losses import Loss
from nnmath.network import MLP
from nnmath.optimizers import SGD, FlatUpdate, Optimizer, clip_grad_norm
from nnmath.penalties import Penalty, penalty_scale

Array = Any
GradientFn = Callable[..., tuple[float, list[Array]]]
"""(X_batch, T_batch[, w_batch]) -> (cost C, [∂C/∂W1, ∂C/∂b1, ∂C/∂W2, …] in the order of
parameters()); ``fit`` passes w_batch only when it has sample weights."""
Update = Callable[..., float]
"""(X_batch, T_batch[, w_batch]) -> C, the batch's cost before the step; θ updated in place."""
Reduce = Callable[[GradientFn, Sequence[Array], Sequence[Array] | None], GradientFn]
"""(gradients, params, into) -> the same gradient function plus a reduction over ranks (the
distributed step: ``distributed.reduced_gradients``); its gradients land in ``into``."""


# ---- gradient functions -------------------------------------------------------------------------


def backprop(
    model: MLP,
    loss: Loss,
    penalty: Penalty | None = None,
    rng: np.random.Generator | None = None,
) -> GradientFn:
    """The engine's gradient function: its forward pass and δ recursion, unchecked.

    (X, T[, w]) -> (C, grads): C = Σ w ℓ / Σ w + k P(W) with the optional sample weights w and
    ``penalty`` (see ``MLP.loss_and_gradients``), in training mode: batch norm on the batch's
    statistics (its running ones updated), dropout's masks drawn from ``rng``. It reads the model's
    current parameters on every call, so the optimizer's in-place updates are seen by the next
    batch.
    """

    def gradients(X: Array, T: Array, sample_weight: Array | None = None) -> tuple[float, list]:
        value, grads = model.loss_and_gradients(
            X, T, loss, check=False, sample_weight=sample_weight, penalty=penalty, rng=rng
        )
        return value, grads.flat()

    return gradients


def with_penalty(gradients: GradientFn, model: MLP, penalty: Penalty) -> GradientFn:
    """A gradient function plus a penalty: C + k P(W) and ∂C/∂W⁽ˡ⁾ + k ∂P/∂W⁽ˡ⁾ (biases as they
    are), k = 1, or 1/Σ w for a per-sample penalty; for a caller's own ``gradients`` in ``fit``."""

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
    """A ``fast.FastStep`` for a NumPy model (float32 or float64), None for any other and for a
    network with batch norm or dropout (the engine computes those)."""
    if isinstance(model.linears[0].W, np.ndarray) and not model.mode_dependent:
        return FastStep(model, loss, batch_size, kernel=kernel, penalty=penalty)
    return None


def default_gradients(
    model: MLP, loss: Loss, batch_size: int, penalty: Penalty | None = None
) -> GradientFn:
    """:func:`fast_step`'s ``loss_and_gradients`` for a NumPy model, else :func:`backprop`."""
    step = fast_step(model, loss, batch_size, penalty=penalty)
    return backprop(model, loss, penalty) if step is None else step.loss_and_gradients


# ---- one batch's update -----------------------------------------------------------------------------


def is_plain_sgd(optimizer: Optimizer) -> bool:
    """SGD with no momentum and no weight decay: θ ← θ − η g, which FastStep folds into δ."""
    return type(optimizer) is SGD and not optimizer.momentum and not optimizer.weight_decay


def batch_update(
    gradients: GradientFn,
    optimizer: Optimizer,
    params: Sequence[Array],
    clip_norm: float | None = None,
    step: FastStep | None = None,
) -> Update:
    """The general path's (X_b, T_b[, w_b]) -> C: gradients, clipping, ``optimizer.step``.

    Plain SGD on a ``FastStep`` (no clipping) is the step's fused ``sgd_step`` instead: the same
    update with η folded into the backward pass (float32 round-off apart), no optimizer call, and
    the update of a batch whose cost is not finite already made when C is returned.
    """
    if step is not None and is_plain_sgd(optimizer) and clip_norm is None:
        return fused_sgd(step, optimizer)

    def update(X: Array, T: Array, *weights: Array) -> float:
        value, grads = gradients(X, T, *weights)
        if math.isfinite(value):
            if clip_norm is not None:
                clip_grad_norm(grads, clip_norm)
            optimizer.step(params, grads)
        return value

    return update


def fused_sgd(step: FastStep, optimizer: Optimizer) -> Update:
    """Plain SGD as ``FastStep.sgd_step``, counting the optimizer's steps as ``step`` would."""

    def update(X: Array, T: Array, *weights: Array) -> float:
        optimizer.t += 1
        return step.sgd_step(X, T, optimizer.learning_rate, *weights)

    return update


def flat_update(
    step: FastStep, flat: FlatUpdate, clip_norm: float | None, gradients: GradientFn | None = None
) -> Update:
    """The fast path's (X_b, T_b[, w_b]) -> C: ∂C/∂θ into one vector, then one FlatUpdate.

    ``gradients`` (default ``step.loss_and_gradients``) must leave ∂C/∂θ in ``step.gradient``."""
    grad = [step.gradient]
    gradients = step.loss_and_gradients if gradients is None else gradients

    def update(X: Array, T: Array, *weights: Array) -> float:
        value, _ = gradients(X, T, *weights)
        if math.isfinite(value):
            if clip_norm is not None:
                clip_grad_norm(grad, clip_norm)
            flat.step()
        return value

    return update


# ---- the two paths ----------------------------------------------------------------------------------


@dataclass
class Stepper:
    """What ``fit`` trains through: the arrays trained, one batch's update, the evaluation.

    ``params`` are the arrays the optimizer changes ([W1, b1, …]: the model's own on the general
    path, views of θ on the fast path); ``sync()`` writes them into the model's arrays. ``step``
    is the fast path's FastStep, whose ``score`` the running metrics read (None otherwise).
    ``statistics`` gives batch norm's running statistics of the trained network (state, not
    parameters; new arrays after every step), which early stopping and checkpoints keep with the
    weights: ``arrays()`` is both.
    """

    params: list[Array]
    update: Update
    evaluate: Evaluator
    sync: Callable[[], None]
    step: FastStep | None = None
    statistics: Callable[[], list[Array]] | None = None

    def arrays(self) -> list[Array]:
        """The trained network's arrays now: the parameters, then the running statistics."""
        return self.params if self.statistics is None else [*self.params, *self.statistics()]


class RunningMetrics:
    """An epoch's running training metrics, as Keras and scikit-learn log them: each batch's cost
    (and, on the fast path, its score) on the weights before its own step, and their mean weighted
    by the batches' sizes (or weight sums W_b).

    loss = Σ_b W_b C_b / Σ_b W_b; accuracy = Σ_s w_s 𝟙[ŷ_s = y_s] / Σ w; mse, mae the same means of
    the squared and absolute errors; r2 = mean_j (1 − Σ_s w_s (a_sj − t_sj)² / Σ_s w_s (t_sj − t̄_j)²)
    with the training rows' t̄ (w_s = 1 without weights).
    """

    def __init__(self, rows: Any, step: FastStep | None) -> None:
        self.step = step if step is not None and step.keep_score else None
        self.classes = rows.labels is not None
        self.spread = None
        if self.step is not None and not self.classes:  # Σ_s w_s (t_sj − t̄_j)², once per fit
            w = np.ones(len(rows)) if rows.w is None else np.asarray(rows.w, np.float64)
            T = np.asarray(rows.T, np.float64)
            mean = w @ T / np.sum(w)
            self.spread = w @ (T - mean) ** 2
        self.start()

    def start(self) -> None:
        """Zero the sums at the start of an epoch."""
        self.cost = self.weight = self.correct = self.absolute = 0.0
        self.squared: Array = 0.0

    def add(self, value: float, batch_weight: float) -> None:
        """Add one batch: its cost C_b weighted by W_b and, on the fast path, its score's sums."""
        self.cost += batch_weight * value
        self.weight += batch_weight
        if self.step is not None:
            score = self.step.score
            self.correct += score.correct
            if not self.classes:
                self.squared = self.squared + score.squared
                self.absolute += score.absolute

    def logs(self) -> dict[str, float]:
        """The epoch's running metrics: loss = Σ_b W_b C_b / Σ_b W_b, and accuracy or mse, mae, r2
        (see the class docstring)."""
        weight = max(self.weight, 1e-300)
        logs = {"loss": self.cost / weight}
        if self.step is None:
            return logs
        if self.classes:
            logs["accuracy"] = self.correct / weight
            return logs
        squared = np.asarray(self.squared, np.float64)
        r2 = np.where(squared == 0, 1.0, 0.0)
        varying = self.spread > 0
        r2[varying] = 1.0 - squared[varying] / self.spread[varying]
        logs["mse"] = float(np.sum(squared)) / (weight * len(squared))
        logs["mae"] = self.absolute / (weight * len(squared))
        logs["r2"] = float(np.mean(r2))
        return logs


def general_stepper(
    model: MLP,
    loss: Loss,
    optimizer: Optimizer,
    gradients: GradientFn | None,
    penalty: Penalty | None,
    clip_norm: float | None,
    evaluation_rows: int,
    task: str,
    reduce: Reduce | None = None,
) -> Stepper:
    """The model's own arrays, ``gradients`` (or :func:`backprop`) and ``optimizer.step``;
    with ``reduce``, the gradients reduced over ranks before the step."""
    if gradients is None:
        gradients = backprop(model, loss, penalty)
    elif penalty is not None:
        gradients = with_penalty(gradients, model, penalty)
    params = model.parameters()
    if reduce is not None:
        gradients = reduce(gradients, params, None)
    return Stepper(
        params=params,
        update=batch_update(gradients, optimizer, params, clip_norm),
        evaluate=epoch_evaluator(model, loss, task, evaluation_rows, penalty),
        sync=lambda: None,
    )


def modes_stepper(
    model: MLP,
    loss: Loss,
    optimizer: Optimizer,
    *,
    masks: np.random.Generator,
    dtype: np.dtype,
    penalty: Penalty | None,
    clip_norm: float | None,
    evaluation_rows: int,
    task: str,
) -> Stepper:
    """A network with batch norm or dropout, which the fast step does not compute: a copy in
    ``dtype`` trained through the engine in training mode (dropout's masks from ``masks``), the
    optimizer's ``step``, evaluation in evaluation mode; ``sync()`` writes every array back
    (running statistics too)."""
    trained = model.astype(dtype)
    params = trained.parameters()
    gradients = backprop(trained, loss, penalty, masks)

    def statistics() -> list[Array]:
        return [a for B in trained.batch_norms if B is not None for a in B.statistics.values()]

    def sync() -> None:
        targets = model.named_arrays()
        for name, value in trained.named_arrays().items():
            np.copyto(targets[name], value, casting="unsafe")

    return Stepper(
        params=params,
        update=batch_update(gradients, optimizer, params, clip_norm),
        evaluate=epoch_evaluator(trained, loss, task, evaluation_rows, penalty),
        sync=sync,
        statistics=statistics,
    )


def fast_stepper(
    model: MLP,
    loss: Loss,
    optimizer: Optimizer,
    *,
    batch_size: int,
    dtype: np.dtype,
    kernel: str,
    penalty: Penalty | None,
    clip_norm: float | None,
    evaluation_rows: int,
    task: str,
    keep_score: bool,
    reduce: Reduce | None = None,
) -> Stepper:
    """The fast path: a flat copy in ``dtype``, FastStep's gradients and a FlatUpdate; with
    ``reduce``, the gradients reduced over ranks before the update (never fused into SGD)."""
    trained, theta = flat_parameters(model, dtype, transposed_first=kernel == "numpy")
    step = FastStep(trained, loss, batch_size, kernel=kernel, penalty=penalty)
    step.keep_score = keep_score
    if is_plain_sgd(optimizer) and clip_norm is None and reduce is None:
        update = fused_sgd(step, optimizer)
    else:
        transposed = stored_transposed(trained.linears[0].W)
        compiled = step.kernel == "numba" and has_compiled_rule(optimizer)
        rule = CompiledUpdate if compiled else FlatUpdate  # one loop, or a call per formula
        flat = rule(  # over the whole vector
            optimizer, theta, step.gradient, lambda v: parameter_views(trained, v, transposed)
        )
        gradients = None
        if reduce is not None:
            gradients = reduce(step.loss_and_gradients, trained.parameters(), step.gradients)
        update = flat_update(step, flat, clip_norm, gradients)
    params = trained.parameters()
    targets = model.parameters()

    def sync() -> None:
        for target, value in zip(targets, params, strict=True):
            np.copyto(target, value, casting="unsafe")

    return Stepper(
        params=params,
        update=update,
        evaluate=epoch_evaluator(trained, loss, task, evaluation_rows, penalty),
        sync=sync,
        step=step,
    )
