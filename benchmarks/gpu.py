"""GPU timings of the published package's headline configurations, ours beside theirs.

    python benchmarks/gpu.py [--quick] [--reference-python PATH] [--steps 20]

Two configurations, on CUDA:

- small fit: QKAN([2, 5, 1], reps 3) on 1000 samples (the size of the quickstart fits):
  forward and one Adam training step.
- GPT-2 HQKANsformer: transformers' GPT-2 (12 layers, 768 wide, 12 heads, sequence 1024,
  batch 1, a 65-character vocabulary; about 29.4M parameters) after qkan.replace_ffn(reps=1),
  so every MLP is Linear(768, 10) -> QKAN([10, 10]) -> Linear(10, 768): one AdamW step
  (forward, backward, optimizer), float32 and bfloat16 (autocast), with the peak memory.

With --reference-python, the published package's HQKANsformer (its fastest solver that loads)
runs the same step in its own interpreter (benchmarks/_reference_hqkan.py). Without CUDA the
script prints a line and writes JSON saying it was skipped. --quick shrinks every size.
"""

from __future__ import annotations

import _harness as h
from hqkan_gpt2 import _gpt2, _reference_row


def _small_fit(quick: bool, repeats: int) -> list[dict]:
    import torch

    from qkan import QKAN

    n = 64 if quick else 1000
    model = QKAN([2, 5, 1], reps=3, seed=0, device="cuda")
    x, y = torch.rand(n, 2, device="cuda") * 2 - 1, torch.rand(n, 1, device="cuda")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def forward():
        with torch.no_grad():
            model(x)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    t = h.time_round_robin({"forward": forward, "step": step}, repeats, warmup=3, sync=torch.cuda.synchronize)
    return [dict(config="small fit [2,5,1] reps 3", dtype="float32", what=k, wall_ms=1e3 * v.wall_s, cpu_ms=1e3 * v.cpu_s)
            for k, v in t.items()]


def _gpt2_step(quick: bool, repeats: int, dtype_name: str) -> dict:
    import torch

    layers, width, heads, seq = (2, 64, 2, 32) if quick else (12, 768, 12, 1024)
    model, _ = _gpt2(layers, width, heads, 65, seq, 0, {"reps": 1, "seed": 0})
    model.to("cuda").train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    ids = torch.randint(0, 65, (1, seq), device="cuda")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()

    t = h.time_fn(step, repeats, warmup=3, sync=torch.cuda.synchronize)
    torch.cuda.reset_peak_memory_stats()
    step()
    return dict(config=f"GPT-2 HQKANsformer {layers}x{width} seq {seq}", dtype=dtype_name, what="AdamW step",
                params=sum(p.numel() for p in model.parameters()), wall_ms=1e3 * t.wall_s, cpu_ms=1e3 * t.cpu_s,
                peak_mb=torch.cuda.max_memory_allocated() / 2**20)


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("gpu", __doc__, reference=True)
    parser.add_argument("--steps", type=int, default=20, help="timed repeats per configuration")
    args = h.parse_args(parser, argv)
    import torch

    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return h.save(args, "gpu", [dict(config="all", skipped="no CUDA device")], skipped=True)
    repeats = 3 if args.quick else args.steps
    rows = _small_fit(args.quick, repeats)
    try:
        import transformers  # noqa: F401

        rows += [_gpt2_step(args.quick, repeats, d) for d in ("float32", "bfloat16")]
    except ImportError:
        print('note: the GPT-2 rows need transformers (pip install "qkan-daruan[hf]")')
    ref = h.reference_python(args.reference_python)
    if ref:
        layers, width, heads, seq = (2, 64, 2, 32) if args.quick else (12, 768, 12, 1024)
        for dtype in ("float32", "bfloat16"):
            row = _reference_row(ref, dict(layers=layers, width=width, heads=heads, vocab=65, seq=seq, batch=1,
                                           repeats=repeats, device="cuda", dtype=dtype), args.threads)
            rows.append(dict(config=row.pop("model"), dtype=dtype, what="fwd+bwd step",
                             wall_ms=row.pop("step_wall_ms", None), cpu_ms=row.pop("step_cpu_ms", None), **row))
    h.print_table(rows, [("config", "config", ""), ("dtype", "dtype", ""), ("what", "what", ""),
                         ("params", "params", ","), ("wall_ms", "wall ms", ".2f"), ("cpu_ms", "CPU ms", ".2f"),
                         ("peak_mb", "peak MB", ".0f")], f"CUDA: {torch.cuda.get_device_name()}")
    return h.save(args, "gpu", rows, device=torch.cuda.get_device_name())


if __name__ == "__main__":
    main()
