"""Generated 2-D sets (for decision boundaries): (X, y) from a sample count and a Generator.

Each returns X of shape (S, 2) and int64 class indices y of shape (S,); all randomness comes from
the ``rng`` argument.
"""

from __future__ import annotations

import numpy as np

from nnmath.datasets.dataset import Dataset
from nnmath.errors import DataError


def plane_dataset(name: str, X: np.ndarray, y: np.ndarray) -> Dataset:
    """A generated 2-D set as a Dataset: classification of (x0, x1) points into classes 0, 1, …"""
    return Dataset(
        name=name,
        X=X,
        y=y,
        task="classification",
        feature_names=["x0", "x1"],
        class_names=None,  # "0", "1", ...
        target_name="class",
    )


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
