"""The checkpoint state: everything needed to continue a training run exactly where it stopped.

A ``TrainingState`` is taken after each epoch (``fit(checkpoint=...)``): the parameters being
trained, the optimizer's hyperparameters and state (moment estimates, step count), the shuffling
generator's state, the History so far, early stopping's state and the validation rows. A run
resumed from it (``fit(resume=state)``) ends bit-identical to the uninterrupted run.
``to_parts``/``from_parts`` turn it into the JSON header and named arrays that a checkpoint file
stores (``modelfile.save_checkpoint``/``load_checkpoint``); this module knows nothing of files.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from nnmath.early_stopping import EarlyStopping
from nnmath.errors import DataError
from nnmath.history import History
from nnmath.optimizers import Optimizer

Array = Any


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly: the checkpoint taken after epoch ``epoch``.

    ``weights`` are the parameters [W1, b1, …] at the end of that epoch (before any early-stopping
    restore), then batch norm's running statistics where the network has some; ``rng_state`` the
    shuffling generator's ``bit_generator.state``, ``masks_state`` that of the generator of the
    dropout masks (None without dropout or batch norm), ``stopped`` whether early stopping had
    already ended the run.
    """

    epoch: int
    weights: list[np.ndarray]
    optimizer: dict[str, Any]
    optimizer_state: dict[str, Any]
    rng_state: dict[str, Any]
    history: History
    early_stopping: EarlyStopping | None = None
    validation_rows: np.ndarray | None = None
    stopped: bool = False
    masks_state: dict[str, Any] | None = None

    def to_parts(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-ready header, named arrays): how a checkpoint file stores this state."""
        arrays: dict[str, np.ndarray] = {}
        for i, w in enumerate(self.weights):
            arrays[f"state.weights.{i}"] = np.asarray(w)
        optimizer_scalars = {}
        for key, value in self.optimizer_state.items():
            if isinstance(value, np.ndarray):
                arrays[f"state.optimizer.{key}"] = value
            else:
                optimizer_scalars[key] = value
        early = None
        if self.early_stopping is not None:
            es = self.early_stopping
            early = {k.name: getattr(es, k.name) for k in fields(es) if k.name != "best_weights"}
            for i, w in enumerate(es.best_weights or []):
                arrays[f"state.best.{i}"] = np.asarray(w)
        if self.validation_rows is not None:
            arrays["state.validation_rows"] = np.asarray(self.validation_rows, dtype=np.int64)
        header = {
            "epoch": self.epoch,
            "optimizer": self.optimizer,
            "optimizer_scalars": optimizer_scalars,
            "rng_state": self.rng_state,
            "history": self.history.to_dict(),
            "early_stopping": early,
            "stopped": self.stopped,
        }
        if self.masks_state is not None:
            header["masks_state"] = self.masks_state
        return header, arrays

    @classmethod
    def from_parts(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrainingState:
        """The state from a checkpoint file's JSON header and named arrays (the inverse of
        ``to_parts``)."""
        def numbered(prefix: str) -> list[np.ndarray]:
            count = sum(key.startswith(prefix) for key in arrays)
            return [arrays[f"{prefix}{i}"] for i in range(count)]

        optimizer_state: dict[str, Any] = dict(header["optimizer_scalars"])
        prefix = "state.optimizer."
        for key, value in arrays.items():
            if key.startswith(prefix):
                optimizer_state[key[len(prefix) :]] = value
        early = None
        if header["early_stopping"] is not None:
            early = EarlyStopping(**header["early_stopping"])
            early.best_weights = numbered("state.best.") or None
        return cls(
            epoch=int(header["epoch"]),
            weights=numbered("state.weights."),
            optimizer=header["optimizer"],
            optimizer_state=optimizer_state,
            rng_state=header["rng_state"],
            history=History.from_dict(header["history"]),
            early_stopping=early,
            validation_rows=arrays.get("state.validation_rows"),
            stopped=bool(header["stopped"]),
            masks_state=header.get("masks_state"),
        )


def capture_state(
    epoch: int,
    params: Sequence[Array],
    optimizer: Optimizer,
    rng: np.random.Generator,
    history: History,
    early_stopping: EarlyStopping | None,
    validation_rows: np.ndarray | None,
    stopped: bool,
    masks: np.random.Generator | None = None,
) -> TrainingState:
    """Copies of everything a resumed run needs, taken after epoch ``epoch``; ``params`` are the
    trained arrays (parameters, then running statistics), ``masks`` the dropout masks' generator."""
    return TrainingState(
        epoch=epoch,
        weights=[np.array(p, copy=True) for p in params],
        optimizer=optimizer.hyperparameters(),
        optimizer_state=optimizer.state_dict(),
        rng_state=copy.deepcopy(rng.bit_generator.state),
        history=copy.deepcopy(history),
        early_stopping=copy.deepcopy(early_stopping),
        validation_rows=None if validation_rows is None else validation_rows.copy(),
        stopped=stopped,
        masks_state=None if masks is None else copy.deepcopy(masks.bit_generator.state),
    )


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    """A Generator whose bit generator (PCG64, Philox, …) continues from ``state``."""
    bit_generator = getattr(np.random, str(state.get("bit_generator", "")), None)
    if bit_generator is None:
        raise DataError(f"cannot restore a random generator of kind {state.get('bit_generator')!r}")
    rng = np.random.Generator(bit_generator())
    rng.bit_generator.state = state
    return rng
