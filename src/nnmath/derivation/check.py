"""Check a user's own backprop formula, and name the mistake when it is a common one.

``check_formula(derivation, problem, "dW3 = A2.T @ (Yhat - Y)")`` evaluates the right-hand side with
the safe evaluator, the derivation's names bound to the forward pass's values and to the true
gradients (from nnmath's backward pass, so that one step of the recursion can be checked at a time;
the target itself is left out), and compares it with the true value of the left-hand side.

On a mismatch it looks for the mistakes that published derivations make. The user's value U is
compared, as a whole, with c·G and c·Gᵀ for the true value G and for the gradients that a backward
pass gives when one layer's activation derivative is left out (the ReLU mask, σ′, the softmax
Jacobian), and c is matched with −1 (a flipped sign), S and 1/S (a missing or doubled 1/S),
ln b or 1/ln b (a wrong log base); a formula whose shape is wrong is named as such, and one that
becomes right when a layer index changes (Z_2 = A_1 W_1 + b_2) is named too.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.derivation.document import Derivation
from nnmath.derivation.evaluate import FormulaValueError, evaluate
from nnmath.derivation.shapes import FormulaShapeError, format_shape, infer_shape
from nnmath.derivation.syntax import Parsed, UnknownNameError, parse
from nnmath.derivation.verify import Problem, environment, forward_values
from nnmath.errors import SpecError
from nnmath.gradcheck import relative_error
from nnmath.layers import Softmax
from nnmath.losses import cost, cost_gradient, fuse

MATCH_RTOL = 1e-6


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

    def to_dict(self) -> dict[str, Any]:
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


# ---- the true values, and the ones a backward pass without one activation derivative gives ---


def true_values(
    derivation: Derivation, problem: Problem, *, skip: int | None = None
) -> dict[str, np.ndarray]:
    """Every gradient of the derivation in its notation, from nnmath's layer VJPs.

    ``skip = l`` leaves out layer l's activation derivative (its VJP passes the gradient through
    unchanged): the values a derivation gets when it forgets the ReLU mask, σ′ or the softmax
    Jacobian of that layer.
    """
    notation, K, model, loss = derivation.notation, derivation.K, problem.model, derivation.loss
    values = forward_values(problem)
    layers = model.layers
    S, T = problem.S, problem.T
    out: dict[str, np.ndarray] = {}
    dYhat = cost_gradient(loss, values[-1], T)
    fused = fuse(model.output, loss)
    if skip == K:
        dZ = dYhat
    elif fused is not None:
        dZ = cost_gradient(fused, values[-2], T)
    else:
        dZ = layers[-1].vjp(_cache(layers[-1], values[-2], values[-1]), dYhat)[0]
    out["dYhat"], out["dl_dYhat"] = dYhat, S * dYhat
    out[f"dZ{K}"], out[f"dl_dZ{K}"] = dZ, S * dZ
    for layer in range(K, 0, -1):
        linear = layers[2 * layer - 2]
        dA, grads = linear.vjp(values[2 * layer - 2], dZ)
        out[f"dW{layer}"], out[f"db{layer}"] = grads["W"], grads["b"]
        if layer == 1:
            out["dX"] = dA
            break
        out[f"dA{layer - 1}"] = dA
        activation = layers[2 * layer - 3]
        if skip == layer - 1:
            dZ = dA
        else:
            cache = _cache(activation, values[2 * layer - 3], values[2 * layer - 2])
            dZ = activation.vjp(cache, dA)[0]
        out[f"dZ{layer - 1}"] = dZ
    converted = {}
    for name, value in out.items():
        kind = "W" if name.startswith("dW") else "b" if name.startswith("db") else "batch"
        converted[name] = notation.from_engine(kind, value)
    output = layers[-1]
    converted[f"J{K}"] = np.asarray(
        output.jacobian(_cache(output, values[-2], values[-1])), dtype=np.float64
    )
    C = cost(loss, values[-1], T) if fused is None else cost(fused, values[-2], T)
    converted["C"] = np.asarray(float(C))
    return converted


def _cache(layer: Any, Z: np.ndarray, A: np.ndarray) -> Any:
    """What an activation layer's forward pass caches: (Z, A) elementwise, A for softmax."""
    return A if isinstance(layer, Softmax) else (Z, A)


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


# ---- checking ----------------------------------------------------------------------------------


def _factors(S: int, base: float) -> list[tuple[float, str]]:
    """The factors by which a formula is commonly off, with what each one means."""
    factors: list[tuple[float, str]] = [
        (-1.0, "flipped sign"),
        (float(S), "missing 1/S"),
        (1.0 / S, "extra 1/S"),
        (-float(S), "flipped sign and missing 1/S"),
        (-1.0 / S, "flipped sign and extra 1/S"),
    ]
    for b in sorted({2.0, 10.0, base} - {math.e}):
        ln = math.log(b)
        factors += [
            (ln, f"wrong log base (off by ln {b:g})"),
            (1 / ln, f"wrong log base (off by 1/ln {b:g})"),
        ]
    return factors


def _fit(U: np.ndarray, A: np.ndarray) -> float | None:
    """c with U = c·A (to MATCH_RTOL), or None."""
    norm = float(np.vdot(A, A))
    if norm == 0.0:
        return None
    c = float(np.vdot(U, A)) / norm
    if relative_error(U, c * A) <= MATCH_RTOL:
        return c
    return None


def _explain_factor(c: float, S: int, base: float) -> str | None:
    if math.isclose(c, 1.0, rel_tol=MATCH_RTOL):
        return ""
    for factor, name in _factors(S, base):
        if math.isclose(c, factor, rel_tol=MATCH_RTOL):
            return name
    return None


def _activation_words(derivation: Derivation, layer: int) -> str:
    spec = derivation.spec.layers[layer - 1]
    A = "Yhat" if layer == derivation.K else f"A{layer}"
    if spec.activation == "softmax":
        return f"the softmax Jacobian of layer {layer} (diag(ŷ) − ŷŷᵀ per sample)"
    if spec.activation == "relu":
        return f"the ReLU mask of layer {layer}: multiply by (Z{layer} > 0)"
    if spec.activation == "sigmoid":
        return f"the sigmoid derivative of layer {layer}: multiply by {A} * (1 - {A})"
    return f"the {spec.activation} derivative h′(Z{layer}) of layer {layer}"


def check_formula(derivation: Derivation, problem: Problem, formula: str) -> Verdict:
    """Compare a user's ``NAME = EXPRESSION`` with the true value of NAME; name the mistake."""
    parsed = parse(formula, require_target=True)
    target = parsed.target
    assert target is not None
    allowed = checkable(derivation)
    if target not in allowed:
        raise SpecError(
            f"{target!r} is not a quantity of this derivation that can be checked; the left-hand "
            f"side must be one of: {', '.join(allowed)}"
        )
    env = environment(derivation, problem)
    truth_table = true_values(derivation, problem)
    truth = env[target] if target in env else truth_table[target]
    related = {
        target,
        target.replace("dl_d", "d"),
        "dl_" + target if target.startswith("d") else "",
    }
    for name, value in truth_table.items():
        if name not in related and name not in env:
            env[name] = value
    for name in related:
        env.pop(name, None)
    unknown = [name for name in parsed.names if name not in env]
    if unknown:
        raise UnknownNameError(unknown, sorted(env))
    expected_shape = format_shape(derivation.symbols[target].shape)
    correct = derivation.defining(target)
    correct_formula = expanded(derivation, target) if correct else ""
    correct_tex = f"{correct.lhs} = {correct.tex}" if correct else ""

    def verdict(ok: bool, mistake: str, explanation: str, error: float, shape: str) -> Verdict:
        return Verdict(
            ok,
            target,
            mistake,
            explanation,
            parsed.source,
            correct_formula,
            correct_tex,
            error,
            shape,
            expected_shape,
        )

    shapes, dims = derivation.shapes()
    for name in env:
        shapes.setdefault(name, tuple(np.shape(env[name])))
    try:
        symbolic = infer_shape(parsed.expression, shapes, dims)
        U = evaluate(parsed, env)
    except FormulaShapeError as error:
        relabel = _wrong_index(derivation, parsed, env, truth)
        if relabel:
            return verdict(False, "wrong layer index", relabel, math.inf, "")
        return verdict(False, "wrong shape", f"the shapes do not fit: {error}", math.inf, "")
    except FormulaValueError as error:
        return verdict(False, "not finite", str(error), math.inf, "")
    shape = format_shape(symbolic)
    U = _oriented(U, truth)
    fits = _same_shape(symbolic, derivation.symbols[target].shape)
    if U.shape == truth.shape and fits:
        error = relative_error(U, truth)
        if error <= MATCH_RTOL:
            return verdict(True, "", f"{target} is correct", error, shape)
    elif U.shape == truth.shape:
        # the numbers fit only because S equals a layer width; symbolically the shape is wrong
        error = relative_error(U, truth)
    else:
        error = math.inf
    mistake, explanation = _classify(derivation, problem, target, U, truth)
    if mistake:
        return verdict(False, mistake, explanation, error, shape)
    relabel = _wrong_index(derivation, parsed, env, truth)
    if relabel:
        return verdict(False, "wrong layer index", relabel, error, shape)
    if U.shape != truth.shape or not fits:
        return verdict(
            False,
            "wrong shape",
            f"your formula gives a value of shape {shape}; {target} has shape {expected_shape}",
            error,
            shape,
        )
    return verdict(
        False,
        "mismatch",
        f"{target} differs from the true value (rel. error {error:.2g})",
        error,
        shape,
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


def _classify(
    derivation: Derivation, problem: Problem, target: str, U: np.ndarray, truth: np.ndarray
) -> tuple[str, str]:
    """(mistake, explanation) when U is a known distortion of the truth, else ('', '')."""
    S = problem.S
    base = getattr(derivation.loss, "base", math.e)
    candidates: list[tuple[str, np.ndarray]] = [("", truth)]
    if target.startswith("d"):
        for layer in range(1, derivation.K + 1):
            alternative = true_values(derivation, problem, skip=layer).get(target)
            if alternative is not None and relative_error(alternative, truth) > MATCH_RTOL:
                candidates.append((f"missing {_activation_words(derivation, layer)}", alternative))
    for label, A in candidates:
        for transposed in (False, True):
            B = A.T if transposed else A
            if B.shape != U.shape or (transposed and A.ndim < 2):
                continue
            c = _fit(U, B)
            if c is None:
                continue
            factor = _explain_factor(c, S, base)
            if factor is None:
                factor = f"off by a factor {c:.4g}"
            parts = [p for p in (label, "transposed" if transposed else "", factor) if p]
            if not parts:
                continue
            return _describe(parts, target, derivation, c, S, base)
    return "", ""


def _describe(
    parts: list[str], target: str, derivation: Derivation, c: float, S: int, base: float
) -> tuple[str, str]:
    words = {
        "flipped sign": f"your {target} is −1 times the true value: the sign is flipped "
        "(e.g. t − a where a − t belongs: ∂ℓ/∂a of ½(t − a)² is a − t)",
        "missing 1/S": f"your {target} is S = {S} times the true value: the 1/S of the cost "
        "C = (1/S) Σ ℓ_s is missing",
        "extra 1/S": f"your {target} is 1/S times the true value: 1/S is applied twice",
        "transposed": "your value is the transpose of the true one (check W's orientation: "
        + (
            "in the row notation W is in×out, Z = A W + 1b"
            if derivation.notation.samples_are_rows
            else "in the column notation W is out×in, Z = W A + b1ᵀ"
        )
        + ")",
    }
    explanation = []
    for part in parts:
        if part.startswith("missing the"):
            explanation.append(f"your formula leaves out {part[len('missing ') :]}")
        elif part.startswith("wrong log base"):
            explanation.append(
                f"your {target} is {c:.4g} times the true value: a log-base factor "
                f"(the cross-entropy here is in base {base:g}, so its gradient carries "
                f"1/ln {base:g}"
                + (" = 1" if base == math.e else f" = {1 / math.log(base):.4g}")
                + ")"
            )
        elif part.startswith("off by a factor"):
            explanation.append(f"your {target} is {c:.4g} times the true value")
        else:
            explanation.append(words.get(part, part))
    mistake = " + ".join(
        "missing activation derivative" if p.startswith("missing the") else p for p in parts
    )
    return mistake, "; ".join(explanation)


def _wrong_index(
    derivation: Derivation, parsed: Parsed, env: dict[str, Any], truth: np.ndarray
) -> str:
    """'W1 where W2 belongs' when changing one name's layer index makes the formula right."""
    names = parsed.names
    for name in names:
        match = re.fullmatch(r"([A-Za-z_]+?)(\d+)", name)
        if not match:
            continue
        stem, index = match.groups()
        for other in range(0, derivation.K + 1):
            replacement = f"{stem}{other}"
            if other == int(index) or replacement not in env:
                continue
            tree = _rename(parsed.expression, name, replacement)
            try:
                value = _oriented(evaluate(Parsed(None, tree, ast.unparse(tree)), env), truth)
            except (FormulaShapeError, FormulaValueError, UnknownNameError):
                continue
            if value.shape == truth.shape and relative_error(value, truth) <= MATCH_RTOL:
                return f"the formula holds with {replacement} in place of {name}: {name} belongs to another layer"
    return ""


def _rename(expression: ast.expr, old: str, new: str) -> ast.expr:
    class Renamer(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.Name:
            return ast.Name(id=new, ctx=node.ctx) if node.id == old else node

    tree = Renamer().visit(ast.parse(ast.unparse(expression), mode="eval")).body
    return ast.fix_missing_locations(tree)
