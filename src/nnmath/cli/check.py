"""``nnmath check SPEC "dW3 = A2.T @ dZ3"``: is my backprop formula right, and if not, why not?"""

from __future__ import annotations

import argparse
import json
import textwrap

from nnmath.cli.activation import add_activation_option, register_activations
from nnmath.cli.derive import add_cost_options, cost_options
from nnmath.cli.options import LOG_BASE, SEED, whole
from nnmath.derivation import NOTATIONS, check_formula, derive, make_problem
from nnmath.gradcheck import MAX_SAMPLES, check_size
from nnmath.losses import LOSSES, get_loss
from nnmath.pairing import default_loss_name
from nnmath.spec import parse_spec


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath check`` and its options."""
    parser = subparsers.add_parser(
        "check",
        help="check your own backprop formula, and name the mistake",
        description=textwrap.fill(
            "Evaluate FORMULA (NAME = EXPRESSION, NumPy syntax, the names of "
            "'nnmath derive' in the same notation) on random numbers and compare it with the true "
            "value of NAME. Gradients other than NAME are bound to their true values, so one step "
            "of the recursion can be checked at a time. A mismatch is named where it is a common "
            "mistake: a flipped sign, a missing 1/S, a transpose, a missing activation derivative, "
            "a wrong log base, a wrong shape or a wrong layer index. Exit status: 0 correct, "
            "1 mismatch, 2 bad input. The formula is parsed, never run as Python.",
            width=78,
        ),
        epilog='examples: nnmath check 3-10relu-6relu-3softmax "dW3 = A2.T @ dZ3"\n'
        '          nnmath check 3-10relu-6relu-3softmax "dZ3 = (Yhat - Y) / S"\n'
        '          nnmath check 2-2sigmoid-2sigmoid "dZ1 = dA1 * A1 * (1 - A1)" '
        "--loss squared-error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", help="network spec, e.g. 3-10relu-6relu-3softmax")
    parser.add_argument("formula", help='NAME = EXPRESSION, e.g. "dW3 = A2.T @ (Yhat - Y) / S"')
    parser.add_argument("--loss", choices=list(LOSSES), help="loss (default: matches the output)")
    parser.add_argument("--base", type=LOG_BASE, help="log base of cross-entropy (default e)")
    parser.add_argument(
        "--notation", choices=NOTATIONS, default="row", help="row (default) or column"
    )
    parser.add_argument(
        "--seed", type=SEED, default=0, help="seed for weights and data (≥ 0, default 0)"
    )
    parser.add_argument(
        "--samples",
        type=whole(2, MAX_SAMPLES),
        default=4,
        help="batch size S (default 4; at least 2, so that a missing 1/S shows)",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    add_cost_options(parser)
    add_activation_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the formula against the derivation on random numbers and print the verdict (or JSON);
    exit status 0 when it is correct, 1 when not."""
    register_activations(args)
    spec = parse_spec(args.spec)
    loss = get_loss(args.loss or default_loss_name(spec.output), base=args.base)
    penalty, weighted = cost_options(args)
    derivation = derive(spec, loss, args.notation, penalty=penalty, weighted=weighted)
    check_size(spec, args.samples)  # derive refused a loss that does not fit the output
    problem = make_problem(derivation, samples=args.samples, seed=args.seed)
    verdict = check_formula(derivation, problem, args.formula)
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False))
        return 0 if verdict.correct else 1
    where = f"{problem.source}, S = {problem.S}"
    if verdict.correct:
        print(f"✓ correct: {verdict.formula}")
        print(f"  checked on {where}: rel. error {verdict.relative_error:.1e}")
        return 0
    print(f"✗ {verdict.mistake}: {verdict.explanation}")
    print(
        f"  you wrote: {verdict.formula}" + (f"   (shape {verdict.shape})" if verdict.shape else "")
    )
    print(f"  correct:   {verdict.correct_formula}   (shape {verdict.expected_shape})")
    print(f"  LaTeX:     {verdict.correct_tex}")
    print(f"  checked on {where}")
    return 1
