"""``nnmath predict MODEL INPUT``: a saved model's predictions for the rows of a data file."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys

import numpy as np

from nnmath.cli import DATA
from nnmath.datasets import FILE_TYPES, DataSource, read_features
from nnmath.errors import SpecError
from nnmath.modelfile import TrainedModel, atomic_write, load_model
from nnmath.outputs import check_output as check_output_path
from nnmath.outputs import rescue_message, save_with_fallback

EPILOG = """\
examples:
  nnmath predict runs/iris/model.nnm flowers.csv                 CSV to the terminal
  nnmath predict runs/iris/model.nnm flowers.parquet -o predicted.csv
  cat flowers.csv | nnmath predict runs/iris/model.nnm - -o -    a filter: stdin to stdout
  nnmath predict runs/iris/model.nnm flowers.csv --json --precision 4

INPUT is a .csv (comma-separated, a header row naming the columns), .parquet or .npz file (an
array X, with feature_names to match columns by name), or '-' for standard input (CSV unless
--format says otherwise). It needs a column for each of the model's features ('nnmath info MODEL'
lists them); other columns (an id, the true label) are ignored. Inputs are standardised by the
model itself: give raw values. It is read by the same reader as 'nnmath train'.

Output: one row per input row, the column 'prediction' (what the model's predict() returns: the
class name, or the value in the target's units for regression) and, for classifiers, 'p_CLASS'
with each class's probability (predict_proba()). Numbers are written at full precision (the
shortest text that reads back to the same value) unless --precision N asks for N significant
digits.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath predict`` and its options."""
    parser = subparsers.add_parser(
        "predict",
        help="predict the class (and its probabilities) or value of each row of a data file",
        description="Run a saved model on the rows of a CSV, Parquet or NPZ file (or standard "
        "input) and write the predictions as CSV or JSON.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="a .nnm model file")
    parser.add_argument(
        "input", metavar="INPUT", help="rows to predict: a .csv, .parquet or .npz file, or '-'"
    )
    parser.add_argument(
        "--output", "-o", metavar="OUT", help="write here; '-' or absent: standard output"
    )
    parser.add_argument(
        "--format",
        choices=[kind.lstrip(".") for kind in FILE_TYPES],
        help="the input's format (default: its suffix; csv for '-')",
    )
    parser.add_argument("--json", action="store_true", help="write JSON records instead of CSV")
    parser.add_argument(
        "--precision",
        type=int,
        metavar="N",
        help="write numbers with N significant digits (default: full precision)",
    )
    return parser


def check_output(output: str | None) -> None:
    """Refuse, before any work, an output path that cannot be written ('-' is standard output)."""
    if output not in (None, "-"):
        check_output_path(output, "-o")  # type: ignore[arg-type]


def input_source(argument: str, file_format: str | None) -> DataSource | str:
    """The input as a DataSource: standard input's bytes for '-', else the path."""
    if argument != "-":
        return DataSource.from_path(argument, file_format) if file_format else argument
    return DataSource.from_bytes(sys.stdin.buffer.read(), file_format or "csv")


def number_text(value: np.floating, precision: int | None) -> str:
    """A number as text: the shortest that reads back to the same value in its own dtype (float32
    0.1 is "0.1", not 0.10000000149011612), or ``precision`` significant digits."""
    if precision is not None:
        return f"{float(value):.{precision}g}"
    return str(value) if isinstance(value, np.float32) else repr(float(value))


def prediction_table(model: TrainedModel, X: np.ndarray) -> tuple[list[str], list[list[object]]]:
    """(header, rows): ``model.predict`` and, for classifiers, ``model.predict_proba``."""
    predicted = model.predict(X)
    if model.task == "classification":
        P = model.predict_proba(X)
        names = model.class_names or [str(c) for c in range(model.n_classes)]
        header = ["prediction", *(f"p_{name}" for name in names)]
        return header, [[str(label), *probs] for label, probs in zip(predicted, P, strict=True)]
    k = predicted.shape[1]
    header = ["prediction"] if k == 1 else [f"prediction_{j}" for j in range(k)]
    return header, [list(row) for row in predicted]


def format_table(
    header: list[str], rows: list[list[object]], as_json: bool, precision: int | None
) -> str:
    """The table as CSV text, or as a JSON list of records; numbers as :func:`number_text` says."""
    texts = [
        [v if isinstance(v, str) else number_text(v, precision) for v in row]  # type: ignore[arg-type]
        for row in rows
    ]
    if as_json:  # numbers as JSON numbers, from the same text
        records = [_record(header, row, line) for row, line in zip(rows, texts, strict=True)]
        return json.dumps(records, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(texts)
    return buffer.getvalue()


def _record(header: list[str], row: list[object], texts: list[str]) -> dict[str, object]:
    values = [v if isinstance(v, str) else float(t) for v, t in zip(row, texts, strict=True)]
    return dict(zip(header, values, strict=True))


def run(args: argparse.Namespace) -> int:
    """Check the output, load the model, read the rows, write the predictions; exit status 0."""
    if args.precision is not None and not 1 <= args.precision <= 17:
        raise SpecError(f"--precision must be between 1 and 17 digits, got {args.precision}")
    check_output(args.output)
    model = load_model(args.model)
    source = input_source(args.input, args.format)
    X = read_features(source, model.feature_names, model.network.n_in)
    header, rows = prediction_table(model, X)
    text = format_table(header, rows, args.json, args.precision)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    path, error = save_with_fallback(
        lambda where: atomic_write(where, lambda file: file.write(text.encode("utf-8"))),
        args.output,
        "predictions",
    )
    if error is not None:  # found only when writing: a full disk, a folder removed meanwhile
        message = rescue_message("predictions", args.output, path, error)
        print(f"nnmath predict: error: {message}", file=sys.stderr)
        return DATA
    print(f"wrote {len(rows)} predictions to {path}")
    return 0
