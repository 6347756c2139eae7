"""The MathML the page shows: numbers, abbreviated matrices, formulas and prose."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("latex2mathml")

from nnmath.playground.mathml import formula, matrix, number, prose, shape  # noqa: E402


def cells(mathml: str) -> list[list[str]]:
    rows = re.findall(r"<mtr>(.*?)</mtr>", mathml)
    return [re.findall(r"<mtd>(.*?)</mtd>", row) for row in rows]


def test_numbers_are_rounded_with_a_true_minus_and_no_negative_zero():
    assert number(-0.123456) == "\u22120.1235"
    assert number(-1e-20, 4) == "\u22121e\u221220"
    assert number(-0.0) == "0" and number(0.0) == "0"
    assert number(float("nan")) == "nan"


def test_a_small_matrix_is_shown_whole_and_a_large_one_by_its_corners():
    small = matrix(np.arange(6.0).reshape(2, 3))
    assert [[re.sub("<.*?>", "", c) for c in row] for row in cells(small)] == [
        ["0", "1", "2"],
        ["3", "4", "5"],
    ]
    large = cells(matrix(np.arange(80.0).reshape(8, 10)))
    assert len(large) == 6 and all(len(row) == 6 for row in large)
    assert "⋮" in large[3][0] and "⋱" in large[3][3] and "⋯" in large[0][3]
    first, last = (re.sub("<.*?>", "", c) for c in (large[0][0], large[-1][-1]))
    assert (first, last) == ("0", "79")
    assert shape(np.zeros((8, 10))) == "8 × 10" and shape(np.float64(1)) == "scalar"


def test_exponents_are_written_as_powers_of_ten():
    assert "<msup><mn>10</mn><mn>\u22125</mn></msup>" in matrix(np.array([[1.2e-5]]))


def test_a_stack_of_jacobians_shows_the_first_two():
    stack = matrix(np.ones((3, 2, 2)))
    assert stack.count("<mtable>") == 2 and "…" in stack


def test_bold_and_double_struck_digits_become_their_unicode_letters():
    assert "<mn>𝟏</mn>" in formula(r"\mathbf{1} b_{1}")
    assert "<mn>𝟙</mn>" in formula(r"\mathbb{1}[z > 0]")


def test_prose_escapes_html_and_renders_bold_code_and_math():
    html = prose("**Step 1.** <script>x</script> `A2.T` and $Z_{1}$")
    assert html.startswith("<strong>Step 1.</strong>")
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert (
        "<code>A2.T</code>" in html and '<math xmlns="http://www.w3.org/1998/Math/MathML"' in html
    )
