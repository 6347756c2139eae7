"""The built-in sets: the generated 2-D sets, scikit-learn's bundled sets and MNIST-1D.

``_BUILTINS`` maps each name to how to load it; :func:`list_datasets` describes them all.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import importlib.metadata
import importlib.util
import os
import random
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nnmath.datasets.dataset import Dataset, Task
from nnmath.datasets.generators import (
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
    plane_dataset,
)
from nnmath.datasets.optional import _DATA_EXTRA, _import_optional
from nnmath.errors import DataError


def _generated(
    name: str, make: Callable[..., tuple[np.ndarray, np.ndarray]], n_samples: int, **options: float
) -> Callable[[int], Dataset]:
    """A loader that builds the 2-D set ``make`` with a Generator seeded by its argument."""

    def load(seed: int) -> Dataset:
        X, y = make(n_samples, np.random.default_rng(seed), **options)
        return plane_dataset(name, X, y)

    return load


def _sklearn_loader(name: str, function: str, target_name: str) -> Callable[[int], Dataset]:
    """A loader for one of scikit-learn's bundled sets (on disk, no network); the seed is unused."""

    def load(seed: int) -> Dataset:
        sk_datasets = _import_optional("sklearn.datasets", f"the {name!r} data set")
        options = {"scaled": False} if function == "load_diabetes" else {}
        bunch = getattr(sk_datasets, function)(**options)
        n_features = bunch.data.shape[1]
        feature_names = [str(f) for f in getattr(bunch, "feature_names", [])]
        if len(feature_names) != n_features:
            feature_names = [f"x{j}" for j in range(n_features)]
        if "target_names" in bunch:
            task: Task = "classification"
            class_names = [str(label) for label in bunch.target_names]
            y = bunch.target.astype(np.int64)
        else:
            task, class_names, y = "regression", None, bunch.target.astype(np.float64)
        return Dataset(
            name=name,
            X=bunch.data,
            y=y,
            task=task,
            feature_names=feature_names,
            class_names=class_names,
            target_name=target_name,
        )

    return load


def _load_digits(seed: int) -> Dataset:
    """The digits set, read straight from the CSV file that scikit-learn bundles (the same numbers
    as ``sklearn.datasets.load_digits``) without importing scikit-learn, whose import costs more
    than training a network on the set; through scikit-learn if the file is not where expected."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    locations = [] if spec is None else list(spec.submodule_search_locations or [])
    files = [f"{location}/datasets/data/digits.csv.gz" for location in locations]
    try:
        with gzip.open(files[0], "rt") as file:
            table = np.loadtxt(file, delimiter=",")
    except (IndexError, OSError, ValueError):
        return _sklearn_loader("digits", "load_digits", "digit")(seed)
    return Dataset(
        name="digits",
        X=table[:, :-1],
        y=table[:, -1].astype(np.int64),
        task="classification",
        feature_names=[f"pixel_{row}_{column}" for row in range(8) for column in range(8)],
        class_names=[str(digit) for digit in range(10)],
        target_name="digit",
    )


MNIST1D_KEYS = ("x", "y", "x_test", "y_test")


def cache_directory() -> Path:
    """Where generated data sets are kept: $NNMATH_CACHE_DIR, else $XDG_CACHE_HOME/nnmath, else
    ~/.cache/nnmath."""
    if os.environ.get("NNMATH_CACHE_DIR"):
        return Path(os.environ["NNMATH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nnmath"


def _mnist1d_cache() -> Path | None:
    """The cache file of MNIST-1D's default generation by the installed mnist1d (None if absent)."""
    try:
        version = importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError:
        return None
    return cache_directory() / f"mnist1d-{version}-default.npz"


def _digest(arrays: tuple[np.ndarray, ...]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _read_mnist1d_cache(path: Path | None) -> tuple[np.ndarray, ...] | None:
    """The cached arrays if the file is whole and unaltered (its SHA-256 matches), else None."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = tuple(np.array(archive[key]) for key in MNIST1D_KEYS)
            stored = str(archive["sha256"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    return arrays if stored == _digest(arrays) else None


def _write_mnist1d_cache(path: Path | None, arrays: tuple[np.ndarray, ...]) -> None:
    """Keep the arrays for the next run (atomically; a cache that cannot be written is skipped)."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **dict(zip(MNIST1D_KEYS, arrays, strict=True)), sha256=_digest(arrays))
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, x_test, y_test) of MNIST-1D's default generation, read-only.

    Generated offline by the installed mnist1d (about 2 s with its import), then kept in the
    cache directory (``cache_directory()``, one file per mnist1d version, checked by SHA-256), so
    that later runs read it in milliseconds. ``make_dataset`` seeds Python's and NumPy's global
    generators; both states are restored after. ``mnist1d.data.get_dataset`` is never called: it
    downloads, with no timeout.
    """
    cache = _mnist1d_cache()
    arrays = _read_mnist1d_cache(cache)
    if arrays is None:
        arrays = _generate_mnist1d()
        _write_mnist1d_cache(cache, arrays)
    for array in arrays:
        array.setflags(write=False)
    return arrays  # type: ignore[return-value]


def _generate_mnist1d() -> tuple[np.ndarray, ...]:
    """MNIST-1D's default generation by ``mnist1d.data.make_dataset``, global RNG states kept."""
    data_module = _import_optional("mnist1d.data", "the 'mnist1d' data set")
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = data_module.make_dataset(data_module.get_dataset_args())
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return tuple(np.array(data[key]) for key in MNIST1D_KEYS)


def _load_mnist1d(seed: int) -> Dataset:
    """MNIST-1D (Greydanus 2020): 4000 training and 1000 fixed test signals of length 40.

    The seed is unused: the set is the package's default generation (its own seed 42), the one
    its published results use.
    """
    x, y, x_test, y_test = _mnist1d_arrays()
    return Dataset(
        name="mnist1d",
        X=x.astype(np.float64),
        y=y.astype(np.int64),
        task="classification",
        feature_names=[f"x{j}" for j in range(x.shape[1])],
        class_names=[str(digit) for digit in range(10)],
        target_name="digit",
        X_test=x_test.astype(np.float64),
        y_test=y_test.astype(np.int64),
    )


class _Builtin(NamedTuple):
    """One built-in set: how to load it from a seed, its task, one line about it, its extra."""

    load: Callable[[int], Dataset]
    task: Task
    description: str
    extra: str | None


_BUILTINS: dict[str, _Builtin] = {
    "xor": _Builtin(
        _generated("xor", make_xor, 400),
        "classification",
        "400 points in [-1, 1]²; class = whether x0 and x1 have opposite signs",
        None,
    ),
    "spirals": _Builtin(
        _generated("spirals", make_spirals, 600, n_arms=2),
        "classification",
        "600 points on two interleaved spiral arms, one class per arm",
        None,
    ),
    "spirals3": _Builtin(
        _generated("spirals3", make_spirals, 900, n_arms=3),
        "classification",
        "900 points on three interleaved spiral arms, one class per arm",
        None,
    ),
    "moons": _Builtin(
        _generated("moons", make_moons, 500),
        "classification",
        "500 points on two interleaved half circles with Gaussian noise",
        None,
    ),
    "circles": _Builtin(
        _generated("circles", make_circles, 500),
        "classification",
        "500 points on two concentric noisy circles (radius 1 and 0.5)",
        None,
    ),
    "blobs": _Builtin(
        _generated("blobs", make_blobs, 600),
        "classification",
        "600 points in three overlapping Gaussian blobs",
        None,
    ),
    "iris": _Builtin(
        _sklearn_loader("iris", "load_iris", "species"),
        "classification",
        "Fisher's iris flowers: 4 measurements, 3 species (scikit-learn)",
        "data",
    ),
    "wine": _Builtin(
        _sklearn_loader("wine", "load_wine", "cultivar"),
        "classification",
        "13 chemical measurements of wines from 3 cultivars (scikit-learn)",
        "data",
    ),
    "breast-cancer": _Builtin(
        _sklearn_loader("breast-cancer", "load_breast_cancer", "diagnosis"),
        "classification",
        "Wisconsin breast cancer: 30 cell-nucleus features, malignant or benign (scikit-learn)",
        "data",
    ),
    "digits": _Builtin(
        _load_digits,
        "classification",
        "8×8 images of handwritten digits, 64 pixel intensities 0-16 (scikit-learn)",
        "data",
    ),
    "diabetes": _Builtin(
        _sklearn_loader("diabetes", "load_diabetes", "disease progression after one year"),
        "regression",
        "10 baseline measurements of diabetes patients, one progression score (scikit-learn)",
        "data",
    ),
    "mnist1d": _Builtin(
        _load_mnist1d,
        "classification",
        "MNIST-1D: 1-D signals of length 40, 10 digit classes, fixed 1000-sample test split",
        "data",
    ),
}


_ALIASES = {"mnist-1d": "mnist1d"}


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the table of built-in sets; the sizes are None when its extra is not installed."""

    name: str
    task: Task
    n_samples: int | None
    n_features: int | None
    n_outputs: int | None
    n_test: int | None
    description: str
    available: bool


def list_datasets() -> list[DatasetInfo]:
    """Name, task, sizes and description of every built-in set, loading each (a few seconds).

    ``n_test`` is the size of the set's fixed test split (0 when it has none). A set whose
    optional extra is missing is listed with ``available=False`` and no sizes.
    """
    infos = []
    for name, builtin in _BUILTINS.items():
        try:
            dataset = builtin.load(0)
        except DataError:
            if builtin.extra is None:
                raise
            description = f"{builtin.description} [needs {_DATA_EXTRA}]"
            infos.append(
                DatasetInfo(name, builtin.task, None, None, None, None, description, False)
            )
            continue
        n_test = 0 if dataset.X_test is None else len(dataset.X_test)
        infos.append(
            DatasetInfo(
                name,
                dataset.task,
                dataset.n_samples,
                dataset.n_features,
                dataset.n_outputs,
                n_test,
                builtin.description,
                True,
            )
        )
    return infos
