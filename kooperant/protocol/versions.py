"""Schema versions of the messages: which ``NAME/MAJOR.MINOR`` values a reader accepts.

A reader accepts its own major version with any minor version: ``NAME/1`` (read as 1.0) and
``NAME/1.N``. A newer minor version only adds optional top-level fields, so a reader drops the
fields it does not know before validation. An older minor version must not carry a field added
after it, because the writer could not have meant it. Another major version, or another
message's name, is rejected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kooperant.protocol.errors import OfferValidationError

logger = logging.getLogger(__name__)

_SCHEMA_ID = re.compile(
    r"^(?P<name>[a-z][a-z0-9.-]*)/(?P<major>0|[1-9][0-9]{0,8})(?:\.(?P<minor>0|[1-9][0-9]{0,8}))?$"
)


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """A message schema id split up: ``kooperant.offer/1.1`` is name, major 1 and minor 1."""

    name: str
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.name}/{self.major}.{self.minor}"


@lru_cache(maxsize=64)
def parse_schema_id(value: str) -> SchemaVersion:
    """Return the parts of a schema id such as ``kooperant.offer/1.1``, or raise ``ValueError``."""
    match = _SCHEMA_ID.fullmatch(value)
    if match is None:
        raise ValueError(f"schema id {value!r} is not of the form NAME/MAJOR or NAME/MAJOR.MINOR")
    minor = match["minor"]
    return SchemaVersion(match["name"], int(match["major"]), int(minor) if minor else 0)


def accept_schema_version(
    data: Any,
    known: SchemaVersion,
    known_fields: Collection[str],
    described: str,
    added_in: Mapping[str, int] | None = None,
) -> Any:
    """Check the ``schema`` field of a decoded message and return the message to validate.

    ``known`` is the newest version this reader supports, and ``described`` names the message in
    errors, for example ``"an offer"``. For a newer minor version the result is a
    copy without the top-level fields outside ``known_fields``. ``added_in`` maps a top-level
    field to the minor version that added it. A message that is not an object
    or has no string ``schema`` is returned unchanged, so JSON Schema validation reports it.
    Raises ``OfferValidationError`` for a malformed schema id, another message's name, another
    major version and a field of ``added_in`` newer than the message's minor version.
    """
    if not isinstance(data, dict) or not isinstance(data.get("schema"), str):
        return data

    text: str = data["schema"]
    quoted = _shorten(text)
    family = f"{known.name}/{known.major}.x"
    try:
        version = parse_schema_id(text)
    except ValueError:
        raise OfferValidationError(
            f"invalid schema {quoted}: expected NAME/MAJOR or NAME/MAJOR.MINOR, here {family}"
        ) from None
    if version.name != known.name:
        raise OfferValidationError(f"unsupported schema {quoted}: {described} names {family}")
    if version.major > known.major:
        raise OfferValidationError(
            f"unsupported schema {quoted}: this aggregator reads major version {known.major} "
            f"({family}); upgrade the aggregator"
        )
    if version.major < known.major:
        raise OfferValidationError(
            f"unsupported schema {quoted}: this aggregator reads major version {known.major} "
            f"({family}); upgrade the agent"
        )
    if version.minor <= known.minor:
        _check_fields_exist_in(data, version, added_in or {})
        return data
    return _without_unknown_fields(data, version, known_fields)


def _check_fields_exist_in(
    data: Mapping[str, Any], version: SchemaVersion, added_in: Mapping[str, int]
) -> None:
    for name, minor in added_in.items():
        if name in data and minor > version.minor:
            added = SchemaVersion(version.name, version.major, minor)
            raise OfferValidationError(
                f"invalid field {name!r} in a {version} message: it was added in {added}; "
                f"send schema {added} or leave the field out"
            )


def _without_unknown_fields(
    data: dict[str, Any], version: SchemaVersion, known_fields: Collection[str]
) -> dict[str, Any]:
    unknown = sorted(key for key in data if key not in known_fields)
    if unknown:
        logger.debug("Dropped fields %s of newer schema %s before validation", unknown, version)
    return {key: value for key, value in data.items() if key in known_fields}


def _shorten(text: str) -> str:
    return repr(text) if len(text) <= 100 else f"{text[:100]!r}... ({len(text)} characters)"
