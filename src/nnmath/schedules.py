"""Learning-rate schedules: the learning rate η(k) as a function of a step count k.

A schedule is a small frozen dataclass; ``schedule(k)`` returns η(k) as a float. k is the 0-based
count of whatever unit the caller advances the schedule by, epochs or mini-batches: the caller
picks the unit, and sets ``optimizer.learning_rate = schedule(k)`` before the updates of unit k
(the first unit uses η(0) = lr). This is the learning rate a torch.optim.lr_scheduler shows after
k calls of ``scheduler.step()``; each schedule here is its torch equivalent, in closed form.
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnmath.errors import SpecError

__all__ = [
    "SCHEDULES",
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "LinearWarmup",
    "Schedule",
    "StepDecay",
    "make_schedule",
]

Schedule = Callable[[int], float]
"""Anything that maps a 0-based step count k to a learning rate η(k)."""


def _check_at_least(name: str, value: float, low: float) -> None:
    if not value >= low:  # also rejects NaN
        raise SpecError(f"schedule {name} must be >= {low}, got {value!r}")


def _check_count(name: str, value: int, low: int) -> None:
    try:
        operator.index(value)
    except TypeError:
        raise SpecError(f"schedule {name} must be an integer, got {value!r}") from None
    _check_at_least(name, value, low)


@dataclass(frozen=True)
class Constant:
    """η(k) = lr"""

    lr: float

    def __post_init__(self) -> None:
        _check_at_least("lr", self.lr, 0.0)

    def __call__(self, step: int) -> float:
        _check_count("step", step, 0)
        return float(self.lr)


@dataclass(frozen=True)
class StepDecay:
    """η(k) = lr · γ^⌊k / step_size⌋   (torch StepLR)"""

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _check_at_least("lr", self.lr, 0.0)
        _check_count("step_size", self.step_size, 1)
        _check_at_least("gamma", self.gamma, 0.0)

    def __call__(self, step: int) -> float:
        _check_count("step", step, 0)
        return float(self.lr * self.gamma ** (step // self.step_size))


@dataclass(frozen=True)
class ExponentialDecay:
    """η(k) = lr · γ^k   (torch ExponentialLR)"""

    lr: float
    gamma: float

    def __post_init__(self) -> None:
        _check_at_least("lr", self.lr, 0.0)
        _check_at_least("gamma", self.gamma, 0.0)

    def __call__(self, step: int) -> float:
        _check_count("step", step, 0)
        return float(self.lr * self.gamma**step)


@dataclass(frozen=True)
class CosineDecay:
    """η(k) = min_lr + (lr − min_lr) (1 + cos(π k / total_steps)) / 2,  and min_lr after total_steps

    torch CosineAnnealingLR(T_max=total_steps, eta_min=min_lr) up to k = total_steps; after that
    torch's follows the cosine back up, while this one stays at min_lr.
    """

    lr: float
    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        _check_at_least("lr", self.lr, 0.0)
        _check_count("total_steps", self.total_steps, 1)
        _check_at_least("min_lr", self.min_lr, 0.0)

    def __call__(self, step: int) -> float:
        _check_count("step", step, 0)
        if step >= self.total_steps:
            return float(self.min_lr)
        cosine = math.cos(math.pi * step / self.total_steps)
        return float(self.min_lr + (self.lr - self.min_lr) * (1.0 + cosine) / 2.0)


@dataclass(frozen=True)
class LinearWarmup:
    """η(k) = s(k) · (f₀ + (1 − f₀) k / warmup_steps) for k < warmup_steps,  s(k) after

    s is the wrapped schedule, f₀ = start_factor. The ramp factor is torch LinearLR's
    (start_factor, end_factor=1, total_iters=warmup_steps), and the product is what torch's
    ChainedScheduler([LinearLR, ...]) gives; the default f₀ = 1/3 is LinearLR's. The wrapped
    schedule keeps its own clock: a CosineDecay over N steps still ends at step N.
    """

    schedule: Schedule
    warmup_steps: int
    start_factor: float = 1.0 / 3.0

    def __post_init__(self) -> None:
        _check_count("warmup_steps", self.warmup_steps, 0)
        if not 0.0 <= self.start_factor <= 1.0:
            raise SpecError(f"schedule start_factor must be in [0, 1], got {self.start_factor!r}")

    def __call__(self, step: int) -> float:
        _check_count("step", step, 0)
        if step >= self.warmup_steps:
            return float(self.schedule(step))
        factor = self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps
        return float(self.schedule(step) * factor)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": Constant,
    "step": StepDecay,
    "exponential": ExponentialDecay,
    "cosine": CosineDecay,
}


def make_schedule(
    name: str, learning_rate: float, warmup_steps: int = 0, **kwargs: Any
) -> Schedule:
    """Build SCHEDULES[name](learning_rate, **kwargs), wrapped in LinearWarmup if warmup_steps > 0.

    For example ``make_schedule("cosine", 0.1, total_steps=100, warmup_steps=5)``.
    """
    if name not in SCHEDULES:
        raise SpecError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    factory = SCHEDULES[name]
    try:
        inspect.signature(factory).bind(learning_rate, **kwargs)
    except TypeError as error:
        accepted = ", ".join(inspect.signature(factory).parameters)
        raise SpecError(f"schedule {name!r} takes {accepted}: {error}") from None
    schedule = factory(learning_rate, **kwargs)
    if warmup_steps:
        return LinearWarmup(schedule, warmup_steps)
    return schedule
