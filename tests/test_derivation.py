"""Derivations: the documents for the networks of issue 4, every equation verified, and the
formula records they are assembled from (parametrised over the registries, so that a new
activation or loss is enrolled the moment it is added)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest

from nnmath.activations import ACTIVATIONS, get_activation
from nnmath.cli import main
from nnmath.derivation import (
    derive,
    evaluate,
    example_problem,
    make_problem,
    to_json,
    to_latex,
    to_markdown,
    verify,
    worked_example,
)
from nnmath.derivation.verify import central_differences, objective
from nnmath.layers import LINEAR_TEX, SOFTMAX_TEX, Elementwise, Linear, Softmax
from nnmath.losses import LOSSES, fuse, get_loss

# The three networks of the issue, and a few more that exercise other records.
NETWORKS = [
    ("3-10relu-6relu-3softmax", "cross-entropy", None),
    ("2-2sigmoid-2sigmoid", "squared-error", None),
    ("4-8relu-1sigmoid", "binary-cross-entropy", None),
    ("3-10relu-6relu-3softmax", "cross-entropy", 2.0),
    ("3-4tanh-3softmax", "squared-error", None),
    ("2-3elu-3gelu-2", "mse", None),
    ("3-4leaky_relu(0.1)-2softplus-3softmax", "binary-cross-entropy", None),  # not fused
]
NOTATIONS = ("row", "column")


def derivation_for(spec: str, loss: str, base: float | None, notation: str):
    return derive(spec, get_loss(loss, base=base), notation)


# ---- every equation checked -------------------------------------------------------------------


@pytest.mark.parametrize("notation", NOTATIONS)
@pytest.mark.parametrize(("spec", "loss", "base"), NETWORKS)
def test_every_equation_passes_its_independent_check(spec, loss, base, notation):
    derivation = derivation_for(spec, loss, base, notation)
    assert verify(derivation, make_problem(derivation, samples=4, seed=3))
    results = [eq.result for eq in derivation.equations()]
    assert results and all(r is not None and r.passed for r in results)
    gradients = [eq for eq in derivation.equations() if eq.kind == "gradient"]
    assert all("central differences" in eq.result.method for eq in gradients)
    assert max(eq.result.error for eq in gradients) < 1e-7


def test_the_3_10_6_3_document_has_every_gradient_of_the_request():
    derivation = derivation_for("3-10relu-6relu-3softmax", "cross-entropy", None, "row")
    names = {eq.name for eq in derivation.equations()}
    for layer in (1, 2, 3):
        assert {f"Z{layer}", f"dZ{layer}", f"dW{layer}", f"db{layer}"} <= names
    assert {"A1", "A2", "dA1", "dA2", "dX", "Yhat", "C", "J3", "dl_dYhat", "dl_dZ3"} <= names
    # the output layer: loss gradient, Jacobian, product, general form, assumption, (Ŷ − Y)/S
    assert derivation.defining("dl_dYhat").code == "-Y / Yhat"
    assert derivation.defining("J3").code == "diag(Yhat) - outer(Yhat, Yhat)"
    assert derivation.defining("dZ3").code == "(Yhat - Y) / S"
    assert derivation.defining("dZ3").tex == r"\frac{1}{S}\, (\hat{Y} - Y)"
    assert derivation.defining("dW3").tex == r"A_{2}^\top dZ_{3}"
    assert derivation.defining("dZ2").code == "dA2 * (Z2 > 0)"
    identities = [eq for eq in derivation.equations() if eq.kind == "identity"]
    assert [eq.lhs_code for eq in identities][-1] == "Y @ ones(n3, 1)"  # the assumption Y1 = 1


def test_column_notation_uses_the_engine_w_and_samples_as_columns():
    derivation = derivation_for("3-10relu-6relu-3softmax", "cross-entropy", None, "column")
    assert derivation.defining("Z1").code == "W1 @ X + b1 @ ones(1, S)"
    assert derivation.defining("dW2").code == "dZ2 @ A1.T"
    assert derivation.defining("dA1").code == "W2.T @ dZ2"
    assert derivation.symbols["W1"].shape == (10, 3)
    assert derivation.symbols["Z2"].shape == (6, "S")
    problem = make_problem(derivation, samples=3, seed=1)
    from nnmath.derivation.verify import environment

    env = environment(derivation, problem)
    np.testing.assert_array_equal(env["W1"], problem.model.linears[0].W)
    assert env["X"].shape == (3, 3) and env["Yhat"].shape == (3, 3)


def test_log_base_carries_its_factor_through_the_simplification():
    derivation = derivation_for("3-10relu-6relu-3softmax", "cross-entropy", 2.0, "row")
    final = derivation.defining("dZ3")
    assert final.code == "((Yhat - Y) / log(2.0)) / S"
    assert r"\frac{1}{\ln 2}" in final.tex


def test_unfused_output_keeps_the_general_chain():
    derivation = derivation_for("2-2sigmoid-2sigmoid", "squared-error", None, "row")
    assert not derivation.fused
    assert derivation.defining("dl_dZ2").code == "dl_dYhat * (Yhat * (1 - Yhat))"
    assert derivation.defining("dZ2").code == "dl_dZ2 / S"
    assert not any(eq.kind == "identity" for eq in derivation.equations())


def test_sigmoid_with_binary_cross_entropy_simplifies_to_yhat_minus_y_without_assumption():
    derivation = derivation_for("4-8relu-1sigmoid", "binary-cross-entropy", None, "row")
    assert derivation.fused
    assert derivation.defining("dl_dZ2").code == "Yhat - Y"
    assert derivation.defining("dZ2").code == "(Yhat - Y) / S"


def test_verification_catches_a_wrong_equation():
    """A check that cannot fail is no check: break one printed formula, it and its chain fail."""
    derivation = derivation_for("3-10relu-6relu-3softmax", "cross-entropy", None, "row")
    derivation.defining("dZ2").code = "dA2"  # the ReLU mask forgotten
    assert not verify(derivation, make_problem(derivation, samples=4, seed=0))
    failed = [eq.name for eq in derivation.equations() if not eq.result.passed]
    assert failed[0] == "dZ2" and "dW1" in failed and "dW3" not in failed


def test_verification_catches_a_wrong_element_form():
    derivation = derivation_for("2-2sigmoid-2sigmoid", "squared-error", None, "row")
    equation = derivation.defining("dW1")
    equation.element_code = "einsum('sk,si->ik', X, dZ1)"  # indices of the result swapped
    verify(derivation, make_problem(derivation, samples=4, seed=0))
    assert not equation.result.passed


def test_an_unmet_assumption_is_reported():
    """Targets whose rows do not sum to one break Y1 = 1 and the simplified form, not the rest."""
    derivation = derivation_for("3-4relu-3softmax", "cross-entropy", None, "row")
    problem = make_problem(derivation, samples=4, seed=0)
    problem.T = problem.T * 0.5 + 0.1  # rows sum to 0.8
    verify(derivation, problem)
    failed = [eq for eq in derivation.equations() if not eq.result.passed]
    assert [eq.kind for eq in failed[:2]] == ["identity", "gradient"]
    general = [eq for eq in derivation.equations() if eq.name == "dl_dZ2"][2]
    assert general.code.startswith("((Y @ ones(n2, n2))") and general.result.passed


def test_central_differences_see_kinks():
    derivation = derivation_for("2-3relu-1", "squared-error", None, "row")
    problem = make_problem(derivation, samples=2, seed=0)
    f = objective(derivation, problem, "Z1")
    from nnmath.derivation.verify import environment

    Z = environment(derivation, problem)["Z1"]
    Z[0, 0] = 0.0  # a pre-activation exactly at ReLU's kink
    _, kinks = central_differences(f, Z, 1e-5)
    assert kinks[0, 0] and kinks.sum() == 1


# ---- the formula records the documents are assembled from -------------------------------------


ACTIVATION_CASES = [*ACTIVATIONS, ("leaky_relu", 0.2), ("elu", 0.5)]


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=str)
def test_activation_code_states_the_same_function_and_derivative(case):
    name, parameter = case if isinstance(case, tuple) else (case, None)
    h = get_activation(name, parameter)
    assert h.code and h.code_derivative, f"activation {name} needs code and code_derivative"
    Z = np.random.default_rng(0).normal(size=(4, 5)) * 2
    Y = h.f(Z)
    env = {"Z": Z, "A": Y}
    np.testing.assert_allclose(evaluate(h.code.replace("<z>", "Z"), env), Y, rtol=1e-12)
    derivative = h.code_derivative.replace("<z>", "Z").replace("<y>", "A")
    np.testing.assert_allclose(evaluate(derivative, env), h.df(Z, Y), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("notation", NOTATIONS)
def test_linear_and_softmax_rules_match_the_engine(notation, rng):
    from nnmath.derivation.notation import get_notation

    n = get_notation(notation)
    layer = Linear(rng.normal(size=(3, 4)), rng.normal(size=3))
    X = rng.normal(size=(5, 4))
    dY = rng.normal(size=(5, 3))
    Y, cache = layer.forward(X)
    dX, grads = layer.vjp(cache, dY)
    env = {
        "X": n.from_engine("batch", X),
        "W": n.from_engine("W", layer.W),
        "b": n.from_engine("b", layer.b),
        "dY": n.from_engine("batch", dY),
        "S": 5,
    }
    expected = {
        "forward": n.from_engine("batch", Y),
        "dW": n.from_engine("W", grads["W"]),
        "db": n.from_engine("b", grads["b"]),
        "dX": n.from_engine("batch", dX),
    }
    for role, rule in LINEAR_TEX.notations[notation].items():
        for code in filter(None, (rule.code, rule.element_code)):
            code = code.replace("<X>", "X").replace("<W>", "W").replace("<b>", "b")
            np.testing.assert_allclose(evaluate(code.replace("<dY>", "dY"), env), expected[role])
    softmax = Softmax()
    Z = rng.normal(size=(5, 3))
    P, cache = softmax.forward(Z)
    dZ = softmax.vjp(cache, dY)[0]
    env = {"X": n.from_engine("batch", Z), "Y": n.from_engine("batch", P), "dY": env["dY"], "n": 3}
    rules = SOFTMAX_TEX.notations[notation]
    rows = "Y" if n.samples_are_rows else "Y.T"
    for role, value in (("forward", P), ("dX", dZ), ("jacobian", None)):
        rule = rules[role]
        for code in filter(None, (rule.code, rule.element_code)):
            code = code.replace("<X>", "X").replace("<dY>", "dY").replace("<Y>", "Y")
            code = code.replace("<y>", rows).replace("<n>", "n")
            result = evaluate(code, env)
            reference = softmax.jacobian(cache) if value is None else n.from_engine("batch", value)
            np.testing.assert_allclose(result, reference, atol=1e-15)


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_rules_match_the_loss(name, rng):
    loss = get_loss(name)
    A = rng.uniform(0.05, 0.95, size=(4, 3))
    T = np.eye(3)[[0, 2, 1, 1]]
    env = {"A": A, "T": T, "n": 3}
    for notation in NOTATIONS:
        rules = loss.tex.notations[notation]
        value = evaluate(
            rules["value"].code.replace("<A>", "A").replace("<T>", "T").replace("<n>", "n"), env
        )
        np.testing.assert_allclose(value, np.sum(loss.value(A, T)))
        grad = evaluate(
            rules["grad"].code.replace("<A>", "A").replace("<T>", "T").replace("<n>", "n"), env
        )
        np.testing.assert_allclose(grad, loss.grad(A, T))


@pytest.mark.parametrize(
    ("output", "name"), [("softmax", "cross-entropy"), ("sigmoid", "binary-cross-entropy")]
)
def test_fused_rules_match_the_fused_gradient(output, name, rng):
    fused = fuse(output, get_loss(name))
    Z = rng.normal(size=(4, 3))
    T = np.eye(3)[[0, 2, 1, 1]] if output == "softmax" else (rng.uniform(size=(4, 3)) > 0.5) * 1.0
    A = (
        Elementwise(get_activation("sigmoid")).forward(Z)[0]
        if output == "sigmoid"
        else Softmax().forward(Z)[0]
    )
    env = {"A": A, "T": T, "n": 3, "S": 4}
    for role in ("general", "simplified"):
        rule = fused.tex.notations["row"].get(role)
        if rule is None:
            continue
        code = rule.code.replace("<A>", "A").replace("<T>", "T").replace("<n>", "n")
        np.testing.assert_allclose(evaluate(code, env), fused.grad(Z, T), atol=1e-14)


# ---- documents -----------------------------------------------------------------------------------


def verified(spec="3-10relu-6relu-3softmax", loss="cross-entropy", base=None, notation="row"):
    derivation = derivation_for(spec, loss, base, notation)
    verify(derivation, make_problem(derivation, samples=4, seed=0))
    return derivation


def test_markdown_marks_every_equation_and_uses_github_math():
    derivation = verified()
    text = to_markdown(
        derivation, "nnmath derive 3-10relu-6relu-3softmax --loss cross-entropy --verify"
    )
    count = sum(1 for _ in derivation.equations())
    assert text.count("✓ checked against") == count
    assert f"All {count} equations checked" in text
    assert "$$dZ_{3} = \\frac{1}{S}\\, (\\hat{Y} - Y)$$" in text
    assert "| $W_{1}$ | `W1` | weights of layer 1 | $3 \\times 10$ |" in text
    assert "\\underbrace{A_{2}^\\top}" not in text  # transposes are braced whole: {A_{2}}^\top
    assert "\\underbrace{{A_{2}}^\\top}_{6 \\times S}\\,\\underbrace{dZ_{3}}_{S \\times 3}" in text
    for macro in ("\\begin{align", "\\newcommand", "\\def", "\\tag"):
        assert macro not in text


def test_json_lists_each_equation_with_its_check():
    document = json.loads(to_json(verified("4-8relu-1sigmoid", "binary-cross-entropy")))
    assert document["passed"] is True
    assert {e["name"] for e in document["equations"]} >= {"dZ2", "dW1", "db1", "dX"}
    assert all(e["check"]["passed"] for e in document["equations"])


@pytest.mark.skipif(
    shutil.which("pdflatex") is None, reason="pdflatex not installed (texlive-latex-base)"
)
@pytest.mark.parametrize(
    ("spec", "loss", "notation"),
    [
        ("3-10relu-6relu-3softmax", "cross-entropy", "row"),
        ("2-2sigmoid-2sigmoid", "squared-error", "column"),
    ],
)
def test_latex_document_compiles_with_pdflatex(tmp_path, spec, loss, notation):
    text = to_latex(verified(spec, loss, None, notation), f"nnmath derive {spec} --loss {loss}")
    (tmp_path / "d.tex").write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "d.pdf").stat().st_size > 10_000
    assert "Undefined control sequence" not in result.stdout


# ---- the worked example --------------------------------------------------------------------------


def test_worked_example_matches_the_engine_and_descends():
    derivation = derivation_for("2-2sigmoid-2sigmoid", "squared-error", None, "row")
    problem = example_problem(derivation, samples=2, seed=0)
    example = worked_example(derivation, problem, learning_rate=0.5)
    assert example.backward_difference < 1e-15
    assert example.cost_after < example.cost_before
    np.testing.assert_array_equal(problem.X, np.round(problem.X, 1))  # pencil-sized numbers
    # W1 ← W1 − η dW1, by hand from the engine's gradient (W of the row notation = engine Wᵀ)
    _, grads = problem.model.loss_and_gradients(problem.X, problem.T, derivation.loss)
    np.testing.assert_allclose(
        example.updated["W1"], (problem.model.linears[0].W - 0.5 * grads.W[0]).T
    )


def test_worked_example_hand_checked_numbers():
    """A 1-1sigmoid network worked out independently: z = w x + b, a = σ(z), ℓ = ½(y − a)²."""
    derivation = derivation_for("1-1sigmoid", "squared-error", None, "row")
    problem = example_problem(derivation, samples=1, seed=0)
    w, b = problem.model.linears[0].W[0, 0], problem.model.linears[0].b[0]
    x, y = problem.X[0, 0], problem.T[0, 0]
    a = 1 / (1 + math.exp(-(w * x + b)))
    example = worked_example(derivation, problem, learning_rate=0.1)
    values = {eq.name: value for eq, value in example.steps}
    assert values["Yhat"].item() == pytest.approx(a, rel=1e-14)
    assert values["C"].item() == pytest.approx(0.5 * (y - a) ** 2, rel=1e-14)
    assert values["dW1"].item() == pytest.approx((a - y) * a * (1 - a) * x, rel=1e-12)
    assert values["db1"].item() == pytest.approx((a - y) * a * (1 - a), rel=1e-12)


# ---- the command -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "loss"),
    [
        ("3-10relu-6relu-3softmax", "cross-entropy"),
        ("2-2sigmoid-2sigmoid", "squared-error"),
        ("4-8relu-1sigmoid", "binary-cross-entropy"),
    ],
)
def test_derive_verify_command(capsys, spec, loss):
    assert main(["derive", spec, "--loss", loss, "--verify"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# Backpropagation for {spec} with {loss}")
    assert "equations checked" in out and "✗" not in out


def test_derive_writes_files_atomically(tmp_path, capsys):
    target = tmp_path / "d.tex"
    target.write_text("old", encoding="utf-8")
    code = main(
        [
            "derive",
            "2-2sigmoid-2sigmoid",
            "--loss",
            "squared-error",
            "--format",
            "tex",
            "--verify",
            "-o",
            str(target),
        ]
    )
    assert code == 0
    assert target.read_text(encoding="utf-8").startswith("\\documentclass")
    assert [p.name for p in tmp_path.iterdir()] == ["d.tex"]  # no temporary left behind
    assert "equations checked" in capsys.readouterr().err


def test_derive_example_json_is_exact(capsys):
    assert (
        main(["derive", "2-2sigmoid-2sigmoid", "--loss", "squared-error", "--example", "--json"])
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["samples"] == 2 and document["cost_after"] < document["cost_before"]
    assert document["largest_difference_from_backward_pass"] < 1e-15


def test_derive_with_a_model_file(tmp_path, capsys):
    modelfile = pytest.importorskip("nnmath.modelfile")
    from nnmath.network import MLP

    network = MLP("3-4tanh-2softmax", seed=5)
    path = tmp_path / "m.nnm"
    modelfile.save_model(modelfile.TrainedModel(network, get_loss("cross-entropy")), path)
    assert main(["derive", "--model", str(path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "3-4tanh-2softmax with cross-entropy" in out and "the model's weights" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["derive"],
        ["derive", "3-10relu-6relu-3softmax", "--loss", "squared-error", "--base", "2"],
        ["derive", "3-x-2"],
        ["derive", "2-2sigmoid-2sigmoid", "--example", "--learning-rate", "-1"],
    ],
)
def test_derive_bad_input_exits_2_with_a_message(argv, capsys):
    assert main(argv) == 2
    assert "error:" in capsys.readouterr().err


def test_the_generated_3_10_6_3_page_is_current():
    """docs/backprop-3-10-6-3.md is generated, not typed: regenerate it and compare (the checks'
    error values, which depend on the last bits of floating point, are masked)."""
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "backprop-3-10-6-3.md"
    command = "nnmath derive 3-10relu-6relu-3softmax --loss cross-entropy --verify"
    text = to_markdown(verified(), command)

    def masked(document: str) -> str:
        return re.sub(r"error \d\.\de[-+]\d+", "error …", document)

    assert masked(page.read_text(encoding="utf-8")) == masked(text), (
        f"regenerate the page: {command} -o docs/backprop-3-10-6-3.md"
    )
