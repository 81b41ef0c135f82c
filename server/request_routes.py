"""Dashboard routes of capacity requests: the offer page's request form, request pages, withdrawal.

Every POST is checked like the account forms of ``server.account_routes``. A foreign ``Origin``
gets the 403 page, and a body over ``MAX_FORM_BYTES`` gets the 413 page. The ``csrf_token`` field
must be the token of the browser's session, else the 403 page is returned. A POST needs a
session, because only a session has a CSRF token, so a caller without one is sent to sign in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.api_errors import read
from server.auth import Authenticator, viewer_of_user
from server.errors import RequestError, RequestNotFoundError
from server.forms import MAX_FORM_BYTES, PostedForm, read_form, same_origin
from server.messages import MESSAGES
from server.pages import message_page, render_page, request_language, valid_ids
from server.request_form import (
    RequestForm,
    form_of_hidden_offer,
    parse_request_form,
    request_form,
    storage_error_field,
)
from server.storage import ResourceRecord, Storage
from server.storage.accounts import SessionRecord

logger = logging.getLogger(__name__)


def add_request_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
) -> None:
    """Register the request form's POST, ``/requests`` and ``/requests/{id}`` on ``app``."""

    @app.post("/offers/{cluster}/{member}/{resource}/request", include_in_schema=False)
    async def send_request(request: Request, cluster: str, member: str, resource: str) -> Response:
        language = request_language(request)
        offer = f"/offers/{cluster}/{member}/{resource}"
        session = await _session(request, authenticator, f"{offer}?lang={language}")
        if isinstance(session, Response):
            return session
        form = await _checked_form(request, authenticator, session)
        if isinstance(form, Response):
            return form
        user = session.user
        if user.member is None or (user.cluster, user.member) == (cluster, member):
            message_id = "request_needs_member" if user.member is None else "request_own_offer"
            logger.info(
                "Rejected a request of user %s for %s/%s/%s: %s",
                user.username,
                cluster,
                member,
                resource,
                message_id,
            )
            text = MESSAGES(message_id, language, resource=resource)
            heading = MESSAGES("forbidden_title", language)
            return message_page(request, authenticator, 403, heading, text)

        viewer = viewer_of_user(user)
        now = clock()
        values = {name: value for name, value in form.items() if name != "csrf_token"}
        record = None
        if valid_ids(cluster, member, resource):
            record = await read(
                storage.get_resource, cluster, member, resource, viewer=viewer, now=now
            )
        if record is None:
            error = RequestNotFoundError(
                "request_offer_not_found", cluster=cluster, member=member, resource=resource
            )
            hidden = form_of_hidden_offer(
                cluster, member, resource, values, error.localized(language), language
            )
            return _form_page(request, authenticator, None, hidden, 404)

        parsed = parse_request_form(form, record, user.member, now, language)
        if isinstance(parsed, dict):
            shown = request_form(record, values, parsed, now, language)
            return _form_page(request, authenticator, record, shown, 400)
        try:
            stored = await read(storage.create_request, parsed, viewer=viewer, now=now)
        except RequestError as refused:
            logger.info(
                "Rejected a request of user %s for %s/%s/%s: %s",
                user.username,
                cluster,
                member,
                resource,
                refused,
            )
            field, text = storage_error_field(refused, language)
            shown = request_form(record, values, {field: text}, now, language)
            status = 404 if isinstance(refused, RequestNotFoundError) else 422
            return _form_page(request, authenticator, record, shown, status)

        request_id = stored.request.request_id
        logger.info(
            "User %s requested capacity of %s/%s/%s as request %s",
            user.username,
            cluster,
            member,
            resource,
            request_id,
        )
        return RedirectResponse(f"/requests/{request_id}?lang={language}", status_code=303)


async def _session(
    request: Request, authenticator: Authenticator, come_back_to: str
) -> SessionRecord | Response:
    """Return the session of a POST, or the redirect to sign in that returns to a page."""
    session = await asyncio.to_thread(authenticator.session, request)
    if session is None or session.user.must_change_password:
        return RedirectResponse(f"/login?next={quote(come_back_to, safe='')}", status_code=303)
    return session


async def _checked_form(
    request: Request, authenticator: Authenticator, session: SessionRecord
) -> PostedForm | Response:
    """Return the posted form, or the 403 or 413 page described in the module docstring."""
    if not same_origin(request):
        return _account_message(request, authenticator, "form_rejected", 403)
    form = await read_form(request)
    if form.too_large:
        logger.warning(
            "Form %s of user %s is over %d bytes",
            request.url.path,
            session.user.username,
            MAX_FORM_BYTES,
        )
        return _account_message(request, authenticator, "form_too_large_generic", 413)
    if not authenticator.check_csrf(request, form.get("csrf_token")):
        logger.warning(
            "Rejected %s of user %s: missing or wrong CSRF token",
            request.url.path,
            session.user.username,
        )
        return _account_message(request, authenticator, "form_rejected", 403)
    return form


def _account_message(
    request: Request, authenticator: Authenticator, message: str, status_code: int
) -> HTMLResponse:
    return render_page(
        request,
        authenticator,
        "account_message.html",
        "",
        status_code=status_code,
        message=message,
        fields={},
    )


def _form_page(
    request: Request,
    authenticator: Authenticator,
    record: ResourceRecord | None,
    form: RequestForm,
    status_code: int,
) -> HTMLResponse:
    return render_page(
        request,
        authenticator,
        "request_new.html",
        "",
        status_code=status_code,
        offer_name=(record.name or record.resource) if record is not None else None,
        request_form=form,
    )
