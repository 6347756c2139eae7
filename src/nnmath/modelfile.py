"""Model files: a trained network with everything needed to use it, saved atomically and validated.

The format (``.nnm``, specified in docs/model-format.md) is a NumPy ``.npz`` archive read with
``allow_pickle=False``: one uint8 array ``__nnmath__`` holding a UTF-8 JSON header (format and
version, spec, dtype, loss, task, class/feature/target names, preprocessing, training metadata and
the SHA-256 of every other array), and the weights ``W1, b1, W2, b2, …``. A checkpoint is the same
archive with ``"format": "nnmath-checkpoint"``, the training state in the header and its arrays
under ``state.*``.

Writes go to a temporary file in the target's directory, are flushed and fsynced, then renamed
over the target (``os.replace``), so a crash mid-save leaves the old file intact. Reads check the
zip signature, the header, the version, the keys, the shapes and the checksum, and turn every
failure into a :class:`~nnmath.errors.ModelFileError` that says what is wrong with the file.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import IO, Any

import numpy as np

from nnmath.checkpoint import TrainingState
from nnmath.datasets import Standardizer
from nnmath.errors import DataError, ModelFileError, NNMathError, ShapeError
from nnmath.losses import CrossEntropy, Loss, get_loss
from nnmath.metrics import (
    class_probabilities,
    classification_metrics,
    predicted_classes,
    regression_metrics,
)
from nnmath.network import MLP
from nnmath.spec import parse_spec

FORMAT_VERSION = 1
MODEL_FORMAT = "nnmath-model"
CHECKPOINT_FORMAT = "nnmath-checkpoint"
HEADER_KEY = "__nnmath__"
ZIP_SIGNATURE = b"PK\x03\x04"
REQUIRED_KEYS = ("format", "format_version", "spec", "dtype", "loss", "task", "arrays", "sha256")


def nnmath_version() -> str:
    try:
        return importlib_metadata.version("nnmath")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


# ---- writing files atomically -----------------------------------------------------------------


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file via ``write(file)`` into a temporary sibling, fsync it, then rename it over path.

    Readers see either the old file or the complete new one, never a partial write; on any error
    the temporary file is removed and the old file is left untouched. Missing parent directories
    are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    try:  # make the rename itself durable; not every platform lets a directory be opened
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        with contextlib.suppress(OSError):
            os.fsync(directory)
    finally:
        os.close(directory)
    return path


def _write_archive(file: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """The archive writer (np.savez, uncompressed: every member keeps its zip CRC-32)."""
    np.savez(file, **arrays)


# ---- the in-memory model ----------------------------------------------------------------------


@dataclass
class TrainedModel:
    """An MLP with the loss it was trained with and the transforms around it.

    It takes raw inputs (one sample per row, columns in ``feature_names`` order), standardises them
    with ``standardizer``, runs the network and, for regression, maps the outputs back to the
    data's units with ``target_standardizer``. ``class_names[c]`` is the label of output class c.
    """

    network: MLP
    loss: Loss
    task: str = "classification"
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    target_name: str | None = None
    standardizer: Standardizer | None = None
    target_standardizer: Standardizer | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        """C: the number of classes (2 for a single sigmoid output)."""
        return 2 if self.network.n_out == 1 else self.network.n_out

    def network_inputs(self, X: Any) -> np.ndarray:
        """The network's input for raw rows X: standardised, in the network's dtype."""
        X = np.asarray(X)
        n_in = self.network.n_in
        if X.ndim != 2 or X.shape[1] != n_in:
            names = f" ({', '.join(self.feature_names)})" if self.feature_names else ""
            raise ShapeError(
                f"the model takes {n_in} features per row{names}; got an array of shape {X.shape}"
            )
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
            raise DataError(f"inputs must be numbers, got dtype {X.dtype}")
        if self.standardizer is not None:
            X = self.standardizer.transform(X.astype(np.float64, copy=False))
        return X.astype(self.network.dtype, copy=False)

    def network_targets(self, y: Any) -> np.ndarray:
        """Class indices as given (classification), or standardised targets (S, k) (regression)."""
        y = np.asarray(y)
        if self.task == "classification":
            return y
        y = y.reshape(len(y), -1).astype(np.float64)
        if self.target_standardizer is not None:
            y = self.target_standardizer.transform(y)
        return y.astype(self.network.dtype, copy=False)

    def outputs(self, X: Any) -> np.ndarray:
        """The network's output a⁽ᴷ⁾ for raw inputs X."""
        return self.network.predict(self.network_inputs(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities P (S, C), rows summing to one (classification only)."""
        if self.task != "classification":
            raise ShapeError("predict_proba is for classifiers; this model does regression")
        return class_probabilities(self.outputs(X))

    def predict_classes(self, X: Any) -> np.ndarray:
        """The most probable class index of each row."""
        return predicted_classes(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Class names (classification) or targets in the data's units, (S, k) (regression)."""
        if self.task == "classification":
            indices = self.predict_classes(X)
            names = self.class_names or [str(c) for c in range(self.n_classes)]
            return np.asarray(names)[indices]
        A = self.outputs(X).astype(np.float64)
        return (
            A if self.target_standardizer is None else self.target_standardizer.inverse_transform(A)
        )

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Loss and metrics on raw data: accuracy for classes; mse, mae, r2 in the data's units.

        ``loss`` is the training cost, on the network's (standardised) scale.
        """
        inputs, targets = self.network_inputs(X), self.network_targets(y)
        self.network.check_input(inputs)
        logs = {"loss": self.network.cost(inputs, targets, self.loss, check=False)}
        A = self.network.predict(inputs)
        if self.task == "classification":
            logs.update(classification_metrics(targets, A))
        else:
            y_true = np.asarray(y, dtype=np.float64).reshape(len(targets), -1)
            predictions = A.astype(np.float64)
            if self.target_standardizer is not None:
                predictions = self.target_standardizer.inverse_transform(predictions)
            logs.update(regression_metrics(y_true, predictions))
        return logs

    def describe(self) -> dict[str, Any]:
        """Architecture, loss, names, preprocessing and metadata as plain JSON-ready values."""
        return _header(self)

    def summary(self) -> str:
        """The network's layer table, then the task, loss, classes and preprocessing."""
        lines = [self.network.summary(), f"task: {self.task}", f"loss: {_loss_text(self.loss)}"]
        if self.class_names is not None:
            lines.append(f"classes ({len(self.class_names)}): {', '.join(self.class_names)}")
        if self.target_name:
            lines.append(f"target: {self.target_name}")
        if self.feature_names is not None:
            shown = ", ".join(self.feature_names[:8])
            more = f", … ({len(self.feature_names)} in all)" if len(self.feature_names) > 8 else ""
            lines.append(f"features: {shown}{more}")
        for what, std in (("inputs", self.standardizer), ("targets", self.target_standardizer)):
            if std is not None:
                lines.append(
                    f"preprocessing ({what}): standardise z = (x − mean)/scale over "
                    f"{std.mean.size} columns; mean in [{std.mean.min():.4g}, "
                    f"{std.mean.max():.4g}], scale in [{std.scale.min():.4g}, {std.scale.max():.4g}]"
                )
        return "\n".join(lines)

    def save(self, path: str | os.PathLike[str]) -> Path:
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainedModel:
        return load_model(path)


def _loss_text(loss: Loss) -> str:
    if isinstance(loss, CrossEntropy) and loss.base != math.e:
        return f"{loss.name} (log base {loss.base:g})"
    return loss.name


# ---- header and arrays ------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain Python values for json.dumps: NumPy scalars and arrays become numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array in name order: name, dtype, shape and the raw bytes of each."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _weight_arrays(network: MLP) -> dict[str, np.ndarray]:
    arrays = {}
    for index, linear in enumerate(network.linears, start=1):
        arrays[f"W{index}"] = np.asarray(linear.W)
        arrays[f"b{index}"] = np.asarray(linear.b)
    return arrays


def _header(model: TrainedModel) -> dict[str, Any]:
    loss: dict[str, Any] = {"name": model.loss.name}
    if isinstance(model.loss, CrossEntropy):
        loss["base"] = model.loss.base
    return {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "nnmath_version": nnmath_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "spec": str(model.network.spec),
        "dtype": np.dtype(model.network.dtype).name,
        "loss": loss,
        "task": model.task,
        "class_names": model.class_names,
        "feature_names": model.feature_names,
        "target_name": model.target_name,
        "preprocessing": {
            "inputs": None if model.standardizer is None else model.standardizer.to_dict(),
            "targets": (
                None if model.target_standardizer is None else model.target_standardizer.to_dict()
            ),
        },
        "training": _jsonable(model.metadata),
    }


def _save(
    path: str | os.PathLike[str], header: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Path:
    header = dict(header, arrays=sorted(arrays), sha256=_checksum(arrays))
    text = json.dumps(_jsonable(header), allow_nan=True)
    members = {HEADER_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    return atomic_write(path, lambda file: _write_archive(file, members))


def save_model(model: TrainedModel, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` (conventionally ``.nnm``), atomically; returns the path."""
    return _save(path, _header(model), _weight_arrays(model.network))


def save_checkpoint(
    path: str | os.PathLike[str],
    model: TrainedModel,
    state: TrainingState,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint: the model, a ``checkpoint.TrainingState`` and the run's config."""
    state_header, state_arrays = state.to_parts()
    header = dict(_header(model), format=CHECKPOINT_FORMAT, state=state_header, config=config)
    return _save(path, header, {**_weight_arrays(model.network), **state_arrays})


# ---- reading ----------------------------------------------------------------------------------


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of an nnmath archive, checked; ModelFileError for anything wrong."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(
            f"{path}: no such file; train a model first (nnmath train --output {path}) or check "
            "the path"
        )
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory; give the path of a .nnm model file")
    with path.open("rb") as file:
        start = file.read(len(ZIP_SIGNATURE))
    if not start:
        raise ModelFileError(f"{path}: the file is empty; save the model again")
    if start != ZIP_SIGNATURE:
        raise ModelFileError(
            f"{path}: not an nnmath model file (it is not an .npz/zip archive; it starts with "
            f"{start!r}); give a .nnm file written by 'nnmath train' or save_model"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if HEADER_KEY not in names:
                raise ModelFileError(
                    f"{path}: an .npz archive but not an nnmath model file (no {HEADER_KEY!r} "
                    f"header; arrays: {', '.join(names) or 'none'})"
                )
            arrays = {name: archive[name] for name in names}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as error:
        raise ModelFileError(
            f"{path}: the file is truncated or corrupted ({error}); save or copy it again"
        ) from error
    raw = arrays.pop(HEADER_KEY)
    try:
        header = json.loads(raw.astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        raise ModelFileError(f"{path}: the header is not valid JSON ({error})") from error
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the header is not a JSON object")
    _check_header(path, header, arrays)
    return header, arrays


def _check_header(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    kind = header.get("format")
    if kind not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise ModelFileError(
            f"{path}: the header's format is {kind!r}, not {MODEL_FORMAT!r} or {CHECKPOINT_FORMAT!r}"
        )
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: the header has no valid format_version (got {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written by a newer nnmath ({header.get('nnmath_version', '?')}, format "
            f"version {version}); this nnmath ({nnmath_version()}) reads format versions up to "
            f"{FORMAT_VERSION}: upgrade nnmath (pip install --upgrade nnmath)"
        )
    missing = [key for key in REQUIRED_KEYS if key not in header]
    if missing:
        raise ModelFileError(f"{path}: the header lacks {', '.join(map(repr, missing))}")
    if sorted(arrays) != sorted(header["arrays"]):
        lost = sorted(set(header["arrays"]) - set(arrays))
        extra = sorted(set(arrays) - set(header["arrays"]))
        raise ModelFileError(
            f"{path}: the arrays do not match the header (missing: {lost or 'none'}; "
            f"unexpected: {extra or 'none'}); the file was altered after it was saved"
        )
    if _checksum(arrays) != header["sha256"]:
        raise ModelFileError(
            f"{path}: the checksum of the weights does not match the header: the file is "
            "corrupted; save or copy it again"
        )


def _model_from(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrainedModel:
    try:
        spec = parse_spec(header["spec"])
        dtype = np.dtype(header["dtype"])
        weights = []
        for index in range(1, len(spec.layers) + 1):
            W, b = arrays[f"W{index}"], arrays[f"b{index}"]
            if W.dtype != dtype or b.dtype != dtype:
                raise ModelFileError(
                    f"{path}: layer {index}'s weights are {W.dtype}/{b.dtype}, the header says "
                    f"{dtype}"
                )
            weights.append((W, b))
        network = MLP.from_weights(spec, weights)
        loss_info = header["loss"]
        base = loss_info.get("base")
        loss = get_loss(loss_info["name"], base=None if base in (None, math.e) else base)
        preprocessing = header.get("preprocessing") or {}
        inputs, targets = preprocessing.get("inputs"), preprocessing.get("targets")
        model = TrainedModel(
            network=network,
            loss=loss,
            task=header["task"],
            class_names=header.get("class_names"),
            feature_names=header.get("feature_names"),
            target_name=header.get("target_name"),
            standardizer=None if inputs is None else Standardizer.from_dict(inputs),
            target_standardizer=None if targets is None else Standardizer.from_dict(targets),
            metadata=header.get("training") or {},
        )
    except ModelFileError:
        raise
    except KeyError as error:
        raise ModelFileError(f"{path}: the file lacks {error}; it is incomplete") from error
    except (NNMathError, TypeError, AttributeError) as error:
        raise ModelFileError(f"{path}: the file describes an invalid model: {error}") from error
    _check_consistent(path, model)
    return model


def _check_consistent(path: Path, model: TrainedModel) -> None:
    n_in, n_out = model.network.n_in, model.network.n_out
    if model.task not in ("classification", "regression"):
        raise ModelFileError(f"{path}: unknown task {model.task!r}")
    if model.feature_names is not None and len(model.feature_names) != n_in:
        raise ModelFileError(
            f"{path}: {len(model.feature_names)} feature names for a network with {n_in} inputs"
        )
    if model.standardizer is not None and model.standardizer.mean.size != n_in:
        raise ModelFileError(
            f"{path}: the input standardizer has {model.standardizer.mean.size} columns, the "
            f"network {n_in} inputs"
        )
    if model.class_names is not None and len(model.class_names) != model.n_classes:
        raise ModelFileError(
            f"{path}: {len(model.class_names)} class names for a network with {n_out} outputs"
        )


def load_model(path: str | os.PathLike[str]) -> TrainedModel:
    """Read a model (or the model inside a checkpoint) written by :func:`save_model`."""
    header, arrays = _read(path)
    return _model_from(Path(path), header, arrays)


@dataclass
class Checkpoint:
    """What a checkpoint file holds: the model, the training state, and the run's config."""

    model: TrainedModel
    state: TrainingState
    config: dict[str, Any] | None


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (or ``fit(checkpoint=path)``)."""
    header, arrays = _read(path)
    path = Path(path)
    if header["format"] != CHECKPOINT_FORMAT:
        raise ModelFileError(
            f"{path}: a model file, not a checkpoint; resume from the file written by "
            "--checkpoint (or fit(checkpoint=...))"
        )
    model = _model_from(path, header, arrays)
    try:
        state = TrainingState.from_parts(header["state"], arrays)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: the training state is incomplete ({error})") from error
    if len(state.weights) != len(model.network.parameters()):
        raise ModelFileError(f"{path}: the training state does not match the network")
    return Checkpoint(model, state, header.get("config"))
