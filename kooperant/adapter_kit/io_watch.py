"""Detect I/O done by the current thread inside a block, through Python's audit hooks (PEP 578).

The interpreter raises an audit event for every file opened (``open``), every directory listed or
changed (``os.listdir``, ``os.mkdir``, ...), every socket operation (``socket.*``) and every
process started (``subprocess.Popen``, ``os.system``). A hook installed once per process records
the events of the watched thread while a block runs. Events raised while a module is being
imported are ignored, because a lazy import is not the adapter's I/O.

Limits: ``os.stat`` and its callers (``Path.exists``, ``Path.is_file``) raise no audit event, so
checking whether a file exists is not detected, and neither is I/O done by C extensions that
bypass Python's ``open`` and ``socket``. An audit hook cannot be removed; outside a watched block
it returns after one dictionary lookup.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

IO_EVENTS = frozenset(
    {
        "open",
        "os.chmod",
        "os.chown",
        "os.exec",
        "os.fork",
        "os.link",
        "os.listdir",
        "os.mkdir",
        "os.posix_spawn",
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.scandir",
        "os.spawn",
        "os.symlink",
        "os.system",
        "os.truncate",
        "os.utime",
        "sqlite3.connect",
        "subprocess.Popen",
        "urllib.Request",
    }
)
IO_EVENT_PREFIXES = ("socket.",)
MAX_ARGUMENT_CHARS = 120

_lock = threading.Lock()
_installed = False
# Thread id -> the events recorded for the block that thread is running.
_watched: dict[int, list[str]] = {}


@contextlib.contextmanager
def watch_io() -> Iterator[list[str]]:
    """Record the I/O audit events of the current thread inside the block, as readable lines."""
    _install_hook()
    thread = threading.get_ident()
    events: list[str] = []
    _watched[thread] = events
    try:
        yield events
    finally:
        del _watched[thread]


def _install_hook() -> None:
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_record)
            _installed = True


def _record(event: str, arguments: tuple[Any, ...]) -> None:
    events = _watched.get(threading.get_ident())
    if events is None:
        return
    if event not in IO_EVENTS and not event.startswith(IO_EVENT_PREFIXES):
        return
    if _importing(sys._getframe(1)):
        return
    shown = ", ".join(_describe(argument) for argument in arguments)
    events.append(f"{event}({shown})")


def _importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _describe(argument: object) -> str:
    # An exception here would propagate into the audited call, such as a half-built socket's repr.
    try:
        text = repr(argument)
    except Exception:
        text = f"<{type(argument).__name__}>"
    return _shorten(text)


def _shorten(text: str) -> str:
    if len(text) <= MAX_ARGUMENT_CHARS:
        return text
    return text[: MAX_ARGUMENT_CHARS - 3] + "..."
