"""``nnmath check``: the safe evaluator refuses code, and each common mistake is told apart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnmath.cli import main
from nnmath.derivation import check_formula, derive, evaluate, make_problem, parse
from nnmath.derivation.check import checkable, expanded
from nnmath.derivation.evaluate import (
    FormulaBudgetError,
    FormulaShapeError,
    FormulaSyntaxError,
    FormulaValueError,
    UnknownNameError,
    infer_shape,
)
from nnmath.losses import get_loss

SPEC = "3-10relu-6relu-3softmax"


def verdict(formula, spec=SPEC, loss="cross-entropy", base=None, notation="row", seed=0):
    derivation = derive(spec, get_loss(loss, base=base), notation)
    return check_formula(derivation, make_problem(derivation, samples=4, seed=seed), formula)


# ---- the evaluator runs no Python --------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "said"),
    [
        ("__import__('os')", "'__import__' is not allowed"),
        ("().__class__", "attribute .__class__"),
        ("().__class__.__bases__[0]", "indexing"),
        ("X.__class__", "attribute .__class__"),
        ("X.shape", "attribute .shape"),
        ("(lambda: 1)()", "calling"),
        ("lambda: 1", "a lambda"),
        ("[x for x in X]", "a comprehension"),
        ("sum(x for x in X)", "a generator expression"),
        ("X[0]", "indexing"),
        ("'a' + 'b'", "the constant 'a'"),
        ("open('f')", "'open' is not allowed"),
        ("eval('1')", "'eval' is not allowed"),
        ("np.exp(X)", "calling 'np.exp' is not allowed"),
        ("X.sum()", "calling 'X.sum' is not allowed"),
        ("X if X else X", "an if-expression"),
        ("X and X", "and/or"),
        ("X // 2", "operator //"),
        ("X == X", "comparison =="),
        ("__builtins__", "the name '__builtins__'"),
        ("sum(X, axis=Y)", "must be a constant"),
        ("exp(X, out=X)", "takes no keyword 'out'"),
        ("einsum('ij->ji; import os', X)", "must look like"),
        ("import os", "Import statement"),
        ("x = 1; y = 2", "one formula"),
        ("(a := 1)", "the := operator"),
    ],
)
def test_code_is_refused(formula, said):
    with pytest.raises(FormulaSyntaxError) as caught:
        parse(formula)
    assert said in str(caught.value)


def test_refused_by_the_command_with_exit_2(capsys):
    assert main(["check", SPEC, "dW3 = __import__('os').system('true')"]) == 2
    assert "not allowed" in capsys.readouterr().err


def test_evaluator_computes_what_numpy_computes(rng):
    A, B = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    env = {"A": A, "B": B, "S": 4, "n": 3}
    np.testing.assert_allclose(evaluate("A.T @ B / S", env), A.T @ B / 4)
    np.testing.assert_allclose(evaluate("A * (B > 0) - 2 ** -A", env), A * (B > 0) - 2.0**-A)
    np.testing.assert_allclose(
        evaluate("sum(A, axis=0, keepdims=True)", env), A.sum(0, keepdims=True)
    )
    np.testing.assert_allclose(evaluate("ones(1, S) @ A", env), A.sum(0, keepdims=True))
    np.testing.assert_allclose(evaluate("einsum('sk,si->ki', A, B)", env), A.T @ B)
    np.testing.assert_allclose(evaluate("diag(A)", env)[1], np.diag(A[1]))
    np.testing.assert_allclose(evaluate("0 < A < 1", env), ((A > 0) & (A < 1)) * 1.0)


def test_evaluator_refuses_bad_values_and_shapes_before_computing():
    env = {"A": np.zeros((2, 3)), "B": np.ones((4, 3)), "S": 2}
    with pytest.raises(FormulaShapeError, match="does not conform"):
        evaluate("A @ B", env)
    with pytest.raises(FormulaValueError, match="NaN or Inf"):
        evaluate("log(A)", env)
    with pytest.raises(FormulaBudgetError, match="at most"):
        evaluate("ones(100000, 100000)", env)
    with pytest.raises(FormulaValueError):
        evaluate("10 ** 10 ** 10", env)  # float arithmetic: inf, never a huge integer
    with pytest.raises(UnknownNameError, match="the names that exist are: A, B, S"):
        evaluate("A + C", env)


def test_symbolic_shapes_refuse_what_fits_only_by_coincidence():
    """With S = 6 the numbers of (S×6)(3×S) would multiply; with S symbolic they do not."""
    shapes = {"A2": ("S", 6), "dZ3": ("S", 3)}
    with pytest.raises(FormulaShapeError, match=r"\(S × 6\) @ \(S × 3\)"):
        infer_shape(parse("A2 @ dZ3").expression, shapes, {"S": "S"})
    assert infer_shape(parse("A2.T @ dZ3").expression, shapes, {"S": "S"}) == (6, 3)


# ---- one test per kind of mistake ----------------------------------------------------------------


@pytest.mark.parametrize(
    "formula",
    [
        "dW3 = A2.T @ dZ3",
        "dW3 = A2.T @ (Yhat - Y) / S",
        "dZ3 = (Yhat - Y) / S",
        "db3 = ones(1, S) @ dZ3",
        "db3 = sum(dZ3, axis=0)",
        "dZ2 = dZ3 @ W3.T * (Z2 > 0)",
        "dZ2 = dA2 * relu_grad(Z2)",
        "dX = dZ1 @ W1.T",
        "Z2 = A1 @ W2 + b2",
        "dl_dZ3 = vjp(dl_dYhat, J3)",
    ],
)
def test_correct_formulas_pass(formula):
    result = verdict(formula)
    assert result.correct, result.explanation
    assert result.relative_error < 1e-12


def test_flipped_sign():
    result = verdict("dZ3 = (Y - Yhat) / S")
    assert (result.correct, result.mistake) == (False, "flipped sign")
    assert result.correct_formula == "dZ3 = (Yhat - Y) / S"


def test_flipped_sign_of_the_squared_error_gradient_as_in_the_notes():
    """Notes 004 §2.1: dc/da = t − a. nnmath: a − t (a sigmoid network with squared error)."""
    result = verdict("dl_dYhat = Y - Yhat", "2-2sigmoid-2sigmoid", "squared-error")
    assert result.mistake == "flipped sign"


def test_missing_one_over_S():
    result = verdict("dW3 = A2.T @ (Yhat - Y)")
    assert result.mistake == "missing 1/S"
    assert "is 4 times the true value" in result.explanation and "(S = 4)" in result.explanation


def test_extra_one_over_S():
    assert verdict("dW3 = A2.T @ dZ3 / S").mistake == "doubled 1/S"


def test_transpose():
    result = verdict("dW3 = dZ3.T @ A2")
    assert result.mistake == "transposed"
    assert result.shape == "3 × 6" and result.expected_shape == "6 × 3"


def test_transpose_of_a_square_matrix():
    """Where W is square the shapes agree, and the values tell the transpose apart."""
    result = verdict("dW2 = dZ2.T @ A1", "2-2sigmoid-2sigmoid", "squared-error")
    assert result.mistake == "transposed"


def test_missing_relu_mask():
    result = verdict("dZ2 = dA2")
    assert result.mistake == "missing activation derivative"
    assert "ReLU mask of layer 2" in result.explanation


def test_missing_relu_mask_further_down():
    result = verdict("dW1 = X.T @ (dZ2 @ W2.T)")
    assert result.mistake == "missing activation derivative"
    assert "layer 1" in result.explanation


def test_missing_sigmoid_derivative():
    result = verdict("dZ2 = (Yhat - Y) / S", "2-2sigmoid-2sigmoid", "squared-error")
    assert result.mistake == "missing activation derivative"
    assert "sigmoid derivative of layer 2" in result.explanation
    assert "(Yhat - Y) * (Yhat * (1 - Yhat))" in result.correct_formula


def test_missing_softmax_jacobian():
    result = verdict("dZ3 = -Y / Yhat / S")
    assert "softmax Jacobian" in result.explanation


def test_wrong_log_base():
    result = verdict("dZ3 = (Yhat - Y) / S", base=2.0)
    assert result.mistake.startswith("wrong log base")
    assert "ln 2" in result.mistake


def test_wrong_log_base_the_other_way():
    assert verdict("dZ3 = (Yhat - Y) / (S * log(2))").mistake.startswith("wrong log base")


def test_wrong_shape():
    result = verdict("db3 = sum(dZ3)")
    assert result.mistake == "wrong shape"
    assert result.expected_shape == "1 × 3"


def test_wrong_shape_that_does_not_conform():
    result = verdict("dA2 = dZ3 @ W2")
    assert result.mistake == "wrong shape"
    assert "inner sizes" in result.explanation


def test_missing_transpose_in_the_row_notation_names_the_factor():
    result = verdict("dA2 = dZ3 @ W3")
    assert result.mistake == "missing transpose"
    assert "W3.T in place of W3" in result.explanation


def test_wrong_layer_index_as_in_the_notes():
    """Notes 003: Z_2 = A_1 W_1 + b_2, where W_2 belongs."""
    result = verdict("Z2 = A1 @ W1 + b2")
    assert result.mistake == "wrong layer index"
    assert "W2 in place of W1" in result.explanation


def test_a_mismatch_with_no_name():
    result = verdict("dW3 = A2.T @ (Yhat - 2 * Y) / S")
    assert (result.correct, result.mistake) == (False, "mismatch")


def test_column_notation():
    assert verdict("dW2 = dZ2 @ A1.T", notation="column").correct
    assert verdict("dW2 = A1 @ dZ2.T", notation="column").mistake == "transposed"


# ---- names and exit codes ----------------------------------------------------------------------


def test_unknown_names_are_listed_with_the_names_that_exist():
    with pytest.raises(UnknownNameError) as caught:
        verdict("dW3 = A2.T @ delta3")
    assert caught.value.unknown == ["delta3"]
    assert {"A2", "dZ3", "Yhat", "W3"} <= set(caught.value.known)
    assert "dW3" not in caught.value.known  # the target is not given away


def test_the_target_must_be_a_quantity_of_the_network():
    with pytest.raises(FormulaSyntaxError):
        verdict("A2.T @ dZ3")  # no left-hand side
    with pytest.raises(ValueError, match="one of"):
        verdict("dW7 = A2.T @ dZ3")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["check", SPEC, "dW3 = A2.T @ dZ3"], 0),
        (["check", SPEC, "dZ3 = (Y - Yhat) / S"], 1),
        (["check", SPEC, "dW3 = A2.T @ delta3"], 2),
        (["check", SPEC, "dW3 = A2.T @"], 2),
        (["check", "3-x", "dW3 = A2.T @ dZ3"], 2),
    ],
)
def test_exit_codes(argv, code, capsys):
    assert main(argv) == code
    captured = capsys.readouterr()
    if code == 2:
        assert "error:" in captured.err
    if code == 1:
        assert (
            "✗ flipped sign" in captured.out and "correct:   dZ3 = (Yhat - Y) / S" in captured.out
        )


def test_json_verdict(capsys):
    assert main(["check", SPEC, "dW3 = dZ3.T @ A2", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["mistake"] == "transposed"
    assert document["correct_formula"].startswith(
        "dW3 = A2.T @ dZ3, i.e. dW3 = A2.T @ ((Yhat - Y) / S)"
    )


# ---- every listed symbol is defined ---------------------------------------------------------------

GIVEN = ("S", "X", "Y")


@pytest.mark.parametrize(
    ("spec", "loss", "notation"),
    [
        (SPEC, "cross-entropy", "row"),
        (SPEC, "cross-entropy", "column"),
        ("2-2sigmoid-2sigmoid", "squared-error", "row"),
        ("4-5tanh-1sigmoid", "binary-cross-entropy", "column"),
        ("3-4leaky_relu-2identity", "mse", "row"),
    ],
)
def test_every_symbol_of_the_notation_table_has_an_equation(spec, loss, notation):
    derivation = derive(spec, get_loss(loss), notation)
    for code in derivation.symbols:
        if code in GIVEN or code[0] in "nWb" and code[1:].isdigit():
            continue  # the data, the sizes and the parameters are given, not derived
        assert derivation.defining(code) is not None, f"{code} is listed but never defined"
    problem = make_problem(derivation, samples=4, seed=0)
    for code in checkable(derivation):
        formula = expanded(derivation, code).split(", i.e. ")[-1]  # dl_… written out
        result = check_formula(derivation, problem, formula)
        assert result.correct and result.correct_formula, (code, result.explanation)


def test_dYhat_is_checked_against_its_own_equation():
    result = verdict("dYhat = -Y / Yhat")
    assert result.mistake == "missing 1/S"
    assert result.correct_formula.startswith("dYhat = dl_dYhat / S, i.e. dYhat = (-Y / Yhat) / S")


# ---- named diagnoses ------------------------------------------------------------------------------


def test_a_flipped_sign_is_explained_with_the_loss_at_hand():
    cross_entropy = verdict("dZ3 = (Y - Yhat) / S").explanation
    assert "cross-entropy" in cross_entropy and "∂ℓ/∂Ŷ = -Y / Yhat" in cross_entropy
    assert "∂ℓ/∂Z3 = (Yhat - Y)" in cross_entropy and "½" not in cross_entropy
    squared = verdict("dl_dYhat = Y - Yhat", "2-2sigmoid-2sigmoid", "squared-error").explanation
    assert "squared-error" in squared and "∂ℓ/∂Ŷ = Yhat - Y" in squared
    binary = verdict("dZ2 = (Y - Yhat) / S", "4-5tanh-2sigmoid", "binary-cross-entropy")
    assert binary.mistake == "flipped sign" and "binary-cross-entropy" in binary.explanation


@pytest.mark.parametrize(
    "formula", ["dZ3 = -Y * (1 - Yhat) / S", "dZ3 = dl_dYhat * Yhat * (1 - Yhat) / S"]
)
def test_softmax_jacobian_replaced_by_its_diagonal(formula):
    result = verdict(formula)
    assert result.mistake == "softmax Jacobian replaced by its diagonal"
    assert "diag(ŷ) − ŷŷᵀ" in result.explanation


def test_the_diagonal_deeper_down_and_with_a_factor():
    result = verdict("dW3 = A2.T @ (-Y * (1 - Yhat))")
    assert result.mistake == "softmax Jacobian replaced by its diagonal + missing 1/S"


@pytest.mark.parametrize(
    ("formula", "notation"),
    [
        ("dZ3 = ((Y * Yhat) @ ones(3, 3) - Y) / S", "row"),
        ("dZ3 = (sum(Y * Yhat, axis=1, keepdims=True) - Y) / S", "row"),
        ("dZ3 = (ones(3, 3) @ (Y * Yhat) - Y) / S", "column"),
    ],
)
def test_the_fused_gradient_with_yhat_inside_the_row_sum(formula, notation):
    """Notes 002 §2a: ((T ⊙ Y)11ᵀ − T)/S where ((T11ᵀ) ⊙ Y − T)/S belongs."""
    result = verdict(formula, notation=notation)
    assert result.mistake == "Ŷ inside the row sum"
    assert "((T11ᵀ) ⊙ Ŷ − T)/S" in result.explanation


@pytest.mark.parametrize(
    ("formula", "factor"),
    [
        ("dW2 = dZ2 @ A1", "A1.T in place of A1"),
        ("dA1 = W2 @ dZ2", "W2.T in place of W2"),
        ("dX = W1 @ dZ1", "W1.T in place of W1"),
    ],
)
def test_a_missing_transpose_in_the_column_notation_names_the_factor(formula, factor):
    result = verdict(formula, notation="column")
    assert result.mistake == "missing transpose"
    assert factor in result.explanation and "column notation" in result.explanation


def test_notes_004_hidden_layer_order_and_transposes_in_the_column_notation():
    """Notes 004 §5.1.2: dc/dz^L · W^L for the column dc/dz^L: the factor and the result."""
    result = verdict("dA1 = dZ2 @ W2", notation="column")
    assert result.mistake == "missing transpose + transposed"
    assert "dZ2.T in place of dZ2" in result.explanation


def test_an_extra_transpose_names_the_factor():
    result = verdict("dW3 = A2.T @ dZ3.T")
    assert result.mistake == "extra transpose"
    assert "dZ3 in place of dZ3.T" in result.explanation


@pytest.mark.parametrize(
    ("formula", "spec", "loss", "mistake", "said"),
    [
        ("dZ3 = (Yhat - Y) / S / 3", SPEC, "cross-entropy", "mean over the outputs", "3 outputs"),
        ("dW3 = A2.T @ dZ3 / S", SPEC, "cross-entropy", "doubled 1/S", "applied twice"),
        ("dW3 = A2.T @ (Yhat - Y)", SPEC, "cross-entropy", "missing 1/S", "(S = 4)"),
        ("dZ2 = 2 * (Yhat - Y) * Yhat * (1 - Yhat) / S", "2-3sigmoid-3sigmoid", "squared-error",
         "missing ½", "½ Σ (t − a)²"),
        ("dZ2 = (Yhat - Y) * Yhat * (1 - Yhat) / S / 2", "2-3sigmoid-3sigmoid", "squared-error",
         "extra ½", "already cancelled"),
        ("dl_dYhat = 2 * (Yhat - Y)", "2-3identity", "mse", "missing mean over the outputs",
         "mean over the 3 outputs"),
        ("dl_dYhat = (Yhat - Y) / 3", "2-3identity", "mse", "extra ½", "has no ½"),
        ("dZ3 = (Y - Yhat)", SPEC, "cross-entropy", "flipped sign + missing 1/S", "−4 times"),
        ("dZ2 = (Yhat - Y) * Yhat * (1 - Yhat) / S / 2", "2-2sigmoid-2sigmoid", "squared-error",
         "extra ½ or mean over the outputs", "two conventions"),
    ],
)  # fmt: skip
def test_constant_factors_explained_by_a_convention(formula, spec, loss, mistake, said):
    result = verdict(formula, spec, loss)
    assert result.mistake == mistake
    assert said in result.explanation


def test_an_unexplained_factor_is_reported_as_such():
    result = verdict("dZ3 = 1.7 * (Yhat - Y) / S")
    assert result.mistake == "off by a factor 1.7"
