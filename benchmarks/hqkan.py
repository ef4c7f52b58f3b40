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

import torch
from torch import nn

import _harness as h


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
    parser = h.make_parser("hqkan", __doc__)
    parser.add_argument("--d-model", type=int, default=768)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (after one warm-up round)")
    args = h.parse_args(parser, argv)
    if args.quick:  # two timed rounds of a quarter of the sequence
        args.repeats, args.seq = 2, 64

    blocks = _blocks(args.d_model)
    x = torch.randn(args.batch, args.seq, args.d_model, requires_grad=True)  # (B, T, d)
    times = h.time_round_robin({name: lambda b=block: _fwd_bwd(b, x) for name, block in blocks.items()}, args.repeats)
    mlp_name = next(iter(blocks))
    mlp_params = sum(p.numel() for p in blocks[mlp_name].parameters())
    rows = []
    for name, block in blocks.items():
        t = times[name]
        params = sum(p.numel() for p in block.parameters())
        rows.append(dict(block=name, params=params, param_reduction=mlp_params / params, **t.ms(),
                         tokens_per_s=args.batch * args.seq / t.wall_s, speedup=times[mlp_name].wall_s / t.wall_s,
                         cpu_speedup=times[mlp_name].cpu_s / t.cpu_s))
    h.print_table(rows, [("block", "block", ""), ("params", "params", ","), ("param_reduction", "x fewer", ".0f"),
                         ("wall_ms", "ms", ".1f"), ("cpu_ms", "cpu ms", ".1f"), ("tokens_per_s", "tokens/s", ",.0f"),
                         ("speedup", "speedup", ".1f"), ("cpu_speedup", "cpu speedup", ".1f")],
                  f"FFN forward+backward, x ({args.batch}, {args.seq}, {args.d_model}) float32, "
                  f"{args.threads} threads, CPU, median of {args.repeats}")
    return h.save(args, "hqkan", rows)


if __name__ == "__main__":
    main()
