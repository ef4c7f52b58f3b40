"""Progress bars that cost nothing when turned off.

``tqdm.auto`` checks for ipywidgets on import inside Jupyter and warns ("IProgress not found")
when it is missing, even for a bar that is never shown, so it is imported only for a bar that is.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["progress_bar"]


def progress_bar(iterable: Iterable, enabled: bool, **options):
    """A tqdm bar over `iterable` (tqdm.auto: a widget in Jupyter) when `enabled`, else a disabled plain one."""
    if enabled:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(iterable, disable=not enabled, **options)
