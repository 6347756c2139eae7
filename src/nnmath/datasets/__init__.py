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
- scikit-learn and mnist1d (the bundled sets, ``pip install 'nnmath[data]'``) and pyarrow (CSV and
  Parquet files, ``pip install 'nnmath[files]'``) are optional: they are imported only by the
  functions that need them.

One role per module, each re-exported here:

- ``dataset``: the :class:`Dataset` container and :func:`one_hot`.
- ``preprocessing``: the :class:`Standardizer`.
- ``splits``: :func:`batches`, :func:`train_test_split`, :func:`split_for_evaluation`.
- ``generators``: the generated 2-D sets (``make_xor``, ``make_moons``, ...).
- ``builtin``: the registry of built-in sets and :func:`list_datasets`.
- ``readers``: reading .csv, .parquet and .npz files into columns, checked (:class:`DataSource`).
- ``files``: those columns as a Dataset or a feature matrix (formats and task inference).
- ``load``: :func:`load_dataset`, a built-in name or a file path; :func:`read_features`, the
  columns a saved model needs.
- ``stream``: data larger than memory, read in pieces by rank (:func:`open_stream`; see
  docs/distributed.md).
"""

from __future__ import annotations

# ``NAME as NAME`` re-exports a name outside __all__ that tests reach as nnmath.datasets.NAME.
from nnmath.datasets.builtin import _ALIASES as _ALIASES
from nnmath.datasets.builtin import _BUILTINS as _BUILTINS
from nnmath.datasets.builtin import DatasetInfo, list_datasets
from nnmath.datasets.builtin import _mnist1d_arrays as _mnist1d_arrays
from nnmath.datasets.dataset import TASKS as TASKS
from nnmath.datasets.dataset import Dataset, Task, one_hot
from nnmath.datasets.files import MAX_INFERRED_CLASSES
from nnmath.datasets.generators import (
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
    plane_dataset,
)
from nnmath.datasets.load import load_dataset, read_features
from nnmath.datasets.preprocessing import Standardizer
from nnmath.datasets.readers import FILE_TYPES, DataSource
from nnmath.datasets.splits import _subset as _subset
from nnmath.datasets.splits import batches, split_for_evaluation, train_test_split
from nnmath.datasets.stream import open_stream

__all__ = [
    "FILE_TYPES",
    "MAX_INFERRED_CLASSES",
    "DataSource",
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
    "open_stream",
    "plane_dataset",
    "read_features",
    "split_for_evaluation",
    "train_test_split",
]
