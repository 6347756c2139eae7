"""A worked example: the derivation's equations evaluated on small numbers, then gradient descent.

Every value is the derivation's own code evaluated on the problem's numbers (the same evaluation
``--verify`` and ``nnmath check`` use), written with the numbers substituted into the formula, so
that a reader can redo each product with a pencil. The gradients are then compared with nnmath's
backward pass, and one step of gradient descent W ← W − η dW is taken (parameters named in
``freeze`` are held fixed) and the cost recomputed. With ``steps = N`` the descent goes on for N
steps with the engine's backward pass; the cost of each step and the final parameters are kept at
full precision.

The numbers may be the user's own (:mod:`nnmath.derivation.inputs` reads weights, inputs and
targets): a textbook example is reproduced exactly.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmath.derivation.document import Derivation, Equation
from nnmath.derivation.evaluate import TRUSTED, evaluate
from nnmath.derivation.graph import kind_of
from nnmath.derivation.render import loss_name
from nnmath.derivation.syntax import parse
from nnmath.derivation.typeset import to_tex
from nnmath.derivation.verify import (
    Problem,
    checked_problem,
    draw_weights,
    environment,
    randomize_batch_norms,
)
from nnmath.errors import DivergenceError, ShapeError, SpecError
from nnmath.losses import as_targets
from nnmath.network import MLP, as_generator


@dataclass(repr=False)
class WorkedExample:
    """The problem, each equation with its value, one SGD step, and the descent that follows."""

    derivation: Derivation
    problem: Problem
    learning_rate: float
    env: dict[str, Any]
    steps: list[tuple[Equation, np.ndarray]] = field(default_factory=list)
    updated: dict[str, np.ndarray] = field(default_factory=dict)
    cost_before: float = math.nan
    cost_after: float = math.nan
    backward_difference: float = math.nan  # largest |printed gradient − engine's backward|
    frozen: tuple[str, ...] = ()  # parameters held fixed
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (k, C before, C after)
    final: dict[str, np.ndarray] = field(default_factory=dict)  # parameters after the last step

    @property
    def step_count(self) -> int:
        """The number of gradient steps the example took (1 before any ran)."""
        return self.history[-1][0] if self.history else 1

    def __repr__(self) -> str:
        return (
            f"<worked example of {self.derivation.spec}, S = {self.problem.S}, "
            f"{self.step_count} step(s): C {self.cost_before!r} → {self.history[-1][2]!r}>"
            if self.history
            else f"<worked example of {self.derivation.spec}, S = {self.problem.S}>"
        )

    def _repr_markdown_(self) -> str:
        return example_markdown(self)


def frozen_parameters(
    names: Iterable[str], K: int, parameters: list[str] | None = None
) -> tuple[str, ...]:
    """``["b"]`` → (b1, …, bK); ``["W"]`` → every weight; ``["b1", "W2"]`` as given; ``gamma`` and
    ``beta`` for every batch norm's. ``parameters`` lists the network's (default W1, b1, …, bK)."""
    if parameters is None:
        parameters = [f"{kind}{layer}" for layer in range(1, K + 1) for kind in "Wb"]
    chosen: list[str] = []
    for name in (part.strip() for item in names for part in item.split(",")):
        if name in ("W", "b", "gamma", "beta"):
            chosen += [p for p in parameters if p.rstrip("0123456789") == name]
        elif name in parameters:
            chosen.append(name)
        elif name:
            raise SpecError(
                f"cannot hold {name!r} fixed; name parameters ({', '.join(parameters)}), or W or b "
                "for all weights or all biases"
            )
    return tuple(p for p in parameters if p in chosen)


def _inputs(
    derivation: Derivation, rng: np.random.Generator, samples: int, X: Any, T: Any
) -> tuple[np.ndarray, np.ndarray, str]:
    """The batch: the given X and T, or one-decimal inputs and targets that suit the loss."""
    spec = derivation.spec
    if X is not None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != spec.n_in:
            raise ShapeError(
                f"the inputs have shape {X.shape}; the network takes {spec.n_in} per sample"
            )
        samples = X.shape[0]
    if T is not None:
        T = np.asarray(T, dtype=np.float64)
        T = (
            T[None, :]
            if T.ndim == 1 and spec.n_out > 1 and T.shape[0] == spec.n_out and samples == 1
            else T
        )
        samples = T.shape[0] if X is None else samples
        if T.shape[0] != samples:
            raise ShapeError(
                f"{T.shape[0]} target rows for {samples} input rows; give one per sample"
            )
    if samples < 1:
        raise ShapeError(f"--samples must be at least 1, got {samples}")
    given = "your inputs and targets" if X is not None and T is not None else ""
    if X is None:
        X = np.round(rng.normal(size=(samples, spec.n_in)), 1)
    if T is None:
        T = _random_targets(derivation, rng, samples)
    return X, as_targets(T, spec.n_out, np.float64), given


def _random_targets(derivation: Derivation, rng: np.random.Generator, samples: int) -> np.ndarray:
    """Targets that suit the loss: one-hot, 0/1, or one-decimal values in the output's range."""
    spec, name = derivation.spec, derivation.loss.name
    n_out = spec.n_out
    if name == "cross-entropy":
        return np.eye(n_out)[rng.integers(0, n_out, size=samples)]
    if name == "binary-cross-entropy":
        return rng.integers(0, 2, size=(samples, n_out)).astype(np.float64)
    if spec.output in ("sigmoid", "softmax"):
        return np.round(rng.uniform(0.0, 1.0, size=(samples, n_out)), 1)
    return np.round(rng.normal(size=(samples, n_out)), 1)


def example_problem(
    derivation: Derivation,
    *,
    samples: int = 2,
    seed: int = 0,
    model: MLP | None = None,
    X: Any = None,
    T: Any = None,
    weights: str = "",
) -> Problem:
    """Small numbers for a pencil: one-decimal inputs, weights and biases, and targets that suit
    the loss (one-hot, 0/1, or one-decimal values in the output's range), unless the model's
    weights (``weights`` says where they came from), the inputs X or the targets T are given."""
    rng = as_generator(seed, None)  # a whole seed ≥ 0
    spec = derivation.spec
    if model is None:
        network = MLP(spec, rng=rng)
        rounded = [
            (np.round(L.W, 1), np.round(rng.normal(0.0, 0.5, size=L.b.shape), 1))
            for L in network.linears
        ]
        network = randomize_batch_norms(MLP.from_weights(spec, rounded), rng, decimals=1)
        source = f"weights from seed {seed}, rounded to one decimal"
    else:
        if str(model.spec) != str(spec):
            raise ShapeError(f"the model is {model.spec}, the derivation is for {spec}")
        network, source = model.astype(np.float64), weights or "the model's weights"
    X, T, given = _inputs(derivation, rng, samples, X, T)
    data = given or f"data from seed {seed}" + (
        ", rounded to one decimal" if model is not None else ""
    )
    w = draw_weights(derivation, rng, len(X), decimals=1)
    return checked_problem(Problem(network, X, T, f"{source}, {data}", seed, w), derivation)


def worked_example(
    derivation: Derivation,
    problem: Problem,
    learning_rate: float = 0.5,
    *,
    freeze: Iterable[str] = (),
    steps: int = 1,
    every: int | None = None,
) -> WorkedExample:
    """Evaluate every named equation in order, compare with the engine, take one SGD step, then
    go on to ``steps`` steps (reporting the cost every ``every`` steps; default: each of the
    first 20, else a tenth of them), holding the parameters in ``freeze`` fixed."""
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise SpecError(f"--learning-rate must be a finite number > 0, got {learning_rate}")
    if not 1 <= steps <= 10_000_000:
        raise SpecError(f"--steps must be between 1 and 10000000, got {steps}")
    every = every if every is not None else (1 if steps <= 20 else steps // 10)
    if every < 1:
        raise SpecError(f"--every must be at least 1, got {every}")
    frozen = frozen_parameters(freeze, derivation.K, problem.model.parameter_names())
    env = environment(derivation, problem)
    example = WorkedExample(derivation, problem, learning_rate, env, frozen=frozen)
    for equation in derivation.equations():
        if not equation.name:
            continue
        value = evaluate(equation.code, env, budget=TRUSTED)
        example.steps.append((equation, value))
        if equation.kind != "forward":
            env[equation.name] = value
    _first_step(example)
    example.history, network = descend(
        problem, derivation.loss, learning_rate, steps, frozen=frozen, every=every,
        penalty=derivation.penalty,
    )  # fmt: skip
    example.final = _parameters(derivation, network)
    return example


def _first_step(example: WorkedExample) -> None:
    """The printed gradients against the engine's, and θ ← θ − η dθ from the printed ones."""
    derivation, problem, env = example.derivation, example.problem, example.env
    notation, model = derivation.notation, problem.model
    _, grads = engine_gradients(problem, derivation.loss, derivation.penalty, model)
    differences = []
    for name, engine in zip(model.parameter_names(), grads.flat(), strict=True):
        printed = env[f"d{name}"]
        differences.append(np.max(np.abs(printed - notation.from_engine(kind_of(name), engine))))
        step = 0.0 if name in example.frozen else example.learning_rate * printed
        example.updated[name] = env[name] - step
    example.backward_difference = float(max(differences))
    example.cost_before = float(env["C"])
    updated = _network(derivation, model, example.updated)
    example.cost_after = engine_gradients(problem, derivation.loss, derivation.penalty, updated)[0]


def engine_gradients(problem: Problem, loss: Any, penalty: Any, network: MLP) -> tuple[float, Any]:
    """nnmath's cost and backward pass on the problem, in training mode with the problem's masks
    (a fresh ``default_rng(mask_seed)`` draws them again) and sample weights; on a copy, so that
    batch norm's running statistics stay where they were."""
    return network.copy().loss_and_gradients(
        problem.X,
        problem.T,
        loss,
        rng=np.random.default_rng(problem.mask_seed),
        sample_weight=problem.sample_weight,
        penalty=penalty,
    )


def _network(derivation: Derivation, model: MLP, parameters: dict[str, np.ndarray]) -> MLP:
    """A copy of ``model`` with the parameters (in the derivation's notation) put in."""
    notation, arrays = derivation.notation, model.named_arrays()
    for name, value in parameters.items():
        arrays[name] = np.asarray(notation.to_engine(kind_of(name), value), dtype=np.float64)
    return MLP.from_arrays(model.spec, {k: np.array(v) for k, v in arrays.items()})


def _parameters(derivation: Derivation, network: MLP) -> dict[str, np.ndarray]:
    notation = derivation.notation
    return {
        name: notation.from_engine(kind_of(name), value)
        for name, value in zip(network.parameter_names(), network.parameters(), strict=True)
    }


def descend(
    problem: Problem,
    loss: Any,
    learning_rate: float,
    steps: int,
    *,
    frozen: Iterable[str] = (),
    every: int = 1,
    penalty: Any = None,
) -> tuple[list[tuple[int, float, float]], MLP]:
    """Plain gradient descent on the whole batch with the engine's backward pass (the same
    dropout masks and sample weights at every step, and the penalty if any).

    Returns [(k, C before step k, C after step k)] for k = 1, every, 2·every, …, steps, and the
    network after the last step. Parameters named in ``frozen`` are not updated.
    """
    network, held = problem.model.copy(), set(frozen)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging cost is caught below
        return _descent(network, problem, loss, penalty, learning_rate, steps, held, every)


def _descent(
    network: MLP,
    problem: Problem,
    loss: Any,
    penalty: Any,
    learning_rate: float,
    steps: int,
    held: set[str],
    every: int,
) -> tuple[list[tuple[int, float, float]], MLP]:
    history: list[tuple[int, float, float]] = []
    cost, grads = engine_gradients(problem, loss, penalty, network)
    for step in range(1, steps + 1):
        names, parameters = network.parameter_names(), network.parameters()
        for name, parameter, grad in zip(names, parameters, grads.flat(), strict=True):
            if name not in held:
                parameter -= learning_rate * grad
        after, grads = engine_gradients(problem, loss, penalty, network)
        if not math.isfinite(after):
            raise DivergenceError(
                f"the cost became {after} at step {step} (it was {cost}); try a smaller "
                f"--learning-rate such as {learning_rate / 10:g}"
            )
        if step == 1 or step % every == 0 or step == steps:
            history.append((step, cost, after))
        cost = after
    return history, network


# ---- Markdown ----------------------------------------------------------------------------------


def _number(x: float, digits: int) -> str:
    text = f"{x:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def matrix_tex(value: np.ndarray, digits: int = 4) -> str:
    """A value as a LaTeX bmatrix (rounded); a stack of matrices as one per sample; a four-index
    Jacobian over the whole batch as its (S·n) × (S·n) matrix."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return _number(float(value), digits)
    if value.ndim == 1:
        value = value[None, :]
    if value.ndim == 4:  # a Jacobian over the whole batch, shown as ∂vec(Y)/∂vec(X), row-major
        a, b, c, e = value.shape
        return matrix_tex(value.reshape(a * b, c * e), digits)
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
    """The worked example as Markdown: every step with numbers substituted, rounded to ``digits``
    for reading; the costs and the final parameters at full precision."""
    d, p = example.derivation, example.problem
    out = [
        f"# Worked example: {d.spec} with {loss_name(d)}, S = {p.S}",
        "",
        (f"Generated by `{command}`. " if command else "")
        + f"Numbers to follow with a pencil: {p.source}, {p.S} sample{'s' if p.S > 1 else ''}, "
        f"in the {d.notation.title}. Values are rounded to {digits} significant digits (`--json` "
        "gives them exactly; the costs below are exact); each is the derivation's own formula "
        "evaluated, shown with the numbers substituted.",
        "",
    ]
    out += _data_markdown(example, digits)
    out += _equations_markdown(example, digits)
    out += _update_markdown(example, digits)
    if example.step_count > 1:
        out += _descent_markdown(example)
    return "\n".join(out)


def _data_markdown(example: WorkedExample, digits: int) -> list[str]:
    d = example.derivation
    out = ["## The data and the parameters", ""]
    for name in ("X", "Y", "w"):
        if name in example.env:
            out += [f"$${d.symbols[name].tex} = {matrix_tex(example.env[name], digits)}$$", ""]
    for layer in range(1, d.K + 1):
        W, b = d.symbols[f"W{layer}"].tex, d.symbols[f"b{layer}"].tex
        out += [
            f"$${W} = {matrix_tex(example.env[f'W{layer}'], digits)}, \\qquad "
            f"{b} = {matrix_tex(example.env[f'b{layer}'], digits)}$$",
            "",
        ]
    for name in [*_given_extras(example), "alpha"]:
        if name in example.env and name in d.symbols:
            out += [f"$${d.symbols[name].tex} = {matrix_tex(example.env[name], digits)}$$", ""]
    return out


def _given_extras(example: WorkedExample) -> list[str]:
    """Batch norm's γ, β (and ε) and dropout's masks D_l, layer by layer."""
    names = ["eps"] if "eps" in example.env else []
    for layer in range(1, example.derivation.K + 1):
        names += [f"gamma{layer}", f"beta{layer}", f"D{layer}"]
    return names


def _equations_markdown(example: WorkedExample, digits: int) -> list[str]:
    out: list[str] = []
    title = None
    for equation, value in example.steps:
        section = {"forward": "Forward pass", "cost": "Cost"}.get(equation.kind, "Backward pass")
        if section != title:
            out += [f"## {section}", ""]
            title = section
        out += [
            f"$${equation.lhs} = {equation.tex}$$",
            "",
            f"$$= {_substituted(example, equation, digits)} = {matrix_tex(value, digits)}$$",
            "",
        ]
    return out


def _update_markdown(example: WorkedExample, digits: int) -> list[str]:
    d = example.derivation
    eta = _number(example.learning_rate, digits)
    held = ", ".join(f"${d.symbols[name].tex}$" for name in example.frozen)
    out = [
        "## One step of gradient descent",
        "",
        f"With learning rate $\\eta = {eta}$, every parameter moves against its gradient: "
        "$W \\leftarrow W - \\eta\\, dW$, $b \\leftarrow b - \\eta\\, db$"
        + (f"; {held} {'is' if len(example.frozen) == 1 else 'are'} held fixed." if held else "."),
        "",
    ]
    for name in example.problem.model.parameter_names():
        symbol, grad = d.symbols[name].tex, d.symbols[f"d{name}"].tex
        if name in example.frozen:
            value = matrix_tex(example.env[name], digits)
            out += [f"$${symbol} = {value} \\quad \\text{{(held fixed)}}$$", ""]
            continue
        out += [
            f"$${symbol} \\leftarrow {symbol} - {eta}\\, {grad} = "
            f"{matrix_tex(example.env[name], digits)} - {eta}\\, "
            f"{matrix_tex(example.env[f'd{name}'], digits)} = "
            f"{matrix_tex(example.updated[name], digits)}$$",
            "",
        ]
    return out + [
        f"The cost goes from $C = {example.cost_before!r}$ to $C = {example.cost_after!r}$ "
        "after the step.",
        "",
        f"Every gradient above equals nnmath's backward pass on the same numbers (largest "
        f"difference {example.backward_difference:.1e}).",
        "",
    ]


def _descent_markdown(example: WorkedExample) -> list[str]:
    """The cost at the reported steps and the final parameters, at full precision."""
    steps = example.step_count
    out = [
        f"## {steps} steps of gradient descent",
        "",
        'The same update, repeated on the same batch with nnmath\'s backward pass. "C before" is '
        'the cost of the step\'s forward pass, from which its gradient is taken; "C after" is the '
        "cost once its update is made.",
        "",
        "| step | C before the step | C after the step |",
        "| ---: | ---: | ---: |",
    ]
    out += [f"| {k} | {before!r} | {after!r} |" for k, before, after in example.history]
    out += ["", f"The parameters after step {steps}:", "", "```"]
    out += [f"{name} = {value.tolist()!r}" for name, value in example.final.items()]
    return out + ["```", ""]


def example_json(example: WorkedExample) -> str:
    """The worked example's exact values as JSON (every number at full precision)."""
    d = example.derivation
    document = {
        "spec": str(d.spec),
        "loss": loss_name(d),
        "notation": d.notation.name,
        "source": example.problem.source,
        "samples": example.problem.S,
        "learning_rate": example.learning_rate,
        "frozen": list(example.frozen),
        "inputs": {
            name: np.asarray(example.env[name]).tolist()
            for name in ("X", "Y", "w", *_given_extras(example))
            if name in example.env and not name.startswith(("gamma", "beta"))
        },
        "parameters": {
            name: example.env[name].tolist() for name in example.problem.model.parameter_names()
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
        "descent": [
            {"step": k, "cost_before": before, "cost_after": after}
            for k, before, after in example.history
        ],
        "final_parameters": {name: value.tolist() for name, value in example.final.items()},
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
