"""Tests of nnmath.datasets: built-in sets, file loading and its errors, standardizing, splits."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from nnmath import datasets
from nnmath.datasets import (
    Dataset,
    Standardizer,
    batches,
    list_datasets,
    load_dataset,
    one_hot,
    split_for_evaluation,
    train_test_split,
)
from nnmath.errors import DataError, ShapeError, SpecError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def error_of(source: object, **options: object) -> str:
    """The message of the DataError that load_dataset raises on ``source``."""
    with pytest.raises(DataError) as caught:
        load_dataset(source, **options)  # type: ignore[arg-type]
    return str(caught.value)


# --- Built-in sets -----------------------------------------------------------------------------


EXPECTED_SHAPES = {
    "xor": (400, 2, 2),
    "spirals": (600, 2, 2),
    "spirals3": (900, 2, 3),
    "moons": (500, 2, 2),
    "circles": (500, 2, 2),
    "blobs": (600, 2, 3),
    "iris": (150, 4, 3),
    "wine": (178, 13, 3),
    "breast-cancer": (569, 30, 2),
    "digits": (1797, 64, 10),
    "diabetes": (442, 10, 1),
    "mnist1d": (4000, 40, 10),
}


def test_every_builtin_is_expected_and_listed():
    assert [info.name for info in list_datasets()] == list(EXPECTED_SHAPES)
    for info in list_datasets():
        assert info.available
        assert (info.n_samples, info.n_features, info.n_outputs) == EXPECTED_SHAPES[info.name]
        assert info.description and "\n" not in info.description


@pytest.mark.parametrize("name", list(EXPECTED_SHAPES))
def test_builtin_loads_with_right_shapes(name):
    data = load_dataset(name)
    S, n, outputs = EXPECTED_SHAPES[name]
    assert data.name == name
    assert data.X.shape == (S, n) and data.X.dtype == np.float64
    assert np.isfinite(data.X).all()
    assert len(data.feature_names) == n
    assert data.n_samples == S and data.n_features == n and data.n_outputs == outputs
    assert data.task == datasets._BUILTINS[name].task
    T = data.targets()
    if data.task == "classification":
        assert data.y.shape == (S,) and data.y.dtype == np.int64
        assert len(data.class_names) == outputs
        assert set(np.unique(data.y)) == set(range(outputs))
        assert T.shape == (S, outputs) and np.array_equal(T.sum(axis=1), np.ones(S))
    else:
        assert data.y.shape == (S, 1) and data.y.dtype == np.float64
        assert data.class_names is None and T is data.y


def test_mnist1d_keeps_its_fixed_test_split_and_the_global_random_state():
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    datasets._mnist1d_arrays.cache_clear()
    data = load_dataset("mnist1d")
    assert (np.random.random(), random.random()) == expected
    assert data.X_test.shape == (1000, 40) and data.y_test.shape == (1000,)
    assert data.class_names == [str(d) for d in range(10)]
    data.X[0, 0] = 99.0  # a caller's edit must not reach the cache
    assert load_dataset("mnist1d").X[0, 0] != 99.0
    train, test = split_for_evaluation(data, 0.5, np.random.default_rng(0))
    assert train.n_samples == 4000 and test.n_samples == 1000
    assert np.array_equal(test.X, data.X_test) and train.X_test is None


def test_sklearn_sets_keep_their_label_names():
    assert load_dataset("iris").class_names == ["setosa", "versicolor", "virginica"]
    assert load_dataset("breast_cancer").class_names == ["malignant", "benign"]


@pytest.mark.parametrize("name", ["xor", "spirals", "spirals3", "moons", "circles", "blobs"])
def test_generated_sets_follow_the_seed(name):
    first, again, other = (load_dataset(name, seed=s) for s in (7, 7, 8))
    assert np.array_equal(first.X, again.X) and np.array_equal(first.y, again.y)
    assert not np.array_equal(first.X, other.X)
    counts = np.bincount(first.y)
    assert counts.max() - counts.min() <= first.n_samples // 2  # every class well represented


def test_xor_labels_are_the_sign_rule():
    X, y = datasets.make_xor(200, np.random.default_rng(0))
    assert np.array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))


def test_unknown_name_suggests_a_close_one():
    message = error_of("irsi")
    assert "'iris'" in message and "moons" in message and ".csv" in message


def usage_error_of(source: object, **options: object) -> str:
    """The message of the SpecError (a setting that does not apply) load_dataset raises."""
    with pytest.raises(SpecError) as caught:
        load_dataset(source, **options)  # type: ignore[arg-type]
    return str(caught.value)


def test_builtin_rejects_target_and_a_wrong_task():
    assert "target" in usage_error_of("iris", target="species")
    assert "classification" in usage_error_of("iris", task="regression")


def test_missing_extra_names_the_package_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    message = error_of("iris")
    assert "scikit-learn" in message and "nnmath[data]" in message
    infos = {info.name: info for info in list_datasets()}
    assert not infos["iris"].available and infos["iris"].n_samples is None
    assert infos["xor"].available


# --- CSV files ---------------------------------------------------------------------------------


def test_csv_with_string_labels_keeps_class_names(tmp_path):
    path = write(
        tmp_path / "flowers.csv",
        "length,width,species\n1.0,2.0,virginica\n1.5,2.5,setosa\n\n2.0,3.0,virginica\n",
    )
    data = load_dataset(path)
    assert data.name == "flowers" and data.task == "classification"
    assert data.feature_names == ["length", "width"] and data.target_name == "species"
    assert data.class_names == ["setosa", "virginica"]
    assert data.y.tolist() == [1, 0, 1]
    assert [data.class_names[c] for c in data.y] == ["virginica", "setosa", "virginica"]
    assert np.array_equal(data.X, [[1.0, 2.0], [1.5, 2.5], [2.0, 3.0]])


def test_csv_target_by_name_and_numeric_labels_sorted_numerically(tmp_path):
    path = write(tmp_path / "d.csv", "label,a\n10,0.5\n2,1.5\n10,2.5\n")
    data = load_dataset(str(path), target="label")
    assert data.feature_names == ["a"] and data.class_names == ["2", "10"]
    assert data.y.tolist() == [1, 0, 1]


def test_task_inference(tmp_path):
    few_integers = "\n".join(f"{i},{i % 3}" for i in range(30))
    many_integers = "\n".join(f"{i},{i}" for i in range(30))
    fractions = "\n".join(f"{i},{i / 7}" for i in range(30))
    cases = {"few": few_integers, "many": many_integers, "fractions": fractions}
    tasks = {
        name: load_dataset(write(tmp_path / f"{name}.csv", "x,t\n" + text)).task
        for name, text in cases.items()
    }
    assert tasks == {"few": "classification", "many": "regression", "fractions": "regression"}
    forced = load_dataset(tmp_path / "few.csv", task="regression")
    assert forced.task == "regression" and forced.y.shape == (30, 1)


def test_csv_regression_target_is_a_column(tmp_path):
    path = write(tmp_path / "r.csv", "a,b,price\n1,2,3.5\n4,5,6.25\n7,8,1e3\n")
    data = load_dataset(path)
    assert data.task == "regression" and data.class_names is None
    assert np.array_equal(data.y, [[3.5], [6.25], [1000.0]])
    assert data.n_outputs == 1


# --- Errors, each naming the place and the fix -------------------------------------------------


def test_file_not_found(tmp_path):
    message = error_of(tmp_path / "nope.csv")
    assert "nope.csv" in message and "not found" in message


def test_unsupported_extension(tmp_path):
    message = error_of(write(tmp_path / "sheet.xlsx", "x"))
    assert "'.xlsx'" in message and ".csv" in message and ".parquet" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["empty", "header"]),
        ("a,b,c\n", ["no data rows"]),
        ("a,b,c\n1,2,0\n3,4\n", ["line 3", "2 fields", "3 columns"]),
        ("a,b,c\n1,2,0\n3,4,1,\n", ["line 3", "4 fields", "comma"]),
        ("a,b,c\n1,2,0\n1,abc,1\n", ["line 3", "'b'", "'abc'", "not a number", "numeric"]),
        ("a,b,c\n1,2,0\n\n1,,1\n", ["line 4", "'b'", "empty", "fill in"]),
        ("a,b,c\n1,2,0\n1,NaN,1\n", ["line 3", "'b'", "NaN"]),
        ("a,b,c\n1,2,0\n1,inf,1\n", ["line 3", "'b'", "infinite"]),
        ("a,b,c\n1,2,0\n1,2,\n", ["line 3", "target column 'c'", "missing"]),
        ("a,b,c\n1,2,x\n1,2,x\n", ["single class", "'x'", "regression"]),
        ("a,a,c\n1,2,0\n", ["'a'", "twice"]),
        ("a,,c\n1,2,0\n", ["column 2", "no name"]),
        ("a;b;c\n1;2;0\n", ["comma"]),
        ("c\n1\n2\n", ["feature column"]),
    ],
)
def test_csv_errors_name_the_place_and_the_fix(tmp_path, text, expected):
    path = write(tmp_path / "bad.csv", text)
    message = error_of(path)
    assert message.startswith(str(path))
    for fragment in expected:
        assert fragment in message


def test_missing_target_lists_the_columns(tmp_path):
    path = write(tmp_path / "d.csv", "height,weight,label\n1,2,0\n3,4,1\n")
    message = error_of(path, target="Label")
    assert "'Label'" in message and "'height', 'weight', 'label'" in message


def test_text_target_with_task_regression_names_the_cell(tmp_path):
    path = write(tmp_path / "d.csv", "a,t\n1,2.5\n2,high\n")
    message = error_of(path, task="regression")
    assert "line 3" in message and "'high'" in message and "task='classification'" in message


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,b\n1,caf\xe9\n".encode("latin-1"))
    assert "UTF-8" in error_of(path)


def test_bad_task_value(tmp_path):
    assert "'classification' or 'regression'" in usage_error_of("xor", task="regresion")


# --- NPZ files ---------------------------------------------------------------------------------


def test_npz_with_names_and_test_split(tmp_path):
    rng = np.random.default_rng(0)
    X, X_test = rng.normal(size=(20, 3)), rng.normal(size=(5, 3))
    y, y_test = np.array(["cat", "dog"] * 10), np.array(["dog"] * 5)
    path = tmp_path / "pets.npz"
    np.savez(path, X=X, y=y, X_test=X_test, y_test=y_test, feature_names=np.array(["a", "b", "c"]))
    data = load_dataset(path)
    assert data.task == "classification" and data.class_names == ["cat", "dog"]
    assert data.feature_names == ["a", "b", "c"] and data.y.tolist() == [0, 1] * 10
    assert np.array_equal(data.X_test, X_test) and data.y_test.tolist() == [1] * 5


def test_npz_class_names_mean_y_holds_indices(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, X=np.eye(3), y=np.array([2, 0, 2]), class_names=np.array(["a", "b", "c"]))
    data = load_dataset(path)
    assert data.class_names == ["a", "b", "c"] and data.y.tolist() == [2, 0, 2]
    assert data.n_outputs == 3


def test_npz_regression_and_target_key(tmp_path):
    path = tmp_path / "r.npz"
    Y = np.arange(8.0).reshape(4, 2)
    np.savez(path, X=np.ones((4, 1)), y=np.zeros(4), price=Y)
    data = load_dataset(path, target="price")
    assert data.task == "regression" and np.array_equal(data.y, Y) and data.n_outputs == 2


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"features": np.ones((2, 2)), "y": np.arange(2)}, ["no array 'X'", "'features'"]),
        ({"X": np.ones(4), "y": np.arange(4)}, ["2-D"]),
        ({"X": np.ones((4, 2)), "y": np.arange(3)}, ["4 rows", "one target per row"]),
        (
            {"X": np.array([[1.0, 2.0], [np.nan, 1.0]]), "y": np.arange(2)},
            ["X[1, 0]", "'x0'", "nan"],
        ),
    ],
)
def test_npz_errors(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    message = error_of(path)
    for fragment in expected:
        assert fragment in message


def test_npz_garbage(tmp_path):
    path = write(tmp_path / "junk.npz", "not a zip")
    assert "npz" in error_of(path)


# --- Parquet files -----------------------------------------------------------------------------


def test_parquet_like_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "kind": ["x", "y", "x"]})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    data = load_dataset(path)
    assert data.feature_names == ["a", "b"] and data.class_names == ["x", "y"]
    assert np.array_equal(data.X, [[1, 0.5], [2, 1.5], [3, 2.5]]) and data.y.tolist() == [0, 1, 0]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"a": [1.0, None, 3.0], "t": [0, 1, 0]}, ["data row 2", "'a'", "missing"]),
        ({"a": ["1", "x", "3"], "t": [0, 1, 0]}, ["data row 2", "'a'", "'x'", "not a number"]),
        ({"a": [1.0, 2.0, 3.0], "t": ["u", None, "v"]}, ["data row 2", "'t'", "missing"]),
    ],
)
def test_parquet_errors(tmp_path, columns, expected):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns), path)
    message = error_of(path)
    for fragment in expected:
        assert fragment in message


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    path = write(tmp_path / "t.parquet", "")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    message = error_of(path)
    assert "pyarrow" in message and "nnmath[files]" in message


# --- The Dataset container ---------------------------------------------------------------------


def test_one_hot():
    assert np.array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    assert one_hot(np.array([1]), 2, dtype=np.float32).dtype == np.float32
    with pytest.raises(DataError, match="0..1"):
        one_hot(np.array([2]), 2)


def test_dataset_validates_its_arrays():
    common = {"name": "t", "feature_names": ["a"], "target_name": "t"}
    with pytest.raises(DataError, match="integer class indices"):
        Dataset(
            X=np.ones((2, 1)),
            y=np.array([0.5, 1.0]),
            task="classification",
            class_names=None,
            **common,
        )
    with pytest.raises(DataError, match="3 rows"):
        Dataset(X=np.ones((3, 1)), y=np.zeros(2), task="regression", class_names=None, **common)
    with pytest.raises(DataError, match=r"X\[0, 0\]"):
        Dataset(
            X=np.array([[np.inf]]), y=np.zeros(1), task="regression", class_names=None, **common
        )
    data = Dataset(
        X=np.ones((2, 1)), y=np.arange(2), task="classification", class_names=None, **common
    )
    assert data.class_names == ["0", "1"] and "2 classes" in repr(data)


# --- Standardizer ------------------------------------------------------------------------------


def test_standardizer_round_trip_and_constant_column():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(5.0, 3.0, 50), np.full(50, 0.1), rng.uniform(size=50)])
    standardizer = Standardizer.fit(X)
    Z = standardizer.transform(X)
    assert np.allclose(Z[:, [0, 2]].mean(axis=0), 0) and np.allclose(Z[:, [0, 2]].std(axis=0), 1)
    assert standardizer.scale[1] == 1.0 and np.array_equal(Z[:, 1], np.zeros(50))
    assert np.allclose(standardizer.inverse_transform(Z), X)
    restored = Standardizer.from_dict(standardizer.to_dict())
    assert all(isinstance(v, list) for v in standardizer.to_dict().values())
    assert np.array_equal(restored.transform(X), Z)


def test_standardizer_keeps_float32_and_checks_width():
    standardizer = Standardizer.fit(np.arange(6.0).reshape(3, 2))
    assert standardizer.transform(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
    with pytest.raises(ShapeError, match="2 columns"):
        standardizer.transform(np.ones((2, 3)))
    with pytest.raises(DataError, match="'mean' and 'scale'"):
        Standardizer.from_dict({"mean": [0.0]})


# --- Splits and batches ------------------------------------------------------------------------


def test_stratified_split_keeps_class_proportions_and_is_deterministic():
    data = load_dataset("breast-cancer")  # 212 malignant, 357 benign
    train, test = train_test_split(data, 0.25, rng=np.random.default_rng(3))
    again, _ = train_test_split(data, 0.25, rng=np.random.default_rng(3))
    assert np.array_equal(train.X, again.X) and np.array_equal(train.y, again.y)
    assert test.n_samples == round(0.25 * 569) and train.n_samples + test.n_samples == 569
    full, part = np.bincount(data.y) / 569, np.bincount(test.y) / test.n_samples
    assert np.abs(full - part).max() < 1 / test.n_samples + 1e-12
    assert train.class_names == test.class_names == data.class_names
    rows = {tuple(row) for row in np.vstack([train.X, test.X])}
    assert rows == {tuple(row) for row in data.X}


def test_stratified_split_of_iris_is_exact():
    data = load_dataset("iris")
    train, test = train_test_split(data, rng=np.random.default_rng(0))
    assert np.bincount(test.y).tolist() == [10, 10, 10]
    assert np.bincount(train.y).tolist() == [40, 40, 40]


def test_regression_split_and_bad_fractions():
    data = load_dataset("diabetes")
    train, test = train_test_split(data, 0.1, rng=np.random.default_rng(0))
    assert (train.n_samples, test.n_samples) == (398, 44) and test.task == "regression"
    for fraction in (0.0, 1.0, 1.5):
        with pytest.raises(SpecError, match="between 0 and 1"):
            train_test_split(data, fraction, rng=np.random.default_rng(0))
    tiny = datasets._subset(data, np.arange(3))
    with pytest.raises(DataError, match="0 test samples"):
        train_test_split(tiny, 0.1, rng=np.random.default_rng(0))


@pytest.mark.parametrize(("n_samples", "batch_size"), [(10, 3), (10, 10), (10, 64), (0, 4)])
def test_batches_cover_every_index_once(n_samples, batch_size):
    parts = list(batches(n_samples, batch_size, np.random.default_rng(1)))
    assert [len(p) for p in parts[:-1]] == [batch_size] * (len(parts) - 1)
    covered = np.concatenate(parts) if parts else np.array([], dtype=int)
    assert sorted(covered.tolist()) == list(range(n_samples))
    again = list(batches(n_samples, batch_size, np.random.default_rng(1)))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_batches_reject_a_zero_batch_size():
    with pytest.raises(DataError, match="batch_size"):
        batches(10, 0, np.random.default_rng(0))


def test_without_pyarrow_only_csv_and_parquet_files_need_it(tmp_path, monkeypatch):
    """The bundled sets and .npz files load without pyarrow; a CSV file names the files extra."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    assert load_dataset("xor").n_samples > 0 and load_dataset("iris").n_samples == 150
    np.savez(tmp_path / "t.npz", X=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    assert load_dataset(tmp_path / "t.npz").n_samples == 4
    message = error_of(write(tmp_path / "t.csv", "a,b\n1,0\n2,1\n"))
    assert "reading CSV files needs the optional package 'pyarrow'" in message
    assert "pip install 'nnmath[files]'" in message


def test_digits_are_read_without_importing_scikit_learn() -> None:
    """The bundled CSV gives load_digits' numbers and names, and the import of scikit-learn (more
    than a second of a short run) is skipped."""
    import subprocess

    from nnmath.datasets.builtin import _load_digits, _sklearn_loader

    ours, theirs = _load_digits(0), _sklearn_loader("digits", "load_digits", "digit")(0)
    assert np.array_equal(ours.X, theirs.X) and ours.X.dtype == theirs.X.dtype
    assert np.array_equal(ours.y, theirs.y) and ours.y.dtype == theirs.y.dtype
    assert ours.feature_names == theirs.feature_names
    assert ours.class_names == theirs.class_names and ours.target_name == theirs.target_name
    code = (
        "import sys; from nnmath.datasets import load_dataset; load_dataset('digits'); "
        "print('sklearn' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_mnist1d_is_generated_once_then_read_from_the_cache(tmp_path, monkeypatch) -> None:
    """The first load keeps MNIST-1D in the cache directory; later loads (in a fresh process) read
    it without importing mnist1d; a damaged cache file is generated again and replaced."""
    import subprocess
    import sys

    from nnmath.datasets import builtin

    monkeypatch.setenv("NNMATH_CACHE_DIR", str(tmp_path))
    builtin._mnist1d_arrays.cache_clear()
    first = builtin._mnist1d_arrays()
    builtin._mnist1d_arrays.cache_clear()
    (path,) = tmp_path.glob("mnist1d-*-default.npz")
    assert not list(tmp_path.glob("*.tmp"))
    code = (
        "import sys; from nnmath.datasets import load_dataset; d = load_dataset('mnist1d'); "
        "print('mnist1d' in sys.modules, d.X.shape, float(d.X.sum()))"
    )
    env = {**__import__("os").environ, "NNMATH_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.split()[0] == "False", result.stderr
    assert float(result.stdout.split()[-1]) == float(first[0].sum())
    path.write_bytes(path.read_bytes()[:-100])  # a truncated file: regenerated, not trusted
    again = builtin._mnist1d_arrays()
    builtin._mnist1d_arrays.cache_clear()
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a, b)
    assert builtin._read_mnist1d_cache(path) is not None  # and written back whole
