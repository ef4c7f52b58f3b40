"""Low-precision QKAN layers: bf16 / fp16 parameters and bf16 autocast against float32.

For each evaluator (closed form "fourier", "su2") and layer size, one forward + backward of a
QKANLayer runs in float32 and in each low-precision mode side by side on the same inputs:

    bf16, fp16     parameters and inputs stored in that dtype (the evaluators compute on float32
                   copies and the outputs are rounded back: QKANLayer.in_compute_precision)
    bf16-autocast  float32 parameters under torch.autocast(dtype=torch.bfloat16) (fourier only)

Reported per mode: median wall and CPU time, and the max |error| of the outputs and of the theta
gradient against float32, relative to the largest float32 value. The errors include rounding the
float32 parameters and inputs to the dtype, i.e. what a user storing a trained model in bf16 sees.

    python benchmarks/bf16.py            # full run
    python benchmarks/bf16.py --quick    # a few seconds
"""

from __future__ import annotations

import torch

import _harness as h
from qkan import QKANLayer

MODES = {"bf16": torch.bfloat16, "fp16": torch.float16, "bf16-autocast": torch.float32}


def _step(layer: QKANLayer, x: torch.Tensor, autocast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward + backward; returns (output as float32, theta gradient as float32)."""
    layer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.float().square().mean().backward()
    return y.detach().float(), layer.theta.grad.detach().float()


def run_case(device: str, evaluator: str, size: int, reps: int, batch: int, repeat: int) -> list[dict]:
    """Rows of one evaluator and layer size: every mode against float32, timed round-robin."""
    ref = QKANLayer(size, size, reps, seed=0, evaluator=evaluator, device=device)
    x = torch.rand(batch, size, generator=torch.Generator().manual_seed(1)).mul(2).sub(1).to(device)
    modes = {m: d for m, d in MODES.items() if not (m.endswith("autocast") and evaluator != "fourier")}
    layers = {"fp32": ref, **{m: QKANLayer(size, size, reps, seed=0, evaluator=evaluator, device=device) for m in modes}}
    for m, dtype in modes.items():
        layers[m].load_state_dict(ref.state_dict())
        layers[m].to(dtype)
    inputs = {"fp32": x, **{m: x.to(dtype) for m, dtype in modes.items()}}
    y32, g32 = _step(ref, x, False)
    steps = {m: (lambda m=m: _step(layers[m], inputs[m], m.endswith("autocast"))) for m in layers}
    sync = torch.cuda.synchronize if x.is_cuda else None
    t = h.time_round_robin(steps, repeat, sync=sync)
    rows = []
    for m in layers:
        y, g = steps[m]()
        rows.append({
            "device": device, "evaluator": evaluator, "size": f"{size}x{size}", "reps": reps, "batch": batch, "mode": m,
            **t[m].ms(), "slowdown": t[m].wall_s / t["fp32"].wall_s, "cpu_slowdown": t[m].cpu_s / t["fp32"].cpu_s,
            "out_max_rel_err": (y - y32).abs().max().item() / y32.abs().max().item(),
            "grad_max_rel_err": (g - g32).abs().max().item() / g32.abs().max().item(),
        })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("bf16", __doc__)
    parser.add_argument("--reps", type=int, default=3, help="DARUAN repetitions R")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 2048, quick 256)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per case and mode (default 5, quick 3)")
    args = h.parse_args(parser, argv)
    sizes = [16] if args.quick else [16, 64, 128]
    batch = args.batch or (256 if args.quick else 2048)
    repeat = args.repeat or (3 if args.quick else 5)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = [r for d in devices for ev in ("fourier", "su2") for s in sizes for r in run_case(d, ev, s, args.reps, batch, repeat)]
    h.print_table(rows, [("device", "device", ""), ("evaluator", "evaluator", ""), ("size", "in x out", ""),
                         ("mode", "mode", ""), ("wall_ms", "wall ms", ".2f"), ("cpu_ms", "cpu ms", ".2f"),
                         ("slowdown", "x fp32", ".2f"), ("cpu_slowdown", "cpu x fp32", ".2f"), ("out_max_rel_err", "out rel err", ".2e"),
                         ("grad_max_rel_err", "grad rel err", ".2e")],
                  f"QKANLayer, R={args.reps}, batch={batch}, threads={args.threads}: forward + backward, "
                  f"median of {repeat}; errors against float32")
    return h.save(args, "bf16", rows)


if __name__ == "__main__":
    main()
