"""The documentation: the site builds with warnings as errors, covers every public name, and the
package builds into a wheel and an sdist that carry the native kernel sources."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import qkan

ROOT = Path(__file__).resolve().parent.parent
NATIVE = sorted(p.name for p in (ROOT / "qkan" / "simulators" / "native").iterdir() if p.suffix in (".cpp", ".h"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip('the site builder is not installed: pip install -e ".[docs]"')
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def _anchors(page: Path) -> set[str]:
    return set(re.findall(r'id="([\w.]+)"', page.read_text(encoding="utf-8")))


def test_site_builds_strict_and_documents_every_public_name(site):
    import qkan.data

    api = _anchors(site / "api" / "index.html")
    modules = {"data": "data", "kanqas": "kanqas"}
    missing = [n for n in qkan.__all__ if n not in modules and not n.startswith("__") and f"qkan.{n}" not in api]
    assert not missing, f"public names without an API entry: {missing}"
    for module, page in modules.items():
        assert (site / "api" / page / "index.html").is_file()
    data = _anchors(site / "api" / "data" / "index.html")
    assert [n for n in qkan.data.__all__ if f"qkan.data.{n}" not in data] == []
    kanqas_all = re.search(r"__all__ = \[(.*?)\]", (ROOT / "qkan" / "kanqas" / "__init__.py").read_text(), re.S).group(1)
    kanqas = _anchors(site / "api" / "kanqas" / "index.html")
    names = [n for n in re.findall(r'"(\w+)"', kanqas_all) if not (ROOT / "qkan" / "kanqas" / f"{n}.py").is_file()]  # not submodules
    assert [n for n in names if f"qkan.kanqas.{n}" not in kanqas] == []
    for page in ("math", "changelog", "guides/training", "guides/migration", "guides/benchmarks", "guides/cli"):
        assert (site / page / "index.html").is_file(), page


def test_math_page_gives_every_ansatz_its_gates():
    from qkan.circuits.ansatz import ANSATZE

    text = (ROOT / "docs" / "math.md").read_text(encoding="utf-8")
    for name, spec in ANSATZE.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"no row for ansatz {name}"
        cells = [c.strip() for c in row.split("|")[1:-1]]
        for gate in spec.rep_gates:
            assert gate.name in cells[1], (name, gate)
        assert spec.encoding_gate in cells[2] and ("arccos" in cells[2]) == spec.arccos
        assert ("none" == cells[3]) == (not spec.final_gates)
        assert cells[5] == ("no" if not spec.closed_form else "yes")


def test_no_pointer_outside_the_repository():
    offenders = [f"{p.relative_to(ROOT)}:{k}" for p in (ROOT / "qkan").rglob("*.py")
                 for k, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if "shared/" in line or "daruan.md" in line or "design/" in line]  # fmt: skip
    assert not offenders


def test_migration_page_lists_every_foreign_name():
    from qkan._foreign import FOREIGN_NAMES

    text = (ROOT / "docs" / "guides" / "migration.md").read_text(encoding="utf-8")
    assert [n for n in FOREIGN_NAMES if f"`{n}" not in text and f"`model.{n}`" not in text] == []


def test_one_version_and_the_distribution_name():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    assert project["name"] == qkan.DISTRIBUTION == "qkan-daruan" and "version" in project["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "qkan.__version__"}
    assert f"## {qkan.__version__}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    extras = project["optional-dependencies"]
    assert all("==" in req for req in extras["docs"])  # the site's builder is pinned
    assert set(re.search(r"\[(.*)\]", extras["all"][0]).group(1).split(",")) == set(extras) - {"all"}
    hints = [p for p in (ROOT / "qkan").rglob("*.py") if re.search(r"pip install \\?\"qkan\[", p.read_text(encoding="utf-8"))]
    assert not hints, f"install hints naming PyPI's other package: {hints}"


def test_wheel_and_sdist_carry_the_native_sources(tmp_path):
    if importlib.util.find_spec("build") is None:
        pytest.skip('needs pip install "qkan-daruan[test]" (the build package)')
    src = tmp_path / "src"
    shutil.copytree(ROOT / "qkan", src / "qkan", ignore=shutil.ignore_patterns("__pycache__", "*.so", "build"))
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stem = f"qkan_daruan-{qkan.__version__}"
    wheel = tmp_path / "dist" / f"{stem}-py3-none-any.whl"
    sdist = tmp_path / "dist" / f"{stem}.tar.gz"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(f"{stem}.dist-info/METADATA").decode()
    assert [n for n in NATIVE if f"qkan/simulators/native/{n}" not in names] == []
    assert "Name: qkan-daruan\n" in metadata and f"Version: {qkan.__version__}\n" in metadata
    with tarfile.open(sdist) as t:
        names = t.getnames()
    assert [n for n in NATIVE if f"{stem}/qkan/simulators/native/{n}" not in names] == []
    if importlib.util.find_spec("twine") is not None:
        check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                               capture_output=True, text=True, timeout=300)  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr


def test_every_internal_link_of_the_site_resolves(site):
    """Every relative href of every built page (404.html links from the site root) names a file, and its anchor exists."""
    from urllib.parse import unquote, urlsplit

    ids: dict[Path, set[str]] = {}
    broken, checked = [], 0
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html":
            continue
        for href in re.findall(r'\bhref="([^"]*)"', page.read_text(encoding="utf-8")):
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            checked += 1
            target = page.parent / unquote(parts.path) if parts.path else page
            target = target / "index.html" if target.is_dir() else target
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {href}")
            elif parts.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = set(re.findall(r'\bid="([^"]+)"', target.read_text(encoding="utf-8")))
                if unquote(parts.fragment) not in ids[target]:
                    broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
    assert checked > 500 and not broken, broken[:20]
