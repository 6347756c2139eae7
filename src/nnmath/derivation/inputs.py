"""A user's own numbers for a worked example: weights, inputs and targets, checked before use.

- Weights come as a mapping (or a JSON or NPZ file) with the names of the derivation, ``W1``,
  ``b1``, ``W2``, …, in the layout of its notation: in the row notation W_l is n_{l-1} × n_l and
  b_l a row; in the column notation W_l is n_l × n_{l-1} (nnmath's own) and b_l a column. A bias
  may be one number for the whole layer (the textbook 2-2-2 example shares b1 = 0.35 between its
  hidden units), or a flat list.
- Inputs and targets come as text, ``0.05,0.10`` for one sample and ``;`` between samples, or as
  a CSV file of rows (a first line of column names is skipped).

Every failure is one error that names the file or option, the entry and what is wrong with it.
An NPZ file is read by ``nnmath.archive.read_npz``, which checks each member's declared shape and
size before its data is read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnmath.archive import read_npz
from nnmath.derivation.notation import Notation, get_notation
from nnmath.errors import DataError, ShapeError
from nnmath.network import MLP
from nnmath.spec import NetworkSpec, parse_spec

MAX_FILE_BYTES = 64 * 2**20  # a weights or data file for a worked example is small


# ---- weights -------------------------------------------------------------------------------------


def weight_shapes(spec: NetworkSpec, notation: Notation) -> dict[str, tuple[int, int]]:
    """The shape of every parameter in the notation's layout: W1, b1, W2, b2, …"""
    shapes: dict[str, tuple[int, int]] = {}
    for layer, (n_in, n_out) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:], strict=True), 1):
        rows = notation.samples_are_rows
        shapes[f"W{layer}"] = (n_in, n_out) if rows else (n_out, n_in)
        shapes[f"b{layer}"] = (1, n_out) if rows else (n_out, 1)
    return shapes


def _numbers(value: Any, where: str) -> np.ndarray:
    """``value`` as a float64 array: numbers only (no booleans, no text), finite, rectangular."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise DataError(f"{where} holds {value.dtype} values; give numbers")
        array = value.astype(np.float64)
    else:
        _only_numbers(value, where)
        try:
            array = np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError):
            raise DataError(f"{where} is not a rectangular table of numbers") from None
    if not np.all(np.isfinite(array)):
        raise DataError(f"{where} holds NaN or Inf; give finite numbers")
    return array


def _only_numbers(value: Any, where: str) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, (int, float, np.number)):
            raise DataError(f"{where} holds {item!r:.40}, which is not a number")


def _weight(
    array: np.ndarray, name: str, expected: tuple[int, int], other: tuple[int, int], where: str
) -> np.ndarray:
    """W_l in the notation's layout; a hint when it has the other notation's shape."""
    if array.shape == expected:
        return array
    hint = ""
    if array.shape == other and expected != other:
        hint = " (that is the other notation's layout: choose it with --notation, or transpose)"
    raise ShapeError(
        f"{where}{name} has shape {array.shape}; this network in this notation needs "
        f"{expected[0]} × {expected[1]}{hint}"
    )


def _bias(array: np.ndarray, name: str, n_out: int, where: str) -> np.ndarray:
    """b_l as the engine's vector: one number repeated, or n_out numbers in a row, column or list."""
    if array.size == 1:
        return np.full(n_out, float(array.reshape(-1)[0]))
    if array.size == n_out and sum(d != 1 for d in array.shape) <= 1:
        return array.reshape(n_out)
    raise ShapeError(
        f"{where}{name} has shape {array.shape}; give {n_out} numbers or one for the whole layer"
    )


def weights_from_mapping(
    weights: Mapping[str, Any],
    spec: NetworkSpec | str,
    notation: Notation | str = "row",
    *,
    where: str = "",
) -> MLP:
    """A float64 network from ``{"W1": …, "b1": …, …}`` in the notation's layout (and batch norm's
    ``gamma{l}``, ``beta{l}``, one number or n_l numbers, where the spec has them: 1 and 0 if not).

    ``where`` prefixes messages (a file name). Raises ShapeError or DataError naming the entry.
    """
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    notation = get_notation(notation) if isinstance(notation, str) else notation
    other = get_notation("column" if notation.samples_are_rows else "row")
    shapes, other_shapes = weight_shapes(spec, notation), weight_shapes(spec, other)
    optional = {f"{kind}{l}": l for l, layer in enumerate(spec.layers, 1) if layer.batch_norm
                for kind in ("gamma", "beta")}  # fmt: skip
    missing = [name for name in shapes if name not in weights]
    unknown = [str(name) for name in weights if name not in shapes and name not in optional]
    if missing or unknown:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(unknown)}"] if unknown else []
        )
        raise DataError(
            f"{where}the weights of {spec} are named {', '.join(shapes)}; {'; '.join(problems)}"
        )
    layers = []
    for layer, n_out in enumerate(spec.sizes[1:], start=1):
        W_name, b_name = f"W{layer}", f"b{layer}"
        W = _numbers(weights[W_name], f"{where}{W_name}")
        W = _weight(W, W_name, shapes[W_name], other_shapes[W_name], where)
        b = _bias(_numbers(weights[b_name], f"{where}{b_name}"), b_name, n_out, where)
        layers.append((np.array(notation.to_engine("W", W), dtype=np.float64), b))
    model = MLP.from_weights(spec, layers)
    for name, layer in optional.items():  # batch norm's γ, β: 1 and 0 unless given
        if name in weights:
            value = _bias(_numbers(weights[name], f"{where}{name}"), name, spec.sizes[layer], where)
            setattr(model.batch_norms[layer - 1], name.rstrip("0123456789"), value)
    return model


def read_weights(
    path: str | os.PathLike[str], spec: NetworkSpec | str, notation: Notation | str = "row"
) -> MLP:
    """A float64 network from a JSON or NPZ file of W1, b1, W2, … (see :func:`weights_from_mapping`)."""
    file = Path(path)
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    notation = get_notation(notation) if isinstance(notation, str) else notation
    where = f"{file}: "
    _check_readable(file)
    if file.suffix.lower() == ".npz" or _is_zip(file):
        mapping: Mapping[str, Any] = _read_npz(file, where)
    else:
        mapping = _read_json(file, where)
    return weights_from_mapping(mapping, spec, notation, where=where)


def _check_readable(file: Path) -> None:
    if not file.is_file():
        what = "a folder" if file.is_dir() else "not there"
        raise DataError(f"{file}: cannot read it ({what}); give a JSON or NPZ file")
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(
            f"{file}: {size} bytes is too large for this purpose (at most {MAX_FILE_BYTES})"
        )


def _is_zip(file: Path) -> bool:
    with file.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _read_json(file: Path, where: str) -> Mapping[str, Any]:
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        detail = error.msg if isinstance(error, json.JSONDecodeError) else type(error).__name__
        raise DataError(
            f"{where}not a JSON document ({detail}); write e.g. "
            '{"W1": [[0.15, 0.25], [0.2, 0.3]], "b1": 0.35, …}'
        ) from None
    if not isinstance(document, dict):
        raise DataError(f"{where}the JSON document must be an object of named arrays (W1, b1, …)")
    return document


def _read_npz(file: Path, where: str) -> dict[str, np.ndarray]:
    """The arrays of an NPZ file, read by ``archive.read_npz`` (structure, declared sizes and CRCs
    checked before and while reading, never pickles); each must hold real numbers."""
    arrays = read_npz(file, where=str(file), error=DataError)
    for name, array in arrays.items():
        if array.dtype.kind not in "fiu":
            raise DataError(f"{where}{name} holds {array.dtype} values; give numbers")
    return arrays


# ---- inputs and targets ---------------------------------------------------------------------------


def parse_rows(text: str, what: str) -> np.ndarray:
    """``"0.05,0.10"`` → [[0.05, 0.10]]; samples separated by ``;``. ``what`` names the option."""
    rows = [row for row in text.split(";") if row.strip()]
    if not rows:
        raise DataError(f"{what} is empty; give numbers such as 0.05,0.10")
    table = []
    for index, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row.split(",")]
        table.append([_cell(cell, f"{what}, sample {index}") for cell in cells])
    if len({len(row) for row in table}) != 1:
        raise DataError(
            f"{what}: the samples have different numbers of values; give as many in each"
        )
    return np.asarray(table, dtype=np.float64)


def _cell(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{where}: {cell!r:.30} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {cell} is not a finite number")
    return value


def read_rows(source: str, what: str) -> np.ndarray:
    """Rows of numbers from a CSV file (when ``source`` names one) or from text (:func:`parse_rows`)."""
    file = Path(source)
    if not (file.suffix.lower() in (".csv", ".txt") or file.exists()):
        return parse_rows(source, what)
    _check_readable(file)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{file}: not a text file") from None
    lines = [line for line in lines if line.strip()]
    if lines and not _numeric(lines[0]):
        lines = lines[1:]  # a header of column names
    if not lines:
        raise DataError(f"{file}: no rows of numbers")
    try:
        return parse_rows(";".join(lines), str(file))
    except DataError as error:
        raise DataError(str(error).replace("sample", "row")) from None


def _numeric(line: str) -> bool:
    try:
        [float(cell) for cell in line.split(",")]
    except ValueError:
        return False
    return True


def fit_rows(rows: np.ndarray, width: int, what: str) -> np.ndarray:
    """``rows`` if they have ``width`` columns; one number per row is kept as a class label."""
    if rows.shape[1] == width or (rows.shape[1] == 1 and width > 1 and what.startswith("--target")):
        return rows if rows.shape[1] == width else rows[:, 0]
    raise ShapeError(f"{what} has {rows.shape[1]} values per sample; the network needs {width}")
