"""``nnmath gradcheck``: exit status 0 and tiny errors on a correct engine, 1 on a broken primitive,
2 with a one-line message on stderr for bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from nnmath.cli import main
from nnmath.layers import Linear

ROW = re.compile(r"^(W\d+|b\d+|X)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(ok|MISMATCH)$")


def table_rows(text: str) -> list[tuple[str, float, str]]:
    """(parameter, relative error, result) for each row of the printed table."""
    rows = []
    for line in text.splitlines():
        match = ROW.match(line.strip())
        if match:
            rows.append((match[1], float(match[3]), match[6]))
    return rows


def test_notes_network_passes_with_tiny_errors(capsys):
    code = main(["gradcheck", "3-10relu-6relu-3softmax", "--loss", "cross-entropy"])
    out = capsys.readouterr().out
    assert code == 0
    rows = table_rows(out)
    assert [name for name, _, _ in rows] == ["W1", "b1", "W2", "b2", "W3", "b3", "X"]
    assert all(error < 1e-7 and result == "ok" for _, error, result in rows), out
    assert "all gradients match" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["3-10relu-6relu-3softmax", "--loss", "cross-entropy", "--base", "2"],
        ["4-8sigmoid-1sigmoid"],
        ["2-2sigmoid-2sigmoid", "--loss", "squared-error", "--samples", "3", "--seed", "5"],
        ["3-5tanh-4gelu-2", "--loss", "mse"],
    ],
)
def test_json_report(capsys, argv):
    code = main(["gradcheck", *argv, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"] is True
    assert report["dtype"] == "float64"
    assert all(check["relative_error"] < 1e-7 for check in report["checks"])
    assert [c["name"] for c in report["checks"]][-1] == "X"


def test_broken_primitive_exits_one(capsys, monkeypatch):
    original = Linear.vjp

    def halved_bias_gradient(self, cache, dY):
        dX, grads = original(self, cache, dY)
        return dX, {**grads, "b": 0.5 * grads["b"]}

    monkeypatch.setattr(Linear, "vjp", halved_bias_gradient)
    code = main(["gradcheck", "3-10relu-6relu-3softmax", "--loss", "cross-entropy"])
    out = capsys.readouterr().out
    assert code == 1
    failed = [name for name, _, result in table_rows(out) if result == "MISMATCH"]
    assert failed == ["b1", "b2", "b3"]
    assert "gradient MISMATCH" in out


def test_bad_spec_exits_two_with_the_message_on_stderr(capsys):
    code = main(["gradcheck", "3-10foo-3softmax"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith("nnmath gradcheck: error:")
    assert "unknown activation 'foo'" in captured.err and "relu" in captured.err
    assert len(captured.err.strip().splitlines()) == 1  # one line, no traceback


def test_base_for_a_loss_without_one_exits_two(capsys):
    assert main(["gradcheck", "3-4tanh-2", "--loss", "mse", "--base", "2"]) == 2
    assert "only cross-entropy takes a log base" in capsys.readouterr().err


def test_unknown_loss_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        main(["gradcheck", "3-4tanh-2", "--loss", "hinge"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'hinge'" in err and "cross-entropy" in err


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "nnmath", "gradcheck", "2-3tanh-2softmax", "--samples", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "all gradients match" in result.stdout


def test_batch_norm_and_dropout_are_checked_in_training_mode(capsys):
    spec = "5-6relu+bn+dropout(0.3)-4tanh+bn-3softmax"
    assert main(["gradcheck", spec, "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "training mode, dropout masks from seed 3" in out
    names = [line.split()[0] for line in out.splitlines() if line.strip().endswith(" ok")]
    assert names == ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2", "X"]
    assert main(["gradcheck", spec, "--eval", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["mode"] == "evaluation mode"
    assert [c["name"] for c in report["checks"]][-3:] == ["gamma2", "beta2", "X"]


def test_a_batch_of_one_in_training_mode_is_a_one_line_error(capsys):
    assert main(["gradcheck", "3-4relu+bn-2", "--samples", "1"]) == 2
    err = capsys.readouterr().err
    assert "at least 2 samples per batch" in err and len(err.strip().splitlines()) == 1
