"""Derivations of batch norm, dropout, penalties and weighted costs: every step derived and checked.

Batch norm's backward pass is derived through its graph (∂C/∂Ẑ, ∂C/∂σ², ∂C/∂μ, then ∂C/∂Z), stated
as one product with the Jacobian over the whole batch, and collected into the compact form; each
equation is checked against central differences of the cost (the engine's forward pass, batch
statistics, the same dropout masks) or the numerical Jacobian over the whole batch. A broken step
must fail its check, so the checks are tested to fail too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnmath.cli import main
from nnmath.derivation import check_formula, derive, example_problem, make_problem, worked_example
from nnmath.derivation.example import example_json, example_markdown
from nnmath.penalties import L1, L2

SPEC = "3-4relu+bn+dropout(0.3)-3softmax"


def verified(spec=SPEC, loss="cross-entropy", notation="row", **options):
    derivation = derive(spec, loss, notation, **options)
    return derivation.verify(samples=4, seed=1)


@pytest.mark.parametrize("notation", ["row", "column"])
def test_every_step_of_batch_norm_and_dropout_is_derived_and_checked(notation):
    d = verified(notation=notation)
    assert d.passed
    names = [eq.name for eq in d.equations()]
    for name in ("mu1", "var1", "Zhat1", "U1", "H1", "A1", "dH1", "dU1", "dgamma1", "dbeta1",
                 "dZhat1", "dvar1", "dmu1", "Jbn1", "dZ1"):  # fmt: skip
        assert name in names, name
    assert names.count("dZ1") == 3  # through the graph, by the Jacobian, compact
    methods = {eq.name: eq.result.method for eq in d.equations() if eq.name}
    assert methods["dvar1"] == methods["dmu1"] == "central differences of C"
    assert methods["Jbn1"] == "the numerical Jacobian of batch norm over the whole batch"
    assert methods["mu1"] == "the engine's forward pass"
    J = d["Jbn1"]
    assert "whole batch" in J.note and r"\delta_{ij}" in J.element and r"\delta_{st}" in J.element


def test_the_batch_norm_jacobian_couples_the_samples_and_its_vjp_is_the_gradient():
    d = derive(SPEC, "cross-entropy")
    values = d.evaluate(samples=3, seed=2)
    J = values["Jbn1"]
    assert J.shape == (3, 4, 3, 4)
    assert np.abs(J[0, :, 1, :]).max() > 1e-3  # sample 1's input moves sample 0's output
    off_unit = J[:, 0, :, 1]
    assert np.abs(off_unit).max() == 0.0  # but never another unit's
    compact = [eq for eq in d.equations() if eq.name == "dZ1"]
    by_graph, by_jacobian, final = (eq.evaluate(values) for eq in compact)
    np.testing.assert_allclose(by_graph, final, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(by_jacobian, final, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("dvar1", "0.5 * (ones(1, S) @ (dZhat1 * (Z1 - ones(S, 1) @ mu1))) * (var1 + eps) ** -1.5"),
        ("dmu1", "-(ones(1, S) @ dZhat1) * sqrt(var1 + eps)"),
        ("dZ1", "dZhat1 / (ones(S, 1) @ sqrt(var1 + eps))"),  # the coupling left out
        ("dgamma1", "ones(1, S) @ (dU1 * Z1)"),
        ("dH1", "dA1"),  # the mask left out
    ],
)
def test_a_wrong_step_fails_its_check(name, wrong):
    d = derive(SPEC, "cross-entropy")
    equation = [eq for eq in d.equations() if eq.name == name][0]
    equation.code = wrong
    d.verify(samples=4, seed=1)
    assert not d.passed
    assert not equation.result.passed


def test_a_wrong_jacobian_fails_against_the_numerical_one():
    d = derive(SPEC, "cross-entropy")
    d["Jbn1"].code = "einsum('ki,ij,st->sitj', gamma1 / sqrt(var1 + eps), eye(n1), eye(S))"
    d.verify(samples=4, seed=1)
    assert not d["Jbn1"].result.passed  # the per-sample (evaluation-mode) Jacobian is not it


@pytest.mark.parametrize("notation", ["row", "column"])
@pytest.mark.parametrize(
    ("spec", "loss"),
    [("2-3tanh+bn-2sigmoid+bn", "binary-cross-entropy"), ("2-3sigmoid+dropout(0.5)-1", "mse")],
)
@pytest.mark.parametrize("penalty", [None, L2(0.1), L1(0.05, per_sample=True)])
@pytest.mark.parametrize("weighted", [False, True])
def test_penalties_and_weights_in_the_cost_and_every_dw(notation, spec, loss, penalty, weighted):
    d = verified(spec, loss, notation, penalty=penalty, weighted=weighted)
    assert d.passed, [(eq.name, eq.result.error) for eq in d.equations() if not eq.result.passed]
    if penalty is not None:
        for layer in (1, 2):
            assert "alpha" in d[f"dW{layer}"].code and r"\alpha" in d[f"dW{layer}"].tex
        assert "alpha" in d["C"].code
        assert "alpha" not in d["db1"].code  # biases are not penalised
    if weighted:
        assert "sum(w)" in d["C"].code and "w_s" in d["C"].tex
        assert "/ sum(w)" in d[f"d{d.pre(2)}"].code and "/ S" not in d["dYhat"].code


def test_the_weighted_and_penalised_cost_equals_the_engines():
    d = derive("3-4relu-2softmax", "cross-entropy", penalty=L2(0.3, per_sample=True), weighted=True)
    problem = make_problem(d, samples=5, seed=4)
    values = d.evaluate(samples=5, seed=4)
    engine = problem.model.cost(
        problem.X, problem.T, d.loss, sample_weight=problem.sample_weight, penalty=d.penalty
    )
    assert float(values["C"]) == pytest.approx(engine, rel=1e-13)
    w = problem.sample_weight
    assert not np.allclose(w, w[0])  # the weights differ, so 1/Σw is not 1/S in disguise


def test_the_worked_example_prints_batch_norm_and_dropout_numbers():
    d = derive("3-3relu+bn+dropout(0.5)-2softmax", "cross-entropy")
    example = worked_example(d, example_problem(d, samples=3, seed=0), steps=3)
    assert example.backward_difference < 1e-12
    assert example.history[-1][2] < example.cost_before
    text = example_markdown(example)
    for symbol in (
        r"\mu_{1}",
        r"{\sigma^2}_{1}",
        r"\hat{Z}_{1}",
        r"D_{1} =",
        r"\gamma_{1} \leftarrow",
    ):
        assert symbol in text, symbol
    document = json.loads(example_json(example))
    assert set(document["parameters"]) == {"W1", "b1", "W2", "b2", "gamma1", "beta1"}
    assert np.isin(document["inputs"]["D1"], [0.0, 2.0]).all()  # kept units scaled by 1/(1 − p)


def test_check_names_a_flipped_sign_in_the_variance_step_and_needs_the_penalty():
    d = derive("3-4relu+bn-2softmax", "cross-entropy", penalty=L2(0.1))
    problem = make_problem(d, samples=4, seed=0)
    right = "-0.5 * (ones(1, S) @ (dZhat1 * (Z1 - ones(S, 1) @ mu1))) * (var1 + eps) ** -1.5"
    assert check_formula(d, problem, f"dvar1 = {right}").correct
    assert check_formula(d, problem, f"dvar1 = -({right})").mistake == "flipped sign"
    assert check_formula(d, problem, "dW2 = A1.T @ dZ2 + alpha * W2").correct
    assert check_formula(d, problem, "dW2 = A1.T @ dZ2").mistake == "penalty left out"
    assert check_formula(
        d, problem, "U1 = Zhat1 * (ones(S, 1) @ gamma1) + ones(S, 1) @ beta1"
    ).correct


def test_cli_derives_and_verifies_the_issues_network(capsys):
    code = main(["derive", "64-128relu+bn+dropout(0.3)-10softmax", "--loss", "cross-entropy",
                 "--verify"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "**All 40 equations checked" in out
    assert "FAILED" not in out


def test_cli_cost_options(capsys):
    assert main(["derive", "3-4relu-2softmax", "--l1", "0.1", "--per-sample", "--weighted",
                 "--verify", "--json"]) == 0  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert document["passed"]
    cost = [eq for eq in document["equations"] if eq["name"] == "C"][0]
    assert "sum(abs(W1))" in cost["code"] and "/ sum(w)" in cost["code"]
    assert main(["derive", "3-4relu-2softmax", "--per-sample"]) == 2
    assert "--per-sample scales a penalty" in capsys.readouterr().err
    assert main(["check", "3-4relu+bn-2softmax", "dbeta1 = ones(1, S) @ dU1", "--weighted"]) == 0
