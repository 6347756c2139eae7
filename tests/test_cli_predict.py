"""``nnmath predict``: pipes, the three input formats, full precision, and outputs checked first."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnmath.cli import main
from nnmath.datasets import Standardizer
from nnmath.losses import get_loss
from nnmath.modelfile import TrainedModel, as_trained_model, save_model
from nnmath.network import MLP

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

FEATURES = ["sepal", "petal", "width"]
ROWS = np.array([[5.1, 1.4, 0.2], [6.7, 4.4, 1.4], [6.3, 6.0, 2.5], [0.1, -2.0, 3.0]])


@pytest.fixture
def classifier(tmp_path: Path) -> tuple[TrainedModel, Path]:
    model = TrainedModel(
        network=MLP("3-5tanh-3softmax", seed=3, dtype=np.float32),
        loss=get_loss("cross-entropy"),
        class_names=["setosa", "versicolor", "virginica"],
        feature_names=FEATURES,
        standardizer=Standardizer.fit(ROWS),
    )
    return model, save_model(model, tmp_path / "iris.nnm")


def csv_text(columns: list[str], rows: np.ndarray) -> str:
    lines = [",".join(columns)] + [",".join(repr(float(v)) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def predict(*args: str, capsys) -> tuple[int, str, str]:
    code = main(["predict", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_pipe_from_stdin_to_stdout(classifier, tmp_path: Path) -> None:
    model, path = classifier
    text = csv_text(["id", *FEATURES], np.column_stack([np.arange(4), ROWS]))
    result = subprocess.run(
        [sys.executable, "-m", "nnmath", "predict", str(path), "-", "-o", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert table[0] == ["prediction", "p_setosa", "p_versicolor", "p_virginica"]
    assert [row[0] for row in table[1:]] == list(model.predict(ROWS))
    P = np.array([[np.float32(v) for v in row[1:]] for row in table[1:]])
    np.testing.assert_array_equal(P, model.predict_proba(ROWS))  # full precision: bit for bit


@pytest.mark.parametrize("kind", ["csv", "parquet", "npz"])
def test_the_three_formats_give_the_same_predictions(
    classifier, tmp_path: Path, kind: str, capsys
) -> None:
    model, path = classifier
    data = tmp_path / f"rows.{kind}"
    shuffled = [FEATURES[2], "label", FEATURES[0], FEATURES[1]]  # other order, an extra column
    columns = {name: ROWS[:, FEATURES.index(name)] for name in FEATURES}
    columns["label"] = np.arange(len(ROWS), dtype=np.float64)
    if kind == "csv":
        data.write_text(csv_text(shuffled, np.column_stack([columns[c] for c in shuffled])))
    elif kind == "parquet":
        table = pa.table({name: columns[name] for name in shuffled})
        pq.write_table(table, data, write_page_checksum=True)
    else:
        X = np.column_stack([columns[c] for c in shuffled if c != "label"])
        np.savez(data, X=X, feature_names=np.array([c for c in shuffled if c != "label"]))
    code, out, _ = predict(str(path), str(data), "--json", capsys=capsys)
    assert code == 0
    records = json.loads(out)
    assert [r["prediction"] for r in records] == list(model.predict(ROWS))
    P = np.array([[r[f"p_{c}"] for c in model.class_names] for r in records], np.float32)
    np.testing.assert_array_equal(P, model.predict_proba(ROWS))


def test_precision_rounds_only_when_asked(classifier, tmp_path: Path, capsys) -> None:
    _, path = classifier
    (tmp_path / "rows.csv").write_text(csv_text(FEATURES, ROWS))
    _, full, _ = predict(str(path), str(tmp_path / "rows.csv"), capsys=capsys)
    _, short, _ = predict(str(path), str(tmp_path / "rows.csv"), "--precision", "3", capsys=capsys)
    full_cells = [row[1:] for row in csv.reader(io.StringIO(full))][1:]
    short_cells = [row[1:] for row in csv.reader(io.StringIO(short))][1:]
    assert any(len(cell) > 6 for row in full_cells for cell in row)
    for full_row, short_row in zip(full_cells, short_cells, strict=True):
        assert [f"{float(v):.3g}" for v in full_row] == short_row


def test_regression_values_at_full_float64_precision(tmp_path: Path, capsys) -> None:
    model = as_trained_model(MLP("3-4tanh-2", seed=1), feature_names=FEATURES)
    path = save_model(model, tmp_path / "reg.nnm")
    (tmp_path / "rows.csv").write_text(csv_text(FEATURES, ROWS))
    code, out, _ = predict(str(path), str(tmp_path / "rows.csv"), capsys=capsys)
    table = list(csv.reader(io.StringIO(out)))
    assert code == 0 and table[0] == ["prediction_0", "prediction_1"]
    np.testing.assert_array_equal(np.array(table[1:], dtype=np.float64), model.predict(ROWS))


def test_a_bad_cell_is_named_as_by_the_train_reader(classifier, tmp_path: Path, capsys) -> None:
    _, path = classifier
    bad = tmp_path / "bad.csv"
    bad.write_text("sepal,petal,width\n1,2,3\n\n4,abc,6\n")
    code, _, err = predict(str(path), str(bad), capsys=capsys)
    assert code == 3  # a data error
    assert f"{bad}: line 4, column 'petal': 'abc' is not a number" in err


@pytest.mark.parametrize(
    ("output", "fragment"),
    [(".", "is a folder"), ("iris.nnm/out.csv", "is a file, not a folder")],
)
def test_the_output_is_checked_before_any_work(
    classifier, tmp_path: Path, output: str, fragment: str, monkeypatch, capsys
) -> None:
    """A directory, or a path under a file: refused before the model or the data is read."""
    _, path = classifier
    monkeypatch.chdir(tmp_path)
    code, _, err = predict("no-model.nnm", "no-data.csv", "-o", output, capsys=capsys)
    assert code == 3 and fragment in err and "no-model" not in err and "no-data" not in err


def test_standard_input_in_another_format(classifier, tmp_path: Path) -> None:
    model, path = classifier
    buffer = io.BytesIO()
    pq.write_table(pa.table({name: ROWS[:, j] for j, name in enumerate(FEATURES)}), buffer)
    result = subprocess.run(
        [sys.executable, "-m", "nnmath", "predict", str(path), "-", "--format", "parquet"],
        input=buffer.getvalue(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    predicted = [row[0] for row in csv.reader(io.StringIO(result.stdout.decode()))][1:]
    assert predicted == list(model.predict(ROWS))
