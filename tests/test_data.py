"""qkan.data: seeded function datasets, Feynman equations, generated classes, CSV loader."""

import math

import pytest
import torch

from qkan import data as qdata


def test_function_dataset_shapes_seed_and_labels():
    f = lambda x: torch.stack([x[:, 0] * x[:, 1], x[:, 0] - x[:, 1]], dim=1)  # noqa: E731
    d1 = qdata.function_dataset(f, n_var=2, ranges=[(0, 1), (-3, -2)], train_num=50, test_num=20, seed=4)
    d2 = qdata.function_dataset(f, n_var=2, ranges=[(0, 1), (-3, -2)], train_num=50, test_num=20, seed=4)
    d3 = qdata.function_dataset(f, n_var=2, ranges=[(0, 1), (-3, -2)], train_num=50, test_num=20, seed=5)
    assert d1["train_input"].shape == (50, 2) and d1["test_label"].shape == (20, 2)
    assert d1["train_input"].dtype == torch.get_default_dtype()
    assert torch.equal(d1["train_input"], d2["train_input"])
    assert not torch.equal(d1["train_input"], d3["train_input"])
    assert not torch.equal(d1["train_input"], d1["test_input"])
    x = d1["train_input"]
    assert x[:, 0].min() >= 0 and x[:, 0].max() <= 1 and x[:, 1].min() >= -3 and x[:, 1].max() <= -2
    torch.testing.assert_close(d1["train_label"], f(x.double()).float())


def test_function_dataset_1d_labels_and_dtype():
    d = qdata.function_dataset(lambda x: x[:, 0] ** 2, n_var=1, train_num=8, test_num=8, dtype=torch.float64)
    assert d["train_label"].shape == (8, 1) and d["train_label"].dtype == torch.float64
    torch.testing.assert_close(d["train_label"][:, 0], d["train_input"][:, 0] ** 2, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_var=0), r"`n_var` must be an int >= 1; got 0"),
        (dict(train_num=0), r"`train_num` must be an int >= 1"),
        (dict(ranges=(1, 0)), r"`ranges` must be \(lo, hi\) or 2 pairs"),
        (dict(ranges=[(0, 1)] * 3), r"`ranges` must be \(lo, hi\) or 2 pairs"),
    ],
)
def test_function_dataset_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        qdata.function_dataset(lambda x: x[:, 0], **{"n_var": 2, **kwargs})


def test_function_dataset_bad_function():
    with pytest.raises(TypeError, match="`f` must be a callable"):
        qdata.function_dataset(3)
    with pytest.raises(ValueError, match=r"`f` must return \(N,\) or \(N, O\) values for N = 1000"):
        qdata.function_dataset(lambda x: x[:3, 0])


def test_demo_function_values():
    x = torch.tensor([[0.5, 1.0], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(qdata.demo_function(x), torch.tensor([[math.exp(2)], [1.0]], dtype=torch.float64))


def test_feynman_has_20_equations_all_finite():
    assert len(qdata.FEYNMAN) >= 20
    for name in qdata.FEYNMAN:
        d = qdata.feynman(name, train_num=64, test_num=16, dtype=torch.float64)
        assert torch.isfinite(d["train_label"]).all(), name
        assert d["train_input"].shape == (64, len(d["variables"]))


def test_feynman_values_and_ranges():
    d = qdata.feynman("I.12.11", train_num=100, test_num=10, dtype=torch.float64)
    assert d["variables"] == ["q", "Ef", "B", "v", "theta"]
    q, ef, b, v, th = d["train_input"].T
    torch.testing.assert_close(d["train_label"][:, 0], q * (ef + b * v * torch.sin(th)), rtol=1e-14, atol=0)
    assert d["train_input"].min() >= 1 and d["train_input"].max() <= 5
    d = qdata.feynman("I.6.2a", train_num=10, test_num=10, dtype=torch.float64)
    th = d["train_input"][:, 0]
    torch.testing.assert_close(d["train_label"][:, 0], torch.exp(-th**2 / 2) / math.sqrt(2 * math.pi), rtol=1e-14, atol=0)
    assert th.min() >= 1 and th.max() <= 3


def test_feynman_normalize_and_index():
    raw = qdata.feynman(0, train_num=20, test_num=5, seed=2, dtype=torch.float64)
    norm = qdata.feynman(0, train_num=20, test_num=5, seed=2, normalize=True, dtype=torch.float64)
    assert raw["formula"] == qdata.FEYNMAN[list(qdata.FEYNMAN)[0]][0]
    assert norm["train_input"].min() >= -1 and norm["train_input"].max() <= 1
    # same samples, affinely mapped: [-1, 1] -> [1, 3] for I.6.2a
    torch.testing.assert_close(raw["train_input"], 2 + norm["train_input"], rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(raw["train_label"], norm["train_label"], rtol=1e-14, atol=1e-14)


def test_feynman_errors():
    with pytest.raises(ValueError, match=r"`name_or_index` must be one of .* got 'I.99'"):
        qdata.feynman("I.99")
    with pytest.raises(ValueError, match=r"`name_or_index` must be in \[0, "):
        qdata.feynman(10_000)


def test_published_feynman_table_has_the_120_equations():
    table = qdata.FEYNMAN_PUBLISHED
    assert len(table) == 120 and list(table)[:3] == ["I.6.20a", "I.6.20", "I.6.20b"]
    assert list(table)[-1] == "Schwarz 13.132 (Klein-Nishina)"
    for name, (formula, variables, ranges, _) in table.items():
        assert len(variables) == len(ranges) >= 1 and all(lo < hi for lo, hi in ranges), name
        d = qdata.feynman(name, train_num=32, test_num=8, seed=1, dtype=torch.float64, source="published")
        assert torch.isfinite(d["train_label"]).all() and d["formula"] == formula, name
        lo, hi = torch.tensor(ranges, dtype=torch.float64).T
        assert bool(((d["train_input"] >= lo) & (d["train_input"] <= hi)).all()), name
    # every original name still resolves to the original entry (its own ranges)
    assert list(qdata.FEYNMAN)[:3] == ["I.6.2a", "I.6.2", "I.8.14"]
    assert set(table) <= set(qdata.FEYNMAN)


def test_published_feynman_values():
    d = qdata.feynman("I.6.20a", train_num=200, test_num=5, source="published", dtype=torch.float64)
    th = d["train_input"][:, 0]
    torch.testing.assert_close(d["train_label"][:, 0], torch.exp(-th**2 / 2) / math.sqrt(2 * math.pi), rtol=1e-13, atol=0)
    assert th.min() >= -3 and th.max() <= 3 and th.min() < -2  # pykan's range (-3, 3), not (1, 3)
    d = qdata.feynman("I.16.6", train_num=50, test_num=5, source="published", dtype=torch.float64)
    u, v, c = d["train_input"].T  # the stated formula (pykan samples u*v in the numerator)
    torch.testing.assert_close(d["train_label"][:, 0], (u + v) / (1 + u * v / c**2), rtol=1e-13, atol=0)
    d = qdata.feynman("I.12.11", train_num=50, test_num=5, source="published", dtype=torch.float64)
    assert d["train_input"].min() < 0  # the published ranges differ from this package's (1, 5)
    d = qdata.feynman("I.18.12", train_num=20, test_num=5, source="published", dtype=torch.float64)
    r, f, th = d["train_input"].T
    torch.testing.assert_close(d["train_label"][:, 0], r * f * torch.sin(th), rtol=1e-13, atol=1e-15)
    by_index = qdata.feynman(1, train_num=20, test_num=5, source="published")
    assert by_index["formula"] == qdata.FEYNMAN_PUBLISHED["I.6.20"][0]
    with pytest.raises(ValueError, match=r"`source` must be one of \['qkan', 'published'\]"):
        qdata.feynman("I.6.20", source="pykan")
    with pytest.raises(ValueError, match=r"`name_or_index` must be one of .* got 'I.6.2a'"):
        qdata.feynman("I.6.2a", source="published")


def _digits_file(tmp_path, rows, gz=True):
    import gzip

    path = tmp_path / ("d.csv.gz" if gz else "d.csv")
    text = "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_digits_from_a_file(tmp_path):
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 17, (40, 64), generator=gen)
    labels = torch.arange(40) % 10
    rows = torch.cat([pixels, labels[:, None]], 1).tolist()
    for gz in (True, False):
        d = qdata.digits(test_fraction=0.25, seed=3, path=_digits_file(tmp_path, rows, gz), dtype=torch.float64)
        assert d["train_input"].shape == (30, 64) and d["test_input"].shape == (10, 64)
        assert d["train_label"].dtype == torch.int64 and d["test_label"].shape == (10,)
        x = torch.cat([d["train_input"], d["test_input"]]) * 16
        y = torch.cat([d["train_label"], d["test_label"]])
        order = sorted(range(40), key=lambda k: x[k].tolist())  # the split is a permutation of the rows
        expect = sorted(range(40), key=lambda k: pixels[k].tolist())
        torch.testing.assert_close(x[order], pixels[expect].double())
        assert torch.equal(y[order], labels[expect])
    again = qdata.digits(test_fraction=0.25, seed=3, path=_digits_file(tmp_path, rows))
    other = qdata.digits(test_fraction=0.25, seed=4, path=_digits_file(tmp_path, rows))
    assert not torch.equal(again["test_label"], other["test_label"]) or not torch.equal(again["test_input"], other["test_input"])


def test_digits_errors(tmp_path, monkeypatch):
    good = [[0] * 64 + [1], [16] * 64 + [9]]
    with pytest.raises(ValueError, match=r"must hold rows of 64 pixels and a label; got shape \(2, 64\)"):
        qdata.digits(path=_digits_file(tmp_path, [r[:64] for r in good]))
    with pytest.raises(ValueError, match=r"pixels in 0..16 and integer labels 0..9"):
        qdata.digits(path=_digits_file(tmp_path, [good[0], [17] * 64 + [1]]))
    with pytest.raises(ValueError, match=r"cannot read the digits file"):
        qdata.digits(path=tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"`test_fraction` must be in \(0, 1\)"):
        qdata.digits(test_fraction=1.0, path=_digits_file(tmp_path, good))
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install "qkan-daruan\[data\]"'):
        qdata.digits()


def test_digits_from_scikit_learn():
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        pytest.skip('scikit-learn is not installed (pip install "qkan-daruan[data]")')
    d = qdata.digits()
    assert d["train_input"].shape == (1348, 64) and d["test_input"].shape == (449, 64)
    assert float(d["train_input"].max()) == 1.0 and float(d["train_input"].min()) == 0.0
    assert set(torch.cat([d["train_label"], d["test_label"]]).tolist()) == set(range(10))


@pytest.mark.parametrize("kind", ["moons", "spirals"])
def test_classification_dataset(kind):
    d = qdata.classification_dataset(kind, train_num=300, test_num=100, noise=0.0, seed=1)
    assert d["train_input"].shape == (300, 2) and d["train_label"].shape == (300,)
    assert d["train_label"].dtype == torch.int64 and set(d["train_label"].tolist()) == {0, 1}
    assert d["train_input"].abs().max() <= 1
    x, y = d["train_input"], d["train_label"]
    # noise-free classes are separated: nearest neighbour of different class is not at distance 0
    dist = torch.cdist(x[y == 0], x[y == 1])
    assert dist.min() > 1e-3
    again = qdata.classification_dataset(kind, train_num=300, test_num=100, noise=0.0, seed=1)
    assert torch.equal(again["train_input"], x)


def test_classification_errors():
    with pytest.raises(ValueError, match=r"`kind` must be 'moons' or 'spirals'; got 'circles'"):
        qdata.classification_dataset("circles")
    with pytest.raises(ValueError, match=r"`noise` must be a number >= 0"):
        qdata.classification_dataset(noise=-1)


# ------------------------------------------------------------------------------------------- CSV
def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_csv_with_header_and_target(tmp_path):
    rows = "\n".join(f"{i},{i * 2},{i * 3}" for i in range(10))
    path = _write(tmp_path, "a,b,y\n" + rows + "\n")
    d = qdata.load_csv(path, dtype=torch.float64)
    assert d["columns"] == ["a", "b"]
    assert d["train_input"].shape == (8, 2) and d["test_input"].shape == (2, 2)
    torch.testing.assert_close(d["train_label"][:, 0], 3 * d["train_input"][:, 0], rtol=0, atol=0)
    d = qdata.load_csv(path, target="a", test_fraction=0.5)
    assert d["columns"] == ["b", "y"] and d["test_input"].shape == (5, 2)
    torch.testing.assert_close(d["train_label"][:, 0] * 2, d["train_input"][:, 0])


def test_load_csv_without_header(tmp_path):
    path = _write(tmp_path, "1,2\n3,4\n5,6\n\n")
    d = qdata.load_csv(path, target=0, test_fraction=0.3)
    assert d["columns"] == ["x2"]
    assert sorted(d["train_label"][:, 0].tolist() + d["test_label"][:, 0].tolist()) == [1, 3, 5]


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("", {}, r"t.csv' is empty"),
        ("a\n1\n2\n", {}, r"needs at least 2 columns"),
        ("a,b\n1,2\n3\n", {}, r"t.csv', line 3: expected 2 columns; got 1"),
        ("a,b\n1,2\n3,x\n", {}, r"t.csv', line 3: non-numeric value"),
        ("a,b\n1,2\n", {}, r"needs at least 2 data rows; got 1"),
        ("a,b\n1,2\n3,nan\n", {}, r"contains NaN or infinite values"),
        ("a,b\n1,2\n3,4\n", {"target": "z"}, r"`target` 'z' is not a column of .*columns are \['a', 'b'\]"),
        ("a,b\n1,2\n3,4\n", {"target": 2}, r"`target` must be a column name or an index in \[-2, 2\); got 2"),
        ("a,b\n1,2\n3,4\n", {"test_fraction": 1.0}, r"`test_fraction` must be in \(0, 1\)"),
    ],
)
def test_load_csv_errors(tmp_path, text, kwargs, match):
    with pytest.raises(ValueError, match=match):
        qdata.load_csv(_write(tmp_path, text), **kwargs)


def test_load_csv_missing_and_binary(tmp_path):
    with pytest.raises(ValueError, match=r"cannot read CSV file .*nope.csv"):
        qdata.load_csv(tmp_path / "nope.csv")
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ValueError, match=r"cannot read CSV file .*bin.csv"):
        qdata.load_csv(path)


# ------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "f, error, match",
    [
        (lambda x: x[:, 0] * math.nan, ValueError, r"`f` returned 1000 NaN or infinite value\(s\) in torch.float32 \(first: sample 0"),
        (lambda x: x[:, :1] / 0, ValueError, r"`f` returned .* NaN or infinite"),
        (lambda x: x[:, 0] * 1e39, ValueError, r"`f` returned .* in torch.float32 .*value -?inf"),
        (lambda x: x[:, :, None], ValueError, r"`f` must return \(N,\) or \(N, O\) values for N = 1000 samples; got shape \(1000, 2, 1\)"),
        (lambda x: 3.0, ValueError, r"`f` must return \(N,\) or \(N, O\) values .* got shape \(\)"),
        (lambda x: "label", TypeError, r"`f` must return a tensor of real numbers; got str"),
        (lambda x: torch.complex(x, x), TypeError, r"`f` must return real numbers; got dtype torch.complex"),
    ],
)
def test_function_dataset_checks_what_f_returns(f, error, match):
    with pytest.raises(error, match=match):
        qdata.function_dataset(f, dtype=torch.float32)


def test_function_dataset_large_values_fit_float64():
    d = qdata.function_dataset(lambda x: x[:, 0] * 1e39, train_num=4, test_num=4, dtype=torch.float64)
    assert torch.isfinite(d["train_label"]).all() and d["train_label"].abs().max() > 1e37


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(ranges=(0, math.inf)), ValueError, r"`ranges` must be \(lo, hi\) or 2 pairs \(lo, hi\) of finite numbers"),
        (dict(ranges="ab"), TypeError, r"`ranges` must be \(lo, hi\)"),
        (dict(seed=-1), ValueError, r"`seed` must be an int >= 0; got -1"),
        (dict(seed="0"), TypeError, r"`seed` must be an int"),
        (dict(dtype=torch.int64), ValueError, r"`dtype` must be a real floating torch dtype"),
        (dict(dtype="float32"), TypeError, r"`dtype` must be a real floating torch dtype"),
        (dict(train_num=2.5), TypeError, r"`train_num` must be an int"),
    ],
)
def test_function_dataset_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        qdata.function_dataset(lambda x: x[:, 0], **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(noise=math.nan), ValueError, r"`noise` must be a finite number; got nan"),
        (dict(noise="0.1"), TypeError, r"`noise` must be a number >= 0"),
        (dict(seed=-3), ValueError, r"`seed` must be an int >= 0"),
        (dict(dtype=torch.complex64), ValueError, r"`dtype` must be a real floating"),
    ],
)
def test_classification_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        qdata.classification_dataset(**kwargs)


def test_load_csv_overflow_in_the_target_dtype(tmp_path):
    path = _write(tmp_path, "a,b\n1,2\n3,1e39\n5,6\n")
    with pytest.raises(ValueError, match=r"contains NaN or infinite values in torch.float32: line 3, column 'b' is '1e39' \(too large"):
        qdata.load_csv(path, dtype=torch.float32)
    d = qdata.load_csv(path, dtype=torch.float64)  # representable in float64
    assert torch.isfinite(d["train_input"]).all() and torch.isfinite(d["train_label"]).all()
    path = _write(tmp_path, "1,2\n3,4\n-inf,6\n", name="u.csv")
    with pytest.raises(ValueError, match=r"line 3, column 'x1' is '-inf'$"):
        qdata.load_csv(path)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(test_fraction="0.2"), TypeError, r"`test_fraction` must be a number"),
        (dict(test_fraction=math.nan), ValueError, r"`test_fraction` must be a finite number"),
        (dict(test_fraction=0.0), ValueError, r"`test_fraction` must be in \(0, 1\)"),
        (dict(seed=-1), ValueError, r"`seed` must be an int >= 0"),
        (dict(dtype=torch.int32), ValueError, r"`dtype` must be a real floating"),
    ],
)
def test_load_csv_argument_errors(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        qdata.load_csv(_write(tmp_path, "1,2\n3,4\n5,6\n"), **kwargs)
    with pytest.raises(TypeError, match=r"`path` must be str or pathlib.Path; got int"):
        qdata.load_csv(3)


# ------------------------------------------------------------------------ odd files
def test_load_csv_with_a_byte_order_mark(tmp_path):
    bom = "\ufeff"  # Excel's "CSV UTF-8" starts with it
    plain = tmp_path / "plain.csv"
    plain.write_text("1,2\n3,4\n5,6\n", encoding="utf-8")
    marked = tmp_path / "bom.csv"
    marked.write_text(bom + "1,2\n3,4\n5,6\n", encoding="utf-8")
    a, b = qdata.load_csv(plain, test_fraction=0.3), qdata.load_csv(marked, test_fraction=0.3)
    assert all(torch.equal(a[k], b[k]) for k in ("train_input", "train_label", "test_input", "test_label"))
    assert sorted(b["train_label"][:, 0].tolist() + b["test_label"][:, 0].tolist()) == [2, 4, 6]  # no row lost
    header = tmp_path / "header.csv"
    header.write_text(bom + "x,y\n1,2\n3,4\n5,6\n", encoding="utf-8")
    d = qdata.load_csv(header, target="x", test_fraction=0.3)  # the first column by its name
    assert d["columns"] == ["y"]
    torch.testing.assert_close(d["train_label"] + 1, d["train_input"])


def test_load_csv_duplicate_target_name_is_ambiguous(tmp_path):
    path = _write(tmp_path, "a,y,y\n1,2,3\n4,5,6\n7,8,9\n")
    with pytest.raises(ValueError, match=r"`target` 'y' is ambiguous: CSV file .*t.csv' has 2 columns named 'y' \(columns \[1, 2\]\)"):
        qdata.load_csv(path, target="y")
    d = qdata.load_csv(path, target=2, test_fraction=0.3)  # an index says which one
    assert d["columns"] == ["a", "y"]
    assert qdata.load_csv(path, target="a", test_fraction=0.3)["columns"] == ["y", "y"]


@pytest.mark.parametrize("cut", [0.0, 0.3, 0.9, "flip"])
def test_damaged_digits_file_is_an_error_naming_it(tmp_path, cut):
    rows = [[k % 17] * 64 + [k % 10] for k in range(200)]
    path = _digits_file(tmp_path, rows)
    data = bytearray(path.read_bytes())
    if cut == "flip":
        data[len(data) // 2] ^= 0x10
    else:
        data = data[: int(len(data) * cut)]
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"cannot read the digits file {str(path)!r}|the digits file {str(path)!r}"):
        qdata.digits(path=path)


def test_numpy_integer_seeds(tmp_path):
    np = pytest.importorskip("numpy")
    a = qdata.function_dataset(qdata.demo_function, train_num=5, test_num=3, seed=np.int64(4))
    b = qdata.function_dataset(qdata.demo_function, train_num=5, test_num=3, seed=4)
    assert torch.equal(a["train_input"], b["train_input"])
    assert torch.equal(qdata.classification_dataset(train_num=4, test_num=2, seed=np.uint8(2))["train_input"],
                       qdata.classification_dataset(train_num=4, test_num=2, seed=2)["train_input"])
