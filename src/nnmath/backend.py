"""Which array library computes: NumPy by default, any Array API library on request.

The engine's formulas are written against the Python Array API standard, so the same hand-derived
backward pass runs on NumPy arrays, PyTorch tensors, CuPy or JAX arrays. ``namespace(*arrays)``
returns the module that owns the arrays: NumPy itself for NumPy arrays (no wrapper, no overhead),
otherwise the ``array_api_compat`` namespace for the library that made them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def namespace(*arrays: Any) -> Any:
    """The array namespace of ``arrays``: ``numpy`` for NumPy inputs, else array_api_compat's."""
    if all(isinstance(a, (np.ndarray, np.generic, float, int)) for a in arrays):
        return np
    import array_api_compat

    return array_api_compat.array_namespace(*[a for a in arrays if not isinstance(a, (int, float))])


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy copy (or view) of any array, for printing, saving and comparing."""
    if isinstance(array, np.ndarray):
        return array
    if hasattr(array, "detach"):  # a PyTorch tensor
        return array.detach().cpu().numpy()
    return np.asarray(array)
