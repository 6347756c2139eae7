"""The front door (``import nnmath as nm``), the version, and what the package ships."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

import nnmath as nm
from nnmath import modelfile, training
from nnmath.errors import ModelFileError

ROOT = Path(__file__).resolve().parents[1]


def python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_every_front_door_name_resolves_to_its_module() -> None:
    for name in nm.__all__:
        value = getattr(nm, name)
        assert value is not None
        if name in nm._LAZY:
            module = sys.modules[nm._LAZY[name]]
            assert getattr(module, name) is value
    assert set(nm._LAZY) <= set(nm.__all__) and set(nm._LAZY) <= set(dir(nm))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nm.nope  # noqa: B018


def test_import_nnmath_is_cheap_and_lazy(tmp_path: Path) -> None:
    """`import nnmath` loads neither NumPy nor the engine; the first use of a name does."""
    code = (
        "import sys, nnmath\n"
        "before = {m for m in ('numpy', 'nnmath.network', 'nnmath.training') if m in sys.modules}\n"
        "nnmath.MLP\n"
        "print(sorted(before), 'nnmath.network' in sys.modules, 'nnmath.training' in sys.modules)"
    )
    result = python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "True", "False"]


def test_version_comes_from_the_installed_metadata(capsys) -> None:
    from importlib import metadata

    from nnmath.cli import main

    assert nm.__version__ == metadata.version("nnmath")
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nnmath {nm.__version__}"


def test_a_folder_named_nnmath_in_the_working_directory_does_not_shadow_the_package(
    tmp_path: Path,
) -> None:
    shadow = tmp_path / "nnmath"
    shadow.mkdir()
    (shadow / "network.py").write_text("raise SystemExit('the shadow was imported')\n")
    (shadow / "data.csv").write_text("a,b\n1,2\n")
    result = python("import nnmath, nnmath.network; print(nnmath.__file__, nnmath.MLP)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(ROOT / "src" / "nnmath" / "__init__.py") in result.stdout


def readme_block(heading: str) -> str:
    """The first ```python block after a README heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_front_door_example_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(readme_block("## From Python"), namespace)  # noqa: S102
    model = nm.load("digits.nnm")
    assert model.task == "classification" and model.network.n_in == 64
    history = namespace["history"]
    assert history.epochs >= 1 and history["accuracy"][-1] > 0.9


def test_save_takes_a_bare_mlp_with_the_loss_fit_would_use(tmp_path: Path) -> None:
    for spec in ("4-5relu-3softmax", "4-5relu-1sigmoid", "4-5tanh-2"):
        model = nm.MLP(spec, seed=0)
        path = nm.save(model, tmp_path / "m.nnm")
        loaded = nm.load(path)
        output = model.output
        task = "classification" if output in ("softmax", "sigmoid") else "regression"
        assert loaded.loss.name == training.default_loss_name(output, task)
        assert loaded.task == task
        X = np.random.default_rng(0).normal(size=(5, 4))
        np.testing.assert_array_equal(loaded.outputs(X), model.predict(X))


def test_save_takes_a_trained_model_and_refuses_the_rest(tmp_path: Path) -> None:
    trained = modelfile.as_trained_model(nm.MLP("2-3relu-2softmax"), class_names=["no", "yes"])
    path = nm.save(trained, tmp_path / "t.nnm")
    assert nm.load(path).class_names == ["no", "yes"]
    with pytest.raises(ModelFileError, match="only for a bare MLP"):
        nm.save(trained, tmp_path / "t.nnm", loss="mse")
    with pytest.raises(ModelFileError, match="cannot save a dict"):
        nm.save({}, tmp_path / "x.nnm")


def test_save_takes_anything_that_becomes_a_trained_model(tmp_path: Path) -> None:
    class Estimator:
        def to_trained_model(self) -> modelfile.TrainedModel:
            return modelfile.as_trained_model(nm.MLP("2-2softmax"), class_names=["a", "b"])

    assert nm.load(nm.save(Estimator(), tmp_path / "e.nnm")).class_names == ["a", "b"]


def test_predict_means_the_answer_where_the_labels_are_known(tmp_path: Path) -> None:
    """TrainedModel.predict → class names; predict_classes → indices; outputs → a⁽ᴷ⁾ (= MLP.predict)."""
    network = nm.MLP("3-4tanh-3softmax", seed=2)
    model = modelfile.as_trained_model(network, class_names=["a", "b", "c"])
    X = np.random.default_rng(1).normal(size=(6, 3))
    A = network.predict(X)
    np.testing.assert_array_equal(model.outputs(X), A)
    np.testing.assert_array_equal(model.predict_classes(X), A.argmax(axis=1))
    assert list(model.predict(X)) == [["a", "b", "c"][k] for k in A.argmax(axis=1)]


def test_info_json_reports_the_files_own_creation_time(tmp_path: Path, capsys) -> None:
    from nnmath.cli import main

    path = nm.save(nm.MLP("2-2softmax"), tmp_path / "m.nnm")
    with np.load(path) as archive:
        header = json.loads(archive[modelfile.HEADER_KEY].tobytes())
    assert main(["info", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["created"] == header["created"] and shown["nnmath_version"] == nm.__version__
    assert nm.load(path).created == header["created"]


def test_the_sdist_carries_the_license_the_docs_and_everything_the_readme_links(
    tmp_path: Path,
) -> None:
    build = f"from setuptools import build_meta as b; print(b.build_sdist({str(tmp_path)!r}))"
    result = python(build, ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    archive = tmp_path / result.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = {link for link in re.findall(r"\]\(([^)#]+)", readme) if "://" not in link}
    assert links, "the README links no local files?"
    assert {"LICENSE", "README.md", "src/nnmath/py.typed", *links} <= names
    assert {str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md")} <= names
