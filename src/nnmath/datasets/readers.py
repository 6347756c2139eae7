"""Reading data files into named columns: CSV and Parquet through pyarrow, NPZ through nnmath.archive.

One reader serves ``nnmath train`` (:func:`~nnmath.datasets.load_dataset`) and ``nnmath predict``
(:func:`~nnmath.datasets.read_features`); it never trusts a file:

- **CSV** is parsed by pyarrow's multi-threaded reader (UTF-8, a header row, commas, blank lines
  skipped, quoted values may hold commas and newlines). Only an empty cell is a null; ``true`` and
  ``false`` stay text. When pyarrow refuses the file, the standard library's ``csv`` module reads
  it again to say which line is wrong and how, and it numbers the lines of a message (the header
  is line 1) only when a message needs one.
- **Parquet** is read with its page checksums verified (``page_checksum_verification``); a file's
  declared size (its row groups' uncompressed bytes) is checked against the memory available first.
- **NPZ** is read by :func:`nnmath.archive.read_npz`: structure, declared shapes, memory and CRCs
  are checked before any array is allocated, and pickled objects are never read.

pyarrow is optional (``pip install 'nnmath[files]'``): only CSV and Parquet files need it. Errors
here do not name the file: the public functions that call these readers put its name first.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from nnmath.archive import check_fits_in_memory, read_npz
from nnmath.datasets.optional import _import_optional
from nnmath.errors import DataError

FILE_TYPES = (".csv", ".npz", ".parquet")
"""The data file types nnmath reads, by suffix."""


@dataclass(frozen=True)
class DataSource:
    """A data file to read: a path, or bytes already read (standard input), of a known type.

    ``name`` is how messages call it: the path, or ``<stdin>``. ``kind`` is one of FILE_TYPES.
    """

    name: str
    kind: str
    path: Path | None = None
    data: bytes | None = None

    @classmethod
    def from_path(cls, path: str | Path, kind: str | None = None) -> DataSource:
        """The file at ``path``; its type is ``kind`` or else its suffix."""
        path = Path(path)
        return cls(str(path), _check_kind(kind or path.suffix.lower(), path.suffix), path=path)

    @classmethod
    def from_bytes(cls, data: bytes, kind: str, name: str = "<stdin>") -> DataSource:
        """Bytes already read (e.g. from standard input) holding a file of type ``kind``."""
        return cls(name, _check_kind(kind, kind), data=data)

    def size(self) -> int:
        """The file's size in bytes."""
        return len(self.data) if self.data is not None else self.path.stat().st_size  # type: ignore[union-attr]

    def pyarrow_input(self) -> Any:
        """What pyarrow's readers take: the path, or a buffer over the bytes."""
        if self.data is None:
            return str(self.path)
        return _import_optional("pyarrow", "reading CSV and Parquet files").py_buffer(self.data)

    def text(self) -> io.TextIOBase:
        """The file as UTF-8 text (a byte-order mark skipped), for the csv module's second look."""
        raw: Any = io.BytesIO(self.data) if self.data is not None else self.path.open("rb")  # type: ignore[union-attr]
        return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _check_kind(kind: str, shown: str) -> str:
    kind = kind if kind.startswith(".") else f".{kind}"
    if kind not in FILE_TYPES:
        what = f"the file type {shown!r}" if shown else "a file with no extension"
        raise DataError(
            f"nnmath cannot read {what}; it reads {', '.join(FILE_TYPES)} files: export the data "
            "as CSV with a header row"
        )
    return kind


class Table(NamedTuple):
    """Columns read from a file, in header order.

    A column is a float64 array (numbers and booleans; NaN where a cell is null, with ``nulls``
    marking which) or an object array of text (None for an empty cell). ``locate(i)`` names data
    row i (0-based) as the user finds it: "line 7" in a CSV file, "data row 6" in a Parquet file.
    """

    header: list[str]
    columns: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray | None]
    locate: Callable[[int], str]


def check_header(header: list[str], where: str) -> None:
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


# ---- pyarrow columns to NumPy -----------------------------------------------------------------


def _numpy_column(pa: Any, column: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(values, null mask or None): numbers and booleans as float64, anything else as text."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)  # null → NaN
        nulls = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
        return values, nulls
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            raise UnicodeError("a column holds bytes that are not UTF-8 text")
        column = column.cast(pa.string())  # dates, times, nulls: as their text
    return column.to_numpy(zero_copy_only=False).astype(object), None


def _table_columns(pa: Any, table: Any, header: list[str]) -> tuple[dict, dict]:
    columns, nulls = {}, {}
    for name, column in zip(header, table.columns, strict=True):
        columns[name], nulls[name] = _numpy_column(pa, column)
    return columns, nulls


# ---- CSV --------------------------------------------------------------------------------------


def _csv_rows(source: DataSource) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank row, header included, by the csv module."""
    with source.text() as file:
        reader = csv.reader(file)
        line = 0
        try:
            for row in reader:
                line = reader.line_num
                if row:
                    yield line, row
        except UnicodeDecodeError as err:
            raise DataError(f"the file is not UTF-8 text ({err}); save it as UTF-8 CSV") from err
        except csv.Error as err:
            raise DataError(f"line {line + 1} is not valid CSV: {err}") from err


def _diagnose_csv(source: DataSource, reason: str) -> DataError:
    """The error to report for a CSV file pyarrow refused: the first line that is wrong, found by
    the csv module, or pyarrow's ``reason``."""
    header: list[str] | None = None
    for line, row in _csv_rows(source):
        if header is None:
            header = row
        elif len(row) != len(header):
            return DataError(
                f"line {line} has {len(row)} fields but the header has {len(header)} columns; "
                "every row needs one value per column (look for a missing or extra comma)"
            )
    if header is None:
        return DataError("the file is empty; a CSV file needs a header row naming its columns")
    return DataError(f"could not read the file as CSV: {reason}")


def _line_numbers(source: DataSource) -> Callable[[int], str]:
    """locate(i) → "line N" for data row i, counting lines only when first asked."""
    lines: list[int] = []

    def locate(i: int) -> str:
        if not lines:
            lines.extend(line for line, _ in _csv_rows(source))
        return f"line {lines[i + 1]}" if i + 1 < len(lines) else f"data row {i + 1}"

    return locate


def read_csv(source: DataSource) -> Table:
    """The header and columns of a comma-separated UTF-8 file with a header row."""
    pa = _import_optional("pyarrow", "reading CSV files")
    pcsv = _import_optional("pyarrow.csv", "reading CSV files")
    check_fits_in_memory(2 * source.size(), "reading this CSV file", DataError)
    options = {
        "parse_options": pcsv.ParseOptions(newlines_in_values=True),
        "convert_options": pcsv.ConvertOptions(
            null_values=[""], strings_can_be_null=True, true_values=[], false_values=[]
        ),
    }
    try:
        table = pcsv.read_csv(source.pyarrow_input(), **options)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _diagnose_csv(source, str(err).splitlines()[0][:300]) from err
    try:
        header = [str(name).strip() for name in table.column_names]
    except UnicodeError:  # a header that is not UTF-8
        raise _diagnose_csv(source, "it is not UTF-8 text; save it as UTF-8 CSV") from None
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise DataError(
            f"the header {header[0]!r} has a single column; nnmath reads comma-separated values: "
            "save the file with commas between the fields"
        )
    check_header(header, "line 1")
    if table.num_rows == 0:
        raise DataError("the file has a header but no data rows")
    try:
        columns, nulls = _table_columns(pa, table, header)
    except UnicodeError:
        raise _diagnose_csv(source, "it is not UTF-8 text; save it as UTF-8 CSV") from None
    return Table(header, columns, nulls, _line_numbers(source))


# ---- Parquet ----------------------------------------------------------------------------------


def read_parquet(source: DataSource) -> Table:
    """The columns of a Parquet file, its page checksums verified and its declared size checked."""
    pa = _import_optional("pyarrow", "reading Parquet files")
    pq = _import_optional("pyarrow.parquet", "reading Parquet files")
    try:
        file = pq.ParquetFile(source.pyarrow_input(), page_checksum_verification=True)
        metadata = file.metadata
        declared = sum(
            metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups)
        )
        check_fits_in_memory(declared, "the columns this Parquet file declares", DataError)
        table = file.read()
        header = [str(name) for name in table.column_names]
        if not header:
            raise DataError("the file has no columns")
        check_header(header, "the Parquet schema")
        if table.num_rows == 0:
            raise DataError("the file has columns but no data rows")
        columns, nulls = _table_columns(pa, table, header)
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError, UnicodeError, IndexError, TypeError) as err:
        reason = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        raise DataError(f"could not read the file as Parquet: {reason}") from err
    return Table(header, columns, nulls, lambda i: f"data row {i + 1}")


# ---- NPZ --------------------------------------------------------------------------------------


def read_arrays(source: DataSource) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive, checked by :func:`nnmath.archive.read_npz`."""
    return read_npz(
        source.data if source.data is not None else source.path, where="", error=DataError
    )  # type: ignore[arg-type]


def read_table(source: DataSource) -> Table:
    """The Table of a CSV or Parquet file."""
    return read_csv(source) if source.kind == ".csv" else read_parquet(source)
