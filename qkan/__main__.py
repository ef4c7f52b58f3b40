"""``python -m qkan``: the same as the ``qkan`` command."""

from qkan.cli import main

raise SystemExit(main())
