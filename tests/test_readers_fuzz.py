"""Fuzzing the file readers: random bytes, truncations, flipped bytes and crafted headers.

Every reader either reads the file or raises its one nnmath error (DataError for data files,
ModelFileError for model files); nothing else may come out. The CI run uses the derandomized
profile of conftest.py; ``HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_readers_fuzz.py``
searches longer (docs/errors.md).
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from crafted import huge_npy_member
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnmath import modelfile
from nnmath.cli import main
from nnmath.datasets import DataSource, load_dataset, read_features
from nnmath.errors import DataError, ModelFileError
from nnmath.modelfile import HEADER_KEY, load_checkpoint, load_model, save_model
from nnmath.network import MLP
from nnmath.training import fit

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

fuzz = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


# ---- seeds: one valid file of each kind ---------------------------------------------------------


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def data_npz() -> bytes:
    rng = np.random.default_rng(0)
    return npz_bytes(X=rng.normal(size=(6, 3)), y=np.array([0, 1, 0, 1, 1, 0]))


CSV = b"a,b,label\n1.5,2,x\n3,4e-1,y\n\n-5,6,x\n7,8,y\n"


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    table = pa.table({"a": [1.5, 3.0, -5.0, 7.0], "b": [2, 4, 6, 8], "label": list("xyxy")})
    pq.write_table(table, buffer, write_page_checksum=True, compression="NONE")
    return buffer.getvalue()


def model_bytes(folder: Path) -> bytes:
    model = modelfile.as_trained_model(MLP("3-4tanh-2softmax", seed=0), class_names=["x", "y"])
    return save_model(model, folder / "seed.nnm").read_bytes()


# ---- mutations ----------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed truncated, with bytes flipped, inserted or overwritten, or random bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "overwrite", "random"]))
    data = bytearray(seed)
    if kind == "random":
        return draw(st.binary(max_size=2 * len(seed)))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            piece = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(piece)] = piece
    return bytes(data)


def only(error: type[Exception], read: Callable[[], object]) -> None:
    """``read()`` succeeds or raises ``error`` with a one-line message; nothing else escapes."""
    try:
        read()
    except error as caught:
        message = str(caught)
        assert message and "\n" not in message, repr(message)
        assert "allow_pickle" not in message


# ---- the properties -----------------------------------------------------------------------------


@fuzz
@given(data=mutated(data_npz()))
def test_npz_data_files(folder: Path, data: bytes) -> None:
    path = folder / "fuzz.npz"
    path.write_bytes(data)
    only(DataError, lambda: load_dataset(path))
    only(DataError, lambda: read_features(DataSource.from_bytes(data, "npz"), None, 3))


@fuzz
@given(data=st.one_of(mutated(CSV), st.text(max_size=200).map(str.encode)))
def test_csv_files(folder: Path, data: bytes) -> None:
    path = folder / "fuzz.csv"
    path.write_bytes(data)
    only(DataError, lambda: load_dataset(path))
    only(DataError, lambda: read_features(DataSource.from_bytes(data, "csv"), ["a", "b"], 2))


@fuzz
@given(data=mutated(parquet_bytes()))
def test_parquet_files(folder: Path, data: bytes) -> None:
    path = folder / "fuzz.parquet"
    path.write_bytes(data)
    only(DataError, lambda: load_dataset(path))


@fuzz
@given(st.data())
def test_model_files(folder: Path, data: st.DataObject) -> None:
    path = folder / "fuzz.nnm"
    path.write_bytes(data.draw(mutated(model_bytes(folder))))
    only(ModelFileError, lambda: load_model(path))
    assert main(["info", str(path)]) in (0, 3)  # 3: a data or file error
    assert main(["info", str(path), "--json"]) in (0, 3)  # 3: a data or file error


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
KEYS = [*modelfile._HEADER_TYPES, "loss.name", "loss.base", "preprocessing.inputs"]


def rewrite_header(path: Path, edit: Callable[[dict], None]) -> None:
    """Change the header of a saved model, keep its arrays and a valid SHA-256 of them."""
    with zipfile.ZipFile(path) as archive:
        arrays = {
            name.removesuffix(".npy"): np.load(io.BytesIO(archive.read(name)))
            for name in archive.namelist()
        }
    header = json.loads(arrays.pop(HEADER_KEY).tobytes())
    header["sha256"] = modelfile._checksum(arrays)
    edit(header)
    text = json.dumps(header).encode()
    path.write_bytes(npz_bytes(**{HEADER_KEY: np.frombuffer(text, np.uint8)}, **arrays))


def set_key(header: dict, key: str, value: object) -> None:
    parent, _, child = key.partition(".")
    if child and isinstance(header.get(parent), dict):
        header[parent][child] = value
    else:
        header[key] = value


@fuzz
@given(key=st.sampled_from(KEYS), value=JSON)
def test_model_headers_with_values_of_any_type(folder: Path, key: str, value: object) -> None:
    path = folder / "header.nnm"
    path.write_bytes(model_bytes(folder))
    rewrite_header(path, lambda header: set_key(header, key, value))
    only(ModelFileError, lambda: load_model(path))
    assert main(["info", str(path), "--json"]) in (0, 3)  # 3: a data or file error


STATE_KEYS = [
    "epoch",
    "optimizer",
    "optimizer_scalars",
    "rng_state",
    "history",
    "early_stopping",
    "stopped",
]


@pytest.fixture(scope="module")
def checkpoint(folder: Path) -> bytes:
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.arange(12) % 2
    path = folder / "seed.ckpt"
    fit(MLP("3-4tanh-2softmax", seed=0), X, y, epochs=1, patience=2, checkpoint=path)
    return path.read_bytes()


@fuzz
@given(key=st.sampled_from(STATE_KEYS), value=JSON)
def test_checkpoint_states_with_values_of_any_type(
    folder: Path, checkpoint: bytes, key: str, value: object
) -> None:
    path = folder / "state.ckpt"
    path.write_bytes(checkpoint)
    rewrite_header(path, lambda header: header["state"].__setitem__(key, value))
    only(ModelFileError, lambda: load_checkpoint(path))


# ---- the crafted cases named in the issue -------------------------------------------------------


@pytest.mark.parametrize("kind", ["data", "model"])
def test_a_header_claiming_a_terabyte_array_fails_fast_without_allocating(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / ("huge.npz" if kind == "data" else "huge.nnm")
    path.write_bytes(huge_npy_member("X" if kind == "data" else "W1"))
    read = (lambda: load_dataset(path)) if kind == "data" else (lambda: load_model(path))
    tracemalloc.start()
    began = time.perf_counter()
    with pytest.raises(DataError if kind == "data" else ModelFileError) as caught:
        read()
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "(1,000,000, 1,000,000)" in str(caught.value) and "7.3 TiB" in str(caught.value)
    assert seconds < 1.0 and peak < 5_000_000


def test_pickled_objects_are_refused_without_advice_to_allow_them(tmp_path: Path) -> None:
    payload = io.BytesIO()
    np.save(payload, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    path = tmp_path / "objects.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", payload.getvalue())
    with pytest.raises(DataError, match="never Python objects") as caught:
        load_dataset(path)
    assert "allow_pickle" not in str(caught.value)


def test_a_flipped_byte_in_a_parquet_page_is_caught_by_its_checksum(tmp_path: Path) -> None:
    data = bytearray(parquet_bytes())
    at = data.index(np.float64(-5.0).tobytes())  # inside the data page of column 'a'
    data[at + 7] ^= 0x01
    path = tmp_path / "flipped.parquet"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="Parquet.*CRC"):
        load_dataset(path)


def test_a_bad_zip_crc_is_named(tmp_path: Path) -> None:
    data = bytearray(data_npz())
    at = data.index(np.float64(np.random.default_rng(0).normal(size=(6, 3))[2, 1]).tobytes())
    data[at] ^= 0xFF
    path = tmp_path / "crc.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupted.*CRC"):
        load_dataset(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("arrays", 5, "'arrays' must be a list, got int 5"),
        ("format_version", "1", "format_version"),
        ("spec", 3, "'spec' must be a string"),
        ("spec", "3-" + "9" * 20_000 + "relu-2softmax", "more than 10,000"),
        ("spec", "3-100000000relu-2softmax", "expects W of shape (100000000, 3)"),
        ("loss", {"name": "cross-entropy", "base": "e"}, "loss base must be a number"),
        ("class_names", ["x", 2], "'class_names' must be a list of strings"),
        ("preprocessing", {"inputs": {"mean": "abc", "scale": [1]}}, "invalid model"),
        ("dtype", "object", "not float32 or float64"),
    ],
)
def test_headers_with_wrong_types_are_clear_model_file_errors(
    tmp_path: Path, key: str, value: object, message: str
) -> None:
    path = tmp_path / "m.nnm"
    path.write_bytes(model_bytes(tmp_path))
    rewrite_header(path, lambda header: header.__setitem__(key, value))
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    assert message in str(caught.value)


def test_a_header_nested_too_deeply_is_a_model_file_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.nnm"
    path.write_bytes(model_bytes(tmp_path))
    with zipfile.ZipFile(path) as archive:
        arrays = {
            n.removesuffix(".npy"): np.load(io.BytesIO(archive.read(n))) for n in archive.namelist()
        }
    arrays[HEADER_KEY] = np.frombuffer(b"[" * 100_000 + b"]" * 100_000, np.uint8)
    path.write_bytes(npz_bytes(**arrays))
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(path)
