"""``nnmath evaluate MODEL``: a saved model's loss and metrics on a data set."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from nnmath.datasets import Dataset, load_dataset
from nnmath.errors import DataError, SpecError
from nnmath.metrics import confusion_matrix, per_class_scores
from nnmath.modelfile import TrainedModel, load_model
from nnmath.recipe import TrainConfig, prepare_split

EPILOG = """\
examples:
  nnmath evaluate runs/digits/model.nnm             the rows held out when it was trained
  nnmath evaluate runs/digits/model.nnm --split all
  nnmath evaluate model.nnm --data new_measurements.csv --target species

Without --data the model's own training set is used, and --split test (the default)
re-creates exactly the rows that training held out (same seed, same fraction). With
--data another source, every row is evaluated unless --split test is given.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath evaluate`` and its options."""
    parser = subparsers.add_parser(
        "evaluate",
        help="a saved model's loss and metrics on a data set",
        description="Load a model file and report its loss and metrics (accuracy, per-class "
        "precision/recall/F1 and the confusion matrix; or MSE, MAE and R²) on a data set.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="a .nnm model file")
    parser.add_argument("--data", metavar="NAME|PATH", help="default: the set it was trained on")
    parser.add_argument("--target", metavar="COLUMN", help="the target column of a file")
    parser.add_argument(
        "--split",
        choices=["auto", "test", "train", "all"],
        default="auto",
        help="which rows: the held-out test rows, the training rows, or all "
        "(auto: test for the training set, all for other data)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _rows(model: TrainedModel, args: argparse.Namespace) -> tuple[Dataset, str]:
    """The data to evaluate on, and a description of which rows they are."""
    stored = model.metadata.get("config")
    same = stored is not None and (
        args.data is None
        or (args.data == stored.get("data") and args.target == stored.get("target"))
    )
    split = args.split if args.split != "auto" else ("test" if same else "all")
    if args.data is None and stored is None:
        raise DataError(
            "this model file does not record its training data; name the data with --data"
        )
    if split == "all":
        source = args.data if args.data is not None else stored["data"]
        target = args.target if args.data is not None else stored.get("target")
        seed = stored.get("seed", 0) if stored else 0
        return load_dataset(source, target=target, seed=seed), f"all rows of {source}"
    if model.metadata.get("streamed") and same:  # its split is the stream's (docs/distributed.md)
        raise DataError(
            "this model was trained with --stream, whose held-out rows are drawn by the "
            "stream's own seeded split; 'nnmath info' shows its held-out metrics, or evaluate "
            "other data (--data FILE --split all)"
        )
    config = TrainConfig.from_dict(stored or {})
    if not same:
        config = TrainConfig.from_dict({**(stored or {}), "data": args.data, "target": args.target})
    train, test, _ = prepare_split(config)
    return (
        (test, f"held-out rows of {config.data}")
        if split == "test"
        else (
            train,
            f"training rows of {config.data}",
        )
    )


def _aligned(model: TrainedModel, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """X with the model's feature columns in its order, and y in the model's class numbering."""
    X = data.X
    if model.feature_names is not None and data.feature_names != model.feature_names:
        missing = [name for name in model.feature_names if name not in data.feature_names]
        if missing and data.n_features != len(model.feature_names):
            raise DataError(
                f"the data lacks the model's feature columns {', '.join(map(repr, missing))}; "
                f"the model was trained on {', '.join(model.feature_names)}"
            )
        if not missing:
            X = X[:, [data.feature_names.index(name) for name in model.feature_names]]
        else:
            print(
                "note: the data's column names differ from the model's; using them in order",
                file=sys.stderr,
            )
    if model.task != data.task:
        raise DataError(f"the model does {model.task} but the data is a {data.task} set")
    if model.task != "classification":
        return X, data.y
    names = model.class_names or [str(c) for c in range(model.n_classes)]
    unknown = [name for name in data.class_names or [] if name not in names]
    if unknown:
        raise DataError(
            f"the data has class(es) {', '.join(map(repr, unknown))} that the model does not "
            f"know; its classes are {', '.join(names)}"
        )
    mapping = np.array([names.index(name) for name in data.class_names or []], dtype=np.int64)
    return X, mapping[data.y]


def evaluation_report(model: TrainedModel, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The metrics dict, with per-class scores and the confusion matrix for classifiers."""
    report: dict[str, Any] = {"metrics": model.evaluate(X, y), "n": len(X)}
    if model.task == "classification":
        M = confusion_matrix(y, model.predict_classes(X), model.n_classes)
        scores = per_class_scores(M)
        names = model.class_names or [str(c) for c in range(model.n_classes)]
        report["classes"] = names
        report["per_class"] = {
            name: {key: float(values[c]) for key, values in scores.items()}
            | {"support": int(M[c].sum())}
            for c, name in enumerate(names)
        }
        report["confusion_matrix"] = M.tolist()
    return report


def run(args: argparse.Namespace) -> int:
    """Load the model, evaluate it on the rows ``--split`` picks (by default the held-out rows of
    its own data set, or all rows of another ``--data``) and print the loss, metrics, per-class
    scores and confusion matrix (or JSON); exit status 0."""
    if args.target is not None and args.data is None:
        raise SpecError(
            "--target names the target column of --data; without --data the model's own "
            "training set is used, with its own target: add --data or drop --target"
        )
    model = load_model(args.model)
    data, which = _rows(model, args)
    X, y = _aligned(model, data)
    report = evaluation_report(model, X, y)
    report["rows"] = which
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.model} on the {which} ({report['n']} rows)")
    for key, value in report["metrics"].items():
        shown = f"{value:.2%}" if key == "accuracy" else f"{value:.6g}"
        print(f"  {key:<10}{shown}")
    if "per_class" in report:
        width = max(8, *(len(name) for name in report["classes"]))
        print(f"\n  {'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
        for name, row in report["per_class"].items():
            print(
                f"  {name:<{width}} {row['precision']:>9.3f} {row['recall']:>9.3f} "
                f"{row['f1']:>9.3f} {row['support']:>8}"
            )
        print("\n  confusion matrix (rows: true class, columns: predicted class)")
        cell = max(4, *(len(str(v)) + 1 for row in report["confusion_matrix"] for v in row))
        print(
            "  "
            + " " * width
            + "".join(f"{name[: cell - 1]:>{cell}}" for name in report["classes"])
        )
        for name, row in zip(report["classes"], report["confusion_matrix"], strict=True):
            print(f"  {name:<{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return 0
