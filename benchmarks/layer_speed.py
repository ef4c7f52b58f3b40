"""Layer speed and memory: closed form and SU(2) against the nn.Linear floor (and the published qkan).

    python benchmarks/layer_speed.py [--quick] [--threads 1] [--clock wall|cpu] [--reference-python /path/to/venv/bin/python]

Rows (forward + backward, gradients to x and every parameter):
- fixed-encoding pz 64 -> 64, R=3, B=512: fourier, su2, and the floor nn.Linear(I*(2R+2), O);
- per-edge trainable encoding on the same shape: su2;
- peak memory at B=4096, 256 -> 256, R=3: fourier vs the floor (CPU: peak RSS of a fresh
  process; CUDA: max_memory_allocated).
The optional reference column runs the published qkan 0.2.3 "exact" solver in another
virtualenv (never installed here), with and without trainable pre-activations.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"

_REFERENCE = r"""
import json, statistics, sys, time, torch
from qkan import QKANLayer
torch.set_num_threads({threads})
clock = time.{clock}
out = {{}}
for pre in (False, True):
    layer = QKANLayer({I}, {O}, reps={R}, solver="exact", preact_trainable=pre, seed=0)
    x = torch.rand({B}, {I}, requires_grad=True)
    times = []
    for _ in range({repeats} + 1):
        t = clock(); layer(x).sum().backward(); times.append(clock() - t)
    out["edge" if pre else "fixed"] = statistics.median(times[1:])
print(json.dumps(out))
"""


def _time(fn, repeats: int, clock=time.perf_counter) -> float:
    """Median seconds of fn() after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def _step(module: torch.nn.Module, x: torch.Tensor):
    def run():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()

    return run


def _subjects(kind: str, I: int, O: int, R: int, B: int, device: str):
    """(module, input) for one benchmark row."""
    from qkan import QKANLayer

    if kind == "floor":
        return torch.nn.Linear(I * (2 * R + 2), O, device=device), torch.rand(B, I * (2 * R + 2), device=device, requires_grad=True)
    evaluator, encoding = {"fourier": ("fourier", "fixed"), "su2": ("su2", "fixed"), "su2-edge": ("su2", "edge")}[kind]
    layer = QKANLayer(I, O, R, encoding=encoding, evaluator=evaluator, seed=0, device=device)
    return layer, (torch.rand(B, I, device=device) * 2 - 1).requires_grad_(True)


def _peak_memory_child(kind: str, I: int, O: int, R: int, B: int, device: str) -> float:
    """Peak bytes of one forward+backward, measured in this (fresh) process."""
    module, x = _subjects(kind, I, O, R, B, device)
    x = x.detach().requires_grad_(True)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        module(x).sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with open("/proc/self/statm") as fh:
        base = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    module(x).sum().backward()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base


def _peak_memory(kind: str, I: int, O: int, R: int, B: int, device: str, threads: int) -> float:
    cmd = [sys.executable, __file__, "--_memory", kind, str(I), str(O), str(R), str(B), "--device", device, "--threads", str(threads)]
    return float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip())


def _reference(python: str, I: int, O: int, R: int, B: int, repeats: int, threads: int, clock: str) -> dict | None:
    code = _REFERENCE.format(I=I, O=O, R=R, B=B, repeats=repeats, threads=threads, clock=clock)
    try:
        # isolated mode and another cwd, so the reference's `qkan` is imported, never this checkout's
        done = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=1800, cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired) as err:
        print(f"reference column skipped: {err}", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"reference column skipped: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller memory case")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: steadier on a shared 2-core machine)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--reference-python", help="python of a virtualenv with the published qkan 0.2.3")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a shared machine; use with --threads 1)",
    )
    parser.add_argument("--_memory", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args._memory:
        kind, *dims = args._memory
        print(_peak_memory_child(kind, *map(int, dims), args.device))
        return {}

    I, O, R, B = 64, 64, 3, 512
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    repeats = 5 if args.quick else 20
    rows = []
    times = {}
    for kind in ("floor", "fourier", "su2", "su2-edge"):
        module, x = _subjects(kind, I, O, R, B, args.device)
        times[kind] = _time(_step(module, x), repeats, clock)
    ref = None
    if args.reference_python:
        ref = _reference(args.reference_python, I, O, R, B, 2 if args.quick else 3, args.threads, clock.__name__)
    for kind, label in (("floor", "nn.Linear floor (fixed shape)"), ("fourier", "fixed enc, fourier"), ("su2", "fixed enc, su2"), ("su2-edge", "edge enc, su2")):
        ref_t = None if ref is None or kind == "floor" else ref["edge" if kind == "su2-edge" else "fixed"]
        rows.append(
            dict(
                case=label,
                ms=times[kind] * 1e3,
                vs_floor=times[kind] / times["floor"],
                reference_ms=None if ref_t is None else ref_t * 1e3,
                speedup_vs_reference=None if ref_t is None else ref_t / times[kind],
            )
        )

    mI, mB = (256, 4096) if not args.quick else (128, 1024)
    mem = {kind: _peak_memory(kind, mI, mI, R, mB, args.device, args.threads) for kind in ("floor", "fourier")}
    memory = dict(shape=f"B={mB}, {mI}->{mI}, R={R}", floor_mb=mem["floor"] / 2**20, fourier_mb=mem["fourier"] / 2**20, ratio=mem["fourier"] / mem["floor"])

    print(f"layer speed, forward+backward, {I}->{O}, R={R}, B={B}, {args.threads} threads, {args.device}, {args.clock} time")
    print(f"{'case':32s} {'ms':>9s} {'x floor':>8s} {'ref ms':>9s} {'speedup':>8s}")
    for r in rows:
        ref_ms = "-" if r["reference_ms"] is None else f"{r['reference_ms']:.1f}"
        speed = "-" if r["speedup_vs_reference"] is None else f"{r['speedup_vs_reference']:.0f}x"
        print(f"{r['case']:32s} {r['ms']:9.3f} {r['vs_floor']:8.2f} {ref_ms:>9s} {speed:>8s}")
    print(f"peak memory {memory['shape']}: fourier {memory['fourier_mb']:.1f} MB, floor {memory['floor_mb']:.1f} MB, ratio {memory['ratio']:.2f}")
    result = dict(device=args.device, threads=args.threads, clock=args.clock, shape=dict(I=I, O=O, R=R, B=B), rows=rows, memory=memory)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "layer_speed.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
