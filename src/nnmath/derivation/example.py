"""A worked example: the derivation's equations evaluated on small numbers, one SGD step included.

Every value is the derivation's own code evaluated on the problem's numbers (the same evaluation
``--verify`` and ``nnmath check`` use), written with the numbers substituted into the formula, so
that a reader can redo each product with a pencil. The gradients are then compared with nnmath's
backward pass, and one step of gradient descent W ← W − η dW is taken and the cost recomputed.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmath.derivation.document import Derivation, Equation
from nnmath.derivation.evaluate import TRUSTED, evaluate
from nnmath.derivation.render import loss_name
from nnmath.derivation.syntax import parse
from nnmath.derivation.typeset import to_tex
from nnmath.derivation.verify import Problem, environment
from nnmath.errors import ShapeError, SpecError
from nnmath.losses import as_targets
from nnmath.network import MLP


@dataclass
class WorkedExample:
    """The problem, each equation with its value, and one SGD step."""

    derivation: Derivation
    problem: Problem
    learning_rate: float
    env: dict[str, Any]
    steps: list[tuple[Equation, np.ndarray]] = field(default_factory=list)
    updated: dict[str, np.ndarray] = field(default_factory=dict)
    cost_before: float = math.nan
    cost_after: float = math.nan
    backward_difference: float = math.nan  # largest |printed gradient − engine's backward|


def example_problem(
    derivation: Derivation, *, samples: int = 2, seed: int = 0, model: MLP | None = None
) -> Problem:
    """Small numbers for a pencil: one-decimal inputs, weights and biases (unless a model's weights
    are given), and targets that suit the loss (one-hot, 0/1, or one-decimal values in the output's
    range)."""
    if samples < 1:
        raise ShapeError(f"--samples must be at least 1, got {samples}")
    rng = np.random.default_rng(seed)
    spec = derivation.spec
    if model is None:
        network = MLP(spec, rng=rng)
        weights = [
            (np.round(L.W, 1), np.round(rng.normal(0.0, 0.5, size=L.b.shape), 1))
            for L in network.linears
        ]
        network = MLP.from_weights(spec, weights)
        source = f"weights and data from seed {seed}, rounded to one decimal"
    else:
        if str(model.spec) != str(spec):
            raise ShapeError(f"the model is {model.spec}, the derivation is for {spec}")
        network, source = model.astype(np.float64), f"the model's weights, data from seed {seed}"
    X = np.round(rng.normal(size=(samples, spec.n_in)), 1)
    n_out, name = spec.n_out, derivation.loss.name
    if name == "cross-entropy":
        T = np.eye(n_out)[rng.integers(0, n_out, size=samples)]
    elif name == "binary-cross-entropy":
        T = rng.integers(0, 2, size=(samples, n_out)).astype(np.float64)
    elif spec.output in ("sigmoid", "softmax"):
        T = np.round(rng.uniform(0.0, 1.0, size=(samples, n_out)), 1)
    else:
        T = np.round(rng.normal(size=(samples, n_out)), 1)
    return Problem(network, X, as_targets(T, n_out, np.float64), source)


def worked_example(
    derivation: Derivation, problem: Problem, learning_rate: float = 0.5
) -> WorkedExample:
    """Evaluate every named equation in order, compare with the engine, take one SGD step."""
    if not learning_rate > 0:
        raise SpecError(f"--learning-rate must be positive, got {learning_rate}")
    env = environment(derivation, problem)
    example = WorkedExample(derivation, problem, learning_rate, env)
    for equation in derivation.equations():
        if not equation.name:
            continue
        value = evaluate(equation.code, env, budget=TRUSTED)
        example.steps.append((equation, value))
        if equation.kind != "forward":
            env[equation.name] = value
    notation, model, loss = derivation.notation, problem.model, derivation.loss
    _, grads = model.loss_and_gradients(problem.X, problem.T, loss)
    differences = []
    for layer in range(1, derivation.K + 1):
        for kind, engine in (("W", grads.W[layer - 1]), ("b", grads.b[layer - 1])):
            printed = env[f"d{kind}{layer}"]
            differences.append(np.max(np.abs(printed - notation.from_engine(kind, engine))))
            example.updated[f"{kind}{layer}"] = env[f"{kind}{layer}"] - learning_rate * printed
    example.backward_difference = float(max(differences))
    example.cost_before = float(env["C"])
    stepped = MLP.from_weights(
        model.spec,
        [
            (
                notation.to_engine("W", example.updated[f"W{layer}"]),
                notation.to_engine("b", example.updated[f"b{layer}"]),
            )
            for layer in range(1, derivation.K + 1)
        ],
    )
    example.cost_after = stepped.cost(problem.X, problem.T, loss)
    return example


# ---- Markdown ----------------------------------------------------------------------------------


def _number(x: float, digits: int) -> str:
    text = f"{x:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def matrix_tex(value: np.ndarray, digits: int = 4) -> str:
    """A value as a LaTeX bmatrix (rounded); a stack of matrices as one per sample."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return _number(float(value), digits)
    if value.ndim == 1:
        value = value[None, :]
    if value.ndim == 3:
        return r"\left(" + ",\\; ".join(matrix_tex(m, digits) for m in value) + r"\right)_{s}"
    rows = [" & ".join(_number(x, digits) for x in row) for row in value]
    return r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"


def _substituted(example: WorkedExample, equation: Equation, digits: int) -> str:
    """The right-hand side with each operand replaced by its numbers."""
    derivation = example.derivation
    shapes, dims = derivation.shapes(S=example.problem.S)
    symbols = {code: s.tex for code, s in derivation.symbols.items()}

    def leaf(node: ast.expr, tex: str) -> str:
        return matrix_tex(evaluate(parse(ast.unparse(node)), example.env, budget=TRUSTED), digits)

    return to_tex(equation.code, symbols, shapes, dims, leaf)


def example_markdown(example: WorkedExample, command: str = "", digits: int = 4) -> str:
    """The worked example as Markdown: every step with numbers substituted, rounded for reading."""
    d, p = example.derivation, example.problem
    out = [
        f"# Worked example: {d.spec} with {loss_name(d)}, S = {p.S}",
        "",
        (f"Generated by `{command}`. " if command else "")
        + f"Numbers to follow with a pencil: {p.source}, {p.S} samples, in the "
        f"{d.notation.title}. Values are rounded to {digits} significant digits (`--json` gives "
        "them exactly); each is the derivation's own formula evaluated, shown with the numbers "
        "substituted.",
        "",
        "## The data and the parameters",
        "",
    ]
    for name in ("X", "Y"):
        out += [f"$${d.symbols[name].tex} = {matrix_tex(example.env[name], digits)}$$", ""]
    for layer in range(1, d.K + 1):
        W, b = d.symbols[f"W{layer}"].tex, d.symbols[f"b{layer}"].tex
        out += [
            f"$${W} = {matrix_tex(example.env[f'W{layer}'], digits)}, \\qquad "
            f"{b} = {matrix_tex(example.env[f'b{layer}'], digits)}$$",
            "",
        ]
    title = None
    for equation, value in example.steps:
        section = (
            "Forward pass"
            if equation.kind == "forward"
            else "Cost"
            if equation.kind == "cost"
            else "Backward pass"
        )
        if section != title:
            out += [f"## {section}", ""]
            title = section
        out += [
            f"$${equation.lhs} = {equation.tex}$$",
            "",
            f"$$= {_substituted(example, equation, digits)} = {matrix_tex(value, digits)}$$",
            "",
        ]
    eta = _number(example.learning_rate, digits)
    out += [
        "## One step of gradient descent",
        "",
        f"With learning rate $\\eta = {eta}$, every parameter moves against its gradient: "
        "$W \\leftarrow W - \\eta\\, dW$, $b \\leftarrow b - \\eta\\, db$.",
        "",
    ]
    for layer in range(1, d.K + 1):
        for kind in ("W", "b"):
            name = f"{kind}{layer}"
            symbol, grad = d.symbols[name].tex, d.symbols[f"d{name}"].tex
            out += [
                f"$${symbol} \\leftarrow {symbol} - {eta}\\, {grad} = "
                f"{matrix_tex(example.env[name], digits)} - {eta}\\, "
                f"{matrix_tex(example.env[f'd{name}'], digits)} = "
                f"{matrix_tex(example.updated[name], digits)}$$",
                "",
            ]
    out += [
        f"The cost goes from $C = {_number(example.cost_before, 6)}$ to "
        f"$C = {_number(example.cost_after, 6)}$ after the step.",
        "",
        f"Every gradient above equals nnmath's backward pass on the same numbers (largest "
        f"difference {example.backward_difference:.1e}).",
        "",
    ]
    return "\n".join(out)


def example_json(example: WorkedExample) -> str:
    """The worked example's exact values as JSON."""
    d = example.derivation
    document = {
        "spec": str(d.spec),
        "loss": loss_name(d),
        "notation": d.notation.name,
        "source": example.problem.source,
        "samples": example.problem.S,
        "learning_rate": example.learning_rate,
        "inputs": {name: example.env[name].tolist() for name in ("X", "Y")},
        "parameters": {
            f"{kind}{layer}": example.env[f"{kind}{layer}"].tolist()
            for layer in range(1, d.K + 1)
            for kind in "Wb"
        },
        "steps": [
            {
                "name": equation.name,
                "code": equation.assignment,
                "latex": f"{equation.lhs} = {equation.tex}",
                "value": np.asarray(value).tolist(),
            }
            for equation, value in example.steps
        ],
        "updated_parameters": {name: value.tolist() for name, value in example.updated.items()},
        "cost_before": example.cost_before,
        "cost_after": example.cost_after,
        "largest_difference_from_backward_pass": example.backward_difference,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
