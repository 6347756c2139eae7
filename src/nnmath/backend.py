"""Which array library computes: NumPy by default, any Array API library on request.

The engine's formulas are written against the Python Array API standard, so the same hand-derived
backward pass runs on NumPy arrays, PyTorch tensors, CuPy or JAX arrays. ``namespace(*arrays)``
returns the module that owns the arrays: NumPy itself for NumPy arrays (no wrapper, no overhead),
otherwise the ``array_api_compat`` namespace for the library that made them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnmath.errors import DataError, SpecError


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
    if type(array).__module__.startswith("cupy"):  # device memory: copy to the host
        return array.get()
    return np.asarray(array)


def dtype_name(dtype: Any) -> str:
    """A dtype's short name (``float32``) for NumPy, PyTorch, array-api-strict and others alike."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype).rsplit(".", 1)[-1]


def check_same_namespace(name: str, array: Any, reference: Any) -> None:
    """Raise DataError unless ``array`` comes from the same array library as ``reference``."""
    if isinstance(array, np.ndarray) and isinstance(reference, np.ndarray):
        return  # the common case costs two isinstance calls
    if namespace(array) is not namespace(reference):
        raise DataError(
            f"{name} is a {type(array).__module__}.{type(array).__name__} but the model's "
            f"parameters are {type(reference).__module__}.{type(reference).__name__}; convert "
            f"the data with xp.asarray(...) or the model with nnmath.backend.convert(model, xp)"
        )


def convert(model: Any, xp: Any, *, dtype: Any = None, device: Any = None) -> Any:
    """A copy of ``model`` whose parameters are arrays of the Array API namespace ``xp``.

    ``xp`` is the array module (``numpy``, ``torch``, ``array_api_strict``, ``cupy``,
    ``jax.numpy`` or an ``array_api_compat`` namespace); ``dtype`` is one of its floating dtypes
    (default: the model's own precision, by name) and ``device`` where to put the parameters (default:
    the library's default device). The model itself is left unchanged; after conversion, pass
    inputs and targets made by the same library (``xp.asarray(X)``).
    """
    if dtype is None:
        dtype = getattr(xp, dtype_name(model.dtype), None)
        if dtype is None:
            raise SpecError(
                f"namespace {getattr(xp, '__name__', xp)!r} has no dtype "
                f"{dtype_name(model.dtype)}; pass dtype= one of its floating dtypes"
            )
    extra = {} if device is None else {"device": device}

    def move(array: Any) -> Any:
        return xp.asarray(to_numpy(array), dtype=dtype, **extra)

    arrays = {name: move(array) for name, array in model.named_arrays().items()}
    return type(model).from_arrays(model.spec, arrays)
