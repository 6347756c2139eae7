"""Reading the user's own files: CSV, Parquet and NPZ, with errors that name the bad cell.

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
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nnmath.datasets.dataset import Dataset, Task
from nnmath.datasets.optional import _import_optional
from nnmath.errors import DataError

MAX_INFERRED_CLASSES = 20
"""An integer-valued target with at most this many distinct values is inferred to be classes."""

_FILE_TYPES = (".csv", ".npz", ".parquet")


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
