"""The rows ``fit`` trains and validates on, checked and converted once, never per batch.

``Rows`` keeps together what belongs to each sample: its inputs x_s, its target row t_s (one-hot
for a class), its class label (classification only) and its weight w_s (when weights are given),
so that shuffling, batching and the validation split move them as one. A validation split takes
round(fraction · S) rows, per class in proportion for labelled data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.datasets import batches
from nnmath.errors import DataError, ShapeError, SpecError
from nnmath.losses import as_sample_weight, as_targets
from nnmath.network import MLP
from nnmath.settings import CLASSIFICATION

Array = Any


@dataclass
class Rows:
    """Inputs X (S, n_in), targets T (S, n_out), class labels (S,) or None, weights (S,) or None."""

    X: Array
    T: Array
    labels: Array | None
    w: Array | None

    def __len__(self) -> int:
        return len(self.X)

    def take(self, rows: Array) -> Rows:
        """The rows ``rows`` (indices or a boolean mask) of every part."""
        return Rows(
            self.X[rows],
            self.T[rows],
            None if self.labels is None else self.labels[rows],
            None if self.w is None else self.w[rows],
        )

    @property
    def targets(self) -> Array:
        """What a step is given: the labels themselves (no one-hot rows per batch), or T."""
        return self.T if self.labels is None else self.labels

    def batches(
        self, batch_size: int, rng: np.random.Generator, epoch: int, labels: bool = True
    ) -> Iterator[tuple[Array, Array, Array | None, float]]:
        """(X_b, targets_b, w_b, W_b) for each mini-batch of a fresh shuffle drawn from ``rng``:
        targets_b the class labels (``labels``, for the fast step) or the target rows T, and
        W_b = |b|, or Σ_{s∈b} w_s with weights (w_b None without). (A stream of rows too large
        for memory, ``datasets.stream``, gives its batches the same way.)"""
        targets = self.targets if labels else self.T
        for index in batches(len(self), batch_size, rng):
            w = None if self.w is None else self.w[index]
            weight = float(len(index)) if w is None else float(np.sum(w))
            yield self.X[index], targets[index], w, weight

    def evaluate(self, evaluate: Callable[..., dict[str, float]]) -> dict[str, float]:
        """The logs of ``evaluate(X, T, labels, w)`` on these rows."""
        return evaluate(self.X, self.T, self.labels, self.w)


def prepare_rows(
    model: MLP,
    X: Array,
    y: Array,
    task: str,
    sample_weight: Array | None,
    dtype: np.dtype,
    what: str = "X",
) -> Rows:
    """Check (X, y, w) once and convert them to ``dtype``, training's: the rows to train on.

    y holds class indices (S,) for classification (whole numbers 0 … C − 1), targets (S,) or
    (S, k) for regression.
    """
    X, y = np.asarray(X), np.asarray(y)
    model.check_input(X)
    if len(y) != len(X):
        raise ShapeError(
            f"{what} has {len(X)} rows but its y has {len(y)}; give one target per row"
        )
    if task == CLASSIFICATION and y.dtype.kind not in "iufb":
        raise DataError(
            f"class labels must be whole numbers 0, 1, 2, …, got {y.dtype} values; encode them "
            "first (for example with numpy.unique(y, return_inverse=True))"
        )
    if y.dtype.kind not in "iufb":
        raise DataError(f"regression targets must be numbers, got {y.dtype} values")
    X = X.astype(dtype, copy=False)
    T = as_targets(y if task == CLASSIFICATION else y.reshape(len(y), -1), model.n_out, dtype)
    labels = y.astype(np.int64) if task == CLASSIFICATION else None  # checked: 0 … C − 1
    w = None
    if sample_weight is not None:
        w = as_sample_weight(np.asarray(sample_weight), len(X), dtype)
    return Rows(X, T, labels, w)


def held_out_rows(model: MLP, validation: tuple[Array, ...], task: str, dtype: np.dtype) -> Rows:
    """validation = (X_val, y_val) or (X_val, y_val, w_val), checked and converted."""
    if len(validation) not in (2, 3):
        raise SpecError("validation must be (X_val, y_val) or (X_val, y_val, w_val)")
    weights = validation[2] if len(validation) == 3 else None
    return prepare_rows(model, validation[0], validation[1], task, weights, dtype, what="X_val")


def validation_rows(
    n_samples: int, fraction: float, labels: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """round(fraction · S) row indices for validation, per class in proportion when labelled."""
    if not 0.0 < fraction < 1.0:
        raise SpecError(f"validation_fraction must lie strictly between 0 and 1, got {fraction}")
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


def split_off(rows: Rows, val_rows: np.ndarray) -> tuple[Rows, Rows]:
    """(training rows, validation rows): the rows ``val_rows`` go to validation, with weights."""
    if len(val_rows) and int(val_rows.max()) >= len(rows):
        raise DataError(
            f"the checkpoint's validation rows go up to row {int(val_rows.max())}, but X has "
            f"{len(rows)} rows: resume with the data the run started with"
        )
    keep = np.ones(len(rows), dtype=bool)
    keep[val_rows] = False
    train = rows.take(keep)
    if train.w is not None and not float(np.sum(train.w)) > 0:
        raise DataError("the training rows left after the validation split all weigh 0")
    return train, rows.take(val_rows)
