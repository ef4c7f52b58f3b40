"""A small GPT-style character-level language model, for trying HQKAN feed-forward blocks.

A demo, not part of the qkan package: the tutorial 04_hqkan_transformer, benchmarks/hqkan_lm.py
and tests/test_hqkan.py import it from this folder (put examples/ on sys.path).

The blocks are torch.nn.TransformerEncoderLayer (pre-norm, GELU, causal mask), so
``qkan.replace_ffn(model)`` swaps their MLPs for HQKAN blocks without touching anything else.
The corpus (examples/corpus.txt, ~150 KB of generated English-like prose, written by
``python benchmarks/hqkan_lm.py --write-corpus``) sits next to this file; nothing is downloaded.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["load_corpus", "CharTokenizer", "CharGPT", "lm_batch", "evaluate_lm", "train_lm"]


#: the training text, next to this file
CORPUS = Path(__file__).resolve().with_name("corpus.txt")


def load_corpus() -> str:
    """The training text (examples/corpus.txt) as one string."""
    return CORPUS.read_text(encoding="utf-8")


class CharTokenizer:
    """Characters <-> integer ids, the vocabulary being the sorted characters of `text`."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError("`text` must be a non-empty string")
        self.chars = sorted(set(text))
        self._ids = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """str of length T -> (T,) int64 ids; ValueError on a character outside the vocabulary."""
        unknown = set(text) - self._ids.keys()
        if unknown:
            raise ValueError(f"`text` has characters outside the vocabulary: {sorted(unknown)!r}")
        return torch.tensor([self._ids[c] for c in text], dtype=torch.int64)

    def decode(self, ids) -> str:
        """(T,) ids (tensor or list) -> str."""
        return "".join(self.chars[int(i)] for i in ids)


class CharGPT(nn.Module):
    """Decoder-only transformer on characters: embeddings, causal pre-norm blocks, linear head.

    Args:
        vocab_size: number of characters V.
        context: maximum sequence length T.
        d_model: embedding width d.
        n_layers: transformer blocks.
        n_heads: attention heads (must divide d_model).
        dim_feedforward: hidden width of each block's MLP (default 4 * d_model).
        dropout: dropout rate inside the blocks.
        device, dtype: where and how the parameters are allocated.

    Shape:
        (B, T) int64 ids -> (B, T, V) logits of the next character.

    Attributes:
        blocks: nn.TransformerEncoder of nn.TransformerEncoderLayer (norm_first, GELU): the
            target of qkan.replace_ffn.
    """

    def __init__(
        self,
        vocab_size: int,
        context: int = 64,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        dim_feedforward: int | None = None,
        *,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for arg, value in (("vocab_size", vocab_size), ("context", context), ("d_model", d_model),
                           ("n_layers", n_layers), ("n_heads", n_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be an int >= 1; got {value!r}")
        if d_model % n_heads:
            raise ValueError(f"`n_heads` must divide `d_model` = {d_model}; got {n_heads}")
        factory = {"device": device, "dtype": dtype}
        self.context = context
        self.tok_emb = nn.Embedding(vocab_size, d_model, **factory)
        self.pos_emb = nn.Embedding(context, d_model, **factory)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward or 4 * d_model, dropout, activation="gelu",
            batch_first=True, norm_first=True, **factory,
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model, **factory)
        self.head = nn.Linear(d_model, vocab_size, **factory)
        self.register_buffer(
            "causal_mask", nn.Transformer.generate_square_subsequent_mask(context, **factory), persistent=False
        )

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 -> (B, T, V) logits."""
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.int64:
            raise ValueError(f"`idx` must be an int64 tensor of shape (B, T); got {getattr(idx, 'shape', idx)!r}")
        T = idx.shape[1]
        if not 1 <= T <= self.context:
            raise ValueError(f"`idx` sequence length must be in [1, {self.context}]; got {T}")
        pos = torch.arange(T, device=idx.device)
        h = self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, d)
        h = self.blocks(h, mask=self.causal_mask[:T, :T], is_causal=True)  # (B, T, d)
        return self.head(self.norm(h))  # (B, T, V)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, n_new: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample `n_new` characters after the prompt idx (B, T0) -> (B, T0 + n_new)."""
        if temperature <= 0:
            raise ValueError(f"`temperature` must be > 0; got {temperature}")
        for _ in range(n_new):
            logits = self(idx[:, -self.context:])[:, -1] / temperature  # (B, V)
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


def lm_batch(data: torch.Tensor, batch: int, context: int,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of a token stream: data (L,) -> inputs and next-token targets, each (batch, context)."""
    if data.numel() <= context:
        raise ValueError(f"`data` must hold more than context = {context} tokens; got {data.numel()}")
    start = torch.randint(0, data.numel() - context, (batch,), generator=generator)
    offsets = start[:, None] + torch.arange(context)  # (batch, context)
    return data[offsets], data[offsets + 1]


@torch.no_grad()
def evaluate_lm(model: CharGPT, data: torch.Tensor, *, batch: int = 32, n_batches: int = 8, seed: int = 0) -> float:
    """Mean next-character cross entropy (nats) over `n_batches` fixed random windows of `data`."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    total = 0.0
    for _ in range(n_batches):
        x, y = lm_batch(data, batch, model.context, gen)
        logits = model(x.to(device))
        total += F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten()).item()
    model.train(was_training)
    return total / n_batches


def train_lm(model: CharGPT, data: torch.Tensor, *, tokens: int, batch: int = 32, lr: float = 3e-3,
             seed: int = 0, progress: bool = False) -> dict:
    """AdamW with a cosine schedule on random windows until `tokens` training tokens are seen.

    Returns:
        dict with losses (per step), steps, tokens (seen), seconds and tokens_per_s (training
        steps only, no evaluation).
    """
    steps = math.ceil(tokens / (batch * model.context))
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    losses = []
    steps_iter = range(steps)
    if progress:
        from tqdm.auto import tqdm

        steps_iter = tqdm(steps_iter, desc="train")
    start = time.perf_counter()
    for _ in steps_iter:
        x, y = lm_batch(data, batch, model.context, gen)
        logits = model(x.to(device))
        loss = F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    seen = steps * batch * model.context
    return dict(losses=losses, steps=steps, tokens=seen, seconds=seconds, tokens_per_s=seen / seconds)
