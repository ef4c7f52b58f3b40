"""GPT-2 HQKANsformer: Hugging Face GPT-2 with and without qkan.replace_ffn.

    python benchmarks/hqkan_gpt2.py [--quick] [--full] [--seq 64] [--batch 2] [--lm-steps 300]
                                    [--reference-python PATH]

The HQKANsformer of the HQKAN paper (arXiv 2509.14026) is GPT-2 (12 layers, 768 wide, 12 heads)
whose MLP blocks (768 -> 3072 -> 768) become Linear(768, 10) -> QKAN([10, 10], reps 1) ->
Linear(10, 768); here that is ``replace_ffn(model, reps=1)`` on transformers' GPT2LMHeadModel
(no predicate: it finds the Conv1D MLPs). Two parts:

1. Step: parameters, the median forward+backward time of one training step (CPU and wall, the
   two models interleaved) and memory (parameters + gradients + the activations autograd saves;
   on CUDA the peak allocated) of the 12-layer, 768-wide model with a 65-character vocabulary
   (the published package's TinyShakespeare configuration: 29.4M parameters at sequence 1024).
   The CPU default shortens the sequence (--seq 64, --batch 2); --full runs sequence 1024, batch 1. With --reference-python, the published package's HQKANsformer
   block (its QKAN in a GPT-2 of the same shape) is timed beside it, where its solvers run here.
2. LM: a small GPT-2 (--lm-layers, --lm-width) trained with AdamW on the character corpus
   examples/corpus.txt (offline, shipped), MLP vs HQKAN, validation loss at equal steps.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _harness as h

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "examples" / "corpus.txt"


def _gpt2(layers: int, width: int, heads: int, vocab: int, positions: int, seed: int, hqkan: dict | None):
    """transformers' GPT2LMHeadModel (dropout off, for comparable timings); replace_ffn(**hqkan) when given."""
    import torch
    import transformers

    from qkan.hqkan import replace_ffn

    config = transformers.GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=width, n_layer=layers,
                                     n_head=heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     bos_token_id=0, eos_token_id=0)
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config)
    report = replace_ffn(model, **hqkan) if hqkan is not None else None
    if report is not None and len(report.replaced) != layers:
        raise RuntimeError(f"replace_ffn replaced {report.replaced}; expected the {layers} GPT-2 MLPs")
    return model, report


def _memory_mb(model, batch) -> float:
    """Parameters + gradients + the bytes of the tensors autograd saves for backward, in MB."""
    import torch

    saved: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**batch).loss
    loss.backward()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return (2 * params + sum(saved.values())) / 2**20


def _step_rows(args, device: str) -> list[dict]:
    import torch

    vocab = args.vocab
    layers, width, heads = (2, 64, 2) if args.quick else (12, 768, 12)
    models = {"gpt2 (MLP)": _gpt2(layers, width, heads, vocab, args.seq, 0, None),
              "gpt2 + replace_ffn (HQKAN)": _gpt2(layers, width, heads, vocab, args.seq, 0, {"reps": 1, "seed": 0})}
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (args.batch, args.seq), generator=g).to(device)
    batch = {"input_ids": ids, "labels": ids}
    sync = torch.cuda.synchronize if device == "cuda" else None
    rows = []
    for name, (model, report) in models.items():
        model.to(device).train()
        rows.append(dict(model=name, params=sum(p.numel() for p in model.parameters()),
                         ffn_params=report.ffn_params_after if report else None,
                         memory_mb=_memory_mb(model, batch)))

    def step(model):
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()

    repeats = 2 if args.quick else args.repeats
    timings = h.time_round_robin({name: (lambda m=m: step(m)) for name, (m, _) in models.items()}, repeats, sync=sync)
    base = timings["gpt2 (MLP)"]
    for row in rows:
        t = timings[row["model"]]
        row.update(**t.ms("step_"), cpu_speedup_vs_mlp=base.cpu_s / t.cpu_s, wall_speedup_vs_mlp=base.wall_s / t.wall_s)
    if device == "cuda":
        for row, (model, _) in zip(rows, models.values()):
            torch.cuda.reset_peak_memory_stats()
            step(model)
            row["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    ref = h.reference_python(args.reference_python)
    if ref:
        rows.append(_reference_row(ref, dict(layers=layers, width=width, heads=heads, vocab=vocab, seq=args.seq,
                                             batch=args.batch, repeats=repeats, device=device), args.threads))
    return rows


def _reference_row(python: str, config: dict, threads: int) -> dict:
    """Time the published package's HQKANsformer step in its own interpreter (benchmarks/_reference_hqkan.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg, out = Path(tmp) / "config.json", Path(tmp) / "out.json"
        cfg.write_text(json.dumps(config))
        script = Path(__file__).resolve().parent / "_reference_hqkan.py"
        proc = subprocess.run([python, "-I", str(script), str(cfg), str(out)], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)}, timeout=1800)
        result = json.loads(out.read_text()) if out.exists() else {"error": proc.stderr[-500:]}
    if "error" in result:
        print(f"note: the reference HQKANsformer did not run: {result['error']}", file=sys.stderr)
        return dict(model="published qkan HQKANsformer", note="skipped: " + result["error"][:200])
    return dict(model=f"published qkan HQKANsformer ({result['solver']})", params=result["params"],
                step_wall_ms=1e3 * result["wall_s"], step_cpu_ms=1e3 * result["cpu_s"], peak_mb=result.get("peak_mb"))


def _lm_rows(args) -> list[dict]:
    """Train a small character GPT-2 with and without HQKAN blocks for the same steps; validation loss."""
    import torch

    text = CORPUS.read_text(encoding="utf-8")
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    split = int(0.9 * len(ids))
    train, val = ids[:split], ids[split:]
    steps = 10 if args.quick else args.lm_steps
    layers, width = (1, 32) if args.quick else (args.lm_layers, args.lm_width)
    context, batch = (32, 8) if args.quick else (args.lm_context, args.lm_batch)

    def windows(data, n, g):
        starts = torch.randint(0, len(data) - context, (n,), generator=g)
        return torch.stack([data[s : s + context] for s in starts.tolist()])

    rows = []
    for name, hqkan in [("gpt2 (MLP)", None), ("gpt2 + replace_ffn (HQKAN)", {"reps": 1, "seed": 0})]:
        model, _ = _gpt2(layers, width, max(1, width // 64), len(chars), context, 0, hqkan)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lm_lr)
        g = torch.Generator().manual_seed(2)  # the same windows for both models
        model.train()
        with h.Stopwatch() as sw:
            for _ in range(steps):
                x = windows(train, batch, g)
                loss = model(input_ids=x, labels=x).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        gv = torch.Generator().manual_seed(3)
        with torch.no_grad():
            val_loss = sum(model(input_ids=(x := windows(val, batch, gv)), labels=x).loss.item() for _ in range(8)) / 8
        rows.append(dict(model=name, params=sum(p.numel() for p in model.parameters()), steps=steps,
                         train_loss=loss.item(), val_loss=val_loss, uniform_loss=math.log(len(chars)),
                         train_wall_s=sw.wall_s, train_cpu_s=sw.cpu_s))
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("hqkan_gpt2", __doc__, reference=True)
    parser.add_argument("--full", action="store_true", help="the published configuration: sequence 1024, batch 1")
    parser.add_argument("--seq", type=int, default=64, help="sequence length of the timed step (CPU default 64)")
    parser.add_argument("--batch", type=int, default=2, help="batch of the timed step")
    parser.add_argument("--vocab", type=int, default=65, help="vocabulary of the timed step (default 65 characters)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--parts", nargs="+", default=["step", "lm"], choices=["step", "lm"], help="what to run")
    parser.add_argument("--lm-steps", type=int, default=300)
    parser.add_argument("--lm-layers", type=int, default=4)
    parser.add_argument("--lm-width", type=int, default=128)
    parser.add_argument("--lm-context", type=int, default=64)
    parser.add_argument("--lm-batch", type=int, default=16)
    parser.add_argument("--lm-lr", type=float, default=1e-3)
    args = h.parse_args(parser, argv)
    if args.full:
        args.seq, args.batch = 1024, 1
    try:
        import transformers  # noqa: F401
    except ImportError:
        print('skipped: Hugging Face transformers is not installed (pip install "qkan-daruan[hf]")')
        return h.save(args, "hqkan_gpt2", [dict(model="skipped", note="transformers is not installed")])
    if args.quick:
        args.seq, args.batch = 16, 2
    step_rows = _step_rows(args, args.device) if "step" in args.parts else []
    lm_rows = _lm_rows(args) if "lm" in args.parts else []
    if step_rows:
        h.print_table(step_rows, [("model", "model", ""), ("params", "params", ","), ("memory_mb", "memory MB", ".1f"),
                                  ("step_cpu_ms", "step CPU ms", ".1f"), ("step_wall_ms", "step wall ms", ".1f"),
                                  ("cpu_speedup_vs_mlp", "CPU speedup", ".2f"), ("wall_speedup_vs_mlp", "wall speedup", ".2f")],
                      f"forward+backward step, batch {args.batch} x seq {args.seq}, {args.threads} thread(s), {args.device}")
    if lm_rows:
        h.print_table(lm_rows, [("model", "model", ""), ("params", "params", ","), ("steps", "steps", ""),
                                ("train_loss", "train loss", ".4f"), ("val_loss", "val loss", ".4f"),
                                ("train_cpu_s", "train CPU s", ".1f")],
                      f"character LM on examples/corpus.txt, lr {args.lm_lr:g} (uniform loss {lm_rows[0]['uniform_loss']:.3f})")
    return h.save(args, "hqkan_gpt2", [dict(part="step", **r) for r in step_rows] + [dict(part="lm", **r) for r in lm_rows])

if __name__ == "__main__":
    main()
