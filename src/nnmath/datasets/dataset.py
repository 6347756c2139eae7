"""The container: a Dataset (features X, targets y and their names) and one-hot targets.

A data set holds one sample per row: features X ∈ ℝ^{S×n} (float64). For classification, y holds
int64 class indices 0..C-1 of shape (S,) and ``class_names[c]`` is the original label of class c;
for regression, y is float64 of shape (S, k), k ≥ 1. ``Dataset.targets()`` gives the matrix T a
loss compares with the predictions Ŷ: one-hot rows for classification, y itself for regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from nnmath.errors import DataError

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")


def _kind(a: np.ndarray) -> str:
    """'shape (3, 2), dtype float64', for error messages."""
    return f"shape {a.shape}, dtype {a.dtype}"


def _is_real(a: np.ndarray) -> bool:
    """True for bool, integer and floating arrays (not complex, text or objects)."""
    kind = a.dtype
    return kind == np.bool_ or np.issubdtype(kind, np.integer) or np.issubdtype(kind, np.floating)


def one_hot(y: np.ndarray, n_classes: int, dtype: type = np.float64) -> np.ndarray:
    """T[s, c] = 1 if y[s] = c else 0: class indices of shape (S,) to one-hot rows of shape (S, C)."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"one_hot needs a 1-D array of integer class indices, got {_kind(y)}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(
            f"class indices must lie in 0..{n_classes - 1}, got values from {y.min()} to {y.max()}"
        )
    T = np.zeros((y.size, n_classes), dtype=dtype)
    T[np.arange(y.size), y] = 1
    return T


def _checked_features(X: object, feature_names: list[str], what: str) -> np.ndarray:
    """X as a finite float64 (S, n) array with one name per column, or a DataError saying why not."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(
            f"{what} must be a 2-D array (samples × features), got shape {X.shape}; "
            f"a single feature needs a column: {what}[:, None]"
        )
    if not _is_real(X):
        raise DataError(f"{what} has dtype {X.dtype}; features must be numbers")
    if X.shape[1] != len(feature_names):
        raise DataError(
            f"{what} has {X.shape[1]} columns but there are {len(feature_names)} feature names"
        )
    X = X.astype(np.float64, copy=False)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = bad[0]
        raise DataError(
            f"{what}[{i}, {j}] (feature {feature_names[j]!r}) is {X[i, j]}; every feature value "
            "must be a finite number: fill in or drop the rows with missing values"
        )
    return X


def _checked_targets(y: object, task: Task, n_rows: int, what: str) -> np.ndarray:
    """y as int64 (S,) indices or finite float64 (S, k) targets, or a DataError saying why not."""
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != n_rows:
        raise DataError(f"{what} has {_kind(y)} but the features have {n_rows} rows")
    if task == "classification":
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{what} of a classification data set must be a 1-D array of integer class "
                f"indices, got {_kind(y)}"
            )
        if y.size and y.min() < 0:
            raise DataError(f"{what} holds the negative class index {y.min()}")
        return y.astype(np.int64, copy=False)
    if y.ndim not in (1, 2) or not _is_real(y):
        raise DataError(
            f"{what} of a regression data set must be numbers (S,) or (S, k), got {_kind(y)}"
        )
    y = y.astype(np.float64, copy=False).reshape(n_rows, -1)
    bad = np.argwhere(~np.isfinite(y))
    if bad.size:
        i, j = bad[0]
        raise DataError(f"{what}[{i}, {j}] is {y[i, j]}; regression targets must be finite numbers")
    return y


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A named table of samples: features X (S×n), targets y, and what the columns mean.

    Construction validates and normalises: X becomes float64 and must be finite; a classification
    y must hold int64 indices 0..C-1 (``class_names`` defaults to ``["0", ..., "C-1"]``); a 1-D
    regression y becomes a column (S, 1). ``X_test``/``y_test`` are None unless the source defines
    its own test split (MNIST-1D, or an .npz file that has them).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: Task
    feature_names: list[str]
    class_names: list[str] | None
    target_name: str
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"task must be 'classification' or 'regression', got {self.task!r}")
        feature_names = [str(name) for name in self.feature_names]
        X = _checked_features(self.X, feature_names, "X")
        y = _checked_targets(self.y, self.task, len(X), "y")
        X_test, y_test = self.X_test, self.y_test
        if (X_test is None) != (y_test is None):
            raise DataError("give both X_test and y_test, or neither")
        if X_test is not None:
            X_test = _checked_features(X_test, feature_names, "X_test")
            y_test = _checked_targets(y_test, self.task, len(X_test), "y_test")
        class_names = self.class_names
        if self.task == "regression":
            if class_names is not None:
                raise DataError("a regression data set has no class names: pass class_names=None")
            if y_test is not None and y_test.shape[1] != y.shape[1]:
                raise DataError(f"y has {y.shape[1]} outputs but y_test has {y_test.shape[1]}")
        else:
            labels = y if y_test is None else np.concatenate([y, y_test])
            if class_names is None:
                class_names = [str(c) for c in range(int(labels.max(initial=0)) + 1)]
            class_names = [str(name) for name in class_names]
            if labels.size and labels.max() >= len(class_names):
                raise DataError(
                    f"class index {labels.max()} has no name: class_names lists only "
                    f"{len(class_names)} classes"
                )
        object.__setattr__(self, "feature_names", feature_names)
        object.__setattr__(self, "class_names", class_names)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "X_test", X_test)
        object.__setattr__(self, "y_test", y_test)

    @property
    def n_samples(self) -> int:
        """S, the number of training rows (the fixed test split not included)."""
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """n, the number of input features."""
        return self.X.shape[1]

    @property
    def n_outputs(self) -> int:
        """The network's output width: C classes for classification, k targets for regression."""
        if self.task == "classification":
            assert self.class_names is not None
            return len(self.class_names)
        return self.y.shape[1]

    def targets(self) -> np.ndarray:
        """T for the loss: one-hot float64 (S, C) for classification, y (S, k) for regression."""
        if self.task == "classification":
            return one_hot(self.y, self.n_outputs)
        return self.y

    def __repr__(self) -> str:
        if self.task == "classification":
            outputs = f"{self.n_outputs} classes"
        else:
            outputs = f"{self.n_outputs} target{'s' if self.n_outputs > 1 else ''}"
        test = "" if self.X_test is None else f", {len(self.X_test)} fixed test samples"
        return (
            f"Dataset({self.name!r}, {self.task}, {self.n_samples} samples × "
            f"{self.n_features} features, {outputs}{test})"
        )
