"""Heavy work that must not run beside a quiet measurement on a shared machine.

``run_all --lock FILE`` holds FILE (an flock(2) lock, the one the timing wrapper takes before it
measures, e.g. bench/alone.sh's ``ALONE_LOCK``) while it exports, calibrates and scores, lets it go
while each timed command runs (the wrapper takes it then) and between two versions (so that
someone else's measurement waiting for the lock gets its turn). Without ``--lock`` nothing here
does anything.
"""
from __future__ import annotations

import contextlib
import fcntl
import time
from typing import IO, Iterator

_held: IO | None = None


def hold(path: str) -> None:
    """Take the lock for the rest of the process (waits while someone else holds it)."""
    global _held
    _held = open(path, "a")
    fcntl.flock(_held, fcntl.LOCK_EX)


@contextlib.contextmanager
def released() -> Iterator[None]:
    """The lock let go for the duration of the block and taken again after it."""
    if _held is None:
        yield
        return
    fcntl.flock(_held, fcntl.LOCK_UN)
    try:
        yield
    finally:
        fcntl.flock(_held, fcntl.LOCK_EX)


def released_for(wrapper: list[str] | None) -> contextlib.AbstractContextManager:
    """Around a timed command: the lock let go when a ``wrapper`` (which takes it) runs the
    command, kept otherwise."""
    return released() if wrapper else contextlib.nullcontext()


def breathe(seconds: float = 1.0) -> None:
    """Let a waiting holder in between two steps of heavy work."""
    if _held is not None:
        with released():
            time.sleep(seconds)
