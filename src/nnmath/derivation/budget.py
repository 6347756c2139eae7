"""What a formula may cost: estimated from the shapes before it is evaluated, metered while it is.

A formula is a short string that can ask for a great deal of work: ``einsum('ab,cd,ef->', …)`` loops
over every index of every operand at once, sixty chained 3000 × 3000 products take minutes, a chain
of ``**`` over large arrays fills the memory. So the evaluator, before any arithmetic,

1. estimates the work and memory of the whole formula from its operands' shapes
   (:func:`estimate`) and refuses one over the :class:`Budget`:

   - a matrix product (m × k)(k × n): 2mkn operations;
   - ``einsum``, which NumPy evaluates as one loop over all its indices (no path optimisation,
     so no hidden intermediates): the product of every index's size, times the operands;
   - ``vjp(G, J)``: 2 S n m; a reduction: one per entry of its argument;
   - an entry-by-entry operation: one per entry of its result, ten for ``exp``, ``log``,
     ``tanh``, ``sigmoid`` and ``**``;
   - memory: 8 bytes per entry of every intermediate value, summed over all of them (``.T`` is
     a view and costs nothing), and no single value above ``elements`` entries;

2. meters the evaluation (:class:`Meter`): after each operation it adds the bytes of the value
   just made and reads the clock, and stops at the memory cap or the wall-clock limit;

and the parser (:mod:`nnmath.derivation.syntax`) bounds the length, the nesting depth and the
numbers of a formula. Every refusal is a :class:`FormulaBudgetError`: one line that says what is
too large, by how much, and where.
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnmath.derivation.functions import FUNCTIONS, POWER_WORK
from nnmath.derivation.shapes import Dim, Shape, infer_shape
from nnmath.errors import SpecError

MAX_ELEMENTS = 10_000_000
BYTES_PER_ENTRY = 8  # float64


class FormulaBudgetError(SpecError):
    """A formula that would take (or took) more work, memory or time than its budget allows."""


@dataclass(frozen=True)
class Budget:
    """The most a formula may cost: estimated operations, bytes of all intermediates together,
    entries of one value, and seconds of evaluation."""

    operations: float = 2e8
    memory: float = 256 * 2**20
    elements: int = MAX_ELEMENTS
    seconds: float = 1.0


DEFAULT_BUDGET = Budget()
"""The budget of a user's formula (``nnmath check``, :func:`~nnmath.derivation.evaluate`)."""

TRUSTED = Budget(operations=math.inf, memory=math.inf, seconds=math.inf)
"""The budget of a derivation's own equations: only the size of one value is bounded."""


def _int(d: Dim) -> int:
    """A size; a symbolic one ("S") counts as 1 (the evaluator's shapes are concrete)."""
    return int(d) if isinstance(d, int) else 1


def _size(shape: Shape) -> int:
    return math.prod(_int(d) for d in shape)


def _text(node: ast.AST, width: int = 60) -> str:
    code = ast.unparse(node)
    return code if len(code) <= width else code[: width - 1] + "…"


def _number(x: float) -> str:
    """3e12 → '3.0e12'; small numbers as they are."""
    if x < 1e4:
        return f"{x:g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _bytes(n: float) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:g} bytes"


@dataclass
class Estimate:
    """The operations and bytes of a formula, with the sub-expressions that cost the most."""

    operations: float = 0.0
    memory: float = 0.0
    costliest: tuple[float, str] = (0.0, "")  # operations, sub-expression
    largest: tuple[int, str] = (0, "")  # entries, sub-expression

    def add(self, node: ast.expr, operations: float, entries: int) -> None:
        """Count one sub-expression: its operations, the bytes of its entries, and whether it is the
        costliest or the largest so far."""
        self.operations += operations
        self.memory += BYTES_PER_ENTRY * entries
        if operations > self.costliest[0]:
            self.costliest = (operations, _text(node))
        if entries > self.largest[0]:
            self.largest = (entries, _text(node))


def _operations(node: ast.expr, result: Shape, shape_of: Any) -> float:
    """The operations that computing ``node`` takes, its operands given."""
    entries = _size(result)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        a, b = shape_of(node.left), shape_of(node.right)
        rows = _size(a[:-1])
        columns = _int(b[-1]) if len(b) == 2 else 1
        return 2.0 * rows * _int(a[-1]) * columns
    if isinstance(node, ast.BinOp):
        return float(entries * (POWER_WORK if isinstance(node.op, ast.Pow) else 1))
    if isinstance(node, ast.Compare):
        return float(entries * len(node.ops))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        function = FUNCTIONS[node.func.id]
        if function.kind == "einsum":
            letters: dict[str, int] = {}
            subscripts = node.args[0].value.split("->")[0].split(",")  # type: ignore[attr-defined]
            for names, operand in zip(subscripts, node.args[1:], strict=True):
                letters.update(zip(names, (_int(d) for d in shape_of(operand)), strict=True))
            return float(math.prod(letters.values()) * max(1, len(subscripts)))
        if function.kind == "vjp":
            g, J = shape_of(node.args[0]), shape_of(node.args[1])
            return 2.0 * _size(g) * _int(J[-1])
        if function.kind == "reduce":
            return float(_size(shape_of(node.args[0])))
        return float(entries * function.work * max(1, len(node.args)))
    return float(entries)


def estimate(
    expression: ast.expr, shapes: Mapping[str, Shape], dims: Mapping[str, Dim]
) -> Estimate:
    """The work and memory of evaluating ``expression``, from its operands' shapes alone.

    Raises FormulaShapeError (or UnknownNameError) where the shapes do not conform, as
    :func:`~nnmath.derivation.shapes.infer_shape` does, before anything is computed.
    """
    cache: dict[int, Shape] = {}

    def shape_of(node: ast.expr) -> Shape:
        return infer_shape(node, shapes, dims, cache)

    total = Estimate()
    for node in ast.walk(expression):
        if not isinstance(node, ast.expr) or isinstance(node, (ast.Name, ast.Constant)):
            continue
        if isinstance(node, ast.Attribute):  # .T is a view
            shape_of(node)
            continue
        result = shape_of(node)
        total.add(node, _operations(node, result, shape_of), _size(result))
    return total


def refuse_over(cost: Estimate, budget: Budget) -> None:
    """Raise FormulaBudgetError, with the numbers, when ``cost`` exceeds ``budget``."""
    entries, where = cost.largest
    if entries > budget.elements:
        raise FormulaBudgetError(
            f"{where} would hold {entries} numbers; one value may hold at most {budget.elements}"
        )
    if cost.operations > budget.operations:
        operations, costliest = cost.costliest
        raise FormulaBudgetError(
            f"the formula would take about {_number(cost.operations)} operations, "
            f"{_number(operations)} of them in {costliest}; the limit is "
            f"{_number(budget.operations)}: use smaller operands or fewer products"
        )
    if cost.memory > budget.memory:
        raise FormulaBudgetError(
            f"the formula's intermediate values would take {_bytes(cost.memory)} together (the "
            f"largest, {where}, {_bytes(BYTES_PER_ENTRY * entries)}); the limit is "
            f"{_bytes(budget.memory)}: use smaller operands or fewer of them"
        )


class Meter:
    """Counts the bytes an evaluation makes and watches the clock, between operations."""

    def __init__(self, budget: Budget, deadline: float | None = None) -> None:
        self.budget = budget
        self.start = time.monotonic()
        self.deadline = self.start + budget.seconds
        if deadline is not None:
            self.deadline = min(self.deadline, deadline)
        self.memory = 0.0

    def charge(self, value: Any) -> Any:
        """Account for ``value`` (just computed); stop at the memory cap or the time limit."""
        self.memory += float(getattr(value, "nbytes", BYTES_PER_ENTRY))
        if self.memory > self.budget.memory:
            raise FormulaBudgetError(
                f"the evaluation stopped at {_bytes(self.memory)} of intermediate values; the "
                f"limit is {_bytes(self.budget.memory)}"
            )
        now = time.monotonic()
        if now > self.deadline:
            raise FormulaBudgetError(
                f"the evaluation stopped after {now - self.start:.2g} s; the limit is "
                f"{self.deadline - self.start:.2g} s"
            )
        return value
