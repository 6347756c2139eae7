"""The engine on other Array API libraries: array-api-strict (the standard and nothing more) and
PyTorch tensors on the CPU run the same hand-derived forward and backward as NumPy, and so does JAX
when it is installed (one test: JAX compiles every new operation, which makes it slow to test).

Oracles: the NumPy result on the same weights and data, central differences (``check_gradients``
runs the backward in the model's own library and the differences in NumPy), and torch autograd.
"""

from __future__ import annotations

import array_api_strict
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from oracles import ACTIVATION_CASES, ActivationCase, case_params, torch_gradients

from nnmath.backend import convert, namespace, to_numpy
from nnmath.errors import DataError
from nnmath.gradcheck import check_gradients, default_loss_name, random_problem
from nnmath.losses import LOSSES, get_loss
from nnmath.network import MLP

BACKENDS = [pytest.param(array_api_strict, id="strict"), pytest.param(torch, id="torch")]
DTYPES = [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")]
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}  # relative to the size of the values compared
OUTPUT_FOR_LOSS = {"cross-entropy": "3softmax", "binary-cross-entropy": "2sigmoid"}


def close(ours: object, reference: np.ndarray, dtype: str) -> None:
    ours = to_numpy(ours)
    scale = max(1.0, float(np.max(np.abs(reference))))
    assert_allclose(ours, reference, rtol=0, atol=TOLERANCE[dtype] * scale)


def run_both(model: MLP, xp: object, X: np.ndarray, T: np.ndarray, loss: object, dtype: str):
    """(NumPy result, result in xp) of loss_and_gradients on the same weights and data."""
    reference = model.astype(dtype).loss_and_gradients(X.astype(dtype), T, loss)
    converted = convert(model, xp, dtype=getattr(xp, dtype))
    return reference, converted.loss_and_gradients(xp.asarray(X.astype(dtype)), xp.asarray(T), loss)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("case", case_params(ACTIVATION_CASES))
def test_every_activation_matches_numpy(case: ActivationCase, xp: object, dtype: str) -> None:
    model = MLP(f"4-6{case.id}-3{case.id}", seed=2)
    loss = get_loss(default_loss_name(model.output))
    X, T = random_problem(model, loss, 7, np.random.default_rng(1))
    (cost, ref), (xp_cost, grads) = run_both(model, xp, X, T, loss, dtype)
    assert xp_cost == pytest.approx(cost, rel=TOLERANCE[dtype])
    for ours, theirs in zip([*grads.flat(), grads.X], [*ref.flat(), ref.X], strict=True):
        assert namespace(ours) is namespace(xp.asarray(0.0))  # computed in xp, not NumPy
        assert str(ours.dtype).endswith(dtype)  # nothing silently upcast
        close(ours, theirs, dtype)


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_every_loss_matches_numpy(loss_name: str, xp: object) -> None:
    model = MLP(f"3-5tanh-{OUTPUT_FOR_LOSS.get(loss_name, '2')}", seed=4)
    loss = get_loss(loss_name)
    X, T = random_problem(model, loss, 6, np.random.default_rng(2))
    (cost, ref), (xp_cost, grads) = run_both(model, xp, X, T, loss, "float64")
    assert xp_cost == pytest.approx(cost, rel=1e-12)
    for ours, theirs in zip(grads.flat(), ref.flat(), strict=True):
        close(ours, theirs, "float64")


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize(
    "spec", ["3-5tanh-4softmax", "3-4relu-3leaky_relu(0.2)-2sigmoid", "3-4gelu-2elu(0.5)-2"]
)
def test_gradient_check_on_the_backend(spec: str, xp: object) -> None:
    model = convert(MLP(spec, seed=5), xp)
    loss = get_loss(default_loss_name(model.output))
    X, T = random_problem(model, loss, 5, np.random.default_rng(3))
    report = check_gradients(model, X, T, loss)
    assert report.passed, report.format()
    assert report.worst_relative_error < 1e-7


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")  # in the oracle
@pytest.mark.parametrize("spec", ["3-5tanh-4softmax", "3-6softplus-2sigmoid", "3-4elu-3gelu-2"])
def test_torch_tensors_match_torch_autograd(spec: str) -> None:
    model = MLP(spec, seed=6)
    loss = get_loss(default_loss_name(model.output))
    X, T = random_problem(model, loss, 8, np.random.default_rng(4))
    expected = torch_gradients(model, X, T, loss)
    cost, grads = convert(model, torch).loss_and_gradients(
        torch.from_numpy(X), torch.from_numpy(T), loss
    )
    assert cost == pytest.approx(expected.cost, rel=1e-12)
    for ours, theirs in zip(
        [*grads.W, *grads.b, grads.X], [*expected.W, *expected.b, expected.X], strict=True
    ):
        assert isinstance(ours, torch.Tensor)
        close(ours, theirs, "float64")


@pytest.mark.parametrize("xp", BACKENDS)
def test_jacobians_match_numpy(xp: object) -> None:
    model = MLP("3-4tanh-3softmax", seed=7)
    X = np.random.default_rng(5).normal(size=(4, 3))
    J, params = model.jacobians(X)
    xp_J, xp_params = convert(model, xp).jacobians(xp.asarray(X))
    close(xp_J, J, "float64")
    for ours, theirs in zip(xp_params, params, strict=True):
        for key in theirs:
            close(ours[key], theirs[key], "float64")


@pytest.mark.parametrize("xp", BACKENDS)
def test_convert_copies_and_keeps_the_model(xp: object) -> None:
    model = MLP("3-4relu-2", seed=8, dtype=np.float32)
    converted = convert(model, xp)
    assert all(isinstance(p, np.ndarray) for p in model.parameters())  # original untouched
    assert all(namespace(p) is namespace(xp.asarray(0.0)) for p in converted.parameters())
    assert str(converted.dtype).endswith("float32")  # the model's precision by default
    assert repr(converted) == "MLP('3-4relu-2', dtype=float32)"
    assert "float32" in converted.summary()
    copy = converted.copy()
    assert all(namespace(p) is namespace(xp.asarray(0.0)) for p in copy.parameters())
    for ours, theirs in zip(model.parameters(), copy.parameters(), strict=True):
        assert_allclose(to_numpy(theirs), ours, rtol=0, atol=0)
    back = convert(converted, np)
    assert all(isinstance(p, np.ndarray) and p.dtype == np.float32 for p in back.parameters())


def test_mixing_libraries_is_refused_with_a_remedy() -> None:
    model = convert(MLP("3-4relu-2", seed=9), torch)
    with pytest.raises(DataError, match=r"numpy.ndarray.*torch.*nnmath.backend.convert"):
        model.predict(np.zeros((2, 3)))
    with pytest.raises(DataError, match="array_api_strict"):
        MLP("3-4relu-2").predict(array_api_strict.zeros((2, 3), dtype=array_api_strict.float64))


def test_numpy_stays_the_default() -> None:
    model = MLP("3-4relu-2")
    assert all(type(p) is np.ndarray for p in model.parameters())
    assert namespace(*model.parameters()) is np


@pytest.mark.parametrize(
    ("spec", "loss_name"),
    [
        ("3-4gelu-3elu(0.5)-4leaky_relu(0.2)-3softplus-4softmax", "cross-entropy"),
        ("3-4tanh-3relu-2sigmoid", "binary-cross-entropy"),
        ("3-4sigmoid-2", "squared-error"),
    ],
)
def test_jax_matches_numpy_and_central_differences(spec: str, loss_name: str) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed (it is in the bench extra)")
    import jax.numpy as jnp

    model = MLP(spec, seed=10)
    loss = get_loss(loss_name)
    X, T = random_problem(model, loss, 5, np.random.default_rng(6))
    with jax.enable_x64(True):  # float64 for this test only, not for the session
        (cost, ref), (jax_cost, grads) = run_both(model, jnp, X, T, loss, "float64")
        assert jax_cost == pytest.approx(cost, rel=1e-12)
        for ours, theirs in zip([*grads.flat(), grads.X], [*ref.flat(), ref.X], strict=True):
            assert namespace(ours) is namespace(jnp.asarray(0.0))
            assert str(ours.dtype) == "float64"
            close(ours, theirs, "float64")
        assert check_gradients(convert(model, jnp), X, T, loss).passed
