"""The mathematics panel: the derivation of the current network with the current batch's values.

Everything comes from :mod:`nnmath.derivation`: :func:`derive` writes the document (the same one
as ``nnmath derive``), :func:`worked_example` evaluates each equation's own code on the current
batch and weights (the same evaluation as ``nnmath derive --example``), :func:`verify` checks each
equation against an independent computation (central differences, the numerical Jacobian, the
engine), and :func:`check_formula` judges a user's formula (the safe evaluator of
``nnmath check``). This module only arranges the results for the page: MathML, shapes, the stage
of the training step each equation belongs to, and the update; one weight's chain rule is in
:mod:`nnmath.playground.chainrule`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np

from nnmath.derivation import (
    Derivation,
    Equation,
    Problem,
    check_formula,
    derive,
    make_problem,
    verify,
    worked_example,
)
from nnmath.derivation.check import checkable
from nnmath.derivation.example import WorkedExample
from nnmath.derivation.render import check_text, summary
from nnmath.playground.frames import gradients
from nnmath.playground.mathml import formula, matrix, number, prose, shape
from nnmath.playground.session import Snapshot
from nnmath.steps import is_plain_sgd

MAX_CHECKED_PARAMETERS = 400  # above this, every equation is checked only when asked (paused)


def problem_of(snapshot: Snapshot, derivation: Derivation) -> Problem:
    """The current batch and weights as the derivation's problem."""
    return Problem(snapshot.model, snapshot.X, snapshot.T, snapshot.source)


def evaluated(snapshot: Snapshot, notation: str) -> tuple[Derivation, WorkedExample]:
    """The derivation of the current network, every equation evaluated on the current batch."""
    derivation = derive(snapshot.model.spec, snapshot.loss, notation)
    problem = problem_of(snapshot, derivation)
    return derivation, worked_example(derivation, problem, snapshot.config.learning_rate)


# ---- which stage of the step an equation belongs to ---------------------------------------------


def equation_stages(derivation: Derivation) -> dict[int, str]:
    """id(equation) → 'forward-l', 'cost' or 'backward-l' (an unnamed step joins its neighbour)."""
    K, out, previous = derivation.K, {}, f"backward-{derivation.K}"
    for equation in derivation.equations():
        name = equation.name
        digits = re.search(r"(\d+)$", name)
        if equation.kind == "forward":
            stage = f"forward-{K if name == 'Yhat' else int(name[1:])}"
        elif equation.kind == "cost":
            stage = "cost"
        elif not name:
            stage = previous
        elif name == "dX":
            stage = "backward-1"
        elif name.startswith("dA") and digits:
            stage = f"backward-{int(digits.group(1)) + 1}"
        elif digits:
            stage = f"backward-{int(digits.group(1))}"
        else:
            stage = f"backward-{K}"
        out[id(equation)] = previous = stage
    return out


def stage_id(stage: dict[str, Any]) -> str:
    """The page's id of a stage: "cost", "update", or "KIND-LAYER" (``forward-2``)."""
    return (
        stage["kind"]
        if stage["kind"] in ("cost", "update")
        else f"{stage['kind']}-{stage['layer']}"
    )


# ---- the document ------------------------------------------------------------------------------


def _equation(derivation: Derivation, equation: Equation, value: Any, stage: str) -> dict[str, Any]:
    result = equation.result
    return {
        "name": equation.name,
        "kind": equation.kind,
        "stage": stage,
        "note": prose(equation.note) if equation.note else "",
        "formula": formula(f"{equation.lhs} = {equation.tex}"),
        "element": formula(equation.element) if equation.element else "",
        "value": "" if value is None else matrix(value),
        "shape": "" if value is None else shape(value),
        "code": equation.assignment,
        "check": None if result is None else {"passed": result.passed, "text": check_text(result)},
    }


def _inputs_section(derivation: Derivation, example: WorkedExample) -> dict[str, Any]:
    """The batch X, its targets Y and every W, b, as the equations below use them."""
    env, symbols = example.env, derivation.symbols
    names = ["X", "Y"] + [f"{kind}{layer}" for layer in range(1, derivation.K + 1) for kind in "Wb"]
    values = [
        {
            "name": name,
            "formula": formula(f"{symbols[name].tex} ="),
            "value": matrix(env[name]),
            "shape": shape(env[name]),
        }
        for name in names
    ]
    return {"title": "The current batch and the parameters", "values": values}


def document(snapshot: Snapshot, notation: str, *, checks: bool = True) -> dict[str, Any]:
    """The derivation as the page shows it: sections of equations with values and checks."""
    derivation, example = evaluated(snapshot, notation)
    if checks:
        verify(derivation, problem_of(snapshot, derivation))
    values = {id(equation): value for equation, value in example.steps}
    stage_of = equation_stages(derivation)
    sections = [
        {
            "title": prose(section.title),
            "text": prose(section.text) if section.text else "",
            "equations": [
                _equation(derivation, eq, values.get(id(eq)), stage_of[id(eq)])
                for eq in section.equations
            ],
        }
        for section in derivation.sections
    ]
    return {
        "step": snapshot.step,
        "version": snapshot.version,
        "spec": str(derivation.spec),
        "loss": derivation.loss.name,
        "notation": derivation.notation.name,
        "summary": summary(derivation),
        "checked": checks,
        "passed": derivation.passed,
        "inputs": _inputs_section(derivation, example),
        "sections": sections,
        "update": _update_section(snapshot, derivation, example),
        "names": checkable(derivation),
    }


def cheap_to_check(snapshot: Snapshot) -> bool:
    """Whether verifying every equation (central differences per parameter) is cheap enough to
    repeat on every refresh: about 0.1 s for 2-8-8-2, seconds for six layers of 16."""
    return snapshot.model.parameter_count <= MAX_CHECKED_PARAMETERS


# ---- the update ----------------------------------------------------------------------------------


def stepped_parameters(snapshot: Snapshot) -> list[np.ndarray]:
    """[W1, b1, …] after one step of the session's own optimizer on the current batch (a copy)."""
    params = [p.copy() for p in snapshot.model.parameters()]
    _, dW, db = gradients(snapshot)
    optimizer = copy.deepcopy(snapshot.optimizer)
    optimizer.step(params, [g for pair in zip(dW, db, strict=True) for g in pair])
    return params


def _update_tex(snapshot: Snapshot, symbol: str, gradient: str, weight: bool) -> str:
    """θ ← θ − η (dθ + αθ) for plain SGD, θ ← adam(θ, dθ + αθ) otherwise (α only on weights)."""
    decay = rf" + \alpha\, {symbol}" if weight and snapshot.config.l2 else ""
    if is_plain_sgd(snapshot.optimizer):
        step = rf"\left({gradient}{decay}\right)" if decay else gradient
        return rf"{symbol} \leftarrow {symbol} - \eta\, {step} ="
    name = snapshot.optimizer.name
    return (
        rf"{symbol} \leftarrow \operatorname{{{name}}}\left({symbol},\; {gradient}{decay}\right) ="
    )


def _update_section(
    snapshot: Snapshot, derivation: Derivation, example: WorkedExample
) -> dict[str, Any]:
    """Each parameter after the step the session will take next (its optimizer, its penalty)."""
    notation, params = derivation.notation, stepped_parameters(snapshot)
    rows = []
    for index, new in enumerate(params):
        kind, layer = "Wb"[index % 2], index // 2 + 1
        name = f"{kind}{layer}"
        tex = _update_tex(
            snapshot, derivation.symbols[name].tex, f"d{derivation.symbols[name].tex}", kind == "W"
        )
        rows.append(
            {
                "name": name,
                "formula": formula(tex),
                "value": matrix(notation.from_engine(kind, new)),
            }
        )
    eta, alpha = number(snapshot.config.learning_rate), number(snapshot.config.l2)
    return {
        "text": f"{snapshot.optimizer.name}, learning rate η = {eta}"
        + (
            f", L2 penalty α = {alpha} on the weights (not the biases)"
            if snapshot.config.l2
            else ""
        )
        + "; each parameter after the next step",
        "parameters": rows,
    }


# ---- check my formula ------------------------------------------------------------------------------


def check(snapshot: Snapshot, notation: str, text: str) -> dict[str, Any]:
    """``nnmath check``'s verdict on the user's formula, on the current batch (S ≥ 2)."""
    derivation = derive(snapshot.model.spec, snapshot.loss, notation)
    if snapshot.X.shape[0] >= 2:
        problem = problem_of(snapshot, derivation)
    else:  # a missing 1/S cannot be told apart on one sample
        problem = make_problem(
            derivation, samples=4, seed=snapshot.config.seed, model=snapshot.model
        )
    verdict = check_formula(derivation, problem, text)
    out = verdict.to_dict()
    out["correct_mathml"] = formula(verdict.correct_tex) if verdict.correct_tex else ""
    out["where"] = f"{problem.source}, S = {problem.S}"
    return out
