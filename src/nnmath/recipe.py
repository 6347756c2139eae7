"""The data-set recipe: what ``nnmath train`` runs, from a data set's name to a trained model.

``train_dataset(config)`` loads the data, splits off a test set, standardises the inputs (and
regression targets) with the training split's statistics, builds the network the config names
(``complete_spec`` fills in the input width and the output layer), trains it with
``training.fit`` and evaluates it on the held-out rows. ``TrainConfig`` holds the settings, with
per-data-set defaults (``DATASET_DEFAULTS``) for those left out; ``prepare_split`` reproduces a
run's split from its config alone, so ``nnmath evaluate`` and a resumed run see the same rows.

Training runs in float32 by default (``TrainConfig.dtype``; float64 is ``--dtype float64``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from nnmath.activations import register_definition
from nnmath.callbacks import Callback
from nnmath.checkpoint import TrainingState
from nnmath.datasets import Dataset, Standardizer, load_dataset, split_for_evaluation
from nnmath.errors import SpecError
from nnmath.evaluation import EVALUATION_ROWS
from nnmath.history import History
from nnmath.losses import get_loss
from nnmath.modelfile import TrainedModel, save_checkpoint
from nnmath.network import MLP, check_memory
from nnmath.optimizers import make_optimizer
from nnmath.penalties import Penalty, get_penalty
from nnmath.settings import CLASSIFICATION, REGRESSION
from nnmath.spec import NetworkSpec, check_characters, parse_spec
from nnmath.training import TRAINING_COPIES, check_settings, default_loss_name, fit


@dataclass(frozen=True)
class Defaults:
    """Hidden layers and schedule that train a data set well in seconds (see docs/training.md)."""

    hidden: str
    epochs: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    schedule: str | None = None
    validation_fraction: float = 0.1


DATASET_DEFAULTS: dict[str, Defaults] = {
    "digits": Defaults("512relu", 30, 32, 1e-3),
    # MNIST-1D has its own test split and needs every training row: no validation split.
    "mnist1d": Defaults("256relu-256relu", 80, 100, 1e-2, "cosine", validation_fraction=0.0),
    "iris": Defaults("8tanh", 100, 16, 1e-2),
    "wine": Defaults("32relu", 60, 16, 1e-3),
    "breast-cancer": Defaults("32relu", 40, 32, 1e-3),
    "diabetes": Defaults("32relu", 200, 32, 1e-3),
    "spirals": Defaults("64relu-64relu", 300, 32, 3e-3),
    "spirals3": Defaults("64relu-64relu", 300, 32, 3e-3),
    "xor": Defaults("16tanh", 100, 32, 1e-2),
    "moons": Defaults("32relu", 100, 32, 1e-2),
    "circles": Defaults("32relu", 100, 32, 1e-2),
    "blobs": Defaults("16relu", 50, 32, 1e-2),
}
GENERIC_DEFAULTS = Defaults("64relu", 50, 32, 1e-3)


def complete_spec(
    spec: str | None, n_in: int, n_out: int, task: str, hidden: str = GENERIC_DEFAULTS.hidden
) -> NetworkSpec:
    """The full spec for data with ``n_in`` features and ``n_out`` classes or targets.

    ``spec`` may be a full spec (``64-128relu-10softmax``), hidden layers only (``128relu`` or
    ``256relu-256relu``: the input width and the output layer, softmax for classes and identity
    for regression, are added), everything but the input width (``128relu-10softmax``, told apart
    by its softmax end), or None (``hidden`` is used). A full spec must fit the data: its
    input width must be ``n_in`` and its output must be ``n_out`` softmax units (or one sigmoid
    unit for two classes) for classification, ``n_out`` non-softmax units for regression.
    """
    text = (hidden if spec is None else spec).strip()
    if text.split("-")[0].isdigit():
        full = parse_spec(text)
    elif text.endswith("softmax"):  # hidden layers and the output layer: only the input is missing
        full = parse_spec(f"{n_in}-{text}")
    else:
        output = f"{n_out}softmax" if task == CLASSIFICATION else f"{n_out}"
        full = parse_spec(f"{n_in}-{text}-{output}")
    if full.n_in != n_in:
        hidden_part = "-".join(str(layer) for layer in full.layers[:-1]) or "64relu"
        raise SpecError(
            f"spec {str(full)!r} starts with {full.n_in} inputs but the data has {n_in} "
            f"features: start it with {n_in}- (e.g. '{n_in}-{hidden_part}-{full.layers[-1]}'), "
            f"or give only the hidden layers ('{hidden_part}')"
        )
    last = full.layers[-1]
    if task == CLASSIFICATION:
        binary_sigmoid = last.activation == "sigmoid" and last.size == 1 and n_out == 2
        if not (last.activation == "softmax" and last.size == n_out) and not binary_sigmoid:
            raise SpecError(
                f"spec {str(full)!r} ends with the layer {str(last)!r}, but the data has {n_out} "
                f"classes: a classifier's output layer must be '{n_out}softmax'"
                + (" (or '1sigmoid' for two classes)" if n_out == 2 else "")
            )
    elif last.activation == "softmax" or last.size != n_out:
        raise SpecError(
            f"spec {str(full)!r} ends with the layer {str(last)!r}, but the data has {n_out} "
            f"regression target(s): end the spec with '{n_out}' (identity output)"
        )
    return full


@dataclass(frozen=True)
class TrainConfig:
    """The settings of ``nnmath train``; None means the data set's default (``DATASET_DEFAULTS``)."""

    data: str = "digits"
    target: str | None = None
    spec: str | None = None
    loss: str | None = None
    optimizer: str = "adam"
    learning_rate: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    test_fraction: float = 0.2
    validation_fraction: float | None = None
    patience: int | None = None
    schedule: str | None = None
    clip_norm: float | None = None
    dtype: str = "float32"
    kernel: str = "auto"
    standardize: bool = True
    class_weight: str | None = None  # "balanced", or "CLASS=WEIGHT,…" by class name
    weight_column: str | None = None  # a file's column of sample weights (not a feature)
    l2: float | None = None  # penalty (α/2) Σ ‖W‖² on the cost
    l1: float | None = None  # penalty α Σ |W| on the cost
    activations: tuple[str, ...] = ()  # "NAME=EXPRESSION" activations registered for the run

    def to_dict(self) -> dict[str, Any]:
        """{field: value} for every field (what a model file stores)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The config ``to_dict`` wrote; unknown keys are ignored, missing ones take their
        defaults."""
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        if "activations" in values:  # a list in JSON
            values["activations"] = tuple(values["activations"] or ())
        return cls(**values)

    def resolved(self, dataset_name: str) -> TrainConfig:
        """This config with the data set's defaults filled in where a field is None."""
        defaults = DATASET_DEFAULTS.get(dataset_name, GENERIC_DEFAULTS)
        return replace(
            self,
            spec=self.spec if self.spec is not None else defaults.hidden,
            epochs=self.epochs if self.epochs is not None else defaults.epochs,
            batch_size=self.batch_size if self.batch_size is not None else defaults.batch_size,
            learning_rate=(
                self.learning_rate if self.learning_rate is not None else defaults.learning_rate
            ),
            schedule=self.schedule if self.schedule is not None else defaults.schedule,
            validation_fraction=(
                self.validation_fraction
                if self.validation_fraction is not None
                else defaults.validation_fraction
            ),
        )


@dataclass
class TrainingResult:
    """What :func:`train_dataset` returns: the model, its history, held-out metrics and splits."""

    model: TrainedModel
    history: History
    test_metrics: dict[str, float]
    config: TrainConfig
    train: Dataset
    test: Dataset
    seconds: float


def prepare_split(config: TrainConfig) -> tuple[Dataset, Dataset, np.random.Generator]:
    """(train, test, rng): the data set split as ``config.seed`` dictates, and the generator after.

    The same config always gives the same split, so a resumed run or ``nnmath evaluate`` sees
    exactly the rows the original run held out.
    """
    check_settings(seed=config.seed)
    dataset = load_dataset(config.data, target=config.target, seed=config.seed)
    rng = np.random.default_rng(config.seed)
    train, test = split_for_evaluation(dataset, config.test_fraction, rng)
    return train, test, rng


def check_config(config: TrainConfig) -> None:
    """Refuse settings that cannot train before any data is read (SpecError naming the fix)."""
    check_settings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        clip_norm=config.clip_norm,
        patience=config.patience,
        kernel=config.kernel,
    )
    training_dtype(config.dtype)
    config_penalty(config)
    _check_fractions(config)
    if config.spec is not None:  # its syntax now; its sizes against the data once it is read
        check_characters(config.spec)
        if not config.activations:  # names that --activation registers are known only later
            parse_spec(_placeholder_spec(config.spec))


def _placeholder_spec(text: str) -> str:
    """``text`` as complete_spec completes it, with sizes 1 where the data will give them."""
    text = text.strip()
    if text.split("-")[0].isdigit():
        return text
    return f"1-{text}" if text.endswith("softmax") else f"1-{text}-1"


def _check_fractions(config: TrainConfig) -> None:
    """The held-out fraction lies in (0, 1), the validation fraction in [0, 1) (0: none)."""
    for name, zero_allowed in (("test_fraction", False), ("validation_fraction", True)):
        value = getattr(config, name)
        if value is None or (zero_allowed and value == 0):
            continue
        if not 0.0 < value < 1.0:
            none = "; 0 means none" if zero_allowed else ""
            raise SpecError(f"{name} must lie strictly between 0 and 1, got {value!r}{none}")


def training_dtype(name: str) -> np.dtype:
    """float32 or float64, named as in the config; SpecError for anything else."""
    try:
        dtype = np.dtype(name)
    except TypeError as error:
        raise SpecError(f"unknown dtype {name!r}; use float32 or float64") from error
    if dtype not in (np.float32, np.float64):
        raise SpecError(f"dtype must be float32 or float64, got {name!r}")
    return dtype


def build_model(config: TrainConfig, train: Dataset, rng: np.random.Generator) -> TrainedModel:
    """The network the config names, for this data, with the training split's standardisation."""
    spec = complete_spec(config.spec, train.n_features, train.n_outputs, train.task)
    dtype = training_dtype(config.dtype)  # before anything is built, the run's memory (fit's rule)
    check_memory(
        spec, dtype, TRAINING_COPIES, config.batch_size + min(train.n_samples, EVALUATION_ROWS)
    )
    network = MLP(spec, rng=rng, dtype=dtype)
    standardize = config.standardize
    return TrainedModel(
        network=network,
        loss=get_loss(config.loss or default_loss_name(network.output, train.task)),
        task=train.task,
        class_names=train.class_names,
        feature_names=train.feature_names,
        target_name=train.target_name,
        standardizer=Standardizer.fit(train.X) if standardize else None,
        target_standardizer=(
            Standardizer.fit(train.y) if standardize and train.task == REGRESSION else None
        ),
    )


def train_dataset(
    config: TrainConfig,
    *,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint: str | Path | None = None,
    resume: TrainingState | None = None,
    on_start: Callable[[TrainedModel, Dataset, Dataset, TrainConfig], None] | None = None,
    comm: Any = None,
) -> TrainingResult:
    """Load the data, split off a test set, standardise, build the network, fit, evaluate.

    Inputs are standardised with the training split's statistics (regression targets too); the
    returned TrainedModel carries those transforms, so it takes raw inputs and returns outputs in
    the data's own units. ``checkpoint`` writes a checkpoint file after every epoch; ``resume``
    continues from one (use the config stored with it). ``on_start(model, train, test, config)``
    is called once the data is split and the network built, before the first epoch. ``comm``:
    data-parallel over MPI ranks (``fit(comm=)``; every rank loads the data and calls this).
    """
    began = time.perf_counter()
    for definition in config.activations:  # before the spec that names them is read
        register_definition(definition)
    check_config(config)
    train, test, rng = prepare_split(config)
    config = config.resolved(train.name)
    check_config(config)
    train, test, weights = row_weights(config, train, test)
    model = build_model(config, train, rng)
    if on_start is not None:
        on_start(model, train, test, config)
    optimizer = make_optimizer(config.optimizer, learning_rate=config.learning_rate)
    history = fit(
        model.network,
        model.network_inputs(train.X),
        model.network_targets(train.y),
        loss=model.loss,
        optimizer=optimizer,
        epochs=config.epochs,
        batch_size=config.batch_size,
        rng=rng,
        validation_fraction=config.validation_fraction,
        patience=config.patience,
        schedule=config.schedule,
        clip_norm=config.clip_norm,
        kernel=config.kernel,
        callbacks=callbacks,
        progress=progress,
        checkpoint=_checkpoint_writer(checkpoint, model, config),
        resume=resume,
        task=model.task,
        comm=comm,
        sample_weight=weights,
        penalty=config_penalty(config),
    )
    test_metrics = model.evaluate(test.X, test.y)
    seconds = time.perf_counter() - began
    model.metadata = _metadata(config, train, test, history, test_metrics, seconds, optimizer)
    return TrainingResult(model, history, test_metrics, config, train, test, seconds)


def config_penalty(config: TrainConfig) -> Penalty | None:
    """The L2 or L1 penalty the config names (``--l2``/``--l1``), or None."""
    if config.l2 is not None and config.l1 is not None:
        raise SpecError("give --l2 or --l1, not both")
    for name in ("l2", "l1"):
        if getattr(config, name) is not None:
            return get_penalty(name, getattr(config, name))
    return None


def row_weights(
    config: TrainConfig, train: Dataset, test: Dataset
) -> tuple[Dataset, Dataset, np.ndarray | None]:
    """(train, test, w): the weight column taken out of both splits (it is no feature), and each
    training row's weight: the column's value times its class's weight (``class_weight``); None
    without either. The held-out metrics are unweighted."""
    w = None
    if config.weight_column is not None:
        train, w = take_column(train, config.weight_column, config.data)
        test, _ = take_column(test, config.weight_column, config.data)
    if config.class_weight is not None:
        by_class = class_weights(config.class_weight, train)
        w = by_class if w is None else w * by_class
    return train, test, w


def take_column(data: Dataset, column: str, source: str) -> tuple[Dataset, np.ndarray]:
    """The data without the feature column ``column``, and that column's values."""
    if column not in data.feature_names:
        if data.name in DATASET_DEFAULTS or not data.feature_names:
            raise SpecError(f"--weight-column reads a column of your own file; {source} has none")
        raise SpecError(
            f"{source} has no column {column!r} to take weights from (the target cannot be "
            f"one); its feature columns: {', '.join(data.feature_names)}"
        )
    index = data.feature_names.index(column)
    keep = [i for i in range(data.n_features) if i != index]
    remaining = replace(
        data,
        X=data.X[:, keep],
        feature_names=[data.feature_names[i] for i in keep],
        X_test=None if data.X_test is None else data.X_test[:, keep],
    )
    return remaining, data.X[:, index].copy()


def class_weights(text: str, train: Dataset) -> np.ndarray:
    """Each training row's class weight: "balanced" gives class c the weight S / (C · S_c)
    (scikit-learn's), "NAME=W,NAME=W" the weights named (by class name; others 1)."""
    if train.task != CLASSIFICATION:
        raise SpecError(
            "--class-weight weighs the classes of a classification set; this is regression"
        )
    names, y = list(train.class_names or []), train.y
    if text.strip().lower() == "balanced":
        counts = np.bincount(y, minlength=len(names)).astype(np.float64)
        per_class = np.where(counts > 0, len(y) / (len(names) * np.maximum(counts, 1)), 0.0)
        return per_class[y]
    per_class = np.ones(len(names))
    for item in text.split(","):
        name, equals, value = item.partition("=")
        if not equals or name.strip() not in names:
            raise SpecError(
                f"--class-weight {text!r}: write 'balanced' or CLASS=WEIGHT pairs such as "
                f"'{names[0]}=2,{names[-1]}=0.5'; the classes: {', '.join(names)}"
            )
        try:
            per_class[names.index(name.strip())] = float(value)
        except ValueError:
            raise SpecError(f"--class-weight: {value.strip()!r} is not a number") from None
    return per_class[y]


def checkpoint_file(
    path: str | Path, model: TrainedModel, config: TrainConfig
) -> Callable[[TrainingState], None]:
    """After each epoch: the checkpoint file at ``path``, with the model and the run's config."""
    return lambda state: save_checkpoint(path, model, state, config.to_dict())


def _checkpoint_writer(
    path: str | Path | None, model: TrainedModel, config: TrainConfig
) -> Callable[[TrainingState], None] | None:
    """:func:`checkpoint_file`, where a write that fails (a full disk) warns once and training
    goes on without checkpoints."""
    if path is None:
        return None
    save = checkpoint_file(path, model, config)
    failed: list[OSError] = []

    def write(state: TrainingState) -> None:
        if failed:
            return
        try:
            save(state)
        except OSError as error:  # a full disk: warn once, keep training, the model is saved later
            failed.append(error)
            warnings.warn(
                f"could not write the checkpoint {path} ({error.strerror or error}); training "
                "goes on without checkpoints",
                stacklevel=2,
            )

    return write


def _metadata(
    config: TrainConfig,
    train: Dataset,
    test: Dataset,
    history: History,
    test_metrics: dict[str, float],
    seconds: float,
    optimizer: Any,
) -> dict[str, Any]:
    """What the model file records about the run that trained it."""
    return {
        "data": config.data,
        "n_train": train.n_samples,
        "n_test": test.n_samples,
        "config": config.to_dict(),
        "epochs_run": history.epochs,
        "best_epoch": history.best_epoch,
        "no_progress": history.no_progress,
        "final": history.last(),
        "test": test_metrics,
        "seconds": round(seconds, 3),
        "optimizer": optimizer.hyperparameters(),
    }
