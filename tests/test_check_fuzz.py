"""Fuzzing the formula language: whatever a user types, only nnmath's own errors come out.

Hypothesis feeds random and grammar-built formulas to the parser, the evaluator and
``check_formula``; each either returns or raises an ``NNMathError`` (which the command line prints
as one line), never a NumPy or Python exception. A short run is part of the test suite; a longer
one is

    NNMATH_FUZZ_EXAMPLES=20000 python -m pytest tests/test_check_fuzz.py -q

(about 10 minutes on one core).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnmath.derivation import check_formula, derive, evaluate, make_problem, parse
from nnmath.derivation.functions import FUNCTIONS
from nnmath.errors import NNMathError
from nnmath.losses import get_loss

EXAMPLES = int(os.environ.get("NNMATH_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=EXAMPLES <= 150,  # the CI run is the same every time; a long run explores
)

DERIVATION = derive("3-4relu-3softmax", get_loss("cross-entropy"), "row")
PROBLEM = make_problem(DERIVATION, samples=3, seed=1)
ENV = {
    "A": np.linspace(-1.0, 1.0, 12).reshape(3, 4),
    "B": np.linspace(0.1, 2.0, 12).reshape(4, 3),
    "v": np.arange(1.0, 4.0),
    "s": np.float64(0.5),
    "S": 3,
    "n": 4,
}
NAMES = ["A", "B", "v", "s", "S", "n", "X", "Z1", "A1", "Z2", "Yhat", "Y", "W1", "W2", "dZ2"]
TOKENS = [
    *NAMES,
    *FUNCTIONS,
    *"0123456789.+-*/@()<>=,'[]{}:;_ eT\\\"",
    "**",
    ".T",
    "->",
    "einsum('ij,jk->ik', ",
    "einsum('ab->aa', ",
    "axis=",
    "keepdims=True",
    "1e308",
    "1e999",
    "nan",
    "inf",
    "__import__",
    "lambda",
    "\n",
    "\x00",
    "−",
]


def survives(call, *args) -> None:
    """``call(*args)`` returns, or raises an nnmath error; anything else fails the test."""
    with contextlib.suppress(NNMathError):
        call(*args)


def check(text: str) -> None:
    survives(check_formula, DERIVATION, PROBLEM, text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join))
def test_token_soup(text):
    survives(parse, text)
    survives(evaluate, text, ENV)
    check("dZ2 = " + text)


@FUZZ
@given(st.text(max_size=60))
def test_any_text(text):
    survives(evaluate, text, ENV)
    check(text)


def _leaves() -> st.SearchStrategy[str]:
    numbers = st.one_of(
        st.integers(-3, 10).map(str),
        st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
        st.sampled_from(["0", "0.0", "1e308", "1e-320", "2"]),
    )
    ones = st.tuples(st.integers(0, 5), st.integers(0, 5)).map(lambda t: f"ones({t[0]}, {t[1]})")
    return st.one_of(st.sampled_from(NAMES[:6]), numbers, ones, st.just("eye(3)"))


def _branches(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "@", "**", "<", ">="]), inner)
    unary = st.tuples(st.sampled_from(["-", "+"]), inner)
    one = st.tuples(st.sampled_from([f for f in FUNCTIONS if f not in ("ones", "eye")]), inner)
    two = st.tuples(st.sampled_from(["maximum", "minimum", "outer", "vjp"]), inner, inner)
    subscripts = st.sampled_from(["ij->ji", "ij,jk->ik", "i->", "ij->", "ii->i", "si,sij->sj", "ab,cd->"])
    einsum = st.tuples(subscripts, st.lists(inner, min_size=1, max_size=3))
    reduce = st.tuples(st.sampled_from(["sum", "mean"]), inner, st.integers(-3, 3), st.booleans())
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        unary.map(lambda t: f"{t[0]}{t[1]}"),
        inner.map(lambda e: f"({e}).T"),
        one.map(lambda t: f"{t[0]}({t[1]})"),
        two.map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        einsum.map(lambda t: f"einsum('{t[0]}', {', '.join(t[1])})"),
        reduce.map(lambda t: f"{t[0]}({t[1]}, axis={t[2]}, keepdims={t[3]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"where({t[0]}, {t[1]}, {t[2]})"),
    )


FORMULAS = st.recursive(_leaves(), _branches, max_leaves=12)


@FUZZ
@given(FORMULAS)
def test_grammar_built_formulas(text):
    survives(evaluate, text, ENV)


@FUZZ
@given(FORMULAS.map(lambda t: t.replace("A", "A1").replace("B", "W2").replace("v", "dZ2")))
def test_grammar_built_formulas_in_check(text):
    check("dW2 = " + text)
