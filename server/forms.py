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
    is checked as well. The host and port of ``Origin`` must equal those of the ``Host`` header,
    where a missing port is the default of the Origin's scheme. The scheme itself is not
    compared: behind a proxy that ends TLS the browser's ``https`` origin reaches this server
    over ``http``, and no other site can serve pages on this host and port.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    accepted = False
    origin_parts = _host_and_port(origin)
    if origin_parts is not None:
        scheme = urlsplit(origin).scheme.lower()
        own = _host_and_port(f"{scheme}://{request.headers.get('host', '')}")
        accepted = own == origin_parts
    if not accepted:
        logger.warning("Rejected %s posted from origin %s", request.url.path, origin)
    return accepted


def _host_and_port(url: str) -> tuple[str, int] | None:
    """Return the lower-case host and port of ``url``, or ``None`` if it has none."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in _DEFAULT_PORTS:
        return None
    return parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


class PostedForm(dict[str, str]):
    """The first value of each posted field; ``too_large`` is set when the body was cut."""

    too_large: bool = False


async def read_form(request: Request, *, max_bytes: int = MAX_FORM_BYTES) -> PostedForm:
    """Return the first value of each field of a URL-encoded form body.

    A body over ``max_bytes`` gives a form with ``too_large`` set. It contains only the fields
    that end within the first ``max_bytes``, and the rest of the body is read and dropped.
    Which fields survive the cut depends on their order and length, so a handler must not let
    them decide how it treats such a form (the CSRF token may have been cut off too).
    A body that cannot be parsed, or has more than ``MAX_FORM_FIELDS`` fields, gives an
    empty form, which every handler treats as invalid input.
    """
    body = b""
    too_large = False
    async for chunk in request.stream():
        if too_large:
            continue
        body += chunk
        if len(body) > max_bytes:
            too_large = True
            body = _complete_fields(body[:max_bytes])

    form = PostedForm()
    form.too_large = too_large
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return form
    form.update((name, values[0]) for name, values in fields.items())
    return form


def _complete_fields(prefix: bytes) -> bytes:
    """Return ``prefix`` up to its last ``&``, dropping the field the cut went through."""
    end = prefix.rfind(b"&")
    return prefix[:end] if end >= 0 else b""
