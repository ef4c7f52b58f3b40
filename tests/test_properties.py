"""Property-based checks of the public constructors and forwards (hypothesis).

For random sizes, options, dtypes and inputs: a constructor either builds or raises TypeError /
ValueError whose message names an argument it was given; a forward on finite inputs in the
documented range returns finite values of the input's dtype with the leading dimensions kept;
any other input raises TypeError / ValueError naming `x`. Checkpoints: any content
survives a save and load with the same SHA-256, and any flipped bit or cut is an error naming
the file or loads exactly what was saved. Example counts are bounded so the module runs in
well under a minute.
"""

import math
import re

import numpy
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from qkan import QKAN, QKANLayer  # noqa: E402
from qkan.hqkan import HQKAN  # noqa: E402

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
ANSATZE = ["pz", "rpz", "px", "real", "mix"]
DTYPES = [torch.float32, torch.float64]

# a mix of valid and invalid values for every constructor argument
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.floats(allow_nan=True), st.just([1]), st.just(torch.float16))
sizes = st.one_of(st.integers(-1, 4), junk)
options = {
    "reps": st.one_of(st.integers(-1, 4), st.just(10**6), junk),
    "ansatz": st.one_of(st.sampled_from(ANSATZE), junk),
    "encoding": st.one_of(st.sampled_from(["fixed", "edge", "input"]), junk),
    "base": st.one_of(st.sampled_from(["silu", "identity", "tanh", "gelu", "relu", "none"]), junk),
    "group": st.one_of(st.sampled_from([None, "input", "output", "all"]), junk),
    "measure": st.one_of(st.sampled_from(["z", "amplitude"]), junk),
    "bias": st.one_of(st.booleans(), junk),
    "seed": st.one_of(st.integers(-2, 2**64), st.integers(-2, 2**62).map(numpy.int64), junk),
    "dtype": st.one_of(st.sampled_from(DTYPES), st.sampled_from([torch.int64, torch.complex64, torch.bfloat16]), junk),
    "evaluator": st.one_of(st.sampled_from(["auto", "fourier", "su2"]), junk),
}


def _names_an_argument(err: Exception, kwargs: dict) -> bool:
    named = set(re.findall(r"`([A-Za-z_]+)", str(err)))
    return bool(named & set(kwargs)) or "evaluator" in str(err)


@FAST
@given(in_dim=sizes, out_dim=sizes, kwargs=st.fixed_dictionaries({}, optional=options))
def test_layer_constructor_builds_or_names_the_argument(in_dim, out_dim, kwargs):
    try:
        layer = QKANLayer(in_dim, out_dim, **kwargs)
    except (TypeError, ValueError) as err:
        assert _names_an_argument(err, {"in_dim": 0, "out_dim": 0, **kwargs}), err
        return
    assert layer.in_dim == in_dim and layer.out_dim == out_dim
    assert layer.theta.dtype == kwargs.get("dtype", torch.float32)


def _valid_layer_options(draw) -> dict:
    ansatz = draw(st.sampled_from(ANSATZE))
    encoding = draw(st.sampled_from(["fixed", "edge", "input"]))
    return dict(
        reps=draw(st.integers(1, 3)),
        ansatz=ansatz,
        encoding=encoding,
        base=draw(st.sampled_from(["silu", "identity", "tanh", "none"])),
        group=draw(st.sampled_from([None, "input", "output", "all"])),
        measure=draw(st.sampled_from(["z", "amplitude"])),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
        dtype=draw(st.sampled_from(DTYPES)),
    )


@st.composite
def layer_and_input(draw):
    opts = _valid_layer_options(draw)
    layer = QKANLayer(draw(st.integers(1, 3)), draw(st.integers(1, 3)), **opts)
    if opts["encoding"] != "fixed":  # trained encodings: w, b anywhere
        with torch.no_grad():
            layer.enc_weight.uniform_(-3, 3)
            layer.enc_bias.uniform_(-3, 3)
    lead = draw(st.lists(st.integers(0, 3), max_size=2))
    bound = 1.0 if opts["ansatz"] == "px" else torch.tensor(layer.max_input(), dtype=opts["dtype"]).item()
    if bound > layer.max_input():  # rounded up into the dtype: take the float below
        bound = torch.nextafter(torch.tensor(bound, dtype=opts["dtype"]), torch.tensor(0.0, dtype=opts["dtype"])).item()
    values = st.floats(-bound, bound, allow_nan=False, width=32 if opts["dtype"] == torch.float32 else 64)
    n = math.prod(lead) * layer.in_dim
    x = torch.tensor(draw(st.lists(values, min_size=n, max_size=n)), dtype=opts["dtype"]).reshape(*lead, layer.in_dim)
    return layer, x


@FAST
@given(layer_and_input())
def test_layer_forward_finite_shape_and_dtype_kept(case):
    layer, x = case
    y = layer(x)
    assert y.shape == (*x.shape[:-1], layer.out_dim) and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    f = layer.edge_outputs(x)
    assert f.shape == (*x.shape[:-1], layer.out_dim, layer.in_dim) and torch.isfinite(f).all()
    # <Z> and |alpha| - |beta| lie in [-1, 1]; the closed form's rounding at |x| ~ max_input is ~ sqrt(eps)
    tol = 0.05 if x.dtype == torch.float32 else 1e-5
    assert (f.abs() <= 1 + tol).all()


bad_inputs = st.one_of(
    st.just([[0.0, 1.0]]),
    st.just(torch.zeros(2, 2, dtype=torch.int64)),
    st.just(torch.zeros(2, 2, dtype=torch.complex64)),
    st.just(torch.zeros(2)),
    st.just(torch.zeros(())),
    st.just(torch.zeros(2, 3)),
    st.just(torch.zeros(2, 2, dtype=torch.float64)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: torch.full((2, 2), v)),
)


@FAST
@given(x=bad_inputs, ansatz=st.sampled_from(ANSATZE), deep=st.booleans())
def test_any_input_works_or_names_x(x, ansatz, deep):
    model = QKAN([2, 3, 1] if deep else [2, 1], reps=2, ansatz=ansatz, seed=0)
    try:
        y = model(x)
    except (TypeError, ValueError) as err:
        assert "`x`" in str(err), err
        return
    assert torch.isfinite(y).all() and y.dtype == x.dtype and y.shape == (*x.shape[:-1], 1)


@st.composite
def model_and_input(draw):
    opts = _valid_layer_options(draw)
    width = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    model = QKAN(width, **opts)
    lead = draw(st.lists(st.integers(0, 3), min_size=1, max_size=2))
    bound = 1.0 if opts["ansatz"] == "px" else 50.0
    x = (torch.rand(*lead, width[0], dtype=opts["dtype"]) * 2 - 1) * bound
    return model, x


@FAST
@given(model_and_input())
def test_model_forward_any_depth(case):
    model, x = case
    y = model(x)
    assert y.shape == (*x.shape[:-1], model.width[-1]) and y.dtype == x.dtype
    assert torch.isfinite(y).all()


@FAST
@given(width=st.lists(st.one_of(st.integers(-1, 3), junk), min_size=0, max_size=4), reps=st.one_of(st.integers(0, 3), junk),
       seed=st.one_of(st.integers(-1, 2**64), junk))
def test_qkan_constructor_builds_or_names_the_argument(width, reps, seed):
    try:
        model = QKAN(width, reps, seed=seed)
    except (TypeError, ValueError) as err:
        assert re.search(r"`(width(\[\d+\])?|reps|seed)`", str(err)), err
        return
    assert model.width == list(width) and model.reps == reps


@FAST
@given(
    in_dim=st.integers(1, 12),
    out_dim=st.integers(1, 12),
    hidden=st.lists(st.integers(1, 3), max_size=2),
    squash=st.sampled_from(["none", "tanh", "layernorm"]),
    ansatz=st.sampled_from(ANSATZE),
    dtype=st.sampled_from(DTYPES),
    lead=st.lists(st.integers(0, 3), min_size=1, max_size=3),
    scale=st.sampled_from([0.0, 1.0, 100.0]),
)
def test_hqkan_forward_or_clear_error(in_dim, out_dim, hidden, squash, ansatz, dtype, lead, scale):
    try:
        hq = HQKAN(in_dim, out_dim, hidden=hidden, squash=squash, ansatz=ansatz, reps=2, seed=0, dtype=dtype)
    except ValueError as err:
        assert ansatz == "px" and squash != "tanh" and "`squash`" in str(err)
        return
    x = torch.randn(*lead, in_dim, dtype=dtype) * scale
    y = hq(x)
    assert y.shape == (*lead, out_dim) and y.dtype == dtype and torch.isfinite(y).all()


# --------------------------------------------------------------------------- checkpoints on disk
tensors = st.builds(
    lambda shape, dtype, seed: (torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 10).to(dtype),
    st.lists(st.integers(0, 3), max_size=3), st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool]),
    st.integers(0, 1000),
)
leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=5), tensors)
contents = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                        max_leaves=8)


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


@settings(max_examples=30, deadline=None, derandomize=True)
@given(content=st.dictionaries(st.text(max_size=4).filter(lambda k: k not in ("format", "sha256")), contents, max_size=4),
       offset=st.floats(0, 1), bit=st.integers(0, 7), cut=st.booleans())
def test_checkpoint_round_trip_and_damage(tmp_path_factory, content, offset, bit, cut):
    from qkan._io import atomic_save, content_digest, load_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "c.pt"
    blob = {"format": "test", **content}
    atomic_save(blob, path)
    loaded = load_checkpoint(path, "a test file", "test")
    assert _equal(loaded, blob) and content_digest(loaded) == content_digest(blob)
    data = bytearray(path.read_bytes())
    at = min(int(offset * len(data)), len(data) - 1)
    if cut:
        del data[at:]
    else:
        data[at] ^= 1 << bit
    path.write_bytes(bytes(data))
    try:
        damaged = load_checkpoint(path, "a test file", "test")
    except ValueError as err:
        assert f"cannot load a test file from {str(path)!r}" in str(err)
    else:
        assert _equal(damaged, blob)  # padding and unused header bytes: the same content
