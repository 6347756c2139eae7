"""Saves that are killed: the file is always a complete model, and no temporary file outlives the
next save to the same path."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnmath.modelfile import as_trained_model, load_model, remove_stale_temporaries, save_model
from nnmath.network import MLP

SPEC = "200-400tanh-400tanh-10softmax"  # about 2 MB of float64 weights: a save takes milliseconds

SAVER = f"""
import sys
from nnmath.modelfile import as_trained_model, save_model
from nnmath.network import MLP

models = [as_trained_model(MLP({SPEC!r}, seed=seed)) for seed in (1, 2)]
print("ready", flush=True)
saves = 0
while True:  # save, save, save, until killed
    save_model(models[saves % 2], sys.argv[1])
    saves += 1
"""


def temporaries(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def first_weight(seed: int) -> np.ndarray:
    return MLP(SPEC, seed=seed).linears[0].W


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_kill_minus_nine_during_saves_never_leaves_a_broken_model(tmp_path: Path) -> None:
    path = tmp_path / "model.nnm"
    save_model(as_trained_model(MLP(SPEC, seed=0)), path)
    known = [first_weight(seed) for seed in (0, 1, 2)]
    rng = np.random.default_rng(9)
    left_behind = 0
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.2))  # a random moment, most likely inside a save
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        W = load_model(path).network.linears[0].W  # the old or a new model, complete
        assert any(np.array_equal(W, candidate) for candidate in known)
        left_behind += len(temporaries(path))
        save_model(as_trained_model(MLP(SPEC, seed=0)), path)  # the next save cleans up
        assert temporaries(path) == []
    assert left_behind > 0, "no kill landed inside a save: the test exercised nothing"


def test_only_stale_temporary_files_of_our_own_pattern_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "m.nnm"
    stale = tmp_path / ".m.nnm.abcd1234.tmp"
    live = tmp_path / ".m.nnm.live_123.tmp"
    others = [
        tmp_path / ".m.nnm.tmp",  # not mkstemp's pattern
        tmp_path / ".other.nnm.abcd1234.tmp",  # another target's
        tmp_path / "m.nnm.abcd1234.tmp",  # not hidden
        tmp_path / ".m.nnm.ABCD1234.tmp",  # characters mkstemp never uses
    ]
    for file in [stale, live, *others]:
        file.write_bytes(b"partial")
    descriptor = os.open(live, os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)  # a save in progress holds its lock
    try:
        assert remove_stale_temporaries(path) == [stale]
        save_model(as_trained_model(MLP("2-2softmax")), path)
        assert live.exists() and all(file.exists() for file in others)
    finally:
        os.close(descriptor)
    save_model(as_trained_model(MLP("2-2softmax")), path)
    assert not live.exists() and all(file.exists() for file in others)
