"""The errors nnmath raises on bad input: each names what is wrong and how to fix it.

Every error derives from :class:`NNMathError`, so the command line can print the message alone (no
traceback) with the exit status of its kind (``docs/errors.md``), while Python callers can still
catch the familiar builtin each one also derives from (``ValueError``, ``TypeError``,
``FloatingPointError``), as scikit-learn's conventions expect.

| class            | also a             | kind (exit status)  | raised for                          |
| SpecError        | ValueError         | usage (2)           | a spec, name, option or setting     |
| WrongTypeError   | TypeError          | usage (2)           | an argument of a type nnmath cannot use |
| ShapeError       | ValueError         | usage (2)           | shapes that do not fit together     |
| DataError        | ValueError         | data or file (3)    | data that cannot be used            |
| ModelFileError   | ValueError         | data or file (3)    | a model file that cannot be read    |
| OutputError      | ValueError         | data or file (3)    | a place that cannot be written      |
| DivergenceError  | FloatingPointError | divergence (4)      | training that diverged              |
"""

from __future__ import annotations


class NNMathError(Exception):
    """Base class of every error nnmath raises on purpose."""


class SpecError(NNMathError, ValueError):
    """A network spec string, activation name, loss name, option or setting nnmath cannot use."""


class WrongTypeError(NNMathError, TypeError):
    """An argument of a type nnmath cannot use: a string where a number belongs, an object array."""


class ShapeError(NNMathError, ValueError):
    """An array whose shape does not fit where it is used (names the layer and the shape expected)."""


class DataError(NNMathError, ValueError):
    """Input data that cannot be used: NaN or Inf, a non-numeric cell, a missing column, bad labels."""


class ModelFileError(NNMathError, ValueError):
    """A model file that is missing, truncated, corrupted or written by a newer nnmath."""


class OutputError(NNMathError, ValueError):
    """A file or folder nnmath cannot write: a folder where a file belongs, no permission, no
    room. Checked before the work whenever it can be."""


class DivergenceError(NNMathError, FloatingPointError):
    """Training produced a NaN or Inf loss; the message names the epoch and batch and a remedy."""
