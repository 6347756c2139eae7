"""FastStep against the clear engine (MLP.loss_and_gradients + SGD), PyTorch and central differences.

The fast step computes the same mathematics in reused buffers; every path it has (ReLU and identity
in place, other activations through the table, the transposed softmax + cross-entropy with labels or
targets, other output/loss pairs through the engine, the numba kernel) is tied here to the engine to
float32 round-off, and in float64 to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracles import torch_gradients

from nnmath.errors import DataError, ShapeError, SpecError
from nnmath.fast import FastStep, flat_parameters, stored_transposed
from nnmath.gradcheck import numerical_gradient
from nnmath.losses import CrossEntropy, get_loss
from nnmath.network import MLP
from nnmath.optimizers import SGD
from nnmath.penalties import L1, L2

# (spec, loss): every path of the step. Softmax + cross-entropy (fused, in place), sigmoid +
# binary cross-entropy (fused, the engine's), and unfused pairs through the output layer's VJP.
CASES = [
    ("3-10relu-6relu-3softmax", "cross-entropy"),
    ("4-7relu-5identity-3softmax", "cross-entropy"),
    ("4-6tanh-5sigmoid-3softmax", "squared-error"),
    ("4-7gelu-5leaky_relu(0.2)-2sigmoid", "binary-cross-entropy"),
    ("4-6elu(0.5)-5softplus-2sigmoid", "mse"),
    ("4-6relu-3tanh", "squared-error"),
    ("4-6tanh-2", "mse"),
    ("5-3softmax", "cross-entropy"),  # no hidden layer
    ("5-4", "squared-error"),
]
CASE_IDS = [f"{spec}|{loss}" for spec, loss in CASES]
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def data(model: MLP, loss_name: str, S: int, rng: np.random.Generator, labels: bool = True):
    """X (S, n_in) in the model's dtype and targets that fit the loss: labels or a matrix."""
    X = rng.standard_normal((S, model.n_in)).astype(model.dtype)
    if loss_name in ("cross-entropy", "binary-cross-entropy") and labels:
        classes = 2 if model.n_out == 1 else model.n_out
        if loss_name == "binary-cross-entropy" and model.n_out > 1:
            return X, (rng.random((S, model.n_out)) < 0.5).astype(model.dtype)
        return X, rng.integers(0, classes, S)
    if loss_name == "cross-entropy":
        return X, rng.dirichlet(np.ones(model.n_out), S).astype(model.dtype)  # probability rows
    return X, rng.random((S, model.n_out)).astype(model.dtype)


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype: type) -> None:
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL[dtype] * scale)


# ---- gradients against the engine ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("spec", "loss_name"), CASES, ids=CASE_IDS)
def test_gradients_equal_the_engines(spec, loss_name, dtype, rng) -> None:
    model = MLP(spec, dtype=dtype, seed=3)
    loss = get_loss(loss_name)
    X, T = data(model, loss_name, 11, rng)
    fast = FastStep(model, loss, batch_size=11)
    cost, grads = fast.loss_and_gradients(X, T)
    expected_cost, expected = model.loss_and_gradients(X, T, loss)
    assert cost == pytest.approx(expected_cost, rel=TOL[dtype], abs=TOL[dtype])
    assert len(grads) == len(expected.flat())
    for got, want in zip(grads, expected.flat(), strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_targets_and_log_base(dtype, rng) -> None:
    """Soft targets (rows that sum to 1, or not) and cross-entropy in base 2."""
    model = MLP("4-8relu-3softmax", dtype=dtype, seed=1)
    loss = CrossEntropy(base=2.0)
    X = rng.standard_normal((9, 4)).astype(dtype)
    for T in (rng.dirichlet(np.ones(3), 9), 2.0 * rng.random((9, 3))):
        T = T.astype(dtype)
        cost, grads = FastStep(model, loss, 9).loss_and_gradients(X, T)
        expected_cost, expected = model.loss_and_gradients(X, T, loss)
        assert cost == pytest.approx(expected_cost, rel=TOL[dtype])
        for got, want in zip(grads, expected.flat(), strict=True):
            assert_close(got, want, dtype)


def test_labels_and_one_hot_rows_give_the_same_step(rng) -> None:
    model = MLP("5-9relu-4softmax", dtype=np.float64, seed=2)
    X, y = data(model, "cross-entropy", 7, rng)
    fast = FastStep(model, get_loss("cross-entropy"), 7)
    cost_labels, grads = fast.loss_and_gradients(X, y)
    from_labels = [g.copy() for g in grads]
    cost_rows, from_rows = fast.loss_and_gradients(X, np.eye(4)[y])
    assert cost_labels == pytest.approx(cost_rows, rel=1e-14)
    for a, b in zip(from_labels, from_rows, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)


# ---- independent oracles: PyTorch autograd and central differences ---------------------------------


@pytest.mark.parametrize(("spec", "loss_name"), CASES[:5], ids=CASE_IDS[:5])
def test_gradients_equal_torch_autograd(spec, loss_name, rng) -> None:
    model = MLP(spec, dtype=np.float64, seed=5)
    loss = get_loss(loss_name)
    X, T = data(model, loss_name, 6, rng)
    cost, grads = FastStep(model, loss, 6).loss_and_gradients(X, T)
    theirs = torch_gradients(model, X, T, loss)
    assert cost == pytest.approx(theirs.cost, rel=1e-12)
    flat = [g for pair in zip(theirs.W, theirs.b, strict=True) for g in pair]
    for got, want in zip(grads, flat, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_gradients_equal_central_differences(rng) -> None:
    model = MLP("3-5tanh-4relu-3softmax", dtype=np.float64, seed=7)
    loss = get_loss("cross-entropy")
    X, y = data(model, "cross-entropy", 5, rng)
    fast = FastStep(model, loss, 5)
    _, grads = fast.loss_and_gradients(X, y)
    grads = [g.copy() for g in grads]
    for param, got in zip(model.parameters(), grads, strict=True):
        numeric = numerical_gradient(lambda: fast.loss_and_gradients(X, y)[0], param)
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


# ---- the SGD step -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("spec", "loss_name"), CASES, ids=CASE_IDS)
def test_sgd_steps_equal_engine_plus_sgd(spec, loss_name, dtype, rng) -> None:
    """Several steps, batch sizes 8, 8, 5 (a last partial batch), 8: weights and costs agree."""
    model = MLP(spec, dtype=dtype, seed=4)
    reference = model.copy()
    loss, lr = get_loss(loss_name), 0.1
    fast = FastStep(model, loss, batch_size=8)
    optimizer = SGD(lr)
    for S in (8, 8, 5, 8):
        X, T = data(model, loss_name, S, rng)
        cost = fast.sgd_step(X, T, lr)
        expected_cost, grads = reference.loss_and_gradients(X, T, loss)
        optimizer.step(reference.parameters(), grads.flat())
        assert cost == pytest.approx(expected_cost, rel=1e-4 if dtype == np.float32 else 1e-12)
    for got, want in zip(model.parameters(), reference.parameters(), strict=True):
        assert got.dtype == dtype
        assert_close(got, want, dtype)


# ---- sample weights and penalties ------------------------------------------------------------------

PENALTIES = [None, L2(0.3), L1(0.2, per_sample=True)]
PENALTY_IDS = ["none", "l2", "l1-per-sample"]


def weights_for(S: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.uniform(0.2, 3.0, S)
    w[0] = 0.0  # a row that does not count
    return w


@pytest.mark.parametrize("penalty", PENALTIES, ids=PENALTY_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("spec", "loss_name"), CASES, ids=CASE_IDS)
def test_weighted_penalised_gradients_equal_the_engines(spec, loss_name, dtype, penalty, rng):
    model = MLP(spec, dtype=dtype, seed=3)
    loss = get_loss(loss_name)
    for labels in (True, False):
        X, T = data(model, loss_name, 11, rng, labels=labels)
        w = weights_for(11, rng)
        fast = FastStep(model, loss, batch_size=11, penalty=penalty)
        cost, grads = fast.loss_and_gradients(X, T, w)
        expected_cost, expected = model.loss_and_gradients(
            X, T, loss, sample_weight=w, penalty=penalty
        )
        assert cost == pytest.approx(expected_cost, rel=TOL[dtype], abs=TOL[dtype])
        for got, want in zip(grads, expected.flat(), strict=True):
            assert got.dtype == dtype
            assert_close(got, want, dtype)


@pytest.mark.parametrize("penalty", PENALTIES, ids=PENALTY_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weighted_penalised_sgd_steps_equal_engine_plus_sgd(dtype, penalty, rng) -> None:
    model = MLP("3-10relu-6relu-3softmax", dtype=dtype, seed=4)
    reference = model.copy()
    loss, lr = get_loss("cross-entropy"), 0.1
    fast = FastStep(model, loss, batch_size=8, penalty=penalty)
    optimizer = SGD(lr)
    for S in (8, 5, 8):
        X, T = data(model, "cross-entropy", S, rng)
        w = weights_for(S, rng)
        cost = fast.sgd_step(X, T, lr, w)
        expected_cost, grads = reference.loss_and_gradients(
            X, T, loss, sample_weight=w, penalty=penalty
        )
        optimizer.step(reference.parameters(), grads.flat())
        assert cost == pytest.approx(expected_cost, rel=1e-4 if dtype == np.float32 else 1e-12)
    for got, want in zip(model.parameters(), reference.parameters(), strict=True):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("penalty", PENALTIES[1:], ids=PENALTY_IDS[1:])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_penalty_on_the_first_layer_stored_transposed(dtype, penalty, rng) -> None:
    """fit's layout (θ one vector, W⁽¹⁾ held as the rows of W⁽¹⁾ᵀ): the penalty's terms, computed
    in a scratch buffer laid out like W⁽¹⁾, give the engine's cost, gradients and SGD step."""
    model = MLP("5-7relu-4relu-3softmax", dtype=dtype, seed=5)
    trained, _ = flat_parameters(model, np.dtype(dtype), transposed_first=True)
    assert stored_transposed(trained.linears[0].W)
    loss, lr = get_loss("cross-entropy"), 0.1
    fast = FastStep(trained, loss, batch_size=9, penalty=penalty)
    X, T = data(model, "cross-entropy", 9, rng)
    w = weights_for(9, rng)
    cost, grads = fast.loss_and_gradients(X, T, w)
    expected_cost, expected = model.loss_and_gradients(X, T, loss, sample_weight=w, penalty=penalty)
    assert cost == pytest.approx(expected_cost, rel=TOL[dtype], abs=TOL[dtype])
    for got, want in zip(grads, expected.flat(), strict=True):
        assert_close(got, want, dtype)
    fast.sgd_step(X, T, lr, w)
    SGD(lr).step(model.parameters(), expected.flat())
    for got, want in zip(trained.parameters(), model.parameters(), strict=True):
        assert_close(got, want, dtype)


@pytest.mark.parametrize(("spec", "loss_name"), CASES[:6], ids=CASE_IDS[:6])
def test_weighted_evaluate_gives_the_engines_cost(spec, loss_name, rng) -> None:
    model = MLP(spec, dtype=np.float64, seed=2)
    loss = get_loss(loss_name)
    X, T = data(model, loss_name, 23, rng)
    w = weights_for(23, rng)
    w[:4] = 0.0  # the first chunk of 4 rows weighs nothing
    fast = FastStep(model, loss, 4, penalty=L2(0.1, per_sample=True))
    cost, outputs = fast.evaluate(X, T, w)
    expected = model.cost(X, T, loss, sample_weight=w, penalty=L2(0.1, per_sample=True))
    assert cost == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(outputs, model.predict(X), rtol=1e-12, atol=1e-14)


def test_weighted_step_refuses_bad_weights(rng) -> None:
    model = MLP("3-4relu-3softmax", seed=0)
    fast = FastStep(model, get_loss("cross-entropy"), 4)
    X, y = data(model, "cross-entropy", 4, rng)
    with pytest.raises(DataError, match="one weight per row"):
        fast.loss_and_gradients(X, y, np.ones(3))
    with pytest.raises(DataError, match="sum to 0"):
        fast.sgd_step(X, y, 0.1, np.zeros(4))
    with pytest.raises(DataError, match="negative"):
        fast.check(X, y, np.array([1.0, -1.0, 1.0, 1.0]))


def test_sgd_step_with_zero_learning_rate_changes_nothing(rng) -> None:
    model = MLP("3-10relu-6relu-3softmax", dtype=np.float32, seed=0)
    before = [p.copy() for p in model.parameters()]
    X, y = data(model, "cross-entropy", 4, rng)
    cost = FastStep(model, get_loss("cross-entropy"), 4).sgd_step(X, y, 0.0)
    assert cost == pytest.approx(model.cost(X, y, get_loss("cross-entropy")), rel=1e-6)
    for p, q in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)


def test_the_step_reads_the_models_current_weights(rng) -> None:
    """An optimizer's in-place update, or new arrays assigned to a layer, are seen next call."""
    model = MLP("3-6relu-2softmax", dtype=np.float64, seed=0)
    loss = get_loss("cross-entropy")
    X, y = data(model, "cross-entropy", 5, rng)
    fast = FastStep(model, loss, 5)
    model.linears[0].W *= 0.5
    model.linears[1].W = model.linears[1].W + 1.0
    cost, grads = fast.loss_and_gradients(X, y)
    expected_cost, expected = model.loss_and_gradients(X, y, loss)
    assert cost == pytest.approx(expected_cost, rel=1e-12)
    for got, want in zip(grads, expected.flat(), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# ---- dtypes, batch sizes, buffers --------------------------------------------------------------------


def test_float32_stays_float32_with_float64_inputs(rng) -> None:
    """Float64 inputs and targets are converted once into float32 buffers: nothing upcasts."""
    model = MLP("4-6relu-3softmax", dtype=np.float32, seed=0)
    loss = get_loss("cross-entropy")
    X = rng.standard_normal((6, 4))  # float64
    T = rng.dirichlet(np.ones(3), 6)  # float64
    fast = FastStep(model, loss, 6)
    cost, grads = fast.loss_and_gradients(X, T)
    assert all(g.dtype == np.float32 for g in grads)
    expected_cost, expected = model.loss_and_gradients(
        X.astype(np.float32), T.astype(np.float32), loss
    )
    assert cost == pytest.approx(expected_cost, rel=1e-5)
    for got, want in zip(grads, expected.flat(), strict=True):
        assert_close(got, want, np.float32)
    fast.sgd_step(X, T, 0.1)
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_labels_as_floats_and_strided_inputs(rng) -> None:
    model = MLP("4-6relu-3softmax", dtype=np.float64, seed=0)
    loss = get_loss("cross-entropy")
    X = rng.standard_normal((6, 8))[:, ::2]  # a strided view
    y = np.array([0.0, 2.0, 1.0, 1.0, 0.0, 2.0])
    cost, grads = FastStep(model, loss, 6).loss_and_gradients(X, y)
    expected_cost, expected = model.loss_and_gradients(X, y, loss)
    assert cost == pytest.approx(expected_cost, rel=1e-12)
    for got, want in zip(grads, expected.flat(), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    with pytest.raises(DataError, match="whole numbers"):
        FastStep(model, loss, 6).loss_and_gradients(X, y + 0.5)


def test_batches_larger_than_the_buffers_grow_them(rng) -> None:
    model = MLP("4-6relu-3softmax", dtype=np.float64, seed=0)
    loss = get_loss("cross-entropy")
    fast = FastStep(model, loss, 4)
    for S in (4, 9, 3, 9, 1):
        X, y = data(model, "cross-entropy", S, rng)
        cost, grads = fast.loss_and_gradients(X, y)
        expected_cost, expected = model.loss_and_gradients(X, y, loss)
        assert cost == pytest.approx(expected_cost, rel=1e-12)
        for got, want in zip(grads, expected.flat(), strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert fast.capacity == 9


@pytest.mark.parametrize(("spec", "loss_name"), CASES, ids=CASE_IDS)
def test_predict_equals_the_engines(spec, loss_name, rng) -> None:
    model = MLP(spec, dtype=np.float32, seed=1)
    fast = FastStep(model, get_loss(loss_name), 4)  # 11 rows: chunks of 4, 4 and 3
    X = rng.standard_normal((11, model.n_in))
    got = fast.predict(X)
    assert got.dtype == np.float32 and got.shape == (11, model.n_out)
    np.testing.assert_allclose(got, model.predict(X.astype(np.float32)), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize(("spec", "loss_name"), CASES, ids=CASE_IDS)
def test_evaluate_gives_the_engines_cost_and_outputs(spec, loss_name, rng) -> None:
    model = MLP(spec, dtype=np.float64, seed=2)
    loss = get_loss(loss_name)
    fast = FastStep(model, loss, 4)
    X, T = data(model, loss_name, 10, rng)
    cost, outputs = fast.evaluate(X, T)
    assert cost == pytest.approx(model.cost(X, T, loss), rel=1e-12)
    np.testing.assert_allclose(outputs, model.predict(X), rtol=1e-12, atol=1e-15)
    if T.ndim == 1:
        bad = T.copy()
        bad[3] = 7
        with pytest.raises(DataError, match="label 7 in row 3"):
            fast.evaluate(X, bad)


def test_softmax_cross_entropy_has_no_overflow_for_huge_logits() -> None:
    model = MLP("2-3softmax", dtype=np.float32, seed=0)
    model.linears[0].W[:] = np.array([[1e4, 0], [0, 1e4], [-1e4, 0]], np.float32)
    X = np.array([[10.0, -10.0], [-10.0, 10.0]], np.float32)
    cost, grads = FastStep(model, get_loss("cross-entropy"), 2).loss_and_gradients(
        X, np.array([1, 0])
    )
    # row 1: ln(1 + 2e^{-2·10⁵}) + 2·10⁵; row 2 (two equal maxima): ln 2 + 2·10⁵
    assert cost == pytest.approx(2e5 + np.log(2.0) / 2, abs=0.05)
    assert all(np.all(np.isfinite(g)) for g in grads)


# ---- errors -----------------------------------------------------------------------------------------


def test_check_names_bad_labels_rows_and_values(rng) -> None:
    model = MLP("4-6relu-3softmax", dtype=np.float32, seed=0)
    fast = FastStep(model, get_loss("cross-entropy"), 4)
    X = rng.standard_normal((4, 4)).astype(np.float32)
    with pytest.raises(DataError, match="label 3 in row 2"):
        fast.check(X, np.array([0, 1, 3, 2]))
    with pytest.raises(DataError, match="4 input rows but 3 targets"):
        fast.check(X, np.array([0, 1, 2]))
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(DataError, match="row 1"):
        fast.check(bad, np.array([0, 1, 2, 2]))
    with pytest.raises(DataError, match="NaN or Inf"):
        fast.check(X, np.full((4, 3), np.inf, np.float32))
    fast.check(X, np.array([0, 1, 2, 2]))  # good data passes


def test_steps_refuse_bad_shapes(rng) -> None:
    model = MLP("4-6relu-3softmax", dtype=np.float32, seed=0)
    fast = FastStep(model, get_loss("cross-entropy"), 4)
    with pytest.raises(ShapeError, match=r"inputs of shape \(S, 4\)"):
        fast.sgd_step(np.zeros((4, 5), np.float32), np.zeros(4, int), 0.1)
    with pytest.raises(DataError, match="do not fit 4 inputs and 3 outputs"):
        fast.loss_and_gradients(np.zeros((4, 4), np.float32), np.zeros((4, 2), np.float32))
    with pytest.raises(DataError, match="do not fit"):
        fast.loss_and_gradients(np.zeros((4, 4), np.float32), np.zeros(3, int))
    with pytest.raises(SpecError, match="batch_size"):
        FastStep(model, get_loss("cross-entropy"), 0)
    with pytest.raises(SpecError, match="kernel must be"):
        FastStep(model, get_loss("cross-entropy"), 4, kernel="cuda")


def test_without_numba_auto_is_numpy_and_numba_says_how_to_install(monkeypatch) -> None:
    import nnmath.fast

    def missing() -> None:
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(nnmath.fast, "_numba_kernels", missing)
    model, loss = MLP("3-4relu-3softmax"), get_loss("cross-entropy")
    assert FastStep(model, loss, 4, kernel="auto").kernel == "numpy"
    with pytest.raises(SpecError, match=r"pip install 'nnmath\[numba\]'"):
        FastStep(model, loss, 4, kernel="numba")


# ---- the numba kernel (optional extra) ------------------------------------------------------------


@pytest.fixture(scope="module")
def numba_available() -> None:
    pytest.importorskip("numba")
    pytest.importorskip("scipy")


@pytest.mark.parametrize(
    ("dtype", "labels", "spec"),
    [
        (np.float64, True, "3-10relu-6relu-3softmax"),
        (np.float64, False, "3-10relu-6relu-3softmax"),
        (np.float32, True, "3-10relu-6relu-3softmax"),
        (np.float64, True, "4-7relu-5identity-3softmax"),
    ],
)
def test_numba_kernel_equals_the_numpy_kernel(numba_available, dtype, labels, spec, rng) -> None:
    loss = get_loss("cross-entropy")
    numpy_model = MLP(spec, dtype=dtype, seed=6)
    numba_model = numpy_model.copy()
    on_numpy = FastStep(numpy_model, loss, 8)
    on_numba = FastStep(numba_model, loss, 8, kernel="numba")
    assert on_numba.kernel == "numba"
    for S in (8, 5, 8):
        X, T = data(numpy_model, "cross-entropy", S, rng, labels=labels)
        if S == 5:
            X = np.repeat(X, 2, axis=1)[:, ::2]  # a strided view: neither C nor F contiguous
        cost, grads = on_numpy.loss_and_gradients(X, T)
        grads = [g.copy() for g in grads]
        cost_numba, grads_numba = on_numba.loss_and_gradients(X, T)
        assert cost_numba == pytest.approx(cost, rel=TOL[dtype])
        for a, b in zip(grads_numba, grads, strict=True):
            assert a.dtype == dtype
            assert_close(a, b, dtype)
        assert on_numba.sgd_step(X, T, 0.1) == pytest.approx(
            on_numpy.sgd_step(X, T, 0.1), rel=TOL[dtype]
        )
    for a, b in zip(numba_model.parameters(), numpy_model.parameters(), strict=True):
        assert_close(a, b, dtype)


@pytest.mark.parametrize("labels", [True, False])
@pytest.mark.parametrize("penalty", PENALTIES, ids=PENALTY_IDS)
def test_numba_kernel_weighted_and_penalised(numba_available, penalty, labels, rng) -> None:
    loss = get_loss("cross-entropy")
    numpy_model = MLP("3-10relu-6relu-3softmax", seed=6)
    numba_model = numpy_model.copy()
    on_numpy = FastStep(numpy_model, loss, 8, penalty=penalty)
    on_numba = FastStep(numba_model, loss, 8, kernel="numba", penalty=penalty)
    for S in (8, 5):
        X, T = data(numpy_model, "cross-entropy", S, rng, labels=labels)
        w = weights_for(S, rng)
        cost, grads = on_numpy.loss_and_gradients(X, T, w)
        grads = [g.copy() for g in grads]
        cost_numba, grads_numba = on_numba.loss_and_gradients(X, T, w)
        assert cost_numba == pytest.approx(cost, rel=1e-12)
        for a, b in zip(grads_numba, grads, strict=True):
            assert_close(a, b, np.float64)
        assert on_numba.sgd_step(X, T, 0.1, w) == pytest.approx(
            on_numpy.sgd_step(X, T, 0.1, w), rel=1e-12
        )
    for a, b in zip(numba_model.parameters(), numpy_model.parameters(), strict=True):
        assert_close(a, b, np.float64)


def test_numba_kernel_refuses_what_it_cannot_compute(numba_available, rng) -> None:
    loss = get_loss("cross-entropy")
    with pytest.raises(SpecError, match="ReLU or identity hidden layers"):
        FastStep(MLP("3-4tanh-3softmax"), loss, 4, kernel="numba")
    assert FastStep(MLP("3-4tanh-3softmax"), loss, 4, kernel="auto").kernel == "numpy"
    step = FastStep(MLP("3-4relu-3softmax"), loss, 4, kernel="numba")
    X = rng.standard_normal((4, 3))
    with pytest.raises(DataError, match="label 5 in row 1"):
        step.sgd_step(X, np.array([0, 5, 1, 2]), 0.1)


# ---- the optimizers' compiled loops ----------------------------------------------------------------

RULES = [
    ("momentum", {"learning_rate": 0.1}),
    ("nesterov", {"learning_rate": 0.1, "weight_decay": 0.01}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.01}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9, "weight_decay": 0.01, "eps": 1e-3}),
    ("adam", {}),
    ("adam", {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "weight_decay": 0.1}),
    ("adamw", {}),
    ("adamw", {"learning_rate": 0.01, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "kwargs"), RULES, ids=[f"{n}{k}" for n, k in RULES])
def test_compiled_rules_equal_the_optimizers_bit_for_bit(numba_available, name, kwargs, dtype):
    """One compiled loop per step (each parameter read and written once) against the optimizer's
    own rule applied to the same vector: the same numbers, bit for bit, and the same state."""
    from nnmath.fast import CompiledUpdate
    from nnmath.optimizers import FlatUpdate, make_optimizer

    rng = np.random.default_rng(7)
    theta = rng.standard_normal(50).astype(dtype)
    ours, theirs = theta.copy(), theta.copy()
    grad_ours, grad_theirs = np.empty_like(theta), np.empty_like(theta)
    views = lambda v: [v[:30].reshape(5, 6), v[30:]]  # noqa: E731  (two "parameters")
    compiled = CompiledUpdate(make_optimizer(name, **kwargs), ours, grad_ours, views)
    reference = FlatUpdate(make_optimizer(name, **kwargs), theirs, grad_theirs, views)
    for k in range(6):
        g = rng.standard_normal(50).astype(dtype)
        grad_ours[:], grad_theirs[:] = g, g
        for update in (compiled, reference):
            update.optimizer.learning_rate *= 0.9  # a schedule changes η between steps
            update.step()
        np.testing.assert_array_equal(ours, theirs, err_msg=f"step {k + 1}")
    for a, b in zip(compiled.state, reference.state, strict=True):
        np.testing.assert_array_equal(a, b)


def test_compiled_update_takes_plain_sgd_as_it_is(numba_available) -> None:
    from nnmath.fast import CompiledUpdate
    from nnmath.optimizers import SGD, FlatUpdate

    theta, grad = np.arange(6.0), np.linspace(-1, 1, 6)
    ours, theirs = theta.copy(), theta.copy()
    for update in (CompiledUpdate(SGD(0.1, weight_decay=0.01), ours, grad, lambda v: [v]),
                   FlatUpdate(SGD(0.1, weight_decay=0.01), theirs, grad, lambda v: [v])):  # fmt: skip
        update.step()
    np.testing.assert_array_equal(ours, theirs)


def test_a_subclass_with_its_own_rule_keeps_it_on_the_numba_kernel(numba_available, rng) -> None:
    """The compiled loops compute SGD's, RMSprop's and Adam's own rules; an optimizer that
    subclasses one with a rule of its own (scikit-learn's momentum in nnmath.sklearn does) is
    applied through its ``apply``, never through its base class's loop."""
    from nnmath.fast import has_compiled_rule
    from nnmath.training import fit

    class TenfoldMomentum(SGD):
        def apply(self, theta, g, state, work) -> None:
            super().apply(theta, np.multiply(g, 10.0, out=np.empty_like(g)), state, work)

    assert has_compiled_rule(SGD(0.1, momentum=0.9))
    assert not has_compiled_rule(TenfoldMomentum(0.1, momentum=0.9))
    X, y = rng.normal(size=(64, 3)), rng.integers(0, 3, 64)
    trained = {}
    for name, optimizer in [("plain", SGD(0.01, momentum=0.9)),
                            ("tenfold", TenfoldMomentum(0.01, momentum=0.9)),
                            ("tenfold rate", SGD(0.1, momentum=0.9))]:  # fmt: skip
        model = MLP("3-8relu-3softmax", seed=0)
        fit(model, X, y, optimizer=optimizer, epochs=2, batch_size=16, kernel="numba")
        trained[name] = model.parameters()
    for ten, rate in zip(trained["tenfold"], trained["tenfold rate"], strict=True):
        np.testing.assert_allclose(ten, rate, rtol=1e-5, atol=1e-6)  # 10 g at η = 10 η g
    assert not np.allclose(trained["tenfold"][0], trained["plain"][0])
