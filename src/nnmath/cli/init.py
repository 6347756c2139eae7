"""``nnmath init SPEC -o model.nnm``: a model file from weights of your own (or random ones).

The file is what ``nnmath train`` writes, untrained: ``nnmath derive --model``, ``predict``,
``evaluate``, ``info`` and ``train --resume`` read it, so a textbook network can be made without
Python.
"""

from __future__ import annotations

import argparse
import textwrap

from nnmath.cli.options import LOG_BASE, SEED
from nnmath.derivation import NOTATIONS, read_weights
from nnmath.errors import SpecError
from nnmath.losses import CLASSIFICATION_LOSSES, LOSSES, get_loss
from nnmath.modelfile import TrainedModel
from nnmath.network import MLP
from nnmath.outputs import check_output
from nnmath.pairing import check_pair, default_loss_name
from nnmath.spec import parse_spec


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath init`` and its options."""
    parser = subparsers.add_parser(
        "init",
        help="make a model file from your own weights (or random ones)",
        description=textwrap.fill(
            "Build the network SPEC with the weights of FILE (JSON or NPZ, named W1, b1, W2, … "
            "in the layout of --notation; a bias may be one number for the whole layer), or "
            "with random weights from --seed, and save it as a model file.",
            width=78,
        ),
        epilog="example: nnmath init 2-2sigmoid-2sigmoid --weights mazur.json --notation column "
        "--loss squared-error -o mazur.nnm",
    )
    parser.add_argument("spec", help="network spec, e.g. 2-2sigmoid-2sigmoid")
    parser.add_argument("-o", "--output", required=True, help="the model file to write (.nnm)")
    parser.add_argument("--weights", metavar="FILE", help="JSON or NPZ file of W1, b1, …")
    parser.add_argument(
        "--notation",
        choices=NOTATIONS,
        help="layout of the --weights: row (W_l is in×out, default) or column (out×in)",
    )
    parser.add_argument("--loss", choices=list(LOSSES), help="loss (default: matches the output)")
    parser.add_argument("--base", type=LOG_BASE, help="log base of cross-entropy (default e)")
    parser.add_argument("--seed", type=SEED, help="seed of random weights (≥ 0, default 0)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Build the network from ``--weights`` (or random ones from ``--seed``) and write it as an
    untrained model file; exit status 0."""
    if args.weights and args.seed is not None:
        raise SpecError("--seed draws random weights, and --weights gives them; give one")
    if args.notation and not args.weights:
        raise SpecError("--notation is the layout of the --weights file; add --weights or drop it")
    check_output(args.output, "-o", example="model.nnm")
    spec = parse_spec(args.spec)
    loss = get_loss(args.loss or default_loss_name(spec.output), base=args.base)
    check_pair(spec.output, spec.n_out, loss)
    if args.weights:
        network, source = read_weights(args.weights, spec, args.notation or "row"), args.weights
    else:
        seed = args.seed or 0
        network, source = MLP(spec, seed=seed), f"random weights, seed {seed}"
    task = "classification" if loss.name in CLASSIFICATION_LOSSES else "regression"
    model = TrainedModel(network, loss, task=task, metadata={"initialised_from": source})
    path = model.save(args.output)
    print(f"wrote {path}: {spec}, {network.parameter_count} parameters ({source}), {loss.name}")
    return 0
