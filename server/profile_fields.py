"""Checks of the member profile fields that the coordinator enters in the CLI or the dashboard."""

from __future__ import annotations

import re

from server.errors import AccountError
from server.regions import VOIVODESHIP_CODES
from server.storage.profiles import MemberProfile

MAX_NAME_LENGTH = 200
MAX_CITY_LENGTH = 100
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9 ()-]{6,25}")


def checked_profile(
    cluster: str,
    member: str,
    *,
    name: str | None,
    email: str | None,
    phone: str | None,
    voivodeship: str | None,
    city: str | None,
) -> MemberProfile:
    """Return the profile with blank fields as ``None``; raise ``AccountError`` for a bad value.

    A missing name becomes the member id.
    """
    name = _blank_to_none(name) or member
    email = _blank_to_none(email)
    phone = _blank_to_none(phone)
    voivodeship = _blank_to_none(voivodeship)
    city = _blank_to_none(city)

    if len(name) > MAX_NAME_LENGTH:
        raise AccountError("profile_name_too_long", max=MAX_NAME_LENGTH)
    if email is not None and not _EMAIL.fullmatch(email):
        raise AccountError("profile_email_invalid", value=email)
    if phone is not None and not _PHONE.fullmatch(phone):
        raise AccountError("profile_phone_invalid", value=phone)
    if voivodeship is not None:
        voivodeship = voivodeship.lower()
        if voivodeship not in VOIVODESHIP_CODES:
            raise AccountError(
                "profile_voivodeship_invalid",
                value=voivodeship,
                codes=", ".join(sorted(VOIVODESHIP_CODES)),
            )
    if city is not None and len(city) > MAX_CITY_LENGTH:
        raise AccountError("profile_city_too_long", max=MAX_CITY_LENGTH)

    return MemberProfile(
        cluster=cluster,
        member=member,
        name=name,
        contact_email=email,
        contact_phone=phone,
        voivodeship=voivodeship,
        city=city,
    )


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None
