"""Feynman sweep: QKAN vs an MLP with the same number of parameters on 20 equations.

Each equation's inputs are mapped from their published ranges onto [-1, 1] and its labels
standardised with the training mean and std, so the RMSE (test set, standardised units) is
comparable across equations. Both models get the same optimizer (LBFGS) and step budget.

    python benchmarks/feynman.py            # 20 equations
    python benchmarks/feynman.py --quick    # 3 equations, tiny budgets
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
from torch import nn

from qkan import QKAN
from qkan.data import FEYNMAN, feynman


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def matched_mlp(n_in: int, budget: int, dtype: torch.dtype) -> nn.Module:
    """[n_in, H, H, 1] tanh MLP whose parameter count H^2 + (n_in + 3) H + 1 is closest to budget."""
    hidden = min(range(1, 200), key=lambda h: abs(h * h + (n_in + 3) * h + 1 - budget))
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, 1)).to(dtype)


def train_mlp(model: nn.Module, data: dict, steps: int) -> float:
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-32, tolerance_change=1e-32)
    x, y = data["train_input"], data["train_label"]

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    with torch.no_grad():
        return float(torch.sqrt(((model(data["test_input"]) - data["test_label"]) ** 2).mean()))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 equations, 200 samples, 3 steps")
    parser.add_argument("--equations", type=int, default=20, help="first N equations of qkan.data.FEYNMAN")
    parser.add_argument("--steps", type=int, default=50, help="LBFGS steps per model")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=5, help="QKAN hidden width: [n, hidden, 1]")
    parser.add_argument("--samples", type=int, default=1000, help="train and test samples each")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest for these small models)")
    args = parser.parse_args(argv)
    if args.quick:
        args.equations, args.samples, args.steps = 3, 200, 3
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)

    rows = []
    print(f"Feynman sweep: QKAN [n, {args.hidden}, 1] reps={args.reps} vs matched MLP, LBFGS {args.steps} steps, "
          f"{args.samples} samples, {args.dtype}; test RMSE in standardised label units")
    print(f"{'equation':<10}{'n':>3}{'QKAN params':>12}{'MLP params':>11}{'QKAN RMSE':>11}{'MLP RMSE':>10}{'QKAN s':>8}{'MLP s':>7}")
    for name in list(FEYNMAN)[: args.equations]:
        data = feynman(name, train_num=args.samples, test_num=args.samples, seed=args.seed, normalize=True, dtype=dtype)
        mean, std = data["train_label"].mean(), data["train_label"].std()
        for key in ("train_label", "test_label"):
            data[key] = (data[key] - mean) / std
        n = data["train_input"].shape[1]
        torch.manual_seed(args.seed)
        qkan = QKAN([n, args.hidden, 1], reps=args.reps, seed=args.seed, dtype=dtype)
        t0 = time.perf_counter()
        q_rmse = qkan.fit(data, steps=args.steps, progress=False, log=args.steps)["test_rmse"][-1]
        t1 = time.perf_counter()
        mlp = matched_mlp(n, n_params(qkan), dtype)
        m_rmse = train_mlp(mlp, data, args.steps)
        t2 = time.perf_counter()
        row = {"equation": name, "n_var": n, "qkan_params": n_params(qkan), "mlp_params": n_params(mlp),
               "qkan_rmse": q_rmse, "mlp_rmse": m_rmse, "qkan_seconds": t1 - t0, "mlp_seconds": t2 - t1}
        rows.append(row)
        print(f"{name:<10}{n:>3}{row['qkan_params']:>12}{row['mlp_params']:>11}{q_rmse:>11.2e}{m_rmse:>10.2e}"
              f"{t1 - t0:>8.1f}{t2 - t1:>7.1f}", flush=True)
    wins = sum(r["qkan_rmse"] < r["mlp_rmse"] for r in rows)
    geo = lambda key: math.exp(sum(math.log(max(r[key], 1e-300)) for r in rows) / len(rows))  # noqa: E731
    print(f"geometric mean RMSE: QKAN {geo('qkan_rmse'):.2e}, MLP {geo('mlp_rmse'):.2e}; QKAN better on {wins}/{len(rows)}")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "feynman.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
