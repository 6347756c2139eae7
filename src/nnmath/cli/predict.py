"""``nnmath predict MODEL INPUT.csv``: predictions for the rows of a CSV file, as CSV."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from nnmath.errors import DataError
from nnmath.modelfile import TrainedModel, atomic_write, load_model

EPILOG = """\
examples:
  nnmath predict runs/iris/model.nnm flowers.csv                 CSV to the terminal
  nnmath predict runs/iris/model.nnm flowers.csv -o predicted.csv
  nnmath predict runs/iris/model.nnm flowers.csv --json

INPUT.csv is comma-separated with a header row naming the columns. It must have a column for
each of the model's features ('nnmath info MODEL' lists them); other columns (an id, the true
label) are ignored. Inputs are standardised by the model itself: give raw values.
Output: one row per input row, the column 'prediction' (the predicted class name, or the
predicted value for regression) and, for classifiers, 'p_CLASS' with each class's probability.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict",
        help="predict the class (and its probabilities) of each row of a CSV file",
        description="Run a saved model on the rows of a CSV file and write the predictions.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="a .nnm model file")
    parser.add_argument("input", metavar="INPUT.csv", help="rows to predict, with a header row")
    parser.add_argument("--output", "-o", metavar="OUT.csv", help="write here (default: stdout)")
    parser.add_argument("--json", action="store_true", help="print JSON records instead of CSV")
    return parser


def read_features(path: str | Path, model: TrainedModel) -> np.ndarray:
    """The model's feature columns of a CSV file as float64 (S, n), or a DataError naming the cell."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; give the path of a CSV file with a header row")
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = [(number, row) for number, row in enumerate(csv.reader(file), 1) if row]
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error}); save it as UTF-8 CSV") from error
    except csv.Error as error:
        raise DataError(f"{path}: not valid CSV ({error})") from error
    if not rows:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows")
    header = [cell.strip() for cell in rows[0][1]]
    data = rows[1:]
    if not data:
        raise DataError(f"{path}: the file has a header but no data rows")
    wanted = model.feature_names or header
    if model.feature_names is None and len(header) != model.network.n_in:
        raise DataError(
            f"{path}: the model takes {model.network.n_in} features, the file has "
            f"{len(header)} columns"
        )
    missing = [name for name in wanted if name not in header]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(map(repr, missing[:5]))}"
            + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
            + f"; the model needs the columns {', '.join(wanted)}"
        )
    columns = [header.index(name) for name in wanted]
    X = np.empty((len(data), len(columns)))
    for i, (line, row) in enumerate(data):
        if len(row) != len(header):
            raise DataError(
                f"{path}, line {line}: {len(row)} fields but the header has {len(header)} columns"
            )
        for j, column in enumerate(columns):
            cell = row[column].strip()
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise DataError(
                    f"{path}, line {line}, column {wanted[j]!r}: {cell!r} is not a finite "
                    "number; every feature value must be a number"
                )
            X[i, j] = value
    return X


def prediction_table(model: TrainedModel, X: np.ndarray) -> tuple[list[str], list[list[object]]]:
    """(header, rows): the prediction and, for classifiers, each class's probability."""
    if model.task == "classification":
        P = model.predict_proba(X)
        names = model.class_names or [str(c) for c in range(model.n_classes)]
        predicted = np.asarray(names)[P.argmax(axis=1)]
        header = ["prediction", *(f"p_{name}" for name in names)]
        rows = [
            [str(label), *(float(p) for p in probs)]
            for label, probs in zip(predicted, P, strict=True)
        ]
        return header, rows
    Y = model.predict(X)
    header = ["prediction"] if Y.shape[1] == 1 else [f"prediction_{k}" for k in range(Y.shape[1])]
    return header, [[float(v) for v in row] for row in Y]


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    X = read_features(args.input, model)
    header, rows = prediction_table(model, X)
    if args.json:
        text = json.dumps([dict(zip(header, row, strict=True)) for row in rows], indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([f"{v:.6g}" if isinstance(v, float) else v for v in row] for row in rows)
        text = buffer.getvalue()
    if args.output:
        path = atomic_write(args.output, lambda file: file.write(text.encode("utf-8")))
        print(f"wrote {len(rows)} predictions to {path}")
    else:
        print(text, end="")
    return 0
