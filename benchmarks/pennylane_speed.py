"""PennyLane evaluator speed: one broadcast execution per layer vs one QNode call per edge.

A 4->4 QKAN layer (R=3, pz, fixed encoding) with a batch of 64, forward + backward, on
default.qubit (backprop; parameter-shift) and lightning.qubit (adjoint). Three ways to get the
same numbers:

- broadcast: qkan's "pennylane" evaluator (all N*O*I circuits in one broadcast tape),
- per-edge loop: one QNode call per edge with the batch broadcast over samples, as the
  published qkan package does (written here; the QNode is built once, which favours the loop),
- closed form: qkan's Fourier evaluator (no circuits).

Every circuit number comes from circuits PennyLane executes on the named device. Times are
medians after a warm-up; ratios use CPU time (steadier than wall time on a shared machine).

    python benchmarks/pennylane_speed.py [--quick] [--threads 1]
"""

from __future__ import annotations

import torch

import _harness as h

__all__ = ["main"]


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
    parser = h.make_parser("pennylane_speed", __doc__)
    parser.add_argument("--batch", type=int, default=None, help="samples (default 64; quick 16)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 30; quick 3)")
    args = h.parse_args(parser, argv)

    import pennylane as qml

    from qkan import QKANLayer

    repeats = args.repeats or (3 if args.quick else 30)
    devices = [("default.qubit", "backprop")]
    if not args.quick:  # parameter-shift: qkan's batched rule vs PennyLane's per QNode call
        devices += [("default.qubit", "parameter-shift"), ("lightning.qubit", "adjoint")]
    batch = args.batch or (16 if args.quick else 64)
    layer = QKANLayer(4, 4, reps=3, seed=0)
    x = torch.rand(batch, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1

    rows = []
    layer.set_evaluator("fourier")
    closed = h.time_fn(_step(layer, layer, x), repeats * 4)
    for device, diff_method in devices:
        layer.set_evaluator("pennylane", device=device, diff_method=diff_method)
        y_broadcast = layer(x).detach()
        slow = device != "default.qubit" or diff_method != "backprop"  # lightning: one tape per circuit
        broadcast = h.time_fn(_step(layer, layer, x), 3 if slow else repeats)
        loop = _per_edge_loop(layer, device, diff_method)
        y_loop = loop(x).detach()
        per_edge = h.time_fn(_step(layer, loop, x), 3 if slow else max(3, repeats // 3))
        rows.append(dict(
            device=device, diff_method=diff_method,
            **broadcast.ms("broadcast_"), **per_edge.ms("per_edge_loop_"), **closed.ms("closed_form_"),
            loop_over_broadcast=per_edge.cpu_s / broadcast.cpu_s,
            broadcast_over_closed_form=broadcast.cpu_s / closed.cpu_s,
            max_abs_diff_broadcast_vs_loop=float((y_broadcast - y_loop).abs().max()),
        ))  # fmt: skip
    layer.set_evaluator("auto")

    h.print_table(rows, [("device", "device", ""), ("diff_method", "diff", ""),
                         ("broadcast_cpu_ms", "broadcast cpu ms", ".2f"), ("broadcast_wall_ms", "wall", ".2f"),
                         ("per_edge_loop_cpu_ms", "per-edge loop cpu ms", ".2f"), ("per_edge_loop_wall_ms", "wall", ".2f"),
                         ("closed_form_cpu_ms", "closed form cpu ms", ".2f"), ("closed_form_wall_ms", "wall", ".2f"),
                         ("loop_over_broadcast", "loop/bcast", ".1f"), ("broadcast_over_closed_form", "bcast/closed", ".0f")],
                  f"QKAN layer 4->4, R=3, batch {batch}, forward+backward, float32, {args.threads} thread(s), "
                  f"median times; ratios from CPU time")
    return h.save(args, "pennylane_speed", rows, pennylane=qml.__version__,
                  layer=dict(in_dim=4, out_dim=4, reps=3, ansatz="pz", batch=batch), repeats=repeats)


if __name__ == "__main__":
    main()
