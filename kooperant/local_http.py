"""Serving a small HTTP app inside a program's own event loop: the server's API, the agent's status.

uvicorn normally owns the process: it installs signal handlers and exits the interpreter when its
port is taken. ``EmbeddedUvicorn`` leaves signals to the embedding program, and ``bound_socket``
binds the port before uvicorn starts, so a taken port is an ``OSError`` the caller can report.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn


class EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the program that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bound_socket(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to ``host`` and ``port``; raises ``OSError`` when that fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
