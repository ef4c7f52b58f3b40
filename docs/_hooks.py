"""mkdocs hook: the guides written alongside the code join the nav when their page exists."""

from pathlib import Path

#: page -> title, added to "Guides" in this order when present
OPTIONAL_GUIDES = {"hardware.md": "Hardware runs", "kanqas.md": "Architecture search (KANQAS)", "hqkan.md": "HQKAN in transformers"}


def on_config(config):
    docs = Path(config["docs_dir"])
    guides = next(item["Guides"] for item in config["nav"] if isinstance(item, dict) and "Guides" in item)
    known = {page for entry in guides for page in entry.values()}
    guides.extend({title: page} for page, title in OPTIONAL_GUIDES.items() if (docs / page).is_file() and page not in known)
    return config
