"""One weight's chain rule, with the current batch's numbers: ∂C/∂w = Σ_s δ_s a_s.

For the weight w from unit i of layer l − 1 to unit j of layer l, every factor comes from the
derivation evaluated on the current batch (:func:`nnmath.playground.mathpanel.evaluated`, the
worked example's own values): a⁽ˡ⁻¹⁾_si, δ⁽ˡ⁾_sj = dZ⁽ˡ⁾_sj and their products summed over the
batch; δ's factors (ŷ and y at the output; dA_sj and h′(z_sj) below it, h′ from the activation's
own derivative, and dA's sum over the layer above for the first sample); the update the session's
own optimizer will make.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnmath.derivation import Derivation
from nnmath.derivation.example import WorkedExample
from nnmath.errors import SpecError
from nnmath.playground.mathml import formula, matrix, number
from nnmath.playground.mathpanel import evaluated, stepped_parameters
from nnmath.playground.session import Snapshot
from nnmath.steps import is_plain_sgd


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
    dW = derivation.notation.to_engine("W", example.env[f"dW{layer}"])
    factors = _delta_factors(snapshot, derivation, example, layer, unit)
    terms = _terms(derivation, example, layer, unit, source)
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


def _terms(
    derivation: Derivation, example: WorkedExample, layer: int, unit: int, source: int
) -> list[dict[str, Any]]:
    """Per sample s: a⁽ˡ⁻¹⁾_s,source, δ⁽ˡ⁾_s,unit and their product (the terms of ∂C/∂w)."""
    A_prev = _engine(derivation, example, "X" if layer == 1 else f"A{layer - 1}")
    delta = _engine(derivation, example, f"dZ{layer}")
    return [
        {
            "s": s + 1,
            "a": float(A_prev[s, source]),
            "delta": float(delta[s, unit]),
            "product": float(A_prev[s, source] * delta[s, unit]),
        }
        for s in range(delta.shape[0])
    ]


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
    """``lhs = formula`` in LaTeX, of the equation that defines ``name`` (the name itself where none
    does)."""
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
