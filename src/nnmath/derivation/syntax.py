"""Parsing formulas written in NumPy syntax, and the whitelist that keeps them safe.

A formula is ``NAME = EXPRESSION`` (or an expression alone), for example ``dW3 = A2.T @ dZ3``. It is
parsed with :mod:`ast` and only a whitelist is accepted:

- names bound by the caller (the forward pass's values, targets, gradients, S and the widths n0 … nK)
  and number constants;
- the operators ``+ - * / @ **``, unary ``-``/``+`` and comparisons ``< <= > >=`` (which give 0/1
  arrays, so ``(Z2 > 0)`` is ReLU's mask);
- the attribute ``.T`` (transpose) and nothing else;
- calls of the functions in :data:`~nnmath.derivation.functions.FUNCTIONS` by name, with the
  keywords ``axis=`` and ``keepdims=`` (constants) where a function takes them, and a constant
  subscript string as einsum's first argument.

Everything else (other attributes, subscripts, lambdas, comprehensions, strings, builtins, imports)
is refused with :class:`FormulaSyntaxError` before anything runs, so a user's string is never run as
Python. A formula is at most :data:`MAX_LENGTH` characters, nests at most :data:`MAX_DEPTH` levels
deep (measured without recursion, before anything recursive walks it), and its numbers are finite
floats (a 1,900-digit integer or ``1e999`` is refused, not turned into an overflow).
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from dataclasses import dataclass

from nnmath.derivation.functions import BINARY, COMPARE, FUNCTIONS
from nnmath.errors import SpecError

MAX_LENGTH = 2000
MAX_DEPTH = 100


class FormulaSyntaxError(SpecError):
    """A formula that is not in the allowed NumPy subset (or is not a formula at all)."""


class UnknownNameError(FormulaSyntaxError):
    """A formula that uses names the derivation does not define; ``unknown`` and ``known`` list them."""

    def __init__(self, unknown: list[str], known: list[str]) -> None:
        self.unknown = unknown
        self.known = known
        super().__init__(
            f"unknown name{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"the names that exist are: {', '.join(known)}"
        )


_EINSUM = re.compile(r"^[a-z]+(,[a-z]+)*->[a-z]*$")
_OPERATOR_NAMES = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Not: "not",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def describe(node: ast.AST) -> str:
    """A construct the whitelist refuses, in words ('a lambda', 'indexing with [...]')."""
    names = {
        ast.Lambda: "a lambda",
        ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.GeneratorExp: "a generator expression",
        ast.Subscript: "indexing with [...]",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.IfExp: "an if-expression",
        ast.BoolOp: "and/or",
        ast.NamedExpr: "the := operator",
        ast.JoinedStr: "an f-string",
        ast.Await: "await",
        ast.Yield: "yield",
        ast.Starred: "*unpacking",
        ast.Slice: "a slice",
    }
    return names.get(type(node), f"the construct {type(node).__name__}")


def refuse(what: str) -> FormulaSyntaxError:
    """The error for a refused construct, listing what a formula may use instead."""
    return FormulaSyntaxError(
        f"{what} is not allowed in a formula; use names, numbers, + - * / @ **, comparisons, "
        f".T and the functions {', '.join(FUNCTIONS)}"
    )


def shown(text: str, width: int = 80) -> str:
    """``text`` quoted for a one-line message: repr, cut to ``width`` characters with an ellipsis."""
    quoted = repr(text)
    return quoted if len(quoted) <= width else quoted[: width - 2] + "…" + quoted[-1]


@dataclass(frozen=True)
class Parsed:
    """A validated formula: the name it defines (or None) and its right-hand side."""

    target: str | None
    expression: ast.expr
    source: str

    @property
    def names(self) -> list[str]:
        """The names the right-hand side uses, in order of first appearance (functions excluded)."""
        nodes = list(ast.walk(self.expression))
        called = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
        seen: dict[str, None] = {}
        for node in nodes:
            if isinstance(node, ast.Name) and id(node) not in called:
                seen.setdefault(node.id, None)
        return list(seen)


def _validate(node: ast.AST) -> None:
    """Raise FormulaSyntaxError unless every node is on the whitelist."""
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise refuse(f"the name {node.id!r}")
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise refuse(f"the constant {node.value!r:.60}")
        _check_number(node.value)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in BINARY:
            raise refuse(
                f"the operator {_OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)}"
            )
        _validate(node.left)
        _validate(node.right)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise refuse(
                f"the operator {_OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)}"
            )
        _validate(node.operand)
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in COMPARE:
                raise refuse(f"the comparison {_OPERATOR_NAMES.get(type(op), type(op).__name__)}")
        for child in (node.left, *node.comparators):
            _validate(child)
        return
    if isinstance(node, ast.Attribute):
        if node.attr != "T":
            raise refuse(f"the attribute .{node.attr} (only .T, the transpose, is)")
        _validate(node.value)
        return
    if isinstance(node, ast.Call):
        _validate_call(node)
        return
    raise refuse(describe(node))


def _check_number(value: int | float) -> None:
    """A number must be a finite float: no 1,900-digit integer, no 1e999."""
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        text = str(value) if isinstance(value, float) else f"{str(value)[:12]}… ({len(str(value))} digits)"
        raise FormulaSyntaxError(
            f"the number {text} is too large: numbers in a formula must be finite floats "
            "(at most about 1.8e308 in magnitude)"
        )


def depth(node: ast.AST) -> int:
    """How deeply ``node`` nests (a name is 1, ``-x`` is 2), counted with a stack, not recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend(
            (child, level + isinstance(child, ast.expr)) for child in ast.iter_child_nodes(current)
        )
    return deepest


def _validate_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        raise FormulaSyntaxError(
            f"calling {called!r} is not allowed; the functions a formula may call are: "
            f"{', '.join(FUNCTIONS)}"
        )
    name = node.func.id
    function = FUNCTIONS[name]
    args = list(node.args)
    if any(isinstance(a, ast.Starred) for a in args):
        raise refuse("*arguments")
    if name == "einsum":
        if not args or not (isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
            raise FormulaSyntaxError(
                "einsum needs a subscript string first, e.g. einsum('sk,si->ki', A, B)"
            )
        subscripts = args[0].value
        if not _EINSUM.match(subscripts) or len(subscripts) > 40:
            raise FormulaSyntaxError(
                f"einsum subscripts {shown(subscripts, 50)} must look like 'sk,si->ki' (letters only)"
            )
        inputs, output = subscripts.split("->")
        if len(set(output)) != len(output) or not set(output) <= set(inputs):
            raise FormulaSyntaxError(
                f"einsum subscripts {subscripts!r}: each output index must appear once, and in "
                "an input, e.g. 'sk,si->ki'"
            )
        args = args[1:]
    if function.arity is not None and len(args) != function.arity:
        raise FormulaSyntaxError(f"{name} takes {function.arity} argument(s), got {len(args)}")
    for arg in args:
        _validate(arg)
    for keyword in node.keywords:
        if function.kind != "reduce" or keyword.arg not in ("axis", "keepdims"):
            raise FormulaSyntaxError(
                f"{name} takes no keyword {keyword.arg!r}"
                + ("; sum and mean take axis= and keepdims=" if keyword.arg else "")
            )
        value = keyword.value
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            value = value.operand
        constant = value.value if isinstance(value, ast.Constant) else None
        if keyword.arg == "axis" and not (
            isinstance(constant, int) and not isinstance(constant, bool) and constant < 64
        ):
            raise FormulaSyntaxError("axis= must be a constant, a small integer such as axis=0")
        if keyword.arg == "keepdims" and not isinstance(constant, bool):
            raise FormulaSyntaxError("keepdims= must be a constant, True or False")


def parse(text: str, *, require_target: bool = False) -> Parsed:
    """Parse and validate ``NAME = EXPRESSION`` (or an expression alone, unless a target is required)."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaSyntaxError("the formula is empty; write e.g. 'dW3 = A2.T @ dZ3'")
    if len(text) > MAX_LENGTH:
        raise FormulaSyntaxError(
            f"the formula is {len(text)} characters long; at most {MAX_LENGTH}"
        )
    source = text.strip()
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: errors below
            warnings.simplefilter("ignore")
            module = ast.parse(source, mode="exec")
    except SyntaxError as error:
        raise FormulaSyntaxError(
            f"cannot read {shown(source)} as a formula ({error.msg}); write NAME = EXPRESSION in NumPy "
            "syntax, e.g. 'dW3 = A2.T @ dZ3'"
        ) from None
    except (ValueError, RecursionError, MemoryError):
        raise FormulaSyntaxError(f"cannot read {shown(source)} as a formula") from None
    if len(module.body) != 1:
        raise FormulaSyntaxError("write one formula, NAME = EXPRESSION, not several statements")
    statement = module.body[0]
    target: str | None = None
    if isinstance(statement, ast.Assign):
        if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
            raise FormulaSyntaxError("the left-hand side must be one name, e.g. 'dW3 = ...'")
        target = statement.targets[0].id
        expression = statement.value
    elif isinstance(statement, ast.Expr):
        expression = statement.value
    else:
        raise FormulaSyntaxError(
            f"a {type(statement).__name__} statement is not a formula; write NAME = EXPRESSION"
        )
    if require_target and target is None:
        raise FormulaSyntaxError(
            f"say which gradient the formula gives: write NAME = EXPRESSION, e.g. "
            f"'dW3 = {shown(source)[1:-1]}'"
        )
    nesting = depth(expression)
    if nesting > MAX_DEPTH:
        raise FormulaSyntaxError(
            f"the formula nests {nesting} levels deep; at most {MAX_DEPTH} (write it in steps)"
        )
    _validate(expression)
    return Parsed(target, expression, source)
