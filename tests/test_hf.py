"""replace_ffn on Hugging Face transformers models built from small configs (no weights downloaded)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from qkan.hqkan import HQKAN, replace_ffn

transformers = pytest.importorskip("transformers", reason='Hugging Face transformers is not installed: pip install "qkan-daruan[hf]"')

VOCAB = 48
CORPUS = Path(__file__).resolve().parent.parent / "examples" / "corpus.txt"


def _config(family: str):
    """A two-layer model of `family`, 32 wide with a 64-wide FFN."""
    small = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    if family == "gpt2":
        return transformers.GPT2Config(vocab_size=VOCAB, n_embd=32, n_inner=64, n_layer=2, n_head=2, n_positions=40,
                                       bos_token_id=0, eos_token_id=0)
    if family in ("llama", "mistral", "qwen2"):
        cls = {"llama": transformers.LlamaConfig, "mistral": transformers.MistralConfig, "qwen2": transformers.Qwen2Config}
        return cls[family](num_key_value_heads=2, max_position_embeddings=40, pad_token_id=0, bos_token_id=0,
                           eos_token_id=0, **small)
    if family in ("bert", "roberta"):
        cls = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig}
        return cls[family](max_position_embeddings=40, pad_token_id=0, **small)
    if family in ("t5", "t5-gated"):
        act = "gated-gelu" if family == "t5-gated" else "relu"
        return transformers.T5Config(vocab_size=VOCAB, d_model=32, d_ff=64, d_kv=16, num_layers=2, num_heads=2,
                                     feed_forward_proj=act, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    if family == "vit":
        return transformers.ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                      image_size=8, patch_size=4, num_channels=1)
    raise AssertionError(family)


def _model(family: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    config = _config(family)
    if family in ("bert", "roberta"):
        return transformers.AutoModelForMaskedLM.from_config(config)
    if family.startswith("t5"):
        return transformers.T5ForConditionalGeneration(config)
    if family == "vit":
        return transformers.ViTModel(config, add_pooling_layer=False)
    return transformers.AutoModelForCausalLM.from_config(config)


#: family -> (the first replaced name, how many blocks are replaced)
EXPECTED = {
    "gpt2": ("transformer.h.0.mlp", 2),
    "llama": ("model.layers.0.mlp", 2),
    "mistral": ("model.layers.0.mlp", 2),
    "qwen2": ("model.layers.0.mlp", 2),
    "bert": ("bert.encoder.layer.0", 2),
    "roberta": ("roberta.encoder.layer.0", 2),
    "t5": ("encoder.block.0.layer.1.DenseReluDense", 4),
    "t5-gated": ("encoder.block.0.layer.1.DenseReluDense", 4),
    "vit": ("layers.0.mlp", 2),
}


def _ffn_keys(family: str, key: str) -> bool:
    """True for parameter names of the feed-forward blocks that replace_ffn removes."""
    marks = {"gpt2": ".mlp.", "bert": (".intermediate.", ".output.dense."), "roberta": (".intermediate.", ".output.dense."),
             "t5": ".DenseReluDense.", "t5-gated": ".DenseReluDense.", "vit": ".mlp."}.get(family, ".mlp.")
    marks = (marks,) if isinstance(marks, str) else marks
    return any(m in key for m in marks) and ".attention." not in key


@pytest.mark.parametrize("family", list(EXPECTED))
def test_every_ffn_is_replaced_and_the_rest_is_bitwise_the_same(family):
    model = _model(family)
    before = {k: (v, v.detach().clone()) for k, v in model.named_parameters()}
    ffn_before = sum(v.numel() for k, v in model.named_parameters() if _ffn_keys(family, k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # finding blocks warns about nothing
        report = replace_ffn(model, seed=0)
    first, count = EXPECTED[family]
    assert len(report.replaced) == count and report.replaced[0] == first
    assert report.ffn_params_before == ffn_before
    assert report.params_after == sum(p.numel() for p in model.parameters()) < report.params_before
    after = dict(model.named_parameters())
    kept = [k for k in before if not _ffn_keys(family, k)]
    assert kept and all(k in after for k in kept)
    for k in kept:
        assert after[k] is before[k][0] and torch.equal(after[k], before[k][1]), k
    hqkans = [m for m in model.modules() if isinstance(m, HQKAN)]
    assert len(hqkans) == count and all(h.in_dim == h.out_dim == 32 and h.latent_in == 5 for h in hqkans)
    # every new parameter belongs to an HQKAN, and no parameter of the old hidden width 64 is left
    new = {k for k in after if k not in before}
    assert sum(after[k].numel() for k in new) == sum(sum(p.numel() for p in h.parameters()) for h in hqkans)
    assert not any(64 in p.shape for p in after.values() if p.dim() == 2 and 32 in p.shape)
    assert replace_ffn(model, seed=0).replaced == []  # a second call finds them replaced
    out = model(**_inputs(family))  # the model still runs, and every HQKAN takes part in backward
    (out.logits if hasattr(out, "logits") else out.last_hidden_state).square().mean().backward()
    assert all(h.core.layers[0].theta.grad.abs().sum() > 0 for h in hqkans)


def _inputs(family: str) -> dict:
    ids = torch.randint(2, VOCAB, (2, 7), generator=torch.Generator().manual_seed(0))
    if family == "vit":
        return {"pixel_values": torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))}
    if family.startswith("t5"):
        return {"input_ids": ids, "decoder_input_ids": ids[:, :4]}
    return {"input_ids": ids}


def test_bfloat16_model_gets_bfloat16_blocks():
    model = _model("llama").to(torch.bfloat16)
    replace_ffn(model, seed=0)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    logits = model(**_inputs("llama")).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()


def test_gpt2_conv1d_block_and_its_dropout_carried():
    model = _model("gpt2")
    block = model.transformer.h[0]
    assert type(block.mlp.c_fc).__name__ == "Conv1D"
    replace_ffn(model, seed=0)
    assert isinstance(block.mlp, HQKAN) and isinstance(block.mlp.dropout, nn.Dropout)
    assert block.mlp.dropout.p == model.config.resid_pdrop == 0.1
    block.eval()
    x = torch.randn(2, 5, 32)
    h = x + block.attn(block.ln_1(x))[0]
    torch.testing.assert_close(block(x), h + block.mlp(block.ln_2(h)))


def test_bert_block_keeps_dropout_layernorm_and_residual():
    model = _model("bert").double().eval()
    replace_ffn(model, seed=0)
    layer = model.bert.encoder.layer[0]
    assert isinstance(layer.intermediate, HQKAN) and isinstance(layer.output.dense, nn.Identity)
    assert isinstance(layer.output.dropout, nn.Dropout) and isinstance(layer.output.LayerNorm, nn.LayerNorm)
    a = torch.randn(2, 5, 32, dtype=torch.float64)
    expected = layer.output.LayerNorm(layer.intermediate(a) + a)  # x -> HQKAN -> dropout (eval: none) -> LN(. + x)
    torch.testing.assert_close(layer.feed_forward_chunk(a), expected, rtol=0, atol=1e-12)
    layer.train()
    torch.manual_seed(3)
    dropped = layer.feed_forward_chunk(a)
    torch.manual_seed(3)
    drop = layer.output.dropout(layer.intermediate(a))
    torch.testing.assert_close(dropped, layer.output.LayerNorm(drop + a), rtol=0, atol=1e-12)


def test_llama_gated_mlp_becomes_one_block():
    model = _model("llama")
    replace_ffn(model, latent_in=3, reps=1, seed=0)
    mlp = model.model.layers[1].mlp
    assert isinstance(mlp, HQKAN) and mlp.latent_in == 3 and mlp.reps == 1 and isinstance(mlp.dropout, nn.Identity)
    assert model(torch.randint(0, VOCAB, (2, 6))).logits.shape == (2, 6, VOCAB)


class _ReversedMLP(nn.Module):
    """The output map registered before the input map, and a parameter-free activation."""

    def __init__(self) -> None:
        super().__init__()
        self.down, self.up, self.act = nn.Linear(24, 6), nn.Linear(6, 24), nn.GELU()

    def forward(self, x):
        return self.down(self.act(self.up(x)))


def test_plain_torch_mlp_modules_are_found_in_either_order():
    model = nn.Sequential(nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Dropout(0.2), nn.Linear(24, 5)), _ReversedMLP())
    report = replace_ffn(model, latent_in=2, seed=0)
    assert report.replaced == ["0", "1"]
    assert (model[0].in_dim, model[0].out_dim, model[0].dropout.p) == (6, 5, 0.2)
    assert (model[1].in_dim, model[1].out_dim) == (6, 6) and isinstance(model[1].dropout, nn.Identity)


def test_warns_when_nothing_is_found():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    with pytest.warns(UserWarning, match=r"replace_ffn found no feed-forward block in Sequential; it looked for "
                                         r"torch.nn.TransformerEncoderLayer.*BERT.*Conv1D.*predicate"):
        report = replace_ffn(model)
    assert report.replaced == []
    with pytest.warns(UserWarning, match=r"no feed-forward block in Sequential; it looked for with the given predicate"):
        replace_ffn(model, lambda name, m: False)
    # attention's equal-sized q, k, v projections are not a gated feed-forward block
    attention = nn.Module()
    attention.q, attention.k, attention.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
    with pytest.warns(UserWarning, match="found no feed-forward block"):
        assert replace_ffn(nn.Sequential(attention)).replaced == []


# ------------------------------------------------------------------------------------ training
def _batch(family: str, n: int = 8, length: int = 32) -> dict:
    """A fixed batch of character windows of the corpus, as token ids < VOCAB."""
    text = CORPUS.read_text(encoding="utf-8")[:20_000]
    chars = sorted(set(text))
    ids = torch.tensor([min(chars.index(c), VOCAB - 1) for c in text[: n * length]]).view(n, length)
    if family == "bert":
        g = torch.Generator().manual_seed(0)
        mask = torch.rand(ids.shape, generator=g) < 0.3
        labels = torch.where(mask, ids, torch.full_like(ids, -100))
        return {"input_ids": torch.where(mask, torch.ones_like(ids), ids), "labels": labels}
    return {"input_ids": ids, "labels": ids}


def _train(model: nn.Module, batch: dict, steps: int = 30) -> list[float]:
    torch.manual_seed(0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps + 1):
        loss = model(**batch).loss
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert"])
def test_30_adamw_steps_lower_the_loss_like_the_unmodified_model(family):
    reference = _model(family)
    model = copy.deepcopy(reference)
    replace_ffn(model, seed=0)
    batch = _batch(family)
    ref, hq = _train(reference, batch), _train(model, batch)
    assert abs(hq[0] - ref[0]) < 0.3  # both start near the uniform loss
    drop_ref, drop_hq = ref[0] - ref[-1], hq[0] - hq[-1]
    assert drop_ref > 0.5
    assert drop_hq > 0.75 * drop_ref, (ref, hq)  # measured 0.84 (gpt2), 0.90 (llama), 0.98 (bert)


# ------------------------------------------------------------------------------- round trips
def _perturbed_replaced(family: str, options: dict) -> nn.Module:
    """A model of `family` with HQKAN blocks, every parameter moved off its initialisation."""
    model = _model(family)
    replace_ffn(model, **options)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _fresh(family: str, config=None) -> nn.Module:
    """The same architecture with other initial weights (seed 1), optionally from a loaded config."""
    torch.manual_seed(1)
    if config is None:
        return _model(family, seed=1)
    if family == "bert":
        return transformers.AutoModelForMaskedLM.from_config(config)
    return transformers.AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("family", ["gpt2", "llama", "bert"])
def test_state_dict_round_trip(family, tmp_path):
    options = dict(reps=2, squash="layernorm", seed=0)
    model = _perturbed_replaced(family, options)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    twin = _fresh(family)
    replace_ffn(twin, **options)
    twin.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))  # strict: every key matches
    twin.eval()
    ids = _batch(family)["input_ids"]
    torch.testing.assert_close(twin(ids).logits, model(ids).logits, rtol=0, atol=0)


@pytest.mark.parametrize("family, tied", [("gpt2", {"lm_head.weight"}), ("llama", set()),
                                          ("bert", {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"})])
def test_save_pretrained_recipe_round_trip(family, tied, tmp_path):
    """The recipe of docs/hqkan.md: options in the config, weights in model.safetensors."""
    from safetensors.torch import load_file

    options = dict(reps=1, latent_in=4, seed=0)
    model = _perturbed_replaced(family, options)
    model.config.hqkan = options  # travels in config.json
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()

    config = transformers.AutoConfig.from_pretrained(tmp_path)
    assert config.hqkan == options
    twin = _fresh(family, config)
    replace_ffn(twin, **config.hqkan)
    missing, unexpected = twin.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=False)
    assert unexpected == [] and set(missing) == tied  # save_pretrained leaves out weights tied to others
    twin.eval()
    ids = _batch(family)["input_ids"]
    torch.testing.assert_close(twin(ids).logits, model(ids).logits, rtol=0, atol=0)
