"""bf16 autocast for the closed-form (Fourier) QKAN layer: speed and error against float32.

For each layer size, one forward + backward of a QKANLayer (evaluator "fourier") runs in float32
and under ``torch.autocast(device, dtype=torch.bfloat16)`` side by side on the same parameters and
inputs. Reported: median times, the speed ratio, and the max |error| of the outputs and of the
theta gradient against float32 (absolute, and relative to the largest float32 value).

    python benchmarks/bf16.py            # full run
    python benchmarks/bf16.py --quick    # a few seconds
"""

from __future__ import annotations

import torch

import _harness as h
from qkan import QKANLayer


def _step(layer: QKANLayer, x: torch.Tensor, autocast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward + backward; returns (output as float32, theta gradient)."""
    layer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.float().square().mean().backward()
    return y.detach().float(), layer.theta.grad.detach().clone()


def run_case(device: str, in_dim: int, out_dim: int, reps: int, batch: int, repeat: int) -> dict:
    """Time and error of one layer size on one device (the two modes timed round-robin)."""
    layer = QKANLayer(in_dim, out_dim, reps, seed=0, evaluator="fourier", device=device)
    x = torch.rand(batch, in_dim, generator=torch.Generator().manual_seed(1)).mul(2).sub(1).to(device)
    y32, g32 = _step(layer, x, autocast=False)
    y16, g16 = _step(layer, x, autocast=True)
    sync = torch.cuda.synchronize if x.is_cuda else None
    t = h.time_round_robin({"fp32": lambda: _step(layer, x, False), "bf16": lambda: _step(layer, x, True)},
                           repeat, sync=sync)
    out_err = (y16 - y32).abs().max().item()
    grad_err = (g16 - g32).abs().max().item()
    return {
        "device": device, "size": f"{in_dim}x{out_dim}", "in_dim": in_dim, "out_dim": out_dim, "reps": reps,
        "batch": batch, **t["fp32"].ms("fp32_"), **t["bf16"].ms("bf16_"),
        "speedup": t["fp32"].wall_s / t["bf16"].wall_s, "cpu_speedup": t["fp32"].cpu_s / t["bf16"].cpu_s,
        "out_max_abs_err": out_err, "out_max_rel_err": out_err / y32.abs().max().item(),
        "grad_max_abs_err": grad_err, "grad_max_rel_err": grad_err / g32.abs().max().item(),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("bf16", __doc__)
    parser.add_argument("--reps", type=int, default=3, help="DARUAN repetitions R")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 4096, quick 512)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per case and mode (default 20, quick 5)")
    args = h.parse_args(parser, argv)
    sizes = [(16, 16), (64, 64)] if args.quick else [(16, 16), (64, 64), (256, 256)]
    batch = args.batch or (512 if args.quick else 4096)
    repeat = args.repeat or (5 if args.quick else 20)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = [run_case(d, i, o, args.reps, batch, repeat) for d in devices for i, o in sizes]
    h.print_table(rows, [("device", "device", ""), ("size", "in x out", ""), ("fp32_wall_ms", "fp32 ms", ".2f"),
                         ("bf16_wall_ms", "bf16 ms", ".2f"), ("speedup", "speedup", ".2f"),
                         ("cpu_speedup", "cpu speedup", ".2f"), ("out_max_rel_err", "out rel err", ".2e"),
                         ("grad_max_rel_err", "grad rel err", ".2e")],
                  f"QKANLayer fourier, R={args.reps}, batch={batch}, threads={args.threads}: forward + backward, "
                  f"median of {repeat}")
    return h.save(args, "bf16", rows)


if __name__ == "__main__":
    main()
