"""Mini-batches and train/test splits; every random choice draws from an explicit Generator."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from nnmath.datasets.dataset import Dataset
from nnmath.errors import DataError, SpecError


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
        raise SpecError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
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
