"""Reading the dashboard's HTML forms and rejecting forms posted from other sites."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from fastapi import Request

logger = logging.getLogger(__name__)

MAX_FORM_BYTES = 8 * 1024
MAX_FORM_FIELDS = 20


def same_origin(request: Request) -> bool:
    """Return whether the form was posted from this server's own pages.

    Browsers send ``Origin`` with every POST; a request without it (curl, older browsers) is
    accepted, because only a browser carries a third site's form to this one, and the CSRF token
    is checked as well.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    accepted = urlsplit(origin).netloc == request.headers.get("host")
    if not accepted:
        logger.warning("Rejected %s posted from origin %s", request.url.path, origin)
    return accepted


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
