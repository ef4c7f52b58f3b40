"""HQKAN blocks, replace_ffn and the character-level GPT."""

from __future__ import annotations

import importlib.util
import io
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from qkan.hqkan import HQKAN, FFNReport, replace_ffn
from qkan.testing import reference_layer

ROOT = Path(__file__).resolve().parent.parent

def _load_example(name: str):
    """A module of examples/ (the character GPT demo lives outside the package), without touching sys.path."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


_char_gpt = _load_example("char_gpt")
CharGPT, CharTokenizer, evaluate_lm = _char_gpt.CharGPT, _char_gpt.CharTokenizer, _char_gpt.evaluate_lm
lm_batch, load_corpus, train_lm = _char_gpt.lm_batch, _char_gpt.load_corpus, _char_gpt.train_lm


def _n(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------------- HQKAN
@pytest.mark.parametrize("in_dim, out_dim, lat_in, lat_out", [(768, 768, 10, 10), (16, 5, 4, 3), (1, 2, 1, 1), (1024, 3, 10, 2)])
def test_default_latent_is_ceil_log2(in_dim, out_dim, lat_in, lat_out):
    hq = HQKAN(in_dim, out_dim, seed=0)
    assert (hq.latent_in, hq.latent_out) == (lat_in, lat_out)
    assert hq.core.width == [lat_in, lat_out]
    assert hq.encoder.weight.shape == (lat_in, in_dim) and hq.decoder.weight.shape == (out_dim, lat_out)


def test_paper_block_is_orders_of_magnitude_smaller():
    mlp = 2 * 768 * 3072 + 3072 + 768
    hq = HQKAN(768, 768, seed=0)
    # encoder 768*10+10, pz core 10*10*(4*2 theta + c + d + beta), decoder 10*768+768
    assert _n(hq) == 768 * 10 + 10 + 10 * 10 * 11 + 10 * 768 + 768 == 17238
    assert mlp / _n(hq) > 250


@pytest.mark.parametrize("lead", [(), (3,), (2, 3), (2, 1, 4)])
def test_shapes_over_leading_dims(lead):
    hq = HQKAN(6, 4, latent_in=3, latent_out=2, seed=0)
    x = torch.randn(*lead, 6)
    y = hq(x)
    assert y.shape == (*lead, 4)
    # same values as the flattened batch
    torch.testing.assert_close(y.reshape(-1, 4), hq(x.reshape(-1, 6)), rtol=0, atol=0)


@pytest.mark.parametrize("squash", ["tanh", "layernorm", "none"])
def test_matches_independent_reference_float64(squash):
    """encoder, squash, core and decoder recomputed in numpy; the core's circuits by qkan.testing."""
    torch.manual_seed(1)
    hq = HQKAN(5, 3, latent_in=3, latent_out=2, squash=squash, reps=2, seed=3, dtype=torch.float64)
    with torch.no_grad():
        hq.core.layers[0].post_weight.uniform_(0.5, 1.5)
        hq.core.layers[0].post_bias.uniform_(-0.3, 0.3)
    x = torch.randn(7, 5, dtype=torch.float64)
    W1, b1 = hq.encoder.weight.detach().numpy(), hq.encoder.bias.detach().numpy()
    z = x.numpy() @ W1.T + b1  # (7, 3)
    if squash == "tanh":
        z = math.pi * np.tanh(z)
    elif squash == "layernorm":
        z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + hq.squash.eps)
    layer = hq.core.layers[0]
    f = reference_layer(layer, torch.from_numpy(z))  # (7, O, I) edge values from a 2x2 statevector
    c, d = layer.post_weight.detach().numpy(), layer.post_bias.detach().numpy()
    beta = layer.base_weight.detach().numpy()
    silu = z / (1 + np.exp(-z))
    h = np.einsum("noi,oi->no", c * (f + d), np.ones_like(c)) + silu @ beta.T  # (7, 2)
    y_ref = h @ hq.decoder.weight.detach().numpy().T + hq.decoder.bias.detach().numpy()
    np.testing.assert_allclose(hq(x).detach().numpy(), y_ref, rtol=0, atol=1e-12)


def test_core_evaluator_can_be_switched_without_changing_the_block():
    hq = HQKAN(6, 4, latent_in=3, reps=2, seed=0, dtype=torch.float64)
    x = torch.randn(5, 6, dtype=torch.float64)
    closed_form = hq(x)
    assert hq.core.layers[0].evaluator == "fourier"
    hq.core.set_evaluator("su2")
    torch.testing.assert_close(hq(x), closed_form, rtol=0, atol=1e-12)


def test_tanh_squash_keeps_core_inputs_in_one_period():
    hq = HQKAN(4, 4, latent_in=3, squash="tanh", seed=0)
    z = hq.squash(hq.encoder(1e3 * torch.randn(100, 4)))
    assert z.abs().max() <= math.pi
    assert z.abs().max() > 3.0  # and uses the period


def test_gradcheck_float64_to_input_and_every_parameter():
    hq = HQKAN(4, 3, latent_in=2, latent_out=2, hidden=[2], reps=2, seed=0, dtype=torch.float64)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(hq, (x,))
    hq(x).square().sum().backward()
    for name, p in hq.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_dtype_and_qkan_options_pass_through():
    hq = HQKAN(6, 6, latent_in=2, ansatz="rpz", reps=4, bias=True, dtype=torch.float64, seed=0)
    assert all(p.dtype == torch.float64 for p in hq.parameters())
    assert hq.core.layers[0].ansatz.name == "rpz" and hq.core.layers[0].reps == 4
    assert hq(torch.randn(2, 6, dtype=torch.float64)).dtype == torch.float64
    hq32 = HQKAN(6, 6, seed=0).double()
    assert hq32(torch.randn(2, 6, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_dim=0, out_dim=4), r"`in_dim` must be an int >= 1; got 0"),
        (dict(in_dim=4, out_dim=4, latent_in=0), r"`latent_in` must be an int >= 1; got 0"),
        (dict(in_dim=4, out_dim=4, latent_out=-1), r"`latent_out` must be an int >= 1; got -1"),
        (dict(in_dim=4, out_dim=4, hidden=[3, 0]), r"`hidden\[1\]` must be an int >= 1; got 0"),
        (dict(in_dim=4, out_dim=4, squash="sigmoid"), r"`squash` must be one of \['none', 'tanh', 'layernorm'\]; got 'sigmoid'"),
        (dict(in_dim=4, out_dim=4, width=[2, 2]), r"`width` is set by HQKAN"),
        (dict(in_dim=4, out_dim=4, ansatz="zz"), r"`ansatz` must be one of"),
        (dict(in_dim=4, out_dim=4, dropout=1.5), r"`dropout` must be a number >= 0 and <= 1; got 1.5"),
    ],
)
def test_constructor_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HQKAN(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(in_dim=4, out_dim=2.5), r"`out_dim` must be an int >= 1; got 2.5"),
        (dict(in_dim=4, out_dim=4, hidden=3), r"`hidden` must be a list of layer widths; got 3"),
        (dict(in_dim=4, out_dim=4, dropout="0.1"), r"`dropout` must be a number >= 0 and <= 1; got '0.1' \(str\)"),
    ],
)
def test_constructor_type_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        HQKAN(**kwargs)


def test_forward_validation():
    hq = HQKAN(4, 2, seed=0)
    with pytest.raises(ValueError, match=r"`x` must have shape \(\*, 4\); got \(3, 5\)"):
        hq(torch.randn(3, 5))
    with pytest.raises(TypeError, match=r"`x` must be a torch.Tensor; got list"):
        hq([1.0, 2.0, 3.0, 4.0])


def test_output_dropout_acts_in_training_only():
    hq = HQKAN(6, 400, latent_in=3, dropout=0.25, seed=0)
    assert isinstance(hq.dropout, nn.Dropout) and hq.config()["dropout"] == 0.25 and "dropout=0.25" in repr(hq)
    assert isinstance(HQKAN(6, 4, seed=0).dropout, nn.Identity)
    x = torch.randn(50, 6)
    clean = hq.decoder(hq.core(hq.encoder(x)))
    torch.testing.assert_close(hq.eval()(x), clean, rtol=0, atol=0)
    y = hq.train()(x)
    dropped = (y == 0) & (clean != 0)
    assert abs(dropped.float().mean().item() - 0.25) < 0.02  # 20000 draws: sd 0.003
    torch.testing.assert_close(y[~dropped], clean[~dropped] / 0.75)


def test_config_rebuilds_the_block():
    hq = HQKAN(8, 5, latent_in=3, hidden=[4], squash="layernorm", reps=2, ansatz="rpz", seed=1)
    twin = HQKAN(**hq.config())
    twin.load_state_dict(hq.state_dict())
    x = torch.randn(6, 8)
    torch.testing.assert_close(twin(x), hq(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------ replace_ffn
def _encoder(norm_first: bool, seed: int = 0) -> nn.TransformerEncoder:
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=norm_first)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


@pytest.mark.parametrize("norm_first", [False, True])
def test_replace_ffn_encoder_leaves_other_parameters_identical(norm_first):
    model = _encoder(norm_first)
    before = {k: (v, v.detach().clone()) for k, v in model.named_parameters()}
    n_before = _n(model)
    ffn_before = sum(_n(l.linear1) + _n(l.linear2) for l in model.layers)
    report = replace_ffn(model, latent_in=3, reps=2, seed=0)
    assert isinstance(report, FFNReport)
    assert report.replaced == ["layers.0", "layers.1"]
    assert report.params_before == n_before and report.params_after == _n(model)
    assert report.ffn_params_before == ffn_before == 2 * (16 * 32 + 32 + 32 * 16 + 16)
    assert report.ffn_params_after == sum(_n(l.linear1) for l in model.layers)
    assert report.params_after == n_before - ffn_before + report.ffn_params_after
    after = dict(model.named_parameters())
    kept = [k for k in before if ".linear1." not in k and ".linear2." not in k]
    assert len(kept) == 2 * 8  # attention in/out projection, two norms, per layer
    for k in kept:
        assert after[k] is before[k][0]  # the same Parameter object
        assert torch.equal(after[k], before[k][1])  # with the same values
    for layer in model.layers:
        assert isinstance(layer.linear1, HQKAN) and layer.linear1.latent_in == 3
        assert isinstance(layer.linear2, nn.Identity) and isinstance(layer.dropout, nn.Identity)
        assert isinstance(layer.activation, nn.Identity)


@pytest.mark.parametrize("norm_first", [False, True])
def test_replaced_encoder_layer_computes_attention_plus_hqkan(norm_first):
    model = _encoder(norm_first).double()
    replace_ffn(model, seed=0)
    layer = model.layers[0].eval()
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    if norm_first:
        h = x + layer._sa_block(layer.norm1(x), None, None)
        expected = h + layer.linear1(layer.norm2(h))
    else:
        h = layer.norm1(x + layer._sa_block(x, None, None))
        expected = layer.norm2(h + layer.linear1(h))
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


def test_replaced_encoder_runs_where_torch_would_take_the_fast_path():
    """eval + no_grad + padding mask would enter the fused/nested-tensor kernels, which read linear1.weight."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True)
    assert model.use_nested_tensor
    replace_ffn(model, seed=0)
    assert not model.use_nested_tensor
    model.eval()
    x = torch.randn(3, 6, 16)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[:, 4:] = True
    with torch.no_grad():
        fast = model(x, src_key_padding_mask=pad)
    slow = model(x, src_key_padding_mask=pad)  # grad enabled: torch's reference path
    torch.testing.assert_close(fast, slow, rtol=0, atol=0)


def test_replace_ffn_decoder_layer_and_nn_transformer():
    torch.manual_seed(0)
    model = nn.Transformer(16, 2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=24, dropout=0.0, batch_first=True)
    keep = {k: v.detach().clone() for k, v in model.named_parameters() if ".linear" not in k}
    report = replace_ffn(model, seed=0)
    assert report.replaced == ["encoder.layers.0", "decoder.layers.0", "decoder.layers.1"]
    assert isinstance(model.decoder.layers[1].linear1, HQKAN)
    for k, v in model.named_parameters():
        if k in keep:
            assert torch.equal(v, keep[k]), k
    src, tgt = torch.randn(2, 5, 16), torch.randn(2, 4, 16)
    out = model(src, tgt)
    assert out.shape == (2, 4, 16)
    # a random projection: out.sum() after the final LayerNorm has zero gradient (only rounding noise)
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    assert model.decoder.layers[1].linear1.core.layers[0].theta.grad.abs().sum() > 1.0


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.Linear(8, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 6))
        self.proj = nn.Linear(6, 8)

    def forward(self, x):
        return self.proj(self.mlp(self.attn(x)))


def test_replace_ffn_with_predicate_replaces_user_modules():
    torch.manual_seed(0)
    model = nn.Sequential(_Block(), _Block())
    keep = {k: v for k, v in model.named_parameters() if ".mlp." not in k}
    report = replace_ffn(model, lambda name, m: name.endswith("mlp"), latent_in=2, seed=0)
    assert report.replaced == ["0.mlp", "1.mlp"]
    assert report.ffn_params_before == 2 * (8 * 32 + 32 + 32 * 6 + 6)
    for block in model:
        assert isinstance(block.mlp, HQKAN)
        assert (block.mlp.in_dim, block.mlp.out_dim, block.mlp.latent_in, block.mlp.latent_out) == (8, 6, 2, 3)
    assert {k: v for k, v in model.named_parameters() if ".mlp." not in k}.keys() == keep.keys()
    for k, v in model.named_parameters():
        if k in keep:
            assert v is keep[k]
    assert model(torch.randn(4, 8)).shape == (4, 8)
    # a Linear chosen directly uses its in/out features; a chosen module is not re-entered
    report = replace_ffn(model, lambda name, m: name.endswith("proj") or isinstance(m, _Block))
    assert report.replaced == ["0", "1"] and all(isinstance(m, HQKAN) for m in model)


def test_replace_ffn_follows_dtype_and_is_idempotent():
    model = _encoder(False).double()
    replace_ffn(model, seed=0)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    again = replace_ffn(model, seed=0)
    assert again.replaced == [] and again.params_before == again.params_after
    assert math.isnan(again.ffn_reduction)
    assert "replaced 0 feed-forward block(s)" in str(again)


def test_replace_ffn_on_a_bare_transformer_layer_changes_it_in_place():
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(16, 2, dim_feedforward=32, batch_first=True)
    report = replace_ffn(layer, latent_in=2, seed=0)
    assert report.replaced == [""] and isinstance(layer.linear1, HQKAN) and layer.linear1.latent_in == 2
    assert layer(torch.randn(2, 3, 16), torch.randn(2, 4, 16)).shape == (2, 3, 16)
    # any other module as the model itself is never selected (it cannot replace itself)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))
    assert replace_ffn(mlp, lambda name, m: isinstance(m, (nn.Sequential, nn.Linear))).replaced == ["0", "2"]


def test_replace_ffn_validation():
    with pytest.raises(TypeError, match=r"`model` must be a torch.nn.Module; got int"):
        replace_ffn(3)
    with pytest.raises(TypeError, match=r"`predicate` must be a callable"):
        replace_ffn(_encoder(False), predicate="mlp")
    with pytest.raises(ValueError, match=r"`in_dim` is taken from each replaced block"):
        replace_ffn(_encoder(False), in_dim=4)
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU())
    with pytest.raises(ValueError, match=r"cannot infer the feature sizes of module '1' \(GELU\)"):
        replace_ffn(model, lambda name, m: True)
    assert isinstance(model[0], nn.Linear)  # nothing changed before the error


def test_state_dict_round_trip_of_model_with_hqkan_blocks():
    model = _encoder(True, seed=1)
    replace_ffn(model, latent_in=4, squash="layernorm", reps=2, seed=5)
    with torch.no_grad():  # move away from the initialisation so the round trip carries information
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    twin = _encoder(True, seed=2)
    replace_ffn(twin, latent_in=4, squash="layernorm", reps=2, seed=6)
    buffer.seek(0)
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    assert any(k.startswith("layers.0.linear1.core.layers.0.theta") for k in twin.state_dict())
    x = torch.randn(2, 7, 16)
    torch.testing.assert_close(twin(x), model(x), rtol=0, atol=0)


# ----------------------------------------------------------------------------- char GPT
def test_corpus_is_small_and_reproducible(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    text = load_corpus()
    assert 100_000 < len(text.encode("utf-8")) <= 200_000
    from hqkan_lm import make_corpus

    assert make_corpus() == text


def test_tokenizer_round_trip_and_validation():
    tok = CharTokenizer("hello world")
    ids = tok.encode("low hello")
    assert ids.dtype == torch.int64 and tok.decode(ids) == "low hello" and tok.vocab_size == 8
    with pytest.raises(ValueError, match=r"outside the vocabulary: \['z'\]"):
        tok.encode("zoo")


def test_char_gpt_shapes_and_causality():
    torch.manual_seed(0)
    model = CharGPT(11, context=8, d_model=16, n_layers=2, n_heads=2).eval()
    replace_ffn(model, seed=0)
    idx = torch.randint(0, 11, (3, 8))
    logits = model(idx)
    assert logits.shape == (3, 8, 11)
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    other = model(changed)
    torch.testing.assert_close(other[:, :5], logits[:, :5], rtol=0, atol=1e-6)
    assert (other[:, 5:] - logits[:, 5:]).abs().max() > 1e-4
    with pytest.raises(ValueError, match=r"sequence length must be in \[1, 8\]; got 9"):
        model(torch.zeros(1, 9, dtype=torch.int64))
    out = model.generate(idx[:, :2], 4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 6) and torch.equal(out[:, :2], idx[:, :2])


def test_char_gpt_with_hqkan_blocks_learns():
    torch.manual_seed(0)
    text = load_corpus()[:20_000]
    tok = CharTokenizer(text)
    data = tok.encode(text)
    model = CharGPT(tok.vocab_size, context=32, d_model=32, n_layers=1, n_heads=2)
    report = replace_ffn(model, seed=0)
    assert report.replaced == ["blocks.layers.0"]
    start = evaluate_lm(model, data, batch=16, n_batches=2)
    fit = train_lm(model, data, tokens=60 * 16 * 32, batch=16, lr=1e-2)
    assert fit["steps"] == 60 and fit["tokens"] == 60 * 16 * 32 and fit["tokens_per_s"] > 0
    end = evaluate_lm(model, data, batch=16, n_batches=2)
    assert start > math.log(tok.vocab_size) - 0.5  # near uniform at the start
    assert end < start - 1.0  # learnt character statistics
    x, y = lm_batch(data, 4, 32, torch.Generator().manual_seed(0))
    assert torch.equal(x[:, 1:], y[:, :-1])
