"""Dropout: the mask from the generator passed in, the scale 1/(1 − p), the derivative = the mask
(against central differences with the mask fixed, and torch's own nn.Dropout with its mask), the
Jacobian against the vjp, and the extremes p = 0, p close to 1, p = 1 refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from oracles import batch_jacobian, batch_pairs, block_diagonal, tensor

from nnmath.dropout import Dropout
from nnmath.errors import SpecError
from nnmath.layers import EVALUATION, Mode


def training(seed: int = 0) -> Mode:
    return Mode(training=True, rng=np.random.default_rng(seed))


@given(batch_pairs(), st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.999]), st.integers(0, 10**6))
def test_vjp_is_the_mask_and_matches_central_differences(pair, p, seed):
    X, G = pair
    layer = Dropout(p)
    Y, cache = layer.forward(X, training(seed))
    D = cache.D if cache.D is not None else np.ones_like(X)
    assert set(np.unique(D)) <= {0.0, 1.0 / (1.0 - p)}
    assert_array_equal(Y, X * D)
    dX, grads = layer.vjp(cache, G)
    assert grads == {}
    assert_array_equal(dX, G * D)
    # with the mask fixed, central differences of the same map see the same derivative
    J = batch_jacobian(lambda x: layer.apply(x, D)[0], X)
    assert_allclose(dX.reshape(-1), G.reshape(-1) @ J, rtol=1e-9, atol=1e-9)
    # and the explicit per-sample Jacobian diag(d_s)
    blocks, off = block_diagonal(J, *X.shape, X.shape[1])
    assert_allclose(layer.jacobian(cache), blocks, rtol=1e-9, atol=1e-9)
    assert off == 0.0
    assert_allclose(np.einsum("si,sij->sj", G, layer.jacobian(cache)), dX, rtol=1e-15)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.95])
def test_the_same_mask_as_torch_gives_torch_gradients(p):
    """torch's own nn.Dropout draws its mask; read it from its output and give it to ours."""
    rng = np.random.default_rng(5)
    X = rng.uniform(0.5, 2.0, size=(16, 7))  # nonzero, so the output shows the mask
    G = rng.normal(size=X.shape)
    torch.manual_seed(11)
    module = torch.nn.Dropout(p).train()
    X_t = tensor(X, grad=True)
    Y_t = module(X_t)
    Y_t.backward(tensor(G))
    kept = Y_t.detach().numpy() != 0
    assert 0 < kept.sum() < kept.size
    ours = Dropout(p)
    Y, cache = ours.apply(X, kept / (1.0 - p))
    assert_allclose(Y, Y_t.detach().numpy(), rtol=1e-15, atol=0)
    assert_allclose(ours.vjp(cache, G)[0], X_t.grad.numpy(), rtol=1e-15, atol=0)


def test_evaluation_mode_and_p_zero_are_the_identity_and_draw_nothing():
    X = np.random.default_rng(0).normal(size=(4, 3))
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    for layer, mode in ((Dropout(0.5), EVALUATION), (Dropout(0.0), Mode(True, rng))):
        Y, cache = layer.forward(X, mode)
        assert Y is X
        assert_array_equal(layer.vjp(cache, X)[0], X)
        assert_array_equal(layer.jacobian(cache), np.broadcast_to(np.eye(3), (4, 3, 3)))
    assert rng.bit_generator.state == state


def test_the_mask_comes_from_the_generator_passed_in():
    X = np.ones((50, 40))
    layer = Dropout(0.3)
    first, _ = layer.forward(X, training(7))
    again, _ = layer.forward(X, training(7))
    other, _ = layer.forward(X, training(8))
    assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    rng = np.random.default_rng(7)  # one generator used twice: two different masks
    a, _ = layer.forward(X, Mode(True, rng))
    b, _ = layer.forward(X, Mode(True, rng))
    assert not np.array_equal(a, b)
    # float32 and float64 draw the same mask from the same generator
    c, _ = layer.forward(X.astype(np.float32), training(7))
    assert c.dtype == np.float32
    assert_array_equal(c != 0, first != 0)


def test_units_are_kept_with_probability_one_minus_p_and_the_mean_is_kept():
    X = np.ones((400, 250))
    for p in (0.1, 0.5, 0.9):
        Y, _ = Dropout(p).forward(X, training(3))
        kept = np.mean(Y != 0)
        # 100,000 Bernoulli draws: the standard error is below 0.0016
        assert kept == pytest.approx(1 - p, abs=0.01)
        assert Y.mean() == pytest.approx(1.0, abs=0.01 / (1 - p))


def test_p_close_to_one_is_finite_and_exact():
    p = 0.999
    X = np.random.default_rng(2).normal(size=(200, 50))
    Y, cache = Dropout(p).forward(X, training(4))
    assert np.all(np.isfinite(Y))
    kept = Y != 0
    assert 0 < kept.sum() < 60
    assert_allclose(Y[kept], X[kept] / (1 - p), rtol=1e-15)


@pytest.mark.parametrize(
    ("p", "fragment"),
    [
        (1.0, "p = 1 would drop every unit"),
        (-0.1, "[0, 1)"),
        (1.5, "[0, 1)"),
        (float("nan"), "[0, 1)"),
        (True, "[0, 1)"),
    ],
)
def test_probabilities_outside_zero_one_are_refused(p, fragment):
    with pytest.raises(SpecError, match=fragment.replace("[", r"\[").replace(")", r"\)")):
        Dropout(p)


def test_training_without_a_generator_is_refused():
    with pytest.raises(SpecError, match="pass rng=np.random.default_rng"):
        Dropout(0.5).forward(np.ones((2, 2)), Mode(training=True))


def test_the_formula_record():
    tex = Dropout(0.3).tex
    assert tex.backward == r"<dX> = <dY> \odot <D>"
    assert r"\tfrac{1}{1 - 0.3}" in tex.forward and "Bernoulli" in tex.forward
    assert "dX = dY ⊙ D" in tex.text
