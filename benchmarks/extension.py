"""Layer extension on f(x, y) = exp(sin(pi x) + y^2), the published QKAN experiment.

Recipe (arXiv 2509.14026, the qkan 0.2.3 layer-extension example): QKAN [2, 5, 1] with reps=1,
Adam for 100 steps; then extend to reps=5 (same function) and LBFGS for 100 steps. The published
package reports test MSE 1.10 after stage 1 and 9.65e-7 after stage 2. As a control, the same
reps=5 model is also trained from scratch with the stage-2 budget.

    python benchmarks/extension.py            # the published budgets (float64)
    python benchmarks/extension.py --quick    # a few steps per stage
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from qkan import QKAN
from qkan.data import demo_function, function_dataset

PUBLISHED = {"reps=1 adam": 1.10, "extend reps=5 lbfgs": 9.65e-7}


def _stage(model: QKAN, data: dict, steps: int, optimizer: str) -> dict:
    t0 = time.perf_counter()
    history = model.fit(data, steps=steps, optimizer=optimizer, progress=False)
    return {"train_mse": history["train_rmse"][-1] ** 2, "test_mse": history["test_rmse"][-1] ** 2,
            "steps": steps, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 Adam + 2 LBFGS steps")
    parser.add_argument("--adam-steps", type=int, default=100)
    parser.add_argument("--lbfgs-steps", type=int, default=100)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--encoding", choices=["fixed", "edge", "input"], default="fixed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest for these small models)")
    args = parser.parse_args(argv)
    if args.quick:
        args.adam_steps, args.lbfgs_steps = 10, 2
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    data = function_dataset(demo_function, n_var=2, train_num=1000, test_num=1000, seed=args.seed, dtype=dtype)

    rows = {}
    model = QKAN([2, 5, 1], reps=1, encoding=args.encoding, seed=args.seed, dtype=dtype)
    rows["reps=1 adam"] = _stage(model, data, args.adam_steps, "adam")
    x = data["test_input"]
    extended = model.extend(5)
    with torch.no_grad():
        gap = (extended(x) - model(x)).abs().max().item()
    rows["extend reps=5 lbfgs"] = _stage(extended, data, args.lbfgs_steps, "lbfgs")
    scratch = QKAN([2, 5, 1], reps=5, encoding=args.encoding, seed=args.seed, dtype=dtype)
    rows["scratch reps=5 lbfgs"] = _stage(scratch, data, args.lbfgs_steps, "lbfgs")

    print(f"layer extension on exp(sin(pi x) + y^2), QKAN [2, 5, 1], encoding={args.encoding}, "
          f"{args.dtype}, {args.threads} threads, seed {args.seed}")
    print(f"max |f_extended - f| right after extend(5): {gap:.2e}")
    print(f"{'stage':<22}{'steps':>6}{'train MSE':>12}{'test MSE':>12}{'published':>11}{'time [s]':>10}")
    for name, r in rows.items():
        pub = f"{PUBLISHED[name]:.3g}" if name in PUBLISHED else "-"
        print(f"{name:<22}{r['steps']:>6}{r['train_mse']:>12.3e}{r['test_mse']:>12.3e}{pub:>11}{r['seconds']:>10.1f}")
    result = {"args": vars(args), "extension_gap": gap, "stages": rows, "published_test_mse": PUBLISHED}
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "extension.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
