"""``nnmath derive SPEC``: the backprop derivation of a network, every equation optionally checked."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

import numpy as np

from nnmath.cli.activation import add_activation_option, register_activations
from nnmath.cli.options import LOG_BASE, SEED, add_penalty_options, whole
from nnmath.derivation import (
    NOTATIONS,
    derive,
    example_json,
    example_markdown,
    example_problem,
    make_problem,
    read_rows,
    read_weights,
    to_json,
    to_latex,
    to_markdown,
    verify,
    worked_example,
    write_text_atomic,
)
from nnmath.derivation.inputs import fit_rows
from nnmath.derivation.render import summary
from nnmath.errors import ShapeError, SpecError
from nnmath.gradcheck import MAX_SAMPLES, check_size
from nnmath.losses import LOSSES, get_loss
from nnmath.outputs import check_output
from nnmath.pairing import default_loss_name
from nnmath.spec import parse_spec


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath derive`` and its options."""
    parser = subparsers.add_parser(
        "derive",
        help="write the backprop derivation of a network (and verify every equation)",
        description=textwrap.fill(
            "Write the derivation of backprop for the network SPEC: notation, forward "
            "pass, loss and cost, the output layer's gradient derived step by step, then every "
            "layer's gradients in matrix and element form with their shapes. --verify evaluates each "
            "equation on numbers against finite differences and exits 1 if any fails.",
            width=78,
        ),
        epilog="examples: nnmath derive 3-10relu-6relu-3softmax --loss cross-entropy --verify\n"
        "          nnmath derive 2-2sigmoid-2sigmoid --loss squared-error --example\n"
        "          nnmath derive 2-2sigmoid-2sigmoid --loss squared-error --notation column \\\n"
        "              --example --weights mazur.json --input 0.05,0.10 --target 0.01,0.99 \\\n"
        "              --freeze b --steps 10000 --json\n"
        "          nnmath derive 4-8relu-1sigmoid --notation column --format tex -o d.tex\n"
        "          nnmath derive '64-128relu+bn+dropout(0.3)-10softmax' --verify\n"
        "          nnmath derive 3-4relu-2softmax --l2 0.01 --weighted --verify",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", nargs="?", help="network spec, e.g. 3-10relu-6relu-3softmax")
    parser.add_argument("--loss", choices=list(LOSSES), help="loss (default: matches the output)")
    parser.add_argument("--base", type=LOG_BASE, help="log base of cross-entropy (default e)")
    parser.add_argument(
        "--notation",
        choices=NOTATIONS,
        default="row",
        help="row: one sample per row, Z = A W + 1b (default); column: z = W a + b per sample",
    )
    parser.add_argument("--format", choices=("md", "tex"), default="md", help="Markdown or LaTeX")
    parser.add_argument("-o", "--output", help="write to this file (atomically) instead of stdout")
    parser.add_argument("--verify", action="store_true", help="check every equation on numbers")
    parser.add_argument("--example", action="store_true", help="a worked example with numbers")
    parser.add_argument("--model", help="take the network and its weights from a model file")
    parser.add_argument(
        "--seed", type=SEED, help="seed for the numbers' weights and data (≥ 0, default 0)"
    )
    parser.add_argument(
        "--samples",
        type=whole(1, MAX_SAMPLES),
        help="batch size S of the numbers (default 4; 2 with --example)",
    )
    parser.add_argument(
        "--learning-rate", type=float, default=0.5, help="η of the example's SGD steps (0.5)"
    )
    _add_number_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON (exact numbers)")
    add_cost_options(parser)
    add_activation_option(parser)
    return parser


def add_cost_options(parser: argparse.ArgumentParser) -> None:
    """--l2, --l1, --per-sample and --weighted: the terms and weights of the cost."""
    cost = parser.add_argument_group("the cost")
    add_penalty_options(cost)
    cost.add_argument(
        "--per-sample",
        action="store_true",
        help="scale the penalty by 1/S (1/Σw if weighted), as scikit-learn does",
    )
    cost.add_argument(
        "--weighted",
        action="store_true",
        help="the cost is the weighted mean Σ w_s ℓ_s / Σ w_s (sample or class weights)",
    )


def cost_options(args: argparse.Namespace) -> tuple[Any, bool]:
    """(the penalty or None, weighted?) from --l2/--l1/--per-sample/--weighted."""
    from nnmath.penalties import get_penalty

    if args.per_sample and args.l2 is None and args.l1 is None:
        raise SpecError("--per-sample scales a penalty; add --l2 ALPHA or --l1 ALPHA")
    penalty = None
    for name in ("l2", "l1"):
        if getattr(args, name) is not None:
            penalty = get_penalty(name, getattr(args, name), per_sample=args.per_sample)
    return penalty, bool(args.weighted)


def cost_words(args: argparse.Namespace) -> list[str]:
    """The cost options as the command line writes them."""
    parts = [
        f"--{name} {getattr(args, name):g}"
        for name in ("l2", "l1")
        if getattr(args, name) is not None
    ]
    return (
        parts
        + (["--per-sample"] if args.per_sample else [])
        + (["--weighted"] if args.weighted else [])
    )


def _add_number_options(parser: argparse.ArgumentParser) -> None:
    """--weights, --input, --target, --steps, --every, --freeze, --digits."""
    numbers = parser.add_argument_group(
        "your own numbers (with --example, and --verify)",
        "Weights, inputs and targets of your own, e.g. a textbook example:\n"
        "--weights w.json --input 0.05,0.10 --target 0.01,0.99 --freeze b --steps 10000",
    )
    numbers.add_argument(
        "--weights",
        metavar="FILE",
        help="JSON or NPZ file of W1, b1, W2, … in the layout of --notation (a bias may be "
        "one number for the whole layer)",
    )
    numbers.add_argument(
        "--input",
        metavar="X",
        help="inputs: numbers for one sample (0.05,0.10), ';' between samples, or a CSV file",
    )
    numbers.add_argument(
        "--target", metavar="T", help="targets, as --input (one class index per row also works)"
    )
    numbers.add_argument(
        "--steps", type=int, default=1, help="steps of gradient descent (default 1)"
    )
    numbers.add_argument(
        "--every",
        type=int,
        metavar="K",
        help="report the cost every K steps (default: each of the first 20, else a tenth)",
    )
    numbers.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="NAMES",
        help="hold parameters fixed: b (every bias), W (every weight) or names such as b1,W2",
    )
    numbers.add_argument(
        "--digits",
        type=whole(1, 17),
        help="significant digits of the worked example's matrices (default 4)",
    )


def _load_model(path: str) -> Any:
    try:
        from nnmath.modelfile import load_model
    except ImportError as error:  # pragma: no cover - the module ships with nnmath
        raise SpecError(
            f"--model needs nnmath.modelfile, which cannot be imported: {error}"
        ) from None
    return load_model(path)


def command_line(args: argparse.Namespace, spec: str, loss: str) -> str:
    """The command that reproduces this document, options in a fixed order."""
    parts = ["nnmath derive", spec, f"--loss {loss}"]
    if args.base is not None:
        parts.append(f"--base {args.base:g}")
    if args.notation != "row":
        parts.append(f"--notation {args.notation}")
    parts += cost_words(args)
    for option in ("model", "weights", "input", "target"):
        if getattr(args, option, None):
            parts.append(f"--{option} {getattr(args, option)}")
    if args.example:
        parts.append("--example")
        if args.learning_rate != 0.5:
            parts.append(f"--learning-rate {args.learning_rate:g}")
        parts += [f"--freeze {','.join(args.freeze)}"] if args.freeze else []
        parts += [f"--steps {args.steps}"] if args.steps != 1 else []
        parts += [f"--every {args.every}"] if args.every else []
    if args.verify:
        parts.append("--verify")
    if (args.verify or args.example) and args.seed != 0 and not args.input:
        parts.append(f"--seed {args.seed}")
    if args.samples is not None:
        parts.append(f"--samples {args.samples}")
    return " ".join(parts)


def _refuse_what_does_not_apply(args: argparse.Namespace) -> None:
    """Options that would be ignored are refused, naming the option they need."""
    if args.weights and args.model:
        raise SpecError("give the weights with --weights or --model, not both")
    needs_numbers = [o for o in ("weights", "input", "target") if getattr(args, o)]
    if needs_numbers and not (args.example or args.verify):
        raise SpecError(f"--{needs_numbers[0]} gives numbers to --example or --verify; add one")
    example_only = [
        name
        for name, used in (
            ("steps", args.steps != 1),
            ("every", args.every is not None),
            ("freeze", bool(args.freeze)),
            ("learning-rate", args.learning_rate != 0.5),
        )
        if used
    ]
    if example_only and not args.example:
        raise SpecError(f"--{example_only[0]} applies to the worked example; add --example")
    if bool(args.input) != bool(args.target):
        raise SpecError("give --input and --target together")
    if args.input and args.samples is not None:
        raise SpecError("--samples sets the size of random data; with --input leave it out")
    _refuse_unused_number_options(args)
    if args.output is not None:
        check_output(args.output, "-o")


def _refuse_unused_number_options(args: argparse.Namespace) -> None:
    """--seed, --samples and --digits shape numbers that only --verify or --example compute."""
    numbers = [o for o in ("seed", "samples") if getattr(args, o) is not None]
    if numbers and not (args.example or args.verify):
        raise SpecError(f"--{numbers[0]} shapes the numbers of --verify or --example; add one")
    if args.seed is not None and args.input and (args.weights or args.model):
        raise SpecError(
            "--seed draws random weights or data, and --input with --weights or --model leaves "
            "nothing random; leave --seed out"
        )
    if args.digits is not None and not args.example:
        raise SpecError("--digits sets the digits of the worked example's matrices; add --example")
    if args.digits is not None and args.json:
        raise SpecError("--digits rounds the Markdown; --json writes exact numbers: give one")
    if args.json and args.format == "tex":
        raise SpecError("--json and --format tex both choose what is written; give one")


def _user_numbers(
    args: argparse.Namespace, spec: Any, network: Any
) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """The network (from --weights, --model or None) and the inputs and targets (or None)."""
    if args.weights:
        network = read_weights(args.weights, spec, args.notation)
    X = T = None
    if args.input:
        X = fit_rows(read_rows(args.input, "--input"), spec.n_in, "--input")
        T = fit_rows(read_rows(args.target, "--target"), spec.n_out, "--target")
    return network, X, T


def run(args: argparse.Namespace) -> int:
    """Derive backprop for the spec (or ``--model``), optionally verify every equation or work an
    example, and write Markdown, LaTeX or JSON; exit status 0, or 1 when a check failed."""
    register_activations(args)
    _refuse_what_does_not_apply(args)
    args.seed = 0 if args.seed is None else args.seed
    args.digits = 4 if args.digits is None else args.digits
    trained = _load_model(args.model) if args.model else None
    if args.spec is None and trained is None:
        raise SpecError("give the network's SPEC (e.g. 3-10relu-6relu-3softmax) or --model FILE")
    spec = parse_spec(args.spec) if args.spec else trained.network.spec
    if trained is not None and str(trained.network.spec) != str(spec):
        raise ShapeError(
            f"the model file holds {trained.network.spec}, not {spec}; leave SPEC out or match it"
        )
    if args.loss is None and trained is not None and args.base is None:
        loss = trained.loss
    else:
        loss = get_loss(args.loss or default_loss_name(spec.output), base=args.base)
    penalty, weighted = cost_options(args)
    derivation = derive(spec, loss, args.notation, penalty=penalty, weighted=weighted)
    command = command_line(args, str(spec), loss.name)
    network, X, T = _user_numbers(args, spec, trained.network if trained is not None else None)
    if args.verify or args.example:  # the work of the numbers' checks, before they are drawn
        check_size(spec, len(X) if X is not None else args.samples or (2 if args.example else 4))
    if args.example:
        return _example(args, derivation, network, X, T, command)
    passed = True
    if args.verify:
        problem = make_problem(
            derivation,
            samples=args.samples or 4,
            seed=args.seed,
            model=network,
            X=X,
            T=T,
            weights=_weights_label(args, network),
        )
        passed = verify(derivation, problem)
    if args.json:
        text = to_json(derivation)
    elif args.format == "tex":
        text = to_latex(derivation, command)
    else:
        text = to_markdown(derivation, command)
    _emit(text, args)
    if args.output and args.verify:
        print(summary(derivation), file=sys.stderr)
    return 0 if passed else 1


def _weights_label(args: argparse.Namespace, network: Any) -> str:
    """Where the checked weights come from, for the report ("" for random weights)."""
    return f"the weights of {args.weights or args.model}" if network is not None else ""


def _example(
    args: argparse.Namespace,
    derivation: Any,
    network: Any,
    X: np.ndarray | None,
    T: np.ndarray | None,
    command: str,
) -> int:
    if args.format == "tex":
        raise SpecError("the worked example is Markdown (or --json); leave out --format tex")
    if args.digits < 1:
        raise SpecError(f"--digits must be at least 1, got {args.digits}")
    problem = example_problem(
        derivation,
        samples=args.samples or 2,
        seed=args.seed,
        model=network,
        X=X,
        T=T,
        weights=_weights_label(args, network),
    )
    example = worked_example(
        derivation,
        problem,
        args.learning_rate,
        freeze=args.freeze,
        steps=args.steps,
        every=args.every,
    )
    text = example_json(example) if args.json else example_markdown(example, command, args.digits)
    _emit(text, args)
    return 0


def _emit(text: str, args: argparse.Namespace) -> None:
    if args.output:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
