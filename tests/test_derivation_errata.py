"""The mistakes of the specification notes (docs/notes-errata.md), each checked on numbers.

Each test evaluates what a note writes and what nnmath computes against central differences (or
the engine where the engine is itself checked elsewhere), and shows that the note's formula does
not give the true value while nnmath's does. Test names follow the errata's entries.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnmath.derivation import check_formula, derive, make_problem
from nnmath.gradcheck import numerical_gradient, numerical_jacobian
from nnmath.layers import Softmax, softmax
from nnmath.losses import get_loss
from nnmath.network import MLP

RNG = np.random.default_rng(20240601)


def numeric_grad(f, x):
    x = np.array(x, dtype=np.float64)
    return numerical_gradient(lambda: f(x), x)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def close(a, b):
    return np.allclose(a, b, rtol=1e-6, atol=1e-9)


# ---- notes 004 (Neural Network Mathematics) ------------------------------------------------------


def test_004_2_1_squared_error_gradient_is_a_minus_t():
    a, t = RNG.uniform(size=5), RNG.uniform(size=5)
    true = numeric_grad(lambda a_: 0.5 * np.sum((t - a_) ** 2), a)
    assert close(true, a - t)  # nnmath's SquaredError.grad
    assert not close(true, t - a)  # the note's dc/da = t − a
    assert close(get_loss("squared-error").grad(a[None], t[None])[0], a - t)


def test_004_2_1_matrix_form_of_the_squared_error_is_a_scalar():
    a, t = RNG.uniform(size=4), RNG.uniform(size=4)
    note = 0.5 * ((t - a) * (t - a))  # ½ (t − a) ∘ (t − a): a vector, not a loss
    assert note.shape == (4,)
    assert np.isclose(0.5 * (t - a) @ (t - a), get_loss("squared-error").value(a[None], t[None])[0])


def test_004_4_element_form_of_z_needs_the_sum_over_k():
    W, a, b = RNG.normal(size=(3, 4)), RNG.normal(size=4), RNG.normal(size=3)
    z = W @ a + b
    assert close(z, [sum(W[j, k] * a[k] for k in range(4)) + b[j] for j in range(3)])
    assert not close(z, W[:, 1] * a[1] + b)  # z_j = a_k w_jk + b_j for one k


def one_layer_sigmoid(seed=0):
    model = MLP("3-2sigmoid", seed=seed)
    x, t = RNG.normal(size=(1, 3)), RNG.uniform(size=(1, 2))
    return model, x, t


def test_004_5_1_1_layer_L_gradient_has_its_sign_flipped():
    model, x, t = one_layer_sigmoid()
    a = model.predict(x)[0]
    _, grads = model.loss_and_gradients(x, t, get_loss("squared-error"))
    note = np.outer((t[0] - a) * (1 - a) * a, x[0])  # (t_j − a_j)(1 − a_j) a_j a_k
    assert close(grads.W[0], -note)  # exactly the negative: descent on it climbs


def test_004_5_1_1_layer_L_minus_1_uses_a_q_of_layer_L_minus_2():
    """dz_k^{L-1}/dw_kq^{L-1} is a_q^{L-2} (the layer's input), not a_q^{L-1} (its output)."""
    model = MLP("3-4sigmoid-2sigmoid", seed=1)
    x, t = RNG.normal(size=(1, 3)), RNG.uniform(size=(1, 2))
    _, caches = model.forward(x)
    a1, a2 = caches[1][1][0], caches[3][1][0]
    W2 = model.linears[1].W
    _, grads = model.loss_and_gradients(x, t, get_loss("squared-error"))
    delta1 = (W2.T @ ((a2 - t[0]) * a2 * (1 - a2))) * a1 * (1 - a1)
    assert close(grads.W[0], np.outer(delta1, x[0]))  # a_q^{L-2} = x
    assert np.outer(delta1, a1).shape != grads.W[0].shape  # a_q^{L-1} does not even fit


def test_004_5_2_1_the_targets_must_sum_to_one_not_the_outputs():
    z = RNG.normal(size=4)
    t = np.array([0.5, 0.3, 0.4, 0.1])  # sums to 1.3; softmax(z) still sums to 1
    a = softmax(z[None])[0]
    assert np.isclose(a.sum(), 1.0)
    true = numeric_grad(lambda z_: -np.sum(t * np.log(softmax(z_[None])[0])), z)
    assert not close(true, a - t)  # the note's result needs Σ t = 1
    assert close(true, t.sum() * a - t)  # nnmath's general form ((T1)1ᵀ ⊙ Ŷ − T)


def test_004_appendix_b_summing_partials_gives_zero_not_the_jacobian():
    z = RNG.normal(size=4)
    J = numerical_jacobian(lambda z_: softmax(z_[None])[0], z)
    assert np.allclose(J.sum(axis=1), 0.0, atol=1e-9)  # Σ_k ∂a_j/∂z_k = a_j(1 − Σ a_k) = 0


def test_004_appendix_b_factorisation_needs_diag_a():
    z = RNG.normal(size=4)
    a = softmax(z[None])[0]
    J = numerical_jacobian(lambda z_: softmax(z_[None])[0], z)
    assert close(J, np.diag(a) @ (np.eye(4) - np.ones((4, 1)) @ a[None]))
    assert (a[None] @ (np.eye(4) - np.ones((4, 1)) @ a[None])).shape == (1, 4)  # row vector: no J


# ---- notes 001 ------------------------------------------------------------------------------------


def test_001_softmax_jacobian_is_not_p_times_one_minus_p():
    o = RNG.normal(size=4)
    p = softmax(o[None])[0]
    J = numerical_jacobian(lambda o_: softmax(o_[None])[0], o)
    assert close(J, np.diag(p) - np.outer(p, p))  # nnmath's Softmax.jacobian
    assert not close(J, np.diag(p * (1 - p)))  # p(1 − p): the diagonal only


def test_001_quotient_rule_needs_an_outer_product():
    """dp/do = (exp(o) Σ exp(o_k) − exp(o)ᵀ exp(o)) / (Σ exp(o_k))²: exp(o)ᵀ exp(o) is an inner
    product, a number, so the line is a vector; the Jacobian needs the outer product exp(o) exp(o)ᵀ:
    (diag(exp(o)) Σ exp(o_k) − exp(o) exp(o)ᵀ) / (Σ exp(o_k))² = diag(p) − p pᵀ."""
    o = RNG.normal(size=4)
    e, total = np.exp(o), np.exp(o).sum()
    J = numerical_jacobian(lambda o_: softmax(o_[None])[0], o)
    note = (e * total - e.T @ e) / total**2  # the note's line, as written
    assert note.shape == (4,)  # not a Jacobian, and not even its diagonal:
    assert not close(note, np.diag(J))
    outer = (np.diag(e) * total - np.outer(e, e)) / total**2
    assert close(outer, J)


def test_001_the_product_with_p_times_one_minus_p_does_not_give_p_minus_y():
    o = RNG.normal(size=4)
    p, y = softmax(o[None])[0], np.eye(4)[2]
    note = -y / p * p * (1 - p)  # −yᵀ·(1/p)·p(1 − p)
    true = numeric_grad(lambda o_: -np.sum(y * np.log(softmax(o_[None])[0])), o)
    assert close(true, p - y)
    assert not close(note, p - y)


def test_001_bias_gradient_of_one_sample_is_p_minus_y_not_its_sum():
    model = MLP("3-4softmax", seed=2)
    x, y = RNG.normal(size=(1, 3)), np.eye(4)[[1]]
    p = model.predict(x)[0]
    _, grads = model.loss_and_gradients(x, y, get_loss("cross-entropy"))
    assert close(grads.b[0], p - y[0])
    assert grads.b[0].shape == (4,) and np.ndim(np.sum(p - y[0])) == 0


def test_001_weight_gradient_is_outer_p_minus_y_h():
    """o = W h + b: dL/dW = (p − y) hᵀ (K × H), where hᵀ·(p − y) is a scalar (or Wᵀ's shape)."""
    model = MLP("5-3softmax", seed=3)
    h, y = RNG.normal(size=(1, 5)), np.eye(3)[[0]]
    p = model.predict(h)[0]
    _, grads = model.loss_and_gradients(h, y, get_loss("cross-entropy"))
    assert close(grads.W[0], np.outer(p - y[0], h[0]))
    assert np.outer(h[0], p - y[0]).shape != model.linears[0].W.shape


def test_001_relu_case_expression_selects_rows_of_dW():
    """dL/dw_n: the mask 𝟙[z_n > 0] multiplies whole rows (hidden units) of δ xᵀ."""
    model = MLP("3-6relu-4softmax", seed=4)
    x, y = RNG.normal(size=(1, 3)), np.eye(4)[[3]]
    _, caches = model.forward(x)
    z, p = caches[1][0][0], caches[3][0]
    W0 = model.linears[1].W
    _, grads = model.loss_and_gradients(x, y, get_loss("cross-entropy"))
    back = W0.T @ (p - y[0])
    assert close(grads.W[0], np.outer(back * (z > 0), x[0]))
    assert (z <= 0).any() and not close(grads.W[0], np.outer(back, x[0]))  # mask left out


# ---- notes 002 --------------------------------------------------------------------------------------


def test_002_1f_is_hadamard_division_not_kronecker_product():
    S, C = 3, 4
    X, T = RNG.uniform(0.1, 1.0, size=(S, C)), np.eye(C)[[0, 2, 3]]
    true = numeric_grad(lambda X_: -np.sum(T * np.log(X_)) / S, X)
    assert close(true, -T / X / S)  # −(1/S) T ⊘ X
    assert np.kron(T, X).shape == (S * S, C * C)  # T ⊗ X cannot even be the gradient


def test_002_2a_simplification_is_wrong_and_needs_rows_of_T_to_sum_to_one():
    S, C = 3, 4
    Z, T = RNG.normal(size=(S, C)), np.eye(C)[[0, 2, 3]]
    Y = softmax(Z)

    def cost(Z_):
        return -np.sum(T * np.log(softmax(Z_))) / S

    true = numeric_grad(cost, Z)
    ones = np.ones((C, C))
    note = ((T * Y) @ ones - T) / S  # α M with M = (T ⊙ Y)11ᵀ − T
    assert not close(true, note)
    assert close(true, ((T @ ones) * Y - T) / S)  # nnmath: ((T11ᵀ) ⊙ Y − T)/S
    assert close(true, (Y - T) / S)  # ... = (Y − T)/S because each row of T sums to one


def test_002_1e_softmax_vjp_keeps_the_factor_y_ij():
    Z, G = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    Y, cache = Softmax().forward(Z)
    true = numeric_grad(lambda Z_: np.sum(G * softmax(Z_)), Z)
    assert close(Softmax().vjp(cache, G)[0], true)
    dropped = G - np.sum(G * Y, axis=1, keepdims=True) * Y  # 1e's middle line, Y_ij dropped
    assert not close(dropped, true)


# ---- notes 000 --------------------------------------------------------------------------------------


def test_000_cross_entropy_gradient_has_a_minus_sign_and_needs_sum_y_one():
    h = RNG.normal(size=4)
    z, y = softmax(h[None])[0], np.eye(4)[1]
    true = numeric_grad(lambda z_: -y @ np.log(z_), z)
    assert close(true, -np.diag(1 / z) @ y)
    assert not close(true, np.diag(1 / z) @ y)  # the note's diag(z_K)^{-1} y
    Jt = np.diag(z) - np.outer(z, z)
    assert close(Jt @ (np.diag(1 / z) @ y), y - z)  # with the note's sign: y − z, not z − y
    assert close(Jt @ true, z - y)


def test_000_scalar_case_z_minus_y_and_over_S_for_a_batch():
    derivation = derive("4-8relu-1sigmoid", get_loss("binary-cross-entropy"), "row")
    assert derivation.defining("dl_dZ2").code == "Yhat - Y"
    assert derivation.defining("dZ2").code == "(Yhat - Y) / S"
    h, y = 0.7, 1.0
    true = numeric_grad(
        lambda h_: -(y * np.log(sigmoid(h_)) + (1 - y) * np.log(1 - sigmoid(h_))), np.array(h)
    )
    assert np.isclose(true, sigmoid(h) - y)


# ---- notes 003 (the 3-10-6-3 request) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def request_network():
    derivation = derive("3-10relu-6relu-3softmax", get_loss("cross-entropy"), "row")
    return derivation, make_problem(derivation, samples=4, seed=0)


def test_003_Z2_uses_W2_not_W1(request_network):
    derivation, problem = request_network
    verdict = check_formula(derivation, problem, "Z2 = A1 @ W1 + b2")
    assert verdict.mistake == "wrong layer index" and "W2 in place of W1" in verdict.explanation
    assert check_formula(derivation, problem, "Z2 = A1 @ W2 + b2").correct


def test_003_Z2_is_n_by_6(request_network):
    derivation, _ = request_network
    assert derivation.symbols["Z2"].shape == ("S", 6)


def test_003_dW3_and_dA2_multiply_by_dL_dZ3(request_network):
    derivation, problem = request_network
    assert check_formula(derivation, problem, "dW3 = A2.T @ dZ3").correct
    assert check_formula(derivation, problem, "dA2 = dZ3 @ W3.T").correct
    assert check_formula(derivation, problem, "db3 = sum(dZ3, axis=0)").correct


def test_003_batch_gradient_has_one_over_n(request_network):
    derivation, problem = request_network
    assert check_formula(derivation, problem, "dZ3 = Yhat - Y").mistake == "missing 1/S"
    assert check_formula(derivation, problem, "dZ3 = (Yhat - Y) / S").correct


def test_003_relu_mask_is_entrywise(request_network):
    derivation, problem = request_network
    assert check_formula(derivation, problem, "dZ2 = dA2 * (Z2 > 0)").correct
    assert (
        check_formula(derivation, problem, "dZ2 = dA2").mistake == "missing activation derivative"
    )


def test_003_quadratic_form_middle_line_counts_the_diagonal_twice():
    """∂(xᵀAx)/∂x_k written as ∂/∂x_k Σ_j a_kj x_k x_j + ∂/∂x_k Σ_i a_ik x_i x_k: both sums hold
    the term a_kk x_k², so the line is ((A + Aᵀ)x)_k + 2 a_kk x_k; the note's next line drops
    the extra term by differentiating x_k x_k as if it were x_k (two mistakes that cancel)."""
    n = 4
    A, x = RNG.normal(size=(n, n)), RNG.normal(size=n)
    true = numeric_grad(lambda x_: x_ @ A @ x_, x)
    assert close(true, (A + A.T) @ x)  # the note's result, and nnmath's
    for k in range(n):

        def note_middle_line(x_, k=k):
            return sum(A[k, j] * x_[k] * x_[j] for j in range(n)) + sum(
                A[i, k] * x_[i] * x_[k] for i in range(n)
            )

        def with_the_diagonal_once(x_, k=k):
            off = [j for j in range(n) if j != k]
            return (
                A[k, k] * x_[k] ** 2
                + sum(A[k, j] * x_[k] * x_[j] for j in off)
                + sum(A[i, k] * x_[i] * x_[k] for i in off)
            )

        note = numeric_grad(note_middle_line, x)[k]
        assert np.isclose(note, true[k] + 2 * A[k, k] * x[k])  # the diagonal term twice
        assert not np.isclose(note, true[k])
        assert np.isclose(numeric_grad(with_the_diagonal_once, x)[k], true[k])


def test_003_softmax_derivative_numerator_is_exp_z_i():
    """∂ŷ_i/∂z_r = ∂/∂z_r (exp(z_r) / Σ_j exp(z_j)): the numerator of ŷ_i is exp(z_i). As
    written, the derivative is ŷ_r(1 − ŷ_r) for every i, which holds only on the diagonal."""
    z = RNG.normal(size=4)
    J = numerical_jacobian(lambda z_: softmax(z_[None])[0], z)  # J[i, r] = ∂ŷ_i/∂z_r

    def note(i, r):
        return numeric_grad(lambda z_: np.exp(z_[r]) / np.exp(z_).sum(), z)[r]

    def corrected(i, r):
        return numeric_grad(lambda z_: np.exp(z_[i]) / np.exp(z_).sum(), z)[r]

    written = np.array([[note(i, r) for r in range(4)] for i in range(4)])
    fixed = np.array([[corrected(i, r) for r in range(4)] for i in range(4)])
    assert close(fixed, J)
    assert not close(written, J)
    assert close(np.diag(written), np.diag(J))  # right on the diagonal, i = r, only


def test_003_leaky_relu_derivative_assumes_L_below_one():
    """d/dx max(Lx, x) = L for x < 0 and 1 for x > 0 holds only for L < 1; for L > 1 the two
    cases swap. nnmath's leaky ReLU states the assumption and refuses a slope outside [0, 1)."""
    from nnmath.activations import leaky_relu
    from nnmath.errors import SpecError

    def derivative(L, x):
        return numeric_grad(lambda x_: np.maximum(L * x_, x_)[0], np.array([x]))[0]

    for L in (0.0, 0.01, 0.5, -0.5):
        assert np.isclose(derivative(L, -0.7), L) and np.isclose(derivative(L, 0.7), 1.0)
    for L in (2.0, 3.0):
        assert np.isclose(derivative(L, -0.7), 1.0) and np.isclose(derivative(L, 0.7), L)
    for L in (0.01, 0.5):
        h = leaky_relu(L)
        z = np.array([-0.7, 0.7])
        assert np.allclose(h.df(z, h.f(z)), [derivative(L, -0.7), derivative(L, 0.7)])
    with pytest.raises(SpecError, match=r"\[0, 1\)"):
        leaky_relu(2.0)


# ---- notes 004 §5.1.2 and §5.2.2, in the note's own column convention ------------------------------


def two_layer_column_network(n0=3, n1=4, n2=2):
    """z¹ = W¹a⁰ + b¹, a¹ = σ(z¹), z² = W²a¹ + b², a² = σ(z²): columns, W of shape n_l × n_{l−1}."""
    W1, b1 = RNG.normal(size=(n1, n0)), RNG.normal(size=(n1, 1))
    W2, b2 = RNG.normal(size=(n2, n1)), RNG.normal(size=(n2, 1))
    a0, t = RNG.normal(size=(n0, 1)), RNG.uniform(size=(n2, 1))

    def cost(W1_):
        a1 = sigmoid(W1_ @ a0 + b1)
        return 0.5 * np.sum((t - sigmoid(W2 @ a1 + b2)) ** 2)

    a1 = sigmoid(W1 @ a0 + b1)
    a2 = sigmoid(W2 @ a1 + b2)
    delta2 = (a2 - t) * a2 * (1 - a2)  # dc/dz² with the sign of 004 §2.1 corrected
    return {"W1": W1, "W2": W2, "a0": a0, "a1": a1, "delta2": delta2, "cost": cost}


def test_004_5_1_2_hidden_layer_gradient_needs_transposes_in_the_column_convention():
    """dc/dW^{L−1} = ((dc/dz^L · W^L) ∘ a^{L−1}(1 − a^{L−1})) · a^{L−2}: with the note's own
    columns (dc/dz^L is n_L × 1, W^L is n_L × n_{L−1}) neither product conforms; the gradient is
    ((W^{L})ᵀ dc/dz^L ∘ a^{L−1}(1 − a^{L−1})) (a^{L−2})ᵀ, of W^{L−1}'s shape."""
    net = two_layer_column_network()
    W2, a0, a1, delta2 = net["W2"], net["a0"], net["a1"], net["delta2"]
    true = numeric_grad(net["cost"], net["W1"])
    with pytest.raises(ValueError, match="mismatch"):
        (delta2 @ W2) * (a1 * (1 - a1)) @ a0  # the note's line, as written
    with pytest.raises(ValueError, match="mismatch"):
        ((W2.T @ delta2) * (a1 * (1 - a1))) @ a0  # only the first transpose mended
    correct = ((W2.T @ delta2) * (a1 * (1 - a1))) @ a0.T
    assert correct.shape == net["W1"].shape and close(correct, true)


def test_004_5_2_2_matrix_form_transposes_until_the_last_line():
    """§5.2.2 writes dc/dW^L = ((dc/da^L)ᵀ · da^L/dz^L) · dz^L/dW^L with dz^L/dW^L = a^{L−1}, and
    dc/dz^L = dc/dz^L · a^{L−1}: a row times a column of another length, then a column times a
    column. Only its last line, (a^L − t) · (a^{L−1})ᵀ / ln b, is the gradient (Σ t = 1)."""
    n, m = 3, 4
    W, a_prev = RNG.normal(size=(n, m)), RNG.normal(size=(m, 1))
    t = np.eye(n)[:, [1]]  # one-hot: the targets sum to one

    def cost(W_):
        return -np.sum(t * np.log(softmax((W_ @ a_prev).T)[0][:, None]))

    a = softmax((W @ a_prev).T)[0][:, None]
    dc_da = -t / a
    J = np.diag(a[:, 0]) - a @ a.T
    true = numeric_grad(cost, W)
    with pytest.raises(ValueError, match="mismatch"):
        (dc_da.T @ J) @ a_prev  # the first line: (1 × n)(m × 1)
    assert (dc_da.T @ J).shape == (1, n)  # a row, where the note prints a column
    dc_dz = J.T @ dc_da  # the column the note means
    with pytest.raises(ValueError, match="mismatch"):
        dc_dz @ a_prev  # dc/dz^L · dz^L/dW^L: (n × 1)(m × 1)
    assert close(dc_dz, a - t)
    assert close((a - t) @ a_prev.T, true)  # the last line
