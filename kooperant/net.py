"""Network helpers shared by the agent, the adapters, the demo and the tests."""

from __future__ import annotations

import socket


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    Another process may take the port between this call and the bind that follows, which is
    acceptable for a demo and for tests on loopback.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def mask_url_credentials(url: str) -> str:
    """Return ``url`` with the password of its user info replaced by ``***``, for messages.

    The user info is taken to end at the last ``@``, as ``urllib.parse`` does, and a ``/`` in the
    password, which hides the user info from ``urlsplit``, does not expose it here. User info
    without a ``:`` may be a token, so it is masked whole. An ``@`` in a path or query is taken
    as the end of user info too, which masks more than needed.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    masked = f"{user}:***" if colon else "***"
    return f"{scheme}{separator}{masked}@{host}"
