"""Data sets: the built-in sets, the user's own files, standardization, splits and mini-batches.

Conventions, stated once:

- A data set holds one sample per row: features X ∈ ℝ^{S×n} (float64). For classification, y holds
  int64 class indices 0..C-1 of shape (S,) and ``class_names[c]`` is the original label of class c;
  for regression, y is float64 of shape (S, k), k ≥ 1. ``Dataset.targets()`` gives the matrix T a
  loss compares with the predictions Ŷ: one-hot rows for classification, y itself for regression.
- Every random choice draws from an explicit ``np.random.Generator``: the generated sets, the
  splits and the mini-batch order. Nothing reads or changes NumPy's global random state.
- Every problem with the data raises :class:`~nnmath.errors.DataError` with a message that names
  the place (file, line, column, value) and what to do about it.
- scikit-learn, mnist1d and pyarrow are optional (``pip install 'nnmath[data]'``): they are imported
  only by the functions that need them.

Files (``load_dataset(path, target=..., task=...)``):

- ``.csv``: comma-separated, UTF-8, a header row naming the columns; blank lines are skipped. The
  target is the column named by ``target``, by default the **last** column; every other column is
  a feature and must be numeric. Errors give the line number as in the file (the header is line 1).
- ``.parquet``: read with pyarrow; columns as for CSV (errors give the 1-based data row).
- ``.npz``: arrays ``X`` (S×n) and ``y`` ((S,) labels, or (S, k) regression targets); optional
  ``feature_names``, ``class_names`` (then y must hold indices 0..C-1 in that order), and
  ``X_test``/``y_test`` for a fixed test split. ``target`` names the array used as y (default
  ``"y"``).

Task inference, when ``task`` is None: a target that is not numeric, or that is integer-valued with
at most ``MAX_INFERRED_CLASSES`` (20) distinct values, is classification; any other numeric target
is regression. Class labels are sorted (numerically when they are all numbers, as text otherwise)
and numbered 0..C-1 in that order.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import functools
import importlib
import math
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal, NamedTuple

import numpy as np

from nnmath.errors import DataError, ShapeError

__all__ = [
    "MAX_INFERRED_CLASSES",
    "Dataset",
    "DatasetInfo",
    "Standardizer",
    "Task",
    "batches",
    "list_datasets",
    "load_dataset",
    "make_blobs",
    "make_circles",
    "make_moons",
    "make_spirals",
    "make_xor",
    "one_hot",
    "split_for_evaluation",
    "train_test_split",
]

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")

MAX_INFERRED_CLASSES = 20
"""An integer-valued target with at most this many distinct values is inferred to be classes."""

_DATA_EXTRA = "pip install 'nnmath[data]'"


# --- The container -----------------------------------------------------------------------------


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


def _kind(a: np.ndarray) -> str:
    """'shape (3, 2), dtype float64', for error messages."""
    return f"shape {a.shape}, dtype {a.dtype}"


def _is_real(a: np.ndarray) -> bool:
    """True for bool, integer and floating arrays (not complex, text or objects)."""
    kind = a.dtype
    return kind == np.bool_ or np.issubdtype(kind, np.integer) or np.issubdtype(kind, np.floating)


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


# --- Preprocessing -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Standardizer:
    """z = (x − mean) / scale, column by column; the inverse is x = z · scale + mean.

    ``mean`` and ``scale`` are the column means and population standard deviations of the data it
    was fitted on; a column whose values are all equal gets its value as mean and scale 1, so it
    maps to exactly 0 instead of dividing by zero. Fit it on the training split only and apply the same transform to the
    validation and test data (that is the caller's job): fitting on everything leaks the test
    set's statistics into training.
    """

    mean: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise ShapeError(
                f"a standardizer needs 1-D mean and scale of equal length, got shapes "
                f"{mean.shape} and {scale.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise DataError("a standardizer needs finite means and finite, positive scales")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", scale)

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardizer:
        """The standardizer of X (S×n): its column means and standard deviations (1 if constant)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ShapeError(f"fit a standardizer on a non-empty 2-D array, got shape {X.shape}")
        mean, scale = X.mean(axis=0), X.std(axis=0)
        constant = np.ptp(X, axis=0) == 0
        mean[constant], scale[constant] = X[0, constant], 1.0  # exact: maps the column to 0
        return cls(mean=mean, scale=scale)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Z = (X − mean) / scale; a float X keeps its dtype, any other becomes float64."""
        X = np.asarray(X)
        mean, scale = self._cast_for(X)
        return (X - mean) / scale

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """X = Z · scale + mean, undoing :meth:`transform`."""
        Z = np.asarray(Z)
        mean, scale = self._cast_for(Z)
        return Z * scale + mean

    def to_dict(self) -> dict[str, list[float]]:
        """{"mean": [...], "scale": [...]} as plain lists, for storing inside a model file."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> Standardizer:
        """The standardizer that :meth:`to_dict` described."""
        if not isinstance(data, Mapping) or {"mean", "scale"} - set(data):
            found = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise DataError(f"a stored standardizer needs the keys 'mean' and 'scale', got {found}")
        return cls(mean=np.asarray(data["mean"]), scale=np.asarray(data["scale"]))

    def _cast_for(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mean and scale in A's float dtype, after checking that A has one column per feature."""
        if A.ndim == 0 or A.shape[-1] != self.mean.size:
            raise ShapeError(
                f"this standardizer was fitted on {self.mean.size} columns, got shape {A.shape}"
            )
        dtype = A.dtype if np.issubdtype(A.dtype, np.floating) else np.float64
        return self.mean.astype(dtype), self.scale.astype(dtype)


# --- Mini-batches and splits -------------------------------------------------------------------


def batches(n_samples: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of shuffled mini-batches: one permutation of 0..S-1 from rng, cut in slices.

    Every index appears exactly once per pass; the last batch is smaller when batch_size does not
    divide S. The permutation is drawn when this function is called, not when iteration starts.
    """
    if n_samples < 0:
        raise DataError(f"n_samples must be >= 0, got {n_samples}")
    if batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size}")
    order = rng.permutation(n_samples)
    return (order[start : start + batch_size] for start in range(0, n_samples, batch_size))


def _subset(dataset: Dataset, rows: np.ndarray) -> Dataset:
    """The dataset restricted to ``rows``, with the same names and no fixed test split."""
    return dataclasses.replace(
        dataset, X=dataset.X[rows], y=dataset.y[rows], X_test=None, y_test=None
    )


def _stratified_test_rows(
    y: np.ndarray, n_classes: int, n_test: int, rng: np.random.Generator
) -> np.ndarray:
    """n_test row indices drawn per class in proportion to the class counts.

    Class c gets ⌊count_c · n_test / S⌋ rows, and the rows still missing go to the classes with
    the largest remainders (largest-remainder rounding, in exact integer arithmetic).
    """
    counts = np.bincount(y, minlength=n_classes)
    take, remainders = np.divmod(counts * n_test, len(y))
    missing = n_test - take.sum()
    take[np.argsort(-remainders, kind="stable")[:missing]] += 1
    return np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[: take[c]] for c in range(n_classes)]
    )


def train_test_split(
    dataset: Dataset,
    test_fraction: float = 0.2,
    *,
    rng: np.random.Generator,
    stratify: bool = True,
) -> tuple[Dataset, Dataset]:
    """(train, test): round(test_fraction · S) random rows of X, y go to test, the rest to train.

    For classification with ``stratify`` each class is split in the same proportion (as near as
    whole rows allow); regression ignores ``stratify``. The same rng state gives the same split.
    Both halves keep the names (features, classes, target) and drop any fixed test split; use
    :func:`split_for_evaluation` to honour one.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    S = dataset.n_samples
    n_test = round(test_fraction * S)
    if not 1 <= n_test <= S - 1:
        raise DataError(
            f"a test fraction of {test_fraction} of {S} samples gives {n_test} test samples; "
            "both halves need at least one: use more data or another test fraction"
        )
    if stratify and dataset.task == "classification":
        test = _stratified_test_rows(dataset.y, dataset.n_outputs, n_test, rng)
    else:
        test = rng.permutation(S)[:n_test]
    in_test = np.zeros(S, dtype=bool)
    in_test[test] = True
    train = rng.permutation(np.flatnonzero(~in_test))
    return _subset(dataset, train), _subset(dataset, rng.permutation(test))


def split_for_evaluation(
    dataset: Dataset,
    test_fraction: float,
    rng: np.random.Generator,
    *,
    stratify: bool = True,
) -> tuple[Dataset, Dataset]:
    """(train, test): the source's own test split when it has one, else :func:`train_test_split`.

    With a fixed split (MNIST-1D) ``test_fraction`` and ``rng`` are not used, so results stay
    comparable with published numbers for that set.
    """
    if dataset.X_test is None:
        return train_test_split(dataset, test_fraction, rng=rng, stratify=stratify)
    train = dataclasses.replace(dataset, X_test=None, y_test=None)
    test = dataclasses.replace(
        dataset, X=dataset.X_test, y=dataset.y_test, X_test=None, y_test=None
    )
    return train, test


# --- Generated 2-D sets (for decision boundaries) ----------------------------------------------


def _class_sizes(n_samples: int, n_classes: int) -> np.ndarray:
    """Sizes of n_classes classes as equal as possible, summing to n_samples."""
    if n_samples < n_classes:
        raise DataError(f"need at least {n_classes} samples for {n_classes} classes")
    sizes = np.full(n_classes, n_samples // n_classes)
    sizes[: n_samples % n_classes] += 1
    return sizes


def _shuffled(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """X and y with their rows in one random order (the generators build them class by class)."""
    order = rng.permutation(len(y))
    return X[order], y[order].astype(np.int64)


def make_xor(
    n_samples: int, rng: np.random.Generator, *, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform in [-1, 1]²; class 1 where the two coordinates have opposite signs (x₀x₁ < 0).

    ``noise`` adds N(0, noise²) to the coordinates after labelling, blurring the axes.
    """
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    return X + rng.normal(0.0, noise, size=X.shape), y


def make_spirals(
    n_samples: int,
    rng: np.random.Generator,
    *,
    n_arms: int = 2,
    turns: float = 1.0,
    noise: float = 0.03,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one class each: arm c is r(cos θ, sin θ) + N(0, noise²).

    Along each arm the radius r runs evenly over [0.05, 1] and θ = 2πc/n_arms + 2π · turns · r.
    """
    Xs, ys = [], []
    for arm, size in enumerate(_class_sizes(n_samples, n_arms)):
        r = np.linspace(0.05, 1.0, size)
        theta = 2 * np.pi * arm / n_arms + 2 * np.pi * turns * r
        Xs.append(np.column_stack([r * np.cos(theta), r * np.sin(theta)]))
        ys.append(np.full(size, arm))
    X = np.concatenate(Xs)
    return _shuffled(X + rng.normal(0.0, noise, size=X.shape), np.concatenate(ys), rng)


def make_moons(
    n_samples: int, rng: np.random.Generator, *, noise: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles, t uniform in [0, π], plus N(0, noise²) on each coordinate.

    Class 0 is (cos t, sin t), class 1 is (1 − cos t, ½ − sin t) (scikit-learn's make_moons).
    """
    n_upper, n_lower = _class_sizes(n_samples, 2)
    t_upper = rng.uniform(0.0, np.pi, n_upper)
    t_lower = rng.uniform(0.0, np.pi, n_lower)
    X = np.concatenate(
        [
            np.column_stack([np.cos(t_upper), np.sin(t_upper)]),
            np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)]),
        ]
    )
    y = np.repeat([0, 1], [n_upper, n_lower])
    return _shuffled(X + rng.normal(0.0, noise, size=X.shape), y, rng)


def make_circles(
    n_samples: int, rng: np.random.Generator, *, factor: float = 0.5, noise: float = 0.08
) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles, angle uniform: class 0 of radius 1, class 1 of radius ``factor``.

    N(0, noise²) is added to each coordinate.
    """
    sizes = _class_sizes(n_samples, 2)
    y = np.repeat([0, 1], sizes)
    radius = np.where(y == 0, 1.0, factor)
    angle = rng.uniform(0.0, 2 * np.pi, n_samples)
    X = radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return _shuffled(X + rng.normal(0.0, noise, size=X.shape), y, rng)


def make_blobs(
    n_samples: int, rng: np.random.Generator, *, n_centers: int = 3, std: float = 0.7
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs N(μ_c, std² I), one class each, centres μ_c evenly spaced on a circle of radius 2."""
    sizes = _class_sizes(n_samples, n_centers)
    y = np.repeat(np.arange(n_centers), sizes)
    angle = np.pi / 2 + 2 * np.pi * np.arange(n_centers) / n_centers
    centers = 2.0 * np.column_stack([np.cos(angle), np.sin(angle)])
    X = centers[y] + rng.normal(0.0, std, size=(n_samples, 2))
    return _shuffled(X, y, rng)


def _generated(
    name: str, make: Callable[..., tuple[np.ndarray, np.ndarray]], n_samples: int, **options: float
) -> Callable[[int], Dataset]:
    """A loader that builds the 2-D set ``make`` with a Generator seeded by its argument."""

    def load(seed: int) -> Dataset:
        X, y = make(n_samples, np.random.default_rng(seed), **options)
        return Dataset(
            name=name,
            X=X,
            y=y,
            task="classification",
            feature_names=["x0", "x1"],
            class_names=None,  # "0", "1", ...
            target_name="class",
        )

    return load


# --- Sets from optional packages ---------------------------------------------------------------

_PACKAGE_OF_MODULE = {"sklearn": "scikit-learn", "mnist1d": "mnist1d", "pyarrow": "pyarrow"}


def _import_optional(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise a DataError naming the package and the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = _PACKAGE_OF_MODULE.get(module.split(".")[0], module)
        raise DataError(
            f"{purpose} needs the optional package {package!r}, which is not installed "
            f"({err}); install the data extra: {_DATA_EXTRA}"
        ) from err


def _sklearn_loader(name: str, function: str, target_name: str) -> Callable[[int], Dataset]:
    """A loader for one of scikit-learn's bundled sets (on disk, no network); the seed is unused."""

    def load(seed: int) -> Dataset:
        sk_datasets = _import_optional("sklearn.datasets", f"the {name!r} data set")
        options = {"scaled": False} if function == "load_diabetes" else {}
        bunch = getattr(sk_datasets, function)(**options)
        n_features = bunch.data.shape[1]
        feature_names = [str(f) for f in getattr(bunch, "feature_names", [])]
        if len(feature_names) != n_features:
            feature_names = [f"x{j}" for j in range(n_features)]
        if "target_names" in bunch:
            task: Task = "classification"
            class_names = [str(label) for label in bunch.target_names]
            y = bunch.target.astype(np.int64)
        else:
            task, class_names, y = "regression", None, bunch.target.astype(np.float64)
        return Dataset(
            name=name,
            X=bunch.data,
            y=y,
            task=task,
            feature_names=feature_names,
            class_names=class_names,
            target_name=target_name,
        )

    return load


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, x_test, y_test) of MNIST-1D's default generation, built offline (~1 s), read-only.

    ``make_dataset`` seeds Python's and NumPy's global generators; both states are restored after.
    ``mnist1d.data.get_dataset`` is never called: it downloads, with no timeout.
    """
    data_module = _import_optional("mnist1d.data", "the 'mnist1d' data set")
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = data_module.make_dataset(data_module.get_dataset_args())
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    arrays = tuple(np.array(data[key]) for key in ("x", "y", "x_test", "y_test"))
    for array in arrays:
        array.setflags(write=False)
    return arrays  # type: ignore[return-value]


def _load_mnist1d(seed: int) -> Dataset:
    """MNIST-1D (Greydanus 2020): 4000 training and 1000 fixed test signals of length 40.

    The seed is unused: the set is the package's default generation (its own seed 42), the one
    its published results use.
    """
    x, y, x_test, y_test = _mnist1d_arrays()
    return Dataset(
        name="mnist1d",
        X=x.astype(np.float64),
        y=y.astype(np.int64),
        task="classification",
        feature_names=[f"x{j}" for j in range(x.shape[1])],
        class_names=[str(digit) for digit in range(10)],
        target_name="digit",
        X_test=x_test.astype(np.float64),
        y_test=y_test.astype(np.int64),
    )


# --- The registry of built-in sets -------------------------------------------------------------


class _Builtin(NamedTuple):
    """One built-in set: how to load it from a seed, its task, one line about it, its extra."""

    load: Callable[[int], Dataset]
    task: Task
    description: str
    extra: str | None


_BUILTINS: dict[str, _Builtin] = {
    "xor": _Builtin(
        _generated("xor", make_xor, 400),
        "classification",
        "400 points in [-1, 1]²; class = whether x0 and x1 have opposite signs",
        None,
    ),
    "spirals": _Builtin(
        _generated("spirals", make_spirals, 600, n_arms=2),
        "classification",
        "600 points on two interleaved spiral arms, one class per arm",
        None,
    ),
    "spirals3": _Builtin(
        _generated("spirals3", make_spirals, 900, n_arms=3),
        "classification",
        "900 points on three interleaved spiral arms, one class per arm",
        None,
    ),
    "moons": _Builtin(
        _generated("moons", make_moons, 500),
        "classification",
        "500 points on two interleaved half circles with Gaussian noise",
        None,
    ),
    "circles": _Builtin(
        _generated("circles", make_circles, 500),
        "classification",
        "500 points on two concentric noisy circles (radius 1 and 0.5)",
        None,
    ),
    "blobs": _Builtin(
        _generated("blobs", make_blobs, 600),
        "classification",
        "600 points in three overlapping Gaussian blobs",
        None,
    ),
    "iris": _Builtin(
        _sklearn_loader("iris", "load_iris", "species"),
        "classification",
        "Fisher's iris flowers: 4 measurements, 3 species (scikit-learn)",
        "data",
    ),
    "wine": _Builtin(
        _sklearn_loader("wine", "load_wine", "cultivar"),
        "classification",
        "13 chemical measurements of wines from 3 cultivars (scikit-learn)",
        "data",
    ),
    "breast-cancer": _Builtin(
        _sklearn_loader("breast-cancer", "load_breast_cancer", "diagnosis"),
        "classification",
        "Wisconsin breast cancer: 30 cell-nucleus features, malignant or benign (scikit-learn)",
        "data",
    ),
    "digits": _Builtin(
        _sklearn_loader("digits", "load_digits", "digit"),
        "classification",
        "8×8 images of handwritten digits, 64 pixel intensities 0-16 (scikit-learn)",
        "data",
    ),
    "diabetes": _Builtin(
        _sklearn_loader("diabetes", "load_diabetes", "disease progression after one year"),
        "regression",
        "10 baseline measurements of diabetes patients, one progression score (scikit-learn)",
        "data",
    ),
    "mnist1d": _Builtin(
        _load_mnist1d,
        "classification",
        "MNIST-1D: 1-D signals of length 40, 10 digit classes, fixed 1000-sample test split",
        "data",
    ),
}

_ALIASES = {"mnist-1d": "mnist1d"}


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the table of built-in sets; the sizes are None when its extra is not installed."""

    name: str
    task: Task
    n_samples: int | None
    n_features: int | None
    n_outputs: int | None
    n_test: int | None
    description: str
    available: bool


def list_datasets() -> list[DatasetInfo]:
    """Name, task, sizes and description of every built-in set, loading each (a few seconds).

    ``n_test`` is the size of the set's fixed test split (0 when it has none). A set whose
    optional extra is missing is listed with ``available=False`` and no sizes.
    """
    infos = []
    for name, builtin in _BUILTINS.items():
        try:
            dataset = builtin.load(0)
        except DataError:
            if builtin.extra is None:
                raise
            description = f"{builtin.description} [needs {_DATA_EXTRA}]"
            infos.append(
                DatasetInfo(name, builtin.task, None, None, None, None, description, False)
            )
            continue
        n_test = 0 if dataset.X_test is None else len(dataset.X_test)
        infos.append(
            DatasetInfo(
                name,
                dataset.task,
                dataset.n_samples,
                dataset.n_features,
                dataset.n_outputs,
                n_test,
                builtin.description,
                True,
            )
        )
    return infos


# --- Reading files -----------------------------------------------------------------------------


class _Table(NamedTuple):
    """Columns read from a file: each a list of raw cells or a float64 array (Parquet numbers).

    ``locate(i)`` names data row i (0-based) the way the user finds it: "line 7" in a CSV file,
    "data row 6" in a Parquet file.
    """

    header: list[str]
    columns: dict[str, list[object] | np.ndarray]
    locate: Callable[[int], str]


def _check_header(header: list[str], where: str) -> None:
    """Every column has a name, and no name appears twice."""
    for k, name in enumerate(header, start=1):
        if not name:
            raise DataError(f"column {k} of the header ({where}) has no name; name every column")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(
                f"the column name {name!r} appears twice in the header ({where}); "
                "column names must be unique"
            )
        seen.add(name)


def _read_csv(path: Path) -> _Table:
    """The header and columns of a comma-separated UTF-8 file; blank lines are skipped."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    line = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if header is None:
                    header = [cell.strip() for cell in row]
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"line {line} has {len(row)} fields but the header has {len(header)} "
                        "columns; every row needs one value per column (look for a missing or "
                        "extra comma)"
                    )
                rows.append(row)
                lines.append(line)
    except UnicodeDecodeError as err:
        raise DataError(f"the file is not UTF-8 text ({err}); save it as UTF-8 CSV") from err
    except csv.Error as err:
        raise DataError(f"line {line + 1} is not valid CSV: {err}") from err
    if header is None:
        raise DataError("the file is empty; a CSV file needs a header row naming its columns")
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise DataError(
            f"the header {header[0]!r} has a single column; nnmath reads comma-separated values: "
            "save the file with commas between the fields"
        )
    _check_header(header, "line 1")
    if not rows:
        raise DataError("the file has a header but no data rows")
    columns: dict[str, list[object] | np.ndarray] = {
        name: [row[j] for row in rows] for j, name in enumerate(header)
    }
    return _Table(header, columns, lambda i: f"line {lines[i]}")


def _read_parquet(path: Path) -> _Table:
    """The columns of a Parquet file: numeric and boolean ones as float64, others as cells."""
    pa = _import_optional("pyarrow", "reading Parquet files")
    pq = _import_optional("pyarrow.parquet", "reading Parquet files")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"could not read the file as Parquet: {err}") from err
    header = [str(name) for name in table.column_names]
    if not header:
        raise DataError("the file has no columns")
    _check_header(header, "the Parquet schema")
    if table.num_rows == 0:
        raise DataError("the file has columns but no data rows")
    columns: dict[str, list[object] | np.ndarray] = {}
    for name, column in zip(header, table.columns, strict=True):
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            columns[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)  # null → NaN
        else:
            columns[name] = column.to_pylist()
    return _Table(header, columns, lambda i: f"data row {i + 1}")


def _number(cell: object) -> float | None:
    """The cell's value as a float (NaN and ±inf included), or None if it is not a number."""
    if cell is None or isinstance(cell, bool):
        return None
    if isinstance(cell, int | float | np.integer | np.floating):
        return float(cell)
    try:
        return float(str(cell).strip())
    except ValueError:
        return None


def _is_missing(cell: object) -> bool:
    """True for an absent value: None, an empty or blank text cell, or NaN."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return True
    value = _number(cell)
    return value is not None and math.isnan(value)


def _feature_column(
    cells: list[object] | np.ndarray, column: str, locate: Callable[[int], str]
) -> np.ndarray:
    """The feature column as finite float64 values, or a DataError naming the first bad cell."""
    if isinstance(cells, np.ndarray):
        bad = np.flatnonzero(~np.isfinite(cells))
        if bad.size:
            i = bad[0]
            problem = "is missing (null or NaN)" if np.isnan(cells[i]) else f"is {cells[i]}"
            raise DataError(
                f"{locate(i)}, column {column!r}: the value {problem}; every feature value must "
                "be a finite number: fill it in or delete the row"
            )
        return cells
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        value = _number(cell)
        if value is not None and math.isfinite(value):
            values[i] = value
            continue
        where = f"{locate(i)}, column {column!r}"
        if _is_missing(cell):
            what = "the cell is empty" if value is None else f"{cell!r} is NaN (a missing value)"
            raise DataError(f"{where}: {what}; fill in every feature value or delete the row")
        if value is not None:
            raise DataError(f"{where}: {cell!r} is infinite; feature values must be finite")
        raise DataError(
            f"{where}: {cell!r} is not a number; feature columns must be numeric: encode the "
            f"column as numbers, drop it, or pass target={column!r} if it is the target"
        )
    return values


def _label_name(label: object) -> str:
    """A class label as text: 3.0 → "3", 0.5 → "0.5", "setosa" → "setosa"."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def _infer_task(numbers: list[float] | None) -> Task:
    """Classification for non-numeric targets (None) or ≤ 20 distinct integers, else regression."""
    if numbers is None:
        return "classification"
    integral = all(value.is_integer() for value in numbers)
    few = len(set(numbers)) <= MAX_INFERRED_CLASSES
    return "classification" if integral and few else "regression"


def _encode_target(
    cells: Sequence[object], column: str, locate: Callable[[int], str], task: Task | None
) -> tuple[np.ndarray, Task, list[str] | None]:
    """(y, task, class_names) from the raw target cells; task None means infer it.

    Classification numbers the sorted distinct labels 0..C-1 (numerically if all are numbers).
    """
    where = f"target column {column!r}"
    for i, cell in enumerate(cells):
        if _is_missing(cell):
            raise DataError(
                f"{locate(i)}, {where}: the target is missing; every row needs a target value: "
                "fill it in or delete the row"
            )
    parsed = [_number(cell) for cell in cells]
    numbers = [value for value in parsed if value is not None]
    numeric = len(numbers) == len(parsed)
    for i, value in enumerate(parsed):
        if value is not None and math.isinf(value):
            raise DataError(f"{locate(i)}, {where}: {cells[i]!r} is infinite")
    if task is None:
        task = _infer_task(numbers if numeric else None)
    if task == "regression":
        if not numeric:
            i = parsed.index(None)
            raise DataError(
                f"{locate(i)}, {where}: {cells[i]!r} is not a number, but a regression target "
                "must be numeric; pass task='classification' if these are class labels"
            )
        return np.asarray(numbers, dtype=np.float64).reshape(-1, 1), task, None
    labels: list[object] = numbers if numeric else [str(cell).strip() for cell in cells]
    classes = sorted(set(labels))  # type: ignore[type-var]
    if len(classes) < 2:
        raise DataError(
            f"the {where} has a single class ({_label_name(classes[0])!r}); classification needs "
            "at least two classes: check the target column, or pass task='regression'"
        )
    index = {label: c for c, label in enumerate(classes)}
    y = np.asarray([index[label] for label in labels], dtype=np.int64)
    return y, task, [_label_name(label) for label in classes]


def _dataset_from_table(table: _Table, name: str, target: str | None, task: Task | None) -> Dataset:
    """The Dataset of a table: ``target`` (default: the last column) is y, the rest are features."""
    if target is None:
        target = table.header[-1]
    elif target not in table.columns:
        columns = ", ".join(repr(column) for column in table.header)
        raise DataError(
            f"there is no column named {target!r}; the columns are {columns}: pass one of them "
            "as the target"
        )
    features = [column for column in table.header if column != target]
    if not features:
        raise DataError(
            f"the only column is the target {target!r}; add at least one feature column"
        )
    X = np.column_stack([_feature_column(table.columns[f], f, table.locate) for f in features])
    y, task, class_names = _encode_target(list(table.columns[target]), target, table.locate, task)
    return Dataset(
        name=name,
        X=X,
        y=y,
        task=task,
        feature_names=features,
        class_names=class_names,
        target_name=target,
    )


def _read_npz(path: Path, name: str, target: str | None, task: Task | None) -> Dataset:
    """The Dataset of an .npz archive: X, y (or the array named by target), optional extras."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"could not read the file as a NumPy .npz archive: {err}") from err
    if not hasattr(archive, "files"):
        raise DataError("the file holds a single array, not an .npz archive; save it with np.savez")
    try:
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as err:  # object arrays need pickle, which is not allowed
        raise DataError(
            f"could not read an array of the archive: {err}; store plain numeric or text arrays"
        ) from err
    y_key = "y" if target is None else target
    for key in ("X", y_key):
        if key not in arrays:
            found = ", ".join(repr(k) for k in arrays) or "none"
            raise DataError(
                f"the archive has no array {key!r} (arrays found: {found}); save the features "
                "as X and the targets as y, e.g. np.savez(path, X=X, y=y)"
            )
    X, y = arrays["X"], arrays[y_key]
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array (samples × features), got shape {X.shape}")
    if y.ndim == 0 or len(y) != len(X):
        raise DataError(
            f"X has {len(X)} rows but {y_key} has shape {y.shape}; give one target per row"
        )
    default_names = [f"x{j}" for j in range(X.shape[1])]
    feature_names = [str(f) for f in arrays.get("feature_names", default_names)]
    test_key = "y_test" if target is None else f"{target}_test"
    has_test = "X_test" in arrays
    if has_test and test_key not in arrays:
        raise DataError(f"the archive has X_test but no {test_key!r}; save both or neither")
    y_test = arrays[test_key] if has_test else None
    common = {"name": name, "X": X, "feature_names": feature_names, "target_name": y_key}
    test = {"X_test": arrays["X_test"], "y_test": y_test} if has_test else {}
    if "class_names" in arrays:  # y holds indices into class_names
        if task == "regression":
            raise DataError(
                "the archive has class_names, so it holds classes: drop task='regression'"
            )
        names = [str(label) for label in arrays["class_names"]]
        return Dataset(y=y, task="classification", class_names=names, **common, **test)
    if y.ndim == 2:  # k regression targets per row
        if task == "classification":
            raise DataError(
                f"{y_key} has shape {y.shape}; classification needs a 1-D array of labels"
            )
        return Dataset(y=y, task="regression", class_names=None, **common, **test)
    cells = y.tolist() + ([] if y_test is None else y_test.tolist())
    n_train = len(y)

    def locate(i: int) -> str:
        return f"{y_key}[{i}]" if i < n_train else f"{test_key}[{i - n_train}]"

    encoded, task, class_names = _encode_target(cells, y_key, locate, task)
    if has_test:
        test["y_test"] = encoded[n_train:]
    return Dataset(y=encoded[:n_train], task=task, class_names=class_names, **common, **test)


_FILE_TYPES = (".csv", ".npz", ".parquet")


def _load_file(path: Path, target: str | None, task: Task | None) -> Dataset:
    """The Dataset in a .csv, .npz or .parquet file (see the module docstring for the formats)."""
    suffix = path.suffix.lower()
    if suffix not in _FILE_TYPES:
        kind = f"the file type {suffix!r}" if suffix else "a file with no extension"
        raise DataError(
            f"nnmath cannot read {kind}; it reads {', '.join(_FILE_TYPES)} files: export the data "
            "as CSV with a header row"
        )
    if not path.exists():
        raise DataError(f"file not found (looked in {Path.cwd()}): check the path")
    if path.is_dir():
        raise DataError("this is a directory; give the path of a data file")
    if suffix == ".npz":
        return _read_npz(path, path.stem, target, task)
    table = _read_csv(path) if suffix == ".csv" else _read_parquet(path)
    return _dataset_from_table(table, path.stem, target, task)


def load_dataset(
    source: str | os.PathLike[str],
    *,
    seed: int = 0,
    target: str | None = None,
    task: Task | None = None,
) -> Dataset:
    """A built-in set by name, or the data in a .csv, .npz or .parquet file.

    A string naming a built-in (see :func:`list_datasets`; ``_`` and ``-`` are interchangeable)
    loads it: the generated 2-D sets draw from ``np.random.default_rng(seed)``, the others ignore
    ``seed``. Anything else is a path. For files, ``target`` names the target column (CSV, Parquet;
    default the last column) or array (.npz; default ``"y"``), and ``task`` forces the task
    instead of inferring it (rule in the module docstring). Errors about a file start with its path.
    """
    if task is not None and task not in TASKS:
        raise DataError(f"task must be 'classification' or 'regression', got {task!r}")
    if isinstance(source, str):
        key = source.strip().lower().replace("_", "-")
        key = _ALIASES.get(key, key)
        if key in _BUILTINS:
            builtin = _BUILTINS[key]
            if target is not None:
                raise DataError(f"the built-in set {key!r} has a fixed target; drop target=")
            if task is not None and task != builtin.task:
                raise DataError(f"the built-in set {key!r} is a {builtin.task} set, not {task}")
            return builtin.load(seed)
        path = Path(source)
        if not (path.suffix or "/" in source or os.sep in source or path.exists()):
            close = difflib.get_close_matches(key, _BUILTINS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(
                f"there is no built-in data set {source!r}{hint}; the built-in sets are "
                f"{', '.join(_BUILTINS)}. To load a file, give its path ending in "
                f"{', '.join(_FILE_TYPES)}"
            )
    path = Path(source)
    try:
        return _load_file(path, target, task)
    except DataError as err:
        raise DataError(f"{path}: {err}") from err.__cause__
