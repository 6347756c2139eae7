"""The command line's one place where errors become exit statuses and one line each."""

from __future__ import annotations

import errno
import warnings

import pytest

import nnmath.cli.info as info
from nnmath import cli
from nnmath.errors import (
    DataError,
    DivergenceError,
    ModelFileError,
    OutputError,
    ShapeError,
    SpecError,
    WrongTypeError,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SpecError("a spec"), cli.USAGE),
        (WrongTypeError("a type"), cli.USAGE),
        (ShapeError("a shape"), cli.USAGE),
        (DataError("a cell"), cli.DATA),
        (ModelFileError("a model file"), cli.DATA),
        (OutputError("a folder"), cli.DATA),
        (OSError(errno.EIO, "Input/output error", "m.nnm"), cli.DATA),
        (MemoryError(), cli.DATA),
        (DivergenceError("NaN"), cli.DIVERGED),
    ],
)
def test_each_error_becomes_one_line_and_its_status(monkeypatch, capsys, error, status) -> None:
    def fail(args: object) -> int:
        raise error

    monkeypatch.setattr(info, "run", fail)
    assert cli.main(["info", "m.nnm"]) == status
    err = capsys.readouterr().err
    assert err.startswith("nnmath info: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_system_errors_and_memory_name_what_happened(monkeypatch, capsys) -> None:
    for error, said in [
        (OSError(errno.EIO, "Input/output error", "m.nnm"), "m.nnm: Input/output error; check"),
        (MemoryError(), "ran out of memory; try a smaller network"),
    ]:
        monkeypatch.setattr(info, "run", lambda args, error=error: (_ for _ in ()).throw(error))
        cli.main(["info", "m.nnm"])
        assert said in capsys.readouterr().err


def test_ctrl_c_is_130_and_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(info, "run", lambda args: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert cli.main(["info", "m.nnm"]) == cli.INTERRUPTED == 130
    assert capsys.readouterr().err == "nnmath info: interrupted\n"


def test_a_bug_prints_its_traceback_and_asks_for_a_report(monkeypatch, capsys) -> None:
    monkeypatch.setattr(info, "run", lambda args: {}["missing"])
    assert cli.main(["info", "m.nnm"]) == cli.BUG == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'missing'" in err
    assert err.strip().splitlines()[-1].startswith("nnmath info: this is a bug in nnmath")


def test_a_warning_is_one_line_shown_once(monkeypatch, capsys) -> None:
    def warn_twice(args: object) -> int:
        for _ in range(2):
            warnings.warn("something unusual", UserWarning, stacklevel=1)
        warnings.warn("something unusual", UserWarning, stacklevel=2)  # another place, same text
        return 0

    monkeypatch.setattr(info, "run", warn_twice)
    assert cli.main(["info", "m.nnm"]) == 0
    assert capsys.readouterr().err == "nnmath info: warning: something unusual\n"


def test_unknown_options_are_said_by_the_command_itself(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["datasets", "--bogus"])
    assert caught.value.code == cli.USAGE
    err = capsys.readouterr().err
    assert err == (
        "nnmath datasets: error: unrecognized arguments: --bogus; see 'nnmath datasets --help'\n"
    )


def test_a_usage_error_is_one_line_that_points_to_the_help(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["train", "--epochs", "1e20"])
    assert caught.value.code == cli.USAGE
    assert capsys.readouterr().err.splitlines() == [
        "nnmath train: error: argument --epochs: invalid int value: '1e20'; "
        "see 'nnmath train --help'"
    ]


def test_the_version_is_read_only_when_asked(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0 and capsys.readouterr().out.startswith("nnmath ")
