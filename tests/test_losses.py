"""Losses, costs and the fused output pairs, against central differences, PyTorch and their parts.

Parametrised over the registry ``LOSSES`` (cross-entropy also in bases 2 and 10), so a new loss is
checked the moment it is registered. The fused pairs are checked against the composition of their
parts, including targets whose rows do not sum to one, where the notes' shortcut (Ŷ − T) fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from oracles import TORCH_LOSSES, loss_inputs, strict_numerics, tensor, torch_fused_values

from nnmath.activations import SIGMOID
from nnmath.errors import DataError, SpecError
from nnmath.gradcheck import numerical_gradient, numerical_jacobian
from nnmath.layers import Elementwise, Softmax, softmax
from nnmath.losses import (
    LOSSES,
    BinaryCrossEntropy,
    CrossEntropy,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
    as_targets,
    cost,
    cost_gradient,
    fuse,
    get_loss,
)

LOSS_CASES = [pytest.param(name, None, id=name) for name in LOSSES] + [
    pytest.param("cross-entropy", base, id=f"cross-entropy-base{base}") for base in (2.0, 10.0)
]
BASES = [
    pytest.param(math.e, id="ln"),
    pytest.param(2.0, id="log2"),
    pytest.param(10.0, id="log10"),
]
FD = {"rtol": 1e-6, "atol": 1e-9}
EXACT = {"rtol": 1e-12, "atol": 1e-14}
problems = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**32 - 1))


def make(name: str, base: float | None):
    return get_loss(name, base=base)


def targets_not_summing_to_one(rng: np.random.Generator, S: int, C: int) -> list[np.ndarray]:
    """One-hot, label-smoothed (rows sum to 1), halved one-hot (0.5), and random (any sum)."""
    one_hot = np.eye(C)[rng.integers(0, C, size=S)]
    return [one_hot, 0.9 * one_hot + 0.1 / C, 0.5 * one_hot, rng.uniform(0, 1, size=(S, C))]


# ---- every loss against its oracles ------------------------------------------------------------


@pytest.mark.parametrize(("name", "base"), LOSS_CASES)
@given(problem=problems)
def test_grad_matches_central_differences(name, base, problem):
    S, C, seed = problem
    loss = make(name, base)
    A, T = loss_inputs(name, np.random.default_rng(seed), S, C)
    grad = loss.grad(A, T)
    assert grad.shape == A.shape
    # ∂ℓ_s/∂a_{s′j} for all s, s′: the loss of sample s sees only row s of A
    J = numerical_jacobian(lambda a: loss.value(a, T), A).reshape(S, S, C)
    assert_allclose(grad, np.stack([J[s, s] for s in range(S)]), **FD)
    off_diagonal = J.copy()
    off_diagonal[np.arange(S), np.arange(S)] = 0.0
    assert np.max(np.abs(off_diagonal)) < 1e-9


@pytest.mark.parametrize(("name", "base"), LOSS_CASES)
@given(problem=problems)
def test_value_and_grad_match_torch(name, base, problem):
    S, C, seed = problem
    loss = make(name, base)
    A, T = loss_inputs(name, np.random.default_rng(seed), S, C)
    A_t = tensor(A, grad=True)
    values = TORCH_LOSSES[name](A_t, tensor(T), base)
    values.sum().backward()
    assert_allclose(loss.value(A, T), values.detach().numpy(), **EXACT)
    assert_allclose(loss.grad(A, T), A_t.grad.numpy(), **EXACT)


@pytest.mark.parametrize(("name", "base"), LOSS_CASES)
@given(problem=problems)
def test_the_cost_owns_one_over_s(name, base, problem):
    S, C, seed = problem
    loss = make(name, base)
    A, T = loss_inputs(name, np.random.default_rng(seed), S, C)
    assert float(cost(loss, A, T)) == pytest.approx(float(np.sum(loss.value(A, T))) / S, rel=1e-14)
    numeric = numerical_gradient(lambda: float(cost(loss, A, T)), A)
    assert_allclose(cost_gradient(loss, A, T), numeric, **FD)
    assert_allclose(cost_gradient(loss, A, T), loss.grad(A, T) / S, **EXACT)


@pytest.mark.parametrize(("name", "base"), LOSS_CASES)
def test_float32_in_float32_out(name, base):
    loss = make(name, base)
    A, T = (a.astype(np.float32) for a in loss_inputs(name, np.random.default_rng(0), 3, 4))
    assert loss.value(A, T).dtype == np.float32
    assert loss.grad(A, T).dtype == np.float32
    assert cost_gradient(loss, A, T).dtype == np.float32


def test_hand_worked_values():
    """Numbers worked out with the math module, not with the engine."""
    a, t = np.array([[0.7, 0.2, 0.1]]), np.array([[1.0, 0.0, 0.0]])
    assert float(CrossEntropy().value(a, t)[0]) == pytest.approx(-math.log(0.7), rel=1e-15)
    assert float(CrossEntropy(2.0).value(a, t)[0]) == pytest.approx(-math.log2(0.7), rel=1e-15)
    assert float(CrossEntropy(10.0).value(a, t)[0]) == pytest.approx(-math.log10(0.7), rel=1e-15)
    assert (
        float(get_loss("squared-error").value(np.array([[1.0, 2.0]]), np.zeros((1, 2)))[0]) == 2.5
    )
    assert float(get_loss("mse").value(np.array([[1.0, 2.0]]), np.zeros((1, 2)))[0]) == 2.5
    bce = float(BinaryCrossEntropy().value(np.array([[0.8]]), np.array([[1.0]]))[0])
    assert bce == pytest.approx(-math.log(0.8), rel=1e-15)
    assert_allclose(
        get_loss("squared-error").grad(np.array([[1.0, 2.0]]), np.array([[3.0, 0.0]])),
        [[-2.0, 2.0]],
    )


# ---- extremes: probabilities at and near 0 and 1 ------------------------------------------------


def test_cross_entropy_never_takes_log_of_zero():
    A = np.array([[0.0, 1.0], [1e-300, 1.0 - 1e-16], [1e-12, 0.5]])
    T = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    for base in (math.e, 2.0, 10.0):
        loss = CrossEntropy(base)
        with strict_numerics():
            value, grad = loss.value(A, T), loss.grad(A, T)
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
        tiny = np.finfo(np.float64).tiny
        assert value[0] == pytest.approx(-math.log(tiny) / math.log(base), rel=1e-12)
        assert value[1] == pytest.approx(300 * math.log(10) / math.log(base), rel=1e-12)
        assert grad[0, 1] == 0.0  # zero target, no division by a zero probability
    # near 0 (but representable) the values and gradients agree with torch
    A_t = tensor(A[1:], grad=True)
    TORCH_LOSSES["cross-entropy"](A_t, tensor(T[1:]), None).sum().backward()
    assert_allclose(CrossEntropy().grad(A[1:], T[1:]), A_t.grad.numpy(), rtol=1e-12)


def test_binary_cross_entropy_at_zero_and_one():
    # (torch clamps a(1 − a) at 1e-12 in its BCE backward, so compare with it at 1e-9, not closer)
    A = np.array([[0.0, 1.0, 0.0, 1.0, 1e-9, 1 - 1e-9]])
    T = np.array([[0.0, 1.0, 1.0, 0.0, 0.0, 1.0]])
    with strict_numerics():
        value, grad = BinaryCrossEntropy().value(A, T), BinaryCrossEntropy().grad(A, T)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert_array_equal(grad[0, :2], [0.0, 0.0])  # confident and right: no gradient
    assert grad[0, 2] < -1e300 and grad[0, 3] > 1e300  # confident and wrong: huge, finite
    A_t = tensor(A[:, 4:], grad=True)
    TORCH_LOSSES["binary-cross-entropy"](A_t, tensor(T[:, 4:]), None).sum().backward()
    assert_allclose(BinaryCrossEntropy().grad(A[:, 4:], T[:, 4:]), A_t.grad.numpy(), rtol=1e-6)


# ---- the fused pairs ----------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
@given(problem=problems)
def test_softmax_cross_entropy_equals_its_composition(base, problem):
    """grad = Softmax vjp of CrossEntropy.grad(softmax(Z), T), for T rows summing to 1 or not."""
    S, C, seed = problem
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=3.0, size=(S, C))
    fused, parts = SoftmaxCrossEntropy(base), CrossEntropy(base)
    Y, cache = Softmax().forward(Z)
    for T in targets_not_summing_to_one(rng, S, C):
        composed, _ = Softmax().vjp(cache, parts.grad(Y, T))
        assert_allclose(fused.grad(Z, T), composed, rtol=1e-9, atol=1e-12)
        assert_allclose(fused.value(Z, T), parts.value(Y, T), rtol=1e-12)
        # and the engine's fused form is ((T·1) Ŷ − T)/ln b, in closed form
        row_sums = T.sum(axis=1, keepdims=True)
        assert_allclose(fused.grad(Z, T), (row_sums * Y - T) / math.log(base), **EXACT)


@given(problem=problems)
def test_softmax_cross_entropy_matches_torch(problem):
    S, C, seed = problem
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=3.0, size=(S, C))
    for base in (math.e, 2.0, 10.0):
        for T in targets_not_summing_to_one(rng, S, C):
            Z_t = tensor(Z, grad=True)
            values = torch_fused_values("softmax", Z_t, tensor(T), base)
            values.sum().backward()
            loss = SoftmaxCrossEntropy(base)
            assert_allclose(loss.value(Z, T), values.detach().numpy(), rtol=1e-12, atol=1e-14)
            assert_allclose(loss.grad(Z, T), Z_t.grad.numpy(), rtol=1e-12, atol=1e-14)


@given(problem=problems)
def test_shortcut_y_minus_t_needs_rows_summing_to_one(problem):
    """The notes' (Ŷ − T) equals the true gradient exactly when each row of T sums to one."""
    S, C, seed = problem
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=3.0, size=(S, C))
    Y = softmax(Z)
    one_hot, smoothed, halved, _ = targets_not_summing_to_one(rng, S, C)
    loss = SoftmaxCrossEntropy()
    for T in (one_hot, smoothed):
        assert_allclose(loss.grad(Z, T), Y - T, **EXACT)
    true = Softmax().vjp(Y, CrossEntropy().grad(Y, halved))[0]
    assert_allclose(loss.grad(Z, halved), true, rtol=1e-9, atol=1e-12)
    assert not np.allclose(Y - halved, true, atol=1e-6)  # the shortcut is off by ½ŷ in each row


@pytest.mark.parametrize("base", [2.0, 10.0])
def test_log_base_divides_the_natural_gradient(base):
    rng = np.random.default_rng(5)
    Z, A = rng.normal(size=(3, 4)), rng.uniform(0.1, 1.0, size=(3, 4))
    T = rng.uniform(size=(3, 4))
    ln_b = math.log(base)
    assert_allclose(CrossEntropy(base).grad(A, T), CrossEntropy().grad(A, T) / ln_b, **EXACT)
    assert_allclose(CrossEntropy(base).value(A, T), CrossEntropy().value(A, T) / ln_b, **EXACT)
    assert_allclose(
        SoftmaxCrossEntropy(base).grad(Z, T), SoftmaxCrossEntropy().grad(Z, T) / ln_b, **EXACT
    )
    # torch computes in natural logs; its gradient divided by ln b is ours
    Z_t = tensor(Z, grad=True)
    torch.nn.functional.cross_entropy(Z_t, tensor(T), reduction="sum").backward()
    assert_allclose(SoftmaxCrossEntropy(base).grad(Z, T), Z_t.grad.numpy() / ln_b, **EXACT)


@given(problem=problems)
def test_sigmoid_bce_equals_its_composition_and_torch(problem):
    S, C, seed = problem
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=3.0, size=(S, C))
    layer = Elementwise(SIGMOID)
    Y, cache = layer.forward(Z)
    fused, parts = SigmoidBinaryCrossEntropy(), BinaryCrossEntropy()
    for T in (rng.integers(0, 2, size=(S, C)).astype(float), rng.uniform(size=(S, C))):
        composed, _ = layer.vjp(cache, parts.grad(Y, T))
        assert_allclose(fused.grad(Z, T), composed, rtol=1e-9, atol=1e-12)
        assert_allclose(fused.value(Z, T), parts.value(Y, T), rtol=1e-10)
        Z_t = tensor(Z, grad=True)
        values = torch_fused_values("sigmoid", Z_t, tensor(T))
        values.sum().backward()
        assert_allclose(fused.value(Z, T), values.detach().numpy(), rtol=1e-12, atol=1e-14)
        assert_allclose(fused.grad(Z, T), Z_t.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_fused_pairs_at_extreme_logits():
    Z = np.array([[1000.0, 0.0], [0.0, 1000.0], [-1000.0, 1000.0], [1000.0, 1000.0]])
    T = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    with strict_numerics():
        value, grad = SoftmaxCrossEntropy().value(Z, T), SoftmaxCrossEntropy().grad(Z, T)
    assert_allclose(value, [1000.0, 0.0, 2000.0, math.log(2)], rtol=1e-15)
    assert_allclose(grad, [[1.0, -1.0], [0.0, 0.0], [-1.0, 1.0], [-0.5, 0.5]], atol=1e-15)
    Z_t = tensor(Z, grad=True)
    values = torch_fused_values("softmax", Z_t, tensor(T))
    values.sum().backward()
    assert_allclose(value, values.detach().numpy(), rtol=1e-15)
    assert_allclose(grad, Z_t.grad.numpy(), atol=1e-15)

    z = np.array([[1000.0, -1000.0, 40.0, -40.0, 1000.0, -1000.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]])
    with strict_numerics():
        value, grad = (
            SigmoidBinaryCrossEntropy().value(z, t),
            SigmoidBinaryCrossEntropy().grad(z, t),
        )
    assert float(value[0]) == pytest.approx(2000.0 + 2 * math.log1p(math.exp(-40)), rel=1e-15)
    # σ(40) − 1 = −4.2e-18 is below float64's resolution at 1, so it rounds to 0
    assert_allclose(grad, [[1.0, -1.0, 0.0, math.exp(-40), 0.0, 0.0]], rtol=1e-12, atol=0)
    z_t = tensor(z, grad=True)
    values = torch_fused_values("sigmoid", z_t, tensor(t))
    values.sum().backward()
    assert_allclose(value, values.detach().numpy(), rtol=1e-15)
    assert_allclose(grad, z_t.grad.numpy(), rtol=1e-9, atol=1e-30)


def test_fused_float32_in_float32_out():
    Z = np.random.default_rng(6).normal(size=(3, 4)).astype(np.float32)
    T = np.eye(4, dtype=np.float32)[[0, 2, 3]]
    for loss in (SoftmaxCrossEntropy(), SoftmaxCrossEntropy(2.0), SigmoidBinaryCrossEntropy()):
        assert loss.value(Z, T).dtype == np.float32
        assert loss.grad(Z, T).dtype == np.float32


# ---- names, fusion and targets ------------------------------------------------------------------


def test_unknown_loss_lists_valid_names():
    with pytest.raises(SpecError) as info:
        get_loss("hinge")
    assert "'hinge'" in str(info.value)
    for name in LOSSES:
        assert name in str(info.value)


def test_loss_options_are_checked():
    with pytest.raises(SpecError, match="only cross-entropy takes a log base"):
        get_loss("mse", base=2.0)
    with pytest.raises(SpecError, match="must be > 1"):
        get_loss("cross-entropy", base=1.0)
    assert isinstance(get_loss("Binary_Cross_Entropy"), BinaryCrossEntropy)


def test_fuse_pairs_output_and_loss():
    assert fuse("softmax", CrossEntropy(2.0)) == SoftmaxCrossEntropy(2.0)
    assert isinstance(fuse("sigmoid", BinaryCrossEntropy()), SigmoidBinaryCrossEntropy)
    assert fuse("softmax", get_loss("squared-error")) is None
    assert fuse("sigmoid", CrossEntropy()) is None
    assert fuse("identity", get_loss("mse")) is None


def test_as_targets_one_hot_and_binary_column():
    assert_array_equal(as_targets(np.array([2, 0]), 3, np.float64), [[0, 0, 1], [1, 0, 0]])
    assert_array_equal(as_targets(np.array([1, 0, 1]), 1, np.float32), [[1], [0], [1]])
    assert as_targets(np.array([1, 0]), 2, np.float32).dtype == np.float32


def test_labels_outside_the_classes_are_refused_naming_label_and_row():
    with pytest.raises(DataError, match=r"label 5 in row 2 is outside the 3 classes 0 … 2"):
        as_targets(np.array([0, 1, 5, 1]), 3, np.float64)
    with pytest.raises(DataError, match=r"label -1 in row 0"):
        as_targets(np.array([-1, 1]), 3, np.float64)
    with pytest.raises(DataError, match=r"label 2 in row 1 is outside the 2 classes"):
        as_targets(np.array([1, 2]), 1, np.float64)
    with pytest.raises(DataError, match="whole numbers"):
        as_targets(np.array([0.5, 1.0]), 3, np.float64)
    with pytest.raises(DataError, match=r"targets of shape \(2, 4\) do not fit a network with 3"):
        as_targets(np.zeros((2, 4)), 3, np.float64)
