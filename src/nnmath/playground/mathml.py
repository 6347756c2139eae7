"""MathML for the page: formulas from the library's LaTeX (latex2mathml), numbers as matrices.

Browsers render MathML natively, so the page needs no math library of its own. A formula's LaTeX
is the derivation's own (converted once and cached); a value is written straight into a MathML
table with its numbers rounded for reading, a large one abbreviated to its corners (``⋯``, ``⋮``).
Markdown prose of the derivation (``**bold**``, ``$math$``, ```code```) becomes HTML.
"""

from __future__ import annotations

import functools
import html
import math
import re

import numpy as np
from latex2mathml.converter import convert

MAX_ROWS = 6
MAX_COLUMNS = 6

_INLINE_MATH = re.compile(r"\$([^$]+)\$")
# Browsers implementing MathML Core ignore mathvariant on digits: \mathbf{1} (the column of ones)
# and \mathbb{1} (the indicator) are written as the Unicode bold and double-struck digits instead.
_STYLED_DIGIT = re.compile(r'<mn mathvariant="(bold|double-struck)">(\d)</mn>')
_DIGIT_BASE = {"bold": 0x1D7CE, "double-struck": 0x1D7D8}
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


@functools.lru_cache(maxsize=4096)
def formula(tex: str, display: bool = True) -> str:
    """The LaTeX ``tex`` as a MathML element (block or inline)."""
    mathml = convert(tex, display="block" if display else "inline")
    return _STYLED_DIGIT.sub(
        lambda m: f"<mn>{chr(_DIGIT_BASE[m.group(1)] + int(m.group(2)))}</mn>", mathml
    )


def prose(markdown: str) -> str:
    """A line of the derivation's Markdown as HTML: escaped text, bold, code and inline math."""
    parts = []
    for index, piece in enumerate(_INLINE_MATH.split(markdown)):
        if index % 2:
            parts.append(formula(piece, display=False))
            continue
        text = html.escape(piece, quote=False)
        text = _BOLD.sub(r"<strong>\1</strong>", text)
        parts.append(_CODE.sub(r"<code>\1</code>", text))
    return "".join(parts)


def number(x: float, digits: int = 4) -> str:
    """x rounded to ``digits`` significant digits, with a true minus sign (−0 is 0)."""
    if not math.isfinite(x):
        return str(x)
    text = f"{x:.{digits}g}"
    if text in ("-0", "0"):
        return "0"
    return text.replace("-", "\u2212")


def _cell(x: float, digits: int) -> str:
    text = number(x, digits)
    if "e" in text:  # 1.2e−05 → 1.2×10^−5
        mantissa, exponent = text.split("e")
        exponent = exponent.replace("+", "").lstrip("0") or "0"
        exponent = (
            "\u2212" + exponent[1:].lstrip("0") if exponent.startswith("\u2212") else exponent
        )
        return (
            f"<mrow><mn>{mantissa}</mn><mo>×</mo><msup><mn>10</mn><mn>{exponent}</mn></msup></mrow>"
        )
    return f"<mn>{text}</mn>"


def _shown(count: int, limit: int) -> list[int | None]:
    """Indices to show of ``count``: all of them, or the first and last ones around a gap (None)."""
    if count <= limit:
        return list(range(count))
    head = (limit + 1) // 2
    tail = limit - head - 1
    return [*range(head), None, *range(count - tail, count)]


def _bracketed(value: np.ndarray, digits: int) -> str:
    """A 2-D array as a bracketed MathML table, abbreviated beyond MAX_ROWS × MAX_COLUMNS."""
    rows = []
    for i in _shown(value.shape[0], MAX_ROWS):
        cells = []
        for j in _shown(value.shape[1], MAX_COLUMNS):
            if i is None:
                cells.append("<mo>⋱</mo>" if j is None else "<mo>⋮</mo>")
            else:
                cells.append("<mo>⋯</mo>" if j is None else _cell(value[i, j], digits))
        rows.append("<mtr>" + "".join(f"<mtd>{c}</mtd>" for c in cells) + "</mtr>")
    table = "<mtable>" + "".join(rows) + "</mtable>"
    return f'<mrow><mo stretchy="true">[</mo>{table}<mo stretchy="true">]</mo></mrow>'


def matrix(value: np.ndarray, digits: int = 4) -> str:
    """A scalar, vector or matrix as MathML (a stack of per-sample matrices: the first two)."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return f"<math>{_cell(float(value), digits)}</math>"
    if value.ndim == 3:
        shown = "<mo>,</mo>".join(_bracketed(m, digits) for m in value[:2])
        more = "<mo>,</mo><mo>…</mo>" if len(value) > 2 else ""
        return f"<math><mrow><mo>(</mo>{shown}{more}<mo>)</mo></mrow></math>"
    return f"<math>{_bracketed(value if value.ndim == 2 else value[None, :], digits)}</math>"


def shape(value: np.ndarray) -> str:
    """'10 × 2' (a stack: '10 × 2 × 2'; a scalar: 'scalar')."""
    value = np.asarray(value)
    return " × ".join(str(n) for n in value.shape) if value.ndim else "scalar"
