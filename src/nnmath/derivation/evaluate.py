"""A safe evaluator for formulas written in NumPy syntax: the derivations' equations and a user's own.

A formula is parsed and checked against a whitelist by :mod:`nnmath.derivation.syntax`, so a user's
string is never run as Python; its shapes are inferred by :mod:`nnmath.derivation.shapes` and its
work and memory estimated by :mod:`nnmath.derivation.budget` before any arithmetic (a formula over
its :class:`~nnmath.derivation.budget.Budget` is refused); only then is it computed here, with the
NumPy code of :mod:`nnmath.derivation.functions`, a meter checking memory and the clock between
operations. A result holding NaN or Inf is an error, not a value. :mod:`nnmath.derivation.typeset`
writes the same formulas as LaTeX.

The names of the parser, the shape inference and the typesetter are re-exported here, where they
lived before the formula language was split by role.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnmath.derivation.budget import (
    DEFAULT_BUDGET,
    MAX_ELEMENTS,
    TRUSTED,
    Budget,
    FormulaBudgetError,
    Meter,
    estimate,
    refuse_over,
)
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
    shown,
)
from nnmath.derivation.typeset import shape_tex, tex_shape, to_tex
from nnmath.errors import NNMathError, ShapeError

__all__ = [
    "DEFAULT_BUDGET",
    "FUNCTIONS",
    "MAX_ELEMENTS",
    "MAX_LENGTH",
    "TRUSTED",
    "Budget",
    "Dim",
    "FormulaBudgetError",
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



class FormulaValueError(ShapeError):
    """A formula whose value holds NaN or Inf (log of 0 or of a negative number, 0/0, overflow)."""


def _is_size(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _eval_call(node: ast.Call, env: Mapping[str, Any], meter: Meter) -> Any:
    assert isinstance(node.func, ast.Name)
    function = FUNCTIONS[node.func.id]
    if function.kind in ("ones", "eye"):
        dims = {name: int(v) for name, v in env.items() if _is_size(v)}
        return function.call(*(dimension(a, dims) for a in node.args))
    if function.kind == "einsum":
        spec = node.args[0].value  # type: ignore[attr-defined]
        return np.einsum(spec, *(np.asarray(_eval(a, env, meter)) for a in node.args[1:]))
    args = [np.asarray(_eval(a, env, meter)) for a in node.args]
    keywords = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return function.call(*args, **keywords)


def _eval(node: ast.expr, env: Mapping[str, Any], meter: Meter) -> Any:
    if isinstance(node, ast.Name):
        value = env[node.id]
        return np.float64(value) if _is_size(value) else value
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.Attribute):
        return np.asarray(_eval(node.value, env, meter)).T
    return meter.charge(_operation(node, env, meter))


def _operation(node: ast.expr, env: Mapping[str, Any], meter: Meter) -> Any:
    """One operation that makes a new value: an operator, a comparison or a call."""
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env, meter)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        left = _eval(node.left, env, meter)
        return BINARY[type(node.op)](left, _eval(node.right, env, meter))
    if isinstance(node, ast.Compare):
        result, left = None, _eval(node.left, env, meter)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env, meter)
            step = np.asarray(COMPARE[type(op)](left, right), dtype=np.float64)
            result = step if result is None else result * step
            left = right
        return result
    if isinstance(node, ast.Call):
        return _eval_call(node, env, meter)
    raise refuse(describe(node))


def evaluate(
    formula: Parsed | str,
    env: Mapping[str, Any],
    *,
    budget: Budget = DEFAULT_BUDGET,
    deadline: float | None = None,
) -> np.ndarray:
    """The value of a formula with the names of ``env`` bound (arrays, or ints for S and widths).

    Raises UnknownNameError (listing the names that exist), FormulaShapeError before any
    arithmetic on operands that do not conform, FormulaBudgetError before any arithmetic when the
    formula's estimated work or memory exceeds ``budget`` (and during it, at the budget's memory
    cap or time limit, or at ``deadline``, a ``time.monotonic()`` value), and FormulaValueError if
    the value is not finite. The derivations' own equations are evaluated with ``budget=TRUSTED``.
    """
    parsed = parse(formula) if isinstance(formula, str) else formula
    unknown = [name for name in parsed.names if name not in env]
    if unknown:
        raise UnknownNameError(unknown, sorted(env))
    shapes = {name: shape_of(value) for name, value in env.items()}
    dims = {name: int(value) for name, value in env.items() if _is_size(value)}
    refuse_over(estimate(parsed.expression, shapes, dims), budget)
    meter = Meter(budget, deadline)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice": NaN, below
            value = np.asarray(_eval(parsed.expression, env, meter), dtype=np.float64)
    except NNMathError:
        raise
    except MemoryError:
        raise FormulaBudgetError(f"{shown(parsed.source)} ran out of memory") from None
    except (ValueError, TypeError, ArithmeticError) as error:  # a case the shape check missed
        raise FormulaShapeError(
            f"NumPy cannot evaluate {shown(parsed.source)}: {str(error).splitlines()[0]}"
        ) from None
    if not np.all(np.isfinite(value)):
        raise FormulaValueError(
            f"{shown(parsed.source)} gives NaN or Inf (a log of 0 or of a negative number, a "
            "division by 0 or an overflow)"
        )
    return value
