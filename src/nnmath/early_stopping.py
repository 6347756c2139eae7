"""Early stopping: stop when a monitored metric has stopped improving, and keep the best weights.

After each epoch ``update(epoch, logs, params)`` compares ``logs[monitor]`` with the best value so
far. An improvement by more than ``min_delta`` (up for accuracy and R², down for losses and errors)
records the epoch and copies the weights; otherwise a counter grows, and once ``patience`` epochs
in a row have not improved, training stops. ``restore(params)`` then writes the best epoch's
weights back in place (Keras's ``EarlyStopping(restore_best_weights=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.errors import SpecError

Array = Any

LARGER_IS_BETTER = ("accuracy", "r2")


def improves(monitor: str) -> str:
    """Whether a larger value of ``monitor`` is better ("max": accuracy, r2) or worse ("min")."""
    return "max" if monitor.removeprefix("val_") in LARGER_IS_BETTER else "min"


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    It keeps a copy of the weights of the best epoch; ``restore`` writes them back in place.
    """

    monitor: str
    patience: int
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = 0
    wait: int = 0
    best_weights: list[np.ndarray] | None = None

    @property
    def stopped(self) -> bool:
        """True once ``patience`` epochs in a row have not improved."""
        return self.wait >= self.patience

    def update(self, epoch: int, logs: dict[str, float], params: Sequence[Array]) -> bool:
        """Record epoch ``epoch``'s value; True when patience has run out."""
        if self.monitor not in logs:
            raise SpecError(
                f"early stopping watches {self.monitor!r}, which is not logged; "
                f"logged: {', '.join(logs)}"
            )
        value = logs[self.monitor]
        sign = 1.0 if improves(self.monitor) == "max" else -1.0
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.best_weights = [np.array(p, copy=True) for p in params]
            return False
        self.wait += 1
        return self.stopped

    def restore(self, params: Sequence[Array]) -> None:
        """Copy the best epoch's arrays back into ``params`` in place (nothing before a first
        update)."""
        if self.best_weights is not None:
            for p, best in zip(params, self.best_weights, strict=True):
                np.copyto(p, best)
