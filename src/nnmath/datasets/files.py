"""The user's own files as data: CSV, Parquet and NPZ, with errors that name the bad cell.

- ``.csv``: comma-separated, UTF-8, a header row naming the columns; blank lines are skipped. The
  target is the column named by ``target``, by default the **last** column; every other column is
  a feature and must be numeric. Errors give the line number as in the file (the header is line 1).
- ``.parquet``: columns as for CSV (errors give the 1-based data row).
- ``.npz``: arrays ``X`` (S×n) and ``y`` ((S,) labels, or (S, k) regression targets); optional
  ``feature_names``, ``class_names`` (then y must hold indices 0..C-1 in that order), and
  ``X_test``/``y_test`` for a fixed test split. ``target`` names the array used as y (default
  ``"y"``).

How the bytes are read, and checked, is :mod:`nnmath.datasets.readers`' job; this module turns the
columns into a :class:`Dataset` (training) or a feature matrix (prediction).

Task inference, when ``task`` is None: a target that is not numeric, or that is integer-valued with
at most ``MAX_INFERRED_CLASSES`` (20) distinct values, is classification; any other numeric target
is regression. Class labels are sorted (numerically when they are all numbers, as text otherwise)
and numbered 0..C-1 in that order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnmath.datasets.dataset import Dataset, Task
from nnmath.datasets.readers import FILE_TYPES, DataSource, Table, read_arrays, read_table
from nnmath.errors import DataError

MAX_INFERRED_CLASSES = 20
"""An integer-valued target with at most this many distinct values is inferred to be classes."""

_FILE_TYPES = FILE_TYPES  # the name load.py and older code use


# ---- cells and columns ------------------------------------------------------------------------


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


def _as_numbers(cells: np.ndarray) -> np.ndarray | None:
    """A text column as float64 if every cell is a number (spaces around it allowed), else None."""
    if any(cell is None for cell in cells):
        return None
    try:
        return np.char.strip(cells.astype(str)).astype(np.float64)
    except ValueError:  # a non-number, or text NumPy refuses and Python reads ("1_000")
        pass
    numbers = np.empty(len(cells))
    for i, cell in enumerate(cells):
        value = _number(cell)
        if value is None:
            return None
        numbers[i] = value
    return numbers


def _label_name(label: object) -> str:
    """A class label as text: 3.0 → "3", 0.5 → "0.5", "setosa" → "setosa"."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def _bad_number(value: float, is_null: bool) -> str:
    """What is wrong with a numeric cell that is not a finite number, and what to do."""
    if is_null:
        return "the cell is empty (a missing value); fill in every feature value or delete the row"
    if math.isnan(value):
        return "the value is NaN (a missing value); fill in every feature value or delete the row"
    return f"the value {value} is infinite; feature values must be finite"


def _feature_column(
    cells: np.ndarray, nulls: np.ndarray | None, column: str, locate: Callable[[int], str]
) -> np.ndarray:
    """The feature column as finite float64 values, or a DataError naming the first bad cell."""
    values = cells if cells.dtype == np.float64 else _as_numbers(cells)
    if values is not None:
        bad = np.flatnonzero(~np.isfinite(values))
        if not bad.size:
            return values
        i = int(bad[0])
        problem = _bad_number(values[i], nulls is not None and bool(nulls[i]))
        raise DataError(f"{locate(i)}, column {column!r}: {problem}")
    i = next(i for i, cell in enumerate(cells) if cell is None or _number(cell) is None)
    if cells[i] is None or not str(cells[i]).strip():
        raise DataError(
            f"{locate(i)}, column {column!r}: the cell is empty; fill in every feature value or "
            "delete the row"
        )
    raise DataError(
        f"{locate(i)}, column {column!r}: {cells[i]!r} is not a number; feature columns must be "
        f"numeric: encode the column as numbers, drop it, or pass target={column!r} if it is the "
        "target"
    )


# ---- the target -------------------------------------------------------------------------------


def _infer_task(values: np.ndarray | None) -> Task:
    """Classification for non-numeric targets (None) or ≤ 20 distinct integers, else regression."""
    if values is None:
        return "classification"
    integral = bool(np.all(values == np.round(values)))
    few = np.unique(values).size <= MAX_INFERRED_CLASSES
    return "classification" if integral and few else "regression"


def _target_numbers(
    cells: np.ndarray, column: str, locate: Callable[[int], str]
) -> np.ndarray | None:
    """The target as float64 if every cell is a number; a DataError for a missing or infinite one."""
    where = f"target column {column!r}"
    if cells.dtype != np.float64:
        blank = [i for i, cell in enumerate(cells) if cell is None or not str(cell).strip()]
        if blank:
            raise DataError(
                f"{locate(blank[0])}, {where}: the target is missing; every row needs a target "
                "value: fill it in or delete the row"
            )
    values = cells if cells.dtype == np.float64 else _as_numbers(cells)
    if values is None:
        return None
    missing, infinite = np.flatnonzero(np.isnan(values)), np.flatnonzero(np.isinf(values))
    if missing.size:
        raise DataError(
            f"{locate(int(missing[0]))}, {where}: the target is missing; every row needs a "
            "target value: fill it in or delete the row"
        )
    if infinite.size:
        i = int(infinite[0])
        raise DataError(f"{locate(i)}, {where}: {cells[i]!r} is infinite")
    return values


def _encode_target(
    cells: np.ndarray, column: str, locate: Callable[[int], str], task: Task | None
) -> tuple[np.ndarray, Task, list[str] | None]:
    """(y, task, class_names) from the target column; task None means infer it.

    Classification numbers the sorted distinct labels 0..C-1 (numerically if all are numbers).
    """
    values = _target_numbers(cells, column, locate)
    if task is None:
        task = _infer_task(values)
    if task == "regression":
        if values is None:
            i = next(i for i, cell in enumerate(cells) if _number(cell) is None)
            raise DataError(
                f"{locate(i)}, target column {column!r}: {cells[i]!r} is not a number, but a "
                "regression target must be numeric; pass task='classification' if these are "
                "class labels"
            )
        return values.reshape(-1, 1), task, None
    labels = values if values is not None else np.char.strip(cells.astype(str))
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DataError(
            f"the target column {column!r} has a single class ({_label_name(classes[0].item())!r}); "
            "classification needs at least two classes: check the target column, or pass "
            "task='regression'"
        )
    return y.astype(np.int64), task, [_label_name(label.item()) for label in classes]


# ---- tables and archives to data sets ---------------------------------------------------------


def _dataset_from_table(table: Table, name: str, target: str | None, task: Task | None) -> Dataset:
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
    X = _feature_matrix(table, features)
    y, task, class_names = _encode_target(table.columns[target], target, table.locate, task)
    return Dataset(
        name=name,
        X=X,
        y=y,
        task=task,
        feature_names=features,
        class_names=class_names,
        target_name=target,
    )


def _feature_matrix(table: Table, features: list[str]) -> np.ndarray:
    """X (S, n): the named columns of a table as finite float64, in the order given."""
    columns = [_feature_column(table.columns[f], table.nulls[f], f, table.locate) for f in features]
    return np.stack(columns, axis=1)


def _npz_arrays(source: DataSource, y_key: str | None) -> dict[str, np.ndarray]:
    """The archive's arrays, after checking X (2-D numbers) and, if asked, y (one per row)."""
    arrays = read_arrays(source)
    for key in ("X", y_key):
        if key is not None and key not in arrays:
            found = ", ".join(repr(k) for k in arrays) or "none"
            raise DataError(
                f"the archive has no array {key!r} (arrays found: {found}); save the features "
                "as X and the targets as y, e.g. np.savez(path, X=X, y=y)"
            )
    X = arrays["X"]
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array (samples × features), got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise DataError(f"X must hold numbers, got {X.dtype} values")
    if y_key is not None and (arrays[y_key].ndim == 0 or len(arrays[y_key]) != len(X)):
        raise DataError(
            f"X has {len(X)} rows but {y_key} has shape {arrays[y_key].shape}; give one target "
            "per row"
        )
    return arrays


def _read_npz(source: DataSource, name: str, target: str | None, task: Task | None) -> Dataset:
    """The Dataset of an .npz archive: X, y (or the array named by target), optional extras."""
    y_key = "y" if target is None else target
    arrays = _npz_arrays(source, y_key)
    X, y = arrays["X"], arrays[y_key]
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
    parts = [y] if y_test is None else [y, y_test]
    cells = np.concatenate([_target_cells(part) for part in parts])
    n_train = len(y)

    def locate(i: int) -> str:
        return f"{y_key}[{i}]" if i < n_train else f"{test_key}[{i - n_train}]"

    encoded, task, class_names = _encode_target(cells, y_key, locate, task)
    if has_test:
        test["y_test"] = encoded[n_train:]
    return Dataset(y=encoded[:n_train], task=task, class_names=class_names, **common, **test)


def _target_cells(y: np.ndarray) -> np.ndarray:
    """An archive's 1-D target as the reader's columns are: float64 numbers, or text objects."""
    if y.ndim != 1:
        raise DataError(f"a target array must be 1-D labels or 2-D values, got shape {y.shape}")
    if np.issubdtype(y.dtype, np.number):  # booleans stay text: "False", "True"
        return y.astype(np.float64)
    return y.astype(str).astype(object)


# ---- the entry points -------------------------------------------------------------------------


def _checked_source(path: Path) -> DataSource:
    """The DataSource of a path, after checking its type and that it is a file."""
    source = DataSource.from_path(path)
    if not path.exists():
        raise DataError(f"file not found (looked in {Path.cwd()}): check the path")
    if path.is_dir():
        raise DataError("this is a directory; give the path of a data file")
    return source


def _load_file(path: Path, target: str | None, task: Task | None) -> Dataset:
    """The Dataset in a .csv, .npz or .parquet file (see the module docstring for the formats)."""
    source = _checked_source(path)
    if source.kind == ".npz":
        return _read_npz(source, path.stem, target, task)
    return _dataset_from_table(read_table(source), path.stem, target, task)


def features_of(source: DataSource, names: list[str] | None, n_features: int) -> np.ndarray:
    """X (S, n) for a model with these feature names (None: the file's columns, in order).

    CSV and Parquet: the named columns, other columns ignored. NPZ: the array X, its columns
    matched by name when the archive has ``feature_names`` and the model has names.
    """
    if source.kind != ".npz":
        return _select(read_table(source), names, n_features)
    arrays = _npz_arrays(source, None)
    X = arrays["X"].astype(np.float64)
    stored = arrays.get("feature_names") if names is not None else None
    by_name = stored is not None and stored.ndim == 1 and len(stored) == X.shape[1]
    header = [str(n) for n in stored] if by_name else [f"x{j}" for j in range(X.shape[1])]
    columns = {name: X[:, j] for j, name in enumerate(header)}
    table = Table(header, columns, dict.fromkeys(header), lambda i: f"X[{i}]")
    return _select(table, names if by_name else None, n_features)


def _select(table: Table, names: list[str] | None, n_features: int) -> np.ndarray:
    """X (S, n): the columns ``names`` of a table (other columns ignored), or all of its columns
    when the model has no feature names."""
    if names is None and len(table.header) != n_features:
        raise DataError(
            f"the model takes {n_features} features, the file has {len(table.header)} columns"
        )
    wanted = names or table.header
    missing = [name for name in wanted if name not in table.columns]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise DataError(
            f"no column {', '.join(map(repr, missing[:5]))}{more}; the model needs the columns "
            f"{', '.join(wanted)}"
        )
    return _feature_matrix(table, wanted)
