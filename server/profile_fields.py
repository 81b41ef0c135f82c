"""Checks of the member profile fields that the coordinator enters in the CLI or the dashboard."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from server.broker_accounts import check_account_ids
from server.errors import FieldProblem, InvalidSettingError, ProfileError
from server.regions import VOIVODESHIP_CODES
from server.storage.profiles import MemberProfile

MAX_NAME_LENGTH = 200
MAX_CITY_LENGTH = 100
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9 ()-]{6,25}")
# Message ids of the form labels, used to name a field in an error.
_LABELS = {
    "name": "member_new_name",
    "email": "member_new_email",
    "phone": "member_new_phone",
    "voivodeship": "member_new_voivodeship",
    "city": "member_new_city",
}


def checked_profile(
    cluster: str,
    member: str,
    *,
    name: str | None,
    email: str | None,
    phone: str | None,
    voivodeship: str | None,
    city: str | None,
    problems: Sequence[FieldProblem] = (),
) -> MemberProfile:
    """Return the profile with values trimmed and blank fields as ``None``.

    A name that is ``None`` (the CLI option was not given) becomes the member id, but a blank name
    is invalid. Raise ``ProfileError`` listing every invalid value, including the ``problems``
    the caller found, such as an invalid member id. Control characters are invalid in every field.
    """
    found = list(problems)
    texts = {"name": name, "email": email, "phone": phone, "voivodeship": voivodeship, "city": city}
    for field_name, value in texts.items():
        if value is not None and _has_control_character(value):
            found.append(FieldProblem("profile_control_character", {}, _LABELS[field_name]))

    name = member if name is None else name.strip()
    email = _blank_to_none(email)
    phone = _blank_to_none(phone)
    voivodeship = _blank_to_none(voivodeship)
    city = _blank_to_none(city)

    if not name:
        found.append(FieldProblem("profile_name_missing", {}, _LABELS["name"]))
    if len(name) > MAX_NAME_LENGTH:
        found.append(FieldProblem("profile_name_too_long", {"max": MAX_NAME_LENGTH}))
    if email is not None and not _EMAIL.fullmatch(email):
        found.append(FieldProblem("profile_email_invalid", {"value": email}))
    if phone is not None and not _PHONE.fullmatch(phone):
        found.append(FieldProblem("profile_phone_invalid", {"value": phone}))
    if voivodeship is not None:
        voivodeship = voivodeship.lower()
        if voivodeship not in VOIVODESHIP_CODES:
            codes = ", ".join(sorted(VOIVODESHIP_CODES))
            found.append(
                FieldProblem("profile_voivodeship_invalid", {"value": voivodeship, "codes": codes})
            )
    if city is not None and len(city) > MAX_CITY_LENGTH:
        found.append(FieldProblem("profile_city_too_long", {"max": MAX_CITY_LENGTH}))

    if found:
        raise ProfileError(found)
    return MemberProfile(
        cluster=cluster,
        member=member,
        name=name,
        contact_email=email,
        contact_phone=phone,
        voivodeship=voivodeship,
        city=city,
    )


def account_id_problems(cluster: str, member: str) -> list[FieldProblem]:
    """Return the problem with the cluster or member id, as a list for ``checked_profile``."""
    try:
        check_account_ids(cluster, member)
    except InvalidSettingError as error:
        return [FieldProblem(error.message_id, error.fields)]
    return []


def _has_control_character(value: str) -> bool:
    return any(unicodedata.category(character) == "Cc" for character in value)


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None
