"""Learning-rate schedules against torch.optim.lr_scheduler, warm-up, make_schedule errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from nnmath.errors import SpecError
from nnmath.schedules import (
    SCHEDULES,
    Constant,
    CosineDecay,
    ExponentialDecay,
    LinearWarmup,
    Schedule,
    StepDecay,
    make_schedule,
)

STEPS = 30
LR = 0.1

TorchScheduler = Callable[[torch.optim.Optimizer], Any]

# (registry name, make_schedule arguments, the torch scheduler that should agree with it)
CASES: list[tuple[str, dict[str, Any], TorchScheduler]] = [
    ("constant", {}, lambda opt: torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)),
    ("step", {"step_size": 7}, lambda opt: torch.optim.lr_scheduler.StepLR(opt, 7)),
    (
        "step",
        {"step_size": 1, "gamma": 0.5},
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5),
    ),
    (
        "exponential",
        {"gamma": 0.9},
        lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
    ),
    (
        "cosine",
        {"total_steps": STEPS},
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS),
    ),
    (
        "cosine",
        {"total_steps": 12, "min_lr": 0.01},
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12, eta_min=0.01),
    ),
]
CASE_IDS = [f"{name}-{kwargs}" for name, kwargs, _ in CASES]


def torch_learning_rates(make_scheduler: TorchScheduler, steps: int = STEPS) -> list[float]:
    """The learning rate a torch optimizer uses at steps 0, 1, ..., steps − 1."""
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=LR)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def learning_rates(schedule: Schedule, steps: int = STEPS) -> list[float]:
    return [schedule(k) for k in range(steps)]


def test_every_registered_schedule_has_a_torch_case():
    assert {name for name, _, _ in CASES} == set(SCHEDULES)


@pytest.mark.parametrize(("name", "kwargs", "make_scheduler"), CASES, ids=CASE_IDS)
def test_matches_torch(name: str, kwargs: dict[str, Any], make_scheduler: TorchScheduler):
    schedule = make_schedule(name, LR, **kwargs)
    steps = min(STEPS, kwargs.get("total_steps", STEPS) + 1)  # torch's cosine climbs back after
    expected = torch_learning_rates(make_scheduler, steps)
    rates = learning_rates(schedule, steps)
    assert all(isinstance(rate, float) for rate in rates)
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=1e-15)


def test_hand_worked_values():
    assert StepDecay(1.0, step_size=2, gamma=0.5)(5) == 0.25  # 0.5^⌊5/2⌋
    assert ExponentialDecay(2.0, gamma=0.5)(3) == 0.25
    assert CosineDecay(1.0, total_steps=4)(2) == pytest.approx(0.5)
    assert CosineDecay(1.0, total_steps=4, min_lr=0.2)(0) == 1.0
    assert Constant(0.3)(1000) == 0.3


def test_cosine_stays_at_min_lr_after_total_steps():
    schedule = CosineDecay(LR, total_steps=10, min_lr=0.001)
    assert schedule(10) == 0.001
    assert schedule(11) == 0.001
    assert schedule(100) == 0.001


@pytest.mark.parametrize("start_factor", [1.0 / 3.0, 0.1, 0.5])
def test_warmup_ramp_matches_torch_linear_lr(start_factor: float):
    warmup_steps = 8
    schedule = LinearWarmup(Constant(LR), warmup_steps, start_factor=start_factor)
    expected = torch_learning_rates(
        lambda opt: torch.optim.lr_scheduler.LinearLR(
            opt, start_factor=start_factor, total_iters=warmup_steps
        )
    )
    np.testing.assert_allclose(learning_rates(schedule), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("inner", "make_inner"),
    [
        (StepDecay(LR, 4, 0.5), lambda opt: torch.optim.lr_scheduler.StepLR(opt, 4, gamma=0.5)),
        (ExponentialDecay(LR, 0.9), lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)),
    ],
)
def test_warmup_over_a_decay_matches_torch_chained(inner: Schedule, make_inner: TorchScheduler):
    schedule = LinearWarmup(inner, warmup_steps=6, start_factor=0.25)
    expected = torch_learning_rates(
        lambda opt: torch.optim.lr_scheduler.ChainedScheduler(
            [torch.optim.lr_scheduler.LinearLR(opt, 0.25, total_iters=6), make_inner(opt)]
        )
    )
    np.testing.assert_allclose(learning_rates(schedule), expected, rtol=1e-12)


def test_warmup_ramp_then_the_wrapped_schedule():
    inner = CosineDecay(1.0, total_steps=20)
    schedule = LinearWarmup(inner, warmup_steps=4, start_factor=0.0)
    for k in range(4):
        assert schedule(k) == pytest.approx(inner(k) * k / 4)
    for k in range(4, 25):
        assert schedule(k) == inner(k)
    assert LinearWarmup(inner, warmup_steps=0)(0) == 1.0


def test_make_schedule_with_warmup():
    schedule = make_schedule("cosine", LR, total_steps=STEPS, warmup_steps=5)
    assert schedule == LinearWarmup(CosineDecay(LR, STEPS), 5)
    assert schedule(0) == pytest.approx(LR / 3)
    assert schedule(5) == CosineDecay(LR, STEPS)(5)
    assert make_schedule("constant", LR) == Constant(LR)


def test_schedules_are_frozen():
    with pytest.raises(AttributeError):
        Constant(LR).lr = 1.0  # type: ignore[misc]


def test_unknown_schedule_lists_the_names():
    with pytest.raises(SpecError) as error:
        make_schedule("cyclic", LR)
    for name in SCHEDULES:
        assert name in str(error.value)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("step", {}),  # step_size is required
        ("step", {"step_size": 0}),
        ("step", {"step_size": 2.5}),
        ("exponential", {"gamma": 0.9, "total_steps": 10}),
        ("exponential", {"gamma": -0.5}),
        ("cosine", {"total_steps": 0}),
        ("cosine", {"total_steps": 10, "min_lr": -1.0}),
        ("constant", {"warmup_steps": -1}),
    ],
)
def test_bad_arguments_raise_spec_error(name: str, kwargs: dict[str, Any]):
    with pytest.raises(SpecError):
        make_schedule(name, LR, **kwargs)


def test_bad_values_raise_spec_error():
    with pytest.raises(SpecError):
        Constant(-0.1)
    with pytest.raises(SpecError):
        Constant(math.nan)
    with pytest.raises(SpecError):
        LinearWarmup(Constant(LR), 5, start_factor=1.5)
    with pytest.raises(SpecError):
        Constant(LR)(-1)
