"""``nnmath playground`` on the command line: the address it prints, the warning for all
interfaces, a clean stop on Ctrl-C, and one-line errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from nnmath.cli import main

pytest.importorskip("uvicorn", reason="the playground extra is not installed")


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nnmath", "playground", "--no-browser", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_all_interfaces_warn_serve_the_page_and_ctrl_c_stops_cleanly():
    process = start("--host", "0.0.0.0", "--port", "0")
    try:
        warning = process.stderr.readline()
        address = process.stdout.readline()
        assert "warning" in warning and "every network interface" in warning
        url = address.split("serving at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as page:
            assert b"nnmath playground" in page.read()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("the server did not stop within 15 s of Ctrl-C")
    assert process.returncode == 0
    assert "nnmath playground: stopped" in out
    assert "Traceback" not in err


def test_a_port_in_use_is_one_line_naming_the_fix():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start("--port", str(port))
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("the server should have refused the port in use")
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    assert "Traceback" not in err


def test_a_port_out_of_range_is_refused(capsys):
    assert main(["playground", "--no-browser", "--port", "70000"]) == 2
    assert "--port must be from 0 to 65535" in capsys.readouterr().err


def test_without_the_extra_the_command_says_what_to_install(monkeypatch, capsys):
    for name in [m for m in sys.modules if m.split(".")[0] in ("starlette", "uvicorn")]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it raises ImportError
    monkeypatch.setitem(sys.modules, "starlette", None)
    monkeypatch.delitem(sys.modules, "nnmath.playground.server", raising=False)
    assert main(["playground", "--no-browser", "--port", "0"]) == 2
    assert "pip install 'nnmath[playground]'" in capsys.readouterr().err


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["playground", "--help"])
    text = capsys.readouterr().out
    assert "--no-browser" in text and "--host" in text and "--port" in text
