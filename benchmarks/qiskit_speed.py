"""Qiskit evaluator speed: a 4->4 QKAN layer (R=3, pz) with a batch of 64 on Aer.

Modes, measured side by side in one run:

- aer exact:  Aer's EstimatorV2, statevector, precision 0 (shots=None),
- aer shots:  Aer through BackendEstimatorV2 with `--shots` shots per value,
- closed form: qkan's Fourier evaluator (no circuits), for scale.

For each: circuits (parameter sets) and jobs per forward and per backward, forward and
backward wall time, and circuits per second. The input requires grad, so the backward shifts
theta (8 angles) and the 3 encoded angles of every (sample, edge): 2 * 11 * B * 16 circuits.

    python benchmarks/qiskit_speed.py [--quick] [--threads 1] [--shots 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results" / "qiskit_speed.json"


def _measure(layer, x: torch.Tensor, repeats: int) -> dict:
    """Best-of-`repeats` forward and backward wall times (s) and the circuits/jobs each used."""
    ev = layer._evaluator
    counts = lambda: (ev.circuits_submitted, ev.jobs_submitted) if ev is not None else (0, 0)  # noqa: E731
    fwd = bwd = float("inf")
    for _ in range(repeats):
        c0 = counts()
        t0 = time.perf_counter()
        y = layer(x)
        t1 = time.perf_counter()
        c1 = counts()
        y.square().sum().backward()
        t2 = time.perf_counter()
        c2 = counts()
        fwd, bwd = min(fwd, t1 - t0), min(bwd, t2 - t1)
    row = {
        "forward_s": fwd,
        "backward_s": bwd,
        "circuits_forward": c1[0] - c0[0],
        "jobs_forward": c1[1] - c0[1],
        "circuits_backward": c2[0] - c1[0],
        "jobs_backward": c2[1] - c1[1],
    }
    total = row["circuits_forward"] + row["circuits_backward"]
    row["circuits_per_s"] = total / (fwd + bwd) if total else None
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 8")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch = 8
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)

    from qkan import QKANLayer

    gen = torch.Generator().manual_seed(args.seed)
    x = (torch.rand(args.batch, 4, generator=gen, dtype=torch.float64) * 2 - 1).requires_grad_()
    modes = {
        "aer exact": {"threads": args.threads},
        f"aer shots={args.shots}": {"threads": args.threads, "shots": args.shots, "seed": args.seed},
        "closed form": None,
    }
    rows = {}
    for name, options in modes.items():
        layer = QKANLayer(4, 4, args.reps, seed=args.seed, dtype=torch.float64)
        if options is not None:
            layer.set_evaluator("qiskit", **options)
        rows[name] = _measure(layer, x, args.repeats)

    print(f"QKANLayer 4->4, reps={args.reps}, pz, batch={args.batch}, float64, {args.threads} thread(s), "
          f"best of {args.repeats}")
    head = ["mode", "circ/fwd", "jobs/fwd", "fwd [s]", "circ/bwd", "jobs/bwd", "bwd [s]", "circ/s"]
    print(f"{head[0]:<16}" + "".join(f"{h:>10}" for h in head[1:]))
    for name, r in rows.items():
        rate = f"{r['circuits_per_s']:.0f}" if r["circuits_per_s"] else "-"
        print(f"{name:<16}{r['circuits_forward']:>10}{r['jobs_forward']:>10}{r['forward_s']:>10.4f}"
              f"{r['circuits_backward']:>10}{r['jobs_backward']:>10}{r['backward_s']:>10.4f}{rate:>10}")
    result = {"args": vars(args), "machine": platform.platform(), "processor": platform.processor(), "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
