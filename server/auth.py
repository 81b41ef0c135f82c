"""Who is calling: the member behind a bearer token or the dashboard's token cookie.

Without a tokens file every caller is anonymous and sees only offers meant for a whole cluster.
With one, an API request needs ``Authorization: Bearer TOKEN`` and gets 401 without a valid
token. The dashboard also reads the token from the cookie its sign-in form sets. Tokens are
never logged.
"""

from __future__ import annotations

import logging

from fastapi import Request

from server.api_errors import ApiError
from server.page_context import PageAccount
from server.storage import ANONYMOUS, Viewer
from server.tokens import TokenStore

logger = logging.getLogger(__name__)

COOKIE_NAME = "kooperant_token"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kooperant"'}


class Authenticator:
    """Turns the credentials of a request into a ``Viewer``, using ``tokens`` when set."""

    def __init__(self, tokens: TokenStore | None) -> None:
        self._tokens = tokens

    @property
    def required(self) -> bool:
        """Whether callers must present a token (a tokens file is configured)."""
        return self._tokens is not None

    def viewer_for_token(self, token: str) -> Viewer | None:
        """Return the member whose token ``token`` is, or ``None``; anonymous without tokens."""
        if self._tokens is None:
            return ANONYMOUS
        return self._tokens.viewer_for(token)

    def api_viewer(self, request: Request) -> Viewer:
        """Return the caller of an API request, or raise ``ApiError`` 401."""
        if self._tokens is None:
            return ANONYMOUS
        token = bearer_token(request)
        if token is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing API token; send the header 'Authorization: Bearer TOKEN' with the "
                "token the cluster coordinator gave your company",
                _CHALLENGE,
            )
        viewer = self._tokens.viewer_for(token)
        if viewer is None:
            logger.debug("Rejected an API request to %s: unknown token", request.url.path)
            raise ApiError(
                401,
                "unauthorized",
                "invalid API token; check that it was copied whole, or ask the cluster "
                "coordinator for a new one",
                _CHALLENGE,
            )
        return viewer

    def page_account(self, request: Request) -> PageAccount | None:
        """Return the signed-in account of a dashboard page, or ``None`` when there is none."""
        return None

    def dashboard_viewer(self, request: Request) -> Viewer | None:
        """Return the dashboard's caller from the bearer header or the cookie, or ``None``."""
        if self._tokens is None:
            return ANONYMOUS
        token = bearer_token(request) or request.cookies.get(COOKIE_NAME)
        if not token:
            return None
        return self._tokens.viewer_for(token)


def bearer_token(request: Request) -> str | None:
    """Return the token of an ``Authorization: Bearer TOKEN`` header, or ``None``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
