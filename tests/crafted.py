"""Crafted files that the readers' fuzzers and the command line's corpus both throw at nnmath."""

from __future__ import annotations

import io
import zipfile

import numpy as np


def huge_npy_member(name: str) -> bytes:
    """A zip whose member declares a (10⁶, 10⁶) float64 array (7.3 TiB) and holds 64 bytes."""
    header = io.BytesIO()
    header_dict = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    np.lib.format.write_array_header_1_0(header, header_dict)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}.npy", header.getvalue() + bytes(64))
    return buffer.getvalue()
