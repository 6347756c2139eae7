"""``nnmath datasets``: the built-in data sets, their shapes and the default network for each."""

from __future__ import annotations

import argparse
import dataclasses
import json

from nnmath.datasets import list_datasets
from nnmath.recipe import DATASET_DEFAULTS, GENERIC_DEFAULTS


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath datasets`` and its options."""
    parser = subparsers.add_parser(
        "datasets",
        help="list the built-in data sets with their shapes",
        description="List the built-in data sets: task, samples, features, classes or targets, "
        "the size of a fixed test split, and the hidden layers 'nnmath train' uses by default.",
        epilog="example: nnmath datasets; then nnmath train --data NAME",
    )
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the built-in data sets with their shapes and default hidden layers (a table, or JSON);
    exit status 0."""
    rows = []
    for info in list_datasets():
        row = dataclasses.asdict(info)
        row["default_hidden"] = DATASET_DEFAULTS.get(info.name, GENERIC_DEFAULTS).hidden
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'name':<14}{'task':<16}{'samples':>8}{'features':>9}{'outputs':>8}{'test':>6}  "
        f"{'default hidden':<17}description"
    )
    for row in rows:

        def show(value: int | None) -> str:
            return "-" if value is None else str(value)

        print(
            f"{row['name']:<14}{row['task']:<16}{show(row['n_samples']):>8}"
            f"{show(row['n_features']):>9}{show(row['n_outputs']):>8}{show(row['n_test']):>6}  "
            f"{row['default_hidden']:<17}{row['description']}"
        )
    return 0
