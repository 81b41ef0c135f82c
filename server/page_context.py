"""The variables of the dashboard layout (``templates/base.html``): language, menu, account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from kooperant.i18n import Language
from server.messages import MESSAGES


@dataclass(frozen=True, slots=True)
class PageAccount:
    """The signed-in account as the layout shows it."""

    display_name: str
    role: str
    """``member`` or ``coordinator``."""
    csrf_token: str
    member: str | None = None
    """The account's member, which a coordinator account may lack."""


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str
    active: bool


# (path, message id, shown to: everyone, coordinators or accounts of a member)
_MENU = (
    ("/", "nav_search", "everyone"),
    ("/members", "nav_members", "everyone"),
    ("/requests", "nav_requests", "member"),
    ("/coordinator", "nav_coordinator", "coordinator"),
    ("/coordinator/members", "nav_member_accounts", "coordinator"),
)


def page_context(
    request: Request, language: Language, account: PageAccount | None, active: str
) -> dict[str, Any]:
    """Return the layout's template variables; ``active`` is the menu path of this page."""

    def text(message_id: str, **fields: object) -> str:
        return MESSAGES(message_id, language, **fields)

    audiences = {"everyone"}
    if account is not None and account.role == "coordinator":
        audiences.add("coordinator")
    if account is not None and account.member is not None:
        audiences.add("member")
    nav_items = [
        NavItem(path, text(message_id), path == active)
        for path, message_id, audience in _MENU
        if audience in audiences
    ]
    return {
        "language": language,
        "other_language": "en" if language == "pl" else "pl",
        "t": text,
        "language_switch_url": language_switch_url(request, "en" if language == "pl" else "pl"),
        "nav_items": nav_items,
        "account": account,
        "csrf_token": account.csrf_token if account is not None else "",
    }


def language_switch_url(request: Request, language: Language) -> str:
    """Return this page's path and query with ``lang`` set to ``language``."""
    query = [(name, value) for name, value in request.query_params.multi_items() if name != "lang"]
    query.append(("lang", language))
    return f"{request.url.path}?{urlencode(query)}"
