"""The mathematics panel: the derivation of the current network with the current batch's values.

Everything comes from :mod:`nnmath.derivation`: :func:`derive` writes the document (the same one
as ``nnmath derive``), :func:`worked_example` evaluates each equation's own code on the current
batch and weights (the same evaluation as ``nnmath derive --example``), :func:`verify` checks each
equation against an independent computation (central differences, the numerical Jacobian, the
engine), and :func:`check_formula` judges a user's formula (the safe evaluator of
``nnmath check``). This module only arranges the results for the page: MathML, shapes, the stage
of the training step each equation belongs to, and the chain rule of one weight.
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
from nnmath.errors import SpecError
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


# ---- one weight's chain rule -----------------------------------------------------------------------


def _engine(derivation: Derivation, example: WorkedExample, name: str) -> np.ndarray:
    """A batch quantity of the worked example in the engine's layout (one sample per row)."""
    return derivation.notation.to_engine("batch", example.env[name])


def weight(snapshot: Snapshot, notation: str, layer: int, unit: int, source: int) -> dict[str, Any]:
    """∂C/∂w for the weight from unit ``source`` of layer l − 1 to ``unit`` of layer l (0-based),
    as the sum over the batch of δ⁽ˡ⁾_s,unit · a⁽ˡ⁻¹⁾_s,source, with δ's factors back to the output
    and the update with numbers."""
    model = snapshot.model
    K = len(model.linears)
    if not 1 <= layer <= K:
        raise SpecError(f"layer must be from 1 to {K}, got {layer}")
    W = model.linears[layer - 1].W
    if not (0 <= unit < W.shape[0] and 0 <= source < W.shape[1]):
        raise SpecError(
            f"layer {layer} has {W.shape[0]} units and {W.shape[1]} inputs; got unit {unit}, "
            f"input {source}"
        )
    derivation, example = evaluated(snapshot, notation)
    A_prev = _engine(derivation, example, "X" if layer == 1 else f"A{layer - 1}")
    delta = _engine(derivation, example, f"dZ{layer}")
    dW = derivation.notation.to_engine("W", example.env[f"dW{layer}"])
    terms = [
        {
            "s": s + 1,
            "a": float(A_prev[s, source]),
            "delta": float(delta[s, unit]),
            "product": float(A_prev[s, source] * delta[s, unit]),
        }
        for s in range(delta.shape[0])
    ]
    factors = _delta_factors(snapshot, derivation, example, layer, unit)
    for term, factor in zip(terms, factors["rows"], strict=True):
        term.update(factor)
    return {
        "layer": layer,
        "unit": unit,
        "input": source,
        "weight": float(W[unit, source]),
        "gradient": float(dW[unit, source]),
        "terms": terms,
        "formulas": _weight_formulas(derivation, layer, unit, source),
        "delta": factors,
        "update": _weight_update(snapshot, layer, unit, source, float(dW[unit, source])),
    }


def _weight_formulas(derivation: Derivation, layer: int, unit: int, source: int) -> dict[str, str]:
    """The chain rule for one weight in the derivation's symbols, with i, j named."""
    notation, symbols = derivation.notation, derivation.symbols
    ij, sj, si = notation.index("ij"), notation.index("sj"), notation.index("si")
    previous = symbols["X" if layer == 1 else f"A{layer - 1}"]
    w = symbols[f"W{layer}"].at(ij)
    z = symbols[f"Z{layer}"].at(sj)
    grad = rf"\frac{{\partial C}}{{\partial {w}}} = \sum_{{s=1}}^{{S}} \delta_{{s j}}\, {previous.at(si)}, \qquad \delta_{{s j}} = \frac{{\partial C}}{{\partial {z}}}"
    return {
        "gradient": formula(grad),
        "legend": f"i = {source + 1} (input of layer {layer}), j = {unit + 1} (unit of layer {layer})",
    }


def _delta_factors(
    snapshot: Snapshot, derivation: Derivation, example: WorkedExample, layer: int, unit: int
) -> dict[str, Any]:
    """δ_sj's factors: (ŷ, y) at the output; dA_sj and h′(z_sj) below it, dA = δ⁽ˡ⁺¹⁾ W⁽ˡ⁺¹⁾."""
    K = derivation.K
    if layer == K:
        Yhat, Y = _engine(derivation, example, "Yhat"), _engine(derivation, example, "Y")
        return {
            "kind": "output",
            "formula": formula(defining_tex(derivation, f"dZ{K}")),
            "rows": [{"yhat": float(Yhat[s, unit]), "y": float(Y[s, unit])} for s in range(len(Y))],
        }
    Z = _engine(derivation, example, f"Z{layer}")
    A = _engine(derivation, example, f"A{layer}")
    dA = _engine(derivation, example, f"dA{layer}")
    h_prime = snapshot.model.activations[layer - 1].derivative((Z, A))
    upstream = [
        {"layer": m, "delta": matrix(_engine(derivation, example, f"dZ{m}")[:1])}
        for m in range(layer + 1, K + 1)
    ]
    return {
        "kind": "hidden",
        "formula": formula(defining_tex(derivation, f"dZ{layer}")),
        "recursion": formula(defining_tex(derivation, f"dA{layer}")),
        "first_sample": formula(_first_sample_sum(snapshot, derivation, example, layer, unit)),
        "upstream": upstream,
        "rows": [
            {"dA": float(dA[s, unit]), "h_prime": float(h_prime[s, unit])} for s in range(len(Z))
        ],
    }


def _tex_number(x: float) -> str:
    return number(x, 6).replace("\u2212", "-")


def _first_sample_sum(
    snapshot: Snapshot, derivation: Derivation, example: WorkedExample, layer: int, unit: int
) -> str:
    """dA_1j = Σ_k δ⁽ˡ⁺¹⁾_1k W⁽ˡ⁺¹⁾_jk with the numbers of sample 1 (the middle terms elided
    beyond eight)."""
    notation, symbols = derivation.notation, derivation.symbols
    delta = _engine(derivation, example, f"dZ{layer + 1}")[0]
    W = snapshot.model.linears[layer].W  # engine layout: row k is unit k of layer l + 1
    dA = _engine(derivation, example, f"dA{layer}")[0, unit]
    products = [rf"({_tex_number(delta[k])})({_tex_number(W[k, unit])})" for k in range(len(delta))]
    if len(products) > 8:
        products = [*products[:4], r"\cdots", *products[-3:]]
    w = symbols[f"W{layer + 1}"].at(notation.index("jk"))
    return (
        rf"dA_{{{layer},1j}} = \sum_k \delta^{{({layer + 1})}}_{{1k}}\, {w} = "
        + " + ".join(products)
        + rf" = {_tex_number(dA)}"
    )


def defining_tex(derivation: Derivation, name: str) -> str:
    equation = derivation.defining(name)
    return f"{equation.lhs} = {equation.tex}" if equation else name


def _weight_update(
    snapshot: Snapshot, layer: int, unit: int, source: int, gradient: float
) -> dict[str, Any]:
    """w's next value from the session's optimizer, and for plain SGD the arithmetic."""
    w = float(snapshot.model.linears[layer - 1].W[unit, source])
    new = float(stepped_parameters(snapshot)[2 * (layer - 1)][unit, source])
    eta, alpha = snapshot.config.learning_rate, snapshot.config.l2
    optimizer = snapshot.optimizer
    plain = is_plain_sgd(optimizer)
    decay = r" + \alpha w" if alpha else ""
    if plain:
        penalty = rf" + {number(alpha, 6)} \cdot {number(w, 6)}" if alpha else ""
        tex = (
            rf"w \leftarrow w - \eta\left(\frac{{\partial C}}{{\partial w}}{decay}\right)"
            rf" = {number(w, 6)} - {number(eta, 6)}\left({number(gradient, 6)}{penalty}\right)"
            rf" = {number(new, 6)}"
        )
    else:
        tex = (
            rf"w \leftarrow \operatorname{{{optimizer.name}}}\left(w,\; "
            rf"\frac{{\partial C}}{{\partial w}}{decay}\right) = {number(new, 6)}"
        )
    return {
        "weight": w,
        "new": new,
        "plain_sgd": plain,
        "formula": formula(tex.replace("\u2212", "-")),
    }
