"""The command line with batch norm, dropout, weights, penalties and your own activation, end to end:
train, save, load, evaluate, predict, export (ONNX run against nnmath) and gradcheck."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnmath.cli import main
from nnmath.modelfile import load_model

pytest.importorskip("sklearn")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def unregister():
    """Remove the activations a test registers in this process."""
    from nnmath.activations import registered_names, unregister_activation

    before = set(registered_names())
    yield
    for name in set(registered_names()) - before:
        unregister_activation(name)


def onnx_outputs(path: Path, X: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["Y"], {"X": X.astype(np.float32)})[0]


def test_gradcheck_passes_on_the_issues_network(capsys) -> None:
    code, out, _ = run(capsys, "gradcheck", "64-128relu+bn+dropout(0.3)-10softmax")
    assert code == 0, out
    assert "training mode" in out and "gamma1" in out and "all gradients match" in out


def test_batch_norm_and_dropout_train_save_evaluate_and_export(workdir: Path, capsys) -> None:
    code, out, _ = run(capsys, "train", "--data", "digits", "--spec", "64relu+bn+dropout(0.2)",
                       "--epochs", "4", "--no-plots", "-o", "m.nnm", "--json")  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["spec"] == "64-64relu+bn+dropout(0.2)-10softmax"
    assert report["test"]["accuracy"] > 0.8
    model = load_model("m.nnm")
    assert np.abs(model.network.batch_norms[0].running_mean).max() > 0  # trained statistics
    code, out, _ = run(capsys, "evaluate", "m.nnm", "--json")
    assert code == 0 and json.loads(out)["metrics"]["accuracy"] == report["test"]["accuracy"]
    assert run(capsys, "export", "m.nnm", "m.onnx")[0] == 0
    from nnmath.datasets import load_dataset

    X = load_dataset("digits").X[:50]
    P = onnx_outputs(workdir / "m.onnx", X)
    assert np.allclose(P, model.predict_proba(X), atol=1e-5)


def test_a_registered_activation_trains_saves_loads_and_exports(workdir: Path, unregister) -> None:
    """Each command in a fresh process: the model file carries the expression, and loading it
    registers the activation again, so predict and export need no option."""

    def nnmath(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "nnmath", *argv], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    nnmath("train", "--data", "iris", "--activation", "swish=z * sigmoid(z)",
           "--spec", "16swish", "--epochs", "30", "--no-plots", "-q", "-o", "s.nnm")  # fmt: skip
    from nnmath.datasets import load_dataset

    X = load_dataset("iris").X
    np.savetxt("x.csv", X[:20], delimiter=",", header=",".join(load_model("s.nnm").feature_names),
               comments="")  # fmt: skip
    predicted = nnmath("predict", "s.nnm", "x.csv")
    assert len(predicted.strip().splitlines()) == 21  # a header and one line per row
    nnmath("export", "s.nnm", "s.onnx")
    model = load_model("s.nnm")  # registers swish in this process too
    assert np.allclose(onnx_outputs(workdir / "s.onnx", X), model.predict_proba(X), atol=1e-5)


def imbalanced_csv(path: Path) -> None:
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["a", "b", "w", "label"])
        for row in range(400):
            a, b = rng.normal(size=2)
            writer.writerow([a, b, 1.0 + row % 3, "rare" if a + b > 1.8 else "common"])


def test_weight_column_class_weight_and_penalty(workdir: Path, capsys) -> None:
    imbalanced_csv(workdir / "d.csv")
    base = ["train", "--data", "d.csv", "--target", "label", "--epochs", "20", "--no-plots",
            "--seed", "1", "--weight-column", "w"]  # fmt: skip
    code, out, _ = run(capsys, *base, "--class-weight", "balanced", "--l2", "1e-3", "-o", "b.nnm",
                       "--json")  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["config"]["weight_column"] == "w" and report["config"]["l2"] == 1e-3
    assert load_model("b.nnm").feature_names == ["a", "b"]  # the weights are no feature
    assert run(capsys, *base, "-o", "p.nnm", "-q")[0] == 0
    X = np.loadtxt("d.csv", delimiter=",", skiprows=1, usecols=(0, 1))
    rare = X.sum(axis=1) > 1.8
    recall = [np.mean(load_model(f).predict(X[rare]) == "rare") for f in ("p.nnm", "b.nnm")]
    assert recall[1] > recall[0], recall  # the balanced weights favour the rare class


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--data", "iris", "--weight-column", "w"], "a column of your own file"),
        (["--data", "diabetes", "--class-weight", "balanced"], "regression"),
        (["--data", "iris", "--class-weight", "cat=2"], "the classes: setosa"),
        (["--data", "iris", "--l2", "-1"], "alpha must be ≥ 0"),
        (["--data", "iris", "--spec", "8relu+bn", "--batch-size", "1"], "batch_size 2 or more"),
        (["--data", "iris", "--activation", "bad"], "not NAME=EXPRESSION"),
    ],
)
def test_bad_options_are_one_line(workdir: Path, capsys, options, message) -> None:
    code, _, err = run(capsys, "train", *options, "--epochs", "1", "--no-plots", "-q")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_gradcheck_derive_and_check_register_their_activation(capsys, unregister) -> None:
    option = ["--activation", "softplus_two=log(1 + exp(2 * z)) / 2"]
    code, out, _ = run(capsys, "gradcheck", "3-5softplus_two+bn-2softmax", *option)
    assert code == 0 and "all gradients match" in out
    code, out, _ = run(capsys, "derive", "3-5softplus_two-2softmax", "--verify", *option)
    assert code == 0 and "**All " in out
    code, out, _ = run(capsys, "check", "3-5softplus_two-2softmax", "dW2 = A1.T @ dZ2", *option)
    assert code == 0 and "✓ correct" in out
