"""Physics-informed QKAN: pykan's PDE example, 2D Poisson on [-1, 1]^2.

    -(u_xx + u_yy) = f,   f = 2 pi^2 sin(pi x) sin(pi y),   u = 0 on the boundary,

whose solution is u = sin(pi x) sin(pi y). The loss is pykan's: alpha * mean(residual^2) +
mean(u_boundary^2) with alpha = 0.01, on a grid of interior collocation points and points on the
four edges, minimised by LBFGS (strong-Wolfe line search). The Laplacian is taken by autograd
(create_graph), so every step differentiates the model three times: the path that second
derivatives of the native kernels serve.

Rows: QKAN [2, 5, 1] (reps 3, trainable per-input frequencies, closed form) against an MLP
[2, H, H, 1] (tanh) with about as many parameters, over several seeds: relative L2 error of u
on a 101 x 101 test grid, and the CPU / wall time of one loss-and-gradient evaluation on the
default path and with the native kernels disabled (QKAN_NATIVE=0), measured side by side.

    python benchmarks/pde.py            # 3 seeds, 100 LBFGS steps
    python benchmarks/pde.py --quick    # 1 seed, a few steps (the tests)
"""

from __future__ import annotations

import math
import os
import statistics
import sys

import _harness as h

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def poisson_problem(n_interior: int, n_boundary: int, dtype):
    """Collocation points: interior (n_interior^2, 2), boundary (4 n_boundary, 2), source f (n_interior^2,)."""
    import torch

    t = torch.linspace(-1, 1, n_interior + 2, dtype=dtype)[1:-1]
    xi = torch.cartesian_prod(t, t)  # (n^2, 2)
    s = torch.linspace(-1, 1, n_boundary, dtype=dtype)
    one = torch.ones_like(s)
    xb = torch.cat([torch.stack([s, -one], 1), torch.stack([s, one], 1), torch.stack([-one, s], 1), torch.stack([one, s], 1)])
    f = 2 * math.pi**2 * torch.sin(math.pi * xi[:, 0]) * torch.sin(math.pi * xi[:, 1])
    return xi, xb, f


def laplacian(model, x):
    """u (N,) and its Laplacian u_xx + u_yy (N,), differentiable (create_graph)."""
    import torch

    x = x.detach().requires_grad_(True)
    u = model(x)[:, 0]
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)  # (N, 2)
    lap = sum(torch.autograd.grad(g[:, d].sum(), x, create_graph=True)[0][:, d] for d in range(2))
    return u, lap


def pinn_loss(model, problem, alpha: float = 0.01):
    """pykan's objective: alpha * mean((lap u + f)^2) + mean(u(boundary)^2)."""
    xi, xb, f = problem
    _, lap = laplacian(model, xi)
    return alpha * (lap + f).pow(2).mean() + model(xb)[:, 0].pow(2).mean()


def l2_error(model, n: int = 101) -> float:
    """Relative L2 error of u against sin(pi x) sin(pi y) on an n x n grid of [-1, 1]^2."""
    import torch

    p = next(model.parameters())
    t = torch.linspace(-1, 1, n, dtype=p.dtype)
    x = torch.cartesian_prod(t, t)
    exact = torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])
    with torch.no_grad():
        u = model(x)[:, 0]
    return float((u - exact).norm() / exact.norm())


def make_model(kind: str, seed: int, dtype):
    """The QKAN or the MLP of about the same size."""
    import torch

    import qkan

    if kind == "qkan":
        return qkan.QKAN([2, 5, 1], reps=3, encoding="input", seed=seed, dtype=dtype)
    torch.manual_seed(seed)
    H = 12  # H^2 + 5 H + 1 = 205 parameters, against the QKAN's 207
    return torch.nn.Sequential(torch.nn.Linear(2, H), torch.nn.Tanh(), torch.nn.Linear(H, H), torch.nn.Tanh(),
                               torch.nn.Linear(H, 1)).to(dtype)


def train(model, problem, steps: int) -> list[float]:
    """LBFGS (strong Wolfe) on the PINN loss; returns the loss after every step."""
    import torch

    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = pinn_loss(model, problem)
        loss.backward()
        return loss

    losses = []
    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
    return losses


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("pde", __doc__)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per model (default 3; --quick: 1)")
    parser.add_argument("--steps", type=int, default=100, help="LBFGS steps (default 100; --quick: 2)")
    args = h.parse_args(parser, argv)
    import torch

    from qkan.simulators import native

    seeds, steps, n_int, n_b = (1, 2, 8, 8) if args.quick else (args.seeds, args.steps, 21, 21)
    dtype = torch.float64
    problem = poisson_problem(n_int, n_b, dtype)
    rows = []
    for kind in ("qkan", "mlp"):
        errors, n_params = [], 0
        for seed in range(seeds):
            model = make_model(kind, seed, dtype)
            n_params = sum(p.numel() for p in model.parameters())
            losses = train(model, problem, steps)
            errors.append(l2_error(model))
            print(f"{kind} seed {seed}: loss {losses[-1]:.3e}, relative L2 error {errors[-1]:.3e}", flush=True)
        rows.append({"model": kind, "params": n_params, "seeds": seeds, "steps": steps,
                     "l2_mean": statistics.mean(errors), "l2_max": max(errors), "l2_per_seed": errors})

    # one loss-and-gradient evaluation, default path against QKAN_NATIVE=0, round robin
    model = make_model("qkan", 0, dtype)

    def step(native_on: bool):
        def run():
            os.environ["QKAN_NATIVE"] = "1" if native_on else "0"
            model.zero_grad()
            pinn_loss(model, problem).backward()
        return run

    previous = os.environ.get("QKAN_NATIVE")
    try:
        times = h.time_round_robin({"default": step(True), "torch": step(False)}, repeats=3 if args.quick else 20)
    finally:
        os.environ.pop("QKAN_NATIVE") if previous is None else os.environ.__setitem__("QKAN_NATIVE", previous)
    for row in rows:
        if row["model"] == "qkan":
            row.update(times["default"].ms("step_"), **times["torch"].ms("torch_step_"))
            row["native_available"] = native.available()
    h.print_table(rows, [("model", "model", ""), ("params", "params", ""), ("l2_mean", "rel. L2 (mean)", ".3e"),
                         ("l2_max", "rel. L2 (worst)", ".3e"), ("step_cpu_ms", "step CPU ms", ".1f"),
                         ("torch_step_cpu_ms", "QKAN_NATIVE=0 CPU ms", ".1f"), ("step_wall_ms", "step wall ms", ".1f")],
                  title=f"2D Poisson PINN, {seeds} seed(s), {steps} LBFGS steps, {n_int}^2 interior points")
    return h.save(args, "pde", rows)


if __name__ == "__main__":
    main()
