"""Who is calling: a member behind a bearer token, or a dashboard account behind a session cookie.

The server is open (every caller anonymous, seeing only offers meant for a whole cluster) until a
tokens file is configured or the first dashboard account exists. Then an API request needs
``Authorization: Bearer TOKEN`` or a dashboard session cookie (``kooperant_session``) and gets
401 without either. The API has only GET routes, so reading the cookie there needs no CSRF
protection. A dashboard page takes the session cookie or, for programs, a bearer token of the
tokens file. Tokens, passwords and
session ids are never logged.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime

from fastapi import Request, Response

from server.api_errors import ApiError
from server.errors import StorageError
from server.page_context import PageAccount
from server.storage import ANONYMOUS, Storage, Viewer
from server.storage.accounts import SESSION_MAX_AGE, SessionRecord, UserRecord
from server.tokens import TokenStore

logger = logging.getLogger(__name__)

SESSION_COOKIE = "kooperant_session"
# How long a "no dashboard account exists" result is reused before the database is queried again.
# Accounts are never deleted (only disabled), so a "yes" is kept for good.
ACCOUNTS_RECHECK_SECONDS = 2.0
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kooperant"'}
_SESSION_STATE = "kooperant_session_record"


class Authenticator:
    """Turns the credentials of a request into a ``Viewer``.

    ``tokens`` are the API tokens (or ``None``), ``storage`` contains the dashboard accounts and
    sessions, ``clock`` decides session expiry.
    """

    def __init__(
        self,
        tokens: TokenStore | None,
        storage: Storage,
        clock: Callable[[], datetime],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = tokens
        self._storage = storage
        self._clock = clock
        self._monotonic = monotonic
        self._accounts_exist = False
        self._accounts_checked_at: float | None = None
        self._database_lost = False

    @property
    def required(self) -> bool:
        """Whether callers must sign in: a tokens file is set or a dashboard account exists.

        Raises ``StorageError`` when the database cannot tell whether an account exists.
        """
        return self._tokens is not None or self._any_account()

    def account_created(self) -> None:
        """Record that an account now exists, so that ``required`` turns true at once."""
        self._accounts_exist = True

    def has_token(self, viewer: Viewer) -> bool:
        """Return whether the tokens file has a token of the member ``viewer``."""
        if self._tokens is None or viewer.cluster is None or viewer.member is None:
            return False
        return self._tokens.has_member(viewer.cluster, viewer.member)

    def _any_account(self) -> bool:
        if self._accounts_exist:
            return True
        now = self._monotonic()
        checked = self._accounts_checked_at
        if checked is not None and now - checked < ACCOUNTS_RECHECK_SECONDS:
            return False
        try:
            self._accounts_exist = self._storage.any_user()
        except StorageError as error:
            # The caller cannot tell open mode from closed, so the request fails with 503
            # (the handlers of server.error_pages) instead of a misleading 401 or open data.
            if not self._database_lost:
                logger.warning("Could not check for dashboard accounts: %s", error)
                self._database_lost = True
            raise
        if self._database_lost:
            logger.info("Database available again for the dashboard account check")
            self._database_lost = False
        self._accounts_checked_at = now
        return self._accounts_exist

    def api_viewer(self, request: Request) -> Viewer:
        """Return the caller of an API request, or raise ``ApiError`` 401 or 403.

        In open mode every caller is anonymous. Otherwise the caller needs a bearer token of the
        tokens file or the session cookie of a dashboard account whose password needs no change.
        """
        if not self.required:
            return ANONYMOUS
        token = bearer_token(request)
        if token is not None:
            return self._token_viewer(request, token)
        session = self.session(request)
        if session is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing credentials; send the header 'Authorization: Bearer TOKEN' with the "
                "token the cluster coordinator gave your company, or sign in to the dashboard",
                _CHALLENGE,
            )
        if session.user.must_change_password:
            logger.info(
                "Rejected an API request to %s: user %r must change the password",
                request.url.path,
                session.user.username,
            )
            raise ApiError(
                403,
                "password_change_required",
                f"the dashboard account {session.user.username!r} must change its password "
                "first; open /account/password in the dashboard",
            )
        return viewer_of_user(session.user)

    def _token_viewer(self, request: Request, token: str) -> Viewer:
        viewer = self._tokens.viewer_for(token) if self._tokens is not None else None
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

    def session(self, request: Request) -> SessionRecord | None:
        """Return the live session of the request's cookie, or ``None``; read once per request."""
        if hasattr(request.state, _SESSION_STATE):
            cached: SessionRecord | None = getattr(request.state, _SESSION_STATE)
            return cached
        session_id = request.cookies.get(SESSION_COOKIE)
        found = self._storage.find_session(session_id, self._clock()) if session_id else None
        setattr(request.state, _SESSION_STATE, found)
        return found

    def page_account(self, request: Request) -> PageAccount | None:
        """Return the signed-in account of a dashboard page, or ``None`` when there is none."""
        session = self.session(request)
        if session is None:
            return None
        user = session.user
        return PageAccount(user.shown_name, user.role, session.csrf_token, user.member)

    def dashboard_viewer(self, request: Request) -> Viewer | None:
        """Return the dashboard's caller, or ``None`` when the caller must sign in first.

        A session whose user must change the password gives ``None`` too, so no page shows
        offers before the change.
        """
        if not self.required:
            return ANONYMOUS
        token = bearer_token(request)
        if token is not None and self._tokens is not None:
            return self._tokens.viewer_for(token)
        session = self.session(request)
        if session is None or session.user.must_change_password:
            return None
        return viewer_of_user(session.user)

    def check_csrf(self, request: Request, token: str | None) -> bool:
        """Return whether ``token`` is the CSRF token of the request's session."""
        session = self.session(request)
        if session is None or not token:
            return False
        return secrets.compare_digest(session.csrf_token.encode(), token.encode())


def viewer_of_user(user: UserRecord) -> Viewer:
    """Return the view of offers a dashboard account gets."""
    if user.role == "coordinator":
        return Viewer(cluster=user.cluster, member=user.member, coordinator=True)
    return Viewer(cluster=user.cluster, member=user.member)


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    """Set the session cookie: HttpOnly, SameSite=Lax, Secure when the request came over HTTPS.

    NOTE: behind a proxy that ends TLS the request arrives as plain HTTP, so the cookie lacks
    Secure there. ``X-Forwarded-Proto`` is not trusted, because no proxy setting exists yet.
    """
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def bearer_token(request: Request) -> str | None:
    """Return the token of an ``Authorization: Bearer TOKEN`` header, or ``None``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
