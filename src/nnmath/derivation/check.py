"""Check a user's own backprop formula, and name the mistake when it is a common one.

``check_formula(derivation, problem, "dW3 = A2.T @ (Yhat - Y)")`` evaluates the right-hand side with
the safe evaluator, the derivation's names bound to the forward pass's values and to the true
gradients (from nnmath's backward pass, so that one step of the recursion can be checked at a time;
the target itself is left out), and compares it with the true value of the left-hand side.

On a mismatch it names the mistake where it recognises one, in this order:

1. the value as a whole is a known distortion of the truth (:mod:`nnmath.derivation.mistakes`):
   a constant factor that a convention explains, the transpose, a left-out activation
   derivative, the softmax Jacobian's diagonal, the fused gradient's misplaced Ŷ;
2. the formula becomes right when one factor is transposed (or its transpose removed), which
   names the factor, or when one layer index changes (Z_2 = A_1 W_1 + b_2);
3. otherwise its shape is wrong, or it is a plain mismatch.

A user's formula is evaluated under the evaluator's budget (:mod:`nnmath.derivation.budget`); the
whole check, diagnoses included, shares one wall-clock limit, and a diagnosis that would pass it
is left out.
"""

from __future__ import annotations

import ast
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmath.derivation.budget import DEFAULT_BUDGET, Budget, FormulaBudgetError
from nnmath.derivation.document import Derivation
from nnmath.derivation.evaluate import FormulaValueError, evaluate
from nnmath.derivation.mistakes import (
    MATCH_RTOL,
    Variant,
    describe_factor,
    explain_factor,
    factors,
    fit,
    true_values,
    variant_words,
    variants,
)
from nnmath.derivation.shapes import FormulaShapeError, Shape, format_shape, infer_shape
from nnmath.derivation.syntax import Parsed, UnknownNameError, parse
from nnmath.derivation.verify import Problem, environment
from nnmath.errors import NNMathError, SpecError
from nnmath.gradcheck import relative_error

__all__ = [
    "MATCH_RTOL",
    "Variant",
    "Verdict",
    "check_formula",
    "checkable",
    "expanded",
    "true_values",
]


@dataclass
class Verdict:
    """The outcome of checking one formula."""

    correct: bool
    target: str
    mistake: str  # "" when correct; else e.g. "flipped sign", "missing 1/S", "transposed"
    explanation: str
    formula: str  # what the user wrote
    correct_formula: str  # the derivation's code for the target
    correct_tex: str
    relative_error: float
    shape: str  # the shape of the user's value ("" when it could not be computed)
    expected_shape: str

    def _repr_markdown_(self) -> str:
        """The verdict as a notebook shows it: the mistake, what was written, what is right."""
        head = "**✓ correct**" if self.correct else f"**✗ {self.mistake}**: {self.explanation}"
        rows = [
            head,
            "",
            f"- you wrote: `{self.formula}`" + (f" (shape {self.shape})" if self.shape else ""),
            f"- correct: `{self.correct_formula}` (shape {self.expected_shape})",
        ]
        if self.correct_tex:
            rows += ["", f"$${self.correct_tex}$$"]
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """The verdict as JSON's data (``nnmath check --json``); a non-finite error becomes null."""
        return {
            "correct": self.correct,
            "target": self.target,
            "mistake": self.mistake or None,
            "explanation": self.explanation,
            "formula": self.formula,
            "correct_formula": self.correct_formula,
            "correct_latex": self.correct_tex,
            "relative_error": self.relative_error if math.isfinite(self.relative_error) else None,
            "shape": self.shape,
            "expected_shape": self.expected_shape,
        }


def expanded(derivation: Derivation, target: str) -> str:
    """The derivation's formula for ``target``, with the output layer's names (∂ℓ/∂…, dZ_K)
    written out: ``dZ2 = dl_dZ2 / S, i.e. dZ2 = ((Yhat - Y) * (Yhat * (1 - Yhat))) / S``."""
    equation = derivation.defining(target)
    assert equation is not None
    code = equation.code
    for _ in range(len(derivation.sections) * 4):
        output = (f"J{derivation.K}", f"dZ{derivation.K}")
        names = [n for n in parse(code).names if n.startswith("dl_") or n in output]
        if not names:
            break
        for name in names:
            definition = derivation.defining(name)
            assert definition is not None
            code = re.sub(rf"\b{name}\b", f"({definition.code})", code)
    if code == equation.code:
        return equation.assignment
    return f"{equation.assignment}, i.e. {target} = {code}"


def checkable(derivation: Derivation) -> list[str]:
    """The names a formula may define: gradients, forward quantities and the cost."""
    names = [
        code
        for code in derivation.symbols
        if code not in ("S", "Y", "X")
        and not (code.startswith("n") and code[1:].isdigit())
        and not code.startswith("W")
        and not code.startswith("b")
    ]
    return names


# ---- the case at hand ----------------------------------------------------------------------------


@dataclass
class _Case:
    """One check: the formula, the names it may use, the truth, and the clock."""

    derivation: Derivation
    problem: Problem
    parsed: Parsed
    env: dict[str, Any]
    truth: np.ndarray
    budget: Budget
    deadline: float
    shapes: dict[str, Shape] = field(default_factory=dict)
    dims: dict[str, Any] = field(default_factory=dict)
    out_of_time: bool = False

    @property
    def target(self) -> str:
        assert self.parsed.target is not None
        return self.parsed.target

    @property
    def expected(self) -> Shape:
        return self.derivation.symbols[self.target].shape

    def value(self, tree: ast.expr) -> np.ndarray:
        """The value of ``tree`` under the budget, reshaped to the truth's orientation."""
        parsed = Parsed(None, tree, ast.unparse(tree))
        value = evaluate(parsed, self.env, budget=self.budget, deadline=self.deadline)
        return _oriented(value, self.truth)

    def attempt(self, tree: ast.expr) -> np.ndarray | None:
        """The value of a rewritten formula, or None if it does not fit or the time is up."""
        if self.out_of_time:
            return None
        try:
            return self.value(tree)
        except FormulaBudgetError:
            self.out_of_time = time.monotonic() > self.deadline
            return None
        except NNMathError:
            return None

    def symbolic_shape(self, tree: ast.expr) -> Shape | None:
        try:
            return infer_shape(tree, self.shapes, self.dims)
        except NNMathError:
            return None


def _case(derivation: Derivation, problem: Problem, parsed: Parsed, budget: Budget) -> _Case:
    """The names bound for a check: the forward pass and every true gradient but the target's."""
    target = parsed.target
    assert target is not None
    allowed = checkable(derivation)
    if target not in allowed:
        raise SpecError(
            f"{target!r} is not a quantity of this derivation that can be checked; the left-hand "
            f"side must be one of: {', '.join(allowed)}"
        )
    env = environment(derivation, problem)
    table = true_values(derivation, problem)
    truth = env[target] if target in env else table[target]
    related = {
        target,
        target.replace("dl_d", "d"),
        "dl_" + target if target.startswith("d") else "",
    }
    env.update({name: value for name, value in table.items() if name not in env})
    for name in related:
        env.pop(name, None)
    unknown = [name for name in parsed.names if name not in env]
    if unknown:
        raise UnknownNameError(unknown, sorted(env))
    shapes, dims = derivation.shapes()
    for name in env:
        shapes.setdefault(name, tuple(np.shape(env[name])))
    deadline = time.monotonic() + budget.seconds
    return _Case(derivation, problem, parsed, env, truth, budget, deadline, shapes, dims)


# ---- checking ----------------------------------------------------------------------------------


def check_formula(
    derivation: Derivation, problem: Problem, formula: str, *, budget: Budget = DEFAULT_BUDGET
) -> Verdict:
    """Compare a user's ``NAME = EXPRESSION`` with the true value of NAME; name the mistake.

    Raises FormulaSyntaxError (a formula that is not in the allowed NumPy subset),
    UnknownNameError, and FormulaBudgetError when the formula is too costly to evaluate.
    """
    case = _case(derivation, problem, parse(formula, require_target=True), budget)
    with np.errstate(all="ignore"):  # a user's value may be huge; comparing it is no error
        return _checked(case)


def _checked(case: _Case) -> Verdict:
    expression = case.parsed.expression
    try:
        symbolic = infer_shape(expression, case.shapes, case.dims)
    except FormulaShapeError as error:
        named = _rewritten(case)
        if named:
            return _verdict(case, *named, math.inf, "")
        return _verdict(case, "wrong shape", f"the shapes do not fit: {error}", math.inf, "")
    try:
        U = case.value(expression)
    except FormulaValueError as error:
        return _verdict(case, "not finite", str(error), math.inf, "")
    shape = format_shape(symbolic)
    fits = _same_shape(symbolic, case.expected) and U.shape == case.truth.shape
    error = relative_error(U, case.truth) if U.shape == case.truth.shape else math.inf
    if fits and error <= MATCH_RTOL:
        return _verdict(case, "", f"{case.target} is correct", error, shape)
    named = _classified(case, U) or _rewritten(case)
    if named:
        return _verdict(case, *named, error, shape)
    if not fits:
        expected = format_shape(case.expected)
        words = f"your formula gives a value of shape {shape}; {case.target} has shape {expected}"
        return _verdict(case, "wrong shape", words, error, shape)
    words = f"{case.target} differs from the true value (rel. error {error:.2g})"
    return _verdict(case, "mismatch", words, error, shape)


def _verdict(case: _Case, mistake: str, explanation: str, error: float, shape: str) -> Verdict:
    derivation, target = case.derivation, case.target
    correct = derivation.defining(target)
    return Verdict(
        correct=not mistake,
        target=target,
        mistake=mistake,
        explanation=explanation,
        formula=case.parsed.source,
        correct_formula=expanded(derivation, target) if correct else "",
        correct_tex=f"{correct.lhs} = {correct.tex}" if correct else "",
        relative_error=error,
        shape=shape,
        expected_shape=format_shape(case.expected),
    )


def _same_shape(a: tuple, b: tuple) -> bool:
    """Equal shapes, or a vector (n,) against a row (1, n) or a column (n, 1) of the same n."""
    if a == b:
        return True
    if len(a) == 2 and len(b) == 1:
        a, b = b, a
    return len(a) == 1 and len(b) == 2 and b in ((1, a[0]), (a[0], 1))


def _oriented(U: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """A vector given as 1-D where the truth is a row or a column (or the other way) is reshaped."""
    if U.shape != truth.shape and U.size == truth.size and (U.ndim == 1 or truth.ndim == 1):
        return U.reshape(truth.shape)
    return U


# ---- 1. the value as a known distortion of the truth -----------------------------------------


def _explained(case: _Case, U: np.ndarray, reference: np.ndarray) -> list[str] | None:
    """[mistake, explanation] parts when U is c·reference or c·referenceᵀ with c explained."""
    for transposed in (False, True):
        if transposed and reference.ndim < 2:
            continue
        B = reference.T if transposed else reference
        c = fit(U, B)
        if c is None:
            continue
        explanations = explain_factor(c, factors(case.derivation, case.problem.S))
        mistake, words = describe_factor(case.target, c, explanations)
        parts = [(mistake, words)] if mistake else []
        if transposed:
            parts.insert(0, ("transposed", _transposed_words(case.derivation)))
        return parts
    return None


def _transposed_words(derivation: Derivation) -> str:
    layout = (
        "in the row notation W is in×out, Z = A W + 1b"
        if derivation.notation.samples_are_rows
        else "in the column notation W is out×in, Z = W A + b1ᵀ"
    )
    return f"your value is the transpose of the true one (check W's orientation: {layout})"


def _joined(parts: list[tuple[str, str]]) -> tuple[str, str]:
    return " + ".join(p[0] for p in parts), "; ".join(p[1] for p in parts)


def _classified(case: _Case, U: np.ndarray) -> tuple[str, str] | None:
    """(mistake, explanation) when U is a known distortion of the truth, else None."""
    parts = _explained(case, U, case.truth)
    if parts:
        return _joined(parts)
    if not case.target.startswith("d"):
        return None
    for variant in variants(case.derivation):
        wrong = true_values(case.derivation, case.problem, variant=variant).get(case.target)
        if wrong is None or relative_error(wrong, case.truth) <= MATCH_RTOL:
            continue
        parts = _explained(case, U, wrong)
        if parts is not None:
            return _joined([variant_words(case.derivation, variant), *parts])
    return None


# ---- 2. the formula rewritten: one transpose, one layer index -------------------------------------


def _rewritten(case: _Case) -> tuple[str, str] | None:
    """(mistake, explanation) when one small change to the formula makes it right."""
    for tree, mistake, words in _rewrites(case):
        shape = case.symbolic_shape(tree)
        if shape is None or not (
            _same_shape(shape, case.expected) or _same_shape(tuple(reversed(shape)), case.expected)
        ):
            continue
        value = case.attempt(tree)
        if value is None:
            continue
        parts = _explained(case, value, case.truth)
        if parts is not None:
            return _joined([(mistake, words), *parts])
    return None


def _rewrites(case: _Case) -> Iterator[tuple[ast.expr, str, str]]:
    """The formula with one factor's transpose toggled, then with one layer index changed."""
    expression = case.parsed.expression
    layout = "column" if not case.derivation.notation.samples_are_rows else "row"
    for node in _operands(expression):
        if isinstance(node, ast.Attribute):
            inner = ast.unparse(node.value)
            yield (
                _replaced(expression, node, node.value),
                "extra transpose",
                f"the formula holds with {inner} in place of {inner}.T: that factor needs no "
                f"transpose in the {layout} notation",
            )
        else:
            name = ast.unparse(node)
            transposed = ast.Attribute(value=node, attr="T", ctx=ast.Load())
            yield (
                _replaced(expression, node, transposed),
                "missing transpose",
                f"the formula holds with {name}.T in place of {name}: the factor {name} needs "
                f"its transpose in the {layout} notation",
            )
    for name in case.parsed.names:
        match = re.fullmatch(r"([A-Za-z_]+?)(\d+)", name)
        if not match:
            continue
        stem, index = match.groups()
        for other in range(0, case.derivation.K + 1):
            replacement = f"{stem}{other}"
            if other == int(index) or replacement not in case.env:
                continue
            yield (
                _renamed(expression, name, replacement),
                "wrong layer index",
                f"the formula holds with {replacement} in place of {name}: {name} belongs to "
                "another layer",
            )


def _operands(expression: ast.expr) -> list[ast.expr]:
    """The matrix operands whose transpose can be toggled: names and ``X.T`` (not sizes)."""
    sizes = {
        id(arg)
        for node in ast.walk(expression)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        for arg in [node.func, *node.args]
        if node.func.id in ("ones", "eye") or arg is node.func
    }
    found: list[ast.expr] = []
    for node in ast.walk(expression):
        if id(node) in sizes:
            continue
        if isinstance(node, ast.Attribute) or (
            isinstance(node, ast.Name) and not _under_transpose(node, expression)
        ):
            found.append(node)
    return found


def _under_transpose(name: ast.Name, expression: ast.expr) -> bool:
    return any(isinstance(n, ast.Attribute) and n.value is name for n in ast.walk(expression))


def _replaced(node: Any, old: ast.expr, new: ast.expr) -> Any:
    """A copy of the tree ``node`` with the node ``old`` replaced by ``new`` (``node`` unchanged)."""
    if node is old:
        return new
    if not isinstance(node, ast.AST):
        return node
    fields = {
        name: [_replaced(v, old, new) for v in value]
        if isinstance(value, list)
        else _replaced(value, old, new)
        for name, value in ast.iter_fields(node)
    }
    return type(node)(**fields)


def _renamed(expression: ast.expr, old: str, new: str) -> ast.expr:
    class Renamer(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.Name:
            return ast.Name(id=new, ctx=node.ctx) if node.id == old else node

    tree = Renamer().visit(ast.parse(ast.unparse(expression), mode="eval")).body
    return ast.fix_missing_locations(tree)
