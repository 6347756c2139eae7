"""Data larger than memory: a Parquet data set or a .npy array read in pieces, shuffled, by rank.

What a process holds at once is bounded by the shuffle buffer and one chunk being decoded, never
by the size of the data:

- A **source** cuts the data into chunks and reads a chunk in pieces of at most ``read_rows`` rows:
  a Parquet file, or a directory of them, through ``pyarrow.dataset`` (a chunk is a row group, the
  unit Parquet decodes), or a 2-D ``.npy`` array through memory mapping (a chunk is a block of
  ``BLOCK_ROWS`` rows, whose pages are handed back to the kernel once copied).
- The **split** into training, validation and test rows is drawn row by row from a generator keyed
  by (seed, chunk): u ~ U[0, 1); test if u < f_test, validation if u < f_test + f_val, else training.
  Every rank and every epoch sees the same split, with no communication and nothing stored.
- Each **epoch** deals the chunks to the ranks afresh: a permutation of the chunks drawn from
  (seed, epoch), the same on every rank, each chunk going to the rank with the fewest training rows
  so far. A rank reads only its chunks, through a **shuffle buffer**: each piece read joins the
  buffer, and once it holds more than ``buffer_rows`` rows the excess leaves, drawn uniformly from
  all rows held; what is left leaves in random order at the end of the epoch.
- Rank r's share of a global batch of B rows is b_r = ⌊B/N⌋, plus one for r < B mod N. Every rank
  takes the same number of steps, max_r ⌈S_r / b_r⌉ (S_r its training rows this epoch); a rank
  whose rows have run out gives empty batches, and the reduction divides by the rows actually given.
- The **statistics** come from one streaming pass (:func:`open_stream`): per-column count, mean and
  M2 of every piece, combined with Chan et al.'s formula (``preprocessing.Moments``), then combined
  across ranks in rank order, so every rank holds the same numbers. The class list is the union
  over every chunk of every rank (all three parts: a class seen only in test rows is still a class).

Column rules are those of ``datasets.files`` (target: the column named ``target``, else the last;
task inference and class order as there). A ``.npy`` file holds one 2-D numeric array whose column
``target`` (an index, default the last) is the target; the features are named x0, x1, … by column.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nnmath.datasets.dataset import one_hot
from nnmath.datasets.files import MAX_INFERRED_CLASSES, _label_name
from nnmath.datasets.optional import _import_optional
from nnmath.datasets.preprocessing import Moments, Standardizer
from nnmath.datasets.readers import check_header
from nnmath.errors import DataError

Array = np.ndarray
Piece = tuple[Array, Array]
"""(X, y): rows of features (float64) and their targets, raw or encoded."""

READ_ROWS = 16_384
"""Rows per piece read from a chunk."""
BUFFER_ROWS = 65_536
"""Default capacity of the shuffle buffer, in rows."""
BLOCK_ROWS = 65_536
"""Rows per chunk of a .npy file."""
TRAIN, VALIDATION, TEST = 0, 1, 2
PARTS = {"train": TRAIN, "validation": VALIDATION, "test": TEST}
_SPLIT_KEY, _EPOCH_KEY, _PASS_KEY = 1, 2, 3  # keep the split, epoch and pass generators apart


class Ranks(Protocol):
    """What a stream needs of a communicator (``distributed.Communicator`` is one)."""

    rank: int
    size: int

    def collect(self, compute: Callable[[], Any], what: str) -> list[Any]:
        """[compute() of rank 0, of rank 1, …] on every rank; an error on one stops them all."""
        ...


class OneProcess:
    """The communicator of a single process: rank 0 of 1."""

    rank, size = 0, 1

    def collect(self, compute: Callable[[], Any], what: str) -> list[Any]:
        """[compute()]: the only rank's result."""
        return [compute()]


# ---- the pieces: split, deal, shuffle, batch ---------------------------------------------------


def split_parts(
    seed: int, chunk: int, rows: int, test_fraction: float, validation_fraction: float
) -> Array:
    """int8 part of each row of a chunk: TEST if u < f_test, VALIDATION if u < f_test + f_val,
    else TRAIN, with u ~ U[0, 1) drawn from the generator keyed by (seed, chunk)."""
    u = np.random.default_rng([seed, _SPLIT_KEY, chunk]).random(rows)
    parts = np.zeros(rows, np.int8)
    parts[u < test_fraction + validation_fraction] = VALIDATION
    parts[u < test_fraction] = TEST
    return parts


def deal(weights: list[int], n_ranks: int, rng: np.random.Generator) -> list[list[int]]:
    """Chunk indices per rank: the chunks in an order drawn from ``rng``, each to the rank with
    the least weight so far (the lowest rank on a tie)."""
    shares: list[list[int]] = [[] for _ in range(n_ranks)]
    loads = [0] * n_ranks
    for i in rng.permutation(len(weights)):
        r = loads.index(min(loads))
        shares[r].append(int(i))
        loads[r] += weights[i]
    return shares


def shuffle_buffer(
    pieces: Iterable[Piece], capacity: int, rng: np.random.Generator
) -> Iterator[Piece]:
    """The rows of ``pieces`` in an order drawn from ``rng``, holding at most ``capacity`` rows
    plus one piece: rows beyond the capacity leave, drawn uniformly from all rows held; the last
    ``capacity`` leave in random order at the end."""
    X_pool: Array | None = None
    y_pool: Array | None = None
    for X, y in pieces:
        if X_pool is None or y_pool is None:
            X_pool, y_pool = X, y
        else:
            X_pool, y_pool = np.concatenate([X_pool, X]), np.concatenate([y_pool, y])
        excess = len(X_pool) - capacity
        if excess > 0:
            leave = rng.choice(len(X_pool), excess, replace=False)
            stay = np.ones(len(X_pool), bool)
            stay[leave] = False
            yield X_pool[leave], y_pool[leave]
            X_pool, y_pool = X_pool[stay], y_pool[stay]
    if X_pool is not None and y_pool is not None and len(X_pool):
        order = rng.permutation(len(X_pool))
        yield X_pool[order], y_pool[order]


def rebatch(pieces: Iterable[Piece], batch_rows: int) -> Iterator[Piece]:
    """The rows of ``pieces`` in order, cut into batches of ``batch_rows`` (the last may be short)."""
    held: list[Piece] = []
    count = 0
    for X, y in pieces:
        held.append((X, y))
        count += len(X)
        if count < batch_rows:
            continue
        X_all, y_all = np.concatenate([p[0] for p in held]), np.concatenate([p[1] for p in held])
        cut = count - count % batch_rows
        for start in range(0, cut, batch_rows):
            yield X_all[start : start + batch_rows], y_all[start : start + batch_rows]
        held, count = [(X_all[cut:], y_all[cut:])], count - cut
    if count:
        yield np.concatenate([p[0] for p in held]), np.concatenate([p[1] for p in held])


def batch_share(batch_size: int, n_ranks: int, rank: int) -> int:
    """b_r = ⌊B/N⌋ + [r < B mod N]: rank r's rows of a global batch of B rows."""
    return batch_size // n_ranks + (rank < batch_size % n_ranks)


# ---- sources -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """One chunk of a source: its row count, and where its first row is (for error messages)."""

    rows: int
    file: str
    first_row: int  # 0-based, within ``file``
    handle: Any = field(default=None, compare=False)  # the source's own reference (a fragment)


def _finite_features(X: Array, names: list[str], chunk: Chunk, offset: int) -> Array:
    """X itself, or a DataError naming the file, data row and column of the first bad value."""
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = bad[0]
        value = "missing (null or NaN)" if np.isnan(X[i, j]) else str(X[i, j])
        raise DataError(
            f"{chunk.file}: data row {chunk.first_row + offset + i + 1}, column {names[j]!r}: "
            f"the value is {value}; every feature value must be a finite number: fill it in or "
            "delete the row"
        )
    return X


class ParquetSource:
    """A Parquet file or a directory of them, read row group by row group (``pyarrow.dataset``)."""

    def __init__(self, path: Path, target: str | None) -> None:
        pa = _import_optional("pyarrow", "reading Parquet files")
        dataset_module = _import_optional("pyarrow.dataset", "reading Parquet files")
        try:
            dataset = dataset_module.dataset(str(path), format="parquet")
            fragments = list(dataset.get_fragments())
        except (pa.ArrowException, OSError) as err:
            raise DataError(f"{path}: could not read it as Parquet: {err}") from err
        header = [str(name) for name in dataset.schema.names]
        check_header(header, f"{path}: the Parquet schema")
        self.target_name = header[-1] if target is None else target
        if self.target_name not in header:
            columns = ", ".join(repr(name) for name in header)
            raise DataError(
                f"{path}: there is no column named {target!r}; the columns are {columns}"
            )
        self.feature_names = [name for name in header if name != self.target_name]
        self.target_numeric = _numeric(pa, dataset.schema.field(self.target_name).type)
        for name in self.feature_names:
            kind = dataset.schema.field(name).type
            if not _numeric(pa, kind):
                raise DataError(
                    f"{path}: column {name!r} holds {kind}; feature columns must be numeric: "
                    f"encode it as numbers, drop it, or pass target={name!r} if it is the target"
                )
        self.chunks = [
            Chunk(group.row_groups[0].num_rows, Path(fragment.path).name, first, group)
            for fragment in fragments
            for first, group in _row_groups(fragment)
        ]
        self._pa = pa

    def read(self, chunk: Chunk, read_rows: int) -> Iterator[Piece]:
        """The chunk's rows in pieces: features as float64 (S, n), the target as numbers or text."""
        pa, offset = self._pa, 0
        columns = [*self.feature_names, self.target_name]
        for batch in chunk.handle.to_batches(columns=columns, batch_size=read_rows):
            X = np.empty((batch.num_rows, len(self.feature_names)))
            for j in range(len(self.feature_names)):
                X[:, j] = batch.column(j).cast(pa.float64()).to_numpy(zero_copy_only=False)
            target = batch.column(len(self.feature_names))
            if self.target_numeric:
                y = target.cast(pa.float64()).to_numpy(zero_copy_only=False)
            else:
                y = np.asarray(target.to_pylist(), dtype=object)
            yield _finite_features(X, self.feature_names, chunk, offset), y
            offset += batch.num_rows


def _numeric(pa: Any, kind: Any) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    )


def _row_groups(fragment: Any) -> Iterator[tuple[int, Any]]:
    """(first row, one-row-group fragment) for each row group of a Parquet file fragment."""
    first = 0
    for group in fragment.split_by_row_group():
        yield first, group
        first += group.row_groups[0].num_rows


class NpySource:
    """A 2-D numeric ``.npy`` array, memory-mapped and read in blocks of ``block_rows`` rows.

    Each block is copied out of the mapping and its pages are then released
    (``madvise(MADV_DONTNEED)``), so the process never holds more of the file than one block.
    """

    def __init__(self, path: Path, target: str | int | None, block_rows: int = BLOCK_ROWS) -> None:
        try:
            with path.open("rb") as file:
                version = np.lib.format.read_magic(file)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(file)
                self._offset = file.tell()
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: could not read it as a NumPy .npy array: {err}") from err
        if len(shape) != 2 or shape[1] < 2 or fortran or dtype.kind not in "biuf":
            raise DataError(
                f"{path}: a streamed .npy file holds one 2-D numeric array in C order with the "
                f"target as one of its columns (at least 2); got shape {shape}, dtype {dtype}"
                + (", Fortran order" if fortran else "")
            )
        self._shape, self._dtype = shape, dtype
        column = shape[1] - 1 if target is None else _column_index(target, shape[1], path)
        self._target = column
        self._features = [j for j in range(shape[1]) if j != column]
        self.feature_names = [f"x{j}" for j in self._features]
        self.target_name, self.target_numeric = "y", True
        rows = shape[0]
        self.chunks = [
            Chunk(min(block_rows, rows - first), path.name, first)
            for first in range(0, rows, block_rows)
        ]

    def read(self, chunk: Chunk, read_rows: int) -> Iterator[Piece]:
        """The block's rows in pieces of at most ``read_rows``, features and target as float64."""
        row_bytes = self._shape[1] * self._dtype.itemsize
        for start in range(chunk.first_row, chunk.first_row + chunk.rows, read_rows):
            stop = min(start + read_rows, chunk.first_row + chunk.rows)
            offset = self._offset + start * row_bytes
            block = np.frombuffer(
                self._map, self._dtype, (stop - start) * self._shape[1], offset
            ).reshape(stop - start, self._shape[1])
            X = block[:, self._features].astype(np.float64)
            y = block[:, self._target].astype(np.float64)
            del block
            self._release(offset, (stop - start) * row_bytes)
            yield _finite_features(X, self.feature_names, chunk, start - chunk.first_row), y

    def _release(self, offset: int, length: int) -> None:
        """Hand the mapped pages of [offset, offset + length) back to the kernel."""
        start = offset - offset % mmap.PAGESIZE
        if hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED, start, offset + length - start)


def _column_index(target: str | int, n_columns: int, path: Path) -> int:
    try:
        column = int(target)
    except ValueError:
        column = -1
    if not 0 <= column < n_columns:
        raise DataError(
            f"{path}: the target of a .npy array is a column index 0 … {n_columns - 1}, got "
            f"{target!r}"
        )
    return column


def open_source(path: str | os.PathLike[str], target: str | None = None) -> Any:
    """The source of a ``.parquet`` file or directory, or of a ``.npy`` file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found (looked in {Path.cwd()}): check the path")
    if path.suffix.lower() == ".npy":
        return NpySource(path, target)
    if path.is_dir() or path.suffix.lower() == ".parquet":
        return ParquetSource(path, target)
    raise DataError(
        f"{path}: streaming reads .parquet files (or a directory of them) and .npy arrays; "
        "convert the data to Parquet, or train without --stream"
    )


# ---- the statistics pass -----------------------------------------------------------------------


@dataclass
class Tally:
    """What one rank learns from its chunks in the statistics pass (combined over ranks)."""

    rows: Array  # rows per part: [train, validation, test]
    features: Moments  # of the training rows' features
    targets: Moments | None  # of the training rows' targets, when they are numbers
    labels: (
        set[Any] | None
    )  # distinct targets of all rows; None once there are too many for classes
    integral: bool  # every target a whole number

    def combine(self, other: Tally) -> Tally:
        """The tally of both parts' rows: counts added, moments combined, label sets joined."""
        labels = None if self.labels is None or other.labels is None else self.labels | other.labels
        targets = (
            None
            if self.targets is None or other.targets is None
            else self.targets.combine(other.targets)
        )
        return Tally(
            self.rows + other.rows,
            self.features.combine(other.features),
            targets,
            labels,
            self.integral and other.integral,
        )


@dataclass(frozen=True)
class StreamSummary:
    """Sizes, names, task, classes and standardisation statistics of a streamed data set."""

    rows: dict[str, int]
    task: str
    feature_names: list[str]
    target_name: str
    class_values: Array | None  # sorted distinct labels (numbers or text); index = class
    features: Moments
    targets: Moments | None

    @property
    def class_names(self) -> list[str] | None:
        """The classes' names in class order (None for regression)."""
        if self.class_values is None:
            return None
        return [_label_name(value) for value in self.class_values.tolist()]

    @property
    def n_outputs(self) -> int:
        """The network's output width: the number of classes, or 1 for regression."""
        return 1 if self.class_values is None else len(self.class_values)

    def standardizer(self) -> Standardizer:
        """The training rows' feature standardiser (as ``Standardizer.fit`` on all of them)."""
        return self.features.standardizer()

    def target_standardizer(self) -> Standardizer | None:
        """The training rows' target standardiser, for regression (None for classification)."""
        return (
            None
            if self.task == "classification" or self.targets is None
            else self.targets.standardizer()
        )


def _decide_task(
    tally: Tally, numeric: bool, task: str | None, where: str
) -> tuple[str, Array | None]:
    """(task, sorted class values) by the rule of ``datasets.files``."""
    if task is None:
        few = tally.labels is not None and len(tally.labels) <= MAX_INFERRED_CLASSES
        task = "classification" if not numeric or (few and tally.integral) else "regression"
    if task == "regression":
        if not numeric:
            raise DataError(f"{where}: the target is not numeric; regression needs numbers")
        return task, None
    if tally.labels is None or len(tally.labels) < 2:
        found = "a single class" if tally.labels else "no classes"
        raise DataError(f"{where}: the target has {found}; classification needs at least two")
    return task, np.asarray(sorted(tally.labels))


# ---- the stream --------------------------------------------------------------------------------


class Stream:
    """A data set read in pieces, split, dealt to the ranks and shuffled (see the module docstring).

    ``summary`` holds what one streaming pass learned; ``batches(epoch, B)`` gives this rank's
    share of each global batch of B training rows, ``rows(part)`` this rank's rows of a part for
    evaluation. Both give (X, y): raw features as float64 (S, n), and class indices int64 (S,) or
    raw regression targets float64 (S, 1).
    """

    def __init__(
        self,
        source: Any,
        *,
        seed: int = 0,
        test_fraction: float = 0.0,
        validation_fraction: float = 0.0,
        task: str | None = None,
        comm: Ranks | None = None,
        buffer_rows: int = BUFFER_ROWS,
        read_rows: int = READ_ROWS,
    ) -> None:
        if not (0 <= test_fraction < 1 and 0 <= validation_fraction < 1 - test_fraction):
            raise DataError(
                f"the test ({test_fraction}) and validation ({validation_fraction}) fractions "
                "must be ≥ 0 and leave training rows (their sum below 1)"
            )
        if buffer_rows < 1 or read_rows < 1:
            raise DataError("buffer_rows and read_rows must be whole numbers ≥ 1")
        self.source, self.seed, self.comm = source, seed, comm or OneProcess()
        self.fractions = (test_fraction, validation_fraction)
        self.buffer_rows, self.read_rows = buffer_rows, read_rows
        self.counts = [np.bincount(self._parts(i), minlength=3) for i in range(len(source.chunks))]
        self.summary = self._summarize(task)

    # ---- reading -------------------------------------------------------------------------------

    def _parts(self, i: int) -> Array:
        return split_parts(self.seed, i, self.source.chunks[i].rows, *self.fractions)

    def _read(self, indices: Iterable[int], part: int | None) -> Iterator[tuple[Piece, Array]]:
        """((X, raw y), parts of those rows) for the rows of ``part`` (None: all) of the chunks."""
        for i in indices:
            if part is not None and self.counts[i][part] == 0:
                continue
            chunk, parts, offset = self.source.chunks[i], self._parts(i), 0
            for X, y in self.source.read(chunk, self.read_rows):
                piece_parts = parts[offset : offset + len(X)]
                _targets_present(y, chunk, offset)
                offset += len(X)
                keep = slice(None) if part is None else piece_parts == part
                if part is None or keep.any():
                    yield (X[keep], y[keep]), piece_parts[keep]

    def _encode(self, y: Array) -> Array:
        """Class indices int64 (S,), or targets float64 (S, 1)."""
        values = self.summary.class_values
        if values is None:
            return y.astype(np.float64).reshape(-1, 1)
        if values.dtype.kind in "US":
            y = y.astype(str)
        return np.searchsorted(values, y).astype(np.int64)

    def _pieces(self, indices: Iterable[int], part: int) -> Iterator[Piece]:
        for (X, y), _ in self._read(indices, part):
            yield X, self._encode(y)

    # ---- the statistics pass -------------------------------------------------------------------

    def _tally(self, indices: list[int], collect_all: bool) -> Tally:
        """This rank's counts, moments and labels over its chunks (one pass)."""
        n = len(self.source.feature_names)
        tally = Tally(np.zeros(3, np.int64), Moments.empty(n), None, set(), True)
        if self.source.target_numeric:
            tally.targets = Moments.empty(1)
        for (X, y), parts in self._read(indices, None):
            train = parts == TRAIN
            tally.rows += np.bincount(parts, minlength=3)
            tally.features = tally.features.combine(Moments.of(X[train]))
            if tally.targets is not None:
                y_train = y[train].astype(np.float64).reshape(-1, 1)
                tally.targets = tally.targets.combine(Moments.of(y_train))
                tally.integral = tally.integral and bool(np.all(np.round(y) == y))
            if tally.labels is not None:
                tally.labels |= set(np.unique(y).tolist())
                if not collect_all and len(tally.labels) > MAX_INFERRED_CLASSES:
                    tally.labels = None  # too many distinct values to be inferred as classes
        return tally

    def _summarize(self, task: str | None) -> StreamSummary:
        """One pass over every rank's chunks, the tallies combined in rank order."""
        comm, source = self.comm, self.source
        weights = [chunk.rows for chunk in source.chunks]
        mine = deal(weights, comm.size, np.random.default_rng([self.seed, _PASS_KEY]))[comm.rank]
        collect_all = task == "classification" or not source.target_numeric
        tallies = comm.collect(lambda: self._tally(mine, collect_all), "the statistics pass")
        tally = tallies[0]
        for other in tallies[1:]:
            tally = tally.combine(other)
        where = source.chunks[0].file if source.chunks else "the data"
        if tally.rows[TRAIN] == 0:
            raise DataError(f"{where}: no training rows (the data is empty, or all held out)")
        task, values = _decide_task(tally, source.target_numeric, task, where)
        return StreamSummary(
            rows={name: int(tally.rows[part]) for name, part in PARTS.items()},
            task=task,
            feature_names=list(source.feature_names),
            target_name=source.target_name,
            class_values=values,
            features=tally.features,
            targets=tally.targets,
        )

    # ---- training and evaluation ---------------------------------------------------------------

    def _epoch_shares(self, epoch: int) -> list[list[int]]:
        weights = [int(counts[TRAIN]) for counts in self.counts]
        return deal(weights, self.comm.size, np.random.default_rng([self.seed, _EPOCH_KEY, epoch]))

    def steps(self, epoch: int, batch_size: int) -> int:
        """max_r ⌈S_r / b_r⌉: the steps every rank takes in ``epoch`` with global batch B."""
        size = self.comm.size
        if batch_size < size:
            raise DataError(
                f"a global batch of {batch_size} rows cannot be shared by {size} ranks: use a "
                f"batch size of at least {size}"
            )
        shares = self._epoch_shares(epoch)
        return max(
            math.ceil(
                sum(int(self.counts[i][TRAIN]) for i in share) / batch_share(batch_size, size, r)
            )
            for r, share in enumerate(shares)
        )

    def global_batch_rows(self, epoch: int, batch_size: int) -> list[int]:
        """B_t = Σ_r min(b_r, max(0, S_r − t b_r)): the rows of each global batch of the epoch
        (known to every rank without communication)."""
        size, shares = self.comm.size, self._epoch_shares(epoch)
        rows = [sum(int(self.counts[i][TRAIN]) for i in share) for share in shares]
        b = [batch_share(batch_size, size, r) for r in range(size)]
        return [
            sum(min(b[r], max(0, rows[r] - t * b[r])) for r in range(size))
            for t in range(self.steps(epoch, batch_size))
        ]

    def batches(self, epoch: int, batch_size: int) -> Iterator[Piece]:
        """This rank's share of each of the epoch's ``steps`` global batches of B training rows,
        shuffled through the buffer (an empty batch once its rows have run out)."""
        comm, n_steps = self.comm, self.steps(epoch, batch_size)
        mine = self._epoch_shares(epoch)[comm.rank]
        rng = np.random.default_rng([self.seed, _EPOCH_KEY, epoch, comm.rank])
        shuffled = shuffle_buffer(self._pieces(mine, TRAIN), self.buffer_rows, rng)
        local = rebatch(shuffled, batch_share(batch_size, comm.size, comm.rank))
        n = len(self.source.feature_names)
        empty = (np.empty((0, n)), self._encode(np.empty(0)))
        for _, batch in zip(range(n_steps), chain(local, repeat(empty)), strict=False):
            yield batch

    def rows(self, part: str) -> Iterator[Piece]:
        """This rank's rows of ``part`` ("train", "validation", "test"), in chunk order."""
        weights = [chunk.rows for chunk in self.source.chunks]
        mine = deal(weights, self.comm.size, np.random.default_rng([self.seed, _PASS_KEY]))
        return self._pieces(mine[self.comm.rank], PARTS[part])


class StreamRows:
    """One part ("train" or "validation") of a stream, as ``fit`` trains on rows.

    ``batches(B, rng, epoch)`` gives this rank's share of each global batch as the network takes
    it (``inputs(X)``, ``targets(y)``: standardised, in the network's dtype), with the global
    batch's row count B_t; ``rng`` is not used (the stream draws from its seed and the epoch).
    ``evaluate(evaluator)`` hands this rank's pieces to ``evaluator.pieces``
    (``distributed.ReducedEvaluator``), which sums and reduces the metrics.
    """

    def __init__(
        self,
        stream: Stream,
        part: str,
        inputs: Callable[[Array], Array],
        targets: Callable[[Array], Array],
    ) -> None:
        if part not in ("train", "validation"):
            raise DataError(f"fit trains on the 'train' or 'validation' part, not {part!r}")
        self.stream, self.part = stream, part
        self.inputs, self.targets = inputs, targets
        self.task = stream.summary.task
        self.labels = None  # no arrays held: a stream's running metrics are its loss alone

    def __len__(self) -> int:
        return self.stream.summary.rows[self.part]

    def batches(
        self, batch_size: int, rng: Any, epoch: int, labels: bool = True
    ) -> Iterator[tuple[Array, Array, None, float]]:
        """(X_b, targets_b, None, W_b) for each mini-batch of the epoch, in the stream's own order
        (``rng`` is not used): targets_b the class labels (``labels``) or the target rows T, W_b
        the global batch's row count."""
        weights = self.stream.global_batch_rows(epoch, batch_size)
        for (X, y), weight in zip(self.stream.batches(epoch, batch_size), weights, strict=True):
            inputs = self.inputs(X)
            yield inputs, self._targets(y, labels, inputs.dtype), None, float(weight)

    def pieces(self) -> Iterator[tuple[Array, Array | None, Array | None, None]]:
        """(X, T, labels, w) of this rank's rows of the part, as ``ReducedEvaluator`` takes them."""
        for X, y in self.stream.rows(self.part):
            if self.task == "classification":
                yield self.inputs(X), None, y, None
            else:
                yield self.inputs(X), self.targets(y), None, None

    def evaluate(self, evaluator: Any) -> dict[str, float]:
        """The part's logs: this rank's pieces handed to ``evaluator.pieces``, which reduces
        them."""
        return evaluator.pieces(self.pieces())

    def _targets(self, y: Array, labels: bool, dtype: Any) -> Array:
        """Class labels (or their one-hot rows, for a gradients function), or the targets."""
        if self.task != "classification":
            return self.targets(y)
        return y if labels else one_hot(y, self.stream.summary.n_outputs, dtype)


def _targets_present(y: Array, chunk: Chunk, offset: int) -> None:
    """A DataError naming the first row whose target is missing (null or NaN)."""
    missing = (
        np.flatnonzero([value is None for value in y])
        if y.dtype == object
        else np.flatnonzero(np.isnan(y))
    )
    if missing.size:
        row = chunk.first_row + offset + int(missing[0]) + 1
        raise DataError(
            f"{chunk.file}: data row {row}: the target is missing; every row needs a target "
            "value: fill it in or delete the row"
        )


def open_stream(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    task: str | None = None,
    seed: int = 0,
    test_fraction: float = 0.0,
    validation_fraction: float = 0.0,
    comm: Ranks | None = None,
    buffer_rows: int = BUFFER_ROWS,
    read_rows: int = READ_ROWS,
) -> Stream:
    """A :class:`Stream` over a .parquet file or directory or a .npy array, after its statistics
    pass (every rank of ``comm`` must call it; each reads only its share)."""
    return Stream(
        open_source(path, target),
        seed=seed,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        task=task,
        comm=comm,
        buffer_rows=buffer_rows,
        read_rows=read_rows,
    )
