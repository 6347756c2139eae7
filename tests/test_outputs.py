"""Outputs are checked before the work, and work whose file cannot be written is not lost."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from nnmath import outputs, recipe
from nnmath.cli import DATA, main
from nnmath.errors import OutputError
from nnmath.modelfile import TrainedModel, load_model
from nnmath.outputs import check_output, save_with_fallback

QUICK = ["train", "--data", "iris", "--epochs", "1", "--no-plots", "-q"]


def full_disk(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


# ---- check_output -----------------------------------------------------------------------------


def test_a_writable_path_is_returned_and_missing_folders_are_allowed(tmp_path: Path) -> None:
    assert check_output(tmp_path / "m.nnm", "-o") == tmp_path / "m.nnm"
    assert check_output(tmp_path / "new" / "deeper" / "m.nnm", "-o") == (
        tmp_path / "new" / "deeper" / "m.nnm"
    )
    assert check_output(tmp_path / "plots", "--plots", kind="folder") == tmp_path / "plots"
    assert not (tmp_path / "new").exists()  # checked, not created
    assert not list(tmp_path.glob(f"{outputs.PROBE_PREFIX}*"))  # the probe is removed


def bad_path(folder: Path, case: str) -> Path | str:
    """A folder where a file belongs, paths under a file, a file where a folder belongs, …"""
    (folder / "d").mkdir()
    (folder / "f").write_text("")
    return {
        "folder": folder / "d",
        "under a file": folder / "f" / "m.nnm",
        "deep under a file": folder / "f" / "a" / "m.nnm",
        "a file as folder": folder / "f",
        "read-only": Path("/proc/m.nnm"),
        "empty": "",
    }[case]


@pytest.mark.parametrize(
    ("case", "kind", "said"),
    [
        ("folder", "file", "is a folder; give a file name for -o"),
        ("under a file", "file", "f is a file, not a folder"),
        ("deep under a file", "file", "f is a file, not a folder"),
        ("a file as folder", "folder", "is a file, not a folder; give -o a folder"),
        ("read-only", "file", "cannot create files in /proc"),
        ("empty", "file", "-o is empty"),
    ],
)
def test_unwritable_paths_are_refused_in_one_line(tmp_path: Path, case, kind, said) -> None:
    with pytest.raises(OutputError) as caught:
        check_output(bad_path(tmp_path, case), "-o", kind=kind)
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_a_place_where_no_file_can_be_created_is_refused(tmp_path: Path, monkeypatch) -> None:
    """What a read-only file system or a folder without permission says (root passes chmod)."""

    def refused(*_: object, **__: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", refused)
    with pytest.raises(OutputError, match=r"cannot create files in .* \(Permission denied\)"):
        check_output(tmp_path / "m.nnm", "-o")


# ---- save_with_fallback -----------------------------------------------------------------------


def test_a_failed_save_goes_to_the_first_place_that_takes_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    written: list[Path] = []

    def save(path: Path) -> Path:
        if path.name == "m.nnm":
            full_disk()
        path.write_text("model")
        written.append(path)
        return path

    where, error = save_with_fallback(save, tmp_path / "out" / "m.nnm", "model")
    assert error is not None and error.errno == errno.ENOSPC
    assert where.parent == tmp_path and where.name.startswith("m-rescued-") and where.exists()
    assert where.suffix == ".nnm" and written == [where]


def test_when_no_place_takes_it_the_error_names_every_place(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="could not save the model to .* nor to") as caught:
        save_with_fallback(full_disk, tmp_path / "m.nnm", "model")  # type: ignore[arg-type]
    assert "free some disk space" in str(caught.value)


# ---- the commands -----------------------------------------------------------------------------


def test_train_saves_the_model_elsewhere_when_its_file_cannot_be_written(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A disk that fills up during training: the run ends with status 3 and names where the
    trained model went instead; that file is the complete model."""
    monkeypatch.chdir(tmp_path)
    save = TrainedModel.save

    def save_except_there(self: TrainedModel, path: str | Path) -> Path:
        if Path(path).name == "wanted.nnm":
            full_disk()
        return save(self, path)

    monkeypatch.setattr(TrainedModel, "save", save_except_there)
    assert main([*QUICK, "-o", "wanted.nnm"]) == DATA
    out, err = capsys.readouterr()
    rescued = Path(out.split("saved model: ")[1].split()[0])
    assert rescued.name.startswith("wanted-rescued-") and rescued.parent == tmp_path
    assert f"it was saved to {rescued} instead" in err and "No space left" in err
    assert err.count("\n") == 1 and not (tmp_path / "wanted.nnm").exists()
    assert load_model(rescued).network.spec.n_in == 4


def test_a_checkpoint_that_cannot_be_written_warns_once_and_training_goes_on(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(recipe, "save_checkpoint", full_disk)
    argv = [*QUICK, "--epochs", "3", "-o", "m.nnm", "--checkpoint", "c.ckpt"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("could not write the checkpoint c.ckpt (No space left on device)") == 1
    assert load_model(tmp_path / "m.nnm") is not None


def test_predict_writes_its_table_elsewhere_when_its_file_cannot_be_written(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*QUICK, "-o", "iris.nnm"]) == 0
    columns = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)"
    (tmp_path / "rows.csv").write_text(f"{columns}\n5.1,3.5,1.4,0.2\n")
    real = outputs.save_with_fallback

    def first_fails(save, path, what):  # noqa: ANN001, ANN202
        return real(lambda p: full_disk() if p.name == "p.csv" else save(p), path, what)

    monkeypatch.setattr("nnmath.cli.predict.save_with_fallback", first_fails)
    capsys.readouterr()
    assert main(["predict", "iris.nnm", "rows.csv", "-o", "p.csv"]) == DATA
    err = capsys.readouterr().err
    rescued = next(tmp_path.glob("p-rescued-*.csv"))
    assert f"it was saved to {rescued} instead" in err
    assert rescued.read_text().startswith("prediction,p_setosa")
