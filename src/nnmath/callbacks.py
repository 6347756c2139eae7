"""Callbacks: small objects that ``fit`` calls at the end of every epoch.

The protocol is one method, ``on_epoch_end(epoch, logs) -> bool``: ``epoch`` counts from 1,
``logs`` holds the epoch's metrics (``loss``, ``accuracy`` or ``mse``/``mae``/``r2``, their
``val_`` twins, ``learning_rate``), and returning True stops training after this epoch. A callback
may also define ``on_train_end(history)``, which ``fit`` calls once, however training ends
(finished, stopped early, diverged or interrupted).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

from nnmath.errors import SpecError


class Callback(Protocol):
    """Anything with ``on_epoch_end(epoch, logs) -> bool`` (True stops training)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool: ...


def stream_is_terminal(stream: TextIO | None) -> bool:
    """True when ``stream`` is an interactive terminal (not a pipe, a file or a test's capture)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class StopWhen:
    """Stop once ``logs[monitor]`` reaches ``threshold`` (≥ for mode "max", ≤ for mode "min").

    For example ``StopWhen("accuracy", 1.0)`` ends training at the first epoch that fits every
    training sample, and ``StopWhen("val_loss", 0.05, mode="min")`` at a small validation loss.
    """

    def __init__(self, monitor: str, threshold: float, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise SpecError(f"StopWhen mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.threshold, self.mode = monitor, float(threshold), mode

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        if self.monitor not in logs:
            raise SpecError(
                f"StopWhen watches {self.monitor!r}, which this run does not log; "
                f"logged: {', '.join(logs)}"
            )
        value = logs[self.monitor]
        return value >= self.threshold if self.mode == "max" else value <= self.threshold


class ProgressBar:
    """A tqdm bar over the epochs, showing the latest loss and metrics after each one.

    ``enabled=None`` shows it only when the stream (stderr by default) is a terminal, so logs,
    pipes and CI output stay free of carriage-return clutter.
    """

    SHOWN = ("loss", "accuracy", "r2", "val_loss", "val_accuracy", "val_r2")

    def __init__(
        self,
        epochs: int,
        *,
        initial: int = 0,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        description: str = "train",
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = stream_is_terminal(self.stream) if enabled is None else enabled
        self.bar: Any = None
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=epochs,
                initial=initial,
                desc=description,
                unit="epoch",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        if self.bar is not None:
            self.bar.set_postfix(
                {key: f"{logs[key]:.4g}" for key in self.SHOWN if key in logs}, refresh=False
            )
            self.bar.update(1)
        return False

    def on_train_end(self, history: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
