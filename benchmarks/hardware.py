"""Hardware paths of the Qiskit evaluator: packing, calibrated qubits and mitigation on fake IBM backends.

Two parts, each measured side by side in one run:

- packing on FakeSherbrooke (127 qubits): a 4->4 layer (R=3) forward, unpacked (one edge
  circuit per circuit, the transpiler's qubit) and pack="auto" with initial_layout="auto" (the
  "auto" rule: readout error <= the chip median, no sx/x outliers), each simulated qubit by
  qubit (the default on local backends) and through qiskit-ibm-runtime's local mode (its
  sampler on the fake's noisy Aer, product_simulation=False: the route of real backends).
  Rows: executed parameter sets per forward, their ratio, the chosen qubits' mean readout
  error against the chip's median, CPU and wall time of later forwards (median of `--repeats`;
  one for the runtime rows), the first call's wall. `--quick` skips the runtime rows.
- the README's example: QKAN [2, 3, 1] forward + backward on a fresh FakeSherbrooke
  (`--readme-runtime` adds the runtime route, minutes).
- KANQAS circuits (kanqas.hardware): Bell and GHZ-3 fidelity and the H2 energy of the textbook
  circuits on FakeManilaV2 and FakeSherbrooke (quick: Manila only), raw and readout-mitigated
  with shot standard errors, against the noiseless values.
- mitigation on FakeManilaV2's noise (AerSimulator.from_backend, exact noisy values + binomial
  shots, `--mit-shots` shots): a [2, 2, 1] QKAN trained in closed form, its first layer's edge
  values raw, with readout inversion, and with readout + ZNE (1, 3, 5 folds, linear
  extrapolation, 2 repeats). Rows: mean |f - f_exact| and its ratio to the raw error.

    python benchmarks/hardware.py [--quick] [--threads 1]
"""

from __future__ import annotations

import numpy as np
import torch

import _harness as h

__all__ = ["main"]


def _packing_rows(args) -> list[dict]:
    from qiskit_ibm_runtime.fake_provider import FakeSherbrooke

    from qkan import QKANLayer
    from qkan.simulators.hardware.layout import qubit_calibration, rank_qubits

    fake = FakeSherbrooke()
    readout = qubit_calibration(fake.target)["readout"]
    median = float(np.median(readout[rank_qubits(fake.target, args.reps)]))
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.pack_batch, 4, generator=gen, dtype=torch.float64) * 2 - 1
    auto = {"pack": "auto", "initial_layout": "auto"}
    modes = {"unpacked, qubit by qubit": {}, "pack+layout auto, qubit by qubit": auto}
    if not args.quick:  # minutes: the runtime's sampler on 127-qubit circuits
        modes.update({"unpacked, runtime local mode": {"product_simulation": False},
                      "pack+layout auto, runtime local mode": {**auto, "product_simulation": False}})
    rows = []
    for name, options in modes.items():
        layer = QKANLayer(4, 4, args.reps, seed=args.seed, dtype=torch.float64)
        layer.set_evaluator("qiskit", backend=fake, shots=args.pack_shots, seed=args.seed, progress=False, **options)
        ev = layer.get_evaluator()
        with torch.no_grad():
            with h.Stopwatch() as cold:  # transpiles, and builds the noise model on the first row
                layer(x)
            sets = ev.circuits_submitted
            runs = []
            for _ in range(1 if "runtime" in name else args.repeats):
                with h.Stopwatch() as run:
                    layer(x)
                runs.append(run)
            sw = h.Timing.median(runs)
        rows.append({"mode": name, "parameter_sets_forward": sets, "qubits": len(ev.physical_qubits),
                     "mean_readout": float(np.mean(readout[ev.physical_qubits])), "chip_median_readout": median,
                     "cold_wall_s": cold.wall_s, "wall_s": sw.wall_s, "cpu_s": sw.cpu_s})
    for row in rows:
        row["fewer_sets"] = rows[0]["parameter_sets_forward"] / row["parameter_sets_forward"]
        row["cpu_vs_unpacked"] = row["cpu_s"] / rows[0]["cpu_s"]
    return rows


def _readme_rows(args) -> list[dict]:
    """The README's FakeSherbrooke example: QKAN [2, 3, 1], reps 2, forward + backward, from a fresh backend."""
    from qiskit_ibm_runtime.fake_provider import FakeSherbrooke

    import qkan

    x = torch.rand(args.readme_batch, 2, generator=torch.Generator().manual_seed(args.seed)) * 2 - 1
    rows = []
    for name, extra in {"qubit by qubit": {}, "runtime local mode": {"product_simulation": False}}.items():
        if extra and not args.readme_runtime:
            continue
        model = qkan.QKAN([2, 3, 1], reps=2, seed=args.seed)
        with h.Stopwatch() as sw:  # a fresh backend: its noise model and transpilation count
            model.set_evaluator("qiskit", backend=FakeSherbrooke(), shots=4000, pack="auto", initial_layout="auto",
                                max_readout_error=0.02, progress=False, **extra)
            model(x).square().sum().backward()
        rows.append({"mode": f"README example, {name}", "wall_s": sw.wall_s, "cpu_s": sw.cpu_s,
                     "parameter_sets": sum(layer.get_evaluator().circuits_submitted for layer in model.layers)})
    return rows


def _mitigation_rows(args) -> list[dict]:
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from qkan import QKAN

    gen = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.mit_batch, 2, generator=gen, dtype=torch.float64) * 2 - 1
    y = torch.sin(2 * x[:, :1]) * x[:, 1:]
    model = QKAN([2, 2, 1], reps=args.reps, seed=args.seed, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(args.train_steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    layer = model.layers[0]
    exact = layer.edge_outputs(x).detach()
    sim = AerSimulator.from_backend(FakeManilaV2(), max_parallel_threads=args.threads)
    modes = {"raw": None, "readout": {"readout": True},
             "readout + zne (1,3,5 linear, 2 repeats)": {"readout": True, "zne": [1, 3, 5],
                                                          "extrapolation": "linear", "repeats": 2}}
    rows = []
    for name, mitigation in modes.items():
        layer.set_evaluator("qiskit", backend=sim, shots=args.mit_shots, seed=args.seed, pack="auto",
                            mitigation=mitigation, progress=False)
        with h.Stopwatch() as sw:
            f = layer.edge_outputs(x).detach()
        rows.append({"part": "FakeManilaV2 noise", "mode": name, "mean_abs_error": (f - exact).abs().mean().item(),
                     "values": f.numel(), "wall_s": sw.wall_s, "cpu_s": sw.cpu_s})
    for row in rows:
        row["error_vs_raw"] = row["mean_abs_error"] / rows[0]["mean_abs_error"]
    return rows


def _kanqas_rows(args) -> list[dict]:
    """Bell and GHZ-3 fidelity and the H2 energy of the textbook circuits on fake backends."""
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2, FakeSherbrooke

    from qkan.kanqas.circuit import Circuit
    from qkan.kanqas.ground_state import GroundState
    from qkan.kanqas.hardware import run_on_backend
    from qkan.kanqas.state_prep import StatePrep

    h2 = GroundState("h2")
    h2_circuit = Circuit(4, initial_bits=h2.initial_bits)
    h2_circuit.append("RY", (2,))
    for target in (3, 0, 1):
        h2_circuit.append("CNOT", (2, target))
    h2.optimize(h2_circuit, rng=np.random.default_rng(args.seed))
    jobs = [(StatePrep("bell"), None), (StatePrep("ghz", 3), None), (h2, h2_circuit)]
    backends = [FakeManilaV2()] + ([] if args.quick else [FakeSherbrooke()])
    rows = []
    for backend in backends:
        for task, circuit in jobs:
            with h.Stopwatch() as sw:
                est = run_on_backend(circuit or task.reference_circuit(), task, backend, shots=args.kanqas_shots,
                                     seed=args.seed)
            rows.append({"backend": est.backend, "task": f"{task.name} {est.quantity}", "noiseless": est.noiseless,
                         "raw": est.raw, "raw_stderr": est.raw_stderr, "mitigated": est.value, "stderr": est.stderr,
                         "error": est.error, "qubits": str(list(est.physical_qubits)), "wall_s": sw.wall_s,
                         "cpu_s": sw.cpu_s})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("hardware", __doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pack-batch", type=int, default=None, help="samples on FakeSherbrooke (default 16; quick 2)")
    parser.add_argument("--pack-shots", type=int, default=100, help="shots per value on FakeSherbrooke")
    parser.add_argument("--repeats", type=int, default=30, help="timed forwards per qubit-by-qubit row (median)")
    parser.add_argument("--readme-batch", type=int, default=8, help="samples of the README example")
    parser.add_argument("--readme-runtime", action="store_true",
                        help="also time the README example through the runtime's local mode (minutes)")
    parser.add_argument("--mit-batch", type=int, default=None, help="samples for mitigation (default 32; quick 4)")
    parser.add_argument("--mit-shots", type=int, default=20_000)
    parser.add_argument("--train-steps", type=int, default=None, help="closed-form Adam steps (default 100; quick 5)")
    parser.add_argument("--kanqas-shots", type=int, default=8000, help="shots per basis for the KANQAS circuits")
    parser.add_argument("--seed", type=int, default=0)
    args = h.parse_args(parser, argv)
    args.pack_batch = args.pack_batch or (2 if args.quick else 16)
    args.mit_batch = args.mit_batch or (4 if args.quick else 32)
    args.train_steps = args.train_steps or (5 if args.quick else 100)

    packing = _packing_rows(args)
    h.print_table(packing, [("mode", "FakeSherbrooke forward", ""), ("parameter_sets_forward", "param sets", ""),
                            ("fewer_sets", "x fewer", ".1f"), ("qubits", "qubits", ""),
                            ("mean_readout", "mean readout", ".4f"), ("chip_median_readout", "chip median", ".4f"),
                            ("cpu_s", "cpu [s]", ".3f"), ("wall_s", "wall [s]", ".3f"),
                            ("cpu_vs_unpacked", "cpu / unpacked", ".2f"), ("cold_wall_s", "first call [s]", ".2f")],
                  f"QKANLayer 4->4, reps={args.reps}, batch={args.pack_batch}, {args.pack_shots} shots "
                  "(second forward; the first call transpiles)")
    readme = _readme_rows(args)
    h.print_table(readme, [("mode", "FakeSherbrooke", ""), ("parameter_sets", "param sets", ""),
                           ("cpu_s", "cpu [s]", ".2f"), ("wall_s", "wall [s]", ".2f")],
                  f"QKAN [2, 3, 1], reps 2, {args.readme_batch} samples, forward + backward, 4000 shots, "
                  "pack/layout auto, max_readout_error 0.02, fresh backend")
    mitigation = _mitigation_rows(args)
    h.print_table(mitigation, [("mode", "mitigation", ""), ("mean_abs_error", "mean |f - f_exact|", ".4f"),
                               ("error_vs_raw", "vs raw", ".3f"), ("values", "values", ""),
                               ("cpu_s", "cpu [s]", ".2f"), ("wall_s", "wall [s]", ".2f")],
                  f"QKAN [2, 2, 1] first layer, reps={args.reps}, {args.mit_shots} shots, FakeManilaV2 noise")
    kanqas = _kanqas_rows(args)
    h.print_table(kanqas, [("backend", "backend", ""), ("task", "circuit", ""), ("noiseless", "noiseless", ".4f"),
                           ("raw", "raw", ".4f"), ("raw_stderr", "+-", ".4f"), ("mitigated", "readout-mitigated", ".4f"),
                           ("stderr", "+-", ".4f"), ("error", "mitigated - noiseless", ".4f"), ("qubits", "qubits", ""),
                           ("cpu_s", "cpu [s]", ".2f"), ("wall_s", "wall [s]", ".2f")],
                  f"KANQAS textbook circuits (kanqas.hardware), {args.kanqas_shots} shots per basis")
    return h.save(args, "hardware", packing + readme + mitigation + kanqas)


if __name__ == "__main__":
    main()
