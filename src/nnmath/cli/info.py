"""``nnmath info MODEL``: what a model file holds, after checking it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nnmath.modelfile import load_model


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath info`` and its options."""
    parser = subparsers.add_parser(
        "info",
        help="show a model file's network, preprocessing, classes and training metadata",
        description="Read a model file (or checkpoint), verify its format version and weight "
        "checksum, and print the layers, loss, classes, features, preprocessing and how it "
        "was trained.",
        epilog="example: nnmath info runs/digits/model.nnm --json",
    )
    parser.add_argument("model", metavar="MODEL", help="a .nnm model or checkpoint file")
    parser.add_argument("--json", action="store_true", help="print the file's header as JSON")
    return parser


def _dict(value: Any) -> dict[str, Any]:
    """A metadata entry that should be an object, or {} if the file stores something else."""
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)


def training_lines(meta: dict[str, Any]) -> list[str]:
    """How the model was trained, from the metadata ``nnmath train`` stores (any key may lack)."""
    config, lines = _dict(meta.get("config")), []
    if "data" in meta:
        lines.append(
            f"  data: {meta['data']} ({meta.get('n_train')} training rows, "
            f"{meta.get('n_test')} held out), seed {config.get('seed')}"
        )
    optimizer = _dict(meta.get("optimizer"))
    if optimizer:
        settings = ", ".join(f"{k}={v}" for k, v in optimizer.items() if k != "name")
        lines.append(f"  optimizer: {optimizer.get('name')} ({settings})")
    if "epochs_run" in meta:
        best = f", best epoch {meta['best_epoch']}" if meta.get("best_epoch") else ""
        lines.append(
            f"  epochs: {meta['epochs_run']} of batch {config.get('batch_size')}{best}, "
            f"{meta.get('seconds')} s"
        )
    test = _dict(meta.get("test"))
    if test:
        lines.append(f"  held-out: {', '.join(f'{k} {_number(v)}' for k, v in test.items())}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Load (and so check) the model file, then print its summary or its header as JSON."""
    model = load_model(args.model)
    if args.json:  # the file's header: "created" is when the file was written
        print(json.dumps(model.describe(), indent=2))
        return 0
    print(f"{args.model}: nnmath model file, checksum verified")
    if model.created:
        print(f"written {model.created} by nnmath {model.written_by or '?'}")
    print(model.summary())
    lines = training_lines(_dict(model.metadata))
    if lines:
        print("training:", *lines, sep="\n")
    return 0
