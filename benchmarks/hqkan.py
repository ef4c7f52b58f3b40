"""Transformer feed-forward block on CPU: MLP (768 -> 3072 -> 768, GELU) vs HQKAN (768 -> 10 -> 768).

    python benchmarks/hqkan.py [--quick] [--threads 1] [--d-model 768] [--seq 256] [--batch 8]

Forward + backward (gradients to the input and every parameter) of one block on a
(batch, seq, d) float32 input, GPT-2 small's shape by default. The rows are timed round-robin,
one call of each per round, so machine load hits all of them alike; the table gives the median
per row, its parameters and the speed-up over the MLP.

One thread by default: the HQKAN block is many small ops, and on a loaded 2-core machine two
OpenMP threads spinning against other processes made it ~20x slower (984 ms vs 45 ms) while the
MLP's large GEMMs gained nothing (1903 ms vs 1849 ms); pass --threads to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from torch import nn

RESULTS = Path(__file__).resolve().parent / "results"


def _blocks(d: int) -> dict[str, nn.Module]:
    from qkan.hqkan import HQKAN

    torch.manual_seed(0)
    return {
        f"mlp {d}->{4 * d}->{d} gelu": nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)),
        "hqkan reps=3": HQKAN(d, d, reps=3, seed=0),
        "hqkan reps=1": HQKAN(d, d, reps=1, seed=0),
        "hqkan reps=3, core [10,10,10]": HQKAN(d, d, hidden=[10], reps=3, seed=0),
    }


def _fwd_bwd(block: nn.Module, x: torch.Tensor) -> None:
    block.zero_grad(set_to_none=True)
    x.grad = None
    block(x).sum().backward()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two timed rounds instead of ten")
    parser.add_argument("--d-model", type=int, default=768)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (after one warm-up round)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 2
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)

    blocks = _blocks(args.d_model)
    x = torch.randn(args.batch, args.seq, args.d_model, requires_grad=True)  # (B, T, d)
    times: dict[str, list[float]] = {name: [] for name in blocks}
    for round_ in range(args.repeats + 1):
        for name, block in blocks.items():
            start = time.perf_counter()
            _fwd_bwd(block, x)
            if round_:  # round 0 warms up
                times[name].append(time.perf_counter() - start)
    mlp_name = next(iter(blocks))
    mlp_time = statistics.median(times[mlp_name])
    mlp_params = sum(p.numel() for p in blocks[mlp_name].parameters())
    rows = []
    for name, block in blocks.items():
        t = statistics.median(times[name])
        params = sum(p.numel() for p in block.parameters())
        rows.append(dict(block=name, params=params, param_reduction=mlp_params / params, seconds=t,
                         tokens_per_s=args.batch * args.seq / t, speedup=mlp_time / t))

    print(f"FFN forward+backward, x ({args.batch}, {args.seq}, {args.d_model}) float32, "
          f"{args.threads} threads, CPU, median of {args.repeats}")
    header = f"{'block':<32}{'params':>12}{'x fewer':>9}{'ms':>10}{'tokens/s':>12}{'speedup':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['block']:<32}{r['params']:>12,}{r['param_reduction']:>9.0f}{1e3 * r['seconds']:>10.1f}"
              f"{r['tokens_per_s']:>12,.0f}{r['speedup']:>9.1f}")
    result = dict(benchmark="hqkan", config=vars(args), torch=torch.__version__, rows=rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "hqkan.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
