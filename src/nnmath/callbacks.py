"""Callbacks: objects that ``fit`` calls as training runs, with Keras's names and arguments.

The protocol (every method optional; ``Callback`` is a base class that does nothing):

- ``on_train_begin(logs)``: once, before the first epoch (``logs`` is empty);
- ``on_epoch_begin(epoch, logs)``: before each epoch, ``epoch`` counting from 1 (Keras counts
  from 0); ``logs`` is empty;
- ``on_epoch_end(epoch, logs)``: after each epoch, with its metrics (``loss``, ``accuracy`` or
  ``mse``/``mae``/``r2``, their ``val_`` twins, ``learning_rate``), computed on the weights at the
  end of the epoch; the model holds those weights when it is called. Returning True, or setting
  the callback's ``stop_training`` to True (Keras sets ``model.stop_training``), stops training
  after this epoch;
- ``on_train_end(logs)``: once, however training ends (finished, stopped early, diverged or
  interrupted), with the last epoch's metrics (empty if none ran).

An object with only ``on_epoch_end(epoch, logs) -> bool``, the protocol of earlier versions, is a
callback as it stands. (Earlier versions passed the History to ``on_train_end``; like Keras, it
now receives the last logs: keep the History that ``fit`` returns instead.)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from nnmath.errors import SpecError

Logs = dict[str, float]


class Callback:
    """Keras's callback interface, every method a no-op; subclass and override what you need."""

    stop_training: bool = False

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called before epoch ``epoch`` (from 1)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool | None:
        """Called after epoch ``epoch`` with its metrics; True stops training."""
        return None

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once when training ends, however it ends."""


class CallbackList:
    """Calls each callback's methods in order, skipping those a callback does not define."""

    def __init__(self, callbacks: Sequence[Any]) -> None:
        self.callbacks = list(callbacks)

    def _call(self, name: str, *args: Any) -> list[Any]:
        results = []
        for callback in self.callbacks:
            method = getattr(callback, name, None)
            if method is not None:
                results.append(method(*args))
        return results

    def on_train_begin(self) -> None:
        """Call every callback's ``on_train_begin({})``."""
        self._call("on_train_begin", {})

    def on_epoch_begin(self, epoch: int) -> None:
        """Call every callback's ``on_epoch_begin(epoch, {})``."""
        self._call("on_epoch_begin", epoch, {})

    def on_epoch_end(self, epoch: int, logs: Logs) -> bool:
        """True when any callback asks to stop (returns True or sets ``stop_training``)."""
        asked = any(bool(r) for r in self._call("on_epoch_end", epoch, dict(logs)))
        return asked or any(getattr(c, "stop_training", False) for c in self.callbacks)

    def on_train_end(self, logs: Logs) -> None:
        """Call every callback's ``on_train_end`` with a copy of the last epoch's logs."""
        self._call("on_train_end", dict(logs))


def stream_is_terminal(stream: TextIO | None) -> bool:
    """True when ``stream`` is an interactive terminal (not a pipe, a file or a test's capture)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class StopWhen(Callback):
    """Stop once ``logs[monitor]`` reaches ``threshold`` (≥ for mode "max", ≤ for mode "min").

    For example ``StopWhen("accuracy", 1.0)`` ends training at the first epoch that fits every
    training sample, and ``StopWhen("val_loss", 0.05, mode="min")`` at a small validation loss.
    """

    def __init__(self, monitor: str, threshold: float, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise SpecError(f"StopWhen mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.threshold, self.mode = monitor, float(threshold), mode

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool:
        """True once ``logs[monitor]`` ≥ threshold (mode "max") or ≤ threshold (mode "min")."""
        logs = logs or {}
        if self.monitor not in logs:
            raise SpecError(
                f"StopWhen watches {self.monitor!r}, which this run does not log; "
                f"logged: {', '.join(logs)}"
            )
        value = logs[self.monitor]
        return value >= self.threshold if self.mode == "max" else value <= self.threshold


class ProgressBar(Callback):
    """A tqdm bar over the epochs, showing the latest loss and metrics after each one.

    ``enabled=None`` shows it only when the stream (stderr by default) is a terminal, so logs,
    pipes and CI output stay free of carriage-return clutter. tqdm is imported only when shown.
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

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool:
        """Advance the bar by one epoch and show the latest metrics; never stops training."""
        if self.bar is not None:
            logs = logs or {}
            self.bar.set_postfix(
                {key: f"{logs[key]:.4g}" for key in self.SHOWN if key in logs}, refresh=False
            )
            self.bar.update(1)
        return False

    def on_train_end(self, logs: Any = None) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
