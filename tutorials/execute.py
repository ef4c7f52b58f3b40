"""Execute tutorial notebooks in place, storing their outputs (what a repository page shows), or check them.

    python tutorials/execute.py                       # every tutorials/*.ipynb
    python tutorials/execute.py 01_quickstart.ipynb   # some of them (names or paths)
    python tutorials/execute.py --check               # run in memory; exit 1 if an output drifted

Each notebook runs top to bottom in a fresh kernel with tutorials/ as working directory,
single-threaded; a notebook that raises is left unchanged and the script exits non-zero.
Outputs are written atomically (temp file + os.replace). Needs ``pip install "qkan-daruan[notebook]"``.

``--check`` compares every code cell's new outputs with the stored ones (``drift``): text must
match exactly except for numbers, which may differ by ``--rtol`` (relative; numbers below 1e-9
in size count as zero, so rounding noise such as 2.8e-14 passes); durations (a number followed by
s, ms, us, min, it/s or s/it) and stderr (progress bars, warnings that name local paths) are not
compared; a ratio of durations (a number followed by "x", as in "15x faster") is a duration too;
a figure must still be a figure (its pixels are not compared). A cell tagged ``no-check`` (cell
metadata ``"tags": ["no-check"]``) is run but its outputs are not compared: for outputs that
depend on the machine's speed throughout, such as a throughput table or text sampled from a
model trained for a fixed time.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: relative tolerance of numbers in --check (trained models print RMSEs to 3 digits)
RTOL = 0.02
_DURATION = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*(?:ms|us|µs|min|s/it|it/s|s|x)\b")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


#: the kernel's environment on top of ours: single-threaded, figures as stored PNG outputs
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


def run(path: Path, timeout: int):
    """`path` executed in a fresh python3 kernel (in memory; the file is not touched)."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    notebook.metadata.pop("widgets", None)  # widget state of an earlier run is stale
    client.execute(env={**os.environ, **KERNEL_ENV})
    return notebook


def execute(path: Path, timeout: int) -> None:
    """Run `path` in a fresh python3 kernel and write it back with its outputs."""
    import nbformat

    from qkan._io import atomic_path

    notebook = run(path, timeout)
    with atomic_path(path) as tmp:
        nbformat.write(notebook, str(tmp))


def _texts(cell) -> list[str]:
    """What --check compares of a code cell: stdout, results as text, '<image/png>' per figure, errors."""
    out = []
    for o in cell.get("outputs", []):
        kind = o.get("output_type")
        if kind == "stream" and o.get("name") == "stdout":
            out.append(o.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            data = o.get("data", {})
            if "image/png" in data:
                out.append("<image/png>")
            elif "text/plain" in data and "application/vnd.jupyter.widget-view+json" not in data:
                out.append(data["text/plain"])
        elif kind == "error":
            out.append(f"<error {o.get('ename')}: {o.get('evalue')}>")
    return ["".join(out)] if out else []


def _tokens(text: str) -> tuple[list[str], list[float]]:
    """(the text between numbers, the numbers), after durations and object addresses are masked."""
    text = _ADDRESS.sub("0x?", _DURATION.sub("<duration>", text))
    return _NUMBER.split(text), [float(n) for n in _NUMBER.findall(text)]


def _same(a: str, b: str, rtol: float) -> bool:
    words_a, nums_a = _tokens(a)
    words_b, nums_b = _tokens(b)
    if words_a != words_b or len(nums_a) != len(nums_b):
        return False
    return all(max(abs(x), abs(y)) < 1e-9 or math.isclose(x, y, rel_tol=rtol) for x, y in zip(nums_a, nums_b))


def drift(stored, executed, rtol: float = RTOL) -> list[str]:
    """One line per code cell whose outputs in `executed` differ from `stored` (two notebooks); [] if none.

    A notebook stored without outputs (never executed: no execution counts) has nothing to drift from.
    """
    old = [c for c in stored.cells if c.cell_type == "code"]
    new = [c for c in executed.cells if c.cell_type == "code"]
    if all(c.get("execution_count") is None for c in old):
        return []
    if len(old) != len(new):
        return [f"{len(new)} code cells now, {len(old)} stored"]
    lines = []
    for k, (a, b) in enumerate(zip(old, new), start=1):
        if "no-check" in a.get("metadata", {}).get("tags", []):
            continue
        ta, tb = _texts(a), _texts(b)
        if len(ta) != len(tb) or not all(_same(x, y, rtol) for x, y in zip(ta, tb)):
            lines.append(f"code cell {k}: stored {' '.join(ta)[:300]!r}, now {' '.join(tb)[:300]!r}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="notebook names in tutorials/ or paths (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    parser.add_argument("--check", action="store_true", help="execute in memory and compare with the stored outputs; write nothing")
    parser.add_argument("--rtol", type=float, default=RTOL, help=f"relative tolerance of numbers with --check (default {RTOL})")
    args = parser.parse_args(argv)
    paths = [Path(n) if Path(n).exists() else HERE / n for n in args.notebooks] or sorted(HERE.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    failed = []
    for path in paths:
        start = time.perf_counter()
        try:
            if args.check:
                import nbformat

                changes = drift(nbformat.read(path, as_version=4), run(path, args.timeout), args.rtol)
                if changes:
                    failed.append(path.name)
                    print(f"DRIFTED {path.name} (re-run: python tutorials/execute.py {path.name}):\n  " + "\n  ".join(changes),
                          file=sys.stderr)  # fmt: skip
                    continue
            else:
                execute(path, args.timeout)
        except Exception as err:  # report every notebook, then fail
            failed.append(path.name)
            print(f"FAILED {path.name}: {type(err).__name__}: {str(err)[-2000:]}", file=sys.stderr)
        else:
            print(f"{'checked' if args.check else 'executed'} {path.name} in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
