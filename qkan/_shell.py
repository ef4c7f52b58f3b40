"""What the command-line programs (`qkan fit | bench`, `qkan search`) share: one-line errors and
signal handling. Both import it; neither imports the other at module level.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["fail", "Terminated", "sigterm_as_interrupt", "signals_deferred", "interrupt_code"]


def fail(message: str) -> int:
    """Print `message` to stderr on one line (multi-line messages from torch folded) and return exit code 2."""
    print(" ".join(message.split()), file=sys.stderr)
    return 2


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an interrupt, so `kill PID` saves like Ctrl-C does."""


def interrupt_code(err: KeyboardInterrupt) -> int:
    """The exit code of an interrupted command: 143 after SIGTERM, 130 after Ctrl-C."""
    return 143 if isinstance(err, Terminated) else 130


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside: SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread; no-op in other threads."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Inside: Ctrl-C and SIGTERM are ignored (main thread only), so files written there are complete."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
