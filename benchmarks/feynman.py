"""Feynman sweep: QKAN vs an MLP with the same number of parameters on 20 equations.

--source published takes the equations and ranges of pykan / qkan 0.2.3 (qkan.data.FEYNMAN_PUBLISHED)
instead of this package's table; benchmarks/reproduce.py compares with the published package itself.

Each equation's inputs are mapped from their published ranges onto [-1, 1] and its labels
standardised with the training mean and std, so the RMSE (test set, standardised units) is
comparable across equations. Both models get the same optimizer (LBFGS) and step budget.

    python benchmarks/feynman.py            # 20 equations
    python benchmarks/feynman.py --quick    # 3 equations, tiny budgets
"""

from __future__ import annotations

import math

import torch
from torch import nn

import _harness as h
from qkan import QKAN
from qkan.data import FEYNMAN, FEYNMAN_PUBLISHED, feynman


def n_params(model: nn.Module) -> int:
    """Trainable parameters of `model`."""
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


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("feynman", __doc__)
    parser.add_argument("--equations", type=int, default=20, help="first N equations of qkan.data.FEYNMAN")
    parser.add_argument("--steps", type=int, default=50, help="LBFGS steps per model")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=5, help="QKAN hidden width: [n, hidden, 1]")
    parser.add_argument("--samples", type=int, default=1000, help="train and test samples each")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", choices=["qkan", "published"], default="qkan", help="equation table")
    args = h.parse_args(parser, argv)
    if args.quick:  # 3 equations, 200 samples, 3 steps
        args.equations, args.samples, args.steps = 3, 200, 3
    dtype = getattr(torch, args.dtype)

    rows = []
    table = FEYNMAN if args.source == "qkan" else FEYNMAN_PUBLISHED
    for name in list(table)[: args.equations]:
        data = feynman(name, train_num=args.samples, test_num=args.samples, seed=args.seed, normalize=True, dtype=dtype,
                       source=args.source)
        mean, std = data["train_label"].mean(), data["train_label"].std()
        for key in ("train_label", "test_label"):
            data[key] = (data[key] - mean) / std
        n = data["train_input"].shape[1]
        torch.manual_seed(args.seed)
        qkan = QKAN([n, args.hidden, 1], reps=args.reps, seed=args.seed, dtype=dtype)
        with h.Stopwatch() as q_time:
            q_rmse = qkan.fit(data, steps=args.steps, progress=False, log=args.steps)["test_rmse"][-1]
        mlp = matched_mlp(n, n_params(qkan), dtype)
        with h.Stopwatch() as m_time:
            m_rmse = train_mlp(mlp, data, args.steps)
        rows.append({"equation": name, "n_var": n, "qkan_params": n_params(qkan), "mlp_params": n_params(mlp),
                     "qkan_rmse": q_rmse, "mlp_rmse": m_rmse, "qkan_seconds": q_time.wall_s,
                     "mlp_seconds": m_time.wall_s, "qkan_cpu_seconds": q_time.cpu_s, "mlp_cpu_seconds": m_time.cpu_s})
    h.print_table(rows, [("equation", "equation", ""), ("n_var", "n", ""), ("qkan_params", "QKAN params", ""),
                         ("mlp_params", "MLP params", ""), ("qkan_rmse", "QKAN RMSE", ".2e"),
                         ("mlp_rmse", "MLP RMSE", ".2e"), ("qkan_seconds", "QKAN s", ".1f"),
                         ("mlp_seconds", "MLP s", ".1f")],
                  f"Feynman sweep: QKAN [n, {args.hidden}, 1] reps={args.reps} vs matched MLP, LBFGS {args.steps} "
                  f"steps, {args.samples} samples, {args.dtype}; test RMSE in standardised label units")
    wins = sum(r["qkan_rmse"] < r["mlp_rmse"] for r in rows)
    geo = {key: math.exp(sum(math.log(max(r[key], 1e-300)) for r in rows) / len(rows)) for key in ("qkan_rmse", "mlp_rmse")}
    print(f"geometric mean RMSE: QKAN {geo['qkan_rmse']:.2e}, MLP {geo['mlp_rmse']:.2e}; QKAN better on {wins}/{len(rows)}")
    return h.save(args, "feynman", rows, geometric_mean_rmse=geo, qkan_wins=wins)


if __name__ == "__main__":
    main()
