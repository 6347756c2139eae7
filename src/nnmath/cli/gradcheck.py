"""``nnmath gradcheck SPEC``: the backward pass against central differences, in float64."""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from nnmath.cli.activation import add_activation_option, register_activations
from nnmath.cli.options import LOG_BASE, SEED, real, whole
from nnmath.gradcheck import (
    DEFAULT_EPS,
    DEFAULT_RTOL,
    MAX_EPS,
    MAX_SAMPLES,
    check_gradients,
    check_size,
    random_problem,
)
from nnmath.losses import LOSSES, get_loss
from nnmath.network import MLP
from nnmath.pairing import check_pair, default_loss_name
from nnmath.spec import parse_spec


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath gradcheck`` and its options."""
    parser = subparsers.add_parser(
        "gradcheck",
        help="check a network's gradients against finite differences",
        description="Build the network SPEC with random weights and data, compute every gradient "
        "with the backward pass and with central differences in float64, and print the relative "
        "error per parameter. Exits 1 on a mismatch. Batch norm (+bn) and dropout (+dropout(p)) "
        "are checked in training mode: batch statistics, and dropout masks drawn from --seed, the "
        "same masks for every evaluation of the cost.",
        epilog="examples: nnmath gradcheck 3-10relu-6relu-3softmax --loss cross-entropy; "
        "nnmath gradcheck '64-128relu+bn+dropout(0.3)-10softmax'",
    )
    parser.add_argument(
        "spec", help="network spec, e.g. 3-10relu-6relu-3softmax or 4-8tanh+bn+dropout(0.2)-2"
    )
    parser.add_argument("--loss", choices=list(LOSSES), help="loss (default: matches the output)")
    parser.add_argument("--base", type=LOG_BASE, help="log base of cross-entropy (default e)")
    parser.add_argument(
        "--samples", type=whole(1, MAX_SAMPLES), default=8, help="batch size S (default 8)"
    )
    parser.add_argument("--seed", type=SEED, default=0, help="seed for weights and data (≥ 0)")
    parser.add_argument(
        "--eps",
        type=real(0, MAX_EPS, above=True),
        default=DEFAULT_EPS,
        help=f"finite-difference step, > 0 and at most {MAX_EPS:g} (default {DEFAULT_EPS:g})",
    )
    parser.add_argument(
        "--rtol", type=real(0), default=DEFAULT_RTOL, help="relative tolerance (≥ 0)"
    )
    parser.add_argument(
        "--eval",
        action="store_true",
        help="check the evaluation-mode network instead (running statistics, no dropout)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_activation_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the spec's gradients on random weights and data against central differences in float64
    and print the report (or JSON); exit status 0 when every gradient matches, 1 when not."""
    register_activations(args)
    spec = parse_spec(args.spec)
    loss = get_loss(args.loss or default_loss_name(spec.output), base=args.base)
    check_pair(spec.output, spec.n_out, loss)
    check_size(spec, args.samples)  # before anything is built: the work of the differences
    if args.eval and not spec.mode_dependent:
        warnings.warn(
            f"--eval changes nothing for {spec}: without batch norm or dropout the network is "
            "the same in training and evaluation",
            stacklevel=1,
        )
    rng = np.random.default_rng(args.seed)
    model = MLP(spec, rng=rng)
    X, T = random_problem(model, loss, args.samples, rng)
    report = check_gradients(
        model, X, T, loss, eps=args.eps, rtol=args.rtol, training=not args.eval, seed=args.seed
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.passed else 1
