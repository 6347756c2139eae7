"""``nnmath train --stream``: train on a data set read from disk in pieces, on one rank or many.

The recipe of :func:`recipe.train_dataset`, for data larger than memory (``datasets.stream``):

1. one statistics pass over the file (each rank reads its share): sizes, task, class list,
   standardisation (Welford/Chan), all stored in the model file as for data in memory;
2. the network the config names, from the seed (the same weights on every rank);
3. ``fit`` on the stream's training part (``StreamRows``): each epoch deals the chunks to the
   ranks afresh and shuffles through a bounded buffer; the training loss is the running mean of
   the batch costs (an exact pass would read the data again); validation rows, if asked for, are
   read once per epoch;
4. the held-out metrics from one more pass over the test rows, in the data's units, reduced over
   the ranks; the peak resident memory of every rank.

The held-out and validation rows are drawn row by row from the seed (``stream.split_parts``): the
fractions are the expected shares, not exact counts, and the split differs from the in-memory
recipe's stratified one.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nnmath.callbacks import Callback
from nnmath.checkpoint import TrainingState
from nnmath.datasets.stream import Stream, StreamRows, StreamSummary, open_stream
from nnmath.distributed import Communicator, Totals, as_communicator, combined
from nnmath.history import History
from nnmath.losses import get_loss
from nnmath.modelfile import TrainedModel
from nnmath.network import MLP
from nnmath.optimizers import Optimizer, make_optimizer
from nnmath.recipe import (
    TrainConfig,
    check_config,
    checkpoint_file,
    complete_spec,
    training_dtype,
)
from nnmath.settings import default_loss_name
from nnmath.training import fit


@dataclass(frozen=True)
class DataPart:
    """What a report says of a streamed part: its name, rows and features (no arrays held)."""

    name: str
    n_samples: int
    n_features: int


@dataclass
class StreamResult:
    """What :func:`train_streamed` returns: the model, its history, held-out metrics, sizes
    (``train`` and ``test`` as ``recipe.TrainingResult`` names them, without their arrays)."""

    model: TrainedModel
    history: History
    test_metrics: dict[str, float]
    config: TrainConfig
    train: DataPart
    test: DataPart
    seconds: float
    rows: dict[str, int]
    peak_rss_mb: list[float]  # per rank
    phases: dict[str, Any]  # seconds: statistics pass, initial loss, each epoch, test pass


def build_streamed_model(config: TrainConfig, summary: StreamSummary) -> TrainedModel:
    """The network the config names, with the statistics pass's standardisation and classes."""
    spec = complete_spec(config.spec, len(summary.feature_names), summary.n_outputs, summary.task)
    network = MLP(spec, rng=np.random.default_rng(config.seed), dtype=training_dtype(config.dtype))
    return TrainedModel(
        network=network,
        loss=get_loss(config.loss or default_loss_name(network.output, summary.task)),
        task=summary.task,
        class_names=summary.class_names,
        feature_names=summary.feature_names,
        target_name=summary.target_name,
        standardizer=summary.standardizer() if config.standardize else None,
        target_standardizer=summary.target_standardizer() if config.standardize else None,
    )


def held_out_metrics(model: TrainedModel, stream: Stream, comm: Communicator) -> dict[str, float]:
    """Loss (network scale) and accuracy, or MSE, MAE, R² in the data's units, of the test rows,
    as ``TrainedModel.evaluate`` computes them, summed over pieces and ranks."""

    def local() -> Totals | None:
        parts = []
        for X, y in stream.rows("test"):
            inputs, targets = model.network_inputs(X), model.network_targets(y)
            cost = model.network.cost(inputs, targets, model.loss, check=False)
            A = model.network.predict(inputs)
            if model.task == "classification":
                parts.append(Totals.of(cost, A, None, y))
            else:
                A = A.astype(np.float64)
                if model.target_standardizer is not None:
                    A = model.target_standardizer.inverse_transform(A)
                parts.append(Totals.of(cost, A, y, None))
        return combined(parts)

    total = combined(comm.collect(local, "the held-out evaluation"))
    return {} if total is None else total.logs()


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def streamed_config(config: TrainConfig) -> TrainConfig:
    """The config checked and resolved; no validation rows unless asked for (each validation
    pass reads the data again)."""
    check_config(config)
    if config.validation_fraction is None:
        config = replace(config, validation_fraction=0.0)
    config = config.resolved(Path(config.data).stem)
    check_config(config)
    return config


def fit_stream(
    model: TrainedModel, stream: Stream, config: TrainConfig, optimizer: Optimizer, **options: Any
) -> History:
    """``fit`` on the stream's training part (validation part, if any), running training loss."""
    inputs, targets = model.network_inputs, model.network_targets
    validation = None
    if stream.summary.rows["validation"]:
        validation = StreamRows(stream, "validation", inputs, targets)
    return fit(
        model.network, StreamRows(stream, "train", inputs, targets), None,
        validation=validation, loss=model.loss, optimizer=optimizer, epochs=config.epochs,
        batch_size=config.batch_size, seed=config.seed, patience=config.patience,
        schedule=config.schedule, clip_norm=config.clip_norm, kernel=config.kernel,
        train_metrics="running", **options,
    )  # fmt: skip


def train_streamed(
    config: TrainConfig,
    *,
    comm: Any = None,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint: str | Path | None = None,
    resume: TrainingState | None = None,
    on_start: Callable[[TrainedModel, DataPart, DataPart, TrainConfig], None] | None = None,
) -> StreamResult:
    """Statistics pass, network, ``fit`` on the stream, held-out metrics (module docstring).

    Every rank of ``comm`` calls it; rank 0 alone writes the checkpoints (the caller saves the
    model). ``phases`` in the result times each pass.
    """
    began, comm, config = time.perf_counter(), as_communicator(comm), streamed_config(config)
    stream = open_stream(
        config.data, target=config.target, seed=config.seed, test_fraction=config.test_fraction,
        validation_fraction=config.validation_fraction or 0.0, comm=comm,
    )  # fmt: skip
    phases: dict[str, Any] = {"statistics": time.perf_counter() - began}
    model = build_streamed_model(config, stream.summary)
    rows, n_features = stream.summary.rows, len(stream.summary.feature_names)
    name = Path(config.data).stem
    train, test = (
        DataPart(name, rows["train"], n_features),
        DataPart(name, rows["test"], n_features),
    )
    if on_start is not None:
        on_start(model, train, test, config)
    optimizer = make_optimizer(config.optimizer, learning_rate=config.learning_rate)
    write = None if checkpoint is None else checkpoint_file(checkpoint, model, config)
    clock = time.perf_counter()
    history = fit_stream(
        model, stream, config, optimizer, comm=comm, progress=progress, callbacks=callbacks,
        checkpoint=write, resume=resume,
    )  # fmt: skip
    phases["initial_loss"] = time.perf_counter() - clock - sum(history.seconds)
    phases["epochs"], clock = list(history.seconds), time.perf_counter()
    test_metrics = held_out_metrics(model, stream, comm) if rows["test"] else {}
    phases["test"] = time.perf_counter() - clock
    peaks = comm.collect(peak_rss_mb, "measuring memory")
    seconds = time.perf_counter() - began
    model.metadata = metadata(config, rows, history, test_metrics, seconds, optimizer, comm.size)
    return StreamResult(
        model, history, test_metrics, config, train, test, seconds, rows, peaks, phases
    )


def metadata(
    config: TrainConfig,
    rows: dict[str, int],
    history: History,
    test_metrics: dict[str, float],
    seconds: float,
    optimizer: Optimizer,
    ranks: int,
) -> dict[str, Any]:
    """What the model file records about the streamed run that trained it."""
    return {
        "data": config.data,
        "streamed": True,
        "ranks": ranks,
        "rows": rows,
        "n_train": rows["train"],
        "n_test": rows["test"],
        "config": config.to_dict(),
        "epochs_run": history.epochs,
        "best_epoch": history.best_epoch,
        "final": history.last(),
        "test": test_metrics,
        "seconds": round(seconds, 3),
        "optimizer": optimizer.hyperparameters(),
    }
