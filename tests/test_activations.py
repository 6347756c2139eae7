"""The activations table: h′ against central differences and torch, extremes, kinks, dtype, names.

Every test is parametrised over the registry ``ACTIVATIONS`` (plus non-default parameters), so a new
activation is checked the moment it is registered.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from numpy.testing import assert_allclose, assert_array_equal
from oracles import (
    ELEMENTWISE_CASES,
    TORCH_ACTIVATIONS,
    ActivationCase,
    away_from_kink,
    case_params,
    missing_oracles,
    strict_numerics,
    tensor,
)

from nnmath.activations import ACTIVATIONS, SIGMOID, TANH, get_activation
from nnmath.errors import SpecError

CASES = case_params(ELEMENTWISE_CASES)
EXTREMES = np.array([-1000.0, -50.0, -40.0, -1.0, 0.0, 1.0, 40.0, 50.0, 1000.0])
matrices = arrays(
    np.float64,
    array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
    elements=st.floats(-6.0, 6.0),
)


def test_registries_have_torch_oracles():
    assert missing_oracles() == [], "add a torch oracle for these in tests/oracles.py"


@pytest.mark.parametrize("case", CASES)
@given(Z=matrices)
def test_derivative_matches_central_differences(case: ActivationCase, Z: np.ndarray):
    h = case.layer().activation
    if case.piecewise:
        Z = away_from_kink(Z)
    eps = 1e-5
    numeric = (h.f(Z + eps) - h.f(Z - eps)) / (2 * eps)
    assert_allclose(h.df(Z, h.f(Z)), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", CASES)
@given(Z=arrays(np.float64, (3, 7), elements=st.floats(-30.0, 30.0)))
def test_value_and_derivative_match_torch(case: ActivationCase, Z: np.ndarray):
    h = case.layer().activation
    Zt = tensor(Z, grad=True)
    Yt = TORCH_ACTIVATIONS[case.name](case.parameter)(Zt)
    Yt.sum().backward()
    # torch's softplus returns z itself above z = 20 (off by ln(1 + e^{−z}) < 2.1e-9, relatively
    # < 1e-10) with slope 1 there, where ours is σ(z) = 1 − O(e^{−z})
    assert_allclose(h.f(Z), Yt.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert_allclose(h.df(Z, h.f(Z)), Zt.grad.numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extremes_are_finite_without_warnings(case: ActivationCase, dtype):
    h = case.layer().activation
    Z = EXTREMES.astype(dtype)[None, :]
    with strict_numerics():
        Y = h.f(Z)
        D = h.df(Z, Y)
    assert np.all(np.isfinite(Y)) and np.all(np.isfinite(D))
    assert Y.dtype == dtype and D.dtype == dtype
    Zt = tensor(EXTREMES[None, :], grad=True)
    Yt = TORCH_ACTIVATIONS[case.name](case.parameter)(Zt)
    Yt.sum().backward()
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert_allclose(Y, Yt.detach().numpy(), rtol=tol, atol=tol)
    assert_allclose(D, Zt.grad.numpy(), rtol=tol, atol=tol)


def test_sigmoid_saturates_exactly():
    with strict_numerics():
        Y = SIGMOID.f(np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0]))
        D = SIGMOID.df(None, Y)
    assert Y[0] == 0.0 and Y[-1] == 1.0 and Y[2] == 0.5
    # the left tail keeps full relative precision: σ(−40) = e^{−40} / (1 + e^{−40})
    assert Y[1] == pytest.approx(math.exp(-40) / (1 + math.exp(-40)), rel=1e-14)
    assert Y[3] == 1.0  # 1 − 4.2e-18 rounds to 1
    assert_array_equal(D[[0, 4]], [0.0, 0.0])
    assert D[1] == pytest.approx(math.exp(-40), rel=1e-12)
    assert D[2] == 0.25


def test_sigmoid_float32_does_not_overflow():
    with strict_numerics():
        Y = SIGMOID.f(np.array([-1000.0, -20.0, 20.0, 1000.0], dtype=np.float32))
    assert Y.dtype == np.float32
    assert_array_equal(Y[[0, 2, 3]], [0.0, 1.0, 1.0])
    assert Y[1] == pytest.approx(math.exp(-20) / (1 + math.exp(-20)), rel=1e-6)


def test_tanh_saturates():
    with strict_numerics():
        Y = TANH.f(np.array([-50.0, 50.0]))
        D = TANH.df(None, Y)
    assert_array_equal(Y, [-1.0, 1.0])
    assert_array_equal(D, [0.0, 0.0])


def test_softplus_extremes():
    h = get_activation("softplus")
    with strict_numerics():
        Y = h.f(np.array([-1000.0, -40.0, 40.0, 1000.0]))
    assert Y[0] == 0.0 and Y[3] == 1000.0
    assert Y[1] == pytest.approx(math.log1p(math.exp(-40)), rel=1e-14)
    assert Y[2] == pytest.approx(40.0, rel=1e-15)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (ActivationCase("relu"), 0.0),
        (ActivationCase("leaky_relu"), 0.01),
        (ActivationCase("leaky_relu", 0.2), 0.2),
        (ActivationCase("elu"), 1.0),
        (ActivationCase("elu", 0.5), 0.5),
        (ActivationCase("elu", 2.0), 2.0),
    ],
    ids=lambda v: v.id if isinstance(v, ActivationCase) else None,
)
def test_derivative_at_the_kink_is_the_left_derivative_as_in_torch(case, expected):
    """ReLU′(0) = 0 exactly, leaky ReLU′(0) = slope, ELU′(0) = α: the convention torch uses."""
    h = case.layer().activation
    Z = np.zeros((1, 3))
    D = h.df(Z, h.f(Z))
    assert_array_equal(D, np.full((1, 3), expected))
    Zt = tensor(Z, grad=True)
    TORCH_ACTIVATIONS[case.name](case.parameter)(Zt).sum().backward()
    assert_array_equal(D, Zt.grad.numpy())


@pytest.mark.parametrize("case", CASES)
def test_kinked_flag_matches_the_function(case: ActivationCase):
    """``kinked`` is True exactly where the one-sided slopes at 0 differ (measured, not listed)."""
    h = case.layer().activation
    step = 1e-7
    zero = np.zeros((1, 1))
    left = float((h.f(zero) - h.f(zero - step))[0, 0]) / step
    right = float((h.f(zero + step) - h.f(zero))[0, 0]) / step
    assert h.kinked == (abs(left - right) > 1e-4), (left, right)


@pytest.mark.parametrize("case", case_params([c for c in ELEMENTWISE_CASES if not c.piecewise]))
def test_smooth_derivative_at_zero(case: ActivationCase):
    h = case.layer().activation
    Z = np.zeros((1, 1))
    eps = 1e-5
    numeric = (h.f(Z + eps) - h.f(Z - eps)) / (2 * eps)
    assert_allclose(h.df(Z, h.f(Z)), numeric, rtol=1e-9)


def test_notes_derivatives_sigmoid_and_tanh():
    """σ′ = σ(1 − σ) and tanh′ = 1 − tanh², the notes' results, against np.tanh and e^{−z} directly."""
    z = np.linspace(-8, 8, 33)
    eps = 1e-5
    sigma = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    assert_allclose(
        (sigma(z + eps) - sigma(z - eps)) / (2 * eps), sigma(z) * (1 - sigma(z)), atol=1e-10
    )
    assert_allclose(
        (np.tanh(z + eps) - np.tanh(z - eps)) / (2 * eps), 1 - np.tanh(z) ** 2, atol=1e-10
    )
    assert_allclose(SIGMOID.df(z, SIGMOID.f(z)), sigma(z) * (1 - sigma(z)), rtol=1e-12)
    assert_allclose(TANH.df(z, TANH.f(z)), 1 - np.tanh(z) ** 2, rtol=1e-12, atol=1e-15)


def test_gelu_worked_value():
    """GELU (tanh form) at z = 1: ½(1 + tanh(√(2/π)·1.044715)) = 0.8411919906082768."""
    h = get_activation("gelu")
    assert float(h.f(np.array(1.0))) == pytest.approx(0.8411919906082768, rel=1e-14)
    one = torch.tensor(1.0, dtype=torch.float64)
    reference = float(torch.nn.functional.gelu(one, approximate="tanh"))
    assert reference == pytest.approx(0.8411919906082768, rel=1e-14)


@pytest.mark.parametrize("case", CASES)
def test_float32_in_float32_out(case: ActivationCase):
    h = case.layer().activation
    Z = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    Y = h.f(Z)
    assert Y.dtype == np.float32
    assert h.df(Z, Y).dtype == np.float32


@pytest.mark.parametrize("case", CASES)
def test_formula_has_placeholders(case: ActivationCase):
    h = case.layer().activation
    assert "<z>" in h.tex
    assert h.text and h.tex_derivative


def test_unknown_activation_lists_valid_names():
    with pytest.raises(SpecError) as info:
        get_activation("swish")
    message = str(info.value)
    assert "'swish'" in message
    for name in [*ACTIVATIONS, "softmax"]:
        assert name in message


def test_activation_parameters_are_checked():
    with pytest.raises(SpecError, match="takes no parameter"):
        get_activation("tanh", 0.5)
    with pytest.raises(SpecError, match=r"slope must be in \[0, 1\)"):
        get_activation("leaky_relu", 1.5)
    with pytest.raises(SpecError, match="alpha must be positive"):
        get_activation("elu", 0.0)


def test_aliases_and_labels():
    assert get_activation("logistic") is SIGMOID
    assert get_activation("LReLU", 0.2).label == "leaky_relu(0.2)"
    assert get_activation("linear").name == "identity"
    assert get_activation("elu", 0.5).label == "elu(0.5)"
