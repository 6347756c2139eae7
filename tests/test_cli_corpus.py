"""The bad-input corpus: every row is one command a new user might type, run through the real
``nnmath`` command (a subprocess), with the exit status and the fragment of the one-line message
it must end in. No case may print a traceback, and none may take long: each fails before any
real work (the slowest trains one epoch of iris into a divergence).

Exit statuses (docs/errors.md): 1 a mismatch found, 2 a usage error, 3 a data or file error,
4 training diverged, 70 a bug in nnmath (with a request to report it), 130 interrupted.

Groups: out (outputs checked before the work), file (readers that never trust a file), spec
(specs and settings), diverge (divergence), pair (loss and output must fit), budget (``nnmath
check`` under a budget), usage (one family of errors, argparse's own usage errors).

The cases run in parallel threads, each its own process, in a folder of prepared files.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from crafted import huge_npy_member

from nnmath.losses import get_loss
from nnmath.modelfile import HEADER_KEY, TrainedModel
from nnmath.network import MLP
from nnmath.recipe import TrainConfig, train_dataset

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

OK, MISMATCH, USAGE, DATA, DIVERGED, BUG, INTERRUPTED = 0, 1, 2, 3, 4, 70, 130


@dataclass(frozen=True)
class Case:
    group: str
    command: str  # as typed in a shell, run in the folder of prepared files
    status: int
    said: str  # a fragment of the last line of stderr (of stdout for a verdict)
    stdin: str = ""


C = Case
LONG_SPEC = "3-99999999999999999999relu-3"
CHAIN = " @ ".join(["ones(3000, 3000)"] * 60)  # 60 products of 3000 × 3000 matrices
POWERS = " ** ".join(["ones(3000, 3000)"] * 20)
WIDE = "3-100000000relu-3"

CASES = [
    # ---- out: every output path checked before the work -------------------------------------
    C("out", "train --data iris -o folder --epochs 1 --no-plots", DATA, "folder is a folder"),
    C(
        "out",
        "train --data iris -o a-file/m.nnm --epochs 1",
        DATA,
        "a-file is a file, not a folder",
    ),
    C("out", "train --data iris -o /proc/m.nnm --epochs 1", DATA, "cannot create files in /proc"),
    C("out", "train --data iris --plots a-file --epochs 1", DATA, "a-file is a file, not a folder"),
    C("out", "train --data iris --plots /proc/plots --epochs 1", DATA, "cannot write /proc/plots"),
    C("out", "train --data iris --checkpoint folder --epochs 1", DATA, "folder is a folder"),
    C("out", "train --data iris --checkpoint a-file/c.ckpt", DATA, "is a file, not a folder"),
    C("out", "predict iris.nnm rows.csv -o folder", DATA, "folder is a folder"),
    C("out", "predict iris.nnm rows.csv -o a-file/p.csv", DATA, "a-file is a file, not a folder"),
    C("out", "predict iris.nnm rows.csv -o /proc/p.csv", DATA, "cannot create files in /proc"),
    C("out", "predict missing.nnm missing.csv -o folder", DATA, "folder is a folder"),
    C("out", "export iris.nnm folder", DATA, "folder is a folder"),
    C("out", "export iris.nnm a-file/m.onnx", DATA, "a-file is a file, not a folder"),
    C("out", "export iris.nnm /proc/m.onnx", DATA, "cannot create files in /proc"),
    C("out", "init 2-2sigmoid-2sigmoid -o folder", DATA, "folder is a folder"),
    C("out", "init 2-2sigmoid-2sigmoid -o a-file/m.nnm", DATA, "is a file, not a folder"),
    C("out", "init 2-2sigmoid-2sigmoid -o /proc/m.nnm", DATA, "cannot create files in /proc"),
    C("out", "derive 3-4relu-2softmax -o folder", DATA, "folder is a folder"),
    C("out", "derive 3-4relu-2softmax --verify -o a-file/d.md", DATA, "is a file, not a folder"),
    C("out", "derive 3-4relu-2softmax -o /proc/d.md", DATA, "cannot create files in /proc"),
    C("out", "derive 3-4relu-2softmax -o ''", DATA, "-o is empty"),
    # ---- file: readers that never trust a file -----------------------------------------------
    C("file", "info missing.nnm", DATA, "missing.nnm: no such file"),
    C("file", "info folder", DATA, "folder: is a directory"),
    C("file", "info empty.nnm", DATA, "the file is empty"),
    C("file", "info truncated.nnm", DATA, "truncated or corrupted"),
    C("file", "info random.npz", DATA, "not an nnmath model file"),
    C("file", "info rows.csv", DATA, "not an nnmath model file"),
    C("file", "info arrays5.nnm", DATA, "the header's 'arrays' must be a list, got int 5"),
    C("file", "info widespec.nnm", DATA, "expects W of shape (100000000, 3)"),
    C("file", "info --json stringnumber.nnm", DATA, "format_version"),
    C("file", "info huge.nnm", DATA, "7.3 TiB"),
    C("file", "info crc.nnm", DATA, "CRC"),
    C("file", "evaluate missing.nnm", DATA, "no such file"),
    C("file", "evaluate truncated.nnm", DATA, "truncated or corrupted"),
    C("file", "evaluate iris.nnm --data missing.csv", DATA, "file not found"),
    C("file", "evaluate iris.nnm --data irsi", DATA, "did you mean 'iris'"),
    C("file", "evaluate iris.nnm --data badcell.csv", DATA, "'abc' is not a number"),
    C("file", "evaluate iris.nnm --data huge.npz", DATA, "7.3 TiB"),
    C("file", "evaluate iris.nnm --data pickled.npz", DATA, "never Python objects"),
    C("file", "evaluate iris.nnm --data crc.npz", DATA, "CRC"),
    C("file", "evaluate iris.nnm --data flipped.parquet", DATA, "CRC checksum"),
    C("file", "evaluate iris.nnm --data random.parquet", DATA, "random.parquet"),
    C("file", "evaluate iris.nnm --data semicolons.csv", DATA, "save the file with commas"),
    C("file", "evaluate iris.nnm --data empty.csv", DATA, "the file is empty"),
    C("file", "evaluate iris.nnm --data digits", DATA, "lacks the model's feature columns"),
    C("file", "evaluate small.nnm", DATA, "does not record its training data"),
    C("file", "predict iris.nnm missing.csv", DATA, "file not found"),
    C("file", "predict iris.nnm badcell.csv", DATA, "'abc' is not a number"),
    C("file", "predict iris.nnm two.csv", DATA, "no column 'sepal length (cm)'"),
    C("file", "predict iris.nnm random.npz", DATA, "not a readable .npz archive"),
    C("file", "predict iris.nnm - ", DATA, "the file is empty"),
    C("file", "predict iris.nnm rows.csv --format npz", DATA, "not a readable .npz archive"),
    C("file", "predict truncated.nnm rows.csv", DATA, "truncated or corrupted"),
    C("file", "export missing.nnm m.onnx", DATA, "no such file"),
    C("file", "export random.npz m.onnx", DATA, "not an nnmath model file"),
    C("file", "train --data missing.csv", DATA, "file not found"),
    C("file", "train --data badcell.csv", DATA, "'abc' is not a number"),
    C("file", "train --data huge.npz", DATA, "7.3 TiB"),
    C("file", "train --data semicolons.csv", DATA, "save the file with commas"),
    C("file", "train --data rows.csv --target nope", DATA, "no column named 'nope'"),
    C("file", "train --resume truncated.nnm", DATA, "truncated or corrupted"),
    C("file", "derive --model missing.nnm", DATA, "no such file"),
    C("file", "derive 2-2sigmoid-2sigmoid --example --weights bad.json", DATA, "not a JSON"),
    C("file", "derive 2-2sigmoid-2sigmoid --example --weights random.npz", DATA, "not a readable"),
    C("file", "derive 2-2sigmoid-2sigmoid --example --weights pickled.npz", DATA, "objects"),
    C("file", "derive 2-2sigmoid-2sigmoid --example --weights missing.json", DATA, "not there"),
    C("file", "init 2-2sigmoid-2sigmoid -o m.nnm --weights names.json", DATA, "missing W2, b2"),
    C("file", "derive 2-2sigmoid-2sigmoid --example --input a,b --target 1,0", DATA, "'a' is not"),
    # ---- spec: specs and settings -----------------------------------------------------------
    C("spec", f"gradcheck {LONG_SPEC}", USAGE, "would take about"),
    C("spec", f"gradcheck {WIDE}", USAGE, "700,000,003 parameters"),
    C("spec", f"init {LONG_SPEC} -o m.nnm", USAGE, "too large for this machine"),
    C("spec", f"train --data iris --spec {LONG_SPEC[2:]}", USAGE, "too large"),
    C("spec", "train --data iris --spec 4-100000000relu-3softmax", USAGE, "too large"),
    C("spec", f"check {WIDE} 'dW2 = A1.T @ dZ2'", USAGE, "would take about"),
    C("spec", f"derive {WIDE} --verify", USAGE, "would take about"),
    C("spec", "gradcheck '²-3'", USAGE, "'²' (SUPERSCRIPT TWO)"),
    C("spec", "derive '²-3'", USAGE, "plain ASCII"),
    C("spec", "gradcheck '3−10relu−3'", USAGE, "use the ASCII hyphen '-': '3-10relu-3'"),
    C("spec", "train --data iris --spec '10relu−3'", USAGE, "MINUS SIGN"),
    C("spec", "check '٣-3' 'dW1 = X.T @ dZ1'", USAGE, "ARABIC-INDIC DIGIT THREE"),
    C("spec", "gradcheck 3-4foo-2", USAGE, "unknown activation 'foo'"),
    C("spec", "gradcheck 3-0relu-2", USAGE, "has size 0"),
    C("spec", "gradcheck 3", USAGE, "needs an input size and at least one layer"),
    C("spec", f"gradcheck 3-{'9' * 40}relu-2", USAGE, "40 digits"),
    C("spec", "init '3-4relu+dropout(2)-2' -o m.nnm", USAGE, "dropout"),
    C("spec", "train --data iris --learning-rate 0", USAGE, "finite and > 0"),
    C("spec", "train --data iris --learning-rate inf", USAGE, "finite and > 0"),
    C("spec", "train --data iris --learning-rate nan", USAGE, "finite and > 0"),
    C("spec", "train --data iris --learning-rate -0.1", USAGE, "finite and > 0"),
    C("spec", "train --data iris --epochs 0", USAGE, "epochs must be a whole number from 1"),
    C("spec", "train --data iris --epochs 100000000000", USAGE, "1,000,000"),
    C("spec", "train --data iris --epochs 1e20", USAGE, "argument --epochs"),
    C("spec", "train --data iris --seed -1", USAGE, "seed must be a whole number ≥ 0"),
    C("spec", "train --data iris --batch-size 0", USAGE, "batch_size"),
    C("spec", "train --data iris --test-fraction 1.5", USAGE, "test_fraction"),
    C("spec", "train --data iris --validation-fraction -0.1", USAGE, "validation_fraction"),
    C("spec", "train --data iris --clip-norm 0", USAGE, "clip_norm"),
    C("spec", "train --data iris --patience 0", USAGE, "patience"),
    C("spec", "train --data iris --kernel numba --dtype float64", USAGE, "the numba kernel"),
    C("spec", "train --data iris --target species", USAGE, "fixed target"),
    C("spec", "gradcheck 3-4relu-2softmax --samples 0", USAGE, "--samples: must be a whole"),
    C("spec", "gradcheck 3-4relu-2softmax --samples -3", USAGE, "--samples"),
    C("spec", "gradcheck 3-4relu-2softmax --samples 100000000", USAGE, "100,000"),
    C("spec", "gradcheck 3-4relu-2softmax --eps 0", USAGE, "--eps: must be a finite number > 0"),
    C("spec", "gradcheck 3-4relu-2softmax --eps -1", USAGE, "--eps"),
    C("spec", "gradcheck 3-4relu-2softmax --eps nan", USAGE, "--eps"),
    C("spec", "gradcheck 3-4relu-2softmax --eps 10", USAGE, "at most 0.1"),
    C("spec", "gradcheck 3-4relu-2softmax --rtol -1", USAGE, "--rtol"),
    C("spec", "gradcheck 3-4relu-2softmax --seed -1", USAGE, "--seed: must be a whole number"),
    C("spec", "gradcheck 3-4relu-2softmax --base 1", USAGE, "--base: must be a finite number > 1"),
    C("spec", "gradcheck 3-4tanh-2 --loss mse --base 2", USAGE, "only cross-entropy takes"),
    C("spec", "gradcheck '3-4relu+bn-2' --samples 1", USAGE, "at least 2 samples"),
    C("spec", "check 3-4relu-2softmax 'dW2 = A1.T @ dZ2' --samples 1", USAGE, "from 2 to"),
    C("spec", "check 3-4relu-2softmax 'dW2 = A1.T @ dZ2' --seed -1", USAGE, "--seed"),
    C("spec", "derive 3-4relu-2softmax --verify --seed -1", USAGE, "--seed"),
    C("spec", "derive 3-4relu-2softmax --verify --samples 0", USAGE, "--samples"),
    C("spec", "derive 3-4relu-2softmax --samples 5", USAGE, "add one"),
    C("spec", "derive 3-4relu-2softmax --seed 5", USAGE, "add one"),
    C("spec", "derive 3-4relu-2softmax --digits 3", USAGE, "add --example"),
    C("spec", "derive 3-4relu-2softmax --example --json --digits 3", USAGE, "give one"),
    C("spec", "derive 3-4relu-2softmax --json --format tex", USAGE, "give one"),
    C("spec", "derive 3-4relu-2softmax --example --learning-rate 0", USAGE, "finite number > 0"),
    C("spec", "derive 3-4relu-2softmax --example --steps 0", USAGE, "--steps must be between"),
    C("spec", "derive 3-4relu-2softmax --steps 5", USAGE, "add --example"),
    C("spec", "derive 3-4relu-2softmax --example --format tex", USAGE, "leave out --format tex"),
    C("spec", "init 3-4relu-2softmax -o m.nnm --seed -1", USAGE, "--seed"),
    C("spec", "init 3-4relu-2softmax -o m.nnm --notation column", USAGE, "add --weights"),
    C("spec", "init 2-2sigmoid-2sigmoid -o m.nnm --weights w.json --seed 3", USAGE, "give one"),
    C("spec", "evaluate iris.nnm --target species", USAGE, "add --data or drop --target"),
    C("spec", "predict iris.nnm rows.csv --precision 0", USAGE, "--precision"),
    C("spec", "export iris.nnm m.onnx --opset 1", USAGE, "choose 13"),
    C("spec", "playground --port -5", USAGE, "--port must be from 0 to 65535"),
    C("spec", "playground --port 99999", USAGE, "--port must be from 0 to 65535"),
    # ---- diverge: a run that diverges stops, exit 4, nothing saved as if fine ----------------
    C(
        "diverge",
        "train --data iris --learning-rate 1e10 --epochs 3 -o d.nnm",
        DIVERGED,
        "diverged",
    ),
    C(
        "diverge",
        "train --data iris --optimizer sgd --learning-rate 1e6 -o d2.nnm",
        DIVERGED,
        "try",
    ),
    # ---- pair: loss and output must fit ------------------------------------------------------
    C("pair", "gradcheck 3-4relu-1sigmoid --loss cross-entropy", USAGE, "single sigmoid unit"),
    C("pair", "gradcheck 3-4relu-3 --loss cross-entropy", USAGE, "3softmax with cross-entropy"),
    C("pair", "gradcheck 3-4relu-3 --loss binary-cross-entropy", USAGE, "outputs in (0, 1)"),
    C("pair", "gradcheck 3-4relu-1softmax", USAGE, "softmax over one unit is always 1"),
    C("pair", "gradcheck 3-4relu-2sigmoid --loss cross-entropy", USAGE, "do not sum to 1"),
    C("pair", "check 3-4relu-1sigmoid 'dW2 = A1.T @ dZ2' --loss cross-entropy", USAGE, "sigmoid"),
    C("pair", "derive 3-4relu-1sigmoid --loss cross-entropy", USAGE, "single sigmoid unit"),
    C("pair", "derive 3-4tanh-2 --loss binary-cross-entropy", USAGE, "outputs in (0, 1)"),
    C("pair", "init 3-4relu-1sigmoid -o m.nnm --loss cross-entropy", USAGE, "single sigmoid"),
    C("pair", "train --data iris --loss binary-cross-entropy --epochs 1 -o b.nnm", OK, "unusual"),
    C("spec", "gradcheck 3-4relu-2softmax --eval", OK, "--eval changes nothing"),
    C("pair", "train --data diabetes --loss cross-entropy", USAGE, "cross-entropy"),
    C("pair", "train --data iris --spec 4-8relu-1sigmoid --loss cross-entropy", USAGE, "3softmax"),
    C("pair", "train --data xor --spec 2-8tanh-1sigmoid --loss cross-entropy", USAGE, "single"),
    # ---- budget: nnmath check never exhausts the machine -------------------------------------
    C(
        "budget",
        "check 3-4relu-2softmax \"dW2 = A1.T @ dZ2 * einsum('ab,cd,ef->', ones(100, 100), "
        'ones(100, 100), ones(100, 100))"',
        USAGE,
        "3.0e12 of them in einsum",
    ),
    C(
        "budget",
        f"check 3-4relu-2softmax 'dW2 = A1.T @ dZ2 * sum({CHAIN})'",
        USAGE,
        "the limit is 2.0e8",
    ),
    C("budget", f"check 3-4relu-2softmax 'dW2 = A1.T @ dZ2 * sum({POWERS})'", USAGE, "operations"),
    C(
        "budget",
        "check 3-4relu-2softmax 'dW2 = A1.T @ dZ2 * sum(ones(100000, 100000))'",
        USAGE,
        "one value may hold at most",
    ),
    C("budget", "check 3-4relu-2softmax 'dW2 = A1.T @ dZ2 * " + "-" * 990 + "1'", USAGE, "nests"),
    C(
        "budget",
        "check 3-4relu-2softmax \"dW2 = einsum('ab->aa', A1.T @ dZ2)\"",
        USAGE,
        "einsum subscripts 'ab->aa'",
    ),
    C("budget", f"check 3-4relu-2softmax 'dW2 = A1.T @ dZ2 * {'1' * 1900}'", USAGE, "1900 digits"),
    C(
        "budget",
        "check 3-4relu-2softmax \"dW2 = __import__('os').system('true')\"",
        USAGE,
        "not allowed",
    ),
    C("budget", "check 3-4relu-2softmax \"dW2 = open('/etc/passwd')\"", USAGE, "not allowed"),
    C("budget", "check 3-4relu-2softmax 'dW2 = A1.T @ delta2'", USAGE, "unknown name delta2"),
    C("budget", "check 3-4relu-2softmax 'dW2 = '", USAGE, "cannot read"),
    C("budget", "check 3-4relu-2softmax 'dW9 = A1'", USAGE, "not a quantity"),
    C("budget", "check 3-4relu-2softmax 'dW2 = A1 @ dZ2'", MISMATCH, "missing transpose"),
    C("budget", "check 3-4relu-2softmax 'dW2 = A1.T @ dZ2 @ A1'", MISMATCH, "does not conform"),
    C("budget", "check 3-4relu-2softmax 'dW2 = dZ2.T @ A1'", MISMATCH, "transpose"),
    C("budget", "gradcheck 3-4relu-2softmax --rtol 0 --eps 0.1", MISMATCH, "MISMATCH"),
    # ---- usage: argparse's own usage errors, and one family of errors --------------------------
    C("usage", "", USAGE, "the following arguments are required: COMMAND"),
    C("usage", "frobnicate", USAGE, "invalid choice: 'frobnicate'"),
    C("usage", "train --bogus", USAGE, "nnmath train: error: unrecognized arguments: --bogus"),
    C("usage", "datasets --bogus", USAGE, "nnmath datasets: error: unrecognized arguments"),
    C("usage", "datasets extra", USAGE, "unrecognized arguments: extra"),
    C("usage", "info", USAGE, "the following arguments are required: MODEL"),
    C("usage", "evaluate iris.nnm --split bogus", USAGE, "invalid choice: 'bogus'"),
    C("usage", "predict iris.nnm rows.csv --format xls", USAGE, "invalid choice: 'xls'"),
    C("usage", "export iris.nnm m.onnx --opset abc", USAGE, "invalid int value: 'abc'"),
    C("usage", "derive", USAGE, "give the network's SPEC"),
    C("usage", "derive 3-4relu-2softmax --notation diagonal", USAGE, "invalid choice"),
    C("usage", "check 3-4relu-2softmax", USAGE, "required: formula"),
    C("usage", "gradcheck", USAGE, "required: spec"),
    C("usage", "gradcheck 3-4relu-2softmax --loss hinge", USAGE, "invalid choice: 'hinge'"),
    C("usage", "init 3-4relu-2softmax", USAGE, "required: -o/--output"),
    C("usage", "train --optimizer adagrad", USAGE, "invalid choice: 'adagrad'"),
    C("usage", "train --learning-rate fast", USAGE, "invalid float value: 'fast'"),
    C("usage", "playground --port abc", USAGE, "invalid int value: 'abc'"),
    C("usage", "playground --bogus", USAGE, "unrecognized arguments: --bogus"),
]


def nnmath_command() -> list[str]:
    """The installed console script beside this Python, else ``python -m nnmath``."""
    script = Path(sys.executable).with_name("nnmath")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nnmath"]


def environment() -> dict[str, str]:
    """One BLAS thread per process: the cases run side by side."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# ---- the prepared files -------------------------------------------------------------------------


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def rewrite_header(path: Path, key: str, value: object) -> None:
    """Set one key of a saved model's header, keeping its arrays and their SHA-256 valid."""
    with zipfile.ZipFile(path) as archive:
        arrays = {
            name.removesuffix(".npy"): np.load(io.BytesIO(archive.read(name)))
            for name in archive.namelist()
        }
    header = json.loads(arrays.pop(HEADER_KEY).tobytes())
    header[key] = value
    text = json.dumps(header).encode()
    path.write_bytes(npz_bytes(**{HEADER_KEY: np.frombuffer(text, np.uint8)}, **arrays))


def flipped_byte(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def write_files(folder: Path) -> None:
    rng = np.random.default_rng(0)
    result = train_dataset(TrainConfig.from_dict({"data": "iris", "epochs": 1}), progress=False)
    iris = result.model.save(folder / "iris.nnm")
    small = TrainedModel(MLP("2-2sigmoid-2sigmoid"), get_loss("binary-cross-entropy"))
    small.save(folder / "small.nnm")
    (folder / "folder").mkdir()
    (folder / "a-file").write_text("not a folder\n")
    (folder / "empty.nnm").write_bytes(b"")
    (folder / "truncated.nnm").write_bytes(iris.read_bytes()[:300])
    (folder / "random.npz").write_bytes(rng.bytes(500))
    (folder / "random.parquet").write_bytes(rng.bytes(500))
    for name, key, value in [
        ("arrays5.nnm", "arrays", 5),
        ("widespec.nnm", "spec", "3-100000000relu-2softmax"),
        ("stringnumber.nnm", "format_version", "1"),
    ]:
        (folder / name).write_bytes(iris.read_bytes())
        rewrite_header(folder / name, key, value)
    (folder / "huge.nnm").write_bytes(huge_npy_member("W1"))
    (folder / "huge.npz").write_bytes(huge_npy_member("X"))
    X = rng.normal(size=(6, 3))
    data = npz_bytes(X=X, y=np.array([0, 1, 0, 1, 1, 0]))
    (folder / "crc.npz").write_bytes(flipped_byte(data, data.index(X[2, 1].tobytes())))
    (folder / "crc.nnm").write_bytes(flipped_byte(iris.read_bytes(), 200))
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(folder / "pickled.npz", "w") as archive:
        archive.writestr("X.npy", pickled.getvalue())
    table = pa.table({"a": [1.5, 3.0, -5.0, 7.0], "b": [2, 4, 6, 8], "label": list("xyxy")})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, write_page_checksum=True, compression="NONE")
    parquet = buffer.getvalue()
    at = parquet.index(np.float64(-5.0).tobytes()) + 7  # inside the data page of column 'a'
    (folder / "flipped.parquet").write_bytes(flipped_byte(parquet, at))
    columns = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)"
    (folder / "rows.csv").write_text(f"{columns},species\n5.1,3.5,1.4,0.2,setosa\n")
    (folder / "badcell.csv").write_text(f"{columns},species\n5.1,abc,1.4,0.2,setosa\n")
    (folder / "semicolons.csv").write_text("a;b;c\n1;2;3\n")
    (folder / "empty.csv").write_text("")
    (folder / "two.csv").write_text("a,b\n1,2\n")
    (folder / "bad.json").write_text("{")
    (folder / "names.json").write_text(json.dumps({"W1": [[1, 2], [3, 4]], "b1": 0}))
    w = {"W1": [[0.15, 0.2], [0.25, 0.3]], "b1": 0.35, "W2": [[0.4, 0.45], [0.5, 0.55]], "b2": 0.6}
    (folder / "w.json").write_text(json.dumps(w))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus")
    write_files(path)
    return path


# ---- running the corpus -------------------------------------------------------------------------


def run_case(case: Case, folder: Path) -> subprocess.CompletedProcess[str]:
    argv = nnmath_command() + shlex.split(case.command)
    try:
        return subprocess.run(
            argv, cwd=folder, input=case.stdin, capture_output=True, text=True, timeout=30,
            env=environment(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:  # no case may work for long: a failure, not a hang
        return subprocess.CompletedProcess(argv, -1, "", "still running after 30 s")


def test_the_corpus_is_large_and_covers_every_group_and_command() -> None:
    assert len(CASES) >= 120
    assert {case.group for case in CASES} == {
        "out", "file", "spec", "diverge", "pair", "budget", "usage"
    }  # fmt: skip
    commands = {shlex.split(case.command)[0] for case in CASES if case.command}
    assert commands == {
        "train", "evaluate", "predict", "info", "datasets", "export", "derive", "check",
        "gradcheck", "init", "playground", "frobnicate",
    }  # fmt: skip


def test_every_bad_input_ends_in_one_clear_line(folder: Path) -> None:
    began, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda case: run_case(case, folder), CASES))
    seconds = time.perf_counter() - began
    failures = []
    for case, done in zip(CASES, results, strict=True):
        output = done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        where = output if case.status in (OK, MISMATCH) else (lines or [""])[-1]
        problems = [
            f"exit {done.returncode}, expected {case.status}" * (done.returncode != case.status),
            f"no {case.said!r}" * (case.said not in where),
            "a traceback" * ("Traceback" in output),
            "the last line is not nnmath's" * (case.status > 1 and not where.startswith("nnmath")),
            "not a warning" * (case.status == OK and "warning:" not in done.stderr),
        ]
        if any(problems):
            failures.append(f"[{case.group}] nnmath {case.command}: {'; '.join(p for p in problems if p)}"
                            f"\n    stderr: {done.stderr.strip()[-400:]!r}")  # fmt: skip
    assert not failures, f"{len(failures)} of {len(CASES)} cases:\n" + "\n".join(failures)
    assert not (folder / "d.nnm").exists() and not (folder / "d2.nnm").exists()  # diverged
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    print(f"{len(CASES)} cases in {seconds:.1f} s ({used:.1f} s of CPU in the processes)")


def test_a_bug_is_reported_with_its_traceback_and_a_request(folder: Path) -> None:
    """An exception nnmath did not expect: the traceback, then one line asking for a report."""
    code = (
        "import sys, nnmath.cli.info as info\n"
        "def broken(args): return 1 / 0\n"
        "info.run = broken\n"
        "from nnmath.cli import main\n"
        "sys.exit(main(['info', 'iris.nnm']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == BUG
    assert "Traceback" in done.stderr and "ZeroDivisionError" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("nnmath info: this is a bug in nnmath") and "please report it" in last


def test_ctrl_c_exits_130_with_one_line(folder: Path) -> None:
    """SIGINT while training: no traceback, status 130, and no model written."""
    process = subprocess.Popen(
        [*nnmath_command(), "train", "--data", "iris", "--epochs", "100000", "-o", "stopped.nnm"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    assert process.stdout is not None
    process.stdout.readline()  # "data: iris …": the run has started
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == INTERRUPTED
    assert "Traceback" not in out + err and err.strip().endswith("nnmath train: interrupted")
    assert not (folder / "stopped.nnm").exists()
