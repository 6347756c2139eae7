"""Metrics: how good predictions are, for classification and for regression.

Conventions: ``y_true`` and ``y_pred`` have one sample per row. Classification metrics take int
class indices of shape (S,); regression metrics take targets of shape (S,) or (S, k) and, for
several targets, average the per-target values with equal weights (scikit-learn's
``multioutput="uniform_average"``). Each formula is stated in its docstring; the tests check every
one against scikit-learn. ``sample_weight`` w (S,), where taken, replaces each mean over samples by
the weighted mean Σ_s w_s (·) / Σ_s w_s (scikit-learn's ``sample_weight``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnmath.errors import ShapeError

Array = Any

CLASSIFICATION_METRICS = ("accuracy",)
REGRESSION_METRICS = ("mse", "mae", "r2")


def _as_labels(y: Array, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ShapeError(f"{what} must be class indices of shape (S,), got shape {y.shape}")
    return y


def _as_columns(y_true: Array, y_pred: Array) -> tuple[np.ndarray, np.ndarray]:
    """Both regression arrays as float64 (S, k), after checking that their shapes agree."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true = y_true.reshape(len(y_true), -1) if y_true.ndim == 1 else y_true
    y_pred = y_pred.reshape(len(y_pred), -1) if y_pred.ndim == 1 else y_pred
    if y_true.shape != y_pred.shape or y_true.ndim != 2 or len(y_true) == 0:
        raise ShapeError(
            f"targets and predictions must have the same shape (S,) or (S, k) with S ≥ 1, got "
            f"{y_true.shape} and {y_pred.shape}"
        )
    return y_true, y_pred


def _mean(values: np.ndarray, sample_weight: Array | None) -> np.ndarray:
    """The mean over samples (axis 0): (1/S) Σ_s v_s, or Σ_s w_s v_s / Σ_s w_s."""
    if sample_weight is None:
        return np.mean(values, axis=0)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (len(values),):
        raise ShapeError(f"sample_weight has shape {w.shape}; give one weight per row")
    return np.tensordot(w, values, axes=1) / np.sum(w)


# ---- classification ---------------------------------------------------------------------------


def accuracy(y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> float:
    """Accuracy = (1/S) Σ_s [ŷ_s = y_s]: the fraction of samples whose class is right (weighted:
    Σ_s w_s [ŷ_s = y_s] / Σ_s w_s)."""
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ShapeError(
            f"y_true and y_pred must be non-empty and of equal length, got {y_true.shape} and "
            f"{y_pred.shape}"
        )
    return float(_mean((y_true == y_pred).astype(np.float64), sample_weight))


def confusion_matrix(y_true: Array, y_pred: Array, n_classes: int) -> np.ndarray:
    """M[i, j] = #{s : y_s = i and ŷ_s = j}: rows are true classes, columns predicted ones."""
    y_true, y_pred = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ShapeError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    M = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(M, (y_true, y_pred), 1)
    return M


def per_class_scores(M: np.ndarray) -> dict[str, np.ndarray]:
    """Precision_c = M[c, c] / Σ_i M[i, c], recall_c = M[c, c] / Σ_j M[c, j], F1 their harmonic mean.

    A class never predicted (or never present) gets precision (or recall) 0, as scikit-learn's
    ``zero_division=0`` does, never a division by zero.
    """
    diagonal = np.diag(M).astype(np.float64)
    predicted, actual = M.sum(axis=0), M.sum(axis=1)
    precision = np.divide(diagonal, predicted, out=np.zeros_like(diagonal), where=predicted > 0)
    recall = np.divide(diagonal, actual, out=np.zeros_like(diagonal), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(diagonal), where=both > 0)
    return {"precision": precision, "recall": recall, "f1": f1}


def class_probabilities(A: Array) -> np.ndarray:
    """P (S, C) from a classifier's output: softmax rows as they are; one sigmoid column a
    becomes the two columns [1 − a, a] (classes 0 and 1)."""
    A = np.asarray(A)
    if A.ndim != 2:
        raise ShapeError(f"a classifier's output must have shape (S, C), got {A.shape}")
    return np.concatenate([1.0 - A, A], axis=1) if A.shape[1] == 1 else A


def predicted_classes(P: Array) -> np.ndarray:
    """ŷ_s = argmax_c P[s, c]: the most probable class of each row of class probabilities."""
    P = np.asarray(P)
    if P.ndim != 2:
        raise ShapeError(f"class probabilities must have shape (S, C), got {P.shape}")
    return np.argmax(P, axis=1)


# ---- regression -------------------------------------------------------------------------------


def mean_squared_error(y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> float:
    """MSE = (1/(S k)) Σ_s Σ_j (y_sj − ŷ_sj)²."""
    y_true, y_pred = _as_columns(y_true, y_pred)
    return float(np.mean(_mean((y_true - y_pred) ** 2, sample_weight)))


def mean_absolute_error(y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> float:
    """MAE = (1/(S k)) Σ_s Σ_j |y_sj − ŷ_sj|."""
    y_true, y_pred = _as_columns(y_true, y_pred)
    return float(np.mean(_mean(np.abs(y_true - y_pred), sample_weight)))


def r2_score(y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> float:
    """R² = mean_j [1 − Σ_s (y_sj − ŷ_sj)² / Σ_s (y_sj − ȳ_j)²], the fraction of variance explained.

    For a constant target column (zero variance) the term is 1 when the prediction is exact and
    0 otherwise, as scikit-learn does, so R² is always finite. With weights, each Σ_s is
    Σ_s w_s (·) and ȳ_j the weighted mean.
    """
    y_true, y_pred = _as_columns(y_true, y_pred)
    residual = _mean((y_true - y_pred) ** 2, sample_weight)
    total = _mean((y_true - _mean(y_true, sample_weight)) ** 2, sample_weight)
    scores = np.where(residual == 0, 1.0, 0.0)
    varying = total > 0
    scores[varying] = 1.0 - residual[varying] / total[varying]
    return float(np.mean(scores))


# ---- bundles ----------------------------------------------------------------------------------


def classification_metrics(
    y_true: Array, A: Array, sample_weight: Array | None = None
) -> dict[str, float]:
    """{"accuracy"} from true class indices and a classifier's output A (see class_probabilities)."""
    predicted = predicted_classes(class_probabilities(A))
    return {"accuracy": accuracy(y_true, predicted, sample_weight)}


def regression_metrics(
    y_true: Array, y_pred: Array, sample_weight: Array | None = None
) -> dict[str, float]:
    """{"mse", "mae", "r2"} of predictions against targets."""
    return {
        "mse": mean_squared_error(y_true, y_pred, sample_weight),
        "mae": mean_absolute_error(y_true, y_pred, sample_weight),
        "r2": r2_score(y_true, y_pred, sample_weight),
    }
