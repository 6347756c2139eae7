"""A safe evaluator for formulas written in NumPy syntax: the derivations' equations and a user's own.

A formula is parsed and checked against a whitelist by :mod:`nnmath.derivation.syntax`, so a user's
string is never run as Python; its shapes are inferred by :mod:`nnmath.derivation.shapes` before
any arithmetic (no intermediate may exceed :data:`MAX_ELEMENTS` entries); only then is it computed
here, with the NumPy code of :mod:`nnmath.derivation.functions`. A result holding NaN or Inf is an
error, not a value. :mod:`nnmath.derivation.typeset` writes the same formulas as LaTeX.

The names of the parser, the shape inference and the typesetter are re-exported here, where they
lived before the formula language was split by role.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnmath.derivation.functions import BINARY, COMPARE, FUNCTIONS, Function
from nnmath.derivation.shapes import (
    Dim,
    FormulaShapeError,
    Shape,
    dimension,
    format_shape,
    infer_shape,
    shape_of,
)
from nnmath.derivation.syntax import (
    MAX_LENGTH,
    FormulaSyntaxError,
    Parsed,
    UnknownNameError,
    describe,
    parse,
    refuse,
)
from nnmath.derivation.typeset import shape_tex, tex_shape, to_tex
from nnmath.errors import ShapeError

__all__ = [
    "FUNCTIONS",
    "MAX_ELEMENTS",
    "MAX_LENGTH",
    "Dim",
    "FormulaShapeError",
    "FormulaSyntaxError",
    "FormulaValueError",
    "Function",
    "Parsed",
    "Shape",
    "UnknownNameError",
    "evaluate",
    "format_shape",
    "infer_shape",
    "parse",
    "shape_of",
    "shape_tex",
    "tex_shape",
    "to_tex",
]


MAX_ELEMENTS = 10_000_000


class FormulaValueError(ShapeError):
    """A formula whose value holds NaN or Inf (log of 0 or of a negative number, 0/0, overflow)."""


def _is_size(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _element_count(shape: Shape) -> int:
    return math.prod(int(d) for d in shape if isinstance(d, int))


def _check_sizes(node: ast.expr, shapes: Mapping[str, Shape], dims: Mapping[str, Dim]) -> None:
    for child in ast.walk(node):
        if isinstance(child, ast.expr) and not isinstance(child, (ast.Constant, ast.Name)):
            shape = infer_shape(child, shapes, dims)
            if _element_count(shape) > MAX_ELEMENTS:
                raise FormulaShapeError(
                    f"{ast.unparse(child)!r} would hold {_element_count(shape)} numbers; "
                    f"at most {MAX_ELEMENTS}"
                )


def _eval_call(node: ast.Call, env: Mapping[str, Any]) -> Any:
    assert isinstance(node.func, ast.Name)
    function = FUNCTIONS[node.func.id]
    if function.kind in ("ones", "eye"):
        dims = {name: int(v) for name, v in env.items() if _is_size(v)}
        return function.call(*(dimension(a, dims) for a in node.args))
    if function.kind == "einsum":
        spec = node.args[0].value  # type: ignore[attr-defined]
        return np.einsum(spec, *(np.asarray(_eval(a, env)) for a in node.args[1:]))
    args = [np.asarray(_eval(a, env)) for a in node.args]
    keywords = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return function.call(*args, **keywords)


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        value = env[node.id]
        return np.float64(value) if _is_size(value) else value
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Attribute):
        return np.asarray(_eval(node.value, env)).T
    if isinstance(node, ast.BinOp):
        return BINARY[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.Compare):
        result, left = None, _eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env)
            step = np.asarray(COMPARE[type(op)](left, right), dtype=np.float64)
            result = step if result is None else result * step
            left = right
        return result
    if isinstance(node, ast.Call):
        return _eval_call(node, env)
    raise refuse(describe(node))


def evaluate(formula: Parsed | str, env: Mapping[str, Any]) -> np.ndarray:
    """The value of a formula with the names of ``env`` bound (arrays, or ints for S and widths).

    Raises UnknownNameError (listing the names that exist), FormulaShapeError before any
    arithmetic on operands that do not conform, and FormulaValueError if the value is not finite.
    """
    parsed = parse(formula) if isinstance(formula, str) else formula
    unknown = [name for name in parsed.names if name not in env]
    if unknown:
        raise UnknownNameError(unknown, sorted(env))
    shapes = {name: shape_of(value) for name, value in env.items()}
    dims = {name: int(value) for name, value in env.items() if _is_size(value)}
    _check_sizes(parsed.expression, shapes, dims)
    with np.errstate(all="ignore"):
        value = np.asarray(_eval(parsed.expression, env), dtype=np.float64)
    if not np.all(np.isfinite(value)):
        raise FormulaValueError(
            f"{parsed.source!r} gives NaN or Inf (a log of 0 or of a negative number, a division "
            "by 0 or an overflow)"
        )
    return value
