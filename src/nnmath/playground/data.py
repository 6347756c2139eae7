"""The playground's data: a built-in 2-D set drawn from the seed, or the user's small CSV file.

Built-in sets come from :mod:`nnmath.datasets`' generators with the chosen number of points and
noise; an upload is read by :func:`nnmath.datasets.load_dataset` like any other CSV file (the same
checks, the same messages naming the line and column), after a size check. Both are split into
train and test with :func:`nnmath.datasets.train_test_split`. An uploaded table's features are
standardised with the train split's statistics (and a regression target too); the built-in sets
are already centred on the origin and are used as drawn, so the boundary view shows their own
coordinates.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnmath.datasets import (
    Dataset,
    Standardizer,
    load_dataset,
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
    plane_dataset,
    train_test_split,
)
from nnmath.errors import DataError
from nnmath.playground.config import UPLOAD, Config, SettingError

MAX_UPLOAD_BYTES = 512 * 1024
MAX_ROWS = 5000
MAX_FEATURES = 32
MAX_OUTPUTS = 10
MARGIN = 0.15  # the boundary view extends the data's range by this fraction on every side


@dataclass
class Data:
    """The train and test splits the session trains on, and how to draw them."""

    name: str
    train: Dataset
    test: Dataset
    standardizer: Standardizer | None = None
    target_standardizer: Standardizer | None = None
    extent: tuple[float, float, float, float] | None = None  # x0 min, x0 max, x1 min, x1 max

    @property
    def task(self) -> str:
        """The training set's task."""
        return self.train.task

    @property
    def n_features(self) -> int:
        """The number of features (2 for the generated sets)."""
        return self.train.n_features


def generate(name: str, points: int, noise: float, rng: np.random.Generator) -> Dataset:
    """The built-in 2-D set ``name`` with ``points`` points and the given noise (blobs: spread)."""
    if name == "blobs":
        X, y = make_blobs(points, rng, std=noise)
    elif name == "spirals":
        X, y = make_spirals(points, rng, noise=noise)
    elif name == "moons":
        X, y = make_moons(points, rng, noise=noise)
    elif name == "circles":
        X, y = make_circles(points, rng, noise=noise)
    else:
        X, y = make_xor(points, rng, noise=noise)
    return plane_dataset(name, X, y)


def read_upload(content: bytes, filename: str = "upload.csv") -> Dataset:
    """The data set in an uploaded CSV file, read and checked like ``nnmath train --data FILE``."""
    if len(content) > MAX_UPLOAD_BYTES:
        raise DataError(
            f"{filename}: the file has {len(content):,} bytes; the playground takes CSV files of "
            f"at most {MAX_UPLOAD_BYTES // 1024} KiB"
        )
    with tempfile.TemporaryDirectory(prefix="nnmath-upload-") as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(content)
        try:
            dataset = load_dataset(path)
        except DataError as error:  # name the user's file, not the temporary copy
            raise DataError(str(error).replace(str(path), filename)) from None
    _check_size(dataset, filename)
    return dataclasses.replace(dataset, name=Path(filename).stem or "upload")


def _check_size(dataset: Dataset, filename: str) -> None:
    if dataset.n_samples > MAX_ROWS:
        raise DataError(
            f"{filename}: {dataset.n_samples} rows; the playground takes at most {MAX_ROWS}"
        )
    if dataset.n_samples < 10:
        raise DataError(
            f"{filename}: {dataset.n_samples} rows; give at least 10 to train and test on"
        )
    if dataset.n_features > MAX_FEATURES:
        raise DataError(
            f"{filename}: {dataset.n_features} feature columns; the playground takes at most "
            f"{MAX_FEATURES}"
        )
    if dataset.n_outputs > MAX_OUTPUTS:
        what = "classes" if dataset.task == "classification" else "target columns"
        raise DataError(
            f"{filename}: {dataset.n_outputs} {what}; the playground takes at most {MAX_OUTPUTS}"
        )


def build_data(config: Config, upload: Dataset | None, rng: np.random.Generator) -> Data:
    """Draw (or take the upload), split into train and test, and standardise an upload."""
    if config.data == UPLOAD:
        if upload is None:
            raise SettingError(
                "this address names uploaded data, which is not kept in the address: upload the "
                "CSV file again, or choose a built-in data set"
            )
        train, test = train_test_split(upload, config.test_fraction, rng=rng)
        return _standardised(upload.name, train, test)
    dataset = generate(config.data, config.points, config.noise, rng)
    train, test = train_test_split(dataset, config.test_fraction, rng=rng)
    return Data(config.data, train, test, extent=_extent(dataset.X))


def _standardised(name: str, train: Dataset, test: Dataset) -> Data:
    """Features (and a regression target) mapped by the train split's Standardizer."""
    features = Standardizer.fit(train.X)
    target = Standardizer.fit(train.y) if train.task == "regression" else None

    def mapped(part: Dataset) -> Dataset:
        y = part.y if target is None else target.transform(part.y)
        return dataclasses.replace(part, X=features.transform(part.X), y=y)

    train, test = mapped(train), mapped(test)
    extent = _extent(np.concatenate([train.X, test.X])) if train.n_features == 2 else None
    return Data(name, train, test, features, target, extent)


def _extent(X: np.ndarray) -> tuple[float, float, float, float]:
    """A square around the points, MARGIN wider than their range, centred on their middle."""
    low, high = X.min(axis=0), X.max(axis=0)
    centre = (low + high) / 2
    half = max(float(np.max(high - low)) / 2 * (1 + MARGIN), 1e-6)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def check_output(config: Config, data: Data) -> None:
    """Refuse an output layer and loss that do not suit the data's task or class count."""
    if config.task != data.task:
        suited = "softmax/cross-entropy" if data.task == "classification" else "identity/mse"
        raise SettingError(
            f"the output {config.output} is for {config.task}, but {data.name} is a {data.task} "
            f"set; choose {suited}"
        )
    if config.output_activation == "sigmoid" and data.train.n_outputs != 2:
        raise SettingError(
            f"a single sigmoid output (binary cross-entropy) needs two classes, but {data.name} "
            f"has {data.train.n_outputs}; choose softmax/cross-entropy"
        )


def output_width(config: Config, data: Data) -> int:
    """C classes for softmax, 1 for a sigmoid, k targets for regression."""
    return 1 if config.output_activation == "sigmoid" else data.train.n_outputs
