"""Shared pieces of the benchmark scripts: flags, threads, timing, tables and JSON results.

A script in this folder does::

    import _harness as h

    parser = h.make_parser("name", __doc__)          # --quick, --threads, --json [, --reference-python]
    parser.add_argument(...)                          # its own flags
    args = h.parse_args(parser, argv)                 # also sets the thread count
    t = h.time_fn(step, repeats=5)                    # median wall and CPU seconds after a warm-up
    h.print_table(rows, [("name", "name", ""), ("wall_ms", "wall ms", ".2f")])
    h.save(args, "name", rows)                        # benchmarks/results/name.json, atomically

Nothing here imports torch at module level, so a script can set threads before its heavy imports.
CPU time is ``time.process_time()`` (all threads of this process): on a shared machine other
processes only add wall time, so CPU time is the steadier measure and ratios can use it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "RESULTS_DIR", "make_parser", "parse_args", "setup_threads", "reference_python", "Stopwatch", "Timing",
    "time_fn", "time_round_robin", "format_table", "print_table", "environment", "write_json", "save",
]  # fmt: skip

#: where results go by default: benchmarks/results/<name>.json (git-ignored)
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: environment variable naming the python of a virtualenv with the published qkan (reference columns)
REFERENCE_ENV = "QKAN_REFERENCE_PYTHON"


# ----------------------------------------------------------------------------------------- flags
def make_parser(name: str, doc: str | None, *, reference: bool = False) -> argparse.ArgumentParser:
    """An ArgumentParser with the common flags; `doc` (the script's docstring) is its description.

    Flags: --quick (seconds, for the tests), --threads N (default 1), --json PATH (default
    benchmarks/results/<name>.json) and, with `reference=True`, --reference-python PATH (default:
    the QKAN_REFERENCE_PYTHON environment variable; see reference_python()).
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small run of a few seconds (what the tests run)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch / OpenMP threads (default 1: steadiest on a shared machine)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / f"{name}.json", metavar="PATH",
                        help=f"JSON results file (default benchmarks/results/{name}.json)")
    if reference:
        parser.add_argument("--reference-python", default=os.environ.get(REFERENCE_ENV), metavar="PYTHON",
                            help=f"python of a virtualenv with the published qkan, for a reference column "
                                 f"(default ${REFERENCE_ENV}; the column is skipped when absent)")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """parser.parse_args(argv), then setup_threads(args.threads)."""
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be an int >= 1; got {args.threads}")
    setup_threads(args.threads)
    return args


def setup_threads(threads: int) -> None:
    """Use `threads` threads: OMP_NUM_THREADS / MKL_NUM_THREADS and torch.set_num_threads.

    The environment variables reach OpenMP runtimes loaded later (Aer, Lightning) and
    subprocesses; torch's own pool follows torch.set_num_threads even after torch is imported.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def reference_python(path: str | os.PathLike | None) -> str | None:
    """The reference interpreter `path` if it exists, else None (with a note on stderr when one was named)."""
    if not path:
        return None
    if not Path(path).is_file():
        print(f"note: reference python {path} not found; skipping the reference column", file=sys.stderr)
        return None
    return str(path)


# ---------------------------------------------------------------------------------------- timing
class Stopwatch:
    """Context manager measuring the wall and CPU seconds of its block (``wall_s``, ``cpu_s``).

    `sync` (e.g. torch.cuda.synchronize) is called on entry and exit so queued device work counts.
    """

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.sync = sync
        self.wall_s = self.cpu_s = float("nan")

    def __enter__(self) -> Stopwatch:
        if self.sync:
            self.sync()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        if self.sync:
            self.sync()
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = time.process_time() - self._cpu


@dataclass(frozen=True)
class Timing:
    """Median wall and CPU seconds of `repeats` timed calls."""

    wall_s: float
    cpu_s: float
    repeats: int

    @classmethod
    def median(cls, runs: list[Stopwatch]) -> Timing:
        """The median wall and CPU seconds of finished Stopwatch runs."""
        return cls(statistics.median(r.wall_s for r in runs), statistics.median(r.cpu_s for r in runs), len(runs))

    def ms(self, prefix: str = "") -> dict[str, float]:
        """{prefix + "wall_ms": ..., prefix + "cpu_ms": ...} for a result row."""
        return {f"{prefix}wall_ms": 1e3 * self.wall_s, f"{prefix}cpu_ms": 1e3 * self.cpu_s}


def time_round_robin(fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1,
                     sync: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Time several callables one call each per round, so machine load hits all of them alike.

    `warmup` untimed rounds first, then `repeats` timed rounds; returns the median per name.
    """
    if repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1; got {repeats}")
    runs: dict[str, list[Stopwatch]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            with Stopwatch(sync) as sw:
                fn()
            if round_ >= warmup:
                runs[name].append(sw)
    return {name: Timing.median(r) for name, r in runs.items()}


def time_fn(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
            sync: Callable[[], None] | None = None) -> Timing:
    """Median wall and CPU seconds of fn() over `repeats` calls after `warmup` untimed ones."""
    return time_round_robin({"fn": fn}, repeats, warmup, sync)["fn"]


# ---------------------------------------------------------------------------------------- tables
def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Rows as aligned text. columns: (key, header, format spec such as ".2f", ",", ".1%" or "").

    The first column is left-aligned, the others right-aligned; a missing or None value shows "-".
    """
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        cells.append(["-" if row.get(k) is None else format(row[k], spec) for k, _, spec in columns])
    widths = [max(len(line[c]) for line in cells) for c in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(line, widths)))
        for line in cells
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def print_table(rows: list[dict], columns: list[tuple[str, str, str]], title: str | None = None) -> None:
    """Print `title` (if any) and format_table(rows, columns)."""
    if title:
        print(title)
    print(format_table(rows, columns), flush=True)


# ------------------------------------------------------------------------------------------ JSON
def environment() -> dict:
    """Versions and machine, for the JSON results."""
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()}


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write `data` as JSON to `path` atomically (temp file in the same folder + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def save(args: argparse.Namespace, name: str, rows: list[dict], **extra) -> dict:
    """Write {benchmark, config (the flags), environment, rows, **extra} to args.json; return it."""
    result = {"benchmark": name, "config": vars(args), "environment": environment(), "rows": rows, **extra}
    print(f"wrote {write_json(args.json, result)}")
    return result
