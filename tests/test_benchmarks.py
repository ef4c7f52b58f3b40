"""Every script in benchmarks/ runs in its --quick mode and writes JSON results with rows.

The scripts run as subprocesses (as `qkan bench` runs them), single-threaded, each within a
timeout; a script that needs an optional extra is skipped only when that extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
TIMEOUT_S = 180  # --quick takes seconds; the margin is for a loaded machine
#: script -> top-level modules it needs beyond qkan's core dependencies
EXTRAS = {
    "hardware": ["qiskit_aer", "qiskit_ibm_runtime"],
    "pennylane_speed": ["pennylane"],
    "qiskit_speed": ["qiskit", "qiskit_aer"],
    "kanqas": ["gymnasium", "qiskit_aer"],
}


def _harness():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _harness

        return _harness
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_scripts_found():
    assert {"hqkan", "qiskit_speed", "pennylane_speed"} <= {p.stem for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_quick_run_writes_rows(script, tmp_path):
    missing = [m for m in EXTRAS.get(script.stem, []) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {missing}")
    assert "import _harness" in script.read_text(), f"{script.name} must use the shared benchmarks/_harness.py"
    out = tmp_path / f"{script.stem}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    start = time.time()
    proc = subprocess.run([sys.executable, str(script), "--quick", "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.stat().st_mtime >= start - 1, f"{out} was not written"
    result = json.loads(out.read_text())
    assert result["benchmark"] == script.stem and result["config"]["quick"] is True
    assert isinstance(result["rows"], list) and result["rows"] and all(isinstance(r, dict) for r in result["rows"])


def test_harness_timer_table_and_atomic_json(tmp_path):
    h = _harness()
    calls = []
    t = h.time_fn(lambda: calls.append(sum(range(20_000))), repeats=3, warmup=2)
    assert len(calls) == 5 and t.repeats == 3 and t.wall_s > 0 and t.cpu_s >= 0
    assert set(t.ms("x_")) == {"x_wall_ms", "x_cpu_ms"}
    table = h.format_table([{"name": "a", "v": 1.23456}, {"name": "long name", "v": None}],
                           [("name", "name", ""), ("v", "value", ".2f")])
    lines = table.splitlines()
    assert lines[0].startswith("name") and lines[2].endswith(" 1.23") and lines[3].endswith("    -")
    assert len({len(line) for line in lines}) == 1
    path = h.write_json(tmp_path / "sub" / "r.json", {"rows": [{"a": 1}], "path": tmp_path})
    assert json.loads(path.read_text())["rows"] == [{"a": 1}]
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp file left
    assert h.reference_python(None) is None
    assert h.reference_python(tmp_path / "no" / "python") is None
    assert h.reference_python(sys.executable) == sys.executable
