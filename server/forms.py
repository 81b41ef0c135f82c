"""Reading the dashboard's HTML forms and rejecting forms posted from other sites."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from fastapi import Request

logger = logging.getLogger(__name__)

MAX_FORM_BYTES = 8 * 1024
MAX_FORM_FIELDS = 20
_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(request: Request) -> bool:
    """Return whether the form was posted from this server's own pages.

    Browsers send ``Origin`` with every POST; a request without it (curl, older browsers) is
    accepted, because only a browser carries a third site's form to this one, and the CSRF token
    is checked as well. The scheme, host and port of ``Origin`` must all equal the request's own,
    so a page of ``https://HOST:PORT`` cannot post to ``http://HOST:PORT``.

    NOTE: behind a proxy that ends TLS every browser form fails this check, because the request
    arrives as ``http`` and proxy headers are not trusted; a public-address setting would fix it.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = _origin_of_url(str(request.base_url))
    accepted = own is not None and _origin_of_url(origin) == own
    if not accepted:
        logger.warning("Rejected %s posted from origin %s", request.url.path, origin)
    return accepted


def _origin_of_url(url: str) -> tuple[str, str, int] | None:
    """Return the scheme, lower-case host and port of ``url``, or ``None`` if it has none."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


async def read_form(request: Request) -> dict[str, str]:
    """Return the first value of each field of a URL-encoded form body.

    A body over 8 KiB or with more than 20 fields counts as an empty form, which every handler
    treats as invalid input.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return {}
    return {name: values[0] for name, values in fields.items()}
