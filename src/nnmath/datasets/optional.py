"""Optional packages (scikit-learn, mnist1d, pyarrow), imported only by the code that needs them.

They come with the data extra (``pip install 'nnmath[data]'``); a missing one raises a DataError
that names the package and the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from nnmath.errors import DataError

_DATA_EXTRA = "pip install 'nnmath[data]'"


_PACKAGE_OF_MODULE = {"sklearn": "scikit-learn", "mnist1d": "mnist1d", "pyarrow": "pyarrow"}


def _import_optional(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise a DataError naming the package and the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = _PACKAGE_OF_MODULE.get(module.split(".")[0], module)
        raise DataError(
            f"{purpose} needs the optional package {package!r}, which is not installed "
            f"({err}); install the data extra: {_DATA_EXTRA}"
        ) from err
