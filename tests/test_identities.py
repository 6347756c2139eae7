"""The identities of the notes, checked numerically with random matrices, and one test per known
mistake in the notes showing that the printed formula is wrong (and what is right).

Layout: the notes write ∂f/∂Xᵀ in their own layout; we compare with central-difference Jacobians in
numerator layout J[i, j] = ∂f_i/∂x_j. Where the notes vectorise a matrix, vec stacks its columns
(column-major, ``order="F"``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from nnmath.activations import SIGMOID, TANH
from nnmath.gradcheck import numerical_gradient, numerical_jacobian
from nnmath.layers import Softmax, softmax
from nnmath.losses import CrossEntropy, SoftmaxCrossEntropy, SquaredError

FD = {"rtol": 1e-6, "atol": 1e-8}
dims = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)


def vec(M: np.ndarray) -> np.ndarray:
    """Column-major vectorisation, as in the notes."""
    return M.reshape(-1, order="F")


# ---- identities -----------------------------------------------------------------------------------


@given(m=dims, n=dims, p=dims, q=dims, r=dims, s=dims, seed=seeds)
def test_kronecker_mixed_product(m, n, p, q, r, s, seed):
    """(A ⊗ C)(B ⊗ D) = (AB) ⊗ (CD)."""
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(m, n)), rng.normal(size=(n, p))
    C, D = rng.normal(size=(q, r)), rng.normal(size=(r, s))
    assert_allclose(np.kron(A, C) @ np.kron(B, D), np.kron(A @ B, C @ D), rtol=1e-10, atol=1e-12)


@given(n=st.integers(1, 8), seed=seeds)
def test_diag_times_ones(n, seed):
    """diag(u) 1 = u."""
    u = np.random.default_rng(seed).normal(size=n)
    assert_allclose(np.diag(u) @ np.ones(n), u, rtol=0, atol=0)


@given(m=dims, n=dims, k=dims, seed=seeds)
def test_derivative_of_ax_is_identity_kron_a(m, n, k, seed):
    """∂vec(AX)/∂vec(X) = I_k ⊗ A for A ∈ ℝ^{m×n}, X ∈ ℝ^{n×k}, column-major vec."""
    rng = np.random.default_rng(seed)
    A, X = rng.normal(size=(m, n)), rng.normal(size=(n, k))
    J = numerical_jacobian(lambda x: vec(A @ x.reshape(n, k, order="F")), vec(X))
    assert_allclose(J, np.kron(np.eye(k), A), **FD)
    # with row-major vec (the engine's convention) the same derivative is A ⊗ I_k
    J_rows = numerical_jacobian(lambda x: (A @ x.reshape(n, k)).reshape(-1), X.reshape(-1))
    assert_allclose(J_rows, np.kron(A, np.eye(k)), **FD)


@given(n=st.integers(1, 6), seed=seeds)
def test_quotient_rule_with_a_vector(n, seed):
    """∇(u/v) = (∇u v − ∇v u)/v² with u(x) = Σ sin(x_i) x_i, v(x) = 1 + ‖x‖²."""
    x = np.random.default_rng(seed).normal(size=n)
    u, grad_u = float(np.sum(np.sin(x) * x)), np.cos(x) * x + np.sin(x)
    v, grad_v = 1.0 + float(x @ x), 2 * x
    numeric = numerical_gradient(lambda: float(np.sum(np.sin(x) * x)) / (1.0 + float(x @ x)), x)
    assert_allclose((grad_u * v - grad_v * u) / v**2, numeric, **FD)


@given(n=st.integers(2, 6), seed=seeds)
def test_gradient_of_quadratic_form(n, seed):
    """∇ₓ xᵀAx = (A + Aᵀ)x for a non-symmetric A (2Ax would be wrong)."""
    rng = np.random.default_rng(seed)
    A, x = rng.normal(size=(n, n)), rng.normal(size=n)
    numeric = numerical_gradient(lambda: float(x @ A @ x), x)
    assert_allclose((A + A.T) @ x, numeric, **FD)
    assert not np.allclose(2 * A @ x, numeric, atol=1e-4)


@given(n=st.integers(1, 6), m=st.integers(1, 4), seed=seeds)
def test_elementwise_rule(n, m, seed):
    """∂f(u)ᵀ/∂u = diag(f′(u)), and with u = Bv, ∂f(u)ᵀ/∂v = (∂uᵀ/∂v) diag(f′(u)) = Bᵀ diag(f′(u))."""
    rng = np.random.default_rng(seed)
    u, B, v = rng.normal(size=n), rng.normal(size=(n, m)), rng.normal(size=m)
    J = numerical_jacobian(np.tanh, u)  # numerator layout; the notes' denominator layout is Jᵀ
    assert_allclose(J.T, np.diag(1 - np.tanh(u) ** 2), **FD)
    J_v = numerical_jacobian(lambda w: np.tanh(B @ w), v)
    assert_allclose(J_v.T, B.T @ np.diag(1 - np.tanh(B @ v) ** 2), **FD)


def test_sigmoid_and_tanh_derivatives_of_the_notes():
    """σ′ = σ(1 − σ) and tanh′ = 1 − tanh², against central differences and against the engine."""
    z = np.linspace(-10, 10, 41)
    sigma = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    numeric = numerical_jacobian(sigma, z).diagonal()
    assert_allclose(sigma(z) * (1 - sigma(z)), numeric, **FD)
    assert_allclose(SIGMOID.df(z, SIGMOID.f(z)), numeric, **FD)
    numeric = numerical_jacobian(np.tanh, z).diagonal()
    assert_allclose(1 - np.tanh(z) ** 2, numeric, **FD)
    assert_allclose(TANH.df(z, TANH.f(z)), numeric, **FD)


# ---- the notes' mistakes, each shown to be wrong numerically ------------------------------------


@given(n=st.integers(1, 5), seed=seeds)
def test_notes_squared_error_gradient_sign_is_wrong(n, seed):
    """c = ½ Σ (t − a)²: the notes print dc/da = t − a; it is a − t."""
    rng = np.random.default_rng(seed)
    a, t = rng.normal(size=(1, n)), rng.normal(size=(1, n))
    numeric = numerical_gradient(lambda: float(0.5 * np.sum((t - a) ** 2)), a)
    assert_allclose(a - t, numeric, **FD)
    assert_allclose(SquaredError().grad(a, t), numeric, **FD)
    assert not np.allclose(t - a, numeric, atol=1e-6)


@given(n=st.integers(2, 5), seed=seeds)
def test_notes_softmax_jacobian_p_one_minus_p_is_only_the_diagonal(n, seed):
    """dp/do = p(1 − p) is the diagonal of diag(p) − ppᵀ only; with it, the chain rule of the notes
    gives −y(1 − p) instead of the true p − y."""
    rng = np.random.default_rng(seed)
    o = rng.normal(size=n)
    p = softmax(o[None, :])[0]
    J = numerical_jacobian(lambda x: softmax(x[None, :])[0], o)
    assert_allclose(J, np.diag(p) - np.outer(p, p), **FD)
    assert_allclose(J.diagonal(), p * (1 - p), **FD)  # right on the diagonal...
    assert not np.allclose(J, np.diag(p * (1 - p)), atol=1e-6)  # ...but not a diagonal matrix
    y = np.eye(n)[rng.integers(0, n)]
    numeric = numerical_gradient(lambda: float(-y @ np.log(softmax(o[None, :])[0])), o)
    assert_allclose(p - y, numeric, **FD)
    notes_chain = -(y / p) * p * (1 - p)  # −yᵀ(1/p) · p(1 − p), elementwise
    assert not np.allclose(notes_chain, numeric, atol=1e-6)


@given(S=st.integers(1, 4), C=st.integers(1, 4), seed=seeds)
def test_notes_1f_kronecker_should_be_hadamard_division(S, C, seed):
    """L = −(1/S) Σ T ln X: the notes print ∂L/∂X = −(1/S) T ⊗ X; it is −(1/S) T ⊘ X."""
    rng = np.random.default_rng(seed)
    X, T = rng.uniform(0.1, 1.0, size=(S, C)), rng.uniform(0.1, 1.0, size=(S, C))
    numeric = numerical_gradient(lambda: float(-np.sum(T * np.log(X)) / S), X)
    assert_allclose(-T / X / S, numeric, **FD)
    assert_allclose(CrossEntropy().grad(X, T) / S, numeric, **FD)
    kron = -np.kron(T, X) / S
    assert kron.shape == (S * S, C * C)  # not even the shape of X
    if kron.shape == X.shape:  # S = C = 1: same shape, still the wrong number
        assert not np.allclose(kron, numeric, atol=1e-6)
    assert not np.allclose(-T * X / S, numeric, atol=1e-6)  # nor is it the Hadamard product


@given(S=st.integers(1, 4), C=st.integers(2, 4), seed=seeds)
def test_notes_2a_simplification(S, C, seed):
    """2a: substituting 1f into 1e gives Y ⊙ (−(1/S) T ⊘ Y − (−(1/S) T ⊘ Y ⊙ Y) 11ᵀ), which is right;
    the notes then simplify it to −(1/S)(T − (T ⊙ Y) 11ᵀ), which is not. The true ∂L/∂Z is
    (1/S)((T1) ⊙ Y − T): (Y − T)/S when each row of T sums to one, and neither otherwise."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=2.0, size=(S, C))
    Y = softmax(Z)
    ones = np.ones((C, C))
    one_hot = np.eye(C)[rng.integers(0, C, size=S)]
    for T, rows_sum_to_one in (
        (one_hot, True),
        (0.9 * one_hot + 0.1 / C, True),
        (0.5 * one_hot, False),
    ):
        numeric = numerical_gradient(lambda T=T: float(-np.sum(T * np.log(softmax(Z))) / S), Z)
        substituted = Y * (-(T / Y) / S - ((-(T / Y) / S) * Y) @ ones)
        assert_allclose(substituted, numeric, **FD)
        truth = (T.sum(axis=1, keepdims=True) * Y - T) / S
        assert_allclose(truth, numeric, **FD)
        assert_allclose(SoftmaxCrossEntropy().grad(Z, T) / S, numeric, **FD)
        notes = -(T - (T * Y) @ ones) / S
        assert not np.allclose(notes, numeric, atol=1e-6)
        assert np.allclose((Y - T) / S, numeric, atol=1e-6) == rows_sum_to_one


def test_notes_2a_composition_through_the_engine():
    """The same truth from the engine's own parts: Softmax vjp of the cost gradient of CrossEntropy."""
    Z = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    T = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])
    Y, cache = Softmax().forward(Z)
    composed, _ = Softmax().vjp(cache, CrossEntropy().grad(Y, T) / 2)
    assert_allclose(composed, (0.5 * Y - T) / 2, rtol=1e-12)
    assert not np.allclose(composed, (Y - T) / 2)


@pytest.mark.parametrize("base", [2.0, 10.0, np.e])
def test_notes_base_b_cross_entropy_gradient(base):
    """The notes' dc/dz = (a − t)/ln b for softmax + log_b cross-entropy, with one-hot t."""
    z = np.array([[0.2, -0.4, 1.1, 0.0]])
    t = np.array([[0.0, 0.0, 1.0, 0.0]])
    numeric = numerical_gradient(lambda: float(-np.sum(t * np.log(softmax(z))) / np.log(base)), z)
    assert_allclose((softmax(z) - t) / np.log(base), numeric, **FD)
