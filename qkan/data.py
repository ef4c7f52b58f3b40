"""Built-in datasets in pykan's dict convention: function fitting, Feynman equations,
generated classification sets, scikit-learn's 8x8 digits and CSV files.

Every loader returns ``{"train_input": (N, I), "train_label": (N, O), "test_input": (M, I),
"test_label": (M, O)}``; classification labels are integer class indices of shape (N,).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
import zlib
from pathlib import Path
from typing import Callable

import torch

from qkan._checks import check_choice, check_int, check_number, check_type
from qkan._feynman import PUBLISHED_FEYNMAN

__all__ = [
    "function_dataset", "feynman", "FEYNMAN", "FEYNMAN_PUBLISHED", "demo_function", "classification_dataset",
    "digits", "load_csv",
]  # fmt: skip

Ranges = tuple[float, float] | list


def demo_function(x: torch.Tensor) -> torch.Tensor:
    """The demo target f(x, y) = exp(sin(pi x) + y^2): (N, 2) -> (N, 1)."""
    return torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2)


def _ranges(ranges, n_var: int) -> torch.Tensor:
    """(lo, hi) or a list of n_var pairs -> (n_var, 2) float64."""
    expected = f"`ranges` must be (lo, hi) or {n_var} pairs (lo, hi) of finite numbers with lo < hi; got {ranges!r}"
    try:
        r = torch.as_tensor(ranges, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(expected) from None
    if r.shape == (2,):
        r = r.expand(n_var, 2)
    if r.shape != (n_var, 2) or not bool(torch.isfinite(r).all()) or not bool((r[:, 0] < r[:, 1]).all()):
        raise ValueError(expected)
    return r


def _check_dtype(dtype) -> torch.dtype:
    """A floating torch dtype, or torch's default for None."""
    if dtype is None:
        return torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
        error = ValueError if isinstance(dtype, torch.dtype) else TypeError
        raise error(f"`dtype` must be a real floating torch dtype (e.g. torch.float32) or None; got {dtype!r}")
    return dtype


def _as_labels(y, n: int, arg: str, dtype: torch.dtype) -> torch.Tensor:
    """The values returned by `arg` as (n, O) real labels in `dtype`, all finite after the cast."""
    try:
        y = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"`{arg}` must return a tensor of real numbers; got {type(y).__name__}") from None
    if y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"`{arg}` must return real numbers; got dtype {y.dtype}")
    if y.dim() == 1:
        y = y[:, None]
    if y.dim() != 2 or y.shape[0] != n:
        raise ValueError(f"`{arg}` must return (N,) or (N, O) values for N = {n} samples; got shape {tuple(y.shape)}")
    y = y.to(dtype)
    bad = ~torch.isfinite(y)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"`{arg}` returned {int(bad.sum())} NaN or infinite value(s) in {dtype} (first: sample {row}, output {col}, "
            f"value {y[row, col].item()}); labels must be finite"
        )
    return y


def function_dataset(
    f: Callable[[torch.Tensor], torch.Tensor],
    n_var: int = 2,
    ranges: Ranges = (-1, 1),
    train_num: int = 1000,
    test_num: int = 1000,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> dict:
    """Samples of a function on a box, uniformly at random (seeded).

    Args:
        f: (N, n_var) float64 tensor -> (N,) or (N, O) values.
        n_var: number of input variables.
        ranges: (lo, hi) for every variable or a list of n_var pairs.
        train_num, test_num: samples per split.
        seed: seed of the sampler (same seed, same data).
        device, dtype: of the returned tensors (default dtype: torch's default).

    Returns:
        dict with train_input (train_num, n_var), train_label (train_num, O) and the test pair.

    Raises:
        ValueError naming `f` when it returns the wrong shape or values that are NaN or
        infinite in `dtype` (1e39 overflows float32); TypeError for non-numeric values.

    Examples:
        >>> data = function_dataset(lambda x: x[:, 0] * x[:, 1], n_var=2, train_num=10, test_num=5)
        >>> data["train_input"].shape, data["test_label"].shape
        (torch.Size([10, 2]), torch.Size([5, 1]))
    """
    if not callable(f):
        raise TypeError(f"`f` must be a callable on (N, n_var) tensors; got {f!r}")
    check_int("n_var", n_var)
    check_int("train_num", train_num)
    check_int("test_num", test_num)
    seed = check_int("seed", seed, low=0, high=2**63 - 1)
    r = _ranges(ranges, n_var)
    dtype = _check_dtype(dtype)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for split, num in (("train", train_num), ("test", test_num)):
        x = r[:, 0] + (r[:, 1] - r[:, 0]) * torch.rand(num, n_var, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            y = _as_labels(f(x), num, "f", dtype)
        out[f"{split}_input"] = x.to(device=device, dtype=dtype)
        out[f"{split}_label"] = y.to(device=device)
    return out


def _feynman_table() -> dict:
    """Equations of the AI Feynman benchmark (Udrescu & Tegmark 2020): name -> (formula,
    variables, ranges, function of a dict of float64 columns)."""
    pi, sqrt, exp, sin, cos = math.pi, torch.sqrt, torch.exp, torch.sin, torch.cos
    r15 = (1.0, 5.0)
    eqs = [
        ("I.6.2a", "exp(-theta^2/2)/sqrt(2 pi)", {"theta": (1, 3)}, lambda v: exp(-v["theta"] ** 2 / 2) / math.sqrt(2 * pi)),
        ("I.6.2", "exp(-(theta/sigma)^2/2)/(sqrt(2 pi) sigma)", {"sigma": (1, 3), "theta": (1, 3)},
         lambda v: exp(-((v["theta"] / v["sigma"]) ** 2) / 2) / (math.sqrt(2 * pi) * v["sigma"])),
        ("I.8.14", "sqrt((x2-x1)^2+(y2-y1)^2)", {"x1": r15, "x2": r15, "y1": r15, "y2": r15},
         lambda v: sqrt((v["x2"] - v["x1"]) ** 2 + (v["y2"] - v["y1"]) ** 2)),
        ("I.10.7", "m0/sqrt(1-v^2/c^2)", {"m0": r15, "v": (1, 2), "c": (3, 10)},
         lambda v: v["m0"] / sqrt(1 - v["v"] ** 2 / v["c"] ** 2)),
        ("I.11.19", "x1 y1+x2 y2+x3 y3", {k: r15 for k in ("x1", "x2", "x3", "y1", "y2", "y3")},
         lambda v: v["x1"] * v["y1"] + v["x2"] * v["y2"] + v["x3"] * v["y3"]),
        ("I.12.1", "mu Nn", {"mu": r15, "Nn": r15}, lambda v: v["mu"] * v["Nn"]),
        ("I.12.2", "q1 q2/(4 pi epsilon r^2)", {"q1": r15, "q2": r15, "epsilon": r15, "r": r15},
         lambda v: v["q1"] * v["q2"] / (4 * pi * v["epsilon"] * v["r"] ** 2)),
        ("I.12.4", "q1/(4 pi epsilon r^2)", {"q1": r15, "epsilon": r15, "r": r15},
         lambda v: v["q1"] / (4 * pi * v["epsilon"] * v["r"] ** 2)),
        ("I.12.5", "q2 Ef", {"q2": r15, "Ef": r15}, lambda v: v["q2"] * v["Ef"]),
        ("I.12.11", "q (Ef+B v sin(theta))", {"q": r15, "Ef": r15, "B": r15, "v": r15, "theta": r15},
         lambda v: v["q"] * (v["Ef"] + v["B"] * v["v"] * sin(v["theta"]))),
        ("I.13.4", "m (v^2+u^2+w^2)/2", {"m": r15, "v": r15, "u": r15, "w": r15},
         lambda v: v["m"] * (v["v"] ** 2 + v["u"] ** 2 + v["w"] ** 2) / 2),
        ("I.14.3", "m g z", {"m": r15, "g": r15, "z": r15}, lambda v: v["m"] * v["g"] * v["z"]),
        ("I.14.4", "k_spring x^2/2", {"k_spring": r15, "x": r15}, lambda v: v["k_spring"] * v["x"] ** 2 / 2),
        ("I.16.6", "(u+v)/(1+u v/c^2)", {"c": r15, "v": r15, "u": r15},
         lambda v: (v["u"] + v["v"]) / (1 + v["u"] * v["v"] / v["c"] ** 2)),
        ("I.18.4", "(m1 r1+m2 r2)/(m1+m2)", {"m1": r15, "m2": r15, "r1": r15, "r2": r15},
         lambda v: (v["m1"] * v["r1"] + v["m2"] * v["r2"]) / (v["m1"] + v["m2"])),
        ("I.18.12", "r F sin(theta)", {"r": r15, "F": r15, "theta": (0, 5)}, lambda v: v["r"] * v["F"] * sin(v["theta"])),
        ("I.25.13", "q/C", {"q": r15, "C": r15}, lambda v: v["q"] / v["C"]),
        ("I.26.2", "arcsin(n sin(theta2))", {"n": (0, 1), "theta2": r15}, lambda v: torch.arcsin(v["n"] * sin(v["theta2"]))),
        ("I.27.6", "1/(1/d1+n/d2)", {"d1": r15, "d2": r15, "n": r15}, lambda v: 1 / (1 / v["d1"] + v["n"] / v["d2"])),
        ("I.29.4", "omega/c", {"omega": (1, 10), "c": (1, 10)}, lambda v: v["omega"] / v["c"]),
        ("I.29.16", "sqrt(x1^2+x2^2-2 x1 x2 cos(theta1-theta2))", {"x1": r15, "x2": r15, "theta1": r15, "theta2": r15},
         lambda v: sqrt(v["x1"] ** 2 + v["x2"] ** 2 - 2 * v["x1"] * v["x2"] * cos(v["theta1"] - v["theta2"]))),
        ("I.30.3", "Int_0 sin(n theta/2)^2/sin(theta/2)^2", {"Int_0": r15, "theta": r15, "n": r15},
         lambda v: v["Int_0"] * sin(v["n"] * v["theta"] / 2) ** 2 / sin(v["theta"] / 2) ** 2),
        ("I.34.8", "q v B/p", {"q": r15, "v": r15, "B": r15, "p": r15}, lambda v: v["q"] * v["v"] * v["B"] / v["p"]),
        ("I.37.4", "I1+I2+2 sqrt(I1 I2) cos(delta)", {"I1": r15, "I2": r15, "delta": r15},
         lambda v: v["I1"] + v["I2"] + 2 * sqrt(v["I1"] * v["I2"]) * cos(v["delta"])),
        ("I.39.22", "n kb T/V", {"n": r15, "T": r15, "V": r15, "kb": r15}, lambda v: v["n"] * v["kb"] * v["T"] / v["V"]),
        ("I.43.31", "mob kb T", {"mob": r15, "T": r15, "kb": r15}, lambda v: v["mob"] * v["kb"] * v["T"]),
        ("I.47.23", "sqrt(gamma pr/rho)", {"gamma": r15, "pr": r15, "rho": r15}, lambda v: sqrt(v["gamma"] * v["pr"] / v["rho"])),
        ("I.50.26", "x1 (cos(omega t)+alpha cos(omega t)^2)", {"x1": (1, 3), "omega": (1, 3), "t": (1, 3), "alpha": (1, 3)},
         lambda v: v["x1"] * (cos(v["omega"] * v["t"]) + v["alpha"] * cos(v["omega"] * v["t"]) ** 2)),
        ("II.3.24", "Pwr/(4 pi r^2)", {"Pwr": r15, "r": r15}, lambda v: v["Pwr"] / (4 * pi * v["r"] ** 2)),
        ("II.8.31", "epsilon Ef^2/2", {"epsilon": r15, "Ef": r15}, lambda v: v["epsilon"] * v["Ef"] ** 2 / 2),
        ("II.38.14", "Y/(2 (1+sigma))", {"Y": r15, "sigma": r15}, lambda v: v["Y"] / (2 * (1 + v["sigma"]))),
        ("III.17.37", "beta (1+alpha cos(theta))", {"beta": r15, "alpha": r15, "theta": r15},
         lambda v: v["beta"] * (1 + v["alpha"] * cos(v["theta"]))),
    ]
    return {name: (formula, list(ranges), [tuple(map(float, r)) for r in ranges.values()], fn) for name, formula, ranges, fn in eqs}


class _Formula:
    """A sympy-syntax formula as a function of a dict of float64 columns (compiled on first call)."""

    def __init__(self, formula: str, variables: list[str]) -> None:
        self.formula, self.variables, self._fn = formula, variables, None

    def __call__(self, columns: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._fn is None:
            import sympy

            symbols = [sympy.Symbol(v) for v in self.variables]  # names such as E, I, N stay symbols
            expr = sympy.sympify(self.formula, locals=dict(zip(self.variables, symbols)))
            self._fn = sympy.lambdify(symbols, expr, "numpy")
        first = columns[self.variables[0]]
        y = self._fn(*[columns[v].cpu().numpy() for v in self.variables])
        return torch.as_tensor(y, dtype=torch.float64).expand(first.shape).to(first.device)


def _published_table() -> dict:
    """The 120 equations as pykan / qkan 0.2.3 list them (qkan._feynman), same entry layout as FEYNMAN."""
    table = {}
    for name, variables, formula, ranges in PUBLISHED_FEYNMAN:
        names = variables.split()
        table[name] = (formula, names, [(float(lo), float(hi)) for lo, hi in ranges], _Formula(formula, names))
    return table


#: name -> (formula, variable names, ranges per variable, function of a dict of columns): the 120
#: AI Feynman equations with the names, order and variable ranges of pykan and the published qkan
FEYNMAN_PUBLISHED: dict = _published_table()
#: name -> (formula, variable names, ranges per variable, function of a dict of columns): this
#: package's 32 original entries (AI Feynman's own ranges, e.g. (1, 5)) first, then every
#: equation of FEYNMAN_PUBLISHED whose name is not among them
FEYNMAN: dict = _feynman_table()
FEYNMAN.update({k: v for k, v in FEYNMAN_PUBLISHED.items() if k not in FEYNMAN})


def feynman(
    name_or_index: str | int,
    train_num: int = 1000,
    test_num: int = 1000,
    seed: int = 0,
    normalize: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    source: str = "qkan",
) -> dict:
    """Samples of an equation of the AI Feynman benchmark on its variable ranges.

    Args:
        name_or_index: e.g. "I.12.11", or an index into the chosen table.
        train_num, test_num, seed, device, dtype: as in :func:`function_dataset`.
        normalize: map every input linearly from its range onto [-1, 1] (the DARUAN's natural
            domain); labels are left as they are.
        source: "qkan" (``FEYNMAN``: this package's 32 original entries, then the published ones)
            | "published" (``FEYNMAN_PUBLISHED``: the 120 equations with pykan's and qkan 0.2.3's
            names, order and ranges, index 0 = "I.6.20a"). A name in both tables (e.g.
            "I.12.11") has different ranges in each.

    Returns:
        the dataset dict, plus "variables" (names) and "formula" (a string).

    Examples:
        >>> data = feynman("I.6.20a", train_num=10, test_num=5, source="published")
        >>> data["formula"], data["train_input"].shape
        ('sqrt(2)*exp(-theta**2/2)/(2*sqrt(pi))', torch.Size([10, 1]))
    """
    check_choice("source", source, ("qkan", "published"))
    table = FEYNMAN if source == "qkan" else FEYNMAN_PUBLISHED
    names = list(table)
    if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
        if not 0 <= name_or_index < len(names):
            raise ValueError(f"`name_or_index` must be in [0, {len(names)}) or an equation name; got {name_or_index}")
        name_or_index = names[name_or_index]
    if name_or_index not in table:
        raise ValueError(f"`name_or_index` must be one of {names} or an index; got {name_or_index!r}")
    formula, variables, ranges, fn = table[name_or_index]
    r = torch.tensor(ranges, dtype=torch.float64)  # (n_var, 2)

    def f(x: torch.Tensor) -> torch.Tensor:  # x in the normalised or physical box
        phys = r[:, 0] + (x + 1) / 2 * (r[:, 1] - r[:, 0]) if normalize else x
        return fn({k: phys[:, i] for i, k in enumerate(variables)})

    box = (-1.0, 1.0) if normalize else ranges
    data = function_dataset(f, len(variables), box, train_num, test_num, seed, device, dtype)
    data["variables"], data["formula"] = variables, formula
    return data


def classification_dataset(
    kind: str = "moons",
    train_num: int = 1000,
    test_num: int = 1000,
    noise: float = 0.1,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> dict:
    """A generated two-class set in [-1, 1]^2 (no download).

    Args:
        kind: "moons" (two interleaved half circles) | "spirals" (two interleaved spirals).
        noise: standard deviation of the Gaussian noise added to the points.

    Returns:
        dataset dict: inputs (N, 2) in dtype, labels (N,) int64 class indices 0/1.
    """
    if kind not in ("moons", "spirals"):
        raise ValueError(f"`kind` must be 'moons' or 'spirals'; got {kind!r}")
    check_int("train_num", train_num)
    check_int("test_num", test_num)
    check_number("noise", noise)
    seed = check_int("seed", seed, low=0, high=2**63 - 1)
    gen = torch.Generator().manual_seed(seed)
    dtype = _check_dtype(dtype)
    out = {}
    for split, num in (("train", train_num), ("test", test_num)):
        label = torch.randint(0, 2, (num,), generator=gen)
        t = torch.rand(num, generator=gen, dtype=torch.float64)
        if kind == "moons":  # upper arc centred at (-0.5, -0.25), lower arc at (0.5, 0.25), scaled
            a = math.pi * t
            sign = 1 - 2 * label.double()
            pts = torch.stack([torch.cos(a) * sign - 0.5 * sign, torch.sin(a) * sign - 0.25 * sign], dim=1) * 0.6
        else:  # radius grows with the angle; class 1 is class 0 turned by pi
            a = 3 * math.pi * t + math.pi * label.double()
            rad = 0.9 * t + 0.05
            pts = torch.stack([rad * torch.cos(a), rad * torch.sin(a)], dim=1)
        pts = pts + noise * torch.randn(num, 2, generator=gen, dtype=torch.float64)
        out[f"{split}_input"] = pts.to(device=device, dtype=dtype)
        out[f"{split}_label"] = label.to(device=device)
    return out


def digits(
    test_fraction: float = 0.25,
    seed: int = 0,
    path: str | Path | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> dict:
    """scikit-learn's 8x8 handwritten digits (1,797 images, classes 0-9), read offline.

    The data file ships inside scikit-learn (``sklearn/datasets/data/digits.csv.gz``); it is read
    directly, without importing scikit-learn.

    Args:
        test_fraction: share of images in the test split, in (0, 1); the split is random (seeded).
        seed: seed of the split.
        path: a digits CSV file (gzipped when it ends in .gz): rows of 64 pixels in 0..16
            (row-major 8x8) and the label 0..9; None: the copy in the installed scikit-learn.
        device, dtype: of the returned tensors (default dtype: torch's default).

    Returns:
        dataset dict: inputs (N, 64) = pixel / 16 in [0, 1], labels (N,) int64 digits 0-9.
    """
    check_number("test_fraction", test_fraction, low=0.0, high=1.0)
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be in (0, 1); got {test_fraction!r}")
    if path is None:
        spec = importlib.util.find_spec("sklearn")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError('qkan.data.digits needs the data file of scikit-learn: pip install "qkan-daruan[data]"')
        path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if row]
        table = torch.tensor([[float(cell) for cell in row] for row in rows], dtype=torch.float64)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error, ValueError) as err:  # EOFError: cut short
        raise ValueError(f"cannot read the digits file {str(path)!r}: {err}") from None
    if table.dim() != 2 or table.shape[1] != 65 or len(table) < 2:
        raise ValueError(f"the digits file {str(path)!r} must hold rows of 64 pixels and a label; got shape {tuple(table.shape)}")
    pixels, labels = table[:, :64], table[:, 64]
    valid = ((pixels >= 0) & (pixels <= 16)).all() & ((labels >= 0) & (labels <= 9) & (labels == labels.round())).all()
    if not bool(valid):
        raise ValueError(f"the digits file {str(path)!r} must hold pixels in 0..16 and integer labels 0..9")
    perm = torch.randperm(len(table), generator=torch.Generator().manual_seed(seed))
    n_test = min(max(1, round(test_fraction * len(table))), len(table) - 1)
    dtype = dtype or torch.get_default_dtype()
    out = {}
    for split, idx in (("train", perm[n_test:]), ("test", perm[:n_test])):
        out[f"{split}_input"] = (pixels[idx] / 16).to(device=device, dtype=dtype)
        out[f"{split}_label"] = labels[idx].long().to(device=device)
    return out



def load_csv(
    path: str | Path,
    target: int | str = -1,
    test_fraction: float = 0.2,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> dict:
    """A numeric CSV file as a regression dataset, split at random into train and test.

    The first row is a header when any of its cells is not a number.

    Args:
        path: the CSV file (comma separated, one sample per row).
        target: the label column: an index (negative counts from the end) or a header name.
        test_fraction: share of rows in the test split, in (0, 1).

    Returns:
        dataset dict plus "columns": the input column names (or "x1".."xn").

    Raises:
        ValueError naming the file, line and column for unreadable files, ragged or
        non-numeric rows and cells that are NaN or infinite in `dtype` (1e39 overflows float32).
    """
    check_type("path", path, (str, Path))
    path = Path(path)
    check_number("test_fraction", test_fraction, 0.0, 1.0)
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be in (0, 1); got {test_fraction!r}")
    seed = check_int("seed", seed, low=0, high=2**63 - 1)
    dtype = _check_dtype(dtype)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if row and any(cell.strip("\ufeff \t") for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"cannot read CSV file {str(path)!r}: {err}") from None
    if not rows:
        raise ValueError(f"CSV file {str(path)!r} is empty")
    rows[0][0] = rows[0][0].lstrip("\ufeff")  # the byte-order mark(s) of Excel's "CSV UTF-8"
    header = None
    if any(not _is_number(cell) for cell in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    width = len(header) if header else len(rows[0]) if rows else 0
    if width < 2:
        raise ValueError(f"CSV file {str(path)!r} needs at least 2 columns (inputs and a label); got {width}")
    values, lines = [], []
    for line, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise ValueError(f"CSV file {str(path)!r}, line {line}: expected {width} columns; got {len(row)}")
        try:
            values.append([float(cell) for cell in row])
            lines.append(line)
        except ValueError:
            raise ValueError(f"CSV file {str(path)!r}, line {line}: non-numeric value in {row}") from None
    if len(values) < 2:
        raise ValueError(f"CSV file {str(path)!r} needs at least 2 data rows; got {len(values)}")
    columns = header or [f"x{i + 1}" for i in range(width)]
    if isinstance(target, str):
        if target not in columns:
            raise ValueError(f"`target` {target!r} is not a column of {str(path)!r}; columns are {columns}")
        where = [i for i, name in enumerate(columns) if name == target]
        if len(where) > 1:
            raise ValueError(f"`target` {target!r} is ambiguous: CSV file {str(path)!r} has {len(where)} columns named "
                             f"{target!r} (columns {where}); rename them or pass an index")
        target = where[0]
    if isinstance(target, bool) or not isinstance(target, int) or not -width <= target < width:
        raise ValueError(f"`target` must be a column name or an index in [-{width}, {width}); got {target!r}")
    target %= width
    table = torch.tensor(values, dtype=torch.float64).to(dtype)  # (rows, width), checked in the returned dtype
    bad = ~torch.isfinite(table)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"CSV file {str(path)!r} contains NaN or infinite values in {dtype}: line {lines[row]}, column "
            f"{columns[col]!r} is {rows[row][col].strip()!r}" + (" (too large for this dtype)" if math.isfinite(values[row][col]) else "")
        )
    keep = [i for i in range(width) if i != target]
    perm = torch.randperm(len(table), generator=torch.Generator().manual_seed(seed))
    n_test = min(max(1, round(test_fraction * len(table))), len(table) - 1)
    test, train = perm[:n_test], perm[n_test:]
    out = {}
    for split, idx in (("train", train), ("test", test)):
        out[f"{split}_input"] = table[idx][:, keep].to(device=device, dtype=dtype)
        out[f"{split}_label"] = table[idx][:, target : target + 1].to(device=device, dtype=dtype)
    out["columns"] = [columns[i] for i in keep]
    return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
