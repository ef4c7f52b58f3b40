"""bf16 autocast for the closed-form (Fourier) QKAN layer: speed and error against float32.

For each layer size, one forward + backward of a QKANLayer (evaluator "fourier") runs in float32
and under ``torch.autocast(device, dtype=torch.bfloat16)`` side by side on the same parameters and
inputs. Reported: median times, the speed ratio, and the max |error| of the outputs and of the
theta gradient against float32 (absolute, and relative to the largest float32 value).

    python benchmarks/bf16.py            # full run
    python benchmarks/bf16.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from qkan import QKANLayer

RESULTS = Path(__file__).with_name("results") / "bf16.json"


def _step(layer: QKANLayer, x: torch.Tensor, autocast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward + backward; returns (output as float32, theta gradient)."""
    layer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        y = layer(x)
    y.float().square().mean().backward()
    return y.detach().float(), layer.theta.grad.detach().clone()


def _timed(layer: QKANLayer, x: torch.Tensor, repeat: int) -> tuple[float, float]:
    """Median seconds of one forward + backward in (float32, bf16 autocast).

    The two modes alternate run by run, so load from other processes hits both alike.
    """
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeat):
        for autocast in (False, True):
            if x.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            _step(layer, x, autocast)
            if x.is_cuda:
                torch.cuda.synchronize()
            times[autocast].append(time.perf_counter() - start)
    return statistics.median(times[False]), statistics.median(times[True])


def run_case(device: str, in_dim: int, out_dim: int, reps: int, batch: int, repeat: int) -> dict:
    """Time and error of one layer size on one device."""
    layer = QKANLayer(in_dim, out_dim, reps, seed=0, evaluator="fourier", device=device)
    x = torch.rand(batch, in_dim, generator=torch.Generator().manual_seed(1)).mul(2).sub(1).to(device)
    y32, g32 = _step(layer, x, autocast=False)  # also the warm-up of both modes
    y16, g16 = _step(layer, x, autocast=True)
    t32, t16 = _timed(layer, x, repeat)
    out_err = (y16 - y32).abs().max().item()
    grad_err = (g16 - g32).abs().max().item()
    return {
        "device": device, "in_dim": in_dim, "out_dim": out_dim, "reps": reps, "batch": batch,
        "fp32_ms": 1e3 * t32, "bf16_ms": 1e3 * t16, "speedup": t32 / t16,
        "out_max_abs_err": out_err, "out_max_rel_err": out_err / y32.abs().max().item(),
        "grad_max_abs_err": grad_err, "grad_max_rel_err": grad_err / g32.abs().max().item(),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    parser.add_argument("--reps", type=int, default=3, help="DARUAN repetitions R")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 4096, quick 512)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per case and mode (default 20, quick 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON output file")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    sizes = [(16, 16), (64, 64)] if args.quick else [(16, 16), (64, 64), (256, 256)]
    batch = args.batch or (512 if args.quick else 4096)
    repeat = args.repeat or (5 if args.quick else 20)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = [run_case(d, i, o, args.reps, batch, repeat) for d in devices for i, o in sizes]
    header = f"{'device':6} {'in x out':>10} {'fp32 ms':>9} {'bf16 ms':>9} {'speedup':>8} {'out rel err':>12} {'grad rel err':>13}"
    print(f"QKANLayer fourier, R={args.reps}, batch={batch}, threads={args.threads}: forward + backward")
    print(header)
    for r in rows:
        print(
            f"{r['device']:6} {str(r['in_dim']) + 'x' + str(r['out_dim']):>10} {r['fp32_ms']:9.2f} {r['bf16_ms']:9.2f} "
            f"{r['speedup']:8.2f} {r['out_max_rel_err']:12.2e} {r['grad_max_rel_err']:13.2e}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": args.threads, "quick": args.quick}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
