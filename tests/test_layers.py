"""Layers: Linear, every elementwise activation and Softmax, each checked three ways.

1. vjp against central differences (float64, the project's ``numerical_jacobian``) and a random
   projection ⟨vjp(G), U⟩ = ⟨G, J U⟩;
2. forward and vjp against PyTorch autograd on the same float64 inputs and weights;
3. the explicit Jacobians against the vjp (vjp(G) = G J sample by sample, parameter gradients
   = Σ_s g_s ∂y_s/∂vec(W)) and against the numerical Jacobian, whose blocks between different
   samples must vanish.
Plus the extremes (saturation, softmax of ±1000), float32 in → float32 out, and the Kronecker form
of Linear's Jacobians, ∂vec(Y)/∂vec(X) = I_S ⊗ W and ∂y/∂vec(W) = I ⊗ xᵀ.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from oracles import (
    ACTIVATION_CASES,
    TORCH_ACTIVATIONS,
    ActivationCase,
    away_from_kink,
    batch_jacobian,
    batch_pairs,
    block_diagonal,
    case_params,
    random_projection_check,
    strict_numerics,
    torch_vjp,
)

from nnmath.gradcheck import numerical_jacobian
from nnmath.layers import Linear, Softmax, log_softmax, softmax

CASES = case_params(ACTIVATION_CASES)
FD = {"rtol": 1e-6, "atol": 1e-8}  # central differences in float64: error ≈ 1e-10 here
EXACT = {"rtol": 1e-12, "atol": 1e-12}  # two exact computations of the same number


def prepared(case: ActivationCase, X: np.ndarray) -> np.ndarray:
    return away_from_kink(X) if case.piecewise else X


# ---- Linear -------------------------------------------------------------------------------------


@st.composite
def linear_problems(draw):
    """(X, W, b, G) with S ≤ 4 samples, n_in, n_out ≤ 4."""
    S, n_in, n_out = (draw(st.integers(1, 4)) for _ in range(3))
    values = st.floats(-3.0, 3.0)
    X = draw(arrays(np.float64, (S, n_in), elements=values))
    W = draw(arrays(np.float64, (n_out, n_in), elements=values))
    b = draw(arrays(np.float64, (n_out,), elements=values))
    G = draw(arrays(np.float64, (S, n_out), elements=values))
    return X, W, b, G


@given(linear_problems())
def test_linear_vjp_matches_central_differences(problem):
    X, W, b, G = problem
    layer = Linear(W, b)
    _, cache = layer.forward(X)
    dX, grads = layer.vjp(cache, G)
    g = G.reshape(-1)
    assert_allclose(
        dX, (g @ batch_jacobian(lambda x: Linear(W, b).forward(x)[0], X)).reshape(X.shape), **FD
    )
    J_W = numerical_jacobian(lambda w: Linear(w, b).forward(X)[0], W)
    assert_allclose(grads["W"], (g @ J_W).reshape(W.shape), **FD)
    J_b = numerical_jacobian(lambda v: Linear(W, v).forward(X)[0], b)
    assert_allclose(grads["b"], g @ J_b, **FD)


@given(linear_problems())
def test_linear_matches_torch(problem):
    X, W, b, G = problem
    layer = Linear(W, b)
    Y, cache = layer.forward(X)
    dX, grads = layer.vjp(cache, G)
    Y_t, (dX_t, dW_t, db_t) = torch_vjp(F.linear, G, X, W, b)
    assert_allclose(Y, Y_t, **EXACT)
    assert_allclose(dX, dX_t, **EXACT)
    assert_allclose(grads["W"], dW_t, **EXACT)
    assert_allclose(grads["b"], db_t, **EXACT)


@given(linear_problems())
def test_linear_jacobians_agree_with_vjp(problem):
    X, W, b, G = problem
    layer = Linear(W, b)
    _, cache = layer.forward(X)
    dX, grads = layer.vjp(cache, G)
    J = layer.jacobian(cache)
    assert J.shape == (X.shape[0], W.shape[0], W.shape[1])
    assert_allclose(dX, np.einsum("so,soi->si", G, J), **EXACT)
    P = layer.param_jacobians(cache)
    assert P["W"].shape == (X.shape[0], W.shape[0], W.size)
    assert_allclose(grads["W"], np.einsum("so,sop->p", G, P["W"]).reshape(W.shape), **EXACT)
    assert_allclose(grads["b"], np.einsum("so,sop->p", G, P["b"]), **EXACT)


@given(linear_problems())
def test_linear_jacobians_match_numerical(problem):
    X, W, b, _ = problem
    layer = Linear(W, b)
    _, cache = layer.forward(X)
    S, n_out, n_in = X.shape[0], W.shape[0], W.shape[1]
    blocks, off = block_diagonal(
        batch_jacobian(lambda x: Linear(W, b).forward(x)[0], X), S, n_out, n_in
    )
    assert_allclose(layer.jacobian(cache), blocks, **FD)
    assert off < 1e-9  # sample s's output does not depend on sample s′ ≠ s
    J_W = numerical_jacobian(lambda w: Linear(w, b).forward(X)[0], W).reshape(S, n_out, W.size)
    assert_allclose(layer.param_jacobians(cache)["W"], J_W, **FD)
    J_b = numerical_jacobian(lambda v: Linear(W, v).forward(X)[0], b).reshape(S, n_out, n_out)
    assert_allclose(layer.param_jacobians(cache)["b"], J_b, **FD)


@given(linear_problems())
def test_linear_jacobians_are_the_kronecker_identities(problem):
    """∂vec(Y)/∂vec(X) = I_S ⊗ W (row-major vecs, Y = X Wᵀ) and ∂y/∂vec(W) = I ⊗ xᵀ."""
    X, W, b, _ = problem
    layer = Linear(W, b)
    _, cache = layer.forward(X)
    S, (n_out, n_in) = X.shape[0], W.shape
    J = layer.jacobian(cache)
    block_diag = np.zeros((S * n_out, S * n_in))
    for s in range(S):
        block_diag[s * n_out : (s + 1) * n_out, s * n_in : (s + 1) * n_in] = J[s]
    assert_array_equal(block_diag, np.kron(np.eye(S), W))
    assert_allclose(
        batch_jacobian(lambda x: Linear(W, b).forward(x)[0], X), np.kron(np.eye(S), W), **FD
    )
    P = layer.param_jacobians(cache)["W"]
    for s in range(S):
        assert_array_equal(P[s], np.kron(np.eye(n_out), X[s][None, :]))


def test_linear_float32_in_float32_out():
    rng = np.random.default_rng(1)
    X, W, b, G = (rng.normal(size=s).astype(np.float32) for s in [(5, 3), (4, 3), (4,), (5, 4)])
    layer = Linear(W, b)
    Y, cache = layer.forward(X)
    dX, grads = layer.vjp(cache, G)
    outputs = [Y, dX, grads["W"], grads["b"], layer.jacobian(cache)]
    outputs += list(layer.param_jacobians(cache).values())
    assert all(a.dtype == np.float32 for a in outputs)


# ---- activation layers (elementwise and softmax) ------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@given(pair=batch_pairs())
def test_vjp_matches_central_differences(case: ActivationCase, pair):
    X, G = pair
    X = prepared(case, X)
    layer = case.layer()
    _, cache = layer.forward(X)
    dX, grads = layer.vjp(cache, G)
    assert grads == {}
    forward = lambda x: case.layer().forward(x)[0]  # noqa: E731
    numeric = (G.reshape(-1) @ batch_jacobian(forward, X)).reshape(X.shape)
    assert_allclose(dX, numeric, **FD)
    analytic, directional = random_projection_check(forward, X, dX, G)
    assert analytic == pytest.approx(directional, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("case", CASES)
@given(pair=batch_pairs(bound=20.0))
def test_forward_and_vjp_match_torch(case: ActivationCase, pair):
    X, G = pair
    layer = case.layer()
    Y, cache = layer.forward(X)
    dX, _ = layer.vjp(cache, G)
    Y_t, (dX_t,) = torch_vjp(TORCH_ACTIVATIONS[case.name](case.parameter), G, X)
    # softplus: torch returns z itself above z = 20 (relative difference < 1e-10)
    assert_allclose(Y, Y_t, rtol=1e-9, atol=1e-12)
    assert_allclose(dX, dX_t, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
@given(pair=batch_pairs())
def test_jacobian_agrees_with_vjp(case: ActivationCase, pair):
    X, G = pair
    layer = case.layer()
    _, cache = layer.forward(X)
    dX, _ = layer.vjp(cache, G)
    J = layer.jacobian(cache)
    assert J.shape == (X.shape[0], X.shape[1], X.shape[1])
    assert_allclose(dX, np.einsum("so,soi->si", G, J), **EXACT)
    assert layer.param_jacobians(cache) == {}


@pytest.mark.parametrize("case", CASES)
@given(pair=batch_pairs())
def test_jacobian_matches_numerical(case: ActivationCase, pair):
    X, _ = pair
    X = prepared(case, X)
    layer = case.layer()
    _, cache = layer.forward(X)
    S, n = X.shape
    blocks, off = block_diagonal(batch_jacobian(lambda x: case.layer().forward(x)[0], X), S, n, n)
    assert_allclose(layer.jacobian(cache), blocks, **FD)
    assert off < 1e-9


EXTREME_BATCH = np.array(
    [
        [-1000.0, -50.0, -40.0, 0.0, 40.0, 50.0, 1000.0],
        [1000.0, 1000.0, -1000.0, -1000.0, 0.0, 1.0, -1.0],
        [-1000.0, -1000.0, -1000.0, -1000.0, -1000.0, -1000.0, -1000.0],
    ]
)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extremes_are_finite_and_match_torch(case: ActivationCase, dtype):
    X = EXTREME_BATCH.astype(dtype)
    G = np.random.default_rng(2).normal(size=X.shape).astype(dtype)
    layer = case.layer()
    with strict_numerics():
        Y, cache = layer.forward(X)
        dX, _ = layer.vjp(cache, G)
        J = layer.jacobian(cache)
    for array in (Y, dX, J):
        assert array.dtype == dtype
        assert np.all(np.isfinite(array))
    Y_t, (dX_t,) = torch_vjp(
        TORCH_ACTIVATIONS[case.name](case.parameter), G.astype(np.float64), EXTREME_BATCH
    )
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert_allclose(Y, Y_t, rtol=tol, atol=tol)
    assert_allclose(dX, dX_t, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES)
def test_float32_in_float32_out(case: ActivationCase):
    rng = np.random.default_rng(3)
    X, G = (rng.normal(size=(4, 5)).astype(np.float32) for _ in range(2))
    layer = case.layer()
    Y, cache = layer.forward(X)
    dX, _ = layer.vjp(cache, G)
    assert Y.dtype == dX.dtype == layer.jacobian(cache).dtype == np.float32


# ---- softmax specifics --------------------------------------------------------------------------


def test_softmax_of_large_logits():
    with strict_numerics():
        Y = softmax(
            np.array([[1000.0, 0.0], [-1000.0, 1000.0], [1000.0, 1000.0], [-1000.0, -1000.0]])
        )
    assert_array_equal(Y, [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])


def test_log_softmax_is_finite_and_exact_at_extremes():
    Z = np.array([[1000.0, 0.0], [-1000.0, 1000.0], [0.0, 0.0]])
    with strict_numerics():
        L = log_softmax(Z)
    assert_allclose(L, [[0.0, -1000.0], [-2000.0, 0.0], [-np.log(2), -np.log(2)]], rtol=1e-15)
    assert_allclose(L, torch.log_softmax(torch.tensor(Z), dim=1).numpy(), rtol=1e-15)


@given(pair=batch_pairs(bound=50.0), shift=st.floats(-500.0, 500.0))
def test_softmax_rows_sum_to_one_and_ignore_shifts(pair, shift):
    X, _ = pair
    Y = softmax(X)
    assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-14)
    assert_allclose(softmax(X + shift), Y, rtol=1e-9, atol=1e-300)


def test_softmax_jacobian_is_diag_minus_outer():
    y = softmax(np.array([[0.3, -1.2, 2.0]]))
    J = Softmax().jacobian(y)[0]
    assert_allclose(J, np.diag(y[0]) - np.outer(y[0], y[0]), **EXACT)
    assert_allclose(J.sum(axis=0), 0.0, atol=1e-16)  # columns sum to zero: Σ_i y_i = 1 everywhere
