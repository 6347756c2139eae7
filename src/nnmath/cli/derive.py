"""``nnmath derive SPEC``: the backprop derivation of a network, every equation optionally checked."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from nnmath.derivation import (
    NOTATIONS,
    derive,
    example_json,
    example_markdown,
    example_problem,
    make_problem,
    to_json,
    to_latex,
    to_markdown,
    verify,
    worked_example,
    write_text_atomic,
)
from nnmath.derivation.render import summary
from nnmath.errors import ShapeError, SpecError
from nnmath.gradcheck import default_loss_name
from nnmath.losses import LOSSES, get_loss
from nnmath.spec import parse_spec


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
        "          nnmath derive 4-8relu-1sigmoid --notation column --format tex -o d.tex",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", nargs="?", help="network spec, e.g. 3-10relu-6relu-3softmax")
    parser.add_argument("--loss", choices=list(LOSSES), help="loss (default: matches the output)")
    parser.add_argument("--base", type=float, help="log base of cross-entropy (default e)")
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
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and data (default 0)")
    parser.add_argument(
        "--samples", type=int, help="batch size S of the numbers (default 4; 2 with --example)"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=0.5, help="η of the example's SGD step (0.5)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON (exact numbers)")
    return parser


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
    if args.model:
        parts.append(f"--model {args.model}")
    if args.example:
        parts.append("--example")
        if args.learning_rate != 0.5:
            parts.append(f"--learning-rate {args.learning_rate:g}")
    if args.verify:
        parts.append("--verify")
    if (args.verify or args.example) and args.seed != 0:
        parts.append(f"--seed {args.seed}")
    if args.samples is not None:
        parts.append(f"--samples {args.samples}")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
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
    derivation = derive(spec, loss, args.notation)
    command = command_line(args, str(spec), loss.name)
    network = trained.network if trained is not None else None
    if args.example:
        if args.format == "tex":
            raise SpecError("the worked example is Markdown (or --json); leave out --format tex")
        problem = example_problem(
            derivation, samples=args.samples or 2, seed=args.seed, model=network
        )
        example = worked_example(derivation, problem, args.learning_rate)
        _emit(example_json(example) if args.json else example_markdown(example, command), args)
        return 0
    passed = True
    if args.verify:
        problem = make_problem(derivation, samples=args.samples or 4, seed=args.seed, model=network)
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


def _emit(text: str, args: argparse.Namespace) -> None:
    if args.output:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
