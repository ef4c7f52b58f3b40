"""Issue 16: bad input, deep px models, empty batches, overflow and non-finite values.
Issue 25: damaged, truncated and symlinked checkpoints, stale temporary files, numpy seeds."""

import math
import os
import re
import time

import pytest
import torch

import qkan
from qkan import QKAN, QKANLayer
from qkan.data import demo_function, function_dataset
from qkan.simulators import Evaluator
from qkan.testing import assert_matches_reference

EVALUATORS = ["fourier", "su2", "pennylane", "qiskit"]


# ------------------------------------------------------------------------------ deep px models
def test_deep_px_model_feeds_tanh_of_hidden_values():
    model = QKAN([2, 3, 2, 1], reps=2, ansatz="px", seed=0, dtype=torch.float64)
    x = torch.rand(40, 2, dtype=torch.float64) * 2 - 1
    h = model.layers[0](x)
    assert h.abs().max() > 1  # without the bounded map the next layer would refuse these
    expected = model.layers[2](torch.tanh(model.layers[1](torch.tanh(h))))
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    assert model.layers[1].hidden_input(h).abs().max() <= 1


def test_hidden_input_is_the_identity_for_unbounded_ansaetze():
    h = torch.randn(5, 3) * 10
    for ansatz in ("pz", "rpz", "real", "mix"):
        assert QKANLayer(3, 1, ansatz=ansatz).hidden_input(h) is h
    model = QKAN([2, 3, 1], seed=0, dtype=torch.float64)
    x = torch.rand(8, 2, dtype=torch.float64)
    torch.testing.assert_close(model(x), model.layers[1](model.layers[0](x)), rtol=0, atol=0)


def test_px_first_layer_still_checks_the_users_inputs():
    model = QKAN([2, 3, 1], ansatz="px", seed=0)
    with pytest.raises(ValueError, match=r"outside \[-1, 1\].*'px' ansatz"):
        model(torch.tensor([[0.5, 1.5]]))


@pytest.mark.parametrize("encoding", ["edge", "input"])
def test_px_trainable_encoding_is_bounded_and_exact_where_small(encoding):
    layer = QKANLayer(3, 2, 3, ansatz="px", encoding=encoding, seed=0, dtype=torch.float64)
    x = torch.rand(30, 3, dtype=torch.float64) * 2 - 1
    # at initialisation (w = 1, b = 0) the effective encoding is the raw one, exactly
    phi = layer.encoded_angles(x)  # (N, O'', I, R)
    assert torch.equal(phi, x[:, None, :, None].expand_as(phi))
    with torch.no_grad():  # small raw parameters (|w| + |b| <= 1) are used as they are
        layer.enc_weight.uniform_(-0.5, 0.5)
        layer.enc_bias.uniform_(-0.5, 0.5)
    w, b = layer.encoding_parameters()
    assert torch.equal(w, layer.enc_weight) and torch.equal(b, layer.enc_bias)
    with torch.no_grad():  # large ones are rescaled onto |w| + |b| <= 1
        layer.enc_weight.uniform_(-5, 5)
        layer.enc_bias.uniform_(-5, 5)
    edge = torch.tensor([[1.0, -1.0, 1.0]], dtype=torch.float64)
    phi = layer.encoded_angles(torch.cat([x, edge, -edge]))
    assert phi.abs().max() <= 1
    w, b = layer.encoding_parameters()
    torch.testing.assert_close(w / b, layer.enc_weight / layer.enc_bias)  # the direction is kept
    assert_matches_reference(layer, x)  # every evaluator and the reference read the same encoding
    _, we, be = layer.edge_parameters((1, 2))
    torch.testing.assert_close(we, w.expand(2, -1, -1)[1, 2])
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, w, b: layer(x), (x[:4], layer.enc_weight, layer.enc_bias))


def test_px_bounded_encoding_survives_rounding():
    layer = QKANLayer(1, 1, 1, ansatz="px", encoding="edge", base="none")
    with torch.no_grad():
        layer.enc_weight.fill_(0.7)
        layer.enc_bias.fill_(0.6000001)
    phi = layer.encoded_angles(torch.ones(1, 1))
    assert phi.abs().max() <= 1
    assert torch.isfinite(layer(torch.ones(1, 1))).all()


@pytest.mark.parametrize("encoding", ["fixed", "edge"])
def test_deep_px_model_trains_saves_and_loads(tmp_path, encoding):
    data = function_dataset(demo_function, train_num=64, test_num=32, seed=0)
    model = QKAN([2, 3, 1], reps=2, ansatz="px", encoding=encoding, seed=0)
    history = model.fit(data, steps=15, optimizer="adam", lr=0.2, progress=False)
    assert all(math.isfinite(v) for v in history["train_rmse"])
    assert history["train_rmse"][-1] < history["train_rmse"][0]
    if encoding == "edge":  # Adam moved the raw encodings out of the unit ball: still inside the domain
        assert (model.layers[0].enc_weight.abs() + model.layers[0].enc_bias.abs()).max() > 1
    model.save(tmp_path / "px.pt")
    loaded = QKAN.load(tmp_path / "px.pt")
    torch.testing.assert_close(loaded(data["test_input"]), model(data["test_input"]), rtol=0, atol=0)


def test_deep_px_model_interprets_prunes_and_plots(tmp_path):
    from qkan.interpret import attribution, edge_activations

    model = QKAN([2, 3, 1], reps=2, ansatz="px", seed=0, dtype=torch.float64)
    x = torch.rand(20, 2, dtype=torch.float64) * 2 - 1
    hidden = model.layers[1].hidden_input(model.layers[0](x))
    phi = edge_activations(model.layers[1], hidden)
    torch.testing.assert_close(phi.sum(-1), model(x))
    assert attribution(model, x).edges[1].shape == (1, 3)
    pruned = model.prune(0.0, 0.0, x)
    torch.testing.assert_close(pruned(x), model(x))
    model.plot(tmp_path / "px.png", x=x)
    assert (tmp_path / "px.png").stat().st_size > 1000


# ----------------------------------------------------------------------------- input range, NaN
def test_huge_float32_input_is_an_error_naming_the_range():
    model = QKAN([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match=r"`x` must satisfy \|x\| <= 2896 for torch\.float32.*got max \|x\| = 3e\+38"):
        model(torch.tensor([[3e38, 0.0]]))
    assert torch.isfinite(model(torch.full((1, 2), 2.0**11.5))).all()  # the bound itself is accepted
    with pytest.raises(ValueError, match=r"got max \|x\| = 2900"):
        model(torch.tensor([[1.0, -2900.0]]))
    with pytest.raises(ValueError, match=r"\|x\| <= 6\.711e\+07 for torch\.float64"):
        QKANLayer(2, 1, dtype=torch.float64)(torch.tensor([[1e300, 0.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="`x` contains NaN or infinite values"):
        model(torch.tensor([[math.inf, 0.0]]))


@pytest.mark.parametrize("evaluator", ["fourier", "su2"])
def test_large_valid_inputs_give_finite_outputs(evaluator):
    layer = QKANLayer(2, 3, 5, seed=0, evaluator=evaluator)
    x = torch.tensor([[2896.0, -2896.0], [1e3, 0.5]], dtype=torch.float64)
    y = layer.double()(x)
    f = layer.edge_outputs(x)
    assert torch.isfinite(y).all() and (f.abs() <= 1 + 1e-9).all()
    other = QKANLayer(2, 3, 5, seed=0, evaluator="su2" if evaluator == "fourier" else "fourier").double()
    other.load_state_dict(layer.state_dict())
    torch.testing.assert_close(other.edge_outputs(x), f, rtol=0, atol=1e-9)  # both evaluators agree there


class _NaNEvaluator(Evaluator):
    """A backend whose estimator failed: NaN edge values."""

    name = "nan-backend"

    def edge_outputs(self, layer, x):
        return torch.full((x.shape[0], layer.out_dim, layer.in_dim), math.nan, dtype=x.dtype)


def test_nan_from_an_evaluator_does_not_pass_through():
    qkan.register_evaluator("nan-backend", _NaNEvaluator)
    layer = QKANLayer(2, 2, seed=0, evaluator="nan-backend")
    x = torch.rand(3, 2)
    with pytest.raises(FloatingPointError, match=r"evaluator 'nan-backend' gave NaN or infinite values for finite inputs and parameters"):
        layer(x)
    with pytest.raises(FloatingPointError, match=r"evaluator 'nan-backend' gave NaN"):
        layer.edge_outputs(x)
    with pytest.raises(FloatingPointError, match=r"evaluator 'nan-backend' gave NaN"):
        QKAN.from_layers([layer])(x)


def test_non_finite_parameters_are_reported_not_propagated():
    layer = QKANLayer(2, 2, seed=0)
    with torch.no_grad():
        layer.theta[0, 0, 0, 0] = math.nan
    with pytest.raises(FloatingPointError, match=r"layer 2 -> 2: the parameters \['theta'\] hold NaN or infinite values"):
        layer(torch.rand(3, 2))


def test_reg_nan_is_an_error():
    data = function_dataset(demo_function, train_num=8, test_num=4)
    with pytest.raises(ValueError, match="`reg` must be a finite number; got nan"):
        QKAN([2, 1]).fit(data, steps=1, reg=math.nan, progress=False)
    with pytest.raises(TypeError, match="`reg` must be a number >= 0"):
        QKAN([2, 1]).fit(data, steps=1, reg="0.1", progress=False)


@pytest.mark.parametrize("bad, error, match", [
    ([2, "x", 1], TypeError, r"`width\[1\]` must be an int >= 1; got 'x'"),
    ([2.7, 1], TypeError, r"`width\[0\]`"),
    ([True, 1], TypeError, r"`width\[0\]`"),
    ([2, 0, 1], ValueError, r"`width\[1\]` must be an int >= 1; got 0"),
])
def test_width_entries(bad, error, match):
    with pytest.raises(error, match=match):
        QKAN(bad)


# ------------------------------------------------------------------------- empty batch, meta
def _layer(evaluator, encoding="fixed", ansatz="pz"):
    return QKANLayer(2, 3, 2, ansatz=ansatz, encoding=encoding, seed=0, evaluator=evaluator, dtype=torch.float64)


@pytest.mark.parametrize("evaluator, encoding", [(e, enc) for e in EVALUATORS for enc in ("fixed", "edge", "input")
                                                 if not (e == "fourier" and enc == "edge")])
def test_empty_batch_every_evaluator(evaluator, encoding):
    pytest.importorskip({"pennylane": "pennylane", "qiskit": "qiskit_aer"}.get(evaluator, "torch"))
    layer = _layer(evaluator, encoding)
    x = torch.zeros(0, 2, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, 3) and y.dtype == torch.float64
    y.sum().backward()
    assert x.grad.shape == (0, 2)
    assert layer.edge_outputs(x).shape == (0, 3, 2)
    assert layer(torch.zeros(4, 0, 2, dtype=torch.float64)).shape == (4, 0, 3)


def test_empty_batch_deep_models():
    for ansatz in ("pz", "px"):
        model = QKAN([2, 3, 1], ansatz=ansatz, seed=0)
        assert model(torch.zeros(0, 2)).shape == (0, 1)


@pytest.mark.parametrize("ansatz, encoding", [("pz", "fixed"), ("pz", "input"), ("px", "edge"), ("mix", "edge")])
def test_meta_device_forward_gives_shapes(ansatz, encoding):
    model = QKAN([2, 3, 1], ansatz=ansatz, encoding=encoding, device="meta")
    y = model(torch.empty(5, 4, 2, device="meta"))
    assert y.shape == (5, 4, 1) and y.device.type == "meta"


# ------------------------------------------------------------------------------------- HQKAN
def test_hqkan_px_core_takes_tanh_of_the_encoder_output():
    from qkan.hqkan import HQKAN

    hq = HQKAN(6, 4, latent_in=3, latent_out=2, hidden=[3], squash="tanh", ansatz="px", seed=0, dtype=torch.float64)
    x = 100 * torch.randn(7, 6, dtype=torch.float64)
    torch.testing.assert_close(hq(x), hq.decoder(hq.core(torch.tanh(hq.encoder(x)))), rtol=0, atol=0)
    assert torch.isfinite(hq(x)).all()
    with pytest.raises(ValueError, match=r"ansatz 'px' takes core inputs in \[-1, 1\] only; `squash` must be 'tanh'.*got 'none'"):
        HQKAN(6, 4, ansatz="px")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(squash="sigmoid"), ValueError, r"`squash` must be one of \['none', 'tanh', 'layernorm'\]; got 'sigmoid'"),
    (dict(hidden=[3, 0]), ValueError, r"`hidden\[1\]` must be an int >= 1; got 0"),
    (dict(hidden=[2.5]), TypeError, r"`hidden\[0\]` must be an int"),
    (dict(hidden=3), TypeError, r"`hidden` must be a list"),
    (dict(reps=0), ValueError, r"`reps` must be an int >= 1; got 0"),
    (dict(reps="3"), TypeError, r"`reps` must be an int"),
    (dict(latent_in=0), ValueError, r"`latent_in` must be an int >= 1"),
    (dict(ansatz="zz"), ValueError, r"`ansatz` must be one of"),
    (dict(seed=-1), ValueError, r"`seed` must be an int >= 0"),
])
def test_hqkan_argument_errors(kwargs, error, match):
    from qkan.hqkan import HQKAN

    with pytest.raises(error, match=match):
        HQKAN(8, 8, **kwargs)


def test_hqkan_input_errors():
    from qkan.hqkan import HQKAN

    hq = HQKAN(8, 8, seed=0)
    with pytest.raises(TypeError, match="`x` must be a torch.Tensor; got list"):
        hq([[0.0] * 8])
    with pytest.raises(TypeError, match="`x` must be a floating-point tensor; got torch.int64"):
        hq(torch.zeros(2, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"`x` has dtype torch.float64 but the block's parameters are torch.float32"):
        hq(torch.zeros(2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"`x` must have shape \(\*, 8\); got \(2, 7\)"):
        hq(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="`x` contains NaN"):
        hq(torch.full((2, 8), math.nan))
    assert hq(torch.zeros(0, 8)).shape == (0, 8)


def test_half_precision_parameters_compute_and_other_dtypes_are_refused_clearly():
    assert QKAN([2, 1], dtype="float16").layers[0].theta.dtype == torch.float16  # bf16/fp16 parameters
    model = QKAN([2, 3, 1], seed=0).to(torch.bfloat16)  # converted after construction
    y = model(torch.rand(3, 2, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    with pytest.raises(ValueError, match=r"`dtype` must be torch.float32, torch.float64, torch.bfloat16, torch.float16 or None"):
        QKAN([2, 1], dtype="float8_e4m3fn")
    model = QKAN([2, 3, 1], seed=0).to(torch.float8_e4m3fn)
    with pytest.raises(ValueError, match=r"parameters are torch.float8_e4m3fn; QKAN takes float32, float64, bfloat16 or float16"):
        model(torch.rand(3, 2).to(torch.float8_e4m3fn))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 parameters, bf16 matmuls
        assert torch.isfinite(QKAN([2, 3, 1], seed=0)(torch.rand(3, 2))).all()


@pytest.mark.parametrize("device, error, match", [
    ("nonsense", ValueError, r"`device` must be an available torch device"),
    (3.5, TypeError, r"`device` must be str or torch.device or int; got float"),
])
def test_bad_device(device, error, match):
    from qkan.hqkan import HQKAN

    with pytest.raises(error, match=match):
        QKANLayer(2, 2, device=device)
    with pytest.raises(error, match=match):
        HQKAN(4, 4, device=device)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lr=math.nan), ValueError, r"`lr` must be a finite number; got nan"),
    (dict(lr=-1.0), ValueError, r"`lr` must be a number >= 0; got -1.0"),
    (dict(lr="0.1"), TypeError, r"`lr` must be a number"),
    (dict(seed="0"), TypeError, r"`seed` must be an int"),
    (dict(reg_options=3, reg=0.1), TypeError, r"`reg_options` must be dict or None; got int"),
])
def test_fit_argument_errors(kwargs, error, match):
    data = function_dataset(demo_function, train_num=8, test_num=4)
    model = QKAN([2, 1], seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error, match=match):
        model.fit(data, steps=1, progress=False, **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_hqkan_bad_dtype():
    from qkan.hqkan import HQKAN

    with pytest.raises(ValueError, match=r"`dtype` must be torch.float32, torch.float64, torch.bfloat16, torch.float16 or None; got torch.int32"):
        HQKAN(4, 4, dtype=torch.int32)


def test_save_errors_name_the_target(tmp_path):
    model = QKAN([2, 1], seed=0)
    target = tmp_path / "missing" / "m.pt"
    with pytest.raises(FileNotFoundError, match=f"cannot write {str(target)!r}: No such file or directory"):
        model.save(target)
    with pytest.raises(IsADirectoryError, match=f"cannot write {str(tmp_path)!r}"):
        model.save(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_atomic_writes_give_ordinary_file_modes(tmp_path):
    import os
    import stat

    from qkan._io import atomic_write_text

    umask = os.umask(0o022)
    try:
        atomic_write_text("a", tmp_path / "new.txt")
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644  # not mkstemp's 0600
        (tmp_path / "kept.txt").write_text("x")
        os.chmod(tmp_path / "kept.txt", 0o640)
        atomic_write_text("b", tmp_path / "kept.txt")
        assert stat.S_IMODE((tmp_path / "kept.txt").stat().st_mode) == 0o640  # an existing file keeps its mode
    finally:
        os.umask(umask)


# ------------------------------------------------------------- checkpoints on disk
def _flip(path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def _same_model(a, b) -> bool:
    return a.config() == b.config() and all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def _tensor_offsets(path) -> list[int]:
    """File offsets of the first byte of every record (tensor data, the pickle, ...)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        out = []
        for info in archive.infolist():
            with open(path, "rb") as f:
                f.seek(info.header_offset + 26)
                name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
            out.append(info.header_offset + 30 + name_len + extra_len)
        return out


def test_flipped_bit_in_any_record_is_an_error_naming_the_file(tmp_path):
    model = QKAN([2, 3, 1], seed=0, dtype=torch.float64)
    path = tmp_path / "m.pt"
    model.save(path)
    clean = path.read_bytes()
    for offset in _tensor_offsets(path):
        for bit in (0, 3, 7):
            path.write_bytes(clean)
            _flip(path, offset, bit)
            with pytest.raises(ValueError, match=f"cannot load a QKAN from {str(path)!r}: the file is damaged"):
                QKAN.load(path)
    path.write_bytes(clean)
    assert _same_model(QKAN.load(path), model)


def test_every_single_bit_flip_is_caught_or_harmless(tmp_path):
    """One bit flipped at every 13th byte of a small checkpoint (the fault sweep flips every
    byte): an error naming the file, or (in zip padding and unused header fields) exactly the
    saved model."""
    model = QKAN([2, 2, 1], reps=2, seed=0, dtype=torch.float64)
    path, damaged = tmp_path / "m.pt", tmp_path / "d.pt"
    model.save(path)
    clean = path.read_bytes()
    caught = 0
    for offset in range(0, len(clean), 13):
        damaged.write_bytes(clean)
        _flip(damaged, offset, offset % 8)
        try:
            loaded = QKAN.load(damaged)
        except ValueError as err:
            assert str(damaged) in str(err)
            caught += 1
            continue
        assert _same_model(loaded, model), f"silently different after flipping byte {offset}"
    assert caught > len(clean) // 13 // 2


def test_content_checksum_catches_what_the_container_cannot(tmp_path):
    """A checkpoint whose records are consistent (CRCs rewritten) but whose values differ from
    the recorded SHA-256: the content check names the file."""
    from qkan._io import DIGEST_KEY

    model = QKAN([2, 1], seed=0)
    path = tmp_path / "m.pt"
    model.save(path)
    blob = torch.load(path, weights_only=True)
    blob["state_dict"]["layers.0.theta"] += 1e-3  # re-saved with torch: fresh, valid CRCs
    torch.save(blob, path)
    with pytest.raises(ValueError, match=r"the file is damaged \(its SHA-256 does not match its content\)"):
        QKAN.load(path)
    del blob[DIGEST_KEY]
    torch.save(blob, path)  # a file without a checksum (as the previous version wrote them) loads
    torch.testing.assert_close(QKAN.load(path).layers[0].theta, blob["state_dict"]["layers.0.theta"], rtol=0, atol=0)


def test_checkpoints_of_the_previous_version_still_load(tmp_path):
    from qkan.models import _FORMAT

    model = QKAN([2, 3, 1], reps=2, seed=1)
    path = tmp_path / "old.pt"
    torch.save({"format": _FORMAT, "config": model.config(), "state_dict": model.state_dict()}, path)
    assert _same_model(QKAN.load(path), model)
    _flip(path, _tensor_offsets(path)[-3])  # even without a checksum, the records' CRCs catch damage
    with pytest.raises(ValueError, match="the file is damaged"):
        QKAN.load(path)


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_truncated_checkpoint_is_an_error_naming_the_file(tmp_path, cut):
    path = tmp_path / "m.pt"
    QKAN([2, 3, 1], seed=0).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError, match=f"cannot load a QKAN from {str(path)!r}"):
        QKAN.load(path)


def test_damaged_agent_checkpoint_is_an_error(tmp_path):
    pytest.importorskip("gymnasium")
    from qkan.kanqas import CircuitEnv, DDQNAgent

    agent = DDQNAgent(CircuitEnv("bell"), q_network="mlp", seed=0, batch_size=16, buffer_size=500)
    agent.train(3, progress=False)
    path = tmp_path / "agent.pt"
    agent.save(path)
    before = [p.detach().clone() for p in agent.q.parameters()]
    _flip(path, _tensor_offsets(path)[5], 6)
    with pytest.raises(ValueError, match=f"cannot load a DDQN agent from {str(path)!r}: the file is damaged"):
        agent.load(path)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.q.parameters()))


def test_checksum_is_independent_of_the_device_and_covers_every_value():
    from qkan._io import content_digest

    state = {"a": torch.arange(6.0).reshape(2, 3), "b": [1, 2.5, "x", None, True], "c": {"d": torch.tensor(1, dtype=torch.bfloat16)}}
    digest = content_digest(state)
    assert content_digest({**state, "a": state["a"].clone()}) == digest
    assert content_digest({**state, "a": state["a"].t().contiguous().t()}) == digest  # the layout does not count
    for changed in ({**state, "a": state["a"] + 1e-6}, {**state, "a": state["a"].double()}, {**state, "a": state["a"].flatten()},
                    {**state, "b": [1, 2.5000001, "x", None, True]}, {**state, "b": [1, 2.5, "y", None, True]},
                    {**state, "b": (1, 2.5, "x", None, True)}, {**state, "b": [1, 2.5, "x", None, 1]}, {"b": state["b"], "a": state["a"]}):
        assert content_digest(changed) != digest
    with pytest.raises(TypeError, match="a checkpoint holds tensors, numbers, strings, lists and dicts only; got set"):
        content_digest({"s": {1}})


def test_map_location_without_cuda_names_the_device(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    path = tmp_path / "m.pt"
    QKAN([2, 1], seed=0).save(path)
    with pytest.raises(ValueError, match=r"`map_location` must be an available torch device \(e.g. 'cpu', 'cuda:0'\); got device\(type='cuda'\)"):
        QKAN.load(path, map_location="cuda")
    with pytest.raises(ValueError, match=r"`map_location` must be an available torch device .*got device\(type='cuda', index=1\)"):
        QKAN.load(path, map_location=torch.device("cuda", 1))
    assert QKAN.load(path, map_location=torch.device("cpu")).layers[0].theta.device.type == "cpu"


# ------------------------------------------------------------------------ symlinks and temps
def test_save_through_a_symlink_replaces_its_target(tmp_path):
    model = QKAN([2, 1], seed=0)
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.pt"
    QKAN([2, 1], seed=5).save(target)
    link = tmp_path / "model.pt"
    link.symlink_to(target)
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert _same_model(QKAN.load(target), model)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["real.pt"]  # no temporary file left


def test_save_through_a_dangling_or_relative_symlink(tmp_path):
    model = QKAN([2, 1], seed=0)
    (tmp_path / "store").mkdir()
    link = tmp_path / "model.pt"
    link.symlink_to(os.path.join("store", "new.pt"))  # relative and dangling
    model.save(link)
    assert link.is_symlink() and _same_model(QKAN.load(tmp_path / "store" / "new.pt"), model)
    chain = tmp_path / "chain.pt"
    chain.symlink_to(link)  # a link to a link
    QKAN([2, 1], seed=9).save(chain)
    assert chain.is_symlink() and link.is_symlink() and _same_model(QKAN.load(tmp_path / "store" / "new.pt"), QKAN([2, 1], seed=9))
    broken = tmp_path / "broken.pt"
    broken.symlink_to(tmp_path / "missing" / "x.pt")
    with pytest.raises(FileNotFoundError, match=f"cannot write {str(broken)!r}"):
        model.save(broken)


def test_stale_temporary_files_are_removed_by_the_next_save(tmp_path):
    from qkan._io import atomic_write_text

    stale = tmp_path / ".m.pt.abcd1234.tmp"  # as a killed save leaves it
    fresh = tmp_path / ".m.pt.zzzz9999.tmp"  # a save in progress in another process
    other = tmp_path / ".other.pt.abcd1234.tmp"  # another file's
    foreign = tmp_path / ".m.pt.notours.tmp"  # not our name pattern
    for p in (stale, fresh, other, foreign):
        p.write_text("partial")
    old = time.time() - 3600
    for p in (stale, other, foreign):
        os.utime(p, (old, old))
    QKAN([2, 1], seed=0).save(tmp_path / "m.pt")
    assert not stale.exists() and fresh.exists() and other.exists() and foreign.exists()
    atomic_write_text("x", tmp_path / "other.pt")
    assert not other.exists()


def test_concurrent_saves_and_loads_never_see_a_broken_file(tmp_path):
    import threading

    path = tmp_path / "m.pt"
    models = [QKAN([2, 3, 1], seed=s) for s in range(4)]
    models[0].save(path)
    errors = []

    def writer(model):
        for _ in range(15):
            model.save(path)

    def reader():
        for _ in range(30):
            try:
                loaded = QKAN.load(path)
                assert any(_same_model(loaded, m) for m in models)
            except Exception as err:  # noqa: BLE001 - any failure counts
                errors.append(err)

    threads = [threading.Thread(target=writer, args=(m,)) for m in models] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


# -------------------------------------------------------------------------- numpy integers
def test_numpy_integer_seeds_and_sizes():
    np = pytest.importorskip("numpy")
    a, b = QKANLayer(2, 3, seed=np.int64(3)), QKANLayer(2, 3, seed=3)
    assert a.seed == 3 and type(a.seed) is int and torch.equal(a.theta, b.theta)
    assert torch.equal(QKAN([2, 1], seed=np.int32(7)).layers[0].theta, QKAN([2, 1], seed=7).layers[0].theta)
    with pytest.raises(ValueError, match="`seed` must be an int >= 0"):
        QKANLayer(2, 3, seed=np.int64(-1))
    with pytest.raises(TypeError, match=r"`seed` must be an int in \[0, 9223372036854775807\] or None; got np.float64\(3.0\)|got 3.0"):
        QKANLayer(2, 3, seed=np.float64(3))


# ------------------------------------------------------------------ `qkan fit` files
TINY_FIT = ["--steps", "2", "--extend-steps", "2", "--train-num", "64", "--test-num", "32", "--no-progress"]


def _qkan(args, cwd, **kw):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, **kw.pop("env", {})}
    return subprocess.run([sys.executable, "-m", "qkan", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kw)


def test_fit_writes_its_files_before_printing_to_a_closed_pipe(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = f"{sys.executable} -m qkan fit --out run {' '.join(TINY_FIT)} | true"
    done = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": root, "PYTHONUNBUFFERED": "1"})
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert QKAN.load(tmp_path / "run" / "model.pt").width == [2, 5, 1]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["fit.png", "metrics.json", "model.pt"]


def test_sigterm_saves_like_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-m", "qkan", "fit", "--steps", "100000", "--train-num", "64", "--test-num", "32",
                             "--out", "run"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": root})
    deadline = time.monotonic() + 120
    while not (tmp_path / "run").exists() and time.monotonic() < deadline:  # made right before training starts
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("qkan fit: terminated (SIGTERM) during stage 'fit'; saved the model trained so far to run/model.pt")
    assert "Traceback" not in err
    assert QKAN.load(tmp_path / "run" / "model.pt").width == [2, 5, 1]


def test_sigterm_context_turns_the_signal_into_an_interrupt():
    import signal

    from qkan._shell import Terminated, sigterm_as_interrupt, signals_deferred

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_as_interrupt():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
    with sigterm_as_interrupt(), signals_deferred():  # while files are written, both signals wait
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_fit_output_problems_fail_before_training(tmp_path, monkeypatch, capsys):
    from qkan import cli

    calls = []
    monkeypatch.setattr(QKAN, "fit", lambda *a, **k: calls.append(1))
    (tmp_path / "run" / "model.pt").mkdir(parents=True)  # a folder where model.pt goes
    assert cli.main(["fit", "--out", str(tmp_path / "run"), *TINY_FIT]) == 2
    assert capsys.readouterr().err == f"qkan fit: error: `--out` must be a file path; {str(tmp_path / 'run' / 'model.pt')!r} is a folder\n"
    (tmp_path / "file").write_text("")
    assert cli.main(["fit", "--out", str(tmp_path / "file"), *TINY_FIT]) == 2
    assert capsys.readouterr().err.startswith(f"qkan fit: error: cannot write to {str(tmp_path / 'file')!r}")
    assert calls == []


def test_full_disk_fails_before_training(tmp_path):
    resource = pytest.importorskip("resource")
    import signal

    def small_files():  # a file-size limit stands in for a full disk: writes past it fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    start = time.monotonic()
    done = _qkan(["fit", "--out", "run", "--steps", "100000", *TINY_FIT[2:]], tmp_path, preexec_fn=small_files)
    assert done.returncode == 2 and done.stderr == "qkan fit: error: `--out` folder 'run' is not writable: File too large\n"
    assert time.monotonic() - start < 60 and done.stdout == ""
    assert [p.name for p in (tmp_path / "run").iterdir()] == []


def test_fit_out_through_symlinks_and_stale_temps(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").symlink_to(store / "model.pt")  # dangling until the first save
    stale = run / ".model.pt.k1llx9zq.tmp"  # beside the link: not where the save writes
    stale_target = store / ".model.pt.k1llx9zq.tmp"  # beside the target: a killed save left it
    for p in (stale, stale_target):
        p.write_bytes(b"partial")
        os.utime(p, (time.time() - 600, time.time() - 600))
    done = _qkan(["fit", "--out", "run", "--extend-reps", "0", *TINY_FIT], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (run / "model.pt").is_symlink() and QKAN.load(store / "model.pt").width == [2, 5, 1]
    assert not stale_target.exists() and stale.exists()  # cleaned where the file is written; the link's folder is not ours
    assert sorted(p.name for p in store.iterdir()) == ["model.pt"]


@pytest.mark.parametrize("limit", [1000, 20000])
def test_full_disk_during_a_save_keeps_the_old_file_and_names_it(tmp_path, limit):
    pytest.importorskip("resource")
    import subprocess
    import sys

    path = tmp_path / "m.pt"
    QKAN([2, 1], seed=0).save(path)
    before = path.read_bytes()
    code = ("import resource, signal, sys, qkan\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit stands in for a full disk\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
            "qkan.QKAN([4, 64, 4], reps=8, seed=5).save(sys.argv[1])\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": root})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"OSError: [Errno 27] cannot write {str(path)!r}: File too large"
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


@pytest.mark.parametrize("args, message", [
    (["--width", f"2,{10**11},1"], r"qkan fit: error: `--width`/`--reps` too large: not enough memory \([\d.e+]+ GiB asked for\)"),
    (["--train-num", str(10**13)], r"qkan fit: error: `--train-num`/`--test-num` too large: not enough memory"),
    (["--extend-reps", str(10**12)], r"qkan fit: error: `reps` must be an int <= 1000; got 1000000000000 \(from `--extend-reps` 1000000000000\)"),
    (["--threads", str(10**5)], r"qkan fit: error: argument --threads: must be an int in \[0, 1024\]; got '100000'"),
])
def test_huge_fit_flags_are_one_line_errors(tmp_path, monkeypatch, capsys, args, message):
    from qkan import cli

    calls = []
    monkeypatch.setattr(QKAN, "fit", lambda *a, **k: calls.append(1))
    try:
        code = cli.main(["fit", "--out", str(tmp_path / "run"), "--no-progress", *args])
    except SystemExit as stop:  # argparse
        code = stop.code
    assert code == 2 and calls == []
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and re.fullmatch(message + ".*\n", err)
