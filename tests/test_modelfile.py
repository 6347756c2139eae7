"""Model files: round trips, atomic writes, and a clear ModelFileError for every broken file."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnmath import modelfile
from nnmath.datasets import Standardizer
from nnmath.errors import ModelFileError
from nnmath.losses import get_loss
from nnmath.modelfile import (
    FORMAT_VERSION,
    HEADER_KEY,
    TrainedModel,
    atomic_write,
    load_checkpoint,
    load_model,
    save_model,
)
from nnmath.network import MLP


def classifier(dtype: type = np.float64) -> TrainedModel:
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(20, 4))
    return TrainedModel(
        network=MLP("4-6tanh-3softmax", seed=1, dtype=dtype),
        loss=get_loss("cross-entropy", base=2.0),
        task="classification",
        class_names=["setosa", "versicolor", "virginica"],
        feature_names=["a", "b", "c", "d"],
        target_name="species",
        standardizer=Standardizer.fit(X),
        metadata={"data": "iris", "epochs_run": 3, "test": {"accuracy": np.float64(0.9)}},
    )


def regressor() -> TrainedModel:
    rng = np.random.default_rng(1)
    return TrainedModel(
        network=MLP("3-5relu-2", seed=2),
        loss=get_loss("mse"),
        task="regression",
        feature_names=["x", "y", "z"],
        target_name="out",
        standardizer=Standardizer.fit(rng.normal(size=(10, 3))),
        target_standardizer=Standardizer.fit(rng.normal(5, 3, size=(10, 2))),
    )


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save_model(classifier(), tmp_path / "model.nnm")


def rewrite(path: Path, edit) -> None:
    """Rewrite the archive at path with edit(header, arrays) applied (header and arrays in place)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays.pop(HEADER_KEY).tobytes().decode())
    edit(header, arrays)
    text = json.dumps(header).encode()
    with path.open("wb") as file:
        np.savez(file, **{HEADER_KEY: np.frombuffer(text, dtype=np.uint8)}, **arrays)


# ---- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_classifier_round_trip_keeps_everything(tmp_path: Path, dtype: type) -> None:
    model = classifier(dtype)
    path = save_model(model, tmp_path / "m.nnm")
    loaded = load_model(path)
    assert str(loaded.network.spec) == "4-6tanh-3softmax"
    assert loaded.network.dtype == dtype
    for p, q in zip(model.network.parameters(), loaded.network.parameters(), strict=True):
        assert p.dtype == q.dtype and p.tobytes() == q.tobytes()
    assert loaded.loss.name == "cross-entropy" and loaded.loss.base == 2.0
    assert loaded.class_names == model.class_names
    assert loaded.feature_names == model.feature_names
    assert loaded.target_name == "species"
    np.testing.assert_array_equal(loaded.standardizer.mean, model.standardizer.mean)
    np.testing.assert_array_equal(loaded.standardizer.scale, model.standardizer.scale)
    assert loaded.metadata["test"] == {"accuracy": 0.9}
    X = np.random.default_rng(5).normal(3.0, 2.0, size=(7, 4))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert list(loaded.predict(X)) == list(model.predict(X))


def test_regressor_round_trip_predicts_in_data_units(tmp_path: Path) -> None:
    model = regressor()
    loaded = load_model(save_model(model, tmp_path / "r.nnm"))
    X = np.random.default_rng(3).normal(size=(4, 3))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # predict = inverse target transform of the network's output on standardised inputs
    A = model.network.predict(model.standardizer.transform(X))
    np.testing.assert_allclose(model.predict(X), A * model.target_standardizer.scale
                               + model.target_standardizer.mean)  # fmt: skip


def test_predictions_and_evaluation_of_a_classifier() -> None:
    model = classifier()
    X = np.random.default_rng(9).normal(3.0, 2.0, size=(12, 4))
    P = model.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    y = P.argmax(axis=1)
    metrics = model.evaluate(X, y)
    assert metrics["accuracy"] == 1.0
    loss = get_loss("cross-entropy", base=2.0)
    expected = -np.mean(np.log2(P[np.arange(12), y]))
    assert metrics["loss"] == pytest.approx(expected, rel=1e-12)
    assert loss.name == "cross-entropy"


def test_save_without_npz_suffix_keeps_the_name(tmp_path: Path) -> None:
    path = save_model(classifier(), tmp_path / "sub" / "dir" / "m.nnm")
    assert path.exists() and path.name == "m.nnm"
    assert not list(path.parent.glob("*.npz"))
    assert not list(path.parent.glob(".*tmp"))


# ---- atomic writes ----------------------------------------------------------------------------


def test_a_crash_mid_save_leaves_the_old_file_intact(saved: Path, monkeypatch) -> None:
    before = saved.read_bytes()

    def crashing_writer(file: io.BufferedWriter, arrays: dict[str, np.ndarray]) -> None:
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(modelfile, "_write_archive", crashing_writer)
    with pytest.raises(OSError, match="disk full"):
        save_model(regressor(), saved)
    assert saved.read_bytes() == before
    assert load_model(saved).class_names == ["setosa", "versicolor", "virginica"]
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.nnm"]  # no temp file left


def test_atomic_write_replaces_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    atomic_write(path, lambda f: f.write(b"first"))
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, lambda f: (f.write(b"sec"), (_ for _ in ()).throw(KeyboardInterrupt())))
    assert path.read_bytes() == b"first"
    atomic_write(path, lambda f: f.write(b"second"))
    assert path.read_bytes() == b"second"


# ---- broken files -----------------------------------------------------------------------------


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "nope.nnm")
    with pytest.raises(ModelFileError, match="directory"):
        load_model(tmp_path)


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.6, 0.95])
def test_truncated_file(saved: Path, keep: float) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFileError, match="empty|truncated or corrupted"):
        load_model(saved)


def test_flipped_byte_in_the_weights(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo("W1.npy")
    # a byte inside W1's data: after the local header (30 bytes + name + extra) and the .npy header
    offset = info.header_offset + 30 + len(info.filename) + 200
    data[offset] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupted"):
        load_model(saved)


def test_checksum_catches_edited_weights(saved: Path) -> None:
    rewrite(saved, lambda header, arrays: arrays["W1"].__setitem__((0, 0), 123.0))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(saved)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"sepal,petal\n1,2\n", "not an nnmath model file"),
        (b"\x93NUMPY\x01\x00", "not an nnmath model file"),
    ],
)
def test_wrong_file_type(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "data.nnm"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_an_npz_that_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, X=np.zeros((2, 2)))
    with pytest.raises(ModelFileError, match="not an nnmath model file"):
        load_model(path)


def test_future_version(saved: Path) -> None:
    rewrite(saved, lambda header, arrays: header.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match="newer nnmath.*upgrade"):
        load_model(saved)


@pytest.mark.parametrize("key", ["spec", "loss", "task", "sha256"])
def test_missing_header_key(saved: Path, key: str) -> None:
    rewrite(saved, lambda header, arrays: header.pop(key))
    with pytest.raises(ModelFileError, match=f"lacks '{key}'"):
        load_model(saved)


def test_missing_weight_array(saved: Path) -> None:
    rewrite(saved, lambda header, arrays: arrays.pop("b2"))
    with pytest.raises(ModelFileError, match=r"missing: \['b2'\]"):
        load_model(saved)


def test_weights_that_do_not_fit_the_spec(saved: Path) -> None:
    def edit(header: dict, arrays: dict) -> None:
        header["spec"] = "4-7tanh-3softmax"
        header["sha256"] = modelfile._checksum(arrays)

    rewrite(saved, edit)
    with pytest.raises(ModelFileError, match="invalid model.*expects W of shape"):
        load_model(saved)


def test_header_that_is_not_json(saved: Path) -> None:
    with np.load(saved, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays[HEADER_KEY] = np.frombuffer(b"{not json", dtype=np.uint8)
    with saved.open("wb") as file:
        np.savez(file, **arrays)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(saved)


def test_a_model_is_not_a_checkpoint(saved: Path) -> None:
    with pytest.raises(ModelFileError, match="not a checkpoint"):
        load_checkpoint(saved)
