"""``python -m qkan``: the same as the ``qkan`` command."""

from qkan.cli import entry

entry()
