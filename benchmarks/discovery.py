"""pykan's discovery workflow on the demo function f(x, y) = exp(sin(pi x) + y^2).

    model = QKAN([2, 5, 1]); model.fit(data, steps=50, reg=...); model = model.prune()
    model.fit(data, steps=50); formula = model.auto_symbolic()[0]

Rows per (reg, seed): the pruned width (the true structure is [2, 1, 1]), the formula's sympy
operation count and its test RMSE against the data, and the CPU time of the whole workflow.
Targets: <= 20 operations and test RMSE < 1e-2.

    python benchmarks/discovery.py                 # reg 1e-3 and 1e-2, seeds 0-2
    python benchmarks/discovery.py --quick         # one seed, a few steps (the tests)
"""

from __future__ import annotations

import os
import sys

import _harness as h

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def workflow(reg: float, seed: int, steps: int) -> dict:
    """Fit with the sparsity penalty, prune, refit, auto_symbolic; the row of one run."""
    import sympy
    import torch

    import qkan
    from qkan.data import demo_function, function_dataset

    data = function_dataset(demo_function, n_var=2, seed=0)
    with h.Stopwatch() as sw:
        model = qkan.QKAN([2, 5, 1], reps=3, seed=seed)
        model.fit(data, steps=steps, reg=reg, progress=False)
        model = model.prune()
        model.fit(data, steps=steps, progress=False)
        formula = model.auto_symbolic()[0]
    x = data["test_input"].double()
    fn = sympy.lambdify(sympy.symbols("x_1:3", real=True), formula)
    values = torch.as_tensor(fn(x[:, 0].numpy(), x[:, 1].numpy()), dtype=torch.float64).reshape(-1)
    rmse = float((values - data["test_label"][:, 0].double()).pow(2).mean().sqrt())
    return {"reg": reg, "seed": seed, "width": str(model.width), "ops": int(sympy.count_ops(formula)), "rmse": rmse,
            "met": bool(sympy.count_ops(formula) <= 20 and rmse < 1e-2), "formula": str(formula),
            "cpu_s": sw.cpu_s, "wall_s": sw.wall_s}


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("discovery", __doc__)
    parser.add_argument("--regs", default="1e-3,1e-2", help="comma-separated reg values (default 1e-3,1e-2)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--steps", type=int, default=50, help="steps of each fit (default 50)")
    args = h.parse_args(parser, argv)
    regs = [float(r) for r in args.regs.split(",")]
    seeds, steps = (1, 3) if args.quick else (args.seeds, args.steps)
    if args.quick:
        regs = regs[:1]
    rows = []
    for reg in regs:
        for seed in range(seeds):
            rows.append(workflow(reg, seed, steps))
            r = rows[-1]
            print(f"reg {reg:g} seed {seed}: width {r['width']}, {r['ops']} ops, RMSE {r['rmse']:.2e}", flush=True)
    h.print_table(rows, [("reg", "reg", "g"), ("seed", "seed", ""), ("width", "pruned width", ""), ("ops", "ops", ""),
                         ("rmse", "test RMSE", ".2e"), ("met", "met", ""), ("cpu_s", "CPU s", ".1f")],
                  title=f"discovery workflow, QKAN [2, 5, 1] reps 3, {steps} + {steps} steps")
    return h.save(args, "discovery", rows)


if __name__ == "__main__":
    main()
