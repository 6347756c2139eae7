"""History: what a training run logged, epoch by epoch, kept as Keras keeps it.

``history.history`` is a dict of lists, one list per logged metric (``loss``, ``accuracy`` or
``mse``/``mae``/``r2``, their ``val_`` twins, ``learning_rate``), so ``history.history["val_loss"][k]``
is the value after epoch k + 1, as in Keras; ``history.epoch`` lists the epochs run, counted from 1
(Keras counts from 0). ``history["loss"]`` is short for ``history.history["loss"]``.

History is itself a callback: ``fit`` records each epoch's logs through ``on_epoch_end`` and times
the epoch from ``on_epoch_begin``. The wall times are kept apart, in ``seconds``, so that two
identical runs have identical ``history``.

How the run ended: ``best_epoch`` (the epoch whose weights early stopping restored),
``stopped_early``, ``initial_loss`` (the training cost on the weights before the first step) and
``no_progress``: True when the training loss never fell below ``initial_loss`` by more than
``PROGRESS_TOLERANCE`` of it (a learning rate far too small, or a network that cannot learn the
data).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

PROGRESS_TOLERANCE = 1e-4
"""A run made progress when its best training loss is below (1 − 1e-4) · its initial loss."""


def made_progress(initial_loss: float, losses: list[float]) -> bool:
    """min(losses) < initial_loss − 1e-4 · |initial_loss|: the loss improved at all."""
    return bool(losses) and min(losses) < initial_loss - PROGRESS_TOLERANCE * abs(initial_loss)


@dataclass
class History:
    """Per-epoch metrics as lists, and how the run ended (see the module's docstring).

    ``metrics`` holds every list, ``epoch`` included (``metrics["epoch"][k] == k + 1`` for a run
    from the start): it is ``history`` plus that one key, kept for existing callers.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    initial_loss: float | None = None
    no_progress: bool = False
    _began: float = field(default=0.0, repr=False, compare=False)

    # ---- Keras's view --------------------------------------------------------------------------

    @property
    def history(self) -> dict[str, list[float]]:
        """{metric: [value after epoch 1, after epoch 2, …]}, Keras's ``History.history``."""
        return {key: values for key, values in self.metrics.items() if key != "epoch"}

    @property
    def epoch(self) -> list[int]:
        """The epochs run, counted from 1."""
        return [int(e) for e in self.metrics.get("epoch", [])]

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return len(self.metrics.get("epoch", []))

    # ---- as a callback -------------------------------------------------------------------------

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        """Start the epoch's clock."""
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        """Record the epoch's logs and the seconds it took."""
        self.append(logs or {}, time.perf_counter() - self._began)

    # ---- recording and reading -----------------------------------------------------------------

    def append(self, logs: dict[str, float], seconds: float) -> None:
        """Append each metric of ``logs`` to its list (a new metric starts a list) and the epoch's
        seconds."""
        for key, value in logs.items():
            self.metrics.setdefault(key, []).append(value)
        self.seconds.append(seconds)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.metrics:
            raise KeyError(f"no metric {key!r} in this history; it has {', '.join(self.metrics)}")
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    def last(self) -> dict[str, float]:
        """The metrics of the last epoch run."""
        return {key: values[-1] for key, values in self.metrics.items() if values}

    def judge_progress(self) -> None:
        """Set ``no_progress``: the training loss never improved on ``initial_loss``."""
        losses = self.metrics.get("loss", [])
        self.no_progress = (
            self.initial_loss is not None
            and bool(losses)
            and not made_progress(self.initial_loss, losses)
        )

    # ---- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The History as plain lists and numbers (what a checkpoint or model file stores as
        JSON)."""
        return {
            "metrics": {key: list(values) for key, values in self.metrics.items()},
            "seconds": list(self.seconds),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "initial_loss": self.initial_loss,
            "no_progress": self.no_progress,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """The History that ``to_dict`` wrote."""
        initial = data.get("initial_loss")
        return cls(
            metrics={key: [float(v) for v in values] for key, values in data["metrics"].items()},
            seconds=[float(s) for s in data.get("seconds", [])],
            best_epoch=data.get("best_epoch"),
            stopped_early=bool(data.get("stopped_early", False)),
            initial_loss=None if initial is None else float(initial),
            no_progress=bool(data.get("no_progress", False)),
        )
