"""Quality benchmark: nnmath's default training against scikit-learn's MLP on the same splits.

For each data set, each seed fixes one train/test split (MNIST-1D has its own fixed test split, so
there the seed only changes the weights and the batch order). nnmath trains exactly as
``nnmath train --data NAME --seed SEED --validation-fraction 0`` does (the data set's defaults in
``nnmath.recipe.DATASET_DEFAULTS``; no rows set aside for validation curves, so that both
libraries learn from exactly the same rows); scikit-learn's MLPClassifier / MLPRegressor gets the
same training rows,
the same standardised inputs (and standardised targets for regression), the same hidden layers,
activation, learning rate, batch size and number of epochs, with no L2 penalty (alpha=0), and
otherwise its own defaults (Adam; it stops early when the training loss stops improving; it has
no cosine schedule). Times are wall-clock seconds of training alone (nnmath with its defaults:
float32, running training metrics), with one BLAS thread for both (override with
OPENBLAS_NUM_THREADS=2).

A second table trains the same data sets with batch norm and dropout added to every hidden layer
(``VARIANTS``: the spec's modifiers, all other settings the data set's defaults), next to the plain
network of the first table, on the same seeds: what the modifiers change. Those networks train
through the engine (the fast step computes plain networks only), so they take longer.

    python benchmarks/quality.py            # 5 seeds per small set, 3 for MNIST-1D (~5 min)
    python benchmarks/quality.py --quick    # one seed each, MNIST-1D shortened (~30 s)
    python benchmarks/quality.py --no-variants   # the first table only
    python benchmarks/quality.py --output-dir benchmarks/results   # also writes .md and .json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# One BLAS thread for both libraries (before NumPy loads BLAS): on a shared 2-core machine,
# multi-threaded BLAS on these small matrices is slower and its timings swing with other jobs.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from nnmath.datasets import Standardizer  # noqa: E402
from nnmath.recipe import (  # noqa: E402
    TrainConfig,
    complete_spec,
    prepare_split,
    train_dataset,
)


@dataclass(frozen=True)
class Case:
    """One data set, the metric its target applies to, and the target."""

    data: str
    metric: str  # "accuracy", "train accuracy" or "r2"
    target: float | None  # None: compared with scikit-learn instead
    seeds: int


CASES = [
    Case("digits", "accuracy", 0.97, 5),
    Case("iris", "accuracy", 0.95, 5),
    Case("mnist1d", "accuracy", 0.68, 3),
    Case("spirals", "train accuracy", 0.99, 5),
    Case("diabetes", "r2", None, 5),
]


@dataclass(frozen=True)
class Variant:
    """A data set's default network with modifiers on every hidden layer (``+bn``, ``+dropout``)."""

    data: str
    modifiers: str
    seeds: int


VARIANTS = [
    Variant("digits", "+bn", 3),
    Variant("digits", "+dropout(0.3)", 3),
    Variant("digits", "+bn+dropout(0.3)", 3),
    Variant("mnist1d", "+bn", 3),
    Variant("mnist1d", "+dropout(0.3)", 3),
    Variant("mnist1d", "+bn+dropout(0.3)", 3),
]
"""p = 0.3 after one try each of 0.1 and 0.3 on MNIST-1D, seed 0 (72.3% and 76.7%)."""


def nnmath_run(config: TrainConfig) -> dict[str, float]:
    result = train_dataset(config, progress=False)
    seconds = float(sum(result.history.seconds))
    train = result.model.evaluate(result.train.X, result.train.y)
    key = "r2" if result.model.task == "regression" else "accuracy"
    return {
        "test": result.test_metrics[key],
        "train": train[key],
        "seconds": seconds,
        "epochs": float(result.history.epochs),
    }


def sklearn_run(config: TrainConfig) -> dict[str, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    train, test, _ = prepare_split(config)
    resolved = config.resolved(train.name)
    spec = complete_spec(resolved.spec, train.n_features, train.n_outputs, train.task)
    hidden = spec.layers[:-1]
    activation = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "identity": "identity"}[
        hidden[0].activation
    ]
    options: dict[str, Any] = dict(
        hidden_layer_sizes=tuple(layer.size for layer in hidden),
        activation=activation,
        solver="adam",
        alpha=0.0,
        learning_rate_init=resolved.learning_rate,
        batch_size=resolved.batch_size,
        max_iter=resolved.epochs,
        random_state=config.seed,
    )
    scaler = Standardizer.fit(train.X)
    X, X_test = scaler.transform(train.X), scaler.transform(test.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        began = time.perf_counter()
        if train.task == "classification":
            model = MLPClassifier(**options).fit(X, train.y)
            seconds = time.perf_counter() - began
            return {
                "test": float(model.score(X_test, test.y)),
                "train": float(model.score(X, train.y)),
                "seconds": seconds,
                "epochs": float(model.n_iter_),
            }
        targets = Standardizer.fit(train.y)
        model = MLPRegressor(**options).fit(X, targets.transform(train.y).ravel())
        seconds = time.perf_counter() - began

    def r2(X_: np.ndarray, y: np.ndarray) -> float:
        from sklearn.metrics import r2_score

        predicted = targets.inverse_transform(model.predict(X_).reshape(-1, 1))
        return float(r2_score(y, predicted))

    return {
        "test": r2(X_test, test.y),
        "train": r2(X, train.y),
        "seconds": seconds,
        "epochs": float(model.n_iter_),
    }


def summarise(values: list[float]) -> dict[str, Any]:
    return {
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "std": float(np.std(values)),
        "min": float(np.min(values)),
        "values": [float(v) for v in values],
    }


def run_case(case: Case, quick: bool) -> dict[str, Any]:
    seeds = range(1 if quick else case.seeds)
    runs: dict[str, list[dict[str, float]]] = {"nnmath": [], "sklearn": []}
    for seed in seeds:
        config = TrainConfig(data=case.data, seed=seed, validation_fraction=0.0)
        if quick and case.data == "mnist1d":
            config = replace(config, epochs=15)
        runs["nnmath"].append(nnmath_run(config))
        runs["sklearn"].append(sklearn_run(config))
        print(
            f"  {case.data} seed {seed}: nnmath {runs['nnmath'][-1]}  sklearn {runs['sklearn'][-1]}",
            file=sys.stderr,
            flush=True,
        )
    which = "train" if case.metric == "train accuracy" else "test"
    row: dict[str, Any] = {"data": case.data, "metric": case.metric, "target": case.target}
    resolved = TrainConfig(data=case.data).resolved(case.data)
    row["settings"] = resolved.to_dict()
    for library, results in runs.items():
        row[library] = {
            "score": summarise([r[which] for r in results]),
            "test": summarise([r["test"] for r in results]),
            "seconds": summarise([r["seconds"] for r in results]),
            "epochs": summarise([r["epochs"] for r in results]),
        }
    score = row["nnmath"]["score"]["mean"]
    if case.target is not None:
        row["met"] = bool(score >= case.target)
    else:  # regression: comparable with scikit-learn's
        row["met"] = bool(score >= row["sklearn"]["score"]["mean"] - 0.05)
    return row


def markdown(rows: list[dict[str, Any]], quick: bool) -> str:
    lines = [
        "| data set | network (nnmath defaults) | metric | target | nnmath | scikit-learn "
        "| nnmath s | scikit-learn s (epochs) | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        settings = row["settings"]
        spec = settings["spec"]
        network = (
            f"{spec}, {settings['optimizer']} lr {settings['learning_rate']:g}, "
            f"{settings['epochs']} ep × batch {settings['batch_size']}"
            + (f", {settings['schedule']}" if settings.get("schedule") else "")
        )

        def cell(stats: dict[str, Any], percent: bool) -> str:
            if len(stats["values"]) == 1:
                return f"{stats['mean']:.2%}" if percent else f"{stats['mean']:.3f}"
            if percent:
                return f"{stats['mean']:.2%} ± {stats['std']:.2%} (min {stats['min']:.2%})"
            return f"{stats['mean']:.3f} ± {stats['std']:.3f} (min {stats['min']:.3f})"

        percent = row["metric"] != "r2"
        target = (
            ("≥ " + (f"{row['target']:.0%}" if percent else f"{row['target']}"))
            if row["target"] is not None
            else "≈ scikit-learn"
        )
        metric = row["metric"] if row["metric"] != "accuracy" else "test accuracy"
        if row["metric"] == "r2":
            metric = "test R²"
        lines.append(
            f"| {row['data']} | {network} | {metric} | {target} "
            f"| {cell(row['nnmath']['score'], percent)} | {cell(row['sklearn']['score'], percent)} "
            f"| {row['nnmath']['seconds']['median']:.2f} | {row['sklearn']['seconds']['median']:.2f} "
            f"({row['sklearn']['epochs']['median']:.0f}) "
            f"| {'yes' if row['met'] else 'NO'} |"
        )
    seeds = "1 seed each (--quick)" if quick else "mean ± std over seeds (5; MNIST-1D 3)"
    lines.append("")
    lines.append(
        f"Scores: {seeds}. Times: median seconds of training per run; nnmath runs every epoch, "
        "scikit-learn stops when its training loss stalls (median epochs run in parentheses)."
    )
    return "\n".join(lines)


def with_modifiers(hidden: str, modifiers: str) -> str:
    """'256relu-256relu' + '+bn' → '256relu+bn-256relu+bn'."""
    return "-".join(layer + modifiers for layer in hidden.split("-"))


def run_variant(variant: Variant, quick: bool, plain: dict[str, Any] | None) -> dict[str, Any]:
    """The variant's test accuracy and time over its seeds, with the plain network's on the same
    seeds (from the first table's runs where they are there)."""
    seeds = range(1 if quick else variant.seeds)
    hidden = TrainConfig(data=variant.data).resolved(variant.data).spec
    spec = with_modifiers(hidden, variant.modifiers)
    runs = []
    for seed in seeds:
        config = TrainConfig(data=variant.data, seed=seed, validation_fraction=0.0, spec=spec)
        if quick and variant.data == "mnist1d":
            config = replace(config, epochs=15)
        runs.append(nnmath_run(config))
        print(f"  {spec} seed {seed}: {runs[-1]}", file=sys.stderr, flush=True)

    def same_seeds(library: str) -> dict[str, Any] | None:
        values = (plain or {}).get(library, {}).get("test", {}).get("values", [])[: len(runs)]
        return summarise(values) if values else None

    return {
        "data": variant.data,
        "spec": spec,
        "plain": hidden,
        "test": summarise([r["test"] for r in runs]),
        "train": summarise([r["train"] for r in runs]),
        "seconds": summarise([r["seconds"] for r in runs]),
        "plain_test": same_seeds("nnmath"),
        "sklearn_test": same_seeds("sklearn"),
    }


def variants_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| data set | hidden layers | test accuracy | plain network, same seeds | change "
        "| scikit-learn, same seeds | train accuracy | s per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        test, plain = row["test"], row["plain_test"]
        change = f"{test['mean'] - plain['mean']:+.2%}" if plain else "–"
        plain_cell = f"{plain['mean']:.2%} ({row['plain']})" if plain else "–"
        sklearn = f"{row['sklearn_test']['mean']:.2%}" if row["sklearn_test"] else "–"
        lines.append(
            f"| {row['data']} | {row['spec']} | {test['mean']:.2%} ± {test['std']:.2%} "
            f"(min {test['min']:.2%}) | {plain_cell} | {change} | {sklearn} "
            f"| {row['train']['mean']:.2%} | {row['seconds']['median']:.2f} |"
        )
    seeds = sorted({len(row["test"]["values"]) for row in rows})
    lines += ["", f"Mean ± std over {'/'.join(map(str, seeds))} seed(s); the plain network's and "
              "scikit-learn's means over the same seeds (the first table's runs). Every other "
              "setting is the data set's default."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed each, short MNIST-1D")
    parser.add_argument("--only", nargs="*", help="data sets to run (default: all)")
    parser.add_argument("--output-dir", type=Path, help="also write quality.md and quality.json")
    parser.add_argument("--no-variants", action="store_true", help="skip batch norm and dropout")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    rows = [run_case(case, args.quick) for case in CASES if not args.only or case.data in args.only]
    table = markdown(rows, args.quick)
    variants: list[dict[str, Any]] = []
    if not args.no_variants:
        plain = {row["data"]: row for row in rows}
        variants = [
            run_variant(v, args.quick, plain.get(v.data))
            for v in VARIANTS
            if not args.only or v.data in args.only
        ]
        table += "\n\nWith batch norm and dropout:\n\n" + variants_markdown(variants)
    print(table)
    total = time.perf_counter() - began
    print(f"\nTotal wall time: {total:.0f} s", flush=True)
    if args.output_dir is not None:
        from nnmath.modelfile import atomic_write

        report = {"quick": args.quick, "seconds": total, "rows": rows, "variants": variants}
        atomic_write(args.output_dir / "quality.md", lambda f: f.write(table.encode() + b"\n"))
        atomic_write(
            args.output_dir / "quality.json",
            lambda f: f.write(json.dumps(report, indent=2).encode()),
        )
    missed = [row["data"] for row in rows if not row["met"]]
    if missed and not args.quick:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
