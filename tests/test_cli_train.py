"""The train, evaluate, predict, info and datasets commands, end to end on small data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from nnmath.cli import main
from nnmath.modelfile import load_model

pytest.importorskip("sklearn")

QUICK = ["--data", "iris", "--epochs", "5", "--no-plots"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def iris_model(workdir: Path, capsys) -> tuple[Path, dict]:
    code, out, _ = run(capsys, "train", *QUICK, "--output", "iris.nnm", "--json")
    assert code == 0
    return workdir / "iris.nnm", json.loads(out)


def test_train_json_reports_held_out_metrics(iris_model) -> None:
    path, report = iris_model
    assert path.exists()
    assert report["spec"] == "4-8tanh-3softmax"  # the iris default, widths from the data
    assert report["epochs_run"] == 5 and report["n_test"] == 30 and report["n_train"] == 120
    assert 0.0 <= report["test"]["accuracy"] <= 1.0
    assert set(report["final"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert report["model"] == "iris.nnm" and report["plots"] == []


def test_train_text_output_and_default_path(workdir: Path, capsys) -> None:
    code, out, err = run(capsys, "train", *QUICK)
    assert code == 0
    assert "held-out accuracy:" in out and "saved model: runs/iris/model.nnm" in out
    assert (workdir / "runs" / "iris" / "model.nnm").exists()
    assert "\r" not in err  # no progress bar when stderr is not a terminal


def test_train_writes_plots(workdir: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    code, out, _ = run(capsys, "train", "--data", "moons", "--epochs", "3", "--plots", "p", "-q")
    assert code == 0
    assert {p.name for p in (workdir / "p").iterdir()} == {
        "history.png", "confusion.png", "decision_boundary.png"
    }  # fmt: skip


def test_evaluate_reproduces_the_held_out_metrics(iris_model, capsys) -> None:
    path, report = iris_model
    code, out, _ = run(capsys, "evaluate", str(path), "--json")
    assert code == 0
    evaluation = json.loads(out)
    assert evaluation["n"] == 30
    assert evaluation["metrics"]["accuracy"] == report["test"]["accuracy"]
    assert evaluation["metrics"]["loss"] == pytest.approx(report["test"]["loss"], rel=1e-12)
    assert np.sum(evaluation["confusion_matrix"]) == 30
    code, out, _ = run(capsys, "evaluate", str(path), "--split", "all")
    assert code == 0 and "150 rows" in out and "precision" in out


def test_predict_writes_class_names_and_probabilities(iris_model, workdir: Path, capsys) -> None:
    path, _ = iris_model
    model = load_model(path)
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    with open("in.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", *model.feature_names])  # an extra column is ignored
        writer.writerows([[i, *row] for i, row in enumerate(rows)])
    code, out, _ = run(capsys, "predict", str(path), "in.csv", "--output", "out.csv")
    assert code == 0 and "wrote 2 predictions" in out
    with open("out.csv", newline="") as file:
        table = list(csv.reader(file))
    assert table[0] == ["prediction", "p_setosa", "p_versicolor", "p_virginica"]
    P = np.array([[float(v) for v in row[1:]] for row in table[1:]])
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(P, model.predict_proba(np.array(rows)), atol=1e-6)
    assert [row[0] for row in table[1:]] == list(model.predict(np.array(rows)))

    code, out, _ = run(capsys, "predict", str(path), "in.csv", "--json")
    records = json.loads(out)
    assert records[0]["prediction"] == table[1][0] and len(records) == 2


def test_predict_names_a_missing_column(iris_model, workdir: Path, capsys) -> None:
    path, _ = iris_model
    Path("bad.csv").write_text("sepal length (cm),petal width (cm)\n1,2\n")
    code, _, err = run(capsys, "predict", str(path), "bad.csv")
    assert code == 3  # a data error
    assert "no column 'sepal width (cm)'" in err and "needs the columns" in err
    Path("nan.csv").write_text(
        "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n1,2,x,4\n"
    )
    code, _, err = run(capsys, "predict", str(path), "nan.csv")
    assert code == 3 and "line 2, column 'petal length (cm)': 'x'" in err


def test_info_shows_the_model(iris_model, capsys) -> None:
    path, _ = iris_model
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0
    assert "4-8tanh-3softmax" in out and "setosa, versicolor, virginica" in out
    assert "checksum verified" in out and "standardise" in out and "held-out" in out
    code, out, _ = run(capsys, "info", str(path), "--json")
    header = json.loads(out)
    assert header["format"] == "nnmath-model" and header["format_version"] == 1
    assert len(header["preprocessing"]["inputs"]["mean"]) == 4


def test_datasets_lists_shapes(capsys) -> None:
    code, out, _ = run(capsys, "datasets", "--json")
    assert code == 0
    table = {row["name"]: row for row in json.loads(out)}
    assert table["iris"]["n_samples"] == 150 and table["iris"]["n_features"] == 4
    assert table["digits"]["n_outputs"] == 10


def test_resume_continues_bit_identically(workdir: Path, capsys) -> None:
    args = ["train", "--data", "iris", "--no-plots", "-q", "--seed", "3"]
    assert run(capsys, *args, "--epochs", "4", "--output", "full.nnm")[0] == 0
    assert (
        run(capsys, *args, "--epochs", "2", "--output", "half.nnm", "--checkpoint", "c.ckpt")[0]
        == 0
    )
    code, out, _ = run(
        capsys, "train", "--resume", "c.ckpt", "--epochs", "4", "-o", "res.nnm", "--no-plots"
    )
    assert code == 0 and "resuming from c.ckpt after epoch 2" in out
    full, resumed = load_model("full.nnm"), load_model("res.nnm")
    for p, q in zip(full.network.parameters(), resumed.network.parameters(), strict=True):
        assert p.tobytes() == q.tobytes()
    code, _, err = run(capsys, "train", "--resume", "c.ckpt", "--spec", "16relu")
    assert code == 2 and "differs from the checkpoint" in err


@pytest.mark.parametrize(
    ("argv", "message", "status"),
    [
        (["--spec", "5-8relu-3softmax"], "the data has 4 features", 2),
        (["--spec", "8relu-2softmax"], "3 classes", 2),
        (["--data", "irsi"], "did you mean 'iris'", 3),
        (["--data", "missing.csv"], "file not found", 3),
        (["--epochs", "-1"], "epochs", 2),
        (["--validation-fraction", "2"], "validation_fraction", 2),
    ],
)
def test_bad_train_options_exit_with_a_message(workdir: Path, capsys, argv, message, status):
    """Usage errors exit 2, data and file errors 3 (docs/errors.md)."""
    base = ["train", "--data", "iris", "--epochs", "1", "--no-plots"]
    code, _, err = run(capsys, *base, *argv)
    assert code == status
    assert err.startswith("nnmath train: error:") and message in err


def test_missing_target_column_in_a_csv(workdir: Path, capsys) -> None:
    Path("d.csv").write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
    code, _, err = run(capsys, "train", "--data", "d.csv", "--target", "class", "--no-plots")
    assert code == 3 and "no column named 'class'" in err


def test_train_on_a_regression_csv_and_predict(workdir: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    with open("reg.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["u", "v", "price"])
        writer.writerows([[a, b, 100 + 10 * a - 5 * b + 20.5] for a, b in X])
    code, out, _ = run(capsys, "train", "--data", "reg.csv", "--epochs", "40", "--lr", "0.01",
                       "--no-plots", "--json")  # fmt: skip
    report = json.loads(out)
    assert code == 0 and report["task"] == "regression" and report["spec"] == "2-64relu-1"
    assert report["test"]["r2"] > 0.9
    code, out, _ = run(capsys, "predict", "runs/reg/model.nnm", "reg.csv")
    lines = out.splitlines()
    assert lines[0] == "prediction" and len(lines) == 61


def test_without_matplotlib_training_works_and_says_so(workdir: Path, capsys, monkeypatch) -> None:
    from nnmath import plotting

    monkeypatch.setattr(plotting, "available", lambda: False)
    code, out, err = run(capsys, "train", "--data", "iris", "--epochs", "2")
    assert code == 0 and "held-out accuracy" in out
    assert "plots skipped: matplotlib is not installed" in err and "nnmath[plot]" in err
    assert not list((workdir / "runs" / "iris").glob("*.png"))


def test_float32_training(workdir: Path, capsys) -> None:
    code, out, _ = run(capsys, "train", *QUICK, "--dtype", "float32", "-o", "f32.nnm", "--json")
    assert code == 0 and json.loads(out)["config"]["dtype"] == "float32"
    assert load_model("f32.nnm").network.dtype == np.float32


def test_kernel_choice_reaches_fit_and_trains_the_same_network(workdir: Path, capsys) -> None:
    """--kernel picks the float32 step's kernel; numba (when installed) trains to the same weights."""
    code, out, _ = run(
        capsys,
        "train",
        *QUICK,
        "--dtype",
        "float32",
        "--kernel",
        "numpy",
        "--spec",
        "16relu",
        "-o",
        "numpy.nnm",
        "--json",
    )
    assert code == 0 and json.loads(out)["config"]["kernel"] == "numpy"
    pytest.importorskip("numba")
    code, out, _ = run(
        capsys,
        "train",
        *QUICK,
        "--dtype",
        "float32",
        "--kernel",
        "numba",
        "--spec",
        "16relu",
        "-o",
        "numba.nnm",
        "--json",
    )
    assert code == 0 and json.loads(out)["config"]["kernel"] == "numba"
    for a, b in zip(
        load_model("numpy.nnm").network.parameters(),
        load_model("numba.nnm").network.parameters(),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ---- settings, divergence and no progress -------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--learning-rate", "inf"], "learning rate must be finite and > 0"),
        (["--learning-rate", "0"], "learning rate must be finite and > 0"),
        (["--epochs", "0"], "epochs must be a whole number from 1"),
        (["--seed", "-1"], "seed must be a whole number ≥ 0"),
        (["--batch-size", "0"], "batch_size must be a whole number ≥ 1"),
    ],
)
def test_bad_settings_end_in_one_line_before_training(workdir, capsys, option, message) -> None:
    code, out, err = run(capsys, "train", *QUICK, *option, "-o", "m.nnm")
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and out == ""  # refused before the data is read
    assert not (workdir / "m.nnm").exists()


def test_a_diverging_run_saves_no_model(workdir, capsys) -> None:
    code, _, err = run(capsys, "train", *QUICK, "--learning-rate", "1e10", "-o", "m.nnm")
    assert code != 0 and "training diverged" in err and "try 1e+09" in err
    assert not (workdir / "m.nnm").exists()


def test_a_run_without_progress_says_so(workdir, capsys) -> None:
    code, out, err = run(
        capsys, "train", *QUICK, "--optimizer", "sgd", "--learning-rate", "1e-12", "-o", "m.nnm"
    )
    assert code == 0 and "never improved on its starting value" in err
    code, out, _ = run(
        capsys, "train", *QUICK, "--optimizer", "sgd", "--learning-rate", "1e-12", "--json"
    )
    assert json.loads(out)["no_progress"] is True


def test_the_parser_lists_every_loss_and_optimizer() -> None:
    from nnmath.cli.train import LOSS_NAMES, OPTIMIZER_NAMES
    from nnmath.losses import LOSSES
    from nnmath.optimizers import OPTIMIZERS

    assert tuple(LOSSES) == LOSS_NAMES and tuple(OPTIMIZERS) == OPTIMIZER_NAMES


def test_train_defaults_to_float32(workdir, capsys) -> None:
    code, out, _ = run(capsys, "train", *QUICK, "-o", "m.nnm", "--json")
    assert code == 0 and json.loads(out)["config"]["dtype"] == "float32"
    assert load_model("m.nnm").network.dtype == np.float32
