"""Every python example of README.md and of the guides in docs/ runs as written, each in a fresh interpreter.

A snippet may be marked to skip only when it needs real IBM hardware: the line before its fence
is ``<!-- readme-test: skip (IBM hardware) -->``. A snippet that imports an optional extra is
skipped only when that extra is not installed. Snippets run in a temporary folder (they write
files) with the environment torchrun would give one process (the DDP example reads it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: pages whose examples run too (a block that repeats an earlier one runs once)
PAGES = [README, ROOT / "docs" / "index.md", *sorted((ROOT / "docs" / "guides").glob("*.md"))]
SKIP_MARK = "<!-- readme-test: skip (IBM hardware) -->"
#: top-level modules of the optional extras -> the extra
EXTRAS = {"pennylane": "pennylane", "qiskit": "qiskit", "qiskit_aer": "qiskit", "qiskit_ibm_runtime": "qiskit",
          "gymnasium": "kanqas"}
TIMEOUT_S = 600


def _snippets(page: Path = README) -> list[tuple[str, str, bool]]:
    """(id, code, marked to skip) of every ```python block of `page`, the id naming its section."""
    text = page.read_text(encoding="utf-8")
    out, section, counts = [], "top" if page == README else page.stem, {}
    lines = text.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("## "):
            section = re.sub(r"[^a-z0-9]+", "-", line[3:].lower()).strip("-")
            section = section if page == README else f"{page.stem}-{section}"
        if line.strip() == "```python":
            end = lines.index("```", k + 1)
            counts[section] = counts.get(section, 0) + 1
            marked = k > 0 and lines[k - 1].strip() == SKIP_MARK
            out.append((f"{section}-{counts[section]}", "\n".join(lines[k + 1 : end]) + "\n", marked))
            k = end
        k += 1
    return out


def _all_snippets() -> list[tuple[str, str, bool]]:
    seen, out = set(), []
    for page in PAGES:
        for name, code, marked in _snippets(page):
            if code not in seen:
                seen.add(code)
                out.append((name if page == README else f"docs-{name}", code, marked))
    return out


SNIPPETS = _all_snippets()


def _missing_extras(code: str) -> list[str]:
    modules = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", code, flags=re.M))
    if "kanqas" in code:
        modules.add("gymnasium")
    return sorted({EXTRAS[m] for m in modules if m in EXTRAS and importlib.util.find_spec(m) is None})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_has_examples_and_marks_only_hardware():
    assert len(_snippets()) >= 6 and len(SNIPPETS) >= 12
    for name, code, marked in SNIPPETS:
        assert not marked or "QiskitRuntimeService" in code, f"{name} is marked to skip but does not target IBM hardware"


@pytest.mark.parametrize("name, code, marked", SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_readme_example_runs(name, code, marked, tmp_path):
    if marked:
        pytest.skip("needs real IBM hardware")
    missing = _missing_extras(code)
    if missing:
        pytest.skip(f'needs pip install "qkan-daruan[{",".join(missing)}]"')
    script = tmp_path / f"{name}.py"
    script.write_text(code, encoding="utf-8")
    env = {
        **os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
    }  # fmt: skip
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"example {name} failed:\n{code}\n--- stderr:\n{proc.stderr[-4000:]}"
