"""KANQAS benchmark: speed against the published design, success probability, H2.

Sections (table + JSON in benchmarks/results/kanqas.json):
  speed    episodes per second of DDQN training at the published settings (Bell, Q-network
           width [84, 2, 12], batch 500, one update per step), side by side in one process:
           the published design (an Aer density-matrix simulation of the whole circuit every
           step + a spline KAN on pykan's slow path, re-implemented here: B-splines plus a
           symbolic branch evaluated edge by edge in Python plus per-edge activation
           statistics) against this package (incremental torch simulator + QKAN / B-spline
           KAN fast path / MLP). Timed after the replay buffer holds one batch.
  success  probability of success for Bell and GHZ-3, noiseless and noisy (p1 = 0.3 bit flip,
           p2 = 0.2 depolarising; success threshold 0.98 x the noisy textbook circuit's
           fidelity), per Q-network over seeds: the fraction of successful training episodes
           (the published metric) and the fraction of seeds whose final greedy policy succeeds.
  h2       H2 (STO-3G, 4 qubits) with the moving-threshold curriculum: episodes until the first
           circuit at chemical accuracy, its CNOTs and depth.

Run: python benchmarks/kanqas.py [--quick] [--sections speed,success,h2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from qkan.kanqas import CircuitEnv, DDQNAgent, MovingThreshold  # noqa: E402
from qkan.kanqas.qnets import BSplineKANLayer  # noqa: E402
from qkan.kanqas import CHEMICAL_ACCURACY  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NOISE = (0.3, 0.2)


# ----------------------------------------------------------------------- published-design baseline
class SlowSplineKANLayer(BSplineKANLayer):
    """pykan's KANLayer + Symbolic_KANLayer forward without its speed mode.

    Numeric branch: silu base + B-spline, per-edge scales and mask, per-edge activations kept
    (B, O, I). Symbolic branch: every edge evaluated on its own in Python, c f(a x + b) + d with
    f = 0 (pykan's default before any symbolic fit), as pykan does on every forward.
    """

    def __init__(self, in_dim: int, out_dim: int, **kw) -> None:
        super().__init__(in_dim, out_dim, **kw)
        self.scale_sp = nn.Parameter(torch.ones(out_dim, in_dim))
        self.register_buffer("mask", torch.ones(out_dim, in_dim))
        self.affine = nn.Parameter(torch.zeros(out_dim, in_dim, 4))  # a, b, c, d per edge
        self.register_buffer("symbolic_mask", torch.zeros(out_dim, in_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N = x.shape[0]
        spline = torch.einsum("nim,oim->noi", self.bases(x),
                              self.spline_weight.reshape(self.out_dim, self.in_dim, -1))  # (N, O, I)
        postacts = self.mask * (self.base_weight * F.silu(x)[:, None, :] + self.scale_sp * spline)  # (N, O, I)
        self.acts_scale = postacts.std(0)  # pykan keeps per-edge statistics on every forward
        y = postacts.sum(-1)  # (N, O)
        sym = []
        for j in range(self.out_dim):  # Symbolic_KANLayer: one Python call per edge
            row = torch.zeros(N)
            for i in range(self.in_dim):
                a, b, c, d = self.affine[j, i]
                row = row + self.symbolic_mask[j, i] * (c * (0 * (a * x[:, i] + b)) + d)  # f = 0
            sym.append(row)
        return y + torch.stack(sym, 1)


class SlowSplineKAN(nn.Sequential):
    def __init__(self, width: list[int], seed: int = 0) -> None:
        super().__init__(*(SlowSplineKANLayer(i, o, seed=seed + n) for n, (i, o) in enumerate(zip(width[:-1], width[1:]))))


class AerStepEnv(CircuitEnv):
    """CircuitEnv whose every step re-simulates the whole circuit as an Aer density matrix."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from qiskit_aer import AerSimulator
        from qiskit_aer.noise import NoiseModel, depolarizing_error, pauli_error

        model = None
        if self.noise is not None:
            model = NoiseModel()
            model.add_all_qubit_quantum_error(pauli_error([("X", self.noise.p1), ("I", 1 - self.noise.p1)]),
                                              ["x", "y", "z", "h", "t"])
            model.add_all_qubit_quantum_error(depolarizing_error(self.noise.p2, 2), ["cx"])
        self._aer = AerSimulator(method="density_matrix", noise_model=model)
        n = self.n_qubits
        self._perm = np.arange(2**n).reshape([2] * n).transpose(list(range(n))[::-1]).reshape(-1)

    def _advance(self, name, qubits) -> float:
        qc = self.circuit.to_qiskit()  # only gates Aer runs natively: no transpile
        qc.save_density_matrix()
        rho = np.asarray(self._aer.run(qc).result().data()["density_matrix"])
        target = self.task.target.numpy()[self._perm]  # to qiskit's qubit order
        return float(np.real(target.conj() @ rho @ target))


def _time_training(env: CircuitEnv, q_network, episodes: int, batch: int = 500) -> dict:
    hidden = None if q_network == "mlp" else [2]  # published sizes: [84, 2, 12] and 3 x 30
    agent = DDQNAgent(env, q_network=q_network, hidden=hidden, batch_size=batch, buffer_size=15000, seed=0)
    while agent.buffer.size < batch:  # fill one batch (no learning yet), not timed
        agent.run_episode()
    steps0, t0, c0 = agent.buffer.size, time.perf_counter(), time.process_time()
    for _ in range(episodes):
        agent.run_episode()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = agent.buffer.size - steps0
    return {"episodes_per_s": episodes / dt, "episodes_per_cpu_s": episodes / cpu, "ms_per_step": 1e3 * dt / steps,
            "cpu_ms_per_step": 1e3 * cpu / steps, "params": agent.n_parameters}


def section_speed(quick: bool) -> list[dict]:
    episodes = 2 if quick else 20
    configs = [
        ("published design: Aer DM per step + slow spline KAN", lambda: AerStepEnv("bell"), SlowSplineKAN([84, 2, 12])),
        ("qkan: torch simulator + QKAN (closed form)", lambda: CircuitEnv("bell"), "qkan"),
        ("qkan: torch simulator + B-spline KAN fast path", lambda: CircuitEnv("bell"), "kan"),
        ("qkan: torch simulator + MLP [30, 30, 30]", lambda: CircuitEnv("bell"), "mlp"),
    ]
    rows = []
    for label, make_env, net in configs:
        rows.append({"config": label, **_time_training(make_env(), net, episodes)})
    for r in rows:
        r["speedup"] = r["episodes_per_s"] / rows[0]["episodes_per_s"]
        r["cpu_speedup"] = r["episodes_per_cpu_s"] / rows[0]["episodes_per_cpu_s"]
    sim = _time_simulators(50 if quick else 300)
    print("\nSpeed (Bell, batch 500, one update per step, width [84, 2, 12]; torch threads "
          f"{torch.get_num_threads()})")
    print("(wall clock, and CPU time of this process: robust when other jobs share the machine)")
    print(f"{'config':55s} {'params':>7s} {'ep/s':>7s} {'ms/step':>8s} {'speedup':>8s} {'ep/cpu-s':>9s} {'cpu ms/step':>11s} {'cpu speedup':>11s}")
    for r in rows:
        print(f"{r['config']:55s} {r['params']:7d} {r['episodes_per_s']:7.2f} {r['ms_per_step']:8.1f} {r['speedup']:7.1f}x "
              f"{r['episodes_per_cpu_s']:9.2f} {r['cpu_ms_per_step']:11.1f} {r['cpu_speedup']:10.1f}x")
    print(f"simulation only, per step (GHZ-3 noisy, 12 gates): Aer DM {sim['aer_ms']:.2f} ms "
          f"(cpu {sim['aer_cpu_ms']:.2f}), this package {sim['ours_ms']:.3f} ms (cpu {sim['ours_cpu_ms']:.3f}): "
          f"{sim['aer_ms'] / sim['ours_ms']:.0f}x wall, {sim['aer_cpu_ms'] / sim['ours_cpu_ms']:.0f}x cpu")
    return rows + [{"config": "simulator per step", **sim}]


def _time_simulators(repeats: int) -> dict:
    """Per-step simulation cost: Aer DM of the whole circuit vs one incremental torch step."""
    slow, fast = AerStepEnv("ghz3", noise=NOISE), CircuitEnv("ghz3", noise=NOISE)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, slow.action_space.n, size=12)
    out = {}
    for key, env in (("aer", slow), ("ours", fast)):
        t0, c0, count = time.perf_counter(), time.process_time(), 0
        while count < repeats:
            env.reset(seed=0)
            for a in actions:
                env.step(int(a))
                count += 1
        out[f"{key}_ms"] = 1e3 * (time.perf_counter() - t0) / count
        out[f"{key}_cpu_ms"] = 1e3 * (time.process_time() - c0) / count
    return out


# ----------------------------------------------------------------------- success probability
def _run_search(task: str, noise, q_network: str, seed: int, episodes: int) -> dict:
    env = CircuitEnv(task, noise=noise)
    agent = DDQNAgent(env, q_network=q_network, hidden=None if q_network == "mlp" else [8], seed=seed,
                      batch_size=64, buffer_size=5000, lr=5e-3, eps_decay=0.995, target_update=20)
    t0 = time.perf_counter()
    history = agent.train(episodes, progress=False)
    dt = time.perf_counter() - t0
    greedy = agent.evaluate()
    return {"task": task, "noisy": noise is not None, "q_network": q_network, "seed": seed,
            "success_rate": float(np.mean(history["success"])), "greedy_success": bool(greedy["success"]),
            "greedy_fidelity": 1 - greedy["error"], "best_cnots": agent.best["n_cnots"],
            "episodes_per_s": episodes / dt}


def section_success(tasks: list[tuple], seeds: int, episodes: dict, out: dict, path: Path) -> list[dict]:
    runs = out.setdefault("success_runs", [])
    for task, noise in tasks:
        for q_network in ("qkan", "kan", "mlp"):
            for seed in range(seeds):
                runs.append(_run_search(task, noise, q_network, seed, episodes[task]))
                path.write_text(json.dumps(out, indent=1))  # keep partial results
    rows = []
    for task, noise in tasks:
        for q_network in ("qkan", "kan", "mlp"):
            rs = [r for r in runs if r["task"] == task and r["noisy"] == (noise is not None) and r["q_network"] == q_network]
            rate = [r["success_rate"] for r in rs]
            rows.append({"task": task, "noisy": noise is not None, "q_network": q_network, "seeds": len(rs),
                         "episodes": episodes[task], "success_rate_mean": float(np.mean(rate)),
                         "success_rate_std": float(np.std(rate)),
                         "greedy_success": float(np.mean([r["greedy_success"] for r in rs])),
                         "episodes_per_s": float(np.mean([r["episodes_per_s"] for r in rs]))})
    print("\nSuccess probability (fraction of successful training episodes, mean +- std over seeds; "
          "greedy = fraction of seeds whose final greedy circuit succeeds)")
    print(f"{'task':6s} {'noise':6s} {'net':5s} {'seeds':>5s} {'episodes':>8s} {'P(success)':>16s} {'greedy':>7s} {'ep/s':>7s}")
    for r in rows:
        print(f"{r['task']:6s} {'yes' if r['noisy'] else 'no':6s} {r['q_network']:5s} {r['seeds']:5d} {r['episodes']:8d} "
              f"{r['success_rate_mean']:8.3f} +- {r['success_rate_std']:5.3f} {r['greedy_success']:7.2f} {r['episodes_per_s']:7.1f}")
    return rows


# ----------------------------------------------------------------------- H2
def section_h2(quick: bool, episodes: int, seeds: int, out: dict, path: Path) -> list[dict]:
    rows = out.setdefault("h2", [])
    for q_network in (("qkan",) if quick else ("qkan", "kan", "mlp")):
        for seed in range(seeds):
            env = CircuitEnv("h2", max_depth=6 if quick else 10)
            agent = DDQNAgent(env, q_network=q_network, hidden=None if q_network == "mlp" else [8], seed=seed,
                              batch_size=64, buffer_size=5000, lr=5e-3, eps_decay=0.995, target_update=20,
                              curriculum=MovingThreshold(0.01, patience=3, reset_every=50, margin=2e-3))
            t0 = time.perf_counter()
            history = agent.train(episodes, progress=False)
            dt = time.perf_counter() - t0
            hits = [k for k, e in enumerate(history["error"]) if e < CHEMICAL_ACCURACY]
            best = agent.best
            rows.append({"q_network": q_network, "seed": seed, "episodes": episodes,
                         "first_chem_acc_episode": hits[0] + 1 if hits else None,
                         "chem_acc_episodes": len(hits), "best_error": best["error"],
                         "cnots": best["n_cnots"], "depth": best["depth"], "gates": best["n_gates"],
                         "episodes_per_s": episodes / dt})
            path.write_text(json.dumps(out, indent=1))  # keep partial results
    print("\nH2 (STO-3G, 0.7414 A, 4 qubits, exact -1.137270 Ha), chemical accuracy 1.6e-3 Ha")
    print(f"{'net':5s} {'seed':>4s} {'episodes':>8s} {'first hit':>9s} {'hits':>5s} {'best error':>11s} {'CNOTs':>5s} {'depth':>5s} {'ep/s':>6s}")
    for r in rows:
        first = "-" if r["first_chem_acc_episode"] is None else str(r["first_chem_acc_episode"])
        print(f"{r['q_network']:5s} {r['seed']:4d} {r['episodes']:8d} {first:>9s} {r['chem_acc_episodes']:5d} "
              f"{r['best_error']:11.2e} {r['cnots']:5d} {r['depth']:5d} {r['episodes_per_s']:6.2f}")
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (well under a minute)")
    parser.add_argument("--sections", default="speed,success,h2", help="comma-separated: speed, success, h2")
    parser.add_argument("--tasks", default="bell,ghz3", help="success tasks: bell, ghz3 (default both)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default 5; quick 1)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per success run (default 100)")
    parser.add_argument("--h2-episodes", type=int, default=150, help="H2 episodes per run (default 150)")
    parser.add_argument("--h2-seeds", type=int, default=2, help="H2 seeds per Q-network (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=str(RESULTS / "kanqas.json"), help="JSON output path")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = args.seeds or (1 if args.quick else 5)
    sections = args.sections.split(",")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    out: dict = {"quick": args.quick, "threads": args.threads, "seeds": seeds}
    if "speed" in sections:
        out["speed"] = section_speed(args.quick)
        path.write_text(json.dumps(out, indent=1))
    if "success" in sections:
        episodes = {"bell": 20, "ghz3": 20} if args.quick else {"bell": args.episodes, "ghz3": args.episodes}
        names = ["bell"] if args.quick else args.tasks.split(",")
        tasks = [(t, noise) for t in names for noise in ((None,) if args.quick else (None, NOISE))]
        out["success"] = section_success(tasks, seeds, episodes, out, path)
        path.write_text(json.dumps(out, indent=1))
    if "h2" in sections:
        section_h2(args.quick, 2 if args.quick else args.h2_episodes, 1 if args.quick else args.h2_seeds, out, path)
        path.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {path}")
    return out


if __name__ == "__main__":
    main()
