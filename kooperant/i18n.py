"""User-facing text in Polish and English.

Each package keeps its own ``Catalog`` of messages keyed by a short id. The language comes from
``KOOPERANT_LANG``, then from the POSIX locale variables; Polish is the default because the first
users work in Polish. Log lines and exceptions meant for developers stay English and do not go
through a catalogue. Code that builds catalogued text for a log line, such as a running agent
reporting an invalid policy edit, wraps it in ``use_language("en")``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Literal

Language = Literal["pl", "en"]
LANGUAGES: tuple[Language, ...] = ("pl", "en")
DEFAULT_LANGUAGE: Language = "pl"

_override: ContextVar[Language | None] = ContextVar("kooperant_language", default=None)


@contextlib.contextmanager
def use_language(language: Language) -> Iterator[None]:
    """Make ``current_language`` return ``language`` inside the block, in this context only."""
    token = _override.set(language)
    try:
        yield
    finally:
        _override.reset(token)


def current_language() -> Language:
    """Return the language for user-facing text, read from the environment on every call."""
    override = _override.get()
    if override is not None:
        return override
    for variable in ("KOOPERANT_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable, "").strip().lower()
        if value.startswith("pl"):
            return "pl"
        if value.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


class Catalog:
    """Messages of one package: ``{id: {"pl": text, "en": text}}`` with ``str.format`` fields."""

    def __init__(self, messages: Mapping[str, Mapping[Language, str]]) -> None:
        for message_id, texts in messages.items():
            missing = [language for language in LANGUAGES if language not in texts]
            if missing:
                raise ValueError(f"message {message_id!r} has no text for {missing}")
        self._messages = messages

    def __call__(self, message_id: str, language: Language | None = None, **fields: object) -> str:
        """Return the message in ``language`` (default: current) with ``fields`` filled in."""
        texts = self._messages[message_id]
        return texts[language or current_language()].format(**fields)
