"""Sign-in, sign-out, password change and the coordinator's member account pages.

Every POST form is checked before it is read: its ``Origin`` (when the browser sent one) must be
this server, else the 403 page is returned. A body over ``MAX_FORM_BYTES`` then gets the 413 page
whatever its fields, because ``read_form`` keeps only the fields before the cut, and the
``csrf_token`` field may be among those cut off. The 413 page changes nothing, so it needs no
token. Otherwise the ``csrf_token`` field must be the token of the browser's session, else the
403 page is returned. The sign-in form has no session yet, so it relies on
the origin check, the SameSite=Lax cookie and the rate limit of ``server.login_limits``.
A user who must change the password is sent to ``/account/password`` from every page except
that one, sign-in and sign-out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cache

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from server.account_pages import render_page, request_language, safe_next, sign_in_redirect
from server.auth import (
    SESSION_COOKIE,
    Authenticator,
    clear_session_cookie,
    set_session_cookie,
)
from server.errors import ServerError
from server.forms import MAX_FORM_BYTES, PostedForm, read_form, same_origin
from server.login_limits import LoginLimiter, sign_in_keys, user_address_key
from server.messages import MESSAGES
from server.page_context import PageAccount
from server.passwords import generate_password, hash_password, password_problem, verify_password
from server.profile_fields import MAX_NAME_LENGTH, account_id_problems, checked_profile
from server.regions import VOIVODESHIPS
from server.storage import Storage
from server.storage.accounts import SessionRecord, UserRecord, normalize_username

logger = logging.getLogger(__name__)

PASSWORD_PATH = "/account/password"
# Paths a user who must change the password may still open.
_ALLOWED_BEFORE_CHANGE = frozenset({PASSWORD_PATH, "/login", "/logout"})
# Prometheus and load balancers call these without a session.
_MONITORING_PATHS = frozenset({"/healthz", "/metrics"})
_NO_STORE = {"Cache-Control": "no-store"}
# User names are cut to this length in log lines, so a pasted text cannot flood the log.
_LOGGED_USERNAME_LENGTH = 64


@cache
def _unknown_user_hash() -> str:
    """Return a hash to check when the user name is unknown, so both cases take the same time."""
    return hash_password(generate_password())


def add_account_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
    limiter: LoginLimiter,
) -> None:
    """Register the account routes and the forced password change on ``app``."""

    @app.middleware("http")
    async def force_password_change(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith("/api/") or path in _MONITORING_PATHS or path in _ALLOWED_BEFORE_CHANGE:
            return await call_next(request)
        session = await asyncio.to_thread(authenticator.session, request)
        if session is not None and session.user.must_change_password:
            return RedirectResponse(PASSWORD_PATH, status_code=303)
        return await call_next(request)

    @app.get("/login")
    async def login_form(request: Request, next: str | None = None) -> Response:
        if not authenticator.required:
            return RedirectResponse("/", status_code=303)
        return _sign_in_page(request, safe_next(next))

    @app.post("/login")
    async def login(request: Request) -> Response:
        if not same_origin(request):
            return _forbidden(request, None)
        form = await read_form(request)
        if form.too_large:
            return _form_too_large(request, None)
        target = safe_next(form.get("next"))
        if not authenticator.required:
            return RedirectResponse("/", status_code=303)

        typed_name = form.get("username", "").strip()
        password = form.get("password", "")
        address = request.client.host if request.client else "unknown"
        logged_name = typed_name[:_LOGGED_USERNAME_LENGTH]
        keys = sign_in_keys(typed_name, address)

        wait = limiter.retry_after(*keys)
        if wait is not None:
            if limiter.first_rejection(*keys):
                logger.warning(
                    "Dashboard sign-in locked for user %r from %s for %d s after repeated "
                    "failures; further attempts are rejected without a log line",
                    logged_name,
                    address,
                    wait,
                )
            return _sign_in_page(request, target, "login_locked", status_code=429, retry_after=wait)

        user = await asyncio.to_thread(storage.find_user, typed_name) if typed_name else None
        stored_hash = user.password_hash if user is not None else _unknown_user_hash()
        verification = await asyncio.to_thread(verify_password, stored_hash, password)
        if user is None or user.disabled or not verification.valid:
            limiter.record_failure(*keys)
            logger.warning("Failed dashboard sign-in for user %r from %s", logged_name, address)
            return _sign_in_page(request, target, "login_invalid", status_code=401)

        limiter.reset(user_address_key(typed_name, address))
        if verification.new_hash is not None:
            await asyncio.to_thread(storage.rehash_password, user.id, verification.new_hash)
        session = await asyncio.to_thread(storage.create_session, user.id, clock())
        logger.info("Dashboard sign-in of user %s from %s", user.username, address)
        redirect_to = PASSWORD_PATH if user.must_change_password else target
        response = RedirectResponse(redirect_to, status_code=303)
        set_session_cookie(request, response, session.session_id)
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        if not same_origin(request):
            return _forbidden(request, None)
        form = await read_form(request)
        session_id = request.cookies.get(SESSION_COOKIE)
        session = await asyncio.to_thread(authenticator.session, request)
        if form.too_large:
            return _form_too_large(request, session)
        if session is not None and session_id is not None:
            if not authenticator.check_csrf(request, form.get("csrf_token")):
                return _forbidden(request, _account(session))
            await asyncio.to_thread(storage.delete_session, session_id)
            logger.info("Dashboard sign-out of user %s", session.user.username)
        response = RedirectResponse("/login" if authenticator.required else "/", status_code=303)
        clear_session_cookie(response)
        return response

    @app.get(PASSWORD_PATH)
    async def password_form(request: Request) -> Response:
        session = await asyncio.to_thread(authenticator.session, request)
        if session is None:
            return sign_in_redirect(request)
        return _password_page(request, session)

    @app.post(PASSWORD_PATH)
    async def change_password(request: Request) -> Response:
        session = await asyncio.to_thread(authenticator.session, request)
        if session is None:
            return sign_in_redirect(request)
        form = await _checked_form(request, session)
        if isinstance(form, Response):
            return form

        user = session.user
        address = request.client.host if request.client else "unknown"
        keys = sign_in_keys(user.username, address)
        wait = limiter.retry_after(*keys)
        if wait is not None:
            return _password_page(request, session, "login_locked", status_code=429, wait=wait)
        current = form.get("current_password", "")
        new = form.get("new_password", "")
        verification = await asyncio.to_thread(verify_password, user.password_hash, current)
        if not verification.valid:
            limiter.record_failure(*keys)
            logger.warning("Wrong current password in a password change of user %s", user.username)
            return _password_page(request, session, "password_current_wrong", status_code=400)
        problem = _new_password_problem(
            new, form.get("new_password_repeat", ""), current, user.username
        )
        if problem is not None:
            return _password_page(request, session, problem, status_code=400)

        new_hash = await asyncio.to_thread(hash_password, new)
        now = clock()
        await asyncio.to_thread(storage.set_password, user.id, new_hash, must_change=False, now=now)
        new_session = await asyncio.to_thread(storage.create_session, user.id, now)
        logger.info("User %s changed the dashboard password; other sessions ended", user.username)
        response = RedirectResponse("/", status_code=303)
        set_session_cookie(request, response, new_session.session_id)
        return response

    @app.get("/coordinator/members")
    async def member_accounts(request: Request) -> Response:
        session = await _coordinator_session(request)
        if isinstance(session, Response):
            return session
        users = await asyncio.to_thread(storage.list_users, session.user.cluster)
        return render_page(
            request,
            "coordinator_accounts.html",
            account=_account(session),
            active="/coordinator/members",
            users=users,
            cluster=session.user.cluster,
        )

    @app.get("/coordinator/members/new")
    async def new_member_form(request: Request) -> Response:
        session = await _coordinator_session(request)
        if isinstance(session, Response):
            return session
        unregistered = await asyncio.to_thread(storage.seen_unregistered, session.user.cluster)
        return _new_member_page(request, session, {}, unregistered)

    @app.post("/coordinator/members/new")
    async def create_member(request: Request) -> Response:
        session = await _coordinator_session(request)
        if isinstance(session, Response):
            return session
        form = await _checked_form(request, session, accept_too_large=True)
        if isinstance(form, Response):
            return form
        cluster = session.user.cluster
        unregistered = await asyncio.to_thread(storage.seen_unregistered, cluster)
        if form.too_large:
            language = request_language(request)
            error = MESSAGES("form_too_large", language, max=MAX_NAME_LENGTH)
            return _new_member_page(request, session, form, unregistered, error, 413)

        member = form.get("member", "").strip()
        # Members already sending offers keep being accepted only if they are registered too,
        # because the cluster's first registration makes ingest reject unregistered members.
        register_also = (
            [other for other in unregistered if other != member]
            if form.get("register_seen") == "1"
            else []
        )
        password = generate_password()
        try:
            profile = checked_profile(
                cluster,
                member,
                name=form.get("name", ""),
                email=form.get("email"),
                phone=form.get("phone"),
                voivodeship=form.get("voivodeship"),
                city=form.get("city"),
                problems=account_id_problems(cluster, member),
            )
            username = normalize_username(form.get("username", "").strip() or member)
            password_hash = await asyncio.to_thread(hash_password, password)
            user = await asyncio.to_thread(
                storage.create_member_with_user,
                profile,
                now=clock(),
                register_also=register_also,
                username=username,
                password_hash=password_hash,
                display_name=profile.name,
                must_change_password=True,
            )
        except ServerError as error:
            language = request_language(request)
            return _new_member_page(
                request, session, form, unregistered, error.localized(language), 400
            )

        authenticator.account_created()
        logger.info(
            "Coordinator %s created member %s/%s with user %s",
            session.user.username,
            cluster,
            member,
            user.username,
        )
        if register_also:
            logger.info(
                "Coordinator %s registered the members already sending offers in %s: %s",
                session.user.username,
                cluster,
                ", ".join(register_also),
            )
        return _one_time_password_page(request, session, "member_created", user.username, password)

    @app.post("/coordinator/members/{member}/reset-password")
    async def reset_password(request: Request, member: str) -> Response:
        found = await _member_account(request, member)
        if isinstance(found, Response):
            return found
        session, user = found

        password = generate_password(user.username)
        password_hash = await asyncio.to_thread(hash_password, password)
        await asyncio.to_thread(
            storage.set_password, user.id, password_hash, must_change=True, now=clock()
        )
        logger.info(
            "Coordinator %s reset the password of user %s", session.user.username, user.username
        )
        return _one_time_password_page(request, session, "password_reset", user.username, password)

    @app.post("/coordinator/members/{member}/disable")
    async def disable_member_account(request: Request, member: str) -> Response:
        found = await _member_account(request, member)
        if isinstance(found, Response):
            return found
        session, user = found

        await asyncio.to_thread(storage.disable_user, user.id)
        logger.info("Coordinator %s disabled user %s", session.user.username, user.username)
        return RedirectResponse("/coordinator/members", status_code=303)

    @app.post("/coordinator/members/{member}/enable")
    async def enable_member_account(request: Request, member: str) -> Response:
        found = await _member_account(request, member)
        if isinstance(found, Response):
            return found
        session, user = found

        await asyncio.to_thread(storage.enable_user, user.id)
        logger.info("Coordinator %s enabled user %s", session.user.username, user.username)
        return RedirectResponse("/coordinator/members", status_code=303)

    async def _member_account(
        request: Request, member: str
    ) -> tuple[SessionRecord, UserRecord] | Response:
        """Check the coordinator's session and form, and return it with the member's account.

        Return the page to send instead when the caller is no coordinator, the form fails its
        CSRF check or the member of the coordinator's cluster has no account.
        """
        session = await _coordinator_session(request)
        if isinstance(session, Response):
            return session
        form = await _checked_form(request, session)
        if isinstance(form, Response):
            return form
        user = await asyncio.to_thread(storage.find_user_of_member, session.user.cluster, member)
        if user is None:
            return _message_page(request, session, "account_not_found", 404, member=member)
        return session, user

    async def _coordinator_session(request: Request) -> SessionRecord | Response:
        session = await asyncio.to_thread(authenticator.session, request)
        if session is None:
            return sign_in_redirect(request)
        if session.user.role != "coordinator":
            return _message_page(request, session, "coordinator_only", 403)
        return session

    async def _checked_form(
        request: Request, session: SessionRecord, *, accept_too_large: bool = False
    ) -> PostedForm | Response:
        """Return the posted form, or the page to send for a foreign origin, a form over the
        size limit (413) or a wrong CSRF token (403).

        With ``accept_too_large`` set, a form over the size limit whose cut part still contains
        the right token is returned, because the caller then shows the form again itself.
        """
        if not same_origin(request):
            return _forbidden(request, _account(session))
        form = await read_form(request)
        token_valid = authenticator.check_csrf(request, form.get("csrf_token"))
        if form.too_large and not (accept_too_large and token_valid):
            return _form_too_large(request, session)
        if not token_valid:
            logger.warning(
                "Rejected %s of user %s: missing or wrong CSRF token",
                request.url.path,
                session.user.username,
            )
            return _forbidden(request, _account(session))
        return form


def _new_password_problem(new: str, repeated: str, current: str, username: str) -> str | None:
    if new != repeated:
        return "password_mismatch"
    if new == current:
        return "password_unchanged"
    return password_problem(new, username)


def _account(session: SessionRecord) -> PageAccount:
    user = session.user
    return PageAccount(user.shown_name, user.role, session.csrf_token, user.member)


def _sign_in_page(
    request: Request,
    target: str,
    error: str | None = None,
    *,
    status_code: int = 200,
    retry_after: int | None = None,
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    minutes = -(-retry_after // 60) if retry_after is not None else 0
    return render_page(
        request,
        "sign_in.html",
        account=None,
        status_code=status_code,
        headers=headers,
        next_path=target,
        error=error,
        minutes=minutes,
    )


def _password_page(
    request: Request,
    session: SessionRecord,
    error: str | None = None,
    *,
    status_code: int = 200,
    wait: int = 0,
) -> Response:
    headers = {"Retry-After": str(wait)} if wait else None
    return render_page(
        request,
        "account_password.html",
        account=_account(session),
        status_code=status_code,
        headers=headers,
        error=error,
        minutes=-(-wait // 60),
        forced=session.user.must_change_password,
    )


def _new_member_page(
    request: Request,
    session: SessionRecord,
    form: dict[str, str],
    unregistered: list[str],
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "member_new.html",
        account=_account(session),
        active="/coordinator/members",
        status_code=status_code,
        form=form,
        error=error,
        cluster=session.user.cluster,
        voivodeships=VOIVODESHIPS,
        unregistered=unregistered,
    )


def _one_time_password_page(
    request: Request, session: SessionRecord, heading: str, username: str, password: str
) -> Response:
    return render_page(
        request,
        "one_time_password.html",
        account=_account(session),
        active="/coordinator/members",
        headers=_NO_STORE,
        heading=heading,
        username=username,
        password=password,
    )


def _message_page(
    request: Request, session: SessionRecord | None, message: str, status_code: int, **fields: str
) -> Response:
    return render_page(
        request,
        "account_message.html",
        account=_account(session) if session is not None else None,
        status_code=status_code,
        message=message,
        fields=fields,
    )


def _form_too_large(request: Request, session: SessionRecord | None) -> Response:
    user = session.user.username if session is not None else "(not signed in)"
    logger.warning("Form %s of user %s is over %d bytes", request.url.path, user, MAX_FORM_BYTES)
    return _message_page(request, session, "form_too_large_generic", 413)


def _forbidden(request: Request, account: PageAccount | None) -> Response:
    return render_page(
        request,
        "account_message.html",
        account=account,
        status_code=403,
        message="form_rejected",
        fields={},
    )
