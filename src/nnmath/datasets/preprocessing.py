"""Preprocessing: the Standardizer, z = (x − mean) / scale column by column, and the Moments it is
made from when the data comes in pieces (streamed, or spread over ranks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nnmath.errors import DataError, ShapeError


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


@dataclass(frozen=True, eq=False)
class Moments:
    """Column statistics of the rows seen so far: count n, mean x̄, M2 = Σ (x − x̄)², min and max.

    With row weights w, n = Σ w_s, x̄ = Σ w_s x_s / n and M2 = Σ w_s (x_s − x̄)² (the formulas
    below hold unchanged with these n).

    Pieces combine with Chan et al.'s parallel formula (1979), of which Welford's one-row update
    is the case n_b = 1: for parts a and b with n = n_a + n_b and δ = x̄_b − x̄_a,

        x̄ = x̄_a + δ n_b / n,    M2 = M2_a + M2_b + δ² n_a n_b / n.

    ``standardizer()`` is then what ``Standardizer.fit`` gives on all the rows at once: mean x̄ and
    scale √(M2 / n) (population standard deviation), a constant column (min = max) mapped to 0.
    """

    count: float
    mean: np.ndarray
    M2: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def empty(cls, n_columns: int) -> Moments:
        """The moments of no rows."""
        zeros = np.zeros(n_columns)
        return cls(0, zeros, zeros, np.full(n_columns, np.inf), np.full(n_columns, -np.inf))

    @classmethod
    def of(cls, X: np.ndarray, weights: np.ndarray | None = None) -> Moments:
        """The moments of the rows of X (S×n), optionally weighted, two-pass within the piece."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ShapeError(f"moments are taken over the rows of a 2-D array, got {X.shape}")
        if len(X) == 0:
            return cls.empty(X.shape[1])
        if weights is None:
            mean = X.mean(axis=0)
            return cls(len(X), mean, ((X - mean) ** 2).sum(axis=0), X.min(axis=0), X.max(axis=0))
        w = np.asarray(weights, dtype=np.float64)
        n = float(w.sum())
        if not n > 0:
            return cls.empty(X.shape[1])
        mean = w @ X / n
        return cls(n, mean, w @ (X - mean) ** 2, X.min(axis=0), X.max(axis=0))

    def combine(self, other: Moments) -> Moments:
        """The moments of both parts' rows together (Chan et al.)."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        M2 = self.M2 + other.M2 + delta**2 * (self.count * other.count / n)
        return Moments(
            n, mean, M2, np.minimum(self.low, other.low), np.maximum(self.high, other.high)
        )

    def standardizer(self) -> Standardizer:
        """mean x̄ and scale √(M2/n); a constant column gets its value as mean and scale 1."""
        if self.count == 0:
            raise DataError("no rows to standardise: the data (or this part of it) is empty")
        mean, scale = self.mean.copy(), np.sqrt(self.M2 / self.count)
        constant = self.low == self.high
        mean[constant], scale[constant] = self.low[constant], 1.0  # exact: maps the column to 0
        return Standardizer(mean=mean, scale=scale)
