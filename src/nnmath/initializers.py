"""Weight initialisation by name, from an explicit random generator.

- glorot_uniform: W ~ U(−r, r) with r = √(6 / (n_in + n_out))   (sigmoid, tanh, identity, softmax)
- glorot_normal:  W ~ N(0, 2 / (n_in + n_out))
- he_normal:      W ~ N(0, 2 / n_in)                              (the ReLU family)
- he_uniform:     W ~ U(−r, r) with r = √(6 / n_in)
Biases start at zero. ``"auto"`` picks each layer's scheme from its activation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nnmath.errors import SpecError


def glorot_uniform(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ U(−r, r), r = √(6 / (n_in + n_out)), of shape (n_out, n_in), drawn from ``rng``."""
    r = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, size=(n_out, n_in))


def glorot_normal(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ N(0, 2 / (n_in + n_out)), of shape (n_out, n_in), drawn from ``rng``."""
    return rng.normal(0.0, math.sqrt(2.0 / (n_in + n_out)), size=(n_out, n_in))


def he_normal(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ N(0, 2 / n_in), of shape (n_out, n_in), drawn from ``rng``."""
    return rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_out, n_in))


def he_uniform(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """W ~ U(−r, r), r = √(6 / n_in), of shape (n_out, n_in), drawn from ``rng``."""
    r = math.sqrt(6.0 / n_in)
    return rng.uniform(-r, r, size=(n_out, n_in))


INITIALIZERS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}


def initialize(
    n_in: int, n_out: int, scheme: str, rng: np.random.Generator, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) for one Linear layer: W of shape (n_out, n_in) drawn by ``scheme``, b = 0."""
    if scheme not in INITIALIZERS:
        raise SpecError(
            f"unknown initialisation {scheme!r}; valid: {', '.join(INITIALIZERS)}, auto"
        )
    W = INITIALIZERS[scheme](n_in, n_out, rng).astype(dtype)
    return W, np.zeros(n_out, dtype=dtype)
