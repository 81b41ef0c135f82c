"""Response headers that keep browsers from framing, sniffing or caching the server's pages.

Every response gets ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``.
An HTML page also gets ``X-Frame-Options: DENY`` and a Content-Security-Policy that allows only
the server's own resources. The templates contain inline styles and no scripts, so the policy
allows inline styles but no inline script. A page that sets a policy of its own keeps it, as the
API docs page (``server.api_docs``) does to allow its one inline script by hash. A response to a
request with a session cookie or an ``Authorization`` header gets ``Cache-Control: no-store``, so
no shared or browser cache keeps what a signed-in caller saw.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import SESSION_COOKIE

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; form-action 'self'; base-uri 'self'; frame-ancestors 'none'"
)
_EVERY_RESPONSE = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


class SecurityHeadersMiddleware:
    """Add the security headers described in the module docstring to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        signed_in = _has_credentials(Headers(scope=scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(MutableHeaders(scope=message), signed_in)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _has_credentials(headers: Headers) -> bool:
    if "authorization" in headers:
        return True
    cookies = headers.get("cookie", "")
    return any(part.strip().startswith(f"{SESSION_COOKIE}=") for part in cookies.split(";"))


def _add_headers(headers: MutableHeaders, signed_in: bool) -> None:
    for name, value in _EVERY_RESPONSE.items():
        headers.setdefault(name, value)

    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("x-frame-options", "DENY")
        headers.setdefault("content-security-policy", CONTENT_SECURITY_POLICY)

    if signed_in:
        headers["cache-control"] = "no-store"
