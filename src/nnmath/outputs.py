"""Where nnmath writes: every output path is checked before the work, and work whose file cannot
be written at the end is saved somewhere else rather than lost.

:func:`check_output` is the one check every command runs on each path it will write (``train -o``,
``--plots``, ``--checkpoint``, ``predict -o``, ``export``, ``init -o``, ``derive -o``) before it
reads data or computes anything. It refuses, in one line that names the path and the fix:

- a folder where a file belongs (or a file where a folder belongs, for ``--plots``);
- a path under something that is not a folder (``model.nnm/out.csv``);
- a place nnmath cannot create files in: no permission, a read-only file system. This is tested
  by creating and removing an empty temporary file there, which is what the save will do, so it
  holds for root and for file systems that permissions do not describe;
- an existing file that may not be replaced.

Missing folders are not an error: the save creates them (``runs/iris/model.nnm`` needs ``runs/iris``),
and the check makes sure it can. A disk that fills up during the work cannot be foreseen:
:func:`save_with_fallback` then writes the result to the first of the current folder, the system's
temporary folder and the home folder that takes it, under a unique name, and reports where.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnmath.errors import OutputError, WrongTypeError

PROBE_PREFIX = ".nnmath-probe-"


def as_path(path: Any, what: str) -> str | os.PathLike[str]:
    """``path`` if it is a str or os.PathLike, else a WrongTypeError naming ``what`` it is for."""
    if isinstance(path, str | os.PathLike):
        return path
    raise WrongTypeError(f"{what} is given by a path (a str or pathlib.Path), got {path!r}"[:200])


def _nearest_existing(path: Path) -> Path:
    """The path itself or its closest ancestor that exists (the current folder at worst)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _can_create_files_in(folder: Path) -> str | None:
    """None when a file can be created (and removed) in ``folder``, else the system's reason."""
    try:
        descriptor, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError as error:
        return error.strerror or str(error)
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def check_output(
    path: str | os.PathLike[str], option: str, kind: str = "file", example: str = "out"
) -> Path:
    """Refuse, before any work, a ``kind`` ("file" or "folder") that cannot be written at ``path``;
    ``option`` names where the path came from (``-o``, ``--plots``) in the message, ``example`` is
    a file name to suggest. Returns the path."""
    target = Path(path)
    if str(path) == "":
        raise OutputError(f"{option} is empty; give the {kind} to write")
    if kind == "file" and target.is_dir():
        raise OutputError(
            f"{target} is a folder; give a file name for {option}, e.g. {target / example}"
        )
    if kind == "folder" and target.exists() and not target.is_dir():
        raise OutputError(f"{target} is a file, not a folder; give {option} a folder")
    existing = _nearest_existing(target if kind == "folder" else target.parent)
    if not existing.is_dir():
        raise OutputError(
            f"cannot write {target}: {existing} is a file, not a folder; choose another place "
            f"for {option}"
        )
    reason = _can_create_files_in(existing)
    if reason is not None:
        raise OutputError(
            f"cannot write {target}: nnmath cannot create files in {existing} ({reason}); choose "
            f"another place for {option}"
        )
    if kind == "file" and target.exists() and not os.access(target, os.W_OK):
        raise OutputError(
            f"cannot write {target}: the file exists and may not be replaced (no permission); "
            f"choose another name for {option}"
        )
    return target


def fallback_paths(path: Path) -> list[Path]:
    """Where a result that could not be written to ``path`` goes instead: a unique name in the
    current folder, the system's temporary folder and the home folder, in that order."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{path.stem}-rescued-{stamp}-{os.getpid()}{path.suffix}"
    folders = [Path.cwd(), Path(tempfile.gettempdir()), Path.home()]
    unique = [folder for i, folder in enumerate(folders) if folder not in folders[:i]]
    return [folder / name for folder in unique]


def save_with_fallback(
    save: Callable[[Path], Path], path: str | os.PathLike[str], what: str
) -> tuple[Path, OSError | None]:
    """``save(path)``; if that fails with an OSError (a full disk, a folder removed meanwhile), save
    to the first of :func:`fallback_paths` that works. Returns (where it was saved, the error that
    moved it, or None). Raises OutputError, naming every place tried, when nothing works."""
    path = Path(path)
    try:
        return save(path), None
    except OSError as error:
        first = error
    tried = [path]
    for candidate in fallback_paths(path):
        tried.append(candidate)
        try:
            return save(candidate), first
        except OSError:
            continue
    raise OutputError(
        f"could not save the {what} to {path} ({first.strerror or first}), nor to "
        f"{', '.join(str(p) for p in tried[1:])}; free some disk space and run again"
    )


def rescue_message(what: str, path: str | os.PathLike[str], saved: Path, error: OSError) -> str:
    """The one line that says a result went to a fallback place, and why."""
    return (
        f"could not write the {what} to {path} ({error.strerror or error}); it was saved to "
        f"{saved} instead: move it where you want it"
    )
