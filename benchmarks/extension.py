"""Layer extension on f(x, y) = exp(sin(pi x) + y^2), the published QKAN experiment.

Recipe (arXiv 2509.14026, the qkan 0.2.3 layer-extension example): QKAN [2, 5, 1] with reps=1,
Adam for 100 steps; then extend to reps=5 (same function) and LBFGS for 100 steps. The published
package reports test MSE 1.10 after stage 1 and 9.65e-7 after stage 2. As a control, the same
reps=5 model is also trained from scratch with the stage-2 budget.

    python benchmarks/extension.py            # the published budgets (float64)
    python benchmarks/extension.py --quick    # a few steps per stage
"""

from __future__ import annotations

import torch

import _harness as h
from qkan import QKAN
from qkan.data import demo_function, function_dataset

PUBLISHED = {"reps=1 adam": 1.10, "extend reps=5 lbfgs": 9.65e-7}


def _stage(name: str, model: QKAN, data: dict, steps: int, optimizer: str) -> dict:
    with h.Stopwatch() as sw:
        history = model.fit(data, steps=steps, optimizer=optimizer, progress=False)
    return {"stage": name, "steps": steps, "train_mse": history["train_rmse"][-1] ** 2,
            "test_mse": history["test_rmse"][-1] ** 2, "published_test_mse": PUBLISHED.get(name),
            "seconds": sw.wall_s, "cpu_seconds": sw.cpu_s}


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("extension", __doc__)
    parser.add_argument("--adam-steps", type=int, default=100)
    parser.add_argument("--lbfgs-steps", type=int, default=100)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--encoding", choices=["fixed", "edge", "input"], default="fixed")
    parser.add_argument("--seed", type=int, default=0)
    args = h.parse_args(parser, argv)
    if args.quick:  # 10 Adam + 2 LBFGS steps on 200 samples
        args.adam_steps, args.lbfgs_steps = 10, 2
    samples = 200 if args.quick else 1000
    dtype = getattr(torch, args.dtype)
    data = function_dataset(demo_function, n_var=2, train_num=samples, test_num=samples, seed=args.seed, dtype=dtype)

    model = QKAN([2, 5, 1], reps=1, encoding=args.encoding, seed=args.seed, dtype=dtype)
    rows = [_stage("reps=1 adam", model, data, args.adam_steps, "adam")]
    x = data["test_input"]
    extended = model.extend(5)
    with torch.no_grad():
        gap = (extended(x) - model(x)).abs().max().item()
    rows.append(_stage("extend reps=5 lbfgs", extended, data, args.lbfgs_steps, "lbfgs"))
    scratch = QKAN([2, 5, 1], reps=5, encoding=args.encoding, seed=args.seed, dtype=dtype)
    rows.append(_stage("scratch reps=5 lbfgs", scratch, data, args.lbfgs_steps, "lbfgs"))

    print(f"max |f_extended - f| right after extend(5): {gap:.2e}")
    h.print_table(rows, [("stage", "stage", ""), ("steps", "steps", ""), ("train_mse", "train MSE", ".3e"),
                         ("test_mse", "test MSE", ".3e"), ("published_test_mse", "published", ".3g"),
                         ("seconds", "time [s]", ".1f"), ("cpu_seconds", "cpu [s]", ".1f")],
                  f"layer extension on exp(sin(pi x) + y^2), QKAN [2, 5, 1], encoding={args.encoding}, "
                  f"{args.dtype}, {samples} samples, {args.threads} threads, seed {args.seed}")
    return h.save(args, "extension", rows, extension_gap=gap)


if __name__ == "__main__":
    main()
