"""benchmarks/kanqas.py runs in its --quick mode and writes its JSON (speed and search sections)."""

import json
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_kanqas_benchmark_quick(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the shared _harness
    bench = runpy.run_path(str(ROOT / "benchmarks" / "kanqas.py"), run_name="kanqas_benchmark")
    out = bench["main"](["--quick", "--tasks", "bell", "--json", str(tmp_path / "k.json")])
    saved = json.loads((tmp_path / "k.json").read_text())
    assert saved["search"] == out["search"] and len(out["search"]) == 4  # random, qkan, kan, mlp
    random = next(r for r in out["search"] if r["policy"] == "random")
    assert random["greedy_goal"] == "-" and 0 <= random["success_rate"] <= 1
    assert all(r["episodes_per_s"] > 0 for r in out["search"])
    assert {r["config"] for r in out["speed"]} >= {"simulator per step"}
    text = capsys.readouterr().out
    assert "Search (per task and policy" in text and "Speed (Bell" in text
