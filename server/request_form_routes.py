"""The POST of the offer page's request form, which stores a capacity request.

The post is checked by ``server.page_posts`` (session, Origin, size, CSRF token). An invalid
field, or a refusal of ``Storage.create_request``, shows the form again on its own page with
the error next to its field and every typed value kept. A stored request redirects (303) to
its page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.api_errors import read
from server.auth import Authenticator, viewer_of_user
from server.errors import RequestError, RequestNotFoundError
from server.messages import MESSAGES
from server.page_posts import checked_form, post_session
from server.pages import message_page, render_page, request_language, valid_ids
from server.request_form import (
    REQUEST_FORM_MAX_BYTES,
    RequestForm,
    form_of_hidden_offer,
    request_form,
)
from server.request_form_checks import parse_request_form, storage_error_field
from server.storage import ResourceRecord, Storage

logger = logging.getLogger(__name__)


def add_request_form_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
) -> None:
    """Register the POST of the offer page's request form on ``app``."""

    @app.post("/offers/{cluster}/{member}/{resource}/request", include_in_schema=False)
    async def send_request(request: Request, cluster: str, member: str, resource: str) -> Response:
        language = request_language(request)
        offer = f"/offers/{cluster}/{member}/{resource}"
        session = await post_session(request, authenticator, f"{offer}?lang={language}")
        if isinstance(session, Response):
            return session
        form = await checked_form(request, authenticator, session, max_bytes=REQUEST_FORM_MAX_BYTES)
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

        request.app.state.requests_changed.set()
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
