"""The entry points for data: a built-in set by name or the user's file (load_dataset), and the
feature columns a saved model needs from a file (read_features)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np

from nnmath.datasets.builtin import _ALIASES, _BUILTINS
from nnmath.datasets.dataset import TASKS, Dataset, Task
from nnmath.datasets.files import _FILE_TYPES, _checked_source, _load_file, features_of
from nnmath.datasets.readers import DataSource
from nnmath.errors import DataError, SpecError
from nnmath.outputs import as_path


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
    instead of inferring it (rule in :mod:`nnmath.datasets.files`). Errors about a file start with
    its path.
    """
    if task is not None and task not in TASKS:
        raise SpecError(f"task must be 'classification' or 'regression', got {task!r}")
    as_path(source, "the data (a built-in set's name or a file)")
    if isinstance(source, str):
        key = source.strip().lower().replace("_", "-")
        key = _ALIASES.get(key, key)
        if key in _BUILTINS:
            builtin = _BUILTINS[key]
            if target is not None:
                raise SpecError(
                    f"the built-in set {key!r} has a fixed target; drop target= (--target on the "
                    "command line)"
                )
            if task is not None and task != builtin.task:
                raise SpecError(f"the built-in set {key!r} is a {builtin.task} set, not {task}")
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
    except OSError as err:  # unreadable: permissions, a device error
        raise DataError(f"{path}: could not read the file ({err.strerror or err})") from err


def read_features(
    source: str | os.PathLike[str] | DataSource,
    feature_names: list[str] | None,
    n_features: int,
) -> np.ndarray:
    """The feature matrix X (S, n_features), float64, that a model needs from a data file.

    ``source`` is a .csv, .parquet or .npz path, or a :class:`DataSource` (e.g. bytes read from
    standard input). With ``feature_names`` (a saved model's), those columns are taken by name
    and any other column (an id, the true label) is ignored; without, the file must have exactly
    ``n_features`` columns, taken in order. The same reader and checks as :func:`load_dataset`;
    errors start with the file's name.
    """
    name = source.name if isinstance(source, DataSource) else str(source)
    try:
        if not isinstance(source, DataSource):
            source = _checked_source(Path(source))
        return features_of(source, feature_names, n_features)
    except DataError as err:
        raise DataError(f"{name}: {err}") from err.__cause__
    except OSError as err:  # unreadable: permissions, a device error
        raise DataError(f"{name}: could not read the file ({err.strerror or err})") from err
