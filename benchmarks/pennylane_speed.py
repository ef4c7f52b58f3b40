"""PennyLane evaluator speed: one broadcast execution per layer vs one QNode call per edge.

A 4->4 QKAN layer (R=3, pz, fixed encoding) with a batch of 64, forward + backward, on
default.qubit (backprop; parameter-shift) and lightning.qubit (adjoint). Three ways to get the
same numbers:

- broadcast: qkan's "pennylane" evaluator (all N*O*I circuits in one broadcast tape),
- per-edge loop: one QNode call per edge with the batch broadcast over samples, as the
  published qkan package does (written here; the QNode is built once, which favours the loop),
- closed form: qkan's Fourier evaluator (no circuits).

Every circuit number comes from circuits PennyLane executes on the named device.

    python benchmarks/pennylane_speed.py [--quick] [--threads 1]
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

RESULTS = Path(__file__).resolve().parent / "results" / "pennylane_speed.json"


def _time(fn, repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time (process_time) of fn() in ms, after one warm-up call.

    On a shared machine other processes only ever add wall time; CPU time of this (single
    threaded) process is the less disturbed measure, so ratios use it.
    """
    fn()
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall * 1e3, cpu * 1e3


def _per_edge_loop(layer, device: str, diff_method: str):
    """The naive approach: one QNode call per edge (j, i), broadcast over the samples only."""
    import pennylane as qml

    from qkan.circuits.pennylane import daruan_qfunc

    dev = qml.device(device, wires=1)

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def edge(x_i, theta_ji):
        daruan_qfunc(layer.ansatz, theta_ji, [x_i] * layer.reps, 0)
        return qml.expval(qml.PauliZ(0))

    def forward(x):
        f = [[edge(x[:, i], layer.theta[j, i]) for i in range(layer.in_dim)] for j in range(layer.out_dim)]
        f = torch.stack([torch.stack(row, dim=-1) for row in f], dim=1).to(x.dtype)  # (N, O, I)
        return layer.combine_edges(f, x)

    return forward


def _step(layer, forward, x):
    """One forward + backward pass."""

    def run():
        layer.zero_grad(set_to_none=True)
        forward(x).sum().backward()

    return run


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table and write benchmarks/results/pennylane_speed.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and only default.qubit (well under a minute)")
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads (default 1)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)

    import pennylane as qml

    from qkan import QKANLayer

    # best-of-n timings: a shared machine only ever adds time; circuits are cheap to repeat
    repeats = args.repeats or (10 if args.quick else 30)
    devices = [("default.qubit", "backprop")]
    if not args.quick:  # parameter-shift: qkan's batched rule vs PennyLane's per QNode call
        devices += [("default.qubit", "parameter-shift"), ("lightning.qubit", "adjoint")]
    layer = QKANLayer(4, 4, reps=3, seed=0)
    x = torch.rand(args.batch, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1

    rows = []
    layer.set_evaluator("fourier")
    closed_wall, closed_cpu = _time(_step(layer, layer, x), repeats * 4)
    for device, diff_method in devices:
        layer.set_evaluator("pennylane", device=device, diff_method=diff_method)
        y_broadcast = layer(x).detach()
        slow = device != "default.qubit" or diff_method != "backprop"  # lightning: one tape per circuit
        broadcast_wall, broadcast_cpu = _time(_step(layer, layer, x), 3 if slow else repeats)
        loop = _per_edge_loop(layer, device, diff_method)
        y_loop = loop(x).detach()
        loop_wall, loop_cpu = _time(_step(layer, loop, x), 3 if slow else max(3, repeats // 3))
        rows.append(
            dict(
                device=device,
                diff_method=diff_method,
                broadcast_cpu_ms=broadcast_cpu,
                per_edge_loop_cpu_ms=loop_cpu,
                closed_form_cpu_ms=closed_cpu,
                broadcast_wall_ms=broadcast_wall,
                per_edge_loop_wall_ms=loop_wall,
                closed_form_wall_ms=closed_wall,
                loop_over_broadcast=loop_cpu / broadcast_cpu,
                broadcast_over_closed_form=broadcast_cpu / closed_cpu,
                max_abs_diff_broadcast_vs_loop=float((y_broadcast - y_loop).abs().max()),
            )
        )
    layer.set_evaluator("auto")

    print(f"QKAN layer 4->4, R=3, batch {args.batch}, forward+backward, float32, {args.threads} thread(s)")
    print("best CPU time in ms (best wall time in brackets); ratios from CPU time")
    header = f"{'device':<16} {'diff':<15} {'broadcast':>17} {'per-edge loop':>17} {'closed form':>15} {'loop/bcast':>10} {'bcast/closed':>12}"
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = [
            f"{r[k + '_cpu_ms']:.2f} ({r[k + '_wall_ms']:.2f})" for k in ("broadcast", "per_edge_loop", "closed_form")
        ]
        print(
            f"{r['device']:<16} {r['diff_method']:<15} {cells[0]:>17} {cells[1]:>17} {cells[2]:>15} "
            f"{r['loop_over_broadcast']:>9.1f}x {r['broadcast_over_closed_form']:>11.0f}x"
        )
    result = dict(
        benchmark="pennylane_speed",
        layer=dict(in_dim=4, out_dim=4, reps=3, ansatz="pz", batch=args.batch),
        threads=args.threads,
        repeats=repeats,
        pennylane=qml.__version__,
        torch=torch.__version__,
        machine=platform.processor() or platform.machine(),
        rows=rows,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
