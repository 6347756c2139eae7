"""The worked example with a user's own numbers: a textbook example reproduced from the command line.

Matt Mazur's "A Step by Step Backpropagation Example" (2015): a 2-2-2 sigmoid network, one input
(0.05, 0.10), targets (0.01, 0.99), squared error ½Σ(t − o)², η = 0.5, the biases b1 = 0.35 and
b2 = 0.60 shared by each layer's units and held fixed. Its published numbers are first recomputed
here with a few lines of NumPy written for this test (no nnmath), then nnmath's command line is
held to both.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nnmath.cli import main
from nnmath.derivation import (
    derive,
    example_problem,
    read_rows,
    read_weights,
    weights_from_mapping,
    worked_example,
)
from nnmath.errors import NNMathError
from nnmath.losses import get_loss

# w1..w8 of the article: w1, w2 from i1, i2 into h1; w3, w4 into h2; w5, w6 from h1, h2 into o1; …
MAZUR_COLUMN = {"W1": [[0.15, 0.20], [0.25, 0.30]], "b1": 0.35,
                "W2": [[0.40, 0.45], [0.50, 0.55]], "b2": 0.60}  # fmt: skip
MAZUR_ROW = {"W1": [[0.15, 0.25], [0.20, 0.30]], "b1": [0.35, 0.35],
             "W2": [[0.40, 0.50], [0.45, 0.55]], "b2": [[0.60, 0.60]]}  # fmt: skip
SPEC = "2-2sigmoid-2sigmoid"


def mazur_by_hand(steps: int) -> dict[str, object]:
    """The article's network, written out with NumPy: forward, δ's, update; biases fixed."""
    x, t = np.array([0.05, 0.10]), np.array([0.01, 0.99])
    W1, W2 = np.array(MAZUR_COLUMN["W1"]), np.array(MAZUR_COLUMN["W2"])
    b1, b2 = 0.35, 0.60
    errors = []
    for step in range(steps):
        h = 1 / (1 + np.exp(-(W1 @ x + b1)))
        o = 1 / (1 + np.exp(-(W2 @ h + b2)))
        errors.append(0.5 * np.sum((t - o) ** 2))
        delta_o = (o - t) * o * (1 - o)
        delta_h = (W2.T @ delta_o) * h * (1 - h)
        W1, W2 = W1 - 0.5 * np.outer(delta_h, x), W2 - 0.5 * np.outer(delta_o, h)
        if step == 0:
            first = (W1.copy(), W2.copy())
    h = 1 / (1 + np.exp(-(W1 @ x + b1)))
    o = 1 / (1 + np.exp(-(W2 @ h + b2)))
    return {"errors": errors, "after": 0.5 * np.sum((t - o) ** 2), "first": first, "W": (W1, W2)}


@pytest.fixture(scope="module")
def by_hand():
    return mazur_by_hand(10_000)


def test_the_published_numbers_hold_by_hand(by_hand):
    """E_total = 0.298371109 before the first step; w5⁺ = 0.35891648 and w1⁺ = 0.149780716 after
    it; 'after repeating this process 10,000 times … the error plummets to 0.0000351085': that is
    the error of the 10,000th forward pass, before its update (after it, 0.0000351019)."""
    W1, W2 = by_hand["first"]
    assert round(by_hand["errors"][0], 9) == 0.298371109
    assert round(W2[0, 0], 8) == 0.35891648
    assert round(W1[0, 0], 9) == 0.149780716
    assert f"{by_hand['errors'][-1]:.6g}" == "3.51085e-05"
    assert f"{by_hand['after']:.6g}" == "3.51019e-05"


def mazur_files(tmp_path):
    column, row = tmp_path / "mazur.json", tmp_path / "mazur_row.json"
    column.write_text(json.dumps(MAZUR_COLUMN))
    row.write_text(json.dumps(MAZUR_ROW))
    return column, row


def run_json(argv, capsys):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_the_command_line_reproduces_the_example_to_full_precision(tmp_path, capsys, by_hand):
    column, _ = mazur_files(tmp_path)
    document = run_json(
        ["derive", SPEC, "--loss", "squared-error", "--notation", "column", "--example",
         "--weights", str(column), "--input", "0.05,0.10", "--target", "0.01,0.99",
         "--freeze", "b", "--steps", "10000", "--json"],
        capsys,
    )  # fmt: skip
    assert document["frozen"] == ["b1", "b2"]
    assert math.isclose(document["cost_before"], by_hand["errors"][0], rel_tol=1e-14)
    W1, W2 = by_hand["first"]
    np.testing.assert_allclose(document["updated_parameters"]["W2"], W2, rtol=1e-14)
    np.testing.assert_allclose(document["updated_parameters"]["W1"], W1, rtol=1e-14)
    assert document["updated_parameters"]["b1"] == [[0.35], [0.35]]  # held fixed
    assert round(document["updated_parameters"]["W2"][0][0], 8) == 0.35891648  # the article's w5
    last = document["descent"][-1]
    assert last["step"] == 10_000 and len(document["descent"]) == 11  # 1, 1000, …, 10000
    assert math.isclose(last["cost_before"], by_hand["errors"][-1], rel_tol=1e-10)
    assert math.isclose(last["cost_after"], by_hand["after"], rel_tol=1e-10)
    assert f"{last['cost_before']:.6g}" == "3.51085e-05"
    np.testing.assert_allclose(document["final_parameters"]["W2"], by_hand["W"][1], rtol=1e-10)


def test_json_keeps_every_number_exactly(tmp_path, capsys):
    column, _ = mazur_files(tmp_path)
    argv = ["derive", SPEC, "--loss", "squared-error", "--notation", "column", "--example",
            "--weights", str(column), "--input", "0.05,0.10", "--target", "0.01,0.99",
            "--freeze", "b", "--json"]  # fmt: skip
    document = run_json(argv, capsys)
    derivation = derive(SPEC, get_loss("squared-error"), "column")
    network = read_weights(column, SPEC, "column")
    problem = example_problem(derivation, model=network, X=[0.05, 0.10], T=[0.01, 0.99])
    example = worked_example(derivation, problem, freeze=["b"])
    assert document["cost_before"] == example.cost_before  # bit for bit
    for name, value in example.updated.items():
        assert document["updated_parameters"][name] == value.tolist()
    for step, (_, value) in zip(document["steps"], example.steps, strict=True):
        assert step["value"] == np.asarray(value).tolist()


def test_the_row_notation_and_the_markdown_tell_the_same(tmp_path, capsys, by_hand):
    _, row = mazur_files(tmp_path)
    assert main(["derive", SPEC, "--loss", "squared-error", "--example", "--weights", str(row),
                 "--input", "0.05,0.10", "--target", "0.01,0.99", "--freeze", "b",
                 "--steps", "10000", "--every", "5000", "--digits", "8"]) == 0  # fmt: skip
    page = capsys.readouterr().out
    assert f"| 1 | {float(by_hand['errors'][0])!r} |" in page  # the cost at full precision
    assert "0.35891648" in page  # w5 after one step, 8 digits as asked
    assert "(held fixed)" in page and "| 5000 |" in page and "| 10000 | 3.51085481225126" in page
    assert "The parameters after step 10000:" in page


def test_init_writes_a_model_that_derive_reads(tmp_path, capsys, by_hand):
    column, _ = mazur_files(tmp_path)
    model = tmp_path / "mazur.nnm"
    assert main(["init", SPEC, "--weights", str(column), "--notation", "column",
                 "--loss", "squared-error", "-o", str(model)]) == 0  # fmt: skip
    assert "12 parameters" in capsys.readouterr().out
    document = run_json(
        ["derive", "--model", str(model), "--notation", "column", "--example", "--input",
         "0.05,0.10", "--target", "0.01,0.99", "--freeze", "b", "--json"],
        capsys,
    )  # fmt: skip
    assert document["loss"] == "squared-error"
    np.testing.assert_allclose(document["updated_parameters"]["W2"], by_hand["first"][1], rtol=1e-14)


def test_weights_from_npz_csv_rows_and_named_freezes(tmp_path, capsys):
    weights = tmp_path / "w.npz"
    np.savez(weights, **{k: np.asarray(v) for k, v in MAZUR_COLUMN.items()})
    inputs, targets = tmp_path / "x.csv", tmp_path / "t.csv"
    inputs.write_text("x1,x2\n0.05,0.10\n0.5,-0.2\n")
    targets.write_text("0.01,0.99\n0.3,0.7\n")
    document = run_json(
        ["derive", SPEC, "--loss", "squared-error", "--notation", "column", "--example",
         "--weights", str(weights), "--input", str(inputs), "--target", str(targets),
         "--freeze", "W1,b2", "--json"],
        capsys,
    )  # fmt: skip
    assert document["samples"] == 2 and document["frozen"] == ["W1", "b2"]
    assert document["updated_parameters"]["W1"] == MAZUR_COLUMN["W1"]
    assert document["updated_parameters"]["b1"] != [[0.35], [0.35]]  # not frozen: it moved


def test_the_python_api_takes_a_mapping():
    derivation = derive(SPEC, get_loss("squared-error"), "column")
    network = weights_from_mapping(MAZUR_COLUMN, SPEC, "column")
    problem = example_problem(derivation, model=network, X=read_rows("0.05,0.10", "x"),
                              T=read_rows("0.01,0.99", "t"))  # fmt: skip
    example = worked_example(derivation, problem, 0.5, freeze=["b"], steps=3)
    assert [k for k, _, _ in example.history] == [1, 2, 3]
    assert example.history[0][2] == example.cost_after  # step 1 of the descent is the one shown
    assert "| 3 |" in example._repr_markdown_()


@pytest.mark.parametrize(
    ("extra", "said", "status"),
    [
        (["--weights", "missing.json"], "missing.json: cannot read it", 3),
        (["--weights", "{bad}"], "not a JSON document", 3),
        (["--weights", "{wrong_names}"], "missing W2, b2; unknown V2", 3),
        (["--weights", "{row_layout}"], "the other notation's layout", 2),
        (["--weights", "{not_numbers}"], "'a', which is not a number", 3),
        (["--weights", "{bias}"], "give 2 numbers or one for the whole layer", 2),
        (["--weights", "{zip}"], "not a readable .npz archive", 3),
        (["--input", "0.05,x", "--target", "0.01,0.99"], "'x' is not a number", 3),
        (["--input", "0.05,0.1,0.2", "--target", "0.01,0.99"], "3 values per sample", 2),
        (["--input", "0.05,0.1"], "give --input and --target together", 2),
        (["--input", "0.05,nan", "--target", "0.01,0.99"], "not a finite number", 3),
        (["--freeze", "c3"], "cannot hold 'c3' fixed", 2),
        (["--steps", "0"], "--steps must be between 1", 2),
        (["--learning-rate", "inf"], "finite number > 0", 2),
    ],
)
def test_bad_numbers_exit_with_one_line(extra, said, status, tmp_path, capsys, monkeypatch):
    """Exit 2 for a usage error, 3 for a file or numbers that cannot be read (docs/errors.md)."""
    monkeypatch.chdir(tmp_path)
    files = {
        "{bad}": ("bad.json", "{"),
        "{wrong_names}": ("names.json", json.dumps({"W1": [[1, 2], [3, 4]], "b1": 0, "V2": 1})),
        "{row_layout}": ("row.json", json.dumps({**MAZUR_COLUMN, "W1": [[1, 2, 3], [4, 5, 6]]})),
        "{not_numbers}": ("text.json", json.dumps({**MAZUR_COLUMN, "W1": [["a", 1], [2, 3]]})),
        "{bias}": ("bias.json", json.dumps({**MAZUR_COLUMN, "b1": [1, 2, 3]})),
        "{zip}": ("broken.npz", "PK\x03\x04 not really"),
    }
    extra = list(extra)
    for index, item in enumerate(extra):
        if item in files:
            name, text = files[item]
            (tmp_path / name).write_text(text)
            extra[index] = name
    spec = "2-3sigmoid-2sigmoid" if "row.json" in extra else SPEC
    argv = ["derive", spec, "--loss", "squared-error", "--notation", "column", "--example"]
    assert main(argv + extra) == status
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("argv", "said", "status"),
    [
        (["derive", SPEC, "--steps", "5"], "add --example", 2),
        (["derive", SPEC, "--input", "1,2", "--target", "1,2"], "add one", 2),
        (["init", SPEC, "-o", "."], "is a folder", 3),
        (["init", SPEC, "-o", "a-file/m.nnm"], "is a file, not a folder", 3),
        (["derive", SPEC, "--verify", "-o", "a-file/d.md"], "is a file, not a folder", 3),
    ],
)
def test_options_that_do_not_apply_and_unwritable_outputs_are_refused(
    argv, said, status, capsys, tmp_path, monkeypatch
):
    """Usage errors exit 2; an output that cannot be written, 3 (before any work)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    assert main(argv) == status
    assert said in capsys.readouterr().err


def test_a_diverging_descent_stops_with_a_clear_error():
    derivation = derive("1-1identity", get_loss("squared-error"), "row")
    network = weights_from_mapping({"W1": 1.0 * np.ones((1, 1)), "b1": 0.0}, "1-1identity")
    problem = example_problem(derivation, model=network, X=[[1e3]], T=[[0.0]])
    with pytest.raises(NNMathError, match="smaller --learning-rate"):
        worked_example(derivation, problem, learning_rate=10.0, steps=1000)


def test_verify_on_your_own_numbers_and_init_with_random_weights(tmp_path, capsys):
    column, _ = mazur_files(tmp_path)
    assert main(["derive", SPEC, "--loss", "squared-error", "--notation", "column", "--verify",
                 "--weights", str(column), "--input", "0.05,0.10;0.3,0.2",
                 "--target", "0.01,0.99;0.5,0.5"]) == 0  # fmt: skip
    page = capsys.readouterr().out
    assert f"All 18 equations checked on the weights of {column}, your inputs and targets, S = 2" in page
    model = tmp_path / "random.nnm"
    assert main(["init", "3-10relu-6relu-3softmax", "--seed", "7", "-o", str(model)]) == 0
    assert "random weights, seed 7" in capsys.readouterr().out
    assert main(["derive", "--model", str(model), "--verify"]) == 0
