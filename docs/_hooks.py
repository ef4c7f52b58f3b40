"""mkdocs hook: a top-level page of docs/ that the nav does not list joins "Guides" (title: its first heading).

Pages written alongside the code (hardware, kanqas, hqkan, derivatives, ...) appear in the site
without editing mkdocs.yml, and `mkdocs build --strict` still fails on a page that is nowhere.
"""

from pathlib import Path


def _listed(nav) -> set[str]:
    pages = set()
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages |= _listed(value) if isinstance(value, list) else {value}
    return pages


def on_config(config):
    guides = next(item["Guides"] for item in config["nav"] if isinstance(item, dict) and "Guides" in item)
    listed = _listed(config["nav"])
    for page in sorted(Path(config["docs_dir"]).glob("*.md")):
        if page.name not in listed:
            heading = next((line[2:].strip() for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("# ")), page.stem)
            guides.append({heading: page.name})
    return config
