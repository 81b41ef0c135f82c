"""The checks that broker and SMTP server URLs share: ``SCHEME://HOST[:PORT]`` and nothing more.

Each caller names its message ids by a prefix (``broker_url``, ``smtp_url``), so the errors keep
the option they came from, and passes the URL as it may be shown, without a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from server.errors import InvalidSettingError


@dataclass(frozen=True, slots=True)
class ServerUrl:
    """The parts of a checked server URL; ``port`` is ``None`` when the URL gives none."""

    scheme: str
    host: str
    port: int | None


def split_server_url(url: str, schemes: tuple[str, ...], prefix: str, shown: str) -> ServerUrl:
    """Return the scheme, host and port of ``url``, or raise ``InvalidSettingError``.

    The message ids are ``{prefix}_scheme``, ``_credentials``, ``_host``, ``_path`` and ``_port``,
    each with ``shown`` as the URL. Credentials belong in separate settings, so a URL with a user
    name or password is rejected.
    """
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise InvalidSettingError(f"{prefix}_scheme", url=shown)
    if parts.username is not None or parts.password is not None:
        raise InvalidSettingError(f"{prefix}_credentials", url=shown)
    if not parts.hostname:
        raise InvalidSettingError(f"{prefix}_host", url=shown)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidSettingError(f"{prefix}_path", url=shown)

    try:
        port = parts.port
    except ValueError as error:
        raise InvalidSettingError(f"{prefix}_port", url=shown) from error
    if port == 0:
        raise InvalidSettingError(f"{prefix}_port", url=shown)
    return ServerUrl(parts.scheme, parts.hostname, port)
