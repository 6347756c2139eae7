"""Reading ``.npz`` archives without trusting them: structure, declared sizes and CRCs first.

An ``.npz`` file is a zip archive of ``.npy`` members. ``np.load`` trusts what a member's header
declares: a 200-byte file claiming a (10⁶, 10⁶) float64 array makes it try to allocate 7 TiB, and
random bytes end in advice to pass ``allow_pickle=True``. :func:`read_npz` reads the same files
and checks, in this order, before it allocates anything:

1. the zip structure (a readable central directory, no encrypted, duplicate or non-``.npy``
   members);
2. each member's ``.npy`` header, parsed with ``numpy.lib.format`` without reading the data: a
   plain dtype (numbers, booleans, text; never objects, so never pickle) and a shape of
   non-negative integers;
3. the declared size: header + ∏shape · itemsize must equal the member's size in the zip
   directory, and all members together must fit in the memory available now;
4. the data, read into one buffer per array, and the zip CRC-32 of every member.

Every failure is one error of the caller's class (``DataError`` for data, ``ModelFileError`` for
model files) that names the file and what is wrong with it.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from nnmath.errors import NNMathError

MAX_NPY_HEADER = 10_000
"""Bytes allowed for one ``.npy`` header (NumPy's own default limit)."""

MAX_MEMBERS = 100_000
"""Members allowed in one archive (a model with K layers has 2K + 1)."""

MEMORY_FRACTION = 0.8
"""Arrays may take at most this fraction of the memory available when the file is read."""

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
    OverflowError,
)
"""What the zipfile module raises on a damaged archive (bad CRC, truncation, odd compression)."""


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_fits_in_memory(n_bytes: int, what: str, error: type[NNMathError]) -> None:
    """Raise ``error`` when ``n_bytes`` exceed MEMORY_FRACTION of the memory available now."""
    available = available_memory()
    if available is not None and n_bytes > MEMORY_FRACTION * available:
        raise error(
            f"{what} needs {size_text(n_bytes)} of memory, more than the "
            f"{size_text(available)} available; the file is corrupted or too large for this "
            "machine"
        )


def size_text(n_bytes: float) -> str:
    """A number of bytes as people read it: 192 bytes, 22.9 MiB, 7.3 TiB."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    for unit in units:
        if n_bytes < 1024 or unit == units[-1]:
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(f"{n:,}" for n in shape) + ("," if len(shape) == 1 else "") + ")"


class _Member:
    """One ``.npy`` member: its zip entry, the array it declares, and where its data begins."""

    def __init__(self, info: zipfile.ZipInfo, file: IO[bytes], where: str, error: type) -> None:
        self.info, self.name = info, info.filename.removesuffix(".npy")
        label = f"{_prefix(where)}member {info.filename!r}"
        try:
            version = npy_format.read_magic(file)
            if version == (1, 0):
                header = npy_format.read_array_header_1_0(file, max_header_size=MAX_NPY_HEADER)
            elif version == (2, 0):
                header = npy_format.read_array_header_2_0(file, max_header_size=MAX_NPY_HEADER)
            else:
                raise ValueError(f".npy format version {version} is not supported")
        except zipfile.BadZipFile:  # a bad CRC or size: the archive is damaged, said by the caller
            raise
        except _ZIP_ERRORS as err:
            raise error(f"{label} is not a valid .npy array ({_first_line(err)})") from err
        self.shape, self.fortran_order, self.dtype = header
        if self.dtype.hasobject or self.dtype.fields is not None or self.dtype.kind == "V":
            raise error(
                f"{label} holds {self.dtype} values; nnmath reads only arrays of numbers, booleans "
                "or text (never Python objects)"
            )
        if any(n < 0 for n in self.shape):
            raise error(f"{label} declares the impossible shape {self.shape}")
        self.data_bytes = math.prod(self.shape) * self.dtype.itemsize
        self.offset = file.tell()  # the header's length: the data starts here
        declared = self.offset + self.data_bytes
        if declared != info.file_size:
            raise error(
                f"{label} declares a {self.dtype} array of shape {_shape_text(self.shape)} "
                f"({size_text(self.data_bytes)}) but holds {size_text(info.file_size)}; the "
                "file is corrupted or was crafted"
            )

    def read(self, file: IO[bytes]) -> np.ndarray:
        """The array, from a fresh stream of the member: the header is skipped, the data read into
        a new buffer, and reading to the end checks the member's CRC-32."""
        file.read(self.offset)
        buffer = bytearray(self.data_bytes)
        view, filled = memoryview(buffer), 0
        while filled < self.data_bytes:
            count = file.readinto(view[filled:])  # type: ignore[attr-defined]
            if not count:
                raise EOFError(f"member {self.info.filename!r} ends early")
            filled += count
        if file.read(1):
            raise ValueError(f"member {self.info.filename!r} is longer than its header declares")
        array = np.frombuffer(buffer, dtype=self.dtype)
        return array.reshape(self.shape, order="F" if self.fortran_order else "C")


def _prefix(where: str) -> str:
    """ "FILE: " to start a message with, or nothing when the caller names the file itself."""
    return f"{where}: " if where else ""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _members(archive: zipfile.ZipFile, where: str, error: type) -> list[zipfile.ZipInfo]:
    """The archive's entries, after checking that each is a plain, unique ``.npy`` member."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise error(
            f"{_prefix(where)}the archive has {len(infos):,} members, more than {MAX_MEMBERS:,}"
        )
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if info.flag_bits & 0x1:
            raise error(
                f"{_prefix(where)}member {name!r} is encrypted; nnmath reads plain .npz files"
            )
        if not name.endswith(".npy") or info.is_dir():
            raise error(
                f"{_prefix(where)}member {name!r} is not a .npy array; an .npz archive holds only .npy "
                "arrays (write it with np.savez)"
            )
        if name in seen:
            raise error(
                f"{_prefix(where)}the member {name!r} appears twice; the archive is corrupted"
            )
        seen.add(name)
    return infos


def read_npz(
    source: str | os.PathLike[str] | bytes, *, where: str, error: type[NNMathError]
) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive (a path or its bytes), checked as the module says.

    ``where`` names the file at the start of messages ("" leaves that to the caller); ``error`` is the class raised (DataError or
    ModelFileError). Member names lose their ``.npy`` suffix, as with ``np.load``.
    """
    file = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    try:
        with zipfile.ZipFile(file) as archive:
            infos = _members(archive, where, error)
            members = []
            for info in infos:
                with archive.open(info) as stream:
                    members.append(_Member(info, stream, where, error))
            total = sum(member.data_bytes for member in members)
            check_fits_in_memory(total, f"{_prefix(where)}the arrays this archive declares", error)
            arrays = {}
            for member in members:
                with archive.open(member.info) as stream:
                    arrays[member.name] = member.read(stream)
            return arrays
    except NNMathError:
        raise
    except _ZIP_ERRORS as err:
        raise error(
            f"{_prefix(where)}not a readable .npz archive, or truncated or corrupted "
            f"({_first_line(err)}); write or copy the file again"
        ) from err
