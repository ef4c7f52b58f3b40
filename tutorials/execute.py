"""Execute tutorial notebooks in place, storing their outputs (what a repository page shows).

    python tutorials/execute.py                       # every tutorials/*.ipynb
    python tutorials/execute.py 01_quickstart.ipynb   # some of them (names or paths)

Each notebook runs top to bottom in a fresh kernel with tutorials/ as working directory,
single-threaded; a notebook that raises is left unchanged and the script exits non-zero.
Outputs are written atomically (temp file + os.replace). Needs ``pip install "qkan-daruan[notebook]"``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def execute(path: Path, timeout: int) -> None:
    """Run `path` in a fresh python3 kernel and write it back with its outputs."""
    import nbclient
    import nbformat

    from qkan._io import atomic_path

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    notebook.metadata.pop("widgets", None)  # widget state of an earlier run is stale
    client.execute()
    with atomic_path(path) as tmp:
        nbformat.write(notebook, str(tmp))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="notebook names in tutorials/ or paths (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)
    paths = [Path(n) if Path(n).exists() else HERE / n for n in args.notebooks] or sorted(HERE.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures as stored PNG outputs
    failed = []
    for path in paths:
        start = time.perf_counter()
        try:
            execute(path, args.timeout)
        except Exception as err:  # report every notebook, then fail
            failed.append(path.name)
            print(f"FAILED {path.name}: {type(err).__name__}: {str(err)[-2000:]}", file=sys.stderr)
        else:
            print(f"executed {path.name} in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
