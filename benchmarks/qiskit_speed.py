"""Qiskit evaluator speed: a 4->4 QKAN layer (R=3, pz) with a batch of 64 on Aer.

Modes, measured side by side in one run:

- BackendEstimatorV2 (before): qiskit's generic estimator on Aer with `--shots`, one circuit
  per parameter set (the shots path before the binomial route), through qkan's estimator route,
- aer circuits + binomial: Aer computes exact values of packed circuits (64 edge circuits per
  circuit, matrix_product_state), binomial shots drawn from them (product_simulation=False),
- qubit by qubit + binomial (the default): the packed circuit's qubits simulated one by one from
  Pauli transfer matrices, the same binomial shots (the same distribution),
- qubit by qubit exact: no shots,
- closed form: qkan's Fourier evaluator (no circuits), for scale.

For each: circuits (executed parameter sets) and jobs per forward and per backward, forward and
backward wall and CPU time, the CPU ratio against the BackendEstimatorV2 row, and for shot rows
the z-score spread of the forward values against the closed form (std 1 when shots are honest).
The input requires grad, so the backward shifts theta (8 angles) and the 3 encoded angles of
every (sample, edge): 2 * 11 * B * 16 parameter sets.

    python benchmarks/qiskit_speed.py [--quick] [--threads 1] [--shots 1024]
"""

from __future__ import annotations

import torch

import _harness as h

__all__ = ["main"]


def _measure(layer, x: torch.Tensor, repeats: int, exact: torch.Tensor, shots: int | None) -> dict:
    """Median forward and backward wall/CPU times (s) and the circuits/jobs each used.

    Circuit and job counts are read from the layer's evaluator where it keeps them (Qiskit's);
    the closed form runs no circuits.
    """
    ev = layer.get_evaluator()
    counted = hasattr(ev, "circuits_submitted")
    counts = lambda: (ev.circuits_submitted, ev.jobs_submitted) if counted else (0, 0)  # noqa: E731
    layer(x[:2]).square().sum().backward()  # warm-up (transpilation, caches) on two samples
    fwd, bwd = [], []
    for _ in range(repeats):
        c0 = counts()
        with h.Stopwatch() as f:
            y = layer(x)
        c1 = counts()
        with h.Stopwatch() as b:
            y.square().sum().backward()
        c2 = counts()
        fwd.append(f)
        bwd.append(b)
    fwd, bwd = h.Timing.median(fwd), h.Timing.median(bwd)
    row = {
        "forward_s": fwd.wall_s, "backward_s": bwd.wall_s, "forward_cpu_s": fwd.cpu_s, "backward_cpu_s": bwd.cpu_s,
        "circuits_forward": c1[0] - c0[0], "jobs_forward": c1[1] - c0[1],
        "circuits_backward": c2[0] - c1[0], "jobs_backward": c2[1] - c1[1],
    }  # fmt: skip
    if shots:  # one more forward, untimed: its edge values against the closed form
        edges = ev.edge_outputs(layer, x.detach()).detach()
        z = (edges - exact) / torch.sqrt((1 - exact**2) / shots)
        row["z_std"], row["z_values"] = z.std().item(), z.numel()
    total = row["circuits_forward"] + row["circuits_backward"]
    row["circuits_per_s"] = total / (row["forward_s"] + row["backward_s"]) if total else None
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("qiskit_speed", __doc__)
    parser.add_argument("--batch", type=int, default=None, help="samples (default 64; quick 2)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs after one warm-up")
    parser.add_argument("--seed", type=int, default=0)
    args = h.parse_args(parser, argv)
    batch = args.batch or (2 if args.quick else 64)

    from qkan import QKANLayer

    gen = torch.Generator().manual_seed(args.seed)
    x = (torch.rand(batch, 4, generator=gen, dtype=torch.float64) * 2 - 1).requires_grad_()
    from qiskit.primitives import BackendEstimatorV2
    from qiskit_aer import AerSimulator

    def before():
        return BackendEstimatorV2(backend=AerSimulator(max_parallel_threads=args.threads))

    shots = {"threads": args.threads, "shots": args.shots, "seed": args.seed}
    modes = {
        "BackendEstimatorV2 (before)": lambda: {"backend": before(), "shots": args.shots, "seed": args.seed},
        "aer circuits + binomial": lambda: {**shots, "product_simulation": False},
        "qubit by qubit + binomial": lambda: shots,
        "qubit by qubit exact": lambda: {"threads": args.threads},
        "closed form": lambda: None,
    }
    rows = []
    for name, options in modes.items():
        layer = QKANLayer(4, 4, args.reps, seed=args.seed, dtype=torch.float64)
        exact = layer.edge_outputs(x.detach()).detach()
        if options() is not None:
            layer.set_evaluator("qiskit", progress=False, **options())
        rows.append({"mode": name, **_measure(layer, x, args.repeats, exact, "shots" in (options() or {}) and args.shots)})
    base = rows[0]["forward_cpu_s"] + rows[0]["backward_cpu_s"]
    for row in rows:
        row["cpu_ratio_vs_before"] = base / (row["forward_cpu_s"] + row["backward_cpu_s"])

    h.print_table(rows, [("mode", "mode", ""), ("circuits_forward", "circ/fwd", ""), ("jobs_forward", "jobs/fwd", ""),
                         ("forward_s", "fwd [s]", ".4f"), ("circuits_backward", "circ/bwd", ""),
                         ("jobs_backward", "jobs/bwd", ""), ("backward_s", "bwd [s]", ".4f"),
                         ("forward_cpu_s", "fwd cpu", ".3f"), ("backward_cpu_s", "bwd cpu", ".3f"),
                         ("cpu_ratio_vs_before", "x less CPU", ".1f"), ("z_std", "z std", ".3f")],
                  f"QKANLayer 4->4, reps={args.reps}, pz, batch={batch}, float64, {args.threads} thread(s), "
                  f"median of {args.repeats}")
    return h.save(args, "qiskit_speed", rows)


if __name__ == "__main__":
    main()
