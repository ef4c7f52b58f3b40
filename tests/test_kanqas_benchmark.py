"""benchmarks/kanqas.py and kanqas_paper.py run in their --quick modes and write their JSON."""

import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_kanqas_benchmark_quick(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the shared _harness, for this test only
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


def test_kanqas_paper_benchmark_quick(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = runpy.run_path(str(ROOT / "benchmarks" / "kanqas_paper.py"), run_name="kanqas_paper_benchmark")
    assert bench["eps_decay_for"](10_000) == 0.99995
    assert bench["eps_decay_for"](300) ** 300 == pytest.approx(0.99995 ** 10_000)  # the same curve per episode fraction
    out = bench["main"](["--quick", "--sections", "protocol", "--tasks", "bell:noisy", "--policies", "random,mlp",
                         "--json", str(tmp_path / "p.json")])
    saved = json.loads((tmp_path / "p.json").read_text())
    assert [r["policy"] for r in saved["protocol"]] == ["random", "mlp"]
    mlp = out["protocol"][1]
    assert mlp["seeds"] == 2 and mlp["params"] == 84 * 30 + 30 * 30 * 2 + 30 * 12 + 3 * 30 + 12
    assert mlp["optimum"] == pytest.approx(0.85, abs=0.01)  # H + CNOT under depolarising 0.2
    assert len(out["protocol_runs"]) == 4 and all(len(r["curves"]["success"]) == 4 for r in out["protocol_runs"])
    assert "Protocol (published settings, 4 episodes" in capsys.readouterr().out


def test_kanqas_paper_defaults_section_stores_success_curves(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = runpy.run_path(str(ROOT / "benchmarks" / "kanqas_paper.py"), run_name="kanqas_paper_benchmark")
    out = bench["main"](["--quick", "--sections", "defaults", "--tasks", "bell", "--policies", "random,mlp",
                         "--json", str(tmp_path / "d.json")])
    saved = json.loads((tmp_path / "d.json").read_text())
    assert [(r["task"], r["policy"]) for r in saved["defaults"]] == [("bell", "random"), ("bell", "mlp")]
    curves = saved["defaults_curves"]["bell"]
    assert set(curves) == {"random", "mlp"} and set(curves["mlp"]) == {"0", "1"}
    assert all(len(c) == 4 and set(c) <= {"0", "1"} for c in curves["mlp"].values())
    assert out["defaults"][1]["seeds"] == 2 and out["defaults"][1]["greedy"].endswith("/2")
    assert "Defaults (the package's DDQNAgent defaults, 4 episodes" in capsys.readouterr().out
