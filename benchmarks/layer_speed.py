"""Layer speed and memory: the closed form and the SU(2) kernels against the nn.Linear floor and the published qkan.

    python benchmarks/layer_speed.py [--quick] [--thread-counts 1,2] [--reference-python /path/to/venv/bin/python]

Forward + backward (gradients to x and every parameter), pz, 64 -> 64, R=3, B=512, float32,
timed round-robin (one call of each case per round, so machine load hits all alike); CPU time
(all threads of this process) and wall time, for each thread count:
- P1: fixed encoding (evaluator "fourier": native, and the pure-torch path with QKAN_NATIVE=0)
  against the floor nn.Linear(I*(2R+2), O) on an input that needs its gradient;
- P2: per-edge trainable encoding (evaluator "su2": native and torch) against the published
  qkan 0.2.3 "exact" solver with preact_trainable=True (and its fixed encoding against P1),
  run in the reference virtualenv (1 thread; the column is skipped when it is absent);
- P3: peak memory of one forward+backward at B=4096, 256 -> 256, R=3 (quick: B=1024,
  128 -> 128) for the fixed and the edge encoding against the floor, each in a fresh process
  (peak RSS growth over the state after building the module and input).
- cache: no-grad inference with the closed-form coefficient cache hit against a recompile per call.
Targets: P1 <= 2x the floor; P2 >= 100x the reference; P3 <= 2x the floor.
OMP_WAIT_POLICY defaults to PASSIVE here (see below); set it to ACTIVE to time spinning workers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

import _harness as h

# idle OpenMP workers sleep instead of spinning (set before torch loads its OpenMP runtime): on a
# shared machine spinning workers count as CPU time and starve every other thread; the reference
# subprocess inherits it, so all columns are timed alike
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_REFERENCE = r"""
import json, time, torch
from qkan import QKANLayer
torch.set_num_threads(1)
out = {{}}
for pre in (False, True):
    layer = QKANLayer({I}, {O}, reps={R}, solver="exact", preact_trainable=pre, seed=0)
    x = torch.rand({B}, {I}, requires_grad=True)
    runs = []
    for _ in range({repeats} + 1):
        w, c = time.perf_counter(), time.process_time()
        layer(x).sum().backward()
        runs.append((time.perf_counter() - w, time.process_time() - c))
    runs = sorted(runs[1:], key=lambda r: r[1])
    out["edge" if pre else "fixed"] = runs[len(runs) // 2]
print(json.dumps(out))
"""

#: case -> (evaluator, encoding, native) for QKANLayer cases; "floor" is nn.Linear
CASES = {
    "fixed": ("fourier", "fixed", True),
    "fixed (torch)": ("fourier", "fixed", False),
    "edge": ("su2", "edge", True),
    "edge (torch)": ("su2", "edge", False),
}


def _subject(case: str, I: int, O: int, R: int, B: int):
    """(module, input, native) of one case; inputs in [-1, 1] that need their gradient."""
    import torch

    from qkan import QKANLayer

    if case == "floor":
        return torch.nn.Linear(I * (2 * R + 2), O), torch.rand(B, I * (2 * R + 2), requires_grad=True), True
    evaluator, encoding, native = CASES[case]
    options = {"native": native} if evaluator == "su2" else {}
    layer = QKANLayer(I, O, R, encoding=encoding, evaluator=evaluator, evaluator_options=options, seed=0)
    return layer, (torch.rand(B, I) * 2 - 1).requires_grad_(True), native


def _step(module, x, native: bool):
    """One forward+backward; the fourier evaluator follows QKAN_NATIVE, set around the call."""

    def run():
        previous = os.environ.get("QKAN_NATIVE")
        os.environ["QKAN_NATIVE"] = "1" if native else "0"
        try:
            module.zero_grad(set_to_none=True)
            x.grad = None
            module(x).sum().backward()
        finally:
            if previous is None:
                del os.environ["QKAN_NATIVE"]
            else:
                os.environ["QKAN_NATIVE"] = previous

    return run


def _peak_memory_child(case: str, I: int, R: int, B: int) -> int:
    """Bytes of peak RSS growth during one forward+backward (run in a fresh process)."""
    module, x, native = _subject(case, I, I, R, B)
    os.environ["QKAN_NATIVE"] = "1" if native else "0"
    _step(module, x[:1].detach().requires_grad_(True), native)()  # build/load the native library first
    with open("/proc/self/statm") as fh:
        base = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    module(x).sum().backward()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base


def _peak_memory(case: str, I: int, R: int, B: int) -> float:
    cmd = [sys.executable, __file__, "--memory-child", case, str(I), str(R), str(B)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def _reference(python: str, I: int, O: int, R: int, B: int, repeats: int) -> dict | None:
    """{"fixed"|"edge": (wall_s, cpu_s)} of the published qkan, or None (reason on stderr)."""
    code = _REFERENCE.format(I=I, O=O, R=R, B=B, repeats=repeats)
    try:  # isolated mode and another cwd, so the reference's `qkan` is imported, never this checkout's
        done = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=3600, cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired) as err:
        print(f"reference column skipped: {err}", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"reference column skipped: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cache_rows(repeats: int) -> list[dict]:
    """The closed-form coefficient cache in no-grad inference (acting in RL): a hit (values compared
    with the kept copy) against a recompile on every call, for a few layer shapes and batch sizes."""
    import torch

    from qkan import QKANLayer

    rows = []
    for I, O, B in ((84, 16, 1), (64, 64, 1), (64, 64, 256)):
        layer = QKANLayer(I, O, reps=3, seed=0)
        x = torch.rand(B, I)
        evaluator = layer.get_evaluator()

        def hit():
            with torch.no_grad():
                layer(x)

        def miss():
            evaluator._cache = None  # as if the values had changed
            hit()

        for case, t in h.time_round_robin({"hit": hit, "recompile": miss}, repeats=repeats).items():
            rows.append(dict(section="cache", case=f"no-grad {I}->{O} B={B} {case}", threads=torch.get_num_threads(), **t.ms()))
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = h.make_parser("layer_speed", __doc__, reference=True)
    parser.add_argument("--thread-counts", default="1,2", help="comma-separated torch thread counts to time (default 1,2)")
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = h.parse_args(parser, argv)
    if args.memory_child:
        case, I, R, B = args.memory_child
        print(_peak_memory_child(case, int(I), int(R), int(B)))
        return {}
    import torch

    from qkan.simulators import native

    counts = [int(t) for t in args.thread_counts.split(",")]
    I, O, R, B = 64, 64, 3, 512
    repeats = 3 if args.quick else 15
    rows = []
    for threads in counts:
        h.setup_threads(threads)
        subjects = {case: _subject(case, I, O, R, B) for case in ("floor", *CASES)}
        fns = {case: _step(*subject) for case, subject in subjects.items()}
        slow = {"edge (torch)": fns.pop("edge (torch)")}  # hundreds of ms a call: fewer rounds
        timings = h.time_round_robin(fns, repeats=repeats)
        timings.update(h.time_round_robin(slow, repeats=1 if args.quick else 3))
        floor = timings["floor"]
        for case, t in timings.items():
            rows.append(dict(section="P1/P2", case=case, threads=threads, **t.ms(), x_floor_cpu=t.cpu_s / floor.cpu_s))
    ref_python = h.reference_python(args.reference_python)
    ref = _reference(ref_python, I, O, R, B, 1 if args.quick else 3) if ref_python else None
    if ref is not None:
        for kind in ("fixed", "edge"):
            wall, cpu = ref[kind]
            rows.append(dict(section="reference", case=f"published exact, {kind}", threads=1, wall_ms=wall * 1e3, cpu_ms=cpu * 1e3))
            for row in rows:
                if row["section"] == "P1/P2" and row["threads"] == 1 and row["case"] in (kind, f"{kind} (torch)"):
                    row["speedup_vs_published_cpu"] = cpu * 1e3 / row["cpu_ms"]

    mI, mB = (128, 1024) if args.quick else (256, 4096)
    h.setup_threads(counts[0])
    memory = {case: _peak_memory(case, mI, R, mB) for case in ("floor", "fixed", "edge")}
    for case in ("floor", "fixed", "edge"):
        rows.append(dict(section="P3", case=f"peak memory {case}, B={mB}, {mI}->{mI}", threads=counts[0],
                         peak_mb=memory[case] / 2**20, x_floor_memory=memory[case] / memory["floor"]))

    h.setup_threads(counts[0])
    rows += _cache_rows(3 if args.quick else 200)

    h.print_table(
        rows,
        [("case", "case", ""), ("threads", "thr", ""), ("cpu_ms", "cpu ms", ".2f"), ("wall_ms", "wall ms", ".2f"),
         ("x_floor_cpu", "x floor", ".2f"), ("speedup_vs_published_cpu", "vs published", ".0f"),
         ("peak_mb", "peak MB", ".1f"), ("x_floor_memory", "x floor mem", ".2f")],
        title=f"forward+backward, pz {I}->{O}, R={R}, B={B}, float32; native kernels: {native.available()}",
    )
    return h.save(args, "layer_speed", rows, shape=dict(I=I, O=O, R=R, B=B), native=native.available(),
                  torch_threads=torch.get_num_threads(), omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))


if __name__ == "__main__":
    main()
