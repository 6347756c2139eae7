"""``nnmath info MODEL``: what a model file holds, after checking it."""

from __future__ import annotations

import argparse
import json

from nnmath.modelfile import load_model


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    if args.json:
        print(json.dumps(model.describe(), indent=2))
        return 0
    print(f"{args.model}: nnmath model file, checksum verified")
    print(model.summary())
    meta = model.metadata
    if meta:
        config = meta.get("config", {})
        print("training:")
        if "data" in meta:
            print(
                f"  data: {meta['data']} ({meta.get('n_train')} training rows, "
                f"{meta.get('n_test')} held out), seed {config.get('seed')}"
            )
        if "optimizer" in meta:
            settings = ", ".join(f"{k}={v}" for k, v in meta["optimizer"].items() if k != "name")
            print(f"  optimizer: {meta['optimizer'].get('name')} ({settings})")
        if "epochs_run" in meta:
            best = f", best epoch {meta['best_epoch']}" if meta.get("best_epoch") else ""
            print(
                f"  epochs: {meta['epochs_run']} of batch {config.get('batch_size')}{best}, "
                f"{meta.get('seconds')} s"
            )
        if "test" in meta:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in meta["test"].items())
            print(f"  held-out: {shown}")
    return 0
