"""The errors nnmath raises on bad input: each names what is wrong and how to fix it.

Every error derives from :class:`NNMathError`, so the command line can print the message alone
(no traceback) and exit with status 2, while Python callers can still catch the familiar builtin
(``ValueError``, ``FloatingPointError``) that each one also derives from.
"""

from __future__ import annotations


class NNMathError(Exception):
    """Base class of every error nnmath raises on purpose."""


class SpecError(NNMathError, ValueError):
    """A network spec string, activation name or loss name that nnmath cannot read."""


class ShapeError(NNMathError, ValueError):
    """An array whose shape does not fit where it is used (names the layer and the shape expected)."""


class DataError(NNMathError, ValueError):
    """Input data that cannot be used: NaN or Inf, a non-numeric cell, a missing column, bad labels."""


class ModelFileError(NNMathError, ValueError):
    """A model file that is missing, truncated, corrupted or written by a newer nnmath."""


class DivergenceError(NNMathError, FloatingPointError):
    """Training produced a NaN or Inf loss; the message names the epoch and batch and a remedy."""
