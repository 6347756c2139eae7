"""The notebook: derivations, worked examples, gradient checks and networks display themselves, and
docs/examples/backprop.ipynb runs from top to bottom without an error (executed with nbclient)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnmath.derivation import Document, derive, to_markdown
from nnmath.errors import SpecError
from nnmath.gradcheck import check_gradients, random_problem
from nnmath.network import MLP

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "examples" / "backprop.ipynb"
SPEC = "3-10relu-6relu-3softmax"


def test_the_derivation_is_indexed_by_equation_and_evaluates():
    d = derive(SPEC)
    assert isinstance(d, Document) and d.loss.name == "cross-entropy"
    assert d["dW3"].code == "A2.T @ dZ3"
    values = d.evaluate(samples=5, seed=1)
    A2, dZ3 = values["A2"], values["dZ3"]
    np.testing.assert_array_equal(d["dW3"].evaluate(values), A2.T @ dZ3)
    assert values["dW3"].shape == (6, 3) and values["Yhat"].shape == (5, 3)
    with pytest.raises(SpecError, match="the names are: Z1, A1"):
        d["dW7"]


def test_evaluate_on_your_own_model_matches_the_engine():
    d = derive(SPEC, "cross-entropy", "column")
    network = MLP(SPEC, seed=3)
    X, labels = np.random.default_rng(3).normal(size=(4, 3)), np.array([0, 2, 1, 1])
    values = d.evaluate(network, X, labels)
    _, grads = network.loss_and_gradients(X, labels, d.loss)
    np.testing.assert_allclose(values["dW1"], grads.W[0], rtol=1e-12)  # column: the engine's W
    np.testing.assert_allclose(values["dX"], grads.X.T, rtol=1e-12, atol=1e-15)


def test_each_result_displays_itself_as_markdown_with_math():
    d = derive(SPEC)
    assert d._repr_markdown_() == to_markdown(d)
    assert "verified" not in repr(d) and "29 equations" in repr(d)
    assert repr(d.verify()).endswith("verified: True>")
    assert d["dW3"]._repr_markdown_().startswith("$$dW_{3} = A_{2}^\\top dZ_{3}$$")
    assert "✓ against central differences" in d["dW3"]._repr_markdown_()
    example = d.example(steps=2)
    assert example._repr_markdown_().startswith("# Worked example")
    assert "2 step(s)" in repr(example)
    verdict = d.check("dZ3 = (Y - Yhat) / S")
    assert verdict._repr_markdown_().startswith("**✗ flipped sign**")
    assert "$$dZ_{3} = " in verdict._repr_markdown_()
    network = MLP(SPEC)
    assert "| 1 | $10 \\times 3$ | $10$ | relu | 40 |" in network._repr_markdown_()
    X, T = random_problem(network, d.loss, 3, np.random.default_rng(0))
    report = check_gradients(network, X, T, d.loss)._repr_markdown_()
    assert "all gradients match" in report and report.count("| ✓ |") == 7


def test_the_notebook_runs_without_an_error():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=30, startup_timeout=30, kernel_name="python3", allow_errors=False
    )
    client.execute(cwd=str(NOTEBOOK.parent))
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    rich = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any(text.startswith("# Backpropagation for 3-10relu-6relu-3softmax") for text in rich)
    assert any(text.startswith("# Worked example") for text in rich)
    assert any(text.startswith("**Gradient check") for text in rich)
    assert any(text.startswith("**MLP 3-10relu-6relu-3softmax**") for text in rich)
    assert any(text.startswith("**✗ flipped sign**") for text in rich)
    assert any(text.startswith("**✗ missing transpose**") for text in rich)
