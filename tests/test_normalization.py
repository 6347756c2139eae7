"""Batch normalization: forward, backward and Jacobians against torch.nn.BatchNorm1d and central
differences, in training mode (batch statistics, the samples coupled: one Jacobian for the whole
batch, S·n × S·n) and evaluation mode (running statistics, per-sample Jacobians); the running
statistics in PyTorch's convention; the extremes (a constant feature, a batch of one, float32).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from oracles import batch_jacobian, block_diagonal, random_projection_check, tensor, torch_vjp

from nnmath.errors import ShapeError
from nnmath.gradcheck import numerical_jacobian
from nnmath.layers import EVALUATION, Mode
from nnmath.normalization import EPS, MOMENTUM, BatchNorm

TRAINING = Mode(training=True)
FD = {"rtol": 1e-6, "atol": 1e-8}
TORCH = {"rtol": 1e-12, "atol": 1e-13}  # two float64 computations of the same formula


@st.composite
def problems(draw, min_samples: int = 2):
    """(X, G, γ, β, running mean, running variance) with S ≤ 5 samples and n ≤ 4 features."""
    S, n = draw(st.integers(min_samples, 5)), draw(st.integers(1, 4))
    X = draw(arrays(np.float64, (S, n), elements=st.floats(-4.0, 4.0)))
    G = draw(arrays(np.float64, (S, n), elements=st.floats(-2.0, 2.0)))
    gamma = draw(arrays(np.float64, (n,), elements=st.floats(-2.0, 2.0)))
    beta = draw(arrays(np.float64, (n,), elements=st.floats(-2.0, 2.0)))
    mean = draw(arrays(np.float64, (n,), elements=st.floats(-1.0, 1.0)))
    var = draw(arrays(np.float64, (n,), elements=st.floats(0.1, 3.0)))
    return X, G, gamma, beta, mean, var


def layer(gamma, beta, mean, var) -> BatchNorm:
    return BatchNorm(gamma.copy(), beta.copy(), mean.copy(), var.copy())


def torch_bn(gamma, beta, mean, var, training: bool) -> torch.nn.BatchNorm1d:
    module = torch.nn.BatchNorm1d(gamma.size, eps=EPS, momentum=MOMENTUM, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(tensor(gamma))
        module.bias.copy_(tensor(beta))
        module.running_mean.copy_(tensor(mean))
        module.running_var.copy_(tensor(var))
    return module.train(training)


def spread(X: np.ndarray) -> bool:
    """True where every feature varies over the batch enough for finite differences (σ² ≥ 1e-2):
    near σ² = 0 the normalization's derivatives grow like 1/√ε and ε-steps are no longer small."""
    return bool(np.all(X.var(axis=0) >= 1e-2))


# ---- training mode: batch statistics ------------------------------------------------------------


@given(problems())
def test_training_forward_backward_and_statistics_match_torch(problem):
    X, G, gamma, beta, mean, var = problem
    ours = layer(gamma, beta, mean, var)
    Y, cache = ours.forward(X, TRAINING)
    dX, grads = ours.vjp(cache, G)
    ours.update_statistics(cache)

    module = torch_bn(gamma, beta, mean, var, training=True)
    Y_t, (dX_t,) = torch_vjp(module, G, X)
    # Y and dX are differences of terms of size |γ|/√(σ² + ε)·|x| and ·Σ|g| (up to 632 times |x|,
    # |g| for a constant feature with γ = 2; torch folds the mean into a shift): their round-off
    # is relative to that scale, not to the result
    gain = np.max(np.abs(gamma * cache.inv_std))
    assert_allclose(Y, Y_t, rtol=1e-12, atol=1e-13 + 1e-14 * gain * np.max(np.abs(X)))
    assert_allclose(dX, dX_t, rtol=1e-12, atol=1e-13 + 1e-14 * gain * np.max(np.abs(G).sum(0)))
    assert_allclose(grads["gamma"], module.weight.grad.numpy(), **TORCH)
    assert_allclose(grads["beta"], module.bias.grad.numpy(), **TORCH)
    # running ← (1 − m) running + m batch, the variance unbiased, as BatchNorm1d updates them
    assert_allclose(ours.running_mean, module.running_mean.numpy(), **TORCH)
    assert_allclose(ours.running_var, module.running_var.numpy(), **TORCH)


@given(problems())
def test_training_vjp_matches_central_differences(problem):
    X, G, gamma, beta, mean, var = problem
    if not spread(X):
        X = X + 10.0 * np.arange(X.shape[0])[:, None]  # steps of 10 > the range 8: spread
    ours = layer(gamma, beta, mean, var)
    _, cache = ours.forward(X, TRAINING)
    dX, grads = ours.vjp(cache, G)
    g = G.reshape(-1)
    J = batch_jacobian(lambda x: ours.forward(x, TRAINING)[0], X)
    assert_allclose(dX, (g @ J).reshape(X.shape), **FD)
    J_gamma = numerical_jacobian(lambda c: layer(c, beta, mean, var).forward(X, TRAINING)[0], gamma)
    J_beta = numerical_jacobian(lambda c: layer(gamma, c, mean, var).forward(X, TRAINING)[0], beta)
    assert_allclose(grads["gamma"], g @ J_gamma, **FD)
    assert_allclose(grads["beta"], g @ J_beta, **FD)
    forward = lambda x: ours.forward(x, TRAINING)[0]  # noqa: E731
    analytic, numeric = random_projection_check(forward, X, dX, G)
    # the difference of two sums ⟨G, Y⟩ over a step of 2·1e-6 carries round-off up to ~u Σ|G ⊙ Y| / 1e-6
    roundoff = 10 * np.finfo(float).eps * np.sum(np.abs(G * forward(X))) / 1e-6
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=roundoff + 1e-12)


@given(problems())
def test_training_jacobian_is_over_the_whole_batch(problem):
    """J = ∂vec(Y)/∂vec(X) is (S·n, S·n), vjp(G) = vec(G) J, and it matches central differences,
    including the blocks between different samples, which do not vanish: the samples are coupled."""
    X, G, gamma, beta, mean, var = problem
    if not spread(X):
        X = X + 10.0 * np.arange(X.shape[0])[:, None]  # steps of 10 > the range 8: spread
    ours = layer(gamma, beta, mean, var)
    _, cache = ours.forward(X, TRAINING)
    J = ours.jacobian(cache)
    S, n = X.shape
    assert J.shape == (S * n, S * n)
    dX, _ = ours.vjp(cache, G)
    assert_allclose(G.reshape(-1) @ J, dX.reshape(-1), rtol=1e-12, atol=1e-12)
    assert_allclose(J, batch_jacobian(lambda x: ours.forward(x, TRAINING)[0], X), **FD)


def test_the_samples_are_coupled():
    """Moving one sample moves every output of its feature: the blocks between samples are
    −γ/√(σ² + ε)·(1 + x̂_s x̂_t)/S, not zero (for S = 2 they cancel to O(ε): x̂ = ±1)."""
    X = np.array([[0.0, 1.0], [1.0, -2.0], [3.0, 0.5], [-1.0, 0.0]])
    bn = BatchNorm(np.array([1.0, 2.0]), np.zeros(2), np.zeros(2), np.ones(2))
    _, cache = bn.forward(X, TRAINING)
    blocks, off_block = block_diagonal(bn.jacobian(cache), 4, 2, 2)
    assert off_block > 0.1
    J4 = bn.jacobian(cache).reshape(4, 2, 4, 2)
    s, t, i = 0, 2, 1
    xhat = cache.Xhat
    expected = -2.0 * cache.inv_std[i] * (1.0 + xhat[s, i] * xhat[t, i]) / 4
    assert J4[s, i, t, i] == pytest.approx(expected, rel=1e-14)
    assert J4[s, 0, t, 1] == 0.0  # features do not mix


@given(problems())
def test_parameter_jacobians_agree_with_the_vjp(problem):
    X, G, gamma, beta, mean, var = problem
    for mode in (TRAINING, EVALUATION):
        ours = layer(gamma, beta, mean, var)
        _, cache = ours.forward(X, mode)
        _, grads = ours.vjp(cache, G)
        P = ours.param_jacobians(cache)
        for name in ("gamma", "beta"):
            assert P[name].shape == (X.shape[0], X.shape[1], X.shape[1])
            assert_allclose(np.einsum("si,sij->j", G, P[name]), grads[name], rtol=1e-12, atol=1e-12)


# ---- evaluation mode: running statistics ----------------------------------------------------------


@given(problems(min_samples=1))
def test_evaluation_mode_matches_torch_and_changes_no_statistics(problem):
    X, G, gamma, beta, mean, var = problem
    ours = layer(gamma, beta, mean, var)
    Y, cache = ours.forward(X, EVALUATION)
    dX, grads = ours.vjp(cache, G)
    ours.update_statistics(cache)
    module = torch_bn(gamma, beta, mean, var, training=False)
    Y_t, (dX_t,) = torch_vjp(module, G, X)
    assert_allclose(Y, Y_t, **TORCH)
    assert_allclose(dX, dX_t, **TORCH)
    assert_allclose(grads["gamma"], module.weight.grad.numpy(), **TORCH)
    assert_allclose(grads["beta"], module.bias.grad.numpy(), **TORCH)
    assert_array_equal(ours.running_mean, mean)
    assert_array_equal(ours.running_var, var)


@given(problems(min_samples=1))
def test_evaluation_jacobian_is_per_sample(problem):
    X, G, gamma, beta, mean, var = problem
    ours = layer(gamma, beta, mean, var)
    _, cache = ours.forward(X, EVALUATION)
    J = ours.jacobian(cache)
    S, n = X.shape
    assert J.shape == (S, n, n)
    dX, _ = ours.vjp(cache, G)
    assert_allclose(np.einsum("si,sij->sj", G, J), dX, rtol=1e-12, atol=1e-12)
    blocks, off = block_diagonal(
        batch_jacobian(lambda x: ours.forward(x, EVALUATION)[0], X), S, n, n
    )
    assert_allclose(J, blocks, **FD)
    assert off < 1e-9


# ---- worked numbers and extremes ----------------------------------------------------------------


def test_a_worked_example():
    """X = [[1], [3]]: μ = 2, σ² = 1, x̂ = ∓1/√(1 + ε); with γ = 2, β = 0.5 and dY = [[1], [0]]:
    dγ = −1/√(1 + ε), dβ = 1 and dX = (γ/(2√(1+ε)))·(2·dY − dβ − x̂·dγ) = [[1], [−1]]·γ·ε/(2(1+ε)^{3/2})."""
    bn = BatchNorm(np.array([2.0]), np.array([0.5]), np.zeros(1), np.ones(1))
    Y, cache = bn.forward(np.array([[1.0], [3.0]]), TRAINING)
    r = 1.0 / math.sqrt(1.0 + EPS)
    assert_allclose(Y, [[0.5 - 2.0 * r], [0.5 + 2.0 * r]], rtol=1e-15)
    dX, grads = bn.vjp(cache, np.array([[1.0], [0.0]]))
    assert_allclose(grads["gamma"], [-r], rtol=1e-15)
    assert_allclose(grads["beta"], [1.0], rtol=1e-15)
    expected = 2.0 * EPS / (2.0 * (1.0 + EPS) ** 1.5)
    assert_allclose(dX, [[expected], [-expected]], rtol=1e-9)
    bn.update_statistics(cache)
    assert_allclose(bn.running_mean, [0.1 * 2.0], rtol=1e-15)
    assert_allclose(bn.running_var, [0.9 + 0.1 * 2.0], rtol=1e-15)  # unbiased: 2/(2 − 1)·1


def test_a_constant_feature_gives_beta_and_finite_gradients():
    """σ² = 0 in feature 0: x̂ = 0, y = β, no NaN; torch agrees on the values and gradients."""
    rng = np.random.default_rng(3)
    X = np.column_stack([np.full(6, 0.7), rng.normal(size=6)])
    G = rng.normal(size=X.shape)
    gamma, beta = np.array([1.5, -0.5]), np.array([0.25, 1.0])
    ours = layer(gamma, beta, np.zeros(2), np.ones(2))
    with np.errstate(all="raise"):
        Y, cache = ours.forward(X, TRAINING)
        dX, grads = ours.vjp(cache, G)
        J = ours.jacobian(cache)
    assert_allclose(Y[:, 0], 0.25, atol=1e-12)
    assert np.all(np.isfinite(dX)) and np.all(np.isfinite(J))
    Y_t, (dX_t,) = torch_vjp(torch_bn(gamma, beta, np.zeros(2), np.ones(2), True), G, X)
    assert_allclose(Y, Y_t, rtol=1e-12, atol=1e-12)
    assert_allclose(dX, dX_t, rtol=1e-9, atol=1e-9)
    ours.update_statistics(cache)
    assert np.all(np.isfinite(ours.running_var)) and ours.running_var[0] == pytest.approx(0.9)


def test_a_training_batch_of_one_is_refused_evaluation_is_not():
    bn = BatchNorm.initial(3)
    with pytest.raises(ShapeError, match="at least 2 samples per batch"):
        bn.forward(np.zeros((1, 3)), TRAINING)
    Y, _ = bn.forward(np.ones((1, 3)), EVALUATION)
    assert_allclose(Y, 1.0 / math.sqrt(1.0 + EPS))


def test_float32_stays_float32():
    bn = BatchNorm.initial(4, np.float32)
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    for mode in (TRAINING, EVALUATION):
        Y, cache = bn.forward(X, mode)
        dX, grads = bn.vjp(cache, np.ones_like(X))
        bn.update_statistics(cache)
        assert {a.dtype for a in (Y, dX, *grads.values(), *bn.statistics.values())} == {
            np.dtype(np.float32)
        }


def test_the_formula_record_says_the_jacobian_is_over_the_batch():
    tex = BatchNorm.tex
    assert "whole batch" in tex.jacobian and r"Sn \times Sn" in tex.jacobian
    assert "S·n × S·n" in tex.text
    assert tex.backward == (
        r"<dgamma> = \mathbf{1}^\top \left(<dY> \odot <Xhat>\right), \quad "
        r"<dbeta> = \mathbf{1}^\top <dY>, \quad "
        r"<dX> = \tfrac{1}{S}\left(S\,<dY> - \mathbf{1}\,<dbeta>^\top - <Xhat> \operatorname{diag}(<dgamma>)\right)"
        r" \operatorname{diag}\left(<gamma> \oslash \sqrt{<var> + \epsilon}\right)"
    )
    assert "running statistics" in BatchNorm.tex_evaluation.text
