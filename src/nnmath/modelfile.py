"""Model files: a trained network with everything needed to use it, saved atomically and validated.

The format (``.nnm``, specified in docs/model-format.md) is a NumPy ``.npz`` archive read with
``allow_pickle=False``: one uint8 array ``__nnmath__`` holding a UTF-8 JSON header (format and
version, spec, dtype, loss, task, class/feature/target names, preprocessing, training metadata and
the SHA-256 of every other array), and the weights ``W1, b1, W2, b2, …``. A checkpoint is the same
archive with ``"format": "nnmath-checkpoint"``, the training state in the header and its arrays
under ``state.*``.

Writes go to a temporary file ``.NAME.XXXXXXXX.tmp`` in the target's directory, locked while it is
written, flushed and fsynced, then renamed over the target (``os.replace``), so a crash mid-save
leaves the old file intact; the next save to the same path removes the temporary files that no
live save holds. Reads trust nothing: the archive's structure, every array's declared size and
the zip CRCs (:mod:`nnmath.archive`), then the header's keys and types, the version, the shapes
against the spec and the checksum; every failure is a :class:`~nnmath.errors.ModelFileError`
that says what is wrong with the file.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import IO, Any

import numpy as np

from nnmath.activations import ensure_registered, registered_expressions
from nnmath.archive import read_npz
from nnmath.checkpoint import TrainingState
from nnmath.datasets import Standardizer
from nnmath.errors import DataError, ModelFileError, NNMathError, OutputError, ShapeError
from nnmath.losses import CrossEntropy, Loss, get_loss
from nnmath.metrics import (
    class_probabilities,
    classification_metrics,
    predicted_classes,
    regression_metrics,
)
from nnmath.network import MLP
from nnmath.outputs import as_path
from nnmath.spec import parse_spec

FORMAT_VERSION = 1
MODEL_FORMAT = "nnmath-model"
CHECKPOINT_FORMAT = "nnmath-checkpoint"
HEADER_KEY = "__nnmath__"
ZIP_SIGNATURE = b"PK\x03\x04"
REQUIRED_KEYS = ("format", "format_version", "spec", "dtype", "loss", "task", "arrays", "sha256")
MAX_SPEC_LENGTH = 10_000
"""Characters allowed in a stored spec (a 1,000-layer network needs about 8,000)."""

try:  # a save holds an advisory lock on its temporary file; POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale temporary files are then left alone
    fcntl = None  # type: ignore[assignment]


def nnmath_version() -> str:
    """This nnmath's version, from the installed package's metadata ("unknown" without one)."""
    try:
        return importlib_metadata.version("nnmath")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


# ---- writing files atomically -----------------------------------------------------------------


def _temporary_pattern(path: Path) -> re.Pattern[str]:
    """The names ``tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")`` gives: 8 random characters."""
    return re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of interrupted saves to ``path``; returns those removed.

    Only files named as :func:`atomic_write` names them (``.NAME.XXXXXXXX.tmp`` beside the target)
    and only stale ones: a save in progress holds a lock on its file, so a file whose lock can be
    taken belongs to a save that died (killed, power lost). Without ``fcntl`` (Windows) nothing
    is removed.
    """
    path, removed = Path(path), []
    if fcntl is None or not path.parent.is_dir():
        return removed
    pattern = _temporary_pattern(path)
    for candidate in path.parent.iterdir():
        if not pattern.fullmatch(candidate.name) or candidate.is_symlink():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            descriptor = os.open(candidate, os.O_RDONLY)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a live save
                candidate.unlink()
                removed.append(candidate)
            finally:
                os.close(descriptor)
    return removed


def _locked_temporary(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path``, locked for as long as its descriptor stays open.

    A concurrent :func:`remove_stale_temporaries` may remove the file between its creation and
    the lock; then it is no longer at its name, and another is made.
    """
    while True:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        if fcntl is None:
            return descriptor, temporary
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(temporary).st_ino == os.fstat(descriptor).st_ino:
                return descriptor, temporary
        os.close(descriptor)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file via ``write(file)`` into a temporary sibling, fsync it, then rename it over path.

    Readers see either the old file or the complete new one, never a partial write; on any error
    the temporary file is removed and the old file is left untouched. Missing parent directories
    are created, and the temporary files of earlier saves to ``path`` that were interrupted are
    removed (:func:`remove_stale_temporaries`).
    """
    path = Path(as_path(path, "the file to write"))
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name in it, e.g. {path / 'model.nnm'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    descriptor, temporary = _locked_temporary(path)
    try:
        with os.fdopen(descriptor, "wb", closefd=False) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)  # still locked, so no other save takes it for stale
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    finally:
        os.close(descriptor)
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
    ``created`` and ``written_by`` say when and by which nnmath its file was written (None for a
    model that was not loaded from a file).

    What each method returns, as everywhere in nnmath: ``predict`` gives the answer in the data's
    own terms (class names, or values in the target's units), ``predict_proba`` the class
    probabilities, ``predict_classes`` the class indices, and ``outputs`` the network's raw output
    a⁽ᴷ⁾ (what ``MLP.predict`` and ``FastStep.predict`` return, having no labels to map it to).
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
    created: str | None = None
    written_by: str | None = None

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
        """Architecture, loss, names, preprocessing and metadata as plain JSON-ready values.

        ``created`` and ``nnmath_version`` are those of the file the model was loaded from (None
        and this nnmath's version for a model not loaded from a file).
        """
        return dict(
            _header(self),
            created=self.created,
            nnmath_version=self.written_by or nnmath_version(),
        )

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
        """Write this model to ``path`` atomically (see :func:`save_model`); returns the path."""
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainedModel:
        """The model in the file at ``path`` (see :func:`load_model`)."""
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
    """W1, b1, …, and each batch norm's gamma, beta, running_mean, running_var (MLP.named_arrays)."""
    return {name: np.asarray(array) for name, array in network.named_arrays().items()}


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
        "activations": registered_expressions(L.activation for L in model.network.spec.layers),
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
    path = Path(as_path(path, "a model file"))
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
    arrays = read_npz(path, where=str(path), error=ModelFileError)
    if HEADER_KEY not in arrays:
        raise ModelFileError(
            f"{path}: an .npz archive but not an nnmath model file (no {HEADER_KEY!r} "
            f"header; arrays: {', '.join(arrays) or 'none'})"
        )
    raw = arrays.pop(HEADER_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(
            f"{path}: the header is not a byte string (got {raw.dtype} {raw.shape})"
        )
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:200]
        raise ModelFileError(f"{path}: the header is not valid JSON ({reason})") from error
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
    _check_header_types(path, header)
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


_NONE = type(None)
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "format_version": (int,),
    "nnmath_version": (str, _NONE),
    "created": (str, _NONE),
    "spec": (str,),
    "dtype": (str,),
    "loss": (dict,),
    "task": (str,),
    "class_names": (list, _NONE),
    "feature_names": (list, _NONE),
    "target_name": (str, _NONE),
    "preprocessing": (dict, _NONE),
    "training": (dict, _NONE),
    "arrays": (list,),
    "sha256": (str,),
    "state": (dict,),
    "config": (dict, _NONE),
    "activations": (dict, _NONE),
}
"""The JSON type of every header value nnmath reads (``int`` never admits true/false)."""

_TEXT_LISTS = ("arrays", "class_names", "feature_names")


def _type_names(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", dict: "an object", list: "a list", _NONE: "null"}
    return " or ".join(names[t] for t in types)


def _check_header_types(path: Path, header: dict[str, Any]) -> None:
    """Every known header value has its JSON type; lists of names hold strings; the spec is short."""
    for key, types in _HEADER_TYPES.items():
        value = header.get(key)
        if key not in header or (isinstance(value, types) and not isinstance(value, bool)):
            continue
        raise ModelFileError(
            f"{path}: the header's {key!r} must be {_type_names(types)}, got "
            f"{type(value).__name__} {_short(value)}; the file is corrupted or was not written "
            "by nnmath"
        )
    for key in _TEXT_LISTS:
        values = header.get(key) or []
        if not all(isinstance(value, str) for value in values):
            raise ModelFileError(f"{path}: the header's {key!r} must be a list of strings")
    expressions = header.get("activations") or {}
    if not all(isinstance(value, str) for value in expressions.values()):
        raise ModelFileError(f"{path}: the header's 'activations' must map names to expressions")
    if len(header["spec"]) > MAX_SPEC_LENGTH:
        raise ModelFileError(
            f"{path}: the header's spec has {len(header['spec']):,} characters, more than "
            f"{MAX_SPEC_LENGTH:,}; the file is corrupted or was not written by nnmath"
        )
    loss, base = header["loss"], header["loss"].get("base")
    if not isinstance(loss.get("name"), str):
        raise ModelFileError(f"{path}: the header's loss has no name (got {_short(loss)})")
    if base is not None and (isinstance(base, bool) or not isinstance(base, int | float)):
        raise ModelFileError(f"{path}: the header's loss base must be a number, got {_short(base)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_weight_shapes(path: Path, spec: Any, arrays: dict[str, np.ndarray]) -> None:
    """W⁽ˡ⁾ has shape (n_l, n_{l−1}) and b⁽ˡ⁾ (n_l,), as the spec says, before any network is built
    (a header's spec of 10⁸ units is refused here, not after allocating its weights)."""
    for index, (n_in, n_out) in enumerate(
        zip(spec.sizes[:-1], spec.sizes[1:], strict=True), start=1
    ):
        W, b = arrays.get(f"W{index}"), arrays.get(f"b{index}")
        if W is None or b is None:
            raise ModelFileError(f"{path}: the file lacks the weights of layer {index} of {spec}")
        if W.shape != (n_out, n_in) or b.shape != (n_out,):
            raise ModelFileError(
                f"{path}: the file describes an invalid model: layer {index} of {spec} expects W "
                f"of shape {(n_out, n_in)} and b of shape {(n_out,)}, got {W.shape} and {b.shape}"
            )


def _model_from(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrainedModel:
    try:
        ensure_registered(header.get("activations") or {})  # your own activations, checked again
        spec = parse_spec(header["spec"])
        _check_weight_shapes(path, spec, arrays)
        dtype = np.dtype(header["dtype"])
        if dtype not in (np.float32, np.float64):
            raise ModelFileError(f"{path}: the header's dtype is {dtype}, not float32 or float64")
        for index in range(1, len(spec.layers) + 1):
            W, b = arrays[f"W{index}"], arrays[f"b{index}"]
            if W.dtype != dtype or b.dtype != dtype:
                raise ModelFileError(
                    f"{path}: layer {index}'s weights are {W.dtype}/{b.dtype}, the header says "
                    f"{dtype}"
                )
        network = MLP.from_arrays(spec, arrays)
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
            created=header.get("created"),
            written_by=header.get("nnmath_version"),
        )
    except ModelFileError:
        raise
    except KeyError as error:
        raise ModelFileError(f"{path}: the file lacks {error}; it is incomplete") from error
    except (NNMathError, TypeError, AttributeError, ValueError) as error:
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
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as error:
        raise ModelFileError(f"{path}: the training state is incomplete ({error})") from error
    if len(state.weights) != len(model.network.parameters()):
        raise ModelFileError(f"{path}: the training state does not match the network")
    return Checkpoint(model, state, header.get("config"))


# ---- the front door: save and load what nnmath trains -----------------------------------------

_OUTPUT_LOSSES = {"softmax": "cross-entropy", "sigmoid": "binary-cross-entropy"}
"""The loss ``fit`` uses by default for a classifier's output (``training.default_loss_name``);
any other output gets mse."""

_CLASSIFICATION_LOSSES = ("cross-entropy", "binary-cross-entropy")


def as_trained_model(
    network: MLP,
    *,
    loss: Loss | str | None = None,
    task: str | None = None,
    class_names: list[str] | None = None,
    feature_names: list[str] | None = None,
    target_name: str | None = None,
) -> TrainedModel:
    """A bare MLP as a TrainedModel, with the loss and task that ``fit`` assumes by default.

    loss: a Loss or its name; default cross-entropy for a softmax output, binary cross-entropy for
    a sigmoid output, mse otherwise. task: default classification for those two losses, else
    regression. No standardizers: the model takes the inputs the network was trained on.
    """
    if isinstance(loss, str) or loss is None:
        loss = get_loss(loss or _OUTPUT_LOSSES.get(network.output, "mse"))
    if task is None:
        task = "classification" if loss.name in _CLASSIFICATION_LOSSES else "regression"
    return TrainedModel(
        network=network,
        loss=loss,
        task=task,
        class_names=class_names,
        feature_names=feature_names,
        target_name=target_name,
    )


def save(model: Any, path: str | os.PathLike[str], **details: Any) -> Path:
    """Save a model to ``path`` (conventionally ``.nnm``), atomically; returns the path.

    ``model`` is a :class:`TrainedModel` (saved as it is), a bare :class:`~nnmath.network.MLP`
    (wrapped by :func:`as_trained_model`, which takes ``details``: loss, task, class_names,
    feature_names, target_name), or any object with a ``to_trained_model()`` method.
    """
    if isinstance(model, MLP):
        model = as_trained_model(model, **details)
    elif details:
        raise ModelFileError(
            f"save takes {', '.join(details)} only for a bare MLP; a "
            f"{type(model).__name__} already carries them"
        )
    elif hasattr(model, "to_trained_model"):
        model = model.to_trained_model()
    if not isinstance(model, TrainedModel):
        raise ModelFileError(
            f"cannot save a {type(model).__name__}; save an MLP or a TrainedModel "
            "(or an object with a to_trained_model() method)"
        )
    return save_model(model, path)


def load(path: str | os.PathLike[str]) -> TrainedModel:
    """The model saved at ``path`` as a TrainedModel (``.network`` is its MLP); a checkpoint's
    model too. Every check of :func:`load_model` applies."""
    return load_model(path)
